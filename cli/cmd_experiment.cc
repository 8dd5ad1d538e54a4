// optower experiment: the learning-curve experiment of the off-policy learning literature on OBP's
// synthetic data — for each seed, logged-data size n and objective, train on n logged rounds and
// report the learned policy's TRUE value on held-out test contexts beside the behaviour and optimal
// policies. Writes results.csv (one row per run), summary.csv (mean/sd per n and objective),
// summary.json and learning_curve.png (via scripts/plot_experiment.py and Debian's matplotlib).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/command.h"
#include "cli/script_path.h"
#include "cli/flag_parser.h"
#include "cli/learner_flags.h"
#include "cli/sample_stats.h"
#include "cli/synthetic_flags.h"
#include "core/base/atomic_file.h"
#include "core/base/json_writer.h"
#include "core/learning/policy_learner.h"
#include "core/synthetic/policy_value.h"
#include "core/base/status_macros.h"
#include "core/synthetic/synthetic_env.h"

namespace optower::cli {
namespace {

struct Row {
  std::string objective;
  int64_t n = 0;
  int64_t seed = 0;
  double value = 0, behavior = 0, optimal = 0, uniform = 0, normalized = 0, seconds = 0;
  int epochs = 0, best_epoch = 0;
};

// `--config FILE`: lines `name = value` (or `name value`, `name` alone for booleans), '#' comments.
// They are parsed before the command line, so flags given on the command line win.
absl::StatusOr<std::vector<std::string>> ConfigArgs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrFormat("--config=%s: cannot open", path));
  std::vector<std::string> args;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    absl::string_view s = absl::StripAsciiWhitespace(line);
    if (s.empty() || s[0] == '#') continue;
    std::vector<std::string> parts =
        absl::StrSplit(s, absl::MaxSplits(absl::ByAnyChar("= \t"), 1), absl::SkipEmpty());
    std::string name(absl::StripAsciiWhitespace(parts[0]));
    if (absl::ConsumePrefix(&s, "--")) name = name.substr(2);
    if (parts.size() == 1) {
      args.push_back("--" + name);
    } else {
      args.push_back(absl::StrCat("--", name, "=", absl::StripAsciiWhitespace(parts[1])));
    }
    (void)line_no;
  }
  return args;
}

absl::StatusOr<std::vector<int64_t>> ParseIntList(const std::string& flag, const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view t : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t v;
    if (!absl::SimpleAtoi(t, &v) || v < 1)
      return absl::InvalidArgumentError(
          absl::StrFormat("--%s=%s: expected comma-separated positive integers", flag, text));
    out.push_back(v);
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrFormat("--%s is empty", flag));
  return out;
}

std::string PlotScript() { return ScriptPath("plot_experiment.py"); }

// Every flag of the command; the defaults are the experiment's setting (OBP's A100, beta -3,
// linear behaviour; linear towers).
struct ExperimentFlags {
  ExperimentFlags() {
    synth.n_actions = 100;
    synth.dim_context = 5;
    synth.beta = -3;
    synth.behavior = "linear";
    lf.hidden = "";  // linear towers: q̂ is well specified for OBP's logistic rewards
    lf.temperature = 0.02;
  }

  void Register(FlagParser& p) {
    p.AddString("config", &config, "file of `flag = value` lines, read before the command line");
    synth.Register(p);
    p.AddString("sizes", &sizes, "logged-data sizes n, comma-separated");
    p.AddString("objectives", &objectives, "objectives, comma-separated (dr, ipw, dm)");
    p.AddInt("seeds", &seeds, "number of seeds");
    p.AddInt("first-seed", &first_seed, "first seed");
    p.AddInt("test-rounds", &test_rounds, "test contexts per seed for the true value");
    p.AddString("out", &out, "output folder (written atomically)");
    p.AddBool("overwrite", &overwrite, "replace an existing --out");
    p.AddBool("no-plot", &no_plot, "skip the PNG");
    p.AddBool("quiet", &quiet, "no per-run lines");
    lf.Register(p);
    p.AddString("seed-list", &seeds_text, "explicit seeds, comma-separated (overrides --seeds)");
  }

  SyntheticFlags synth;
  LearnerFlags lf;
  std::string sizes = "1000,2000,5000,10000,20000", objectives = "dr,ipw,dm", out = "experiment-out",
              config, seeds_text;
  int64_t seeds = 3, first_seed = 0, test_rounds = 10000;
  bool overwrite = false, no_plot = false, quiet = false;
};

// What to run, from the parsed flags.
struct Plan {
  std::vector<int64_t> sizes;
  std::vector<int64_t> seeds;
  std::vector<Objective> objectives;
  PolicyLearnerOptions base;
};

// argv with the --config file's lines first (so that the command line wins), --config removed.
absl::StatusOr<std::vector<std::string>> ArgsWithConfig(int argc, char** argv) {
  std::vector<std::string> args = {argv[0]};
  std::string config;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config = argv[++i];
    } else if (absl::StartsWith(a, "--config=")) {
      config = a.substr(9);
    } else {
      args.push_back(a);
    }
  }
  if (!config.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> extra, ConfigArgs(config));
    args.insert(args.begin() + 1, extra.begin(), extra.end());
  }
  return args;
}

absl::StatusOr<Plan> MakePlan(const ExperimentFlags& f, const FlagParser& p) {
  Plan plan;
  ASSIGN_OR_RETURN(plan.sizes, ParseIntList("sizes", f.sizes));
  if (!f.seeds_text.empty()) {
    ASSIGN_OR_RETURN(plan.seeds, ParseIntList("seed-list", f.seeds_text));
  } else {
    if (f.seeds < 1) {
      return absl::InvalidArgumentError(absl::StrFormat("--seeds=%d: must be >= 1", f.seeds));
    }
    for (int64_t s = 0; s < f.seeds; ++s) plan.seeds.push_back(f.first_seed + s);
  }
  for (absl::string_view o : absl::StrSplit(f.objectives, ',', absl::SkipEmpty())) {
    ASSIGN_OR_RETURN(const Objective objective, ParseObjective(std::string(o)));
    plan.objectives.push_back(objective);
  }
  if (plan.objectives.empty()) return absl::InvalidArgumentError("--objectives is empty");
  if (f.test_rounds < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--test-rounds=%d: must be >= 1", f.test_rounds));
  }
  RETURN_IF_ERROR(f.lf.Apply(plan.base));
  RETURN_IF_ERROR(f.synth.ToOptions(p, 0).status());
  return plan;
}

// One seed: the test contexts' reference values, then every (n, objective) run on it.
absl::Status RunSeed(const ExperimentFlags& f, const FlagParser& p, const Plan& plan, int64_t seed,
                     std::vector<Row>* rows) {
  ASSIGN_OR_RETURN(const SyntheticOptions options, f.synth.ToOptions(p, seed));
  ASSIGN_OR_RETURN(std::unique_ptr<SyntheticBandit> env, SyntheticBandit::Create(options));
  const ItemCatalog items = env->Items();
  const SyntheticRounds test = env->ObtainBatch(f.test_rounds);
  ASSIGN_OR_RETURN(const double behavior,
                   TruePolicyValue(test.behavior_policy, test.expected_reward));
  const double optimal = OptimalPolicyValue(test.expected_reward);
  const double uniform = UniformPolicyValue(test.expected_reward);
  for (int64_t n : plan.sizes) {
    const SyntheticRounds train = env->ObtainBatch(n);
    for (Objective objective : plan.objectives) {
      PolicyLearnerOptions o = plan.base;
      o.objective = objective;
      o.seed = static_cast<uint64_t>(seed);
      ASSIGN_OR_RETURN(const PolicyTrainResult result, TrainPolicy(train.log, items, o));
      ASSIGN_OR_RETURN(const auto pi, result.policy.ActionProbabilities(
                                          test.log.contexts.data(), test.log.size(), items));
      ASSIGN_OR_RETURN(const double value, TruePolicyValue(pi, test.expected_reward));
      Row r{ObjectiveName(objective), n, seed, value, behavior, optimal, uniform,
            NormalizedValue(value, behavior, optimal), result.metrics.total_seconds,
            result.metrics.epochs_run, result.metrics.best_epoch};
      rows->push_back(r);
      if (!f.quiet)
        std::printf("  seed %lld n %6lld %-3s value %.4f (behaviour %.4f optimal %.4f) normalised "
                    "%.3f  %.1f s\n",
                    static_cast<long long>(seed), static_cast<long long>(n), r.objective.c_str(),
                    r.value, r.behavior, r.optimal, r.normalized, r.seconds);
      std::fflush(stdout);
    }
  }
  return absl::OkStatus();
}

// The three files' contents.
struct Outputs {
  std::string results;  // results.csv
  std::string summary;  // summary.csv
  std::string json;     // summary.json
};

// Per-run CSV.
std::string ResultsCsv(const std::string& setting, int64_t n_actions, const std::vector<Row>& rows) {
  std::string results =
      "setting,n_actions,n_rounds,seed,objective,behavior_value,optimal_value,uniform_value,value,"
      "normalized_value,train_time_s,epochs_run,best_epoch\n";
  for (const Row& r : rows)
    absl::StrAppend(&results,
                    absl::StrFormat("%s,%d,%d,%d,%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f,%d,%d\n", setting,
                                    n_actions, r.n, r.seed, r.objective, r.behavior, r.optimal,
                                    r.uniform, r.value, r.normalized, r.seconds, r.epochs, r.best_epoch));
  return results;
}

// Mean and sd over seeds per (n, objective): summary.csv, summary.json and the table on stdout.
absl::StatusOr<Outputs> Summarize(const ExperimentFlags& f, const std::string& setting,
                                  const std::vector<Row>& rows) {
  Outputs out;
  out.results = ResultsCsv(setting, f.synth.n_actions, rows);
  struct Agg {
    std::vector<double> v, nv, s;
  };
  std::map<std::pair<int64_t, std::string>, Agg> agg;
  std::vector<double> beh, opt;
  for (const Row& r : rows) {
    Agg& a = agg[{r.n, r.objective}];
    a.v.push_back(r.value);
    a.nv.push_back(r.normalized);
    a.s.push_back(r.seconds);
    if (r.n == rows.front().n && r.objective == rows.front().objective) {
      beh.push_back(r.behavior);
      opt.push_back(r.optimal);
    }
  }
  out.summary =
      "setting,n_rounds,objective,seeds,value_mean,value_sd,normalized_mean,normalized_sd,"
      "train_time_s_mean,behavior_mean,optimal_mean\n";
  std::printf("\n%-8s %-4s %8s %8s %10s %8s %8s\n", "n", "obj", "value", "sd", "normalised", "sd",
              "time s");
  for (const auto& [key, a] : agg) {
    absl::StrAppend(&out.summary, absl::StrFormat("%s,%d,%s,%d,%.6f,%.6f,%.6f,%.6f,%.3f,%.6f,%.6f\n",
                                                  setting, key.first, key.second, a.v.size(),
                                                  Mean(a.v), Sd(a.v), Mean(a.nv), Sd(a.nv),
                                                  Mean(a.s), Mean(beh), Mean(opt)));
    std::printf("%-8lld %-4s %8.4f %8.4f %10.3f %8.3f %8.2f\n", static_cast<long long>(key.first),
                key.second.c_str(), Mean(a.v), Sd(a.v), Mean(a.nv), Sd(a.nv), Mean(a.s));
  }
  std::printf("behaviour %.4f (sd %.4f)  optimal %.4f (sd %.4f)  over %zu seeds\n", Mean(beh),
              Sd(beh), Mean(opt), Sd(opt), beh.size());

  JsonWriter w;
  w.BeginObject().Field("setting", setting).Field("n_actions", f.synth.n_actions)
      .Field("dim_context", f.synth.dim_context).Field("behavior", f.synth.behavior)
      .Field("beta", f.synth.beta).Field("reward", f.synth.reward)
      .Field("test_rounds", f.test_rounds)
      .Field("behavior_value_mean", Mean(beh)).Field("optimal_value_mean", Mean(opt));
  w.Key("learner");
  f.lf.WriteJson(w);
  w.Key("results").BeginArray();
  for (const auto& [key, a] : agg)
    w.BeginObject().Field("n_rounds", key.first).Field("objective", key.second)
        .Field("value_mean", Mean(a.v)).Field("value_sd", Sd(a.v))
        .Field("normalized_mean", Mean(a.nv)).Field("normalized_sd", Sd(a.nv))
        .Field("train_time_s_mean", Mean(a.s)).EndObject();
  w.EndArray().EndObject();
  ASSIGN_OR_RETURN(out.json, w.Finish());
  return out;
}

// The files, the plot (unless --no-plot), then the folder's commit.
absl::Status WriteOutputs(const ExperimentFlags& f, const Outputs& outputs, AtomicDirectory& dir) {
  for (auto [name, text] :
       {std::pair<const char*, const std::string*>{"results.csv", &outputs.results},
        {"summary.csv", &outputs.summary}, {"summary.json", &outputs.json}}) {
    RETURN_IF_ERROR(WriteFileAtomically(dir.FilePath(name), *text));
  }
  if (!f.no_plot) {
    const std::string cmd = absl::StrFormat("/usr/bin/python3 '%s' '%s' '%s' 2>&1", PlotScript(),
                                            dir.FilePath("results.csv"),
                                            dir.FilePath("learning_curve.png"));
    if (std::system(cmd.c_str()) != 0)
      return absl::InternalError(absl::StrCat("plotting failed: ", cmd));
  }
  return dir.Commit();
}

int RunExperiment(int argc, char** argv) {
  ExperimentFlags f;
  FlagParser p("optower experiment [--config FILE] [flags]",
               "Learning curves on OBP's synthetic data: for every seed, logged-data size and\n"
               "objective, trains on n logged rounds and measures the learned policy's true value on\n"
               "test contexts, beside the behaviour and optimal policies. Writes results.csv,\n"
               "summary.csv, summary.json and learning_curve.png into --out.");
  f.Register(p);
  absl::StatusOr<std::vector<std::string>> args = ArgsWithConfig(argc, argv);
  if (!args.ok()) return ReportError(args.status());
  std::vector<char*> cargv;
  for (auto& a : *args) cargv.push_back(a.data());
  if (auto done = ParseCommandLine(p, static_cast<int>(cargv.size()), cargv.data())) return *done;
  absl::StatusOr<Plan> plan = MakePlan(f, p);
  if (!plan.ok()) return ReportError(plan.status());

  AtomicDirectory::Options dir_options;
  dir_options.overwrite = f.overwrite;
  auto dir = AtomicDirectory::Create(f.out, dir_options);
  if (!dir.ok()) return ReportError(dir.status());

  const std::string setting = f.synth.SettingName();
  std::printf("experiment %s: sizes %s, objectives %s, seeds %zu, %lld test contexts\n",
              setting.c_str(), f.sizes.c_str(), f.objectives.c_str(), plan->seeds.size(),
              static_cast<long long>(f.test_rounds));
  std::vector<Row> rows;
  for (int64_t seed : plan->seeds) {
    if (absl::Status s = RunSeed(f, p, *plan, seed, &rows); !s.ok()) return ReportError(s);
  }
  absl::StatusOr<Outputs> outputs = Summarize(f, setting, rows);
  if (!outputs.ok()) return ReportError(outputs.status());
  if (absl::Status s = WriteOutputs(f, *outputs, **dir); !s.ok()) return ReportError(s);
  std::printf("wrote %s/{results.csv,summary.csv,summary.json%s}\n", f.out.c_str(),
              f.no_plot ? "" : ",learning_curve.png");
  return kExitOk;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(experiment, "experiment",
                         "learning curves of dr/ipw/dm on OBP synthetic data vs behaviour/optimal",
                         RunExperiment);

}  // namespace optower::cli
