// OptowerServer: one running optower-server — the event log, the model store, the retrieval engine
// with its first snapshot, the background trainer, the gRPC services and the grpc::Server — with a
// graceful shutdown. Used by main.cc and, in-process, by tests (port 0 picks a free port).
//
// Start-up (Start): defaults + validation of the config, the bearer tokens and the exposure rule
// (a non-loopback host without an admin token is refused unless insecure_open_admin), LibTorch intra-op threads, data_dir (created
// if missing; its parent must exist), the model store at data_dir/models, the model + catalog to
// serve (server/model_loader.h: the store's serving version, else model_dir imported into the store,
// else random towers), the first snapshot (item embeddings + index), the event log at
// data_dir/events.sqlite (appended to), the trainer (unless trainer.disabled; core/training/trainer.h, hooks
// in server/model_publisher.h), the bearer tokens (server/auth.h), the Prometheus metrics
// (server/prometheus_exporter.h; served on metrics_host:metrics_port when metrics_port is not 0),
// then the gRPC server
// (TLS when tls_cert/tls_key are set, server/tls.h) with health checking (every service SERVING),
// reflection (unless disabled) and message-size limits. A poller thread then follows the event log:
// while it cannot write (EventLog::WriteStatus), "" and optower.v1.RetrievalService are NOT_SERVING
// (docs/EVENT_LOG.md "Write failures"); they turn SERVING again once a commit succeeds.
//
// Shutdown: the health poller stops -> health NOT_SERVING for every service -> wait shutdown_health_grace_ms (load balancers
// stop sending) -> the trainer is told to stop (a queued job is cancelled, a running one stops at
// its next phase boundary, its watchers get the final event) while grpc::Server::Shutdown drains
// in-flight calls with a deadline of shutdown_deadline_ms (later ones are cancelled; new calls are
// refused) -> the trainer's worker is joined (a job inside the learner finishes that phase first)
// -> the admin worker finishes -> the event log is flushed and closed (every acknowledged row
// committed) -> the metrics endpoint stops (it answers until then).
//
// Thread safety: all methods may be called from any thread; Shutdown is idempotent (later calls
// return the first result). Note that Start sets process-wide state: LibTorch's intra-op thread
// count and gRPC's default health-check-service flag.
#ifndef OPTOWER_SERVER_OPTOWER_SERVER_H_
#define OPTOWER_SERVER_OPTOWER_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/storage/catalog_store.h"
#include "core/base/data_dir_lock.h"
#include "core/storage/event_log.h"
#include "core/storage/model_store.h"
#include "core/storage/trainer_election.h"
#include "core/serving/retrieval_engine.h"
#include "core/training/trainer.h"
#include "optower/v1/optower.pb.h"
#include "server/admin_service.h"
#include "server/auth.h"
#include "server/model_publisher.h"
#include "server/prometheus_exporter.h"
#include "server/retrieval_service.h"
#include "server/scale_out.h"
#include "server/server_role.h"
#include "server/server_metrics.h"

namespace optower::server {

class OptowerServer {
 public:
  // What Start takes from outside the config: the bearer tokens from the environment (main reads
  // OPTOWER_ADMIN_TOKEN / OPTOWER_RETRIEVE_TOKEN; unset = none). A token file in the config wins.
  struct StartOptions {
    std::string admin_token_env;
    std::string retrieve_token_env;
  };

  // Blocks until the server listens. Defaults are applied to `config` here. Errors: the config's
  // InvalidArgument (also for a bad token or TLS setting, naming it), NotFound & co. for unreadable
  // token/certificate files, model/catalog/event-log errors, Unavailable when the address (or the
  // metrics port) cannot be bound.
  static absl::StatusOr<std::unique_ptr<OptowerServer>> Start(v1::ServerConfig config,
                                                              StartOptions options = {});

  // Shuts down (if not done yet) and releases everything.
  ~OptowerServer();
  OptowerServer(const OptowerServer&) = delete;
  OptowerServer& operator=(const OptowerServer&) = delete;

  int port() const { return port_; }
  std::string address() const;  // "host:port"
  const v1::ServerConfig& config() const { return config_; }  // with defaults applied
  RetrievalEngine& engine() { return *engine_; }
  EventLog& event_log() { return *event_log_; }
  ModelStore& model_store() { return *store_; }
  // Null when trainer.disabled or role=serve.
  Trainer* trainer() { return trainer_.get(); }
  // Null without postgres.
  ScaleOut* scale_out() { return scale_out_.get(); }
  // Where the first served model came from (for the start-up line).
  const std::string& model_source() const { return model_source_; }
  const AuthPolicy& auth() const { return auth_; }
  AdminServiceImpl& admin_service() { return *admin_service_; }
  bool tls() const { return !config_.tls_cert().empty(); }
  // The metrics endpoint's port; 0 when metrics_port is 0 (off).
  int metrics_port() const { return prometheus_ != nullptr ? prometheus_->http_port() : 0; }
  // The Prometheus text (what GET /metrics returns), also when the endpoint is off.
  std::string MetricsText() const { return prometheus_->Render(); }

  // Graceful shutdown (see the file comment). Returns the event log's Close status.
  absl::Status Shutdown();

 private:
  OptowerServer() = default;
  // Start's phases, in order, on a server holding config_, the data_dir lock and auth_: the core
  // components (prometheus, store, catalog, snapshot, event log, engine, publisher, trainer); the
  // gRPC services and the metrics endpoint; the listening gRPC server and the health poller.
  absl::Status OpenComponents();
  absl::Status CreateServices();
  absl::Status Listen(const std::shared_ptr<grpc::ServerCredentials>& credentials);
  // The health poller's loop: mirrors event_log_->WriteStatus() into the health service.
  void FollowEventLogHealth();

  v1::ServerConfig config_;
  int port_ = 0;
  ServerMetrics metrics_;
  AuthPolicy auth_;
  std::string model_source_;
  std::unique_ptr<DataDirLock> data_dir_lock_;  // before what uses data_dir: released after it
  std::unique_ptr<EventLog> event_log_;
  std::unique_ptr<ModelStore> store_;
  std::unique_ptr<CatalogStore> catalog_store_;
  std::unique_ptr<RetrievalEngine> engine_;
  std::unique_ptr<ModelPublisher> publisher_;
  std::unique_ptr<Trainer> trainer_;
  ServerRole role_ = ServerRole::kAll;
  std::unique_ptr<TrainerElection> election_;  // postgres and a role that trains
  std::unique_ptr<ScaleOut> scale_out_;        // postgres: election loop + follower
  std::unique_ptr<RetrievalServiceImpl> retrieval_service_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  std::thread health_poller_;
  absl::Notification stop_health_poller_;
  // Last: its HTTP thread reads the components above, so it goes first (Shutdown stops it anyway).
  std::unique_ptr<PrometheusExporter> prometheus_;

  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(shutdown_mu_);
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_OPTOWER_SERVER_H_
