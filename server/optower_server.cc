#include "server/optower_server.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/serving/context_sample.h"
#include "core/serving/model_snapshot.h"
#include "core/base/status_macros.h"
#include "server/backends.h"
#include "server/model_loader.h"
#include "server/server_config.h"
#include "server/tls.h"

namespace optower::server {
namespace {

// Turns server reflection on or off for one builder. Linking libgrpc++_reflection registers the
// reflection plugin for every server of the process (a static initializer), so "off" must remove it
// and "on" must add it only if that registration is missing.
class ReflectionOption : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enable) : enable_(enable) {}
  void UpdateArguments(grpc::ChannelArguments* args) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    const std::string name = grpc::reflection::ProtoServerReflectionPlugin().name();
    auto is_reflection = [&](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
      return p != nullptr && p->name() == name;
    };
    const bool present = std::any_of(plugins->begin(), plugins->end(), is_reflection);
    if (!enable_) {
      plugins->erase(std::remove_if(plugins->begin(), plugins->end(), is_reflection),
                     plugins->end());
    } else if (!present) {
      plugins->push_back(std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
    }
  }

 private:
  bool enable_;
};

absl::Status EnsureDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return absl::OkStatus();
  const int err = errno;
  struct stat st;
  if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return absl::OkStatus();
  return absl::Status(err == ENOENT ? absl::StatusCode::kNotFound
                                    : absl::StatusCode::kFailedPrecondition,
                      absl::StrCat("data_dir=", path, ": cannot create it (", std::strerror(err),
                                   "; its parent folder must exist)"));
}

// This process in the election's lease row: host name, configured port and pid.
std::string ProcessName(const v1::ServerConfig& config) {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return absl::StrCat(host, ":", config.port(), " pid ", ::getpid());
}

constexpr const char* kServiceNames[] = {"", "optower.v1.RetrievalService",
                                         "optower.v1.AdminService"};
// The services that need the event log to write: NOT_SERVING while it cannot (the admin service
// keeps working). How often the poller looks, which adds to write_failure_window's reaction time.
constexpr const char* kLogBoundServiceNames[] = {"", "optower.v1.RetrievalService"};
constexpr absl::Duration kHealthPollInterval = absl::Milliseconds(100);

}  // namespace

absl::StatusOr<std::unique_ptr<OptowerServer>> OptowerServer::Start(v1::ServerConfig config,
                                                                    StartOptions options) {
  ApplyServerConfigDefaults(&config);
  RETURN_IF_ERROR(ValidateServerConfig(config));
  // Secrets and certificates first: a bad one should fail the start before any slow work.
  ASSIGN_OR_RETURN(std::optional<BearerToken> admin_token,
                   LoadBearerToken(config.admin_token_file(), "admin_token_file",
                                   options.admin_token_env.c_str(), "OPTOWER_ADMIN_TOKEN"));
  ASSIGN_OR_RETURN(std::optional<BearerToken> retrieve_token,
                   LoadBearerToken(config.retrieve_token_file(), "retrieve_token_file",
                                   options.retrieve_token_env.c_str(), "OPTOWER_RETRIEVE_TOKEN"));
  RETURN_IF_ERROR(CheckAdminExposure(config.host(), admin_token.has_value(),
                                     config.insecure_open_admin()));
  ASSIGN_OR_RETURN(const std::shared_ptr<grpc::ServerCredentials> credentials,
                   MakeServerCredentials(TlsOptionsFromConfig(config)));
  // One intra-op thread per request thread: gRPC supplies the concurrency (DESIGN §6).
  at::set_num_threads(config.intra_op_threads());
  RETURN_IF_ERROR(EnsureDirectory(config.data_dir()));
  // Before anything reads or writes data_dir: one server per data_dir.
  ASSIGN_OR_RETURN(std::unique_ptr<DataDirLock> lock, DataDirLock::Acquire(config.data_dir(), "data_dir"));

  std::unique_ptr<OptowerServer> s(new OptowerServer());
  s->data_dir_lock_ = std::move(lock);
  s->config_ = config;
  s->auth_ = AuthPolicy(std::move(admin_token), std::move(retrieve_token));
  RETURN_IF_ERROR(s->OpenComponents());
  RETURN_IF_ERROR(s->CreateServices());
  RETURN_IF_ERROR(s->Listen(credentials));
  return s;
}

absl::Status OptowerServer::OpenComponents() {
  const v1::ServerConfig& config = config_;
  ASSIGN_OR_RETURN(role_, ParseServerRole(config.role()));
  ASSIGN_OR_RETURN(prometheus_, PrometheusExporter::Create());
  metrics_.AttachPrometheus(*prometheus_);
  ASSIGN_OR_RETURN(Backends backends, OpenBackends(config, role_, ProcessName(config)));
  store_ = std::move(backends.store);
  catalog_store_ = std::move(backends.catalogs);
  event_log_ = std::move(backends.event_log);
  election_ = std::move(backends.election);
  // Shared state is seeded (a model_dir imported, items_path stored as catalog version 0) only by
  // one process: the one holding the trainer election; the others serve what they were given
  // until the follower brings them the shared state (docs/SCALING.md "Start-up").
  const bool shared = config.postgres().enabled();
  bool seed = !shared;
  if (election_ != nullptr) {
    absl::StatusOr<bool> won = election_->TryAcquire();
    seed = won.ok() && *won;
  }
  if (shared && config.items_path().empty() && config.model_dir().empty()) {
    ASSIGN_OR_RETURN(const std::optional<int64_t> latest, catalog_store_->LatestVersion());
    if (!latest.has_value()) {
      return absl::UnavailableError(
          "the shared catalog is empty and this process has no items_path: start the trainer "
          "(role=train, with items_path) first, which seeds it, then this process (docs/SCALING.md "
          "\"Start-up\")");
    }
  }
  ASSIGN_OR_RETURN(ServingModel serving,
                   LoadServingModel(config, store_.get(), catalog_store_.get(), seed));
  model_source_ = serving.source;
  const std::string untrained_version = serving.trained ? "" : serving.version;
  ModelSnapshot::Options snapshot_options;
  snapshot_options.index = IndexOptionsFromConfig(config);
  // The index's recall probe: the user tower on the contexts of the most recent logged requests
  // (sampled contexts top them up; core/serving/index_probe.h). Best effort: a log that cannot be
  // read here fails later where it matters, not the probe.
  // Encoded rows (dense + categorical slots) of the served model's input width.
  const int64_t input_width = ContextInputWidth(serving.model->config());
  absl::StatusOr<std::vector<float>> logged = RecentLoggedContexts(
      *event_log_, snapshot_options.index.recall_queries, *serving.model);
  if (!logged.ok()) {
    std::fprintf(stderr, "optower-server: warning: no logged contexts for the index probe: %s\n",
                 std::string(logged.status().message()).c_str());
    logged = std::vector<float>();
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const ModelSnapshot> snapshot,
                   ModelSnapshot::Build(serving.version, serving.model, std::move(serving.catalog),
                                        serving.catalog_version, snapshot_options,
                                        /*previous=*/nullptr, &*logged));
  RetrievalEngineOptions engine_options = EngineOptionsFromConfig(config);
  engine_options.persist_catalog = [catalogs = catalog_store_.get()](const ItemCatalog& items,
                                                                     int64_t version) {
    return catalogs->Save(items, version);
  };
  ASSIGN_OR_RETURN(engine_, RetrievalEngine::Create(engine_options, std::move(snapshot),
                                                    event_log_.get()));
  engine_->SeedProbeContexts(*logged, input_width);
  publisher_ = std::make_unique<ModelPublisher>(engine_.get(), store_.get(), untrained_version);
  if (shared) {
    ScaleOut::Options so;
    so.dsn = backends.dsn;
    so.poll_interval = absl::Milliseconds(config.postgres().poll_interval_ms());
    so.election_interval = absl::Milliseconds(config.postgres().election_interval_ms());
    so.elected_at_start = seed;
    scale_out_ = ScaleOut::Start(std::move(so), election_.get(), store_.get(),
                                 catalog_store_.get(), engine_.get());
  }
  if (!config.trainer().disabled() && RoleTrains(role_)) {
    TrainerHooks hooks = publisher_->Hooks();
    if (scale_out_ != nullptr) hooks.leadership = [so = scale_out_.get()] { return so->leadership(); };
    ASSIGN_OR_RETURN(trainer_, Trainer::Create(TrainerOptionsFromConfig(config), event_log_.get(),
                                               store_.get(), std::move(hooks)));
  }
  return absl::OkStatus();
}

absl::Status OptowerServer::CreateServices() {
  const v1::ServerConfig& config = config_;
  RetrievalServiceImpl::Limits limits;
  limits.max_retrieve_bytes = config.max_retrieve_bytes();
  limits.max_feedback_bytes = config.max_feedback_bytes();
  limits.role = role_;
  retrieval_service_ = std::make_unique<RetrievalServiceImpl>(engine_.get(), &metrics_, &auth_, limits);
  AdminServiceImpl::Deps deps;
  deps.engine = engine_.get();
  deps.event_log = event_log_.get();
  deps.metrics = &metrics_;
  deps.store = store_.get();
  deps.trainer = trainer_.get();
  deps.publisher = publisher_.get();
  deps.auth = &auth_;
  AdminServiceImpl::Info info;
  info.event_log_path = EventLogPath(config);
  info.durability = DurabilityName(config.event_log().durability());
  info.started = absl::Now();
  info.max_admin_bytes = config.max_admin_bytes();
  info.max_upsert_bytes = config.max_receive_message_bytes();
  info.max_queue = config.max_admin_queue();
  info.max_watchers = config.max_watchers();
  info.role = role_;
  info.trainer_address = config.trainer_address();
  info.scale_out = [this](v1::ScaleOutStats* out) {
    out->set_backend(config_.postgres().enabled() ? "postgres" : "sqlite");
    if (scale_out_ != nullptr) scale_out_->FillStats(out);
  };
  PrometheusExporter::Sources sources;
  sources.engine = engine_.get();
  sources.event_log = event_log_.get();
  sources.trainer = trainer_.get();
  sources.publisher = publisher_.get();
  sources.started = info.started;
  RETURN_IF_ERROR(prometheus_->AttachSources(sources));
  admin_service_ = std::make_unique<AdminServiceImpl>(deps, std::move(info));

  if (config.metrics_port() != 0) {
    MetricsHttpServerOptions http;
    http.host = config.metrics_host();
    http.port = std::max(config.metrics_port(), 0);  // -1: any free port
    // On failure the destructor (Shutdown) stops the trainer, the admin worker and the event log.
    RETURN_IF_ERROR(prometheus_->StartHttp(http));
  }
  return absl::OkStatus();
}

absl::Status OptowerServer::Listen(const std::shared_ptr<grpc::ServerCredentials>& credentials) {
  const v1::ServerConfig& config = config_;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  const std::string listen = absl::StrCat(config.host(), ":", config.port());
  builder.AddListeningPort(listen, credentials, &port_);
  builder.SetMaxReceiveMessageSize(config.max_receive_message_bytes());
  builder.SetMaxSendMessageSize(config.max_send_message_bytes());
  // gRPC sets SO_REUSEPORT by default, which would let a second server (with its own event log)
  // silently share the port; refuse a busy port instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(retrieval_service_.get());
  builder.RegisterService(admin_service_.get());
  builder.SetOption(std::make_unique<ReflectionOption>(!config.disable_reflection()));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    if (trainer_ != nullptr) trainer_->Shutdown();
    admin_service_->Stop();
    (void)event_log_->Close();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", listen,
        config.tls_cert().empty()
            ? " (address in use, or host not a local address?)"
            : " (address in use, host not a local address, or tls_key not the key of tls_cert?)"));
  }
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health != nullptr) {
    for (const char* name : kServiceNames) health->SetServingStatus(name, true);
    health_poller_ = std::thread([this] { FollowEventLogHealth(); });
  }
  return absl::OkStatus();
}

void OptowerServer::FollowEventLogHealth() {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  bool serving = true;
  while (!stop_health_poller_.WaitForNotificationWithTimeout(kHealthPollInterval)) {
    const absl::Status status = event_log_->WriteStatus();
    if (status.ok() == serving) continue;
    serving = status.ok();
    for (const char* name : kLogBoundServiceNames) health->SetServingStatus(name, serving);
    if (serving) {
      std::fprintf(stderr, "optower-server: event log writes again: health SERVING\n");
    } else {
      std::fprintf(stderr, "optower-server: health NOT_SERVING: %s\n",
                   std::string(status.message()).c_str());
    }
  }
}

OptowerServer::~OptowerServer() { (void)Shutdown(); }

std::string OptowerServer::address() const { return absl::StrCat(config_.host(), ":", port_); }

absl::Status OptowerServer::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return close_status_;
  shut_down_ = true;
  if (health_poller_.joinable()) {
    stop_health_poller_.Notify();
    health_poller_.join();
  }
  if (server_ != nullptr) {
    if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
      health->SetServingStatus(false);  // every service NOT_SERVING
    }
    if (config_.shutdown_health_grace_ms() > 0) {
      absl::SleepFor(absl::Milliseconds(config_.shutdown_health_grace_ms()));
    }
  }
  // Stop the trainer while gRPC drains: a job ends at its next phase boundary with a final event,
  // which ends its WatchTraining streams with OK instead of a cancellation at the deadline.
  std::thread trainer_stop;
  if (trainer_ != nullptr) trainer_stop = std::thread([this] { trainer_->Shutdown(); });
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() +
                                         absl::Milliseconds(config_.shutdown_deadline_ms())));
    server_->Wait();
  }
  if (trainer_stop.joinable()) trainer_stop.join();
  // The trainer has stopped: hand the election over at once rather than when the session ends.
  if (scale_out_ != nullptr) {
    scale_out_->Stop();
    scale_out_->ReleaseElection();
  }
  if (admin_service_ != nullptr) admin_service_->Stop();
  close_status_ = event_log_ != nullptr ? event_log_->Close() : absl::OkStatus();
  if (prometheus_ != nullptr) prometheus_->StopHttp();
  return close_status_;
}

}  // namespace optower::server
