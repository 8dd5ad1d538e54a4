// The swap benchmark through the admin RPCs (part 4 of optower_bench's header comment, --swap_via
// rpc): a real optower-server child process (--server_binary, started by the launch library) serving
// model a; Retrieve + Feedback calls seed its log; under an open-loop steady load it retrains
// (TriggerRetrain with force, followed with WatchTraining: training, then the publish swap) and
// rolls back to the imported version and forward again. p99 before / during / after each operation,
// failed calls, when responses switched to the new version, and the log check after a SIGTERM.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
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

struct Op {
  std::string what, to;
  int64_t start_ns = 0, end_ns = 0;
  int64_t before_end_ns = 0;  // the "before" window ends here (0 = at start_ns)
  absl::Status status;
  std::string note;
};

constexpr char kTrainingPhase[] = "retrain job: training (until the publish phase)";

// The server's configuration: model a imported from `dir`/model-a, the swap's index, background
// priority and a small trainer.
v1::ServerConfig SwapServerConfig(const Flags& f, const std::string& dir) {
  v1::ServerConfig config = launch::LoopbackServerConfig();
  config.set_data_dir(dir + "/data");
  config.set_items_path(dir + "/items.csv");
  config.set_model_dir(dir + "/model-a");
  v1::IndexConfig* index = config.mutable_index();
  index->set_type(ServerIndexType(f.swap_index));
  index->set_ivf_nprobe(static_cast<int32_t>(NprobeFor(f, f.swap_items)));
  index->set_build_threads(static_cast<int32_t>(f.swap_build_threads));
  if (!f.swap_warm_start) index->set_ivf_cold_rebuild(true);
  config.set_background_priority(f.swap_priority);
  v1::TrainerConfig* trainer = config.mutable_trainer();
  trainer->set_epochs(static_cast<int32_t>(f.train_epochs));
  trainer->set_reward_model_epochs(5);
  trainer->set_threads(1);
  trainer->set_min_events(100);
  return config;
}

// Training data: Retrieve + Feedback calls with Bernoulli(q) rewards. The acknowledged items.
LoadResult SeedTrainingData(const Flags& f, const World& world, const Dataset& ds,
                            client::OptowerClient& admin) {
  LoadResult seeded;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  int64_t feedback_sent = 0, feedback_accepted = 0;
  for (int64_t i = 0; i < f.seed_requests; ++i) {
    const float* x = ds.contexts.data() + (i % f.n_contexts) * f.context_features;
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
      const float* fa = ds.catalog.feature(item.item_id() - 1000000);
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
  return seeded;
}

// 1. A retrain with force, followed to its end: the training phase, then the publish (re-embed +
// index build + swap). Appends both phases to `ops`; the new version in *new_version.
void Retrain(client::OptowerClient& admin, const client::CallOptions& longcall,
             std::vector<Op>* ops, std::string* new_version) {
  Op train, publish;
  train.what = kTrainingPhase;
  publish.what = "retrain job: publish (re-embed, build, swap)";
  train.start_ns = SteadyNowNs();
  auto job = admin.TriggerRetrain(/*force=*/true);
  if (!job.ok()) {
    train.status = job.status();
    train.end_ns = SteadyNowNs();
    ops->push_back(train);
    return;
  }
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
          *new_version = e.new_version();
        }
      },
      longcall);
  train.status = watched;
  train.note = absl::StrCat("job ", *job, ": ", decision, " ", *new_version);
  publish.to = *new_version;
  publish.before_end_ns = train.start_ns;  // steady state before the job, not training
  ops->push_back(train);
  if (publish.start_ns != 0) ops->push_back(publish);
  Say(absl::StrFormat("retrain %s: decision %s, version %s; %s", *job, decision, *new_version,
                      reason.substr(0, 160)));
}

// The steady open-loop load with the operations during it: the retrain, then a Rollback to the
// imported version and forward again (pure swaps), each after a window.
struct RpcLoad {
  LoadResult capacity, load;
  double rate = 0;
  std::vector<Op> ops;
};

RpcLoad RunOperations(const Flags& f, client::OptowerClient& admin, LoadGenerator& gen) {
  RpcLoad out;
  SteadyLoad steady = SteadyRate(gen, f, /*record_acks=*/true, ", separate server process");
  out.capacity = std::move(steady.capacity);
  out.rate = steady.rate;
  std::atomic<bool> stop{false};
  LoadSpec spec;
  spec.rate_qps = out.rate;
  spec.concurrency = static_cast<int>(f.swap_concurrency);
  spec.k = static_cast<int32_t>(f.k);
  spec.record_acks = true;
  spec.stop = &stop;
  spec.duration = absl::Seconds(f.swap_window_s * 6 + 1800);
  spec.max_requests = static_cast<int64_t>(out.rate * absl::ToDoubleSeconds(spec.duration)) + 1000;
  std::thread runner([&] { out.load = gen.Run(spec); });
  client::CallOptions longcall;
  longcall.deadline = absl::Minutes(20);

  absl::SleepFor(absl::Seconds(f.swap_window_s));
  std::string old_version, new_version;
  if (auto listed = admin.ListModels(); listed.ok()) old_version = listed->serving_version();
  Retrain(admin, longcall, &out.ops, &new_version);
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
    out.ops.push_back(op);
  }
  absl::SleepFor(absl::Seconds(f.swap_window_s));
  stop.store(true);
  runner.join();
  return out;
}

// The table of operations; false if a swap (publish, rollbacks) missed the target.
bool PrintOperations(const RpcLoad& m, int64_t window_ns) {
  const LoadResult& load = m.load;
  Say("\n| operation | to | seconds | p99 before ms (n) | p99 during ms (n) | p99 after ms (n) | "
      "during/before | failed calls | first response from the new version |");
  Say("|---|---|---|---|---|---|---|---|---|");
  bool met = true;
  for (const Op& op : m.ops) {
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
    const bool is_swap = op.what != kTrainingPhase;
    if (is_swap && (!op.status.ok() || failed > 0 || ratio > 2.0)) met = false;
    Say(absl::StrFormat("| %s | %s | %.2f | %.3f (%d) | %.3f (%d) | %.3f (%d) | %.2f | %d | %s |",
                        op.what, op.to.empty() ? "-" : op.to,
                        1e-9 * static_cast<double>(op.end_ns - op.start_ns), before.p99, before.n,
                        during.p99, during.n, after.p99, after.n, ratio, failed,
                        !op.status.ok() ? "FAILED: " + std::string(op.status.message())
                        : op.to.empty() ? op.note
                                        : absl::StrFormat("%.0f ms after the start", first_new_ms)));
  }
  return met;
}

// Pooled over the swaps, the steady load's summary and the server's own Retrieve latency.
void PrintLoadSummary(const RpcLoad& m, int64_t window_ns, client::OptowerClient& admin) {
  const LoadResult& load = m.load;
  std::vector<std::pair<int64_t, int64_t>> before_w, during_w;
  for (const Op& op : m.ops) {
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
  const auto all = load.LatencyMs();
  Say(absl::StrFormat(
      "\nsteady load: %d calls issued, %d ok, %d failed, %d unfinished; offered %.0f qps, achieved "
      "%.0f qps; overall client p50/p95/p99 %.3f/%.3f/%.3f ms; load %s",
      load.issued, load.ok, load.failed, load.unfinished, m.rate, load.Qps(), all.p50, all.p95,
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
}

// The log as the stopped server left it: false if an acknowledged item is missing.
bool CheckStoppedLog(const std::string& dir, const std::vector<const LoadResult*>& runs) {
  EventLogOptions lo;
  lo.path = dir + "/data/events.sqlite";
  auto log = SqliteEventLog::Open(lo);
  if (!log.ok()) {
    Say(absl::StrCat("log check: cannot open the log: ", log.status().message()));
    return true;
  }
  const LogCheck lc = CheckLog(**log, runs);
  Say(absl::StrFormat("log check: acked %d items, %d rows in the log, %d missing%s",
                      lc.acked_items, lc.log_rows, lc.missing,
                      lc.error.empty() ? "" : " ERROR " + lc.error));
  (void)(*log)->Close();
  return lc.missing == 0;
}

// Writes the catalog and model a into `dir` and starts the server on them.
absl::StatusOr<std::unique_ptr<launch::ServerProcess>> StartRpcServer(const Flags& f,
                                                                      const Dataset& ds,
                                                                      const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir + "/model-a");
  if (absl::Status s = WriteItemsCsv(dir + "/items.csv", ds.catalog); !s.ok()) return s;
  if (absl::Status s = ds.model->Save(dir + "/model-a"); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("save: ", s.message()));
  }
  const auto t_start = Clock::now();
  absl::StatusOr<std::unique_ptr<launch::ServerProcess>> server =
      StartServerProcess(f, SwapServerConfig(f, dir), dir, absl::Minutes(10));
  if (server.ok()) {
    Say(absl::StrFormat("server pid %d on %s, started in %.1f s (embed + index build); config %s",
                        (*server)->pid(), (*server)->address(), SecondsSince(t_start),
                        dir + "/server.textproto"));
  }
  return server;
}

}  // namespace

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
  absl::StatusOr<std::unique_ptr<launch::ServerProcess>> server = StartRpcServer(f, *ds, dir);
  if (!server.ok()) {
    Say(std::string(server.status().message()));
    return 1;
  }
  auto client_or = client::OptowerClient::Connect(ClientOptionsFor((*server)->address()));
  if (!client_or.ok()) return 1;
  client::OptowerClient& admin = **client_or;
  const LoadResult seeded = SeedTrainingData(f, world, *ds, admin);
  LoadGenerator gen((*server)->address(), static_cast<int>(f.channels), ds->contexts,
                    static_cast<int>(f.context_features));
  if (!gen.WaitConnected(absl::Seconds(10))) return 1;
  const RpcLoad measured = RunOperations(f, admin, gen);
  const int64_t window_ns = static_cast<int64_t>(f.swap_window_s * 1e9);
  bool met = PrintOperations(measured, window_ns);
  PrintLoadSummary(measured, window_ns, admin);
  const int exit_code = StopServerProcess(**server);
  Say(absl::StrFormat("server stopped (SIGTERM), exit code %d", exit_code));
  if (!CheckStoppedLog(dir, {&seeded, &measured.capacity, &measured.load})) met = false;
  Say(absl::StrFormat("swap target for the swaps (publish, rollbacks): zero failed calls and p99 "
                      "during <= 2x before: %s",
                      met ? "MET" : "MISSED"));
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

}  // namespace optower::bench
