// scaleout_bench: the scale-out deployment's costs (docs/BENCHMARKS.md "Scale-out", docs/SCALING.md
// "Sizing"), with real optower-server processes on 127.0.0.1:
//   serving   Retrieve QPS, latency and CPU per call with logging on, for one process on SQLite, one
//             serving replica on PostgreSQL (group and sync durability) and two replicas on
//             PostgreSQL (half the concurrency each); CPU is read from /proc for the servers and for
//             every postgres process, so the per-call cost of each is reported apart;
//   promote   from a promotion on the trainer to both replicas serving the version (GetStats polled
//             every 5 ms), over several promotions;
//   failover  from SIGKILL of the elected trainer to the standby reporting itself elected.
//
//   scaleout_bench --dsn-file F [--items 10000] [--duration 5] [--repeats 3] [--concurrency 4]
//                  [--promotions 5] [--failovers 3] [--work-dir DIR] [--server-binary B]
// F: a libpq connection string (scripts/pg_test_server.sh start DIR writes DIR/dsn). Each setting
// runs in a fresh schema of that database.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/load_generator.h"
#include "cli/flag_parser.h"
#include "client/optower_client.h"
#include "core/base/bandit_data.h"
#include "core/base/csv_io.h"
#include "core/base/status_macros.h"
#include "core/storage/pg_connection.h"
#include "launch/server_config_text.h"
#include "launch/server_process.h"

namespace optower::bench {
namespace {

using launch::ServerProcess;

struct Flags {
  std::string dsn_file;
  int64_t items = 10000;
  int64_t dim = 16;
  double duration = 5;
  int64_t repeats = 3;
  int64_t concurrency = 4;
  int64_t promotions = 5;
  int64_t failovers = 3;
  std::string work_dir = "/tmp/optower-scaleout-bench";
  std::string server_binary;
};

// CPU seconds (user + sys) of one process, from /proc/<pid>/stat; 0 if it is gone.
double ProcCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU seconds of every process whose command is `name` (e.g. all postgres backends).
double CpuOfCommand(const std::string& name) {
  double total = 0;
  DIR* d = opendir("/proc");
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream comm(absl::StrCat("/proc/", pid, "/comm"));
    std::string c;
    std::getline(comm, c);
    if (c == name) total += ProcCpuSeconds(pid);
  }
  closedir(d);
  return total;
}

class Bench {
 public:
  explicit Bench(Flags f) : f_(std::move(f)) {}
  absl::Status Setup();
  absl::Status Serving();
  absl::Status Promotions();
  absl::Status Failovers();

 private:
  // A fresh schema and its DSN file (the database is shared by every setting).
  absl::StatusOr<std::string> FreshSchema(const std::string& name);
  absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& name, const std::string& role,
                                                       const std::string& dsn_file,
                                                       const std::string& durability);
  struct Setting {
    std::string label;
    bool postgres = false;
    std::string durability = "group";
    int replicas = 1;
  };
  absl::Status RunSetting(const Setting& s);
  absl::Status Traffic(client::OptowerClient& serve, int n, const std::string& tag);

  Flags f_;
  std::string dsn_;
  std::string items_;
  std::vector<float> contexts_;
  int schemas_ = 0;
};

absl::Status Bench::Setup() {
  ASSIGN_OR_RETURN(dsn_, LoadPgDsn(f_.dsn_file));
  std::error_code ec;
  std::filesystem::remove_all(f_.work_dir, ec);
  std::filesystem::create_directories(f_.work_dir, ec);
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  ItemCatalog items;
  items.dim_features = f_.dim;
  for (int64_t i = 0; i < f_.items; ++i) {
    items.ids.push_back(i);
    for (int64_t j = 0; j < f_.dim; ++j) items.features.push_back(normal(rng));
  }
  items_ = f_.work_dir + "/items.csv";
  RETURN_IF_ERROR(WriteItemsCsv(items_, items));
  contexts_.resize(static_cast<size_t>(4096 * f_.dim));
  for (float& v : contexts_) v = normal(rng);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Bench::FreshSchema(const std::string& name) {
  const std::string schema = absl::StrCat("bench_", getpid(), "_", ++schemas_, "_", name);
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> c, PgConnection::Connect(dsn_, "scaleout_bench"));
  RETURN_IF_ERROR(c->Exec(absl::StrCat("CREATE SCHEMA ", schema), "create schema"));
  const std::string path = absl::StrCat(f_.work_dir, "/", schema, ".dsn");
  std::ofstream(path) << dsn_ << " options='-c search_path=" << schema << "'\n";
  return path;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> Bench::Start(const std::string& name, const std::string& role,
                                                            const std::string& dsn_file,
                                                            const std::string& durability) {
  v1::ServerConfig config = launch::LoopbackServerConfig();
  config.set_data_dir(absl::StrCat(f_.work_dir, "/", name, "-", ++schemas_));
  config.set_items_path(items_);
  config.set_dim_context(static_cast<int32_t>(f_.dim));
  config.mutable_event_log()->set_durability(durability == "sync" ? v1::EventLogConfig::SYNC
                                                                   : v1::EventLogConfig::GROUP);
  v1::TrainerConfig* t = config.mutable_trainer();
  t->set_min_events(100);
  t->set_epochs(2);
  t->set_reward_model_epochs(2);
  t->set_threads(1);
  if (!dsn_file.empty()) {
    config.mutable_postgres()->set_enabled(true);
    config.mutable_postgres()->set_dsn_file(dsn_file);
    config.mutable_postgres()->set_election_interval_ms(100);
    config.set_role(role);
  }
  if (role == "serve") t->set_disabled(true);
  ServerProcess::Options so;
  ASSIGN_OR_RETURN(so.binary, launch::FindServerBinary(f_.server_binary, "--server-binary"));
  so.config = config;
  so.config_path = config.data_dir() + ".textproto";
  so.stderr_path = config.data_dir() + ".log";
  return ServerProcess::Start(so);
}

absl::Status Bench::RunSetting(const Setting& s) {
  std::string dsn_file;
  if (s.postgres) {
    ASSIGN_OR_RETURN(dsn_file, FreshSchema("serving"));
  }
  std::vector<std::unique_ptr<ServerProcess>> servers;
  if (s.postgres) {
    ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> t, Start("trainer", "train", dsn_file, s.durability));
    servers.push_back(std::move(t));
  }
  for (int r = 0; r < s.replicas; ++r) {
    ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> p,
                     Start("replica", s.postgres ? "serve" : "all", dsn_file, s.durability));
    servers.push_back(std::move(p));
  }
  const size_t first = s.postgres ? 1 : 0;
  for (int64_t rep = 0; rep < f_.repeats; ++rep) {
    std::vector<std::unique_ptr<LoadGenerator>> gens;
    for (size_t i = first; i < servers.size(); ++i) {
      gens.push_back(std::make_unique<LoadGenerator>(servers[i]->address(), 2, contexts_,
                                                     static_cast<int>(f_.dim)));
      if (!gens.back()->WaitConnected(absl::Seconds(10))) return absl::UnavailableError("connect");
    }
    LoadSpec spec;
    spec.concurrency = static_cast<int>(std::max<int64_t>(1, f_.concurrency / s.replicas));
    spec.k = 10;
    spec.max_requests = 10000000;
    spec.duration = absl::Seconds(1);
    for (auto& g : gens) g->Run(spec);  // warm-up
    spec.duration = absl::Seconds(f_.duration);
    std::vector<double> server_cpu0;
    for (auto& p : servers) server_cpu0.push_back(ProcCpuSeconds(p->pid()));
    const double pg0 = CpuOfCommand("postgres");
    const OthersCpu others;
    std::vector<LoadResult> results(gens.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < gens.size(); ++i) {
      threads.emplace_back([&, i] { results[i] = gens[i]->Run(spec); });
    }
    for (auto& t : threads) t.join();
    double server_cpu = 0;
    for (size_t i = 0; i < servers.size(); ++i) server_cpu += ProcCpuSeconds(servers[i]->pid()) - server_cpu0[i];
    const double pg_cpu = CpuOfCommand("postgres") - pg0;
    int64_t ok = 0, failed = 0;
    double qps = 0, p50 = 0, p99 = 0, elapsed = 0;
    for (const LoadResult& r : results) {
      ok += r.ok;
      failed += r.failed + r.unfinished;
      qps += r.Qps();
      const LoadResult::Quantiles q = r.LatencyMs();
      p50 = std::max(p50, q.p50);
      p99 = std::max(p99, q.p99);
      elapsed = std::max(elapsed, r.elapsed_s);
    }
    // OthersCpu counts every process but this one: the servers and postgres are subtracted.
    const double rest = std::max(0.0, others.Cores() - (server_cpu + pg_cpu) / std::max(elapsed, 1e-9));
    Say(absl::StrFormat(
        "RESULT setting=%s rep=%d qps=%.0f client_p50_ms=%.3f client_p99_ms=%.3f ok=%d failed=%d "
        "server_cpu_us_per_call=%.0f postgres_cpu_us_per_call=%.0f other_processes_cores=%.2f",
        s.label, rep, qps, p50, p99, ok, failed, ok > 0 ? 1e6 * server_cpu / ok : 0,
        ok > 0 ? 1e6 * pg_cpu / ok : 0, rest));
  }
  for (auto& p : servers) RETURN_IF_ERROR(p->Stop(absl::Seconds(60)));
  return absl::OkStatus();
}

absl::Status Bench::Serving() {
  const std::vector<Setting> settings = {
      {"sqlite-group-1", false, "group", 1}, {"postgres-group-1", true, "group", 1},
      {"postgres-group-2", true, "group", 2}, {"sqlite-sync-1", false, "sync", 1},
      {"postgres-sync-1", true, "sync", 1},   {"postgres-sync-2", true, "sync", 2}};
  for (const Setting& s : settings) RETURN_IF_ERROR(RunSetting(s));
  return absl::OkStatus();
}

absl::Status Bench::Traffic(client::OptowerClient& serve, int n, const std::string& tag) {
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal;
  for (int i = 0; i < n; ++i) {
    v1::RetrieveRequest r;
    for (int64_t j = 0; j < f_.dim; ++j) r.mutable_context()->add_dense(normal(rng));
    r.set_k(2);
    r.set_request_id(absl::StrCat(tag, "-", i));
    ASSIGN_OR_RETURN(v1::RetrieveResponse response, serve.Retrieve(r));
    v1::FeedbackRequest fb;
    for (const v1::RetrievedItem& item : response.items()) {
      v1::FeedbackEvent* e = fb.add_events();
      e->set_request_id(r.request_id());
      e->set_item_id(item.item_id());
      e->set_reward(item.item_id() % 2 == 0 ? 1.0 : 0.0);
    }
    RETURN_IF_ERROR(serve.Feedback(fb).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<client::OptowerClient>> Connect(const ServerProcess& p) {
  client::ClientOptions o;
  o.address = p.address();
  o.default_deadline = absl::Seconds(60);
  return client::OptowerClient::Connect(o);
}

absl::Status Bench::Promotions() {
  ASSIGN_OR_RETURN(const std::string dsn_file, FreshSchema("promote"));
  ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> t, Start("trainer", "train", dsn_file, "group"));
  ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> r1, Start("replica", "serve", dsn_file, "group"));
  ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> r2, Start("replica", "serve", dsn_file, "group"));
  ASSIGN_OR_RETURN(auto ct, Connect(*t));
  ASSIGN_OR_RETURN(auto c1, Connect(*r1));
  ASSIGN_OR_RETURN(auto c2, Connect(*r2));
  RETURN_IF_ERROR(Traffic(*c1, 300, "p"));
  absl::SleepFor(absl::Milliseconds(100));  // group commit
  std::vector<double> ms;
  for (int64_t i = 0; i < f_.promotions; ++i) {
    ASSIGN_OR_RETURN(const std::string job, ct->TriggerRetrain(/*force=*/true));
    std::string version;
    while (version.empty()) {
      ASSIGN_OR_RETURN(v1::TrainingJob j, ct->GetTrainingJob(job));
      if (j.state() == v1::TRAINING_JOB_STATE_SUCCEEDED) version = j.version();
      if (j.state() > v1::TRAINING_JOB_STATE_SUCCEEDED) return absl::InternalError(j.reason());
      absl::SleepFor(absl::Milliseconds(2));
    }
    const absl::Time promoted = absl::Now();  // CURRENT is set before the job reports success
    for (client::OptowerClient* c : {c1.get(), c2.get()}) {
      while (true) {
        ASSIGN_OR_RETURN(v1::GetStatsResponse s, c->GetStats());
        if (s.model_version() == version) break;
        absl::SleepFor(absl::Milliseconds(5));
      }
    }
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - promoted));
    Say(absl::StrFormat("RESULT promote=%d version=%s both_replicas_ms=%.0f", i, version, ms.back()));
  }
  Say(absl::StrFormat("RESULT promote median_ms=%.0f max_ms=%.0f (n=%d)", Median(ms),
                      *std::max_element(ms.begin(), ms.end()), ms.size()));
  for (auto* p : {r2.get(), r1.get(), t.get()}) RETURN_IF_ERROR(p->Stop(absl::Seconds(60)));
  return absl::OkStatus();
}

absl::Status Bench::Failovers() {
  ASSIGN_OR_RETURN(const std::string dsn_file, FreshSchema("failover"));
  ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> a, Start("trainer", "train", dsn_file, "group"));
  std::vector<double> ms;
  for (int64_t i = 0; i < f_.failovers; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> b, Start("trainer", "train", dsn_file, "group"));
    ASSIGN_OR_RETURN(auto cb, Connect(*b));
    const absl::Time killed = absl::Now();
    a->Kill();
    while (true) {
      ASSIGN_OR_RETURN(v1::GetStatsResponse s, cb->GetStats());
      if (s.scale_out().elected_trainer()) break;
      if (absl::Now() - killed > absl::Seconds(60)) return absl::DeadlineExceededError("no takeover");
      absl::SleepFor(absl::Milliseconds(5));
    }
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - killed));
    Say(absl::StrFormat("RESULT failover=%d takeover_ms=%.0f", i, ms.back()));
    a = std::move(b);
  }
  Say(absl::StrFormat("RESULT failover median_ms=%.0f max_ms=%.0f (n=%d, election_interval 100 ms)",
                      Median(ms), *std::max_element(ms.begin(), ms.end()), ms.size()));
  return a->Stop(absl::Seconds(60));
}

int Main(int argc, char** argv) {
  Flags f;
  std::string stages = "serving,promote,failover";
  cli::FlagParser p("scaleout_bench --dsn-file F [flags]",
                    "Scale-out costs with real optower-server processes (docs/BENCHMARKS.md).");
  p.AddString("dsn-file", &f.dsn_file, "libpq connection string file (required)");
  p.AddString("stages", &stages, "comma-separated: serving, promote, failover");
  p.AddInt("items", &f.items, "catalog size");
  p.AddInt("dim", &f.dim, "context and item feature dimension");
  p.AddDouble("duration", &f.duration, "seconds per serving run");
  p.AddInt("repeats", &f.repeats, "serving runs per setting");
  p.AddInt("concurrency", &f.concurrency, "outstanding Retrieve calls in total");
  p.AddInt("promotions", &f.promotions, "promotions timed");
  p.AddInt("failovers", &f.failovers, "trainer failovers timed");
  p.AddString("work-dir", &f.work_dir, "scratch folder (removed first)");
  p.AddString("server-binary", &f.server_binary, "optower-server (default: beside this build)");
  p.Require("dsn-file");
  if (absl::Status s = p.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "scaleout_bench: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  Bench bench(f);
  absl::Status s = bench.Setup();
  for (const std::string& stage : ParseList(stages)) {
    if (!s.ok()) break;
    if (stage == "serving") s = bench.Serving();
    else if (stage == "promote") s = bench.Promotions();
    else if (stage == "failover") s = bench.Failovers();
    else s = absl::InvalidArgumentError(absl::StrCat("--stages: unknown stage '", stage, "'"));
  }
  if (!s.ok()) {
    std::fprintf(stderr, "scaleout_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace optower::bench

int main(int argc, char** argv) { return optower::bench::Main(argc, argv); }
