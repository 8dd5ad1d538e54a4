#include "bench/bench_server.h"

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <new>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "core/storage/sqlite_event_log.h"
#include "core/base/status_macros.h"
#include "server/server_config.h"

namespace optower::bench {

namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<BenchServer>> BenchServer::Start(
    std::shared_ptr<const ModelSnapshot> snap, const RetrievalEngineOptions& options, bool logging,
    const std::string& data_dir) {
  std::unique_ptr<BenchServer> s(new BenchServer());
  v1::ServerConfig cfg;
  cfg.set_data_dir(data_dir);
  cfg.set_dim_context(static_cast<int>(snap->dim_context()));
  server::ApplyServerConfigDefaults(&cfg);  // group commit, 5 ms, the server's limits
  if (logging) {
    fs::create_directories(data_dir);
    ASSIGN_OR_RETURN(s->log_, SqliteEventLog::Open(server::EventLogOptionsFromConfig(cfg)));
  }
  ASSIGN_OR_RETURN(s->engine_, RetrievalEngine::Create(options, std::move(snap), s->log_.get()));
  s->retrieval_ =
      std::make_unique<server::RetrievalServiceImpl>(s->engine_.get(), &s->metrics_);
  server::AdminServiceImpl::Info info;
  info.event_log_path = logging ? server::EventLogPath(cfg) : "";
  info.durability = server::DurabilityName(cfg.event_log().durability());
  info.started = absl::Now();
  server::AdminServiceImpl::Deps deps;  // no model store, no trainer: GetStats is what we use
  deps.engine = s->engine_.get();
  deps.event_log = s->log_.get();
  deps.metrics = &s->metrics_;
  s->admin_ = std::make_unique<server::AdminServiceImpl>(deps, std::move(info));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &s->port_);
  builder.SetMaxReceiveMessageSize(cfg.max_receive_message_bytes());
  builder.SetMaxSendMessageSize(cfg.max_send_message_bytes());
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(s->retrieval_.get());
  builder.RegisterService(s->admin_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) return absl::UnavailableError("cannot listen");
  return s;
}

std::string BenchServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

void BenchServer::ResetRetrieveLatency() {
  std::destroy_at(&metrics_.retrieve);
  new (&metrics_.retrieve) server::LatencyHistogram();
}

absl::Status BenchServer::Shutdown() {
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
    server_.reset();
  }
  if (admin_ != nullptr) admin_->Stop();
  absl::Status s = absl::OkStatus();
  if (log_ != nullptr) s = log_->Close();
  return s;
}

client::ClientOptions ClientOptionsFor(const std::string& address) {
  client::ClientOptions o;
  o.address = address;
  return o;
}

LogCheck CheckLog(EventLog& log, const std::vector<const LoadResult*>& runs) {
  LogCheck c;
  absl::flat_hash_set<std::string> acked;
  for (const LoadResult* r : runs) {
    for (const Ack& a : r->acks) {
      for (int64_t item : a.item_ids) {
        acked.insert(absl::StrCat(a.request_id, "/", item));
        ++c.acked_items;
      }
    }
  }
  if (absl::Status s = log.Flush(); !s.ok()) c.error = std::string(s.message());
  absl::StatusOr<int64_t> max_id = log.MaxServedId();
  if (max_id.ok()) c.max_served_id = *max_id;
  EventLog::ReadOptions ro;
  ro.max_served_id = c.max_served_id;
  ro.max_rows = 50000;
  ro.min_served_id = 0;
  const int64_t max_pages = c.acked_items / ro.max_rows + 100;  // bounded
  for (int64_t page = 0; page < max_pages; ++page) {
    absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = log.ReadJoined(ro);
    if (!rows.ok()) {
      c.error = std::string(rows.status().message());
      break;
    }
    if (rows->empty()) break;
    for (const EventLog::JoinedRow& row : *rows) {
      acked.erase(absl::StrCat(row.request_id, "/", row.item_id));
      ++c.log_rows;
    }
    ro.min_served_id = rows->back().served_id + 1;
  }
  c.missing = static_cast<int64_t>(acked.size());
  return c;
}

SteadyLoad SteadyRate(LoadGenerator& gen, const Flags& f, bool record_acks, const char* where) {
  LoadSpec cap;
  cap.concurrency = 16;
  cap.k = static_cast<int32_t>(f.k);
  cap.duration = absl::Seconds(3);
  cap.max_requests = f.max_requests;
  cap.record_acks = record_acks;
  const LoadResult capacity = gen.Run(cap);
  const double rate = f.swap_rate > 0 ? f.swap_rate : f.swap_load_fraction * capacity.Qps();
  Say(absl::StrFormat("closed-loop capacity (16 outstanding%s): %.0f qps -> steady load %.0f qps "
                      "(open loop, at most %d outstanding, %d channels); load %s",
                      where, capacity.Qps(), rate, f.swap_concurrency, gen.channels(), LoadAvg()));
  return {capacity, rate};
}

v1::IndexConfig::Type ServerIndexType(const std::string& name) {
  return name == "exact" ? v1::IndexConfig::EXACT
         : name == "hnsw" ? v1::IndexConfig::HNSW
                          : v1::IndexConfig::IVF;
}

absl::StatusOr<std::unique_ptr<launch::ServerProcess>> StartServerProcess(
    const Flags& f, const v1::ServerConfig& config, const std::string& dir,
    absl::Duration timeout) {
  launch::ServerProcess::Options o;
  o.binary = f.server_binary;
  o.config = config;
  o.config_path = dir + "/server.textproto";
  o.stderr_path = dir + "/server.stderr";
  o.start_timeout = timeout;
  return launch::ServerProcess::Start(o);
}

int StopServerProcess(launch::ServerProcess& server) {
  const int status = server.Terminate(absl::Seconds(60));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? -9 : -1;
}

}  // namespace optower::bench
