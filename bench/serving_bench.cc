// The serving benchmark (part 3 of optower_bench's header comment), preceded per catalog size and
// index type by the index benchmark (index_bench.h): for each (logging off/on, concurrency) an
// in-process gRPC server over the SAME snapshot (BenchServer), a warm-up, a closed loop of `c`
// outstanding Retrieve calls, the server-side latency from GetStats, and with logging on the check
// that every acknowledged item is a row of the log. Then the summary tables (medians over repeats).
#include <unistd.h>

#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_data.h"
#include "bench/bench_server.h"
#include "bench/bench_util.h"
#include "bench/benchmarks.h"
#include "bench/index_bench.h"
#include "bench/load_generator.h"
#include "core/base/status_macros.h"

namespace optower::bench {
namespace {

namespace fs = std::filesystem;

struct ServingRun {
  int64_t n = 0;
  std::string index;
  bool logging = false;
  int64_t concurrency = 0;
  int64_t repeat = 0;
  double qps = 0;
  LoadResult::Quantiles client;
  double s_p50 = 0, s_p95 = 0, s_p99 = 0, s_mean = 0;
  int64_t s_count = 0;
  int64_t ok = 0, failed = 0;
  double cpu_us_per_call = 0;
  double load1 = 0;
  std::string loadavg;
  double others_cores = 0;  // CPU of other processes during the measured run, in cores
  LogCheck log;
};

absl::StatusOr<ServingRun> RunServing(std::shared_ptr<const ModelSnapshot> snap,
                                      const RetrievalEngineOptions& options, const Dataset& ds,
                                      const Flags& f, const std::string& index, bool logging,
                                      int64_t concurrency, int64_t repeat, double duration_s) {
  static int run_id = 0;
  const std::string dir = absl::StrCat(f.work_dir, "/run-", ::getpid(), "-", ++run_id);
  ASSIGN_OR_RETURN(std::unique_ptr<BenchServer> server,
                   BenchServer::Start(std::move(snap), options, logging, dir));
  const int channels = static_cast<int>(std::min<int64_t>(concurrency, f.channels));
  LoadGenerator gen(server->address(), channels, ds.contexts,
                    static_cast<int>(f.context_features));
  if (!gen.WaitConnected(absl::Seconds(10))) return absl::UnavailableError("cannot connect");
  LoadSpec spec;
  spec.concurrency = static_cast<int>(concurrency);
  spec.k = static_cast<int32_t>(f.k);
  spec.record_acks = logging;
  spec.duration = absl::Seconds(f.warmup_s);
  spec.max_requests = f.max_requests;
  const LoadResult warm = gen.Run(spec);
  server->ResetRetrieveLatency();

  ServingRun out;
  out.n = ds.n;
  out.index = index;
  out.logging = logging;
  out.concurrency = concurrency;
  out.repeat = repeat;
  out.load1 = Load1();
  out.loadavg = LoadAvg();
  spec.duration = absl::Seconds(duration_s);
  const OthersCpu others;
  const LoadResult res = gen.Run(spec);
  out.others_cores = others.Cores();
  out.qps = res.Qps();
  out.client = res.LatencyMs();
  out.ok = res.ok;
  out.failed = res.failed + warm.failed + res.unfinished;
  out.cpu_us_per_call = res.ok > 0 ? 1e6 * res.cpu_s / static_cast<double>(res.ok) : 0;
  if (res.failed > 0) Say(absl::StrCat("  failures: ", res.first_error));

  ASSIGN_OR_RETURN(auto client, client::OptowerClient::Connect(ClientOptionsFor(server->address())));
  ASSIGN_OR_RETURN(v1::GetStatsResponse stats, client->GetStats());
  for (const v1::RpcLatency& l : stats.rpc_latency()) {
    if (l.method() != "Retrieve") continue;
    out.s_p50 = l.p50_ms();
    out.s_p95 = l.p95_ms();
    out.s_p99 = l.p99_ms();
    out.s_mean = l.mean_ms();
    out.s_count = l.count();
  }
  if (logging) out.log = CheckLog(*server->log(), {&warm, &res});
  RETURN_IF_ERROR(server->Shutdown());
  server.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return out;
}

std::string RunLine(const ServingRun& r) {
  std::string line = absl::StrFormat(
      "  run N=%d %s log=%s c=%d rep=%d: %.0f qps, client p50/p95/p99 %.3f/%.3f/%.3f ms, "
      "server p50/p95/p99 %.3f/%.3f/%.3f ms (n=%d), ok %d failed %d, cpu %.0f us/call, load %s, "
      "other processes %.2f cores",
      r.n, r.index, r.logging ? "on" : "off", r.concurrency, r.repeat, r.qps, r.client.p50,
      r.client.p95, r.client.p99, r.s_p50, r.s_p95, r.s_p99, r.s_count, r.ok, r.failed,
      r.cpu_us_per_call, r.loadavg, r.others_cores);
  if (r.logging) {
    absl::StrAppendFormat(&line, ", log: acked %d rows %d missing %d%s", r.log.acked_items,
                          r.log.log_rows, r.log.missing,
                          r.log.error.empty() ? "" : " ERROR " + r.log.error);
  }
  return line;
}

constexpr char kCsvHeader[] =
    "n,index,logging,concurrency,repeat,qps,c_p50,c_p95,c_p99,s_p50,s_p95,s_p99,"
    "s_count,ok,failed,cpu_us_per_call,load1,others_cores,acked_items,log_rows,missing\n";

void WriteCsvRow(std::FILE* csv, const ServingRun& run) {
  std::fprintf(csv, "%lld,%s,%s,%lld,%lld,%.1f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%lld,"
                    "%lld,%lld,%.1f,%.2f,%.2f,%lld,%lld,%lld\n",
               (long long)run.n, run.index.c_str(), run.logging ? "on" : "off",
               (long long)run.concurrency, (long long)run.repeat, run.qps, run.client.p50,
               run.client.p95, run.client.p99, run.s_p50, run.s_p95, run.s_p99,
               (long long)run.s_count, (long long)run.ok, (long long)run.failed,
               run.cpu_us_per_call, run.load1, run.others_cores, (long long)run.log.acked_items,
               (long long)run.log.log_rows, (long long)run.log.missing);
  std::fflush(csv);
}

// The serving runs of one index at one size: repeats x concurrency x logging (the order of logging
// off/on alternates between repeats). Appends to `runs` and to `csv` (if not null).
absl::Status RunServingGrid(const Flags& f, const Dataset& ds, const IndexRun& index,
                            std::FILE* csv, std::vector<ServingRun>* runs) {
  const std::string& type = index.report.index;
  const int64_t n = ds.n;
  for (int64_t r = 0; r < f.repeats; ++r) {
    for (int64_t c : ParseIntList(f.concurrency)) {
      if (type == "exact" && n >= 1000000 && c > f.exact_max_concurrency) continue;
      // Alternate the order of logging off/on between repeats.
      std::vector<std::string> order = ParseList(f.logging);
      if (r % 2 == 1) std::reverse(order.begin(), order.end());
      for (const std::string& lg : order) {
        const double dur = type == "exact" && n >= 1000000 ? f.exact_duration_s : f.duration_s;
        absl::StatusOr<ServingRun> run = RunServing(index.snapshot, index.engine_options, ds, f,
                                                    type, lg == "on", c, r, dur);
        if (!run.ok()) {
          return absl::Status(run.status().code(),
                              absl::StrCat("serving run: ", run.status().message()));
        }
        Say(RunLine(*run));
        if (csv != nullptr) WriteCsvRow(csv, *run);
        runs->push_back(*run);
      }
    }
  }
  return absl::OkStatus();
}

// Every size: the dataset, then per index type the index benchmark and the serving runs.
absl::Status RunSizes(const Flags& f, const World& world, const Models& models, std::FILE* csv,
                      std::vector<IndexReport>* reports, std::vector<ServingRun>* runs) {
  const int threads = static_cast<int>(f.threads);
  for (int64_t n : ParseIntList(f.sizes)) {
    Say(absl::StrFormat("\n## N = %d items", n));
    at::set_num_threads(threads);  // dataset + item embedding + builds on all cores
    const auto t0 = Clock::now();
    absl::StatusOr<Dataset> ds = MakeDataset(n, world, models, f);
    if (!ds.ok()) {
      return absl::Status(ds.status().code(), absl::StrCat("dataset: ", ds.status().message()));
    }
    Say(absl::StrFormat(
        "data: %d items in %d clusters (features R^%d, centres N(0,I), within sd %.2f), %d "
        "contexts from %d segments (sd 0.5); %.1f s",
        n, ds->clusters, f.item_features, f.within_sd, f.n_contexts, f.user_segments,
        SecondsSince(t0)));
    std::optional<GroundTruth> gt;
    for (const std::string& type : ParseList(f.indexes)) {
      if (type == "hnsw" && n > f.hnsw_max_items) {
        Say(absl::StrFormat("hnsw at N=%d: skipped (--hnsw_max_items=%d; see the 100k build time)",
                            n, f.hnsw_max_items));
        continue;
      }
      ASSIGN_OR_RETURN(const IndexRun index, MeasureIndex(f, *ds, type, &gt));
      reports->push_back(index.report);
      if (f.serving) RETURN_IF_ERROR(RunServingGrid(f, *ds, index, csv, runs));
    }
  }
  return absl::OkStatus();
}

void PrintIndexTable(const Flags& f, const std::vector<IndexReport>& reports) {
  const int threads = static_cast<int>(f.threads);
  // ---- Summary tables (medians over repeats) ----
  Say("\n### Index: recall and raw FAISS throughput (same index object as served)");
  Say(absl::StrFormat("| N | index | embed+build s | recall@10 (bench queries) | recall@10 (build "
                      "probe) | recall@100 | Search 1 thr qps (p50/p99 us) | Search %d thr qps | "
                      "SearchBatch %d thr qps | engine %d thr qps: no log / log | others' CPU "
                      "(cores) |",
                      threads, threads, threads));
  Say("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const IndexReport& r : reports) {
    Say(absl::StrFormat("| %d | %s | %.1f | %.4f | %.4f | %.4f | %.0f (%.0f/%.0f) | %.0f | %.0f | "
                        "%.0f / %.0f | %.2f |",
                        r.n, r.index, r.build_s, r.recall10, r.recall_build, r.recall100,
                        r.raw1.qps, r.raw1.p50_us, r.raw1.p99_us, r.rawT.qps, r.batch_qps,
                        r.engine_qps, r.engine_log_qps, r.others_cores));
  }
}

// Serving runs grouped by (N, index, logging, c), in table order (N, index, c, logging).
struct Key {
  int64_t n;
  std::string index;
  bool logging;
  int64_t c;
  bool operator<(const Key& o) const {
    return std::tie(n, index, logging, c) < std::tie(o.n, o.index, o.logging, o.c);
  }
};
struct Groups {
  std::map<Key, std::vector<const ServingRun*>> runs;
  std::vector<Key> order;
};

Groups GroupRuns(const std::vector<ServingRun>& runs) {
  Groups g;
  for (const ServingRun& r : runs) {
    Key k{r.n, r.index, r.logging, r.concurrency};
    if (!g.runs.count(k)) g.order.push_back(k);
    g.runs[k].push_back(&r);
  }
  std::sort(g.order.begin(), g.order.end(), [](const Key& a, const Key& b) {
    return std::tie(a.n, a.index, a.c, a.logging) < std::tie(b.n, b.index, b.c, b.logging);
  });
  return g;
}

template <typename Get>
double Med(const std::vector<const ServingRun*>& v, Get get) {
  std::vector<double> x;
  for (const ServingRun* r : v) x.push_back(get(*r));
  return Median(x);
}

void PrintServingTable(const Flags& f, const std::vector<IndexReport>& reports, Groups& groups) {
  Say(absl::StrFormat(
      "\n### Serving (gRPC, in-process server; medians of %d runs; e2e/raw = QPS / raw Search "
      "QPS on %d threads)",
      f.repeats, f.threads));
  Say("| N | index | log | c | QPS | client p50 / p95 / p99 ms | server p50 / p95 / p99 ms | "
      "e2e/raw | CPU us/call | failed | load1 (min-max) | others' CPU (max, cores) |");
  Say("|---|---|---|---|---|---|---|---|---|---|---|---|");
  auto raw_of = [&](int64_t n, const std::string& idx) -> const IndexReport* {
    for (const IndexReport& r : reports) {
      if (r.n == n && r.index == idx) return &r;
    }
    return nullptr;
  };
  for (const Key& k : groups.order) {
    const auto& v = groups.runs[k];
    const IndexReport* raw = raw_of(k.n, k.index);
    const double qps = Med(v, [](const ServingRun& r) { return r.qps; });
    double lo = 1e9, hi = 0, others = 0;
    int64_t failed = 0;
    for (const ServingRun* r : v) {
      lo = std::min(lo, r->load1);
      hi = std::max(hi, r->load1);
      others = std::max(others, r->others_cores);
      failed += r->failed;
    }
    Say(absl::StrFormat(
        "| %d | %s | %s | %d | %.0f | %.3f / %.3f / %.3f | %.3f / %.3f / %.3f | %.2f | %.0f | %d | "
        "%.2f-%.2f | %.2f |",
        k.n, k.index, k.logging ? "on" : "off", k.c, qps,
        Med(v, [](const ServingRun& r) { return r.client.p50; }),
        Med(v, [](const ServingRun& r) { return r.client.p95; }),
        Med(v, [](const ServingRun& r) { return r.client.p99; }),
        Med(v, [](const ServingRun& r) { return r.s_p50; }),
        Med(v, [](const ServingRun& r) { return r.s_p95; }),
        Med(v, [](const ServingRun& r) { return r.s_p99; }),
        raw != nullptr && raw->rawT.qps > 0 ? qps / raw->rawT.qps : 0.0,
        Med(v, [](const ServingRun& r) { return r.cpu_us_per_call; }), failed, lo, hi, others));
  }
}

void PrintLoggingTable(Groups& groups) {
  Say("\n### Logging cost and log completeness (medians; cost = 1 - QPS_on / QPS_off)");
  Say("| N | index | c | QPS off | QPS on | cost | acked items (all runs) | log rows | missing |");
  Say("|---|---|---|---|---|---|---|---|---|");
  for (const Key& k : groups.order) {
    if (!k.logging) continue;
    Key off = k;
    off.logging = false;
    if (!groups.runs.count(off)) continue;
    const double q_on = Med(groups.runs[k], [](const ServingRun& r) { return r.qps; });
    const double q_off = Med(groups.runs[off], [](const ServingRun& r) { return r.qps; });
    int64_t acked = 0, rows = 0, missing = 0;
    for (const ServingRun* r : groups.runs[k]) {
      acked += r->log.acked_items;
      rows += r->log.log_rows;
      missing += r->log.missing;
    }
    Say(absl::StrFormat("| %d | %s | %d | %.0f | %.0f | %.1f%% | %d | %d | %d |", k.n, k.index,
                        k.c, q_off, q_on, 100.0 * (1.0 - q_on / q_off), acked, rows, missing));
  }
}

}  // namespace

int RunServingBench(const Flags& f, const World& world, const Models& models) {
  std::FILE* csv = nullptr;
  if (!f.out_csv.empty()) {
    csv = std::fopen(f.out_csv.c_str(), "w");
    if (csv != nullptr) std::fputs(kCsvHeader, csv);
  }
  std::vector<IndexReport> reports;
  std::vector<ServingRun> runs;
  const absl::Status s = RunSizes(f, world, models, csv, &reports, &runs);
  if (csv != nullptr) std::fclose(csv);
  if (!s.ok()) {
    Say(std::string(s.message()));
    return 1;
  }
  // ---- Summary tables (medians over repeats) ----
  PrintIndexTable(f, reports);
  if (runs.empty()) return 0;
  Groups groups = GroupRuns(runs);
  PrintServingTable(f, reports, groups);
  PrintLoggingTable(groups);
  return 0;
}

}  // namespace optower::bench
