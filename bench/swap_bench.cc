// The swap benchmark through the engine (part 4 of optower_bench's header comment, --swap_via
// engine): at one size, an open-loop steady load at a fixed rate against the in-process server while
// RetrievalEngine::ReplaceModel swaps between models a and b (re-embeds the catalog with the new item
// tower, builds a new index at --swap_priority, publishes). p99 before / during / after each swap,
// failed calls, when responses switched to the new version, and the log check.
#include <unistd.h>

#include <ATen/Parallel.h>
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bench/bench_data.h"
#include "bench/bench_server.h"
#include "bench/bench_util.h"
#include "bench/benchmarks.h"
#include "bench/index_bench.h"
#include "bench/load_generator.h"
#include "core/base/background_priority.h"
#include "core/base/status_macros.h"

namespace optower::bench {
namespace {

namespace fs = std::filesystem;

struct SwapTimes {
  int64_t start_ns, end_ns;
  std::string to;
  absl::Status status;
};

// The measured part: the steady load, the swaps during it, and what the report needs.
struct SwapLoad {
  LoadResult capacity;  // the capacity run (its acks are logged too)
  LoadResult load;
  double rate = 0;
  std::vector<SwapTimes> swaps;
  std::vector<std::string> load_during;  // load averages after each swap
  double others_cores = 0;
};

// The engine's options for the swaps: the server's defaults, the swap's index build threads,
// priority and IVF warm start. InvalidArgument for a bad --swap_priority.
absl::StatusOr<RetrievalEngineOptions> SwapEngineOptions(const Flags& f) {
  RetrievalEngineOptions eo = EngineOptions(
      f, IndexOptions(f.swap_index, f, static_cast<int>(f.swap_build_threads), f.swap_items));
  ASSIGN_OR_RETURN(eo.build_priority, ParseBackgroundPriority(f.swap_priority));
  eo.snapshot.index.ivf_warm_start = f.swap_warm_start;
  eo.snapshot.index.ivf_warm_start_iterations = static_cast<int>(f.swap_warm_iterations);
  return eo;
}

// The initial snapshot (model a) and the in-process server over it, in `dir`.
absl::StatusOr<std::unique_ptr<BenchServer>> StartSwapServer(const Flags& f, const Dataset& ds,
                                                             const std::string& dir) {
  ModelSnapshot::Options so;
  so.index = IndexOptions(f.swap_index, f, static_cast<int>(f.threads), f.swap_items);
  const auto t0 = Clock::now();
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> snap =
      ModelSnapshot::Build("bench-a", ds.model, ds.catalog, 0, so);
  if (!snap.ok()) {
    return absl::Status(snap.status().code(),
                        absl::StrCat("snapshot: ", snap.status().message()));
  }
  Say(absl::StrFormat("initial snapshot built in %.1f s: %s", SecondsSince(t0),
                      (*snap)->index().build_report()));
  // Serving-time settings, as optower-server: one intra-op thread (process-wide).
  at::set_num_threads(1);
  ASSIGN_OR_RETURN(const RetrievalEngineOptions eo, SwapEngineOptions(f));
  absl::StatusOr<std::unique_ptr<BenchServer>> server =
      BenchServer::Start(std::move(*snap), eo, f.swap_logging, dir);
  if (!server.ok()) {
    return absl::Status(server.status().code(),
                        absl::StrCat("server: ", server.status().message()));
  }
  return server;
}

// The steady open-loop load with f.swaps swaps (alternating b, a, ...), each after a window.
SwapLoad RunSwaps(const Flags& f, const Dataset& ds, BenchServer& server, LoadGenerator& gen) {
  SwapLoad out;
  SteadyLoad steady = SteadyRate(gen, f, /*record_acks=*/f.swap_logging, "");
  out.capacity = std::move(steady.capacity);
  out.rate = steady.rate;
  std::atomic<bool> stop{false};
  LoadSpec spec;
  spec.rate_qps = out.rate;
  spec.concurrency = static_cast<int>(f.swap_concurrency);
  spec.k = static_cast<int32_t>(f.k);
  spec.record_acks = f.swap_logging;
  spec.stop = &stop;
  // Bounded: before-window + (swap + gap) per swap, each swap allowed up to 10 minutes.
  spec.duration = absl::Seconds(f.swap_window_s * (f.swaps + 2) + 600.0 * f.swaps);
  spec.max_requests = static_cast<int64_t>(out.rate * absl::ToDoubleSeconds(spec.duration)) + 1000;
  const OthersCpu others;
  std::thread runner([&] { out.load = gen.Run(spec); });
  for (int64_t s = 0; s < f.swaps; ++s) {
    absl::SleepFor(absl::Seconds(f.swap_window_s));
    SwapTimes t;
    t.to = s % 2 == 0 ? "bench-b" : "bench-a";
    // A thread of its own, like the trainer's worker or a Rollback handler; ReplaceModel runs the
    // build at eo.build_priority.
    std::thread swapper([&] {
      at::set_num_threads(1);
      t.start_ns = SteadyNowNs();
      t.status = server.engine().ReplaceModel(t.to, s % 2 == 0 ? ds.model_b : ds.model);
      t.end_ns = SteadyNowNs();
      Say(absl::StrFormat("swap %d -> %s: %s", s + 1, t.to,
                          server.engine().snapshot()->index().build_report()));
    });
    swapper.join();
    out.load_during.push_back(LoadAvg());
    out.swaps.push_back(t);
  }
  absl::SleepFor(absl::Seconds(f.swap_window_s));
  stop.store(true);
  runner.join();
  out.others_cores = others.Cores();
  return out;
}

// The per-swap table; returns the during/before p99 ratios and sets *worst on a missed target.
std::vector<double> PrintSwapTable(const SwapLoad& m, int64_t window_ns, int* worst) {
  const LoadResult& load = m.load;
  Say("\n| swap | to | swap s | p99 before ms (n) | p99 during ms (n) | p99 after ms (n) | "
      "during/before | failed calls | first new-version response after swap start |");
  Say("|---|---|---|---|---|---|---|---|---|");
  const uint32_t tag_a = VersionTag("bench-a"), tag_b = VersionTag("bench-b");
  std::vector<double> ratios;
  for (size_t i = 0; i < m.swaps.size(); ++i) {
    const SwapTimes& t = m.swaps[i];
    const int64_t s0 = t.start_ns - load.t0_ns, s1 = t.end_ns - load.t0_ns;
    const auto before = load.LatencyMs(s0 - window_ns, s0);
    const auto during = load.LatencyMs(s0, s1);
    const auto after = load.LatencyMs(s1, s1 + window_ns);
    int64_t failed = 0;
    double first_new_ms = -1;
    const uint32_t new_tag = t.to == "bench-b" ? tag_b : tag_a;
    for (const CallRecord& r : load.records) {
      if (r.start_ns < s0 - window_ns || r.start_ns >= s1 + window_ns) continue;
      if (r.code != 0) ++failed;
      if (r.code == 0 && r.version == new_tag && r.end_ns >= s0) {
        const double ms = 1e-6 * static_cast<double>(r.end_ns - s0);
        if (first_new_ms < 0 || ms < first_new_ms) first_new_ms = ms;
      }
    }
    const double ratio = before.p99 > 0 ? during.p99 / before.p99 : 0;
    ratios.push_back(ratio);
    if (!t.status.ok() || failed > 0 || ratio > 2.0) *worst = 1;
    Say(absl::StrFormat("| %d | %s | %.2f | %.3f (%d) | %.3f (%d) | %.3f (%d) | %.2f | %d | %s |",
                        i + 1, t.to, 1e-9 * static_cast<double>(t.end_ns - t.start_ns), before.p99,
                        before.n, during.p99, during.n, after.p99, after.n, ratio, failed,
                        t.status.ok() ? absl::StrFormat("%.0f ms", first_new_ms)
                                      : "SWAP FAILED: " + std::string(t.status.message())));
  }
  return ratios;
}

// Pooled over all swaps (every before-window call vs every during-window call: less sensitive to
// one unlucky 10 s window than the per-swap ratios), then the tail in 0.5 s slices around each swap.
void PrintPooledAndSlices(const SwapLoad& m, int64_t window_ns) {
  const LoadResult& load = m.load;
  std::vector<std::pair<int64_t, int64_t>> before_w, during_w;
  for (const SwapTimes& t : m.swaps) {
    const int64_t s0 = t.start_ns - load.t0_ns, s1 = t.end_ns - load.t0_ns;
    before_w.push_back({s0 - window_ns, s0});
    during_w.push_back({s0, s1});
  }
  const auto b = load.LatencyMsIn(before_w), d = load.LatencyMsIn(during_w);
  Say(absl::StrFormat("pooled over %d swaps: p99 before %.3f ms (n=%d), during %.3f ms (n=%d): "
                      "%.2fx; p50 before %.3f, during %.3f ms",
                      m.swaps.size(), b.p99, b.n, d.p99, d.n, b.p99 > 0 ? d.p99 / b.p99 : 0.0,
                      b.p50, d.p50));
  // Where the tail comes from: p99 (and max) in 0.5 s slices around each swap.
  for (size_t i = 0; i < m.swaps.size(); ++i) {
    const int64_t s0 = m.swaps[i].start_ns - load.t0_ns, s1 = m.swaps[i].end_ns - load.t0_ns;
    std::string line = absl::StrFormat("swap %d, p99/max ms per 0.5 s slice from -1 s:", i + 1);
    for (int64_t a = s0 - 1000000000; a < s1 + 1000000000; a += 500000000) {
      const auto q = load.LatencyMs(a, a + 500000000);
      absl::StrAppendFormat(&line, " %s%.1f/%.0f", a >= s0 && a < s1 ? "*" : "", q.p99, q.max);
    }
    Say(line + "   (* = during the swap)");
  }
}

// Everything after the load: tables, the steady load's summary, the log check and the verdict.
void ReportSwaps(const Flags& f, const SwapLoad& m, BenchServer& server) {
  const LoadResult& load = m.load;
  const int64_t window_ns = static_cast<int64_t>(f.swap_window_s * 1e9);
  int worst = 0;
  const std::vector<double> ratios = PrintSwapTable(m, window_ns, &worst);
  PrintPooledAndSlices(m, window_ns);
  const auto all = load.LatencyMs();
  Say(absl::StrFormat(
      "\nsteady load: %d calls issued, %d ok, %d failed, %d unfinished; offered %.0f qps, achieved "
      "%.0f qps; overall p50/p95/p99 %.3f/%.3f/%.3f ms; load during swaps: %s; other processes "
      "%.2f cores on average",
      load.issued, load.ok, load.failed, load.unfinished, m.rate, load.Qps(), all.p50, all.p95,
      all.p99, absl::StrJoin(m.load_during, " | "), m.others_cores));
  if (load.failed > 0) Say("first error: " + load.first_error);
  if (f.swap_logging) {
    const LogCheck lc = CheckLog(*server.log(), {&m.capacity, &load});
    Say(absl::StrFormat("log check: acked %d items, %d rows in the log, %d missing%s",
                        lc.acked_items, lc.log_rows, lc.missing,
                        lc.error.empty() ? "" : " ERROR " + lc.error));
    if (lc.missing > 0) worst = 1;
  }
  Say(absl::StrFormat("swap target (zero failed calls, p99 during <= 2x before): %s; median "
                      "during/before %.2f",
                      worst == 0 ? "MET" : "MISSED", Median(ratios)));
}

}  // namespace

int RunSwap(const Flags& f, const World& world, const Models& models) {
  Say(absl::StrFormat("\n## swap benchmark (in-process RetrievalEngine::ReplaceModel): N=%d, "
                      "index %s (nprobe %d), build threads %d, build priority %s, IVF warm start %s, "
                      "model b %s, logging %s",
                      f.swap_items, f.swap_index, NprobeFor(f, f.swap_items), f.swap_build_threads,
                      f.swap_priority, f.swap_warm_start ? "on" : "off", f.swap_model_b,
                      f.swap_logging ? "on" : "off"));
  at::set_num_threads(static_cast<int>(f.threads));
  absl::StatusOr<Dataset> ds = MakeDataset(f.swap_items, world, models, f);
  if (!ds.ok()) {
    Say(absl::StrCat("dataset: ", ds.status().message()));
    return 1;
  }
  const std::string dir = absl::StrCat(f.work_dir, "/swap-", ::getpid());
  absl::StatusOr<std::unique_ptr<BenchServer>> server = StartSwapServer(f, *ds, dir);
  if (!server.ok()) {
    Say(std::string(server.status().message()));
    return absl::IsInvalidArgument(server.status()) ? 2 : 1;  // 2: a bad --swap_priority
  }
  LoadGenerator gen((*server)->address(), static_cast<int>(f.channels), ds->contexts,
                    static_cast<int>(f.context_features));
  if (!gen.WaitConnected(absl::Seconds(10))) return 1;
  const SwapLoad measured = RunSwaps(f, *ds, **server, gen);
  ReportSwaps(f, measured, **server);
  (void)(*server)->Shutdown();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

}  // namespace optower::bench
