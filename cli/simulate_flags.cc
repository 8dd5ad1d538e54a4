#include "cli/simulate_flags.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cli/flag_parser.h"
#include "core/serving/slate_exploration.h"
#include "core/synthetic/synthetic_env.h"
#include "core/learning/sampled_gradient_options.h"
#include "core/training/slate_learning.h"
#include "launch/server_config_text.h"

namespace optower::cli::sim {

const char kSimulateUsage[] = "optower simulate [flags]";
const char kSimulateDescription[] =
    "The closed loop: starts optower-server (random towers, exploration) in a fresh data\n"
    "folder, plays users from OBP's synthetic environment (streaming mode; item features =\n"
    "action contexts; rewards ~ Bernoulli(q(x,a))), sends feedback for every served item,\n"
    "retrains through the admin RPCs after every round but the last, and reports the TRUE\n"
    "value of what the server served per round beside the optimal and first-round values.\n"
    "Writes rounds.csv, summary.json, server.textproto and learning_curve.png into --out.";

void AddSimulateFlags(FlagParser& p, SimFlags* f) {
  p.AddInt("items", &f->items, "catalog size N");
  p.AddInt("rounds", &f->rounds, "rounds R (a retrain after each but the last)");
  p.AddInt("requests-per-round", &f->requests_per_round, "users (Retrieve calls) per round Q");
  p.AddInt("k", &f->k, "slate size K of every Retrieve");
  p.AddInt("dim-context", &f->dim_context, "context dimension D");
  p.AddInt("dim-item-features", &f->dim_item_features,
           "item feature dimension E (N(0,1) action contexts); 0 = one-hot");
  p.AddString("reward", &f->reward, "logistic | logistic-polynomial | logistic-sparse (dense)");
  p.AddString("setting", &f->setting,
              "dense (OBP's synthetic bandit) | categorical (users, segments and item categories "
              "as categorical features; docs/LEARNING.md)");
  p.AddInt("seed", &f->seed, "seed of the environment, the requests and the server");
  p.AddInt("reference-rounds", &f->reference_rounds,
           "contexts of the reference batch that fixes the environment's statistics");
  p.AddDouble("epsilon", &f->epsilon, "server: uniform-exploration share of the logging policy");
  p.AddDouble("temperature", &f->temperature, "server: softmax temperature (0 = the model's)");
  p.AddInt("top-m", &f->top_m, "server: index candidates per request");
  p.AddString("slate-exploration", &f->slate_exploration,
              "server: per_position | per_slate (how epsilon and tau act across a K-slate)");
  p.AddString("objective", &f->objective, "trainer objective: dr | ipw | dm");
  p.AddString("warm-start", &f->warm_start,
              "trainer: served (each job starts from the served towers) | qhat (from the job's "
              "fitted q̂)");
  p.AddString("slate-learning", &f->slate_learning,
              "trainer, K > 1: per_draw | top_k (Chen et al.'s top-K correction)");
  p.AddString("gradient", &f->gradient,
              "trainer: auto | exact | sampled (the policy gradient's sums over the catalog)");
  p.AddBool("force", &f->force, "promote every trained model even if the OPE gate rejects it");
  p.AddInt("train-threads", &f->train_threads, "trainer's LibTorch threads");
  p.AddInt("epochs", &f->epochs, "trainer's policy epochs (0 = the server's default)");
  p.AddString("out", &f->out, "output folder (written atomically)");
  p.AddBool("overwrite", &f->overwrite, "replace an existing --out");
  p.AddString("data-dir", &f->data_dir,
              "server data folder (created; kept); default: a temporary folder, removed at the end");
  p.AddBool("keep-data", &f->keep_data, "keep the temporary data folder (event log, models)");
  p.AddString("server-binary", &f->server_binary,
              "optower-server to start (default: ../server/optower-server beside this binary)");
  p.AddString("backend", &f->backend,
              "sqlite (one optower-server) | postgres (a trainer and --replicas serving replicas "
              "sharing PostgreSQL; docs/SCALING.md)");
  p.AddInt("replicas", &f->replicas, "serving replicas with --backend=postgres");
  p.AddString("pg-dsn-file", &f->pg_dsn_file,
              "--backend=postgres: file with the libpq connection string of the database to use "
              "(its tables must be empty); default: a throwaway PostgreSQL in the data folder");
  p.AddDouble("swap-probe-qps", &f->swap_probe_qps,
              "Retrieve calls per second sent during each retrain (latency probe; 0 = off)");
  p.AddInt("feedback-batch", &f->feedback_batch, "feedback events per Feedback call");
  p.AddDouble("timeout", &f->timeout, "seconds per RPC");
  p.AddDouble("retrain-timeout", &f->retrain_timeout, "seconds per retraining job");
  p.AddBool("no-plot", &f->no_plot, "skip the PNG");
  p.AddBool("quiet", &f->quiet, "only the final table");
}

absl::Status ValidateSimFlags(const SimFlags& f) {
  auto bad = [](const std::string& flag, auto value, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": ", why));
  };
  if (f.items < 2) return bad("items", f.items, "must be >= 2");
  if (f.rounds < 1) return bad("rounds", f.rounds, "must be >= 1");
  if (f.requests_per_round < 1) return bad("requests-per-round", f.requests_per_round, "must be >= 1");
  if (f.k < 1 || f.k > 100) return bad("k", f.k, "must be in [1, 100]");
  if (f.k > f.items) return bad("k", f.k, absl::StrCat("must be <= --items=", f.items));
  if (f.dim_context < 1) return bad("dim-context", f.dim_context, "must be >= 1");
  if (f.dim_item_features < 0) {
    return bad("dim-item-features", f.dim_item_features, "must be >= 0 (0 = one-hot)");
  }
  if (!ParseRewardType(f.reward).ok()) {
    return bad("reward", f.reward, "must be one of logistic, logistic-polynomial, logistic-sparse");
  }
  if (f.setting != "dense" && f.setting != "categorical")
    return bad("setting", f.setting, "must be dense or categorical");
  if (f.setting == "categorical" && f.dim_item_features < 1)
    return bad("dim-item-features", f.dim_item_features, "must be >= 1 with --setting=categorical");
  if (f.seed < 0) return bad("seed", f.seed, "must be >= 0");
  if (!(f.swap_probe_qps >= 0 && f.swap_probe_qps <= 10000))
    return bad("swap-probe-qps", f.swap_probe_qps, "must be in [0, 10000]");
  if (f.reference_rounds < 1000) return bad("reference-rounds", f.reference_rounds, "must be >= 1000");
  if (!(f.epsilon >= 0 && f.epsilon <= 1)) return bad("epsilon", f.epsilon, "must be in [0, 1]");
  if (!(f.temperature >= 0) || !std::isfinite(f.temperature)) {
    return bad("temperature", f.temperature, "must be >= 0 (0 = the model's)");
  }
  if (f.top_m < 1) return bad("top-m", f.top_m, "must be >= 1");
  if (!ParseSlateExploration(f.slate_exploration).ok()) {
    return bad("slate-exploration", f.slate_exploration, "must be one of per_position, per_slate");
  }
  if (f.objective != "dr" && f.objective != "ipw" && f.objective != "dm") {
    return bad("objective", f.objective, "must be one of dr, ipw, dm");
  }
  if (f.warm_start != "served" && f.warm_start != "qhat")
    return bad("warm-start", f.warm_start, "must be served or qhat");
  if (!ParseSlateLearning(f.slate_learning).ok()) {
    return bad("slate-learning", f.slate_learning, "must be one of per_draw, top_k");
  }
  if (!ParseGradientMode(f.gradient).ok()) {
    return bad("gradient", f.gradient, "must be one of auto, exact, sampled");
  }
  if (f.train_threads < 1) return bad("train-threads", f.train_threads, "must be >= 1");
  if (f.epochs < 0) return bad("epochs", f.epochs, "must be >= 0 (0 = the server's default)");
  if (f.backend != "sqlite" && f.backend != "postgres")
    return bad("backend", f.backend, "must be sqlite or postgres");
  if (f.replicas < 1 || f.replicas > 8) return bad("replicas", f.replicas, "must be in [1, 8]");
  if (f.replicas > 1 && f.backend != "postgres")
    return bad("replicas", f.replicas, "more than one needs --backend=postgres");
  if (!f.pg_dsn_file.empty() && f.backend != "postgres")
    return bad("pg-dsn-file", f.pg_dsn_file, "needs --backend=postgres");
  if (f.out.empty()) return absl::InvalidArgumentError("--out: empty");
  if (f.feedback_batch < 1 || f.feedback_batch > 1000) {
    return bad("feedback-batch", f.feedback_batch, "must be in [1, 1000]");
  }
  if (!(f.timeout > 0) || !std::isfinite(f.timeout)) return bad("timeout", f.timeout, "must be > 0");
  if (!(f.retrain_timeout > 0) || !std::isfinite(f.retrain_timeout)) {
    return bad("retrain-timeout", f.retrain_timeout, "must be > 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ServerConfig> SimServerConfig(const SimFlags& f, const std::string& data_dir) {
  v1::ServerConfig config = launch::LoopbackServerConfig();
  config.set_data_dir(data_dir);
  config.set_items_path(absl::StrCat(data_dir, "/items.csv"));
  config.set_dim_context(static_cast<int32_t>(f.dim_context));
  config.set_epsilon(f.epsilon);
  config.set_temperature(f.temperature);
  config.set_slate_exploration(f.slate_exploration);
  config.set_top_m(static_cast<int32_t>(std::max(f.top_m, f.k)));
  config.set_init_seed(static_cast<uint64_t>(f.seed));
  config.mutable_event_log()->set_durability(v1::EventLogConfig::GROUP);
  v1::TrainerConfig* trainer = config.mutable_trainer();
  v1::TrainerConfig::Objective objective;
  if (!v1::TrainerConfig::Objective_Parse(absl::AsciiStrToUpper(f.objective), &objective)) {
    return absl::InvalidArgumentError(absl::StrCat("--objective=", f.objective, ": unknown"));
  }
  trainer->set_objective(objective);
  trainer->set_slate_learning(f.slate_learning == "top_k" ? v1::TrainerConfig::TOP_K_CORRECTION
                                                          : v1::TrainerConfig::PER_DRAW);
  trainer->set_gradient(f.gradient == "exact"     ? v1::TrainerConfig::GRADIENT_EXACT
                        : f.gradient == "sampled" ? v1::TrainerConfig::GRADIENT_SAMPLED
                                                  : v1::TrainerConfig::GRADIENT_AUTO);
  trainer->set_threads(static_cast<int32_t>(f.train_threads));
  if (f.warm_start == "qhat") trainer->set_warm_start_from_served(false);
  trainer->set_seed(static_cast<uint64_t>(f.seed));
  if (f.epochs > 0) trainer->set_epochs(static_cast<int32_t>(f.epochs));
  return config;
}

}  // namespace optower::cli::sim
