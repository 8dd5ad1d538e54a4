// The cross-check (part 5 of optower_bench's header comment, --crosscheck_items N): the closed-loop
// runs of the serving benchmark against a real optower-server child process (--server_binary,
// started by the launch library; event log on, group commit), one fresh process per concurrency
// level: its GetStats latency is cumulative since start (warm-up included, 1 s of the 1+duration s).
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_data.h"
#include "bench/bench_server.h"
#include "bench/bench_util.h"
#include "bench/benchmarks.h"
#include "bench/index_bench.h"
#include "bench/load_generator.h"
#include "client/optower_client.h"
#include "core/base/csv_io.h"
#include "core/storage/event_log.h"
#include "core/storage/sqlite_event_log.h"
#include "launch/server_config_text.h"
#include "launch/server_process.h"

namespace optower::bench {
namespace {

namespace fs = std::filesystem;

// Data in `run_dir`, catalog and model a from `dir`, the cross-check's index, no trainer.
v1::ServerConfig CrosscheckServerConfig(const Flags& f, const std::string& dir,
                                        const std::string& run_dir) {
  v1::ServerConfig config = launch::LoopbackServerConfig();
  config.set_data_dir(run_dir + "/data");
  config.set_items_path(dir + "/items.csv");
  config.set_model_dir(dir + "/model-a");
  v1::IndexConfig* index = config.mutable_index();
  index->set_type(ServerIndexType(f.crosscheck_index));
  index->set_ivf_nprobe(static_cast<int32_t>(NprobeFor(f, f.crosscheck_items)));
  index->set_build_threads(static_cast<int32_t>(f.threads));
  config.mutable_trainer()->set_disabled(true);
  return config;
}

// The server's p50/p95/p99 Retrieve latency from GetStats (zeros if it cannot be read).
void ServerLatency(const std::string& address, double* p50, double* p95, double* p99) {
  *p50 = *p95 = *p99 = 0;
  auto client = client::OptowerClient::Connect(ClientOptionsFor(address));
  if (!client.ok()) return;
  auto st = (*client)->GetStats();
  if (!st.ok()) return;
  for (const v1::RpcLatency& l : st->rpc_latency()) {
    if (l.method() != "Retrieve") continue;
    *p50 = l.p50_ms();
    *p95 = l.p95_ms();
    *p99 = l.p99_ms();
  }
}

// The log the stopped server left in `run_dir` against the acknowledged items of `runs`.
LogCheck CheckRunLog(const std::string& run_dir, const std::vector<const LoadResult*>& runs) {
  LogCheck lc;
  EventLogOptions lo;
  lo.path = run_dir + "/data/events.sqlite";
  auto log = SqliteEventLog::Open(lo);
  if (log.ok()) {
    lc = CheckLog(**log, runs);
    (void)(*log)->Close();
  } else {
    lc.error = std::string(log.status().message());
  }
  return lc;
}

// One fresh server at concurrency c: warm-up, measured run, its table row. False if it could not
// be started or connected (the caller stops).
bool RunOne(const Flags& f, const Dataset& ds, const std::string& dir, int64_t rep, int64_t c) {
  const int64_t n = f.crosscheck_items;
  const std::string run_dir = absl::StrCat(dir, "/run-", rep, "-", c);
  fs::create_directories(run_dir);
  const auto t0 = Clock::now();
  absl::StatusOr<std::unique_ptr<launch::ServerProcess>> child = StartServerProcess(
      f, CrosscheckServerConfig(f, dir, run_dir), run_dir, absl::Minutes(15));
  if (!child.ok()) {
    Say(std::string(child.status().message()));
    return false;
  }
  const double start_s = SecondsSince(t0);
  LoadGenerator gen((*child)->address(), static_cast<int>(std::min<int64_t>(c, f.channels)),
                    ds.contexts, static_cast<int>(f.context_features));
  if (!gen.WaitConnected(absl::Seconds(10))) return false;
  LoadSpec spec;
  spec.concurrency = static_cast<int>(c);
  spec.k = static_cast<int32_t>(f.k);
  spec.record_acks = true;
  spec.max_requests = f.max_requests;
  spec.duration = absl::Seconds(f.warmup_s);
  const LoadResult warm = gen.Run(spec);
  const double load1 = Load1();
  spec.duration = absl::Seconds(f.duration_s);
  const LoadResult res = gen.Run(spec);
  const auto q = res.LatencyMs();
  double sp50 = 0, sp95 = 0, sp99 = 0;
  ServerLatency((*child)->address(), &sp50, &sp95, &sp99);
  const int exit_code = StopServerProcess(**child);
  const LogCheck lc = CheckRunLog(run_dir, {&warm, &res});
  Say(absl::StrFormat("| %d | %s | %d | %.0f | %.3f / %.3f / %.3f | %.3f / %.3f / %.3f | %d | "
                      "%d / %d / %d%s | %.1f | %.2f |",
                      n, f.crosscheck_index, c, res.Qps(), q.p50, q.p95, q.p99, sp50, sp95, sp99,
                      res.failed + warm.failed, lc.acked_items, lc.log_rows, lc.missing,
                      exit_code == 0 ? "" : absl::StrCat(" (exit ", exit_code, ")"), start_s,
                      load1));
  std::error_code ec;
  fs::remove_all(run_dir, ec);
  return true;
}

}  // namespace

int RunCrosscheck(const Flags& f, const World& world, const Models& models) {
  const int64_t n = f.crosscheck_items;
  Say(absl::StrFormat("\n## cross-check: optower-server process (event log on, group commit), N=%d, "
                      "index %s (nprobe %d)",
                      n, f.crosscheck_index, NprobeFor(f, n)));
  if (f.server_binary.empty()) {
    Say("--crosscheck_items needs --server_binary");
    return 2;
  }
  absl::StatusOr<Dataset> ds = MakeDataset(n, world, models, f);
  if (!ds.ok()) return 1;
  const std::string dir = absl::StrCat(f.work_dir, "/crosscheck-", ::getpid());
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir + "/model-a");
  if (!WriteItemsCsv(dir + "/items.csv", ds->catalog).ok()) return 1;
  if (!ds->model->Save(dir + "/model-a").ok()) return 1;
  Say("| N | index | c | QPS | client p50 / p95 / p99 ms | server p50 / p95 / p99 ms (incl. "
      "warm-up) | failed | log: acked / rows / missing | start s | load1 |");
  Say("|---|---|---|---|---|---|---|---|---|---|");
  for (int64_t rep = 0; rep < f.repeats; ++rep) {
    for (int64_t c : ParseIntList(f.concurrency)) {
      if (!RunOne(f, *ds, dir, rep, c)) return 1;
    }
  }
  fs::remove_all(dir, ec);
  return 0;
}

}  // namespace optower::bench
