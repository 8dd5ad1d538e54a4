// optower simulate: the closed loop, end to end (issue 4 §3; docs/SIMULATION.md). Starts a real
// optower-server child process on loopback in a fresh data folder, plays users from OBP's synthetic
// environment in streaming mode (item features = the environment's action contexts, rewards ~
// Bernoulli(q(x, a))), sends feedback for every served item, retrains through the admin RPCs after
// every round but the last, and reports per round the TRUE value of what the server served beside
// the optimal value and the first round's. Writes rounds.csv, summary.json, server.textproto and
// learning_curve.png (scripts/plot_simulation.py) into --out, atomically.
//
// This file: the data folder, starting the server and the command itself. The flags are in
// simulate_flags.*, the round loop in simulate_loop.*, the tables and files in simulate_output.*;
// the server is started by the launch library (launch/server_process.h).
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/online_client.h"
#include "cli/script_path.h"
#include "cli/simulate_cluster.h"
#include "cli/simulate_flags.h"
#include "cli/simulate_loop.h"
#include "cli/simulate_output.h"
#include "client/optower_client.h"
#include "core/base/atomic_file.h"
#include "core/base/csv_io.h"
#include "core/base/status_macros.h"
#include "core/synthetic/synthetic_env.h"
#include "launch/server_config_text.h"
#include "launch/server_process.h"

namespace optower::cli {
namespace {

using launch::ServerProcess;
using sim::RoundResult;
using sim::SimFlags;

constexpr char kConfigComment[] = "written by `optower simulate`";

// A fresh data folder: --data-dir (created; must not exist or be empty) or a temporary one, which is
// removed at the end unless --keep-data.
class DataDir {
 public:
  static absl::StatusOr<std::unique_ptr<DataDir>> Create(const std::string& requested, bool keep) {
    std::error_code ec;
    if (!requested.empty()) {
      if (std::filesystem::exists(requested, ec)) {
        if (!std::filesystem::is_directory(requested, ec) ||
            !std::filesystem::is_empty(requested, ec)) {
          return absl::AlreadyExistsError(
              absl::StrCat("--data-dir=", requested, ": exists and is not an empty folder"));
        }
      } else if (!std::filesystem::create_directories(requested, ec) || ec) {  // mkdir -p
        return absl::NotFoundError(absl::StrCat("--data-dir=", requested,
                                                ": cannot create: ", ec.message()));
      }
      // Absolute, so that the server's config does not depend on its working folder.
      const std::string absolute = std::filesystem::absolute(requested, ec).lexically_normal();
      return std::unique_ptr<DataDir>(
          new DataDir(absolute.empty() ? requested : absolute, /*remove=*/false));
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                                       "/optower-simulate-XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
    }
    return std::unique_ptr<DataDir>(new DataDir(pattern, /*remove=*/!keep));
  }
  ~DataDir() {
    if (remove_) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return absl::StrCat(path_, "/", name); }
  bool removed_at_end() const { return remove_; }

 private:
  DataDir(std::string path, bool remove) : path_(std::move(path)), remove_(remove) {}
  std::string path_;
  bool remove_;
};

// The initial (random) model's categorical schema and id embedding, as the environment declares them.
void AddEnvironmentSchema(const sim::SimEnvironment& env, v1::ServerConfig* config) {
  auto add = [](const CategoricalField& f, v1::CategoricalFieldSpec* spec) {
    spec->set_name(f.name);
    spec->set_buckets(f.buckets);
    spec->set_width(static_cast<int32_t>(f.width));
    spec->set_max_ids(static_cast<int32_t>(f.max_ids));
  };
  for (const CategoricalField& f : env.ContextFields()) add(f, config->add_init_context_fields());
  for (const CategoricalField& f : env.ItemFields()) add(f, config->add_init_item_fields());
  if (env.ItemIdEmbedding()) config->set_init_item_id_embedding(true);
}

// Writes the catalog and the server's configuration (a copy into --out) and starts the server, or
// with --backend=postgres the trainer and the replicas (cli/simulate_cluster.h).
absl::StatusOr<std::unique_ptr<sim::SimCluster>> StartServers(const SimFlags& f,
                                                              const std::string& server_binary,
                                                              const sim::SimEnvironment& env,
                                                              AtomicDirectory* out,
                                                              const DataDir& data) {
  RETURN_IF_ERROR(WriteItemsCsv(data.File("items.csv"), env.Items()));
  ASSIGN_OR_RETURN(v1::ServerConfig config, sim::SimServerConfig(f, data.path()));
  AddEnvironmentSchema(env, &config);
  // Start-up embeds the catalog and builds its index (above 100,000 items a k-means IVF plus the
  // recall tuning: measured ~1-5 minutes at 10^6 items on 2 shared cores), so the wait grows with
  // the catalog: 2 minutes plus 0.6 ms per item (12 minutes at 10^6).
  const absl::Duration start_timeout = absl::Seconds(120) + absl::Microseconds(600) * f.items;
  RETURN_IF_ERROR(WriteFileAtomically(out->FilePath("server.textproto"),
                                      launch::ServerConfigText(config, kConfigComment)));
  ASSIGN_OR_RETURN(std::unique_ptr<sim::SimCluster> cluster,
                   sim::SimCluster::Start(f, server_binary, config, data.path(), start_timeout));
  if (!f.quiet) {
    std::printf("simulate: %s setting, %lld items (%s features), %lld rounds x %lld requests, "
                "k %lld, reward %s, epsilon %g, seed %lld\n",
                f.setting.c_str(), static_cast<long long>(f.items),
                f.dim_item_features > 0 ? absl::StrCat("N(0,1) x ", f.dim_item_features).c_str()
                                        : "one-hot",
                static_cast<long long>(f.rounds), static_cast<long long>(f.requests_per_round),
                static_cast<long long>(f.k), f.reward.c_str(), f.epsilon,
                static_cast<long long>(f.seed));
    std::printf("%s, data %s%s\n", cluster->Describe().c_str(), data.path().c_str(),
                data.removed_at_end() ? " (temporary)" : "");
    std::fflush(stdout);
  }
  return cluster;
}

// rounds.csv, summary.json and (unless --no-plot) learning_curve.png into `out`, then Commit.
absl::Status WriteOutputs(const SimFlags& f, const std::vector<RoundResult>& rounds,
                          const sim::Summary& summary, double wall, AtomicDirectory* out) {
  RETURN_IF_ERROR(WriteFileAtomically(out->FilePath("rounds.csv"), sim::RoundsCsv(rounds, summary)));
  ASSIGN_OR_RETURN(const std::string json, sim::SummaryJson(f, rounds, summary, wall));
  RETURN_IF_ERROR(WriteFileAtomically(out->FilePath("summary.json"), json));
  if (!f.no_plot) {
    const std::string cmd = absl::StrFormat(
        "/usr/bin/python3 '%s' '%s' '%s' '%s' 2>&1", ScriptPath("plot_simulation.py"),
        out->FilePath("rounds.csv"), out->FilePath("summary.json"),
        out->FilePath("learning_curve.png"));
    if (std::system(cmd.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("plotting failed: ", cmd));
    }
  }
  return out->Commit();
}

absl::Status Simulate(const SimFlags& f, const std::string& server_binary, AtomicDirectory* out,
                      const DataDir* data) {
  const absl::Time wall_start = absl::Now();
  ASSIGN_OR_RETURN(std::unique_ptr<sim::SimEnvironment> env, sim::MakeSimEnvironment(f));
  ASSIGN_OR_RETURN(std::unique_ptr<sim::SimCluster> cluster,
                   StartServers(f, server_binary, *env, out, *data));
  // An error while a server is gone names the last line of its log.
  auto with_server_log = [&](absl::Status s) {
    if (s.ok()) return s;
    const std::string died = cluster->Died();
    if (died.empty()) return s;
    return absl::Status(s.code(), absl::StrCat(s.message(), " (optower-server ", died, ")"));
  };

  ASSIGN_OR_RETURN(std::unique_ptr<client::OptowerClient> admin,
                   ConnectToServer(cluster->admin()->address(), f.timeout));
  std::vector<std::unique_ptr<client::OptowerClient>> replicas;
  std::vector<client::OptowerClient*> serving;
  for (ServerProcess* p : cluster->serving()) {
    if (p == cluster->admin()) {
      serving.push_back(admin.get());
      continue;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<client::OptowerClient> c, ConnectToServer(p->address(), f.timeout));
    serving.push_back(c.get());
    replicas.push_back(std::move(c));
  }
  for (client::OptowerClient* c : serving) {
    auto health = c->CheckHealth();
    if (!health.ok()) return with_server_log(sim::Rpc("Health", health.status()));
    if (*health != grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::UnavailableError("optower-server is not SERVING");
    }
  }
  sim::Simulation simulation(f, env.get(), serving, admin.get());
  std::vector<RoundResult> rounds;
  RETURN_IF_ERROR(with_server_log(sim::RunRounds(f, simulation, &rounds)));
  RETURN_IF_ERROR(sim::CheckInterrupted());
  RETURN_IF_ERROR(cluster->Stop());

  const sim::Summary summary = sim::Summarize(rounds);
  const double wall = absl::ToDoubleSeconds(absl::Now() - wall_start);
  sim::PrintResults(rounds, summary, wall);
  RETURN_IF_ERROR(WriteOutputs(f, rounds, summary, wall, out));
  std::printf("wrote %s/{rounds.csv,summary.json,server.textproto%s}%s\n", f.out.c_str(),
              f.no_plot ? "" : ",learning_curve.png",
              data->removed_at_end() ? "" : absl::StrCat("; data kept in ", data->path()).c_str());
  return absl::OkStatus();
}

int RunSimulate(int argc, char** argv) {
  SimFlags f;
  FlagParser p(sim::kSimulateUsage, sim::kSimulateDescription);
  sim::AddSimulateFlags(p, &f);
  if (auto done = ParseCommandLine(p, argc, argv, 0)) return *done;
  if (absl::Status s = sim::ValidateSimFlags(f); !s.ok()) return UsageError(std::string(s.message()));
  absl::StatusOr<std::string> binary = launch::FindServerBinary(f.server_binary, "--server-binary");
  if (!binary.ok()) return UsageError(std::string(binary.status().message()));
  // Output and data folders first, so that a bad --out / --data-dir fails at once (exit 2).
  AtomicDirectory::Options dir_options;
  dir_options.overwrite = f.overwrite;
  absl::StatusOr<std::unique_ptr<AtomicDirectory>> out = AtomicDirectory::Create(f.out, dir_options);
  if (!out.ok()) return UsageError(absl::StrCat("--out=", f.out, ": ", out.status().message()));
  absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Create(f.data_dir, f.keep_data);
  if (!data.ok()) return UsageError(std::string(data.status().message()));
  sim::InstallInterruptHandlers();

  const absl::Status s = Simulate(f, *binary, out->get(), data->get());
  if (s.ok()) return kExitOk;
  // Everything after the flags is a runtime failure: exit 1 (ReportError would map e.g. a
  // FAILED_PRECONDITION from the server to 2). The server is already killed (ServerProcess's
  // destructor); the temporary data folder and the unfinished --out are removed on return.
  std::string message(s.message());
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::cerr << "optower: simulate: " << message << std::endl;
  return kExitFailure;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(simulate, "simulate",
                         "closed loop: optower-server learns from its own logs, true value per round",
                         RunSimulate);

}  // namespace optower::cli
