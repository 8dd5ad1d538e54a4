// Serving plumbing shared by optower_bench's benchmarks: the in-process server (the server library's
// own services over a given snapshot), the check that every acknowledged item is a row of the event
// log, the swap benchmarks' steady load, and the optower-server child processes of the rpc swap and
// the cross-check (started through the launch library with a v1::ServerConfig).
#ifndef OPTOWER_BENCH_BENCH_SERVER_H_
#define OPTOWER_BENCH_BENCH_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/bench_flags.h"
#include "bench/load_generator.h"
#include "client/optower_client.h"
#include "core/storage/event_log.h"
#include "core/serving/model_snapshot.h"
#include "core/serving/retrieval_engine.h"
#include "launch/server_process.h"
#include "optower/v1/optower.pb.h"
#include "server/admin_service.h"
#include "server/retrieval_service.h"
#include "server/server_metrics.h"

namespace optower::bench {

// RetrievalServiceImpl + AdminServiceImpl (the handlers optower-server runs, with the same builder
// options) over `snap` and a fresh RetrievalEngine, on 127.0.0.1 with an ephemeral port; with
// `logging`, a fresh SQLite event log in group-commit mode in `data_dir`.
class BenchServer {
 public:
  static absl::StatusOr<std::unique_ptr<BenchServer>> Start(
      std::shared_ptr<const ModelSnapshot> snap, const RetrievalEngineOptions& options,
      bool logging, const std::string& data_dir);

  ~BenchServer() { (void)Shutdown(); }

  std::string address() const;
  RetrievalEngine& engine() { return *engine_; }
  EventLog* log() { return log_.get(); }

  // Forgets the server-side Retrieve latencies recorded so far (after the warm-up). Only call
  // when no Retrieve is in flight: the histogram is replaced in place (the services hold a pointer
  // to metrics_, which stays valid).
  void ResetRetrieveLatency();

  absl::Status Shutdown();

 private:
  BenchServer() = default;
  server::ServerMetrics metrics_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<RetrievalEngine> engine_;
  std::unique_ptr<server::RetrievalServiceImpl> retrieval_;
  std::unique_ptr<server::AdminServiceImpl> admin_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

client::ClientOptions ClientOptionsFor(const std::string& address);

// Every acknowledged (request_id, item_id) must be a row of the log.
struct LogCheck {
  int64_t acked_items = 0;
  int64_t log_rows = 0;
  int64_t missing = 0;
  int64_t max_served_id = 0;
  std::string error;
};

// Flushes `log` and looks up every item acknowledged in `runs` (bounded paging).
LogCheck CheckLog(EventLog& log, const std::vector<const LoadResult*>& runs);

// The swap benchmarks' steady open-loop rate: --swap_rate, else --swap_load_fraction x the
// closed-loop capacity at 16 outstanding calls measured now (3 s); both are printed. `where` is
// appended to the capacity's description. The capacity run is returned too (its acks are logged).
struct SteadyLoad {
  LoadResult capacity;
  double rate = 0;
};
SteadyLoad SteadyRate(LoadGenerator& gen, const Flags& f, bool record_acks, const char* where);

// "exact" -> EXACT, "hnsw" -> HNSW, anything else -> IVF.
v1::IndexConfig::Type ServerIndexType(const std::string& name);

// f.server_binary with `config` (written to `dir`/server.textproto), stderr appended to
// `dir`/server.stderr; ready within `timeout`.
absl::StatusOr<std::unique_ptr<launch::ServerProcess>> StartServerProcess(
    const Flags& f, const v1::ServerConfig& config, const std::string& dir,
    absl::Duration timeout);

// SIGTERM (graceful: drain, flush the log), at most 60 s, then SIGKILL. The exit code; -9 if it
// was killed with SIGKILL, -1 for another signal.
int StopServerProcess(launch::ServerProcess& server);

}  // namespace optower::bench

#endif  // OPTOWER_BENCH_BENCH_SERVER_H_
