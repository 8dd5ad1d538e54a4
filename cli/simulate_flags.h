// `optower simulate`'s flags: their values and defaults, the checks, the --help text, and the server
// configuration they imply (a v1::ServerConfig, written by the launch library).
#ifndef OPTOWER_CLI_SIMULATE_FLAGS_H_
#define OPTOWER_CLI_SIMULATE_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "optower/v1/optower.pb.h"

namespace optower::cli {

class FlagParser;

namespace sim {

struct SimFlags {
  // Defaults: the README's main job (docs/SIMULATION.md has its measured run).
  int64_t items = 10000;
  int64_t rounds = 10;
  int64_t requests_per_round = 500;
  int64_t k = 1;
  int64_t dim_context = 10;
  int64_t dim_item_features = 10;  // 0 = one-hot item features
  std::string reward = "logistic";
  // dense: OBP's synthetic bandit (the main job); categorical: the categorical environment
  // (docs/LEARNING.md "Categorical features"; cli/simulate_env.h).
  std::string setting = "dense";
  int64_t seed = 0;
  int64_t reference_rounds = 100000;
  // Server.
  double epsilon = 0.1;
  double temperature = 0.0;  // 0 = the served model's
  int64_t top_m = 100;
  std::string slate_exploration = "per_position";
  // Trainer.
  std::string objective = "dr";
  std::string slate_learning = "per_draw";
  std::string gradient = "auto";  // trainer: auto | exact | sampled
  // trainer: served = each job starts from the served towers (TrainerConfig's default); qhat = from
  // the job's freshly fitted q̂ (the DM policy), then DR steps.
  std::string warm_start = "served";
  bool force = false;
  int64_t train_threads = 2;
  int64_t epochs = 0;  // 0 = the server's default
  // Plumbing.
  std::string out = "simulate-out";
  bool overwrite = false;
  std::string data_dir;
  bool keep_data = false;
  std::string server_binary;
  // Scale-out (docs/SCALING.md): sqlite = one optower-server; postgres = a trainer (role=train)
  // and `replicas` serving replicas (role=serve) sharing a PostgreSQL database: --pg-dsn-file's,
  // or a throwaway server started with scripts/pg_test_server.sh in the data folder.
  std::string backend = "sqlite";
  int64_t replicas = 1;
  std::string pg_dsn_file;
  int64_t feedback_batch = 1000;
  // > 0: while a job trains and swaps, a second client thread sends this many Retrieve calls per
  // second (fresh contexts, never given feedback) and the summary compares their p99 latency with
  // the rounds' (the cost of training and of the swap to a request). 0 = off (the default, so the
  // log holds exactly the rounds' requests).
  double swap_probe_qps = 0;
  double timeout = 30;           // per RPC
  double retrain_timeout = 900;  // per job
  bool no_plot = false;
  bool quiet = false;
};

// The command's usage line and description (the start of --help).
extern const char kSimulateUsage[];
extern const char kSimulateDescription[];

// Registers every flag of `f` with `parser` (the current values are the defaults).
void AddSimulateFlags(FlagParser& parser, SimFlags* f);

// InvalidArgument "--flag=value: why" for the first bad value.
absl::Status ValidateSimFlags(const SimFlags& f);

// The server's configuration: loopback, port 0, data in `data_dir` (items.csv there), random towers
// seeded by --seed, group commit. Trainer: the attribution window keeps its default (1 h): every
// served item gets feedback and the simulation waits until the feedback is committed before it
// triggers a job, so no row is ever pending or defaulted (the job counts in rounds.csv show it).
// InvalidArgument for an unknown --objective (ValidateSimFlags rejects it first).
absl::StatusOr<v1::ServerConfig> SimServerConfig(const SimFlags& f, const std::string& data_dir);

}  // namespace sim
}  // namespace optower::cli

#endif  // OPTOWER_CLI_SIMULATE_FLAGS_H_
