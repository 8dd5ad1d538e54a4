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
// Every loop is bounded by time and count. Load averages, and the CPU that OTHER processes used
// during each measurement (/proc/stat minus this process), are printed next to the numbers.
//
// usage: optower_bench [--sizes 10000,100000,1000000] [--indexes exact,ivf,hnsw]
//                      [--concurrency 1,4,16] [--logging off,on] [--repeats 3] [--duration 5]
//                      [--swap] ...   (--help lists every flag)
#include <fcntl.h>
#include <omp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/load_generator.h"
#include "cli/flag_parser.h"
#include "client/optower_client.h"
#include "core/background_priority.h"
#include "core/csv_io.h"
#include "core/event_log.h"
#include "core/item_index.h"
#include "core/model_snapshot.h"
#include "core/objective.h"
#include "core/policy_learner.h"
#include "core/retrieval_engine.h"
#include "core/sqlite_event_log.h"
#include "core/status_macros.h"
#include "core/two_tower_model.h"
#include "server/admin_service.h"
#include "server/retrieval_service.h"
#include "server/server_config.h"
#include "server/server_metrics.h"

namespace optower::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------------------------------------
// Flags
// ------------------------------------------------------------------------------------------------

struct Flags {
  std::string sizes = "10000,100000,1000000";
  std::string indexes = "exact,ivf,hnsw";
  std::string concurrency = "1,4,16";
  std::string logging = "off,on";
  int64_t repeats = 3;
  double duration_s = 5;
  double warmup_s = 1;
  int64_t max_requests = 200000;
  int64_t channels = 4;
  int64_t threads = 2;  // cores used: raw FAISS loops, engine loops, index builds
  int64_t k = 10;
  int64_t top_m = 100;
  int64_t dim = 64;
  int64_t item_features = 16;
  int64_t context_features = 16;
  int64_t items_per_cluster = 1000;
  double within_sd = 0.15;
  int64_t user_segments = 32;
  std::string model = "trained";  // trained | random
  int64_t train_rounds = 40000;
  int64_t n_contexts = 4096;
  int64_t recall_queries = 1000;
  int64_t hnsw_max_items = 100000;   // HNSW above this is skipped (build cost; DESIGN §2)
  int64_t exact_max_concurrency = 16;
  double exact_duration_s = 5;
  std::string ivf_nprobe = "16";
  int64_t ivf_nlist = 0;
  int64_t hnsw_ef_search = 128;
  double raw_duration_s = 3;
  std::string work_dir = "/tmp/optower_bench";
  std::string out_csv;
  // Swap benchmark.
  bool swap = false;
  bool serving = true;
  int64_t swap_items = 100000;
  std::string swap_index = "ivf";
  double swap_rate = 0;           // 0 = swap_load_fraction x the measured closed-loop capacity
  double swap_load_fraction = 0.5;
  int64_t swap_concurrency = 64;  // cap on outstanding calls in the open loop
  double swap_window_s = 10;      // before-window length and gap between swaps
  int64_t swaps = 3;
  int64_t swap_build_threads = 1;
  bool swap_logging = true;
  // OS priority of the swap's build and (rpc) of training jobs: the engine's build_priority /
  // the server's background_priority (core/background_priority.h).
  std::string swap_priority = "idle";
  // Model b of the swaps: "retrain" = model a retrained on a fresh log (what the trainer publishes);
  // "independent" = trained from scratch with another seed (an unrelated model).
  std::string swap_model_b = "retrain";
  bool swap_warm_start = true;  // the index build's ivf_warm_start
  int64_t swap_warm_iterations = 0;  // its ivf_warm_start_iterations
  // "engine": in-process RetrievalEngine::ReplaceModel; "rpc": a real optower-server child process,
  // swaps through the admin RPCs (TriggerRetrain with force, then Rollback twice).
  std::string swap_via = "engine";
  std::string server_binary;  // for --swap_via rpc
  int64_t seed_requests = 600;   // rpc: Retrieve + Feedback calls before the load (training data)
  int64_t train_epochs = 2;      // rpc: the trainer's policy epochs
  // Cross-check: the same closed-loop runs against a real optower-server child process.
  int64_t crosscheck_items = 0;  // 0 = off
  std::string crosscheck_index = "ivf";
};

std::vector<int64_t> ParseIntList(const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (absl::SimpleAtoi(part, &v)) out.push_back(v);
  }
  return out;
}

std::vector<std::string> ParseList(const std::string& text) {
  return absl::StrSplit(text, ',', absl::SkipEmpty());
}

std::string LoadAvg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return absl::StrCat(a, " ", b, " ", c);
}

double Load1() {
  std::ifstream in("/proc/loadavg");
  double a = 0;
  in >> a;
  return a;
}

// Busy CPU seconds of the whole machine since boot (/proc/stat: user+nice+system+irq+softirq+steal).
double MachineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  in >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
}

double OwnCpuSeconds() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// CPU used by OTHER processes (in cores) over an interval: the contamination of a measurement.
class OthersCpu {
 public:
  OthersCpu() : busy0_(MachineBusySeconds()), own0_(OwnCpuSeconds()), t0_(Clock::now()) {}
  double Cores() const {
    const double wall = std::chrono::duration<double>(Clock::now() - t0_).count();
    if (wall <= 0) return 0;
    return std::max(0.0, (MachineBusySeconds() - busy0_) - (OwnCpuSeconds() - own0_)) / wall;
  }

 private:
  double busy0_, own0_;
  Clock::time_point t0_;
};

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// ------------------------------------------------------------------------------------------------
// Data: clustered item features, segmented contexts, towers
// ------------------------------------------------------------------------------------------------

struct Dataset {
  int64_t n = 0;
  int64_t clusters = 0;
  ItemCatalog catalog;
  std::vector<float> contexts;  // [n_contexts, context_features]
  std::shared_ptr<const TwoTowerModel> model;    // "bench-a"
  std::shared_ptr<const TwoTowerModel> model_b;  // "bench-b" (swap)
  std::vector<float> queries;   // u(contexts) of `model`, [n_contexts, dim]
  std::string model_note;
};

// The generative world shared by every catalog size: kUniverse cluster centres of item features,
// user segments of contexts, and the true expected reward
//   q(x, a) = sigmoid(x^T W f_a / 4 - 1)     (bilinear: a two-tower model can represent it).
constexpr int64_t kUniverse = 1000;

struct World {
  int64_t df = 0, dc = 0;
  std::vector<float> centres;   // [kUniverse, df], N(0, I)
  std::vector<float> segments;  // [user_segments, dc], N(0, I)
  std::vector<float> w;         // [dc, df], N(0, 1)
};

World MakeWorld(const Flags& f) {
  World w;
  w.df = f.item_features;
  w.dc = f.context_features;
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  w.centres.resize(static_cast<size_t>(kUniverse * w.df));
  for (float& c : w.centres) c = normal(rng);
  w.segments.resize(static_cast<size_t>(f.user_segments * w.dc));
  for (float& c : w.segments) c = normal(rng);
  w.w.resize(static_cast<size_t>(w.dc * w.df));
  for (float& c : w.w) c = normal(rng);
  return w;
}

// n items from the first `clusters` centres (cluster chosen uniformly), within-cluster sd.
ItemCatalog MakeItems(const World& w, int64_t n, int64_t clusters, double within_sd,
                      int64_t first_id, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> pick(0, clusters - 1);
  ItemCatalog items;
  items.dim_features = w.df;
  items.ids.resize(static_cast<size_t>(n));
  items.features.resize(static_cast<size_t>(n * w.df));
  for (int64_t i = 0; i < n; ++i) {
    items.ids[static_cast<size_t>(i)] = first_id + i;
    const float* c = w.centres.data() + pick(rng) * w.df;
    float* x = items.features.data() + i * w.df;
    for (int64_t j = 0; j < w.df; ++j) x[j] = c[j] + static_cast<float>(within_sd) * normal(rng);
  }
  return items;
}

std::vector<float> MakeContexts(const World& w, int64_t n, int64_t segments, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> pick(0, segments - 1);
  std::vector<float> x(static_cast<size_t>(n * w.dc));
  for (int64_t i = 0; i < n; ++i) {
    const float* s = w.segments.data() + pick(rng) * w.dc;
    for (int64_t j = 0; j < w.dc; ++j) x[i * w.dc + j] = s[j] + 0.5f * normal(rng);
  }
  return x;
}

// A served model: "trained" = optower's learner (objective dm: q̂ two-tower fitted by BCE, policy =
// its towers) on `rounds` logged rounds with uniform logging over a 4,000-item sample of the whole
// universe and Bernoulli rewards from q; "random" = randomly initialised towers (what
// optower-server serves before its first training).
// With `init`, the model is a retrain of `init` as optower-server's trainer does it (objective dr,
// policy warm-started from the served model, 2 epochs) on a fresh log.
absl::StatusOr<TwoTowerModel> MakeModel(const World& w, const Flags& f, uint64_t seed,
                                        std::string* note, const TwoTowerModel* init = nullptr) {
  TwoTowerConfig mc;
  mc.dim_context = w.dc;
  mc.dim_item = w.df;
  mc.hidden = {64};
  mc.embedding_dim = f.dim;
  mc.activation = "relu";
  mc.temperature = 1.0;
  if (f.model == "random") {
    *note = absl::StrFormat("random towers (MLP %d->64->%d relu, seed %d)", w.df, f.dim, seed);
    return TwoTowerModel::Create(mc, {}, seed);
  }
  const auto t0 = Clock::now();
  const int64_t n_train_items = 4000;
  ItemCatalog items = MakeItems(w, n_train_items, kUniverse, f.within_sd, 0, 100 + seed);
  BanditLog log;
  log.dim_context = w.dc;
  log.contexts = MakeContexts(w, f.train_rounds, f.user_segments, 200 + seed);
  std::mt19937_64 rng(300 + seed);
  std::uniform_int_distribution<int64_t> pick(0, n_train_items - 1);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  double mean_q = 0;
  for (int64_t i = 0; i < f.train_rounds; ++i) {
    const int64_t a = pick(rng);
    const float* x = log.context(i);
    const float* fa = items.feature(a);
    double s = 0;
    for (int64_t r = 0; r < w.dc; ++r) {
      double row = 0;
      for (int64_t c = 0; c < w.df; ++c) row += double(w.w[r * w.df + c]) * fa[c];
      s += double(x[r]) * row;
    }
    const double q = 1.0 / (1.0 + std::exp(-(s / 4.0 - 1.0)));
    mean_q += q;
    log.actions.push_back(a);
    log.rewards.push_back(unif(rng) < q ? 1.0f : 0.0f);
    log.pscores.push_back(1.0f / static_cast<float>(n_train_items));
  }
  PolicyLearnerOptions o;
  o.objective = init != nullptr ? Objective::kDr : Objective::kDm;
  o.init = init;
  o.hidden = {64};
  o.embedding_dim = f.dim;
  o.temperature = 0.1;
  o.epochs = init != nullptr ? 2 : 1;
  o.reward_model.hidden = {64};
  o.reward_model.embedding_dim = f.dim;
  o.reward_model.epochs = 20;
  o.reward_model.seed = seed;
  o.seed = seed;
  o.threads = static_cast<int>(f.threads);
  ASSIGN_OR_RETURN(PolicyTrainResult r, TrainPolicy(log, items, o));
  *note = absl::StrFormat(
      "towers MLP %d->64->%d relu trained by optower's learner (%s, seed %d) on %d "
      "uniformly logged rounds over a %d-item sample, true q(x,a) = sigmoid(x'Wf/4 - 1) (mean %.3f); "
      "trained in %.1f s",
      w.df, f.dim,
      init != nullptr ? "objective dr, 2 epochs warm-started from model a, as the trainer retrains"
                      : "objective dm",
      seed, f.train_rounds, n_train_items, mean_q / f.train_rounds,
      SecondsSince(t0));
  return std::move(r.policy);
}

struct Models {
  std::shared_ptr<const TwoTowerModel> a, b;
  std::string note_a, note_b;
};

absl::StatusOr<Dataset> MakeDataset(int64_t n, const World& w, const Models& m, const Flags& f) {
  Dataset ds;
  ds.n = n;
  ds.clusters = std::clamp<int64_t>(n / std::max<int64_t>(1, f.items_per_cluster), 10, kUniverse);
  ds.catalog = MakeItems(w, n, ds.clusters, f.within_sd, 1000000, 1000 + static_cast<uint64_t>(n));
  ds.contexts = MakeContexts(w, f.n_contexts, f.user_segments, 77);
  ds.model = m.a;
  ds.model_b = m.b;
  ds.model_note = m.note_a;
  ASSIGN_OR_RETURN(ds.queries, ds.model->EmbedContexts(ds.contexts.data(), f.n_contexts));
  return ds;
}

absl::StatusOr<Models> MakeModels(const World& w, const Flags& f, bool need_b) {
  Models m;
  ASSIGN_OR_RETURN(TwoTowerModel a, MakeModel(w, f, 1, &m.note_a));
  m.a = std::make_shared<const TwoTowerModel>(std::move(a));
  if (need_b) {
    ASSIGN_OR_RETURN(TwoTowerModel b,
                     MakeModel(w, f, 2, &m.note_b,
                               f.swap_model_b == "retrain" ? m.a.get() : nullptr));
    m.b = std::make_shared<const TwoTowerModel>(std::move(b));
  }
  return m;
}

// ------------------------------------------------------------------------------------------------
// Index evaluation: recall on the bench's queries, raw FAISS throughput
// ------------------------------------------------------------------------------------------------

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

struct GroundTruth {
  int64_t nq = 0;
  int64_t m = 0;
  std::vector<int64_t> ids;  // [nq, m] exact top-m
};

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

struct RawResult {
  double qps = 0;
  double p50_us = 0, p99_us = 0;
  int64_t calls = 0;
};

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

// ------------------------------------------------------------------------------------------------
// In-process server: the server library's services over a given snapshot
// ------------------------------------------------------------------------------------------------

class BenchServer {
 public:
  static absl::StatusOr<std::unique_ptr<BenchServer>> Start(
      std::shared_ptr<const ModelSnapshot> snap, const RetrievalEngineOptions& options,
      bool logging, const std::string& data_dir) {
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

  ~BenchServer() { (void)Shutdown(); }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  RetrievalEngine& engine() { return *engine_; }
  EventLog* log() { return log_.get(); }

  // Forgets the server-side Retrieve latencies recorded so far (after the warm-up). Only call
  // when no Retrieve is in flight: the histogram is replaced in place (the services hold a pointer
  // to metrics_, which stays valid).
  void ResetRetrieveLatency() {
    std::destroy_at(&metrics_.retrieve);
    new (&metrics_.retrieve) server::LatencyHistogram();
  }

  absl::Status Shutdown() {
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

client::ClientOptions ClientOptionsFor(const std::string& address) {
  client::ClientOptions o;
  o.address = address;
  return o;
}

// Every acknowledged (request_id, item_id) must be a row of the log.
struct LogCheck {
  int64_t acked_items = 0;
  int64_t log_rows = 0;
  int64_t missing = 0;
  int64_t max_served_id = 0;
  std::string error;
};

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

// ------------------------------------------------------------------------------------------------
// Serving runs
// ------------------------------------------------------------------------------------------------

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

struct IndexReport {
  int64_t n = 0;
  std::string index;
  std::string built;  // type actually built
  double build_s = 0;
  double recall_build = 0;
  double recall10 = 0, recall100 = 0;
  RawResult raw1, rawT;
  double batch_qps = 0;
  double engine_qps = 0;
  double engine_log_qps = 0;
  double others_cores = 0;  // other processes' CPU during the raw/engine measurements
  std::string loadavg;
  std::string build_report;
};

// ------------------------------------------------------------------------------------------------
// Swap benchmark
// ------------------------------------------------------------------------------------------------

// The swap benchmarks' steady open-loop rate: --swap_rate, else --swap_load_fraction x the
// closed-loop capacity at 16 outstanding calls measured now (3 s); both are printed. `where` is
// appended to the capacity's description. The capacity run is returned too (its acks are logged).
struct SteadyLoad {
  LoadResult capacity;
  double rate = 0;
};
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
  ModelSnapshot::Options so;
  so.index = IndexOptions(f.swap_index, f, static_cast<int>(f.threads), f.swap_items);
  auto t0 = Clock::now();
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> snap =
      ModelSnapshot::Build("bench-a", ds->model, ds->catalog, 0, so);
  if (!snap.ok()) {
    Say(absl::StrCat("snapshot: ", snap.status().message()));
    return 1;
  }
  Say(absl::StrFormat("initial snapshot built in %.1f s: %s", SecondsSince(t0),
                      (*snap)->index().build_report()));
  // Serving-time settings, as optower-server: one intra-op thread (process-wide).
  at::set_num_threads(1);

  v1::ServerConfig cfg;
  cfg.set_data_dir("/tmp");
  cfg.set_dim_context(static_cast<int>(f.context_features));
  server::ApplyServerConfigDefaults(&cfg);
  RetrievalEngineOptions eo = server::EngineOptionsFromConfig(cfg);
  eo.top_m = f.top_m;
  eo.snapshot.index =
      IndexOptions(f.swap_index, f, static_cast<int>(f.swap_build_threads), f.swap_items);
  absl::StatusOr<BackgroundPriority> priority = ParseBackgroundPriority(f.swap_priority);
  if (!priority.ok()) {
    Say(std::string(priority.status().message()));
    return 2;
  }
  eo.build_priority = *priority;
  eo.snapshot.index.ivf_warm_start = f.swap_warm_start;
  eo.snapshot.index.ivf_warm_start_iterations = static_cast<int>(f.swap_warm_iterations);

  const std::string dir = absl::StrCat(f.work_dir, "/swap-", ::getpid());
  absl::StatusOr<std::unique_ptr<BenchServer>> server =
      BenchServer::Start(*snap, eo, f.swap_logging, dir);
  if (!server.ok()) {
    Say(absl::StrCat("server: ", server.status().message()));
    return 1;
  }
  snap->reset();
  LoadGenerator gen((*server)->address(), static_cast<int>(f.channels), ds->contexts,
                    static_cast<int>(f.context_features));
  if (!gen.WaitConnected(absl::Seconds(10))) return 1;

  const SteadyLoad steady = SteadyRate(gen, f, /*record_acks=*/f.swap_logging, "");
  const LoadResult& capacity = steady.capacity;
  const double rate = steady.rate;

  std::atomic<bool> stop{false};
  struct SwapTimes {
    int64_t start_ns, end_ns;
    std::string to;
    absl::Status status;
  };
  std::vector<SwapTimes> swaps;
  LoadSpec spec;
  spec.rate_qps = rate;
  spec.concurrency = static_cast<int>(f.swap_concurrency);
  spec.k = static_cast<int32_t>(f.k);
  spec.record_acks = f.swap_logging;
  spec.stop = &stop;
  // Bounded: before-window + (swap + gap) per swap, each swap allowed up to 10 minutes.
  spec.duration = absl::Seconds(f.swap_window_s * (f.swaps + 2) + 600.0 * f.swaps);
  spec.max_requests = static_cast<int64_t>(rate * absl::ToDoubleSeconds(spec.duration)) + 1000;
  LoadResult load;
  const OthersCpu others;
  std::thread runner([&] { load = gen.Run(spec); });
  const int64_t origin = SteadyNowNs();
  std::vector<std::string> load_during;
  for (int64_t s = 0; s < f.swaps; ++s) {
    absl::SleepFor(absl::Seconds(f.swap_window_s));
    SwapTimes t;
    t.to = s % 2 == 0 ? "bench-b" : "bench-a";
    // A thread of its own, like the trainer's worker or a Rollback handler; ReplaceModel runs the
    // build at eo.build_priority.
    std::thread swapper([&] {
      at::set_num_threads(1);
      t.start_ns = SteadyNowNs();
      t.status = (*server)->engine().ReplaceModel(t.to, s % 2 == 0 ? ds->model_b : ds->model);
      t.end_ns = SteadyNowNs();
      Say(absl::StrFormat("swap %d -> %s: %s", s + 1, t.to,
                          (*server)->engine().snapshot()->index().build_report()));
    });
    swapper.join();
    load_during.push_back(LoadAvg());
    swaps.push_back(t);
  }
  absl::SleepFor(absl::Seconds(f.swap_window_s));
  stop.store(true);
  runner.join();
  const double others_cores = others.Cores();
  (void)origin;

  const int64_t window_ns = static_cast<int64_t>(f.swap_window_s * 1e9);
  int worst = 0;
  Say("\n| swap | to | swap s | p99 before ms (n) | p99 during ms (n) | p99 after ms (n) | "
      "during/before | failed calls | first new-version response after swap start |");
  Say("|---|---|---|---|---|---|---|---|---|");
  const uint32_t tag_a = VersionTag("bench-a"), tag_b = VersionTag("bench-b");
  std::vector<double> ratios;
  for (size_t i = 0; i < swaps.size(); ++i) {
    const SwapTimes& t = swaps[i];
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
    if (!t.status.ok() || failed > 0 || ratio > 2.0) worst = 1;
    Say(absl::StrFormat("| %d | %s | %.2f | %.3f (%d) | %.3f (%d) | %.3f (%d) | %.2f | %d | %s |",
                        i + 1, t.to, 1e-9 * static_cast<double>(t.end_ns - t.start_ns), before.p99,
                        before.n, during.p99, during.n, after.p99, after.n, ratio, failed,
                        t.status.ok() ? absl::StrFormat("%.0f ms", first_new_ms)
                                      : "SWAP FAILED: " + std::string(t.status.message())));
  }
  // Pooled over all swaps: every before-window call vs every during-window call (less sensitive to
  // one unlucky 10 s window than the per-swap ratios).
  {
    std::vector<std::pair<int64_t, int64_t>> before_w, during_w;
    for (const SwapTimes& t : swaps) {
      const int64_t s0 = t.start_ns - load.t0_ns, s1 = t.end_ns - load.t0_ns;
      before_w.push_back({s0 - window_ns, s0});
      during_w.push_back({s0, s1});
    }
    const auto b = load.LatencyMsIn(before_w), d = load.LatencyMsIn(during_w);
    Say(absl::StrFormat("pooled over %d swaps: p99 before %.3f ms (n=%d), during %.3f ms (n=%d): "
                        "%.2fx; p50 before %.3f, during %.3f ms",
                        swaps.size(), b.p99, b.n, d.p99, d.n, b.p99 > 0 ? d.p99 / b.p99 : 0.0,
                        b.p50, d.p50));
  }
  // Where the tail comes from: p99 (and max) in 0.5 s slices around each swap.
  for (size_t i = 0; i < swaps.size(); ++i) {
    const int64_t s0 = swaps[i].start_ns - load.t0_ns, s1 = swaps[i].end_ns - load.t0_ns;
    std::string line = absl::StrFormat("swap %d, p99/max ms per 0.5 s slice from -1 s:", i + 1);
    for (int64_t a = s0 - 1000000000; a < s1 + 1000000000; a += 500000000) {
      const auto q = load.LatencyMs(a, a + 500000000);
      absl::StrAppendFormat(&line, " %s%.1f/%.0f", a >= s0 && a < s1 ? "*" : "", q.p99, q.max);
    }
    Say(line + "   (* = during the swap)");
  }
  const auto all = load.LatencyMs();
  Say(absl::StrFormat(
      "\nsteady load: %d calls issued, %d ok, %d failed, %d unfinished; offered %.0f qps, achieved "
      "%.0f qps; overall p50/p95/p99 %.3f/%.3f/%.3f ms; load during swaps: %s; other processes "
      "%.2f cores on average",
      load.issued, load.ok, load.failed, load.unfinished, rate, load.Qps(), all.p50, all.p95,
      all.p99, absl::StrJoin(load_during, " | "), others_cores));
  if (load.failed > 0) Say("first error: " + load.first_error);
  if (f.swap_logging) {
    const LogCheck lc = CheckLog(*(*server)->log(), {&capacity, &load});
    Say(absl::StrFormat("log check: acked %d items, %d rows in the log, %d missing%s",
                        lc.acked_items, lc.log_rows, lc.missing,
                        lc.error.empty() ? "" : " ERROR " + lc.error));
    if (lc.missing > 0) worst = 1;
  }
  Say(absl::StrFormat("swap target (zero failed calls, p99 during <= 2x before): %s; median "
                      "during/before %.2f",
                      worst == 0 ? "MET" : "MISSED", Median(ratios)));
  (void)(*server)->Shutdown();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}


// ------------------------------------------------------------------------------------------------
// Swap benchmark through the admin RPCs of a real optower-server process
// ------------------------------------------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  std::string address;
};

// Starts `binary --config config` with stdout on a pipe and stderr appended to `stderr_path`;
// waits (bounded) for "optower-server listening on HOST:PORT".
absl::StatusOr<Child> StartServerProcess(const std::string& binary, const std::string& config,
                                         const std::string& stderr_path, absl::Duration timeout) {
  int fds[2];
  if (::pipe(fds) != 0) return absl::InternalError("pipe");
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork");
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) ::dup2(err, 2);
    ::execl(binary.c_str(), binary.c_str(), "--config", config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  Child c;
  c.pid = pid;
  std::string buf;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    struct pollfd pfd = {fds[0], POLLIN, 0};
    if (::poll(&pfd, 1, 200) <= 0) continue;
    char tmp[512];
    const ssize_t got = ::read(fds[0], tmp, sizeof(tmp));
    if (got <= 0) break;
    buf.append(tmp, static_cast<size_t>(got));
    const std::string key = "listening on ";
    const size_t at = buf.find(key);
    if (at != std::string::npos) {
      const size_t eol = buf.find('\n', at);
      if (eol != std::string::npos) {
        c.address = buf.substr(at + key.size(), eol - at - key.size());
        ::close(fds[0]);  // the server prints nothing else on stdout
        return c;
      }
    }
  }
  ::close(fds[0]);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return absl::UnavailableError(absl::StrCat("optower-server did not start; see ", stderr_path));
}

// SIGTERM (graceful: drain, flush the log), bounded wait, then SIGKILL. Returns the exit status.
int StopServerProcess(pid_t pid) {
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 600; ++i) {  // 60 s
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -9;
}

double TrueQ(const World& w, const float* x, const float* fa) {
  double s = 0;
  for (int64_t r = 0; r < w.dc; ++r) {
    double row = 0;
    for (int64_t c = 0; c < w.df; ++c) row += double(w.w[r * w.df + c]) * fa[c];
    s += double(x[r]) * row;
  }
  return 1.0 / (1.0 + std::exp(-(s / 4.0 - 1.0)));
}

int RunSwapRpc(const Flags& f, const World& world, const Models& models) {
  Say(absl::StrFormat("\n## swap benchmark through the admin RPCs: optower-server process, N=%d, "
                      "index %s (nprobe %d), index build threads %d, background priority %s, "
                      "IVF warm start %s",
                      f.swap_items, f.swap_index, NprobeFor(f, f.swap_items),
                      f.swap_build_threads, f.swap_priority, f.swap_warm_start ? "on" : "off"));
  if (f.server_binary.empty()) {
    Say("--swap_via rpc needs --server_binary");
    return 2;
  }
  absl::StatusOr<Dataset> ds = MakeDataset(f.swap_items, world, models, f);
  if (!ds.ok()) return 1;
  const std::string dir = absl::StrCat(f.work_dir, "/swap-rpc-", ::getpid());
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir + "/model-a");
  if (auto s = WriteItemsCsv(dir + "/items.csv", ds->catalog); !s.ok()) return 1;
  if (auto s = ds->model->Save(dir + "/model-a"); !s.ok()) {
    Say(absl::StrCat("save: ", s.message()));
    return 1;
  }
  const std::string config = dir + "/server.textproto";
  {
    std::ofstream out(config);
    out << "host: \"127.0.0.1\"\nport: 0\n"
        << "data_dir: \"" << dir << "/data\"\n"
        << "items_path: \"" << dir << "/items.csv\"\n"
        << "model_dir: \"" << dir << "/model-a\"\n"
        << "index { type: " << (f.swap_index == "exact" ? "EXACT" : f.swap_index == "hnsw" ? "HNSW" : "IVF")
        << " ivf_nprobe: " << NprobeFor(f, f.swap_items)
        << " build_threads: " << f.swap_build_threads
        << (f.swap_warm_start ? "" : " ivf_cold_rebuild: true") << " }\n"
        << "background_priority: \"" << f.swap_priority << "\"\n"
        << "trainer { epochs: " << f.train_epochs
        << " reward_model_epochs: 5 threads: 1 min_events: 100 }\n";
  }
  const auto t_start = Clock::now();
  absl::StatusOr<Child> child = StartServerProcess(f.server_binary, config, dir + "/server.stderr",
                                                   absl::Minutes(10));
  if (!child.ok()) {
    Say(std::string(child.status().message()));
    return 1;
  }
  Say(absl::StrFormat("server pid %d on %s, started in %.1f s (embed + index build); config %s",
                      child->pid, child->address, SecondsSince(t_start), config));
  auto client_or = client::OptowerClient::Connect(ClientOptionsFor(child->address));
  if (!client_or.ok()) return 1;
  client::OptowerClient& admin = **client_or;

  // Training data: Retrieve + Feedback with Bernoulli(q) rewards.
  LoadResult seeded;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  int64_t feedback_sent = 0, feedback_accepted = 0;
  for (int64_t i = 0; i < f.seed_requests; ++i) {
    const float* x = ds->contexts.data() + (i % f.n_contexts) * f.context_features;
    std::vector<float> ctx(x, x + f.context_features);
    auto r = admin.Retrieve(ctx, static_cast<int32_t>(f.k));
    if (!r.ok()) {
      Say(absl::StrCat("seed retrieve: ", r.status().message()));
      break;
    }
    Ack ack;
    ack.request_id = r->request_id();
    v1::FeedbackRequest fb;
    for (const v1::RetrievedItem& item : r->items()) {
      ack.item_ids.push_back(item.item_id());
      const float* fa = ds->catalog.feature(item.item_id() - 1000000);
      v1::FeedbackEvent* e = fb.add_events();
      e->set_request_id(r->request_id());
      e->set_item_id(item.item_id());
      e->set_reward(unif(rng) < TrueQ(world, x, fa) ? 1.0 : 0.0);
    }
    seeded.acks.push_back(std::move(ack));
    auto fr = admin.Feedback(fb);
    feedback_sent += fb.events_size();
    if (fr.ok()) feedback_accepted += fr->accepted();
  }
  Say(absl::StrFormat("seeded %d requests, feedback %d sent / %d accepted", f.seed_requests,
                      feedback_sent, feedback_accepted));

  LoadGenerator gen(child->address, static_cast<int>(f.channels), ds->contexts,
                    static_cast<int>(f.context_features));
  if (!gen.WaitConnected(absl::Seconds(10))) return 1;
  const SteadyLoad steady = SteadyRate(gen, f, /*record_acks=*/true, ", separate server process");
  const LoadResult& capacity = steady.capacity;
  const double rate = steady.rate;

  std::atomic<bool> stop{false};
  LoadSpec spec;
  spec.rate_qps = rate;
  spec.concurrency = static_cast<int>(f.swap_concurrency);
  spec.k = static_cast<int32_t>(f.k);
  spec.record_acks = true;
  spec.stop = &stop;
  spec.duration = absl::Seconds(f.swap_window_s * 6 + 1800);
  spec.max_requests = static_cast<int64_t>(rate * absl::ToDoubleSeconds(spec.duration)) + 1000;
  LoadResult load;
  std::thread runner([&] { load = gen.Run(spec); });

  struct Op {
    std::string what, to;
    int64_t start_ns = 0, end_ns = 0;
    int64_t before_end_ns = 0;  // the "before" window ends here (0 = at start_ns)
    absl::Status status;
    std::string note;
  };
  std::vector<Op> ops;
  client::CallOptions longcall;
  longcall.deadline = absl::Minutes(20);

  absl::SleepFor(absl::Seconds(f.swap_window_s));
  std::string old_version, new_version;
  {
    auto listed = admin.ListModels();
    if (listed.ok()) old_version = listed->serving_version();
  }
  // 1. retrain with force: training, then publish (re-embed + index build + swap).
  {
    Op train, publish;
    train.what = "retrain job: training (until the publish phase)";
    publish.what = "retrain job: publish (re-embed, build, swap)";
    train.start_ns = SteadyNowNs();
    auto job = admin.TriggerRetrain(/*force=*/true);
    if (!job.ok()) {
      train.status = job.status();
      train.end_ns = SteadyNowNs();
      ops.push_back(train);
    } else {
      std::string decision, reason;
      absl::Status watched = admin.WatchTraining(
          *job,
          [&](const v1::TrainingEvent& e) {
            const int64_t now = SteadyNowNs();
            if (e.phase() == "publish" && publish.start_ns == 0) {
              publish.start_ns = now;
              train.end_ns = now;
            }
            if (e.final()) {
              if (publish.start_ns != 0) publish.end_ns = now;
              if (train.end_ns == 0) train.end_ns = now;
              decision = e.decision();
              reason = e.reason();
              new_version = e.new_version();
            }
          },
          longcall);
      train.status = watched;
      train.note = absl::StrCat("job ", *job, ": ", decision, " ", new_version);
      publish.to = new_version;
      publish.before_end_ns = train.start_ns;  // steady state before the job, not training
      ops.push_back(train);
      if (publish.start_ns != 0) ops.push_back(publish);
      Say(absl::StrFormat("retrain %s: decision %s, version %s; %s", *job, decision, new_version,
                          reason.substr(0, 160)));
    }
  }
  // 2./3. Rollback to the imported version and forward again: pure swaps.
  for (const std::string& to : {old_version, new_version}) {
    if (to.empty()) continue;
    absl::SleepFor(absl::Seconds(f.swap_window_s));
    Op op;
    op.what = "rollback";
    op.to = to;
    op.start_ns = SteadyNowNs();
    op.status = admin.Rollback(to, longcall);
    op.end_ns = SteadyNowNs();
    ops.push_back(op);
  }
  absl::SleepFor(absl::Seconds(f.swap_window_s));
  stop.store(true);
  runner.join();

  const int64_t window_ns = static_cast<int64_t>(f.swap_window_s * 1e9);
  Say("\n| operation | to | seconds | p99 before ms (n) | p99 during ms (n) | p99 after ms (n) | "
      "during/before | failed calls | first response from the new version |");
  Say("|---|---|---|---|---|---|---|---|---|");
  bool met = true;
  for (const Op& op : ops) {
    const int64_t s0 = op.start_ns - load.t0_ns, s1 = op.end_ns - load.t0_ns;
    const int64_t b1 = (op.before_end_ns != 0 ? op.before_end_ns : op.start_ns) - load.t0_ns;
    const auto before = load.LatencyMs(b1 - window_ns, b1);
    const auto during = load.LatencyMs(s0, s1);
    const auto after = load.LatencyMs(s1, s1 + window_ns);
    int64_t failed = 0;
    double first_new_ms = -1;
    const uint32_t tag = VersionTag(op.to);
    for (const CallRecord& r : load.records) {
      if (r.start_ns < s0 - window_ns || r.start_ns >= s1 + window_ns) continue;
      if (r.code != 0) ++failed;
      if (!op.to.empty() && r.code == 0 && r.version == tag && r.end_ns >= s0) {
        const double ms = 1e-6 * static_cast<double>(r.end_ns - s0);
        if (first_new_ms < 0 || ms < first_new_ms) first_new_ms = ms;
      }
    }
    const double ratio = before.p99 > 0 ? during.p99 / before.p99 : 0;
    const bool is_swap = op.what != "retrain job: training (until the publish phase)";
    if (is_swap && (!op.status.ok() || failed > 0 || ratio > 2.0)) met = false;
    Say(absl::StrFormat("| %s | %s | %.2f | %.3f (%d) | %.3f (%d) | %.3f (%d) | %.2f | %d | %s |",
                        op.what, op.to.empty() ? "-" : op.to,
                        1e-9 * static_cast<double>(op.end_ns - op.start_ns), before.p99, before.n,
                        during.p99, during.n, after.p99, after.n, ratio, failed,
                        !op.status.ok() ? "FAILED: " + std::string(op.status.message())
                        : op.to.empty() ? op.note
                                        : absl::StrFormat("%.0f ms after the start", first_new_ms)));
  }
  {
    std::vector<std::pair<int64_t, int64_t>> before_w, during_w;
    for (const Op& op : ops) {
      if (op.to.empty()) continue;  // the training phase is not a swap
      const int64_t s0 = op.start_ns - load.t0_ns, s1 = op.end_ns - load.t0_ns;
      const int64_t b1 = (op.before_end_ns != 0 ? op.before_end_ns : op.start_ns) - load.t0_ns;
      before_w.push_back({b1 - window_ns, b1});
      during_w.push_back({s0, s1});
    }
    const auto b = load.LatencyMsIn(before_w), d = load.LatencyMsIn(during_w);
    Say(absl::StrFormat("pooled over the %d swaps: p99 before %.3f ms (n=%d), during %.3f ms "
                        "(n=%d): %.2fx",
                        during_w.size(), b.p99, b.n, d.p99, d.n, b.p99 > 0 ? d.p99 / b.p99 : 0.0));
  }
  const auto all = load.LatencyMs();
  Say(absl::StrFormat(
      "\nsteady load: %d calls issued, %d ok, %d failed, %d unfinished; offered %.0f qps, achieved "
      "%.0f qps; overall client p50/p95/p99 %.3f/%.3f/%.3f ms; load %s",
      load.issued, load.ok, load.failed, load.unfinished, rate, load.Qps(), all.p50, all.p95,
      all.p99, LoadAvg()));
  if (load.failed > 0) Say("first error: " + load.first_error);
  if (auto st = admin.GetStats(); st.ok()) {
    for (const v1::RpcLatency& l : st->rpc_latency()) {
      if (l.method() != "Retrieve") continue;
      Say(absl::StrFormat("server-side Retrieve since start (GetStats): n=%d errors=%d p50/p95/p99 "
                          "%.3f/%.3f/%.3f ms, max %.1f ms",
                          l.count(), l.errors(), l.p50_ms(), l.p95_ms(), l.p99_ms(), l.max_ms()));
    }
  }
  const int exit_code = StopServerProcess(child->pid);
  Say(absl::StrFormat("server stopped (SIGTERM), exit code %d", exit_code));
  // The log as the stopped server left it.
  {
    EventLogOptions lo;
    lo.path = dir + "/data/events.sqlite";
    auto log = SqliteEventLog::Open(lo);
    if (log.ok()) {
      const LogCheck lc = CheckLog(**log, {&seeded, &capacity, &load});
      Say(absl::StrFormat("log check: acked %d items, %d rows in the log, %d missing%s",
                          lc.acked_items, lc.log_rows, lc.missing,
                          lc.error.empty() ? "" : " ERROR " + lc.error));
      if (lc.missing > 0) met = false;
      (void)(*log)->Close();
    } else {
      Say(absl::StrCat("log check: cannot open the log: ", log.status().message()));
    }
  }
  Say(absl::StrFormat("swap target for the swaps (publish, rollbacks): zero failed calls and p99 "
                      "during <= 2x before: %s",
                      met ? "MET" : "MISSED"));
  fs::remove_all(dir, ec);
  return 0;
}


// Closed-loop runs against a real optower-server process, one fresh process per concurrency level
// (its GetStats latency is cumulative since start: warm-up included, 1 s of the 1+duration s).
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
      const std::string run_dir = absl::StrCat(dir, "/run-", rep, "-", c);
      fs::create_directories(run_dir);
      const std::string config = run_dir + "/server.textproto";
      {
        std::ofstream out(config);
        out << "host: \"127.0.0.1\"\nport: 0\n"
            << "data_dir: \"" << run_dir << "/data\"\n"
            << "items_path: \"" << dir << "/items.csv\"\n"
            << "model_dir: \"" << dir << "/model-a\"\n"
            << "index { type: "
            << (f.crosscheck_index == "exact" ? "EXACT"
                : f.crosscheck_index == "hnsw" ? "HNSW"
                                               : "IVF")
            << " ivf_nprobe: " << NprobeFor(f, n) << " build_threads: " << f.threads << " }\n"
            << "trainer { disabled: true }\n";
      }
      const auto t0 = Clock::now();
      absl::StatusOr<Child> child = StartServerProcess(f.server_binary, config,
                                                       run_dir + "/server.stderr",
                                                       absl::Minutes(15));
      if (!child.ok()) {
        Say(std::string(child.status().message()));
        return 1;
      }
      const double start_s = SecondsSince(t0);
      LoadGenerator gen(child->address, static_cast<int>(std::min<int64_t>(c, f.channels)),
                        ds->contexts, static_cast<int>(f.context_features));
      if (!gen.WaitConnected(absl::Seconds(10))) return 1;
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
      auto client = client::OptowerClient::Connect(ClientOptionsFor(child->address));
      if (client.ok()) {
        if (auto st = (*client)->GetStats(); st.ok()) {
          for (const v1::RpcLatency& l : st->rpc_latency()) {
            if (l.method() != "Retrieve") continue;
            sp50 = l.p50_ms();
            sp95 = l.p95_ms();
            sp99 = l.p99_ms();
          }
        }
      }
      const int exit_code = StopServerProcess(child->pid);
      LogCheck lc;
      {
        EventLogOptions lo;
        lo.path = run_dir + "/data/events.sqlite";
        auto log = SqliteEventLog::Open(lo);
        if (log.ok()) {
          lc = CheckLog(**log, {&warm, &res});
          (void)(*log)->Close();
        } else {
          lc.error = std::string(log.status().message());
        }
      }
      Say(absl::StrFormat("| %d | %s | %d | %.0f | %.3f / %.3f / %.3f | %.3f / %.3f / %.3f | %d | "
                          "%d / %d / %d%s | %.1f | %.2f |",
                          n, f.crosscheck_index, c, res.Qps(), q.p50, q.p95, q.p99, sp50, sp95,
                          sp99, res.failed + warm.failed, lc.acked_items, lc.log_rows, lc.missing,
                          exit_code == 0 ? "" : absl::StrCat(" (exit ", exit_code, ")"), start_s,
                          load1));
      fs::remove_all(run_dir, ec);
    }
  }
  fs::remove_all(dir, ec);
  return 0;
}

// ------------------------------------------------------------------------------------------------
// Main serving benchmark
// ------------------------------------------------------------------------------------------------

int RunServingBench(const Flags& f, const World& world, const Models& models) {
  std::FILE* csv = nullptr;
  if (!f.out_csv.empty()) {
    csv = std::fopen(f.out_csv.c_str(), "w");
    if (csv != nullptr) {
      std::fprintf(csv,
                   "n,index,logging,concurrency,repeat,qps,c_p50,c_p95,c_p99,s_p50,s_p95,s_p99,"
                   "s_count,ok,failed,cpu_us_per_call,load1,others_cores,acked_items,log_rows,missing\n");
    }
  }
  std::vector<IndexReport> reports;
  std::vector<ServingRun> runs;
  const std::vector<int64_t> conc = ParseIntList(f.concurrency);
  const std::vector<std::string> logs = ParseList(f.logging);
  const int threads = static_cast<int>(f.threads);

  for (int64_t n : ParseIntList(f.sizes)) {
    Say(absl::StrFormat("\n## N = %d items", n));
    at::set_num_threads(threads);  // dataset + item embedding + builds on all cores
    auto t0 = Clock::now();
    absl::StatusOr<Dataset> ds = MakeDataset(n, world, models, f);
    if (!ds.ok()) {
      Say(absl::StrCat("dataset: ", ds.status().message()));
      return 1;
    }
    Say(absl::StrFormat(
        "data: %d items in %d clusters (features R^%d, centres N(0,I), within sd %.2f), %d "
        "contexts from %d segments (sd 0.5); %.1f s",
        n, ds->clusters, f.item_features, f.within_sd, f.n_contexts, f.user_segments,
        SecondsSince(t0)));
    std::optional<GroundTruth> gt;
    const int64_t nq = std::min(f.recall_queries, f.n_contexts);
    for (const std::string& type : ParseList(f.indexes)) {
      if (type == "hnsw" && n > f.hnsw_max_items) {
        Say(absl::StrFormat("hnsw at N=%d: skipped (--hnsw_max_items=%d; see the 100k build time)",
                            n, f.hnsw_max_items));
        continue;
      }
      at::set_num_threads(threads);
      ModelSnapshot::Options so;
      so.index = IndexOptions(type, f, threads, n);
      IndexReport rep;
      rep.n = n;
      rep.index = type;
      rep.loadavg = LoadAvg();
      t0 = Clock::now();
      absl::StatusOr<std::shared_ptr<const ModelSnapshot>> snap =
          ModelSnapshot::Build("bench-a", ds->model, ds->catalog, 0, so);
      if (!snap.ok()) {
        Say(absl::StrCat("snapshot ", type, ": ", snap.status().message()));
        return 1;
      }
      rep.build_s = SecondsSince(t0);
      const ItemIndex& index = (*snap)->index();
      rep.built = index.type_name();
      rep.recall_build = index.recall_at_10();
      rep.build_report = index.build_report();
      Say(absl::StrFormat("snapshot %s: embed + build %.1f s (load %s): %s", type, rep.build_s,
                          rep.loadavg, rep.build_report));
      if (!gt.has_value()) {
        absl::StatusOr<GroundTruth> g =
            ExactTop(**snap, ds->queries.data(), nq, std::min<int64_t>(100, n), threads);
        if (!g.ok()) {
          Say(absl::StrCat("ground truth: ", g.status().message()));
          return 1;
        }
        gt = std::move(*g);
      }
      {
        std::vector<int64_t> ids;
        std::vector<float> scores;
        omp_set_num_threads(threads);
        if (!index.SearchBatch(ds->queries.data(), nq, gt->m, &ids, &scores).ok()) return 1;
        rep.recall10 = RecallAt(*gt, ids, gt->m, 10);
        rep.recall100 = RecallAt(*gt, ids, gt->m, gt->m);
      }
      // Serving settings from here on: one intra-op thread, as optower-server.
      at::set_num_threads(1);
      const double raw_s = type == "exact" && n >= 1000000 ? f.exact_duration_s : f.raw_duration_s;
      const OthersCpu others_raw;
      rep.raw1 = RawSearch(index, ds->queries, f.n_contexts, f.top_m, 1, raw_s, f.max_requests);
      rep.rawT =
          RawSearch(index, ds->queries, f.n_contexts, f.top_m, threads, raw_s, f.max_requests);
      rep.batch_qps = RawBatchQps(index, ds->queries, f.n_contexts, f.top_m, threads, raw_s);
      omp_set_num_threads(threads);

      v1::ServerConfig cfg;
      cfg.set_data_dir("/tmp");
      cfg.set_dim_context(static_cast<int>(f.context_features));
      server::ApplyServerConfigDefaults(&cfg);
      RetrievalEngineOptions eo = server::EngineOptionsFromConfig(cfg);
      eo.top_m = f.top_m;
      eo.snapshot.index = so.index;
      rep.engine_qps = EngineQps(*snap, eo, *ds, f, threads, raw_s);
      rep.engine_log_qps = EngineQps(*snap, eo, *ds, f, threads, raw_s,
                                     absl::StrCat(f.work_dir, "/engine-", ::getpid()));
      rep.others_cores = others_raw.Cores();
      Say(absl::StrFormat(
          "index %s N=%d: recall@10 %.4f (build-time probe %.4f), recall@100 %.4f; raw Search "
          "1 thread %.0f qps (p50 %.0f us, p99 %.0f us), %d threads %.0f qps; SearchBatch %.0f qps; "
          "engine (no gRPC) %.0f qps without log, %.0f qps with log; other processes %.2f cores",
          type, n, rep.recall10, rep.recall_build, rep.recall100, rep.raw1.qps, rep.raw1.p50_us,
          rep.raw1.p99_us, threads, rep.rawT.qps, rep.batch_qps, rep.engine_qps,
          rep.engine_log_qps, rep.others_cores));
      reports.push_back(rep);

      if (f.serving) {
        for (int64_t r = 0; r < f.repeats; ++r) {
          for (int64_t c : conc) {
            if (type == "exact" && n >= 1000000 && c > f.exact_max_concurrency) continue;
            // Alternate the order of logging off/on between repeats.
            std::vector<std::string> order = logs;
            if (r % 2 == 1) std::reverse(order.begin(), order.end());
            for (const std::string& lg : order) {
              const double dur = type == "exact" && n >= 1000000 ? f.exact_duration_s : f.duration_s;
              absl::StatusOr<ServingRun> run =
                  RunServing(*snap, eo, *ds, f, type, lg == "on", c, r, dur);
              if (!run.ok()) {
                Say(absl::StrCat("serving run: ", run.status().message()));
                return 1;
              }
              Say(RunLine(*run));
              if (csv != nullptr) {
                std::fprintf(csv, "%lld,%s,%s,%lld,%lld,%.1f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%lld,"
                                  "%lld,%lld,%.1f,%.2f,%.2f,%lld,%lld,%lld\n",
                             (long long)n, type.c_str(), lg.c_str(), (long long)c, (long long)r,
                             run->qps, run->client.p50, run->client.p95, run->client.p99,
                             run->s_p50, run->s_p95, run->s_p99, (long long)run->s_count,
                             (long long)run->ok, (long long)run->failed, run->cpu_us_per_call,
                             run->load1, run->others_cores, (long long)run->log.acked_items,
                             (long long)run->log.log_rows, (long long)run->log.missing);
                std::fflush(csv);
              }
              runs.push_back(*run);
            }
          }
        }
      }
    }
  }
  if (csv != nullptr) std::fclose(csv);

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
  if (runs.empty()) return 0;
  Say(absl::StrFormat(
      "\n### Serving (gRPC, in-process server; medians of %d runs; e2e/raw = QPS / raw Search "
      "QPS on %d threads)",
      f.repeats, threads));
  Say("| N | index | log | c | QPS | client p50 / p95 / p99 ms | server p50 / p95 / p99 ms | "
      "e2e/raw | CPU us/call | failed | load1 (min-max) | others' CPU (max, cores) |");
  Say("|---|---|---|---|---|---|---|---|---|---|---|---|");
  struct Key {
    int64_t n;
    std::string index;
    bool logging;
    int64_t c;
    bool operator<(const Key& o) const {
      return std::tie(n, index, logging, c) < std::tie(o.n, o.index, o.logging, o.c);
    }
  };
  std::map<Key, std::vector<const ServingRun*>> groups;
  std::vector<Key> order;
  for (const ServingRun& r : runs) {
    Key k{r.n, r.index, r.logging, r.concurrency};
    if (!groups.count(k)) order.push_back(k);
    groups[k].push_back(&r);
  }
  std::sort(order.begin(), order.end(), [](const Key& a, const Key& b) {
    return std::tie(a.n, a.index, a.c, a.logging) < std::tie(b.n, b.index, b.c, b.logging);
  });
  auto med = [](const std::vector<const ServingRun*>& v, auto get) {
    std::vector<double> x;
    for (const ServingRun* r : v) x.push_back(get(*r));
    return Median(x);
  };
  auto raw_of = [&](int64_t n, const std::string& idx) -> const IndexReport* {
    for (const IndexReport& r : reports) {
      if (r.n == n && r.index == idx) return &r;
    }
    return nullptr;
  };
  for (const Key& k : order) {
    const auto& v = groups[k];
    const IndexReport* raw = raw_of(k.n, k.index);
    const double qps = med(v, [](const ServingRun& r) { return r.qps; });
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
        med(v, [](const ServingRun& r) { return r.client.p50; }),
        med(v, [](const ServingRun& r) { return r.client.p95; }),
        med(v, [](const ServingRun& r) { return r.client.p99; }),
        med(v, [](const ServingRun& r) { return r.s_p50; }),
        med(v, [](const ServingRun& r) { return r.s_p95; }),
        med(v, [](const ServingRun& r) { return r.s_p99; }),
        raw != nullptr && raw->rawT.qps > 0 ? qps / raw->rawT.qps : 0.0,
        med(v, [](const ServingRun& r) { return r.cpu_us_per_call; }), failed, lo, hi, others));
  }
  Say("\n### Logging cost and log completeness (medians; cost = 1 - QPS_on / QPS_off)");
  Say("| N | index | c | QPS off | QPS on | cost | acked items (all runs) | log rows | missing |");
  Say("|---|---|---|---|---|---|---|---|---|");
  for (const Key& k : order) {
    if (!k.logging) continue;
    Key off = k;
    off.logging = false;
    if (!groups.count(off)) continue;
    const double q_on = med(groups[k], [](const ServingRun& r) { return r.qps; });
    const double q_off = med(groups[off], [](const ServingRun& r) { return r.qps; });
    int64_t acked = 0, rows = 0, missing = 0;
    for (const ServingRun* r : groups[k]) {
      acked += r->log.acked_items;
      rows += r->log.log_rows;
      missing += r->log.missing;
    }
    Say(absl::StrFormat("| %d | %s | %d | %.0f | %.0f | %.1f%% | %d | %d | %d |", k.n, k.index,
                        k.c, q_off, q_on, 100.0 * (1.0 - q_on / q_off), acked, rows, missing));
  }
  return 0;
}

int Main(int argc, char** argv) {
  Flags f;
  cli::FlagParser p("optower_bench [flags]",
                    "gRPC serving benchmark (issue 3 §5) and model swap under load (issue 4 §5).");
  p.AddString("sizes", &f.sizes, "catalog sizes, comma separated (empty: none, e.g. with --swap)");
  p.AddString("indexes", &f.indexes, "index types: exact,ivf,hnsw");
  p.AddString("concurrency", &f.concurrency, "outstanding requests (closed loop), comma separated");
  p.AddString("logging", &f.logging, "off,on: serve without / with the SQLite event log");
  p.AddInt("repeats", &f.repeats, "runs per configuration (medians reported)");
  p.AddDouble("duration", &f.duration_s, "seconds per measured run");
  p.AddDouble("warmup", &f.warmup_s, "seconds of warm-up per run (not measured)");
  p.AddInt("max_requests", &f.max_requests, "cap on calls per run");
  p.AddInt("channels", &f.channels, "client channels (connections), at most c per run");
  p.AddInt("threads", &f.threads, "cores: raw FAISS/engine threads and index-build threads");
  p.AddInt("k", &f.k, "slate size");
  p.AddInt("top_m", &f.top_m, "candidates per request");
  p.AddInt("dim", &f.dim, "embedding dimension d");
  p.AddInt("item_features", &f.item_features, "item feature dimension");
  p.AddInt("context_features", &f.context_features, "context dimension");
  p.AddInt("items_per_cluster", &f.items_per_cluster, "clusters = max(10, N / this)");
  p.AddDouble("within_sd", &f.within_sd, "within-cluster sd of item features (centres sd 1)");
  p.AddInt("user_segments", &f.user_segments, "context mixture components");
  p.AddString("model", &f.model, "trained (optower's learner, objective dm) | random towers");
  p.AddInt("train_rounds", &f.train_rounds, "logged rounds to train the bench's model on");
  p.AddInt("n_contexts", &f.n_contexts, "distinct request contexts");
  p.AddInt("recall_queries", &f.recall_queries, "queries for recall on the bench's query set");
  p.AddInt("hnsw_max_items", &f.hnsw_max_items, "skip HNSW above this catalog size");
  p.AddInt("exact_max_concurrency", &f.exact_max_concurrency, "at 1M, exact runs up to this c");
  p.AddDouble("exact_duration", &f.exact_duration_s, "seconds per run for exact at >= 1M");
  p.AddString("ivf_nprobe", &f.ivf_nprobe,
              "IVF nprobe: one value or one per --sizes entry (server default 16)");
  p.AddInt("ivf_nlist", &f.ivf_nlist, "IVF nlist (0 = automatic)");
  p.AddInt("hnsw_ef_search", &f.hnsw_ef_search, "HNSW efSearch (server default 128)");
  p.AddDouble("raw_duration", &f.raw_duration_s, "seconds per raw FAISS / engine measurement");
  p.AddString("work_dir", &f.work_dir, "scratch folder for event logs");
  p.AddString("out_csv", &f.out_csv, "write every serving run here");
  p.AddBool("serving", &f.serving, "run the gRPC serving runs (else only index/raw measurements)");
  p.AddBool("swap", &f.swap, "run the model-swap benchmark");
  p.AddInt("swap_items", &f.swap_items, "catalog size of the swap benchmark");
  p.AddString("swap_index", &f.swap_index, "index of the swap benchmark");
  p.AddDouble("swap_rate", &f.swap_rate, "open-loop QPS (0 = swap_load_fraction x capacity)");
  p.AddDouble("swap_load_fraction", &f.swap_load_fraction, "steady load as a share of capacity");
  p.AddInt("swap_concurrency", &f.swap_concurrency, "cap on outstanding calls in the open loop");
  p.AddDouble("swap_window", &f.swap_window_s, "seconds before/after each swap");
  p.AddInt("swaps", &f.swaps, "number of swaps (alternating models)");
  p.AddInt("swap_build_threads", &f.swap_build_threads, "OpenMP threads of the swap's index build");
  p.AddBool("swap_logging", &f.swap_logging, "event log on during the swap benchmark");
  p.AddString("swap_model_b", &f.swap_model_b,
              "retrain (default: model a retrained, as the trainer does) | independent");
  p.AddBool("swap_warm_start", &f.swap_warm_start,
            "IVF warm start of the swap's index build from the served index (default true)");
  p.AddInt("swap_warm_iterations", &f.swap_warm_iterations,
           "Lloyd steps of the IVF warm start (ivf_warm_start_iterations, default 0)");
  p.AddString("swap_priority", &f.swap_priority,
              "idle (default) | nice | normal: priority of the swap's build (engine: "
              "build_priority; rpc: the server's background_priority)");
  p.AddString("swap_via", &f.swap_via,
              "engine (in-process ReplaceModel) | rpc (optower-server child: TriggerRetrain, "
              "Rollback)");
  p.AddString("server_binary", &f.server_binary, "optower-server binary for --swap_via rpc");
  p.AddInt("seed_requests", &f.seed_requests, "rpc: Retrieve+Feedback calls to train on");
  p.AddInt("trainer_epochs", &f.train_epochs, "rpc: policy epochs of the retrain job");
  p.AddInt("crosscheck_items", &f.crosscheck_items,
           "> 0: closed-loop runs against a real optower-server process (--server_binary) "
           "at this catalog size (one process per concurrency level)");
  p.AddString("crosscheck_index", &f.crosscheck_index, "index of the cross-check server");
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
  if (rc == 0 && f.swap) {
    rc = f.swap_via == "rpc" ? RunSwapRpc(f, world, *models) : RunSwap(f, world, *models);
  }
  return rc;
}

}  // namespace
}  // namespace optower::bench

int main(int argc, char** argv) { return optower::bench::Main(argc, argv); }
