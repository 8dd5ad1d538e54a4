#include "bench/index_bench.h"

#include <omp.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_util.h"
#include "core/storage/event_log.h"
#include "core/storage/sqlite_event_log.h"
#include "core/base/status_macros.h"
#include "optower/v1/optower.pb.h"
#include "server/server_config.h"

namespace optower::bench {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<GroundTruth> ExactTop(const ModelSnapshot& snap, const float* queries, int64_t nq,
                                     int64_t m, int threads) {
  const ItemIndex& idx = snap.index();
  ItemIndexOptions o;
  o.type = ItemIndexOptions::Type::kExact;
  o.threads = threads;
  ASSIGN_OR_RETURN(std::unique_ptr<ItemIndex> exact,
                   ItemIndex::Build(idx.embedding(0), idx.size(), idx.dim(), idx.ids(), o));
  GroundTruth gt;
  gt.nq = nq;
  gt.m = m;
  std::vector<float> scores;
  omp_set_num_threads(threads);
  RETURN_IF_ERROR(exact->SearchBatch(queries, nq, m, &gt.ids, &scores));
  return gt;
}

double RecallAt(const GroundTruth& gt, const std::vector<int64_t>& got, int64_t got_m, int64_t k) {
  int64_t hits = 0;
  for (int64_t q = 0; q < gt.nq; ++q) {
    const int64_t* truth = gt.ids.data() + q * gt.m;
    const int64_t* mine = got.data() + q * got_m;
    for (int64_t a = 0; a < k; ++a) {
      if (mine[a] >= 0 && std::find(truth, truth + k, mine[a]) != truth + k) ++hits;
    }
  }
  return static_cast<double>(hits) / static_cast<double>(gt.nq * k);
}

// Single-query ItemIndex::Search loops on `threads` threads (each call on one thread, as a server
// request does), bounded by time and count.
RawResult RawSearch(const ItemIndex& index, const std::vector<float>& queries, int64_t nq,
                    int64_t m, int threads, double seconds, int64_t max_calls) {
  std::vector<std::vector<double>> lat(static_cast<size_t>(threads));
  std::atomic<int64_t> calls{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      int64_t i = t * 7919;
      while (SecondsSince(t0) < seconds && calls.fetch_add(1) < max_calls) {
        const float* q = queries.data() + (i++ % nq) * index.dim();
        const auto s = Clock::now();
        auto hits = index.Search(q, m);
        lat[static_cast<size_t>(t)].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - s).count());
        if (!hits.ok()) std::abort();
      }
    });
  }
  for (auto& th : pool) th.join();
  const double el = SecondsSince(t0);
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  RawResult r;
  r.calls = static_cast<int64_t>(all.size());
  r.qps = static_cast<double>(all.size()) / el;
  std::sort(all.begin(), all.end());
  if (!all.empty()) {
    r.p50_us = all[all.size() / 2];
    r.p99_us = all[std::min(all.size() - 1, static_cast<size_t>(0.99 * all.size()))];
  }
  return r;
}

// SearchBatch in batches of 256 on `threads` OpenMP threads: FAISS's best-case throughput.
double RawBatchQps(const ItemIndex& index, const std::vector<float>& queries, int64_t nq, int64_t m,
                   int threads, double seconds) {
  omp_set_num_threads(threads);
  const int64_t batch = std::min<int64_t>(256, nq);
  std::vector<int64_t> ids;
  std::vector<float> scores;
  int64_t done = 0, off = 0;
  const auto t0 = Clock::now();
  for (int iter = 0; iter < 100000 && (iter == 0 || SecondsSince(t0) < seconds); ++iter) {
    if (off + batch > nq) off = 0;
    if (!index.SearchBatch(queries.data() + off * index.dim(), batch, m, &ids, &scores).ok()) {
      std::abort();
    }
    off += batch;
    done += batch;
  }
  return static_cast<double>(done) / SecondsSince(t0);
}

// RetrievalEngine::Retrieve (tower + search + sampling; no gRPC, no log) on `threads` threads.
// With `log_dir` non-empty the engine logs to a fresh SQLite event log there (group commit).
double EngineQps(std::shared_ptr<const ModelSnapshot> snap, const RetrievalEngineOptions& options,
                 const Dataset& ds, const Flags& f, int threads, double seconds,
                 const std::string& log_dir = "") {
  std::unique_ptr<EventLog> log;
  if (!log_dir.empty()) {
    fs::create_directories(log_dir);
    v1::ServerConfig cfg;
    cfg.set_data_dir(log_dir);
    cfg.set_dim_context(static_cast<int>(f.context_features));
    server::ApplyServerConfigDefaults(&cfg);
    auto opened = SqliteEventLog::Open(server::EventLogOptionsFromConfig(cfg));
    if (!opened.ok()) std::abort();
    log = std::move(*opened);
  }
  auto engine = RetrievalEngine::Create(options, std::move(snap), log.get());
  if (!engine.ok()) std::abort();
  std::atomic<int64_t> calls{0};
  std::atomic<int64_t> errors{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      RetrieveRequest r;
      r.k = f.k;
      int64_t i = t * 7919;
      while (SecondsSince(t0) < seconds && calls.fetch_add(1) < f.max_requests) {
        const float* x = ds.contexts.data() + (i++ % f.n_contexts) * f.context_features;
        r.context.assign(x, x + f.context_features);
        r.request_id.clear();
        if (!(*engine)->Retrieve(r).ok()) errors.fetch_add(1);
      }
    });
  }
  for (auto& th : pool) th.join();
  const double qps =
      static_cast<double>(std::min(calls.load(), f.max_requests) - errors.load()) / SecondsSince(t0);
  if (errors.load() > 0) Say(absl::StrCat("  engine loop: ", errors.load(), " errors"));
  if (log != nullptr) {
    (void)log->Close();
    log.reset();
    std::error_code ec;
    fs::remove_all(log_dir, ec);
  }
  return qps;
}
}  // namespace

// --ivf_nprobe: one value, or one per --sizes entry.
int64_t NprobeFor(const Flags& f, int64_t n) {
  const std::vector<int64_t> v = ParseIntList(f.ivf_nprobe);
  if (v.empty()) return 16;
  const std::vector<int64_t> sizes = ParseIntList(f.sizes);
  for (size_t i = 0; i < sizes.size() && i < v.size(); ++i) {
    if (sizes[i] == n) return v[i];
  }
  return v.back();
}

ItemIndexOptions IndexOptions(const std::string& type, const Flags& f, int build_threads,
                              int64_t n) {
  v1::ServerConfig cfg;  // the server's defaults, so the bench measures what the server would run
  cfg.set_data_dir("/tmp");
  cfg.set_dim_context(static_cast<int>(f.context_features));
  server::ApplyServerConfigDefaults(&cfg);
  ItemIndexOptions o = server::IndexOptionsFromConfig(cfg);
  o.type = type == "exact" ? ItemIndexOptions::Type::kExact
           : type == "ivf" ? ItemIndexOptions::Type::kIvf
           : type == "hnsw" ? ItemIndexOptions::Type::kHnsw
                            : ItemIndexOptions::Type::kAuto;
  o.ivf_nprobe = static_cast<int>(NprobeFor(f, n));
  o.ivf_nlist = static_cast<int>(f.ivf_nlist);
  o.hnsw_ef_search = static_cast<int>(f.hnsw_ef_search);
  o.threads = build_threads;
  return o;
}

RetrievalEngineOptions EngineOptions(const Flags& f, const ItemIndexOptions& index) {
  v1::ServerConfig cfg;
  cfg.set_data_dir("/tmp");
  cfg.set_dim_context(static_cast<int>(f.context_features));
  server::ApplyServerConfigDefaults(&cfg);
  RetrievalEngineOptions eo = server::EngineOptionsFromConfig(cfg);
  eo.top_m = f.top_m;
  eo.snapshot.index = index;
  return eo;
}

namespace {

// recall@10 and recall@100 of the snapshot's index on the bench's queries against exact search
// (`gt`, computed here on the first call of a size).
absl::Status MeasureRecall(const Flags& f, const Dataset& ds, const ModelSnapshot& snap,
                           std::optional<GroundTruth>* gt, IndexReport* rep) {
  const int threads = static_cast<int>(f.threads);
  const int64_t nq = std::min(f.recall_queries, f.n_contexts);
  if (!gt->has_value()) {
    absl::StatusOr<GroundTruth> g =
        ExactTop(snap, ds.queries.data(), nq, std::min<int64_t>(100, ds.n), threads);
    if (!g.ok()) {
      return absl::Status(g.status().code(), absl::StrCat("ground truth: ", g.status().message()));
    }
    *gt = std::move(*g);
  }
  std::vector<int64_t> ids;
  std::vector<float> scores;
  omp_set_num_threads(threads);
  const int64_t m = (*gt)->m;
  RETURN_IF_ERROR(snap.index().SearchBatch(ds.queries.data(), nq, m, &ids, &scores));
  rep->recall10 = RecallAt(**gt, ids, m, 10);
  rep->recall100 = RecallAt(**gt, ids, m, m);
  return absl::OkStatus();
}

// Raw FAISS loops and the in-process engine (without / with the event log), at serving settings.
void MeasureThroughput(const Flags& f, const Dataset& ds, const IndexRun& run, IndexReport* rep) {
  const int threads = static_cast<int>(f.threads);
  const ItemIndex& index = run.snapshot->index();
  // Serving settings from here on: one intra-op thread, as optower-server.
  at::set_num_threads(1);
  const double raw_s =
      rep->index == "exact" && ds.n >= 1000000 ? f.exact_duration_s : f.raw_duration_s;
  const OthersCpu others_raw;
  rep->raw1 = RawSearch(index, ds.queries, f.n_contexts, f.top_m, 1, raw_s, f.max_requests);
  rep->rawT = RawSearch(index, ds.queries, f.n_contexts, f.top_m, threads, raw_s, f.max_requests);
  rep->batch_qps = RawBatchQps(index, ds.queries, f.n_contexts, f.top_m, threads, raw_s);
  omp_set_num_threads(threads);
  rep->engine_qps = EngineQps(run.snapshot, run.engine_options, ds, f, threads, raw_s);
  rep->engine_log_qps = EngineQps(run.snapshot, run.engine_options, ds, f, threads, raw_s,
                                  absl::StrCat(f.work_dir, "/engine-", ::getpid()));
  rep->others_cores = others_raw.Cores();
}

}  // namespace

absl::StatusOr<IndexRun> MeasureIndex(const Flags& f, const Dataset& ds, const std::string& type,
                                      std::optional<GroundTruth>* gt) {
  const int threads = static_cast<int>(f.threads);
  const int64_t n = ds.n;
  at::set_num_threads(threads);
  IndexRun run;
  IndexReport& rep = run.report;
  ModelSnapshot::Options so;
  so.index = IndexOptions(type, f, threads, n);
  run.engine_options = EngineOptions(f, so.index);
  rep.n = n;
  rep.index = type;
  rep.loadavg = LoadAvg();
  const auto t0 = Clock::now();
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> snap =
      ModelSnapshot::Build("bench-a", ds.model, ds.catalog, 0, so);
  if (!snap.ok()) {
    return absl::Status(snap.status().code(),
                        absl::StrCat("snapshot ", type, ": ", snap.status().message()));
  }
  run.snapshot = std::move(*snap);
  rep.build_s = SecondsSince(t0);
  const ItemIndex& index = run.snapshot->index();
  rep.built = index.type_name();
  rep.recall_build = index.recall_at_10();
  rep.build_report = index.build_report();
  Say(absl::StrFormat("snapshot %s: embed + build %.1f s (load %s): %s", type, rep.build_s,
                      rep.loadavg, rep.build_report));
  RETURN_IF_ERROR(MeasureRecall(f, ds, *run.snapshot, gt, &rep));
  MeasureThroughput(f, ds, run, &rep);
  Say(absl::StrFormat(
      "index %s N=%d: recall@10 %.4f (build-time probe %.4f), recall@100 %.4f; raw Search "
      "1 thread %.0f qps (p50 %.0f us, p99 %.0f us), %d threads %.0f qps; SearchBatch %.0f qps; "
      "engine (no gRPC) %.0f qps without log, %.0f qps with log; other processes %.2f cores",
      type, n, rep.recall10, rep.recall_build, rep.recall100, rep.raw1.qps, rep.raw1.p50_us,
      rep.raw1.p99_us, threads, rep.rawT.qps, rep.batch_qps, rep.engine_qps, rep.engine_log_qps,
      rep.others_cores));
  return run;
}

}  // namespace optower::bench
