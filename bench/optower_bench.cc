// optower_bench: serving throughput/latency of optower's Retrieve over gRPC (issue 3 §5) and the
// model swap under load (issue 4 §5). Results and commands: docs/BENCHMARKS.md §4, §5;
// scripts/bench_serving.sh runs it.
//
// What it does, per catalog size N (d = 64):
//  1. Data (stated in the output): item features from a mixture of Gaussian clusters in R^16 —
//     max(10, N/items_per_cluster) clusters taken from a fixed universe of 1,000 centres ~ N(0, I),
//     item = centre + N(0, within_sd^2 I) (0.15), clusters picked uniformly; contexts from 32 user
//     segments ~ N(0, I) in R^16 (+ N(0, 0.5^2 I)). The served model (--model trained, default):
//     towers MLP 16 -> 64 -> 64 (ReLU) trained by optower's learner (objective dm) on uniformly
//     logged rounds over a 4,000-item sample of the universe with Bernoulli rewards from
//     q(x, a) = sigmoid(x'Wf/4 - 1); --model random: randomly initialised towers. Item embeddings =
//     its item tower on the catalog; queries = its user tower on the contexts.
//  2. Per index type (exact, ivf, hnsw): builds the ModelSnapshot (item embedding + index) once,
//     measures recall@10/@100 of the index on the bench's own queries against exact search (plus
//     the recall ItemIndex measured at build), and the raw FAISS throughput of that same index
//     object: single-query ItemIndex::Search loops (top-M, one call per query, as the server does)
//     on 1 and on `threads` threads, batched SearchBatch on `threads` OpenMP threads, and the
//     in-process RetrievalEngine (no gRPC, no log) on `threads` threads.
//  3. Serving: for each (logging off/on, concurrency) it starts an in-process gRPC server assembled
//     from the server library's own services (RetrievalServiceImpl + AdminServiceImpl, the
//     handlers optower-server runs, with the same builder options) over the SAME snapshot and a
//     fresh RetrievalEngine (+ a fresh SQLite event log in group-commit mode when logging is on),
//     warms up, resets the server-side latency histogram, runs a closed loop of `c` outstanding
//     Retrieve calls over min(c, channels) channels (callback client API), and reads GetStats for
//     the server-side handler latency. With logging on it then flushes the log and checks that
//     every (request_id, item_id) acknowledged to the client is a row in the log
//     (EventLog::ReadJoined).
//  4. --swap: at one size, an open-loop steady load at a fixed rate while the model is swapped:
//     --swap_via engine: in-process RetrievalEngine::ReplaceModel (re-embeds the catalog with the
//     new item tower, builds a new index, publishes) with the build at --swap_priority (the
//     engine's build_priority); --swap_via rpc: a real optower-server child process (--server_binary), swapped
//     through the admin RPCs (TriggerRetrain(force) followed with WatchTraining, then Rollback
//     twice). p99 before / during / after each swap, failed calls, when responses switched to the
//     new version, and the log check.
//  5. --crosscheck_items N: the closed-loop runs of 3. against a real optower-server child process.
// Where each part lives: data in bench_data.*, 2. in index_bench.*, 3. in serving_bench.cc (the
// in-process server and the log check in bench_server.*), 4. in swap_bench.cc (engine) and
// swap_rpc_bench.cc (rpc), 5. in crosscheck_bench.cc; flags in bench_flags.*. The child processes
// of 4. (rpc) and 5. are started by the launch library (launch/server_process.h) with a
// v1::ServerConfig written by protobuf's TextFormat.
// Every loop is bounded by time and count. Load averages, and the CPU that OTHER processes used
// during each measurement (/proc/stat minus this process), are printed next to the numbers.
//
// usage: optower_bench [--sizes 10000,100000,1000000] [--indexes exact,ivf,hnsw]
//                      [--concurrency 1,4,16] [--logging off,on] [--repeats 3] [--duration 5]
//                      [--swap] ...   (--help lists every flag)
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <ATen/Parallel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "bench/bench_data.h"
#include "bench/bench_flags.h"
#include "bench/bench_util.h"
#include "bench/benchmarks.h"
#include "cli/flag_parser.h"

namespace optower::bench {
namespace {

namespace fs = std::filesystem;

int Main(int argc, char** argv) {
  Flags f;
  cli::FlagParser p("optower_bench [flags]",
                    "gRPC serving benchmark (issue 3 §5) and model swap under load (issue 4 §5).");
  AddBenchFlags(p, &f);
  if (absl::Status s = p.Parse(argc, argv); !s.ok() || p.help_requested()) {
    std::fprintf(stderr, "%s\n%s", std::string(s.message()).c_str(), p.Help().c_str());
    return s.ok() ? 0 : 2;
  }
  std::error_code ec;
  fs::create_directories(f.work_dir, ec);
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  Say(absl::StrFormat("optower_bench: %d cores online, OMP_WAIT_POLICY=%s, load %s",
                      std::thread::hardware_concurrency(), wait_policy ? wait_policy : "(unset)",
                      LoadAvg()));
  const World world = MakeWorld(f);
  at::set_num_threads(static_cast<int>(f.threads));
  absl::StatusOr<Models> models = MakeModels(world, f, f.swap);
  if (!models.ok()) {
    std::fprintf(stderr, "optower_bench: model: %s\n", std::string(models.status().message()).c_str());
    return 1;
  }
  Say("model: " + models->note_a);
  if (f.swap) Say("swap model: " + models->note_b);
  int rc = 0;
  if (!ParseIntList(f.sizes).empty()) rc = RunServingBench(f, world, *models);
  if (rc == 0 && f.crosscheck_items > 0) rc = RunCrosscheck(f, world, *models);
  if (rc == 0 && !f.index_scale.empty()) rc = RunIndexScale(f, world, *models);
  if (rc == 0 && f.swap) {
    rc = f.swap_via == "rpc" ? RunSwapRpc(f, world, *models) : RunSwap(f, world, *models);
  }
  return rc;
}

}  // namespace
}  // namespace optower::bench

int main(int argc, char** argv) { return optower::bench::Main(argc, argv); }
