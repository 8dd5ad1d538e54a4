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
#include "cli/synthetic_flags.h"
#include "core/atomic_file.h"
#include "core/json_writer.h"
#include "core/policy_learner.h"
#include "core/policy_value.h"
#include "core/status_macros.h"
#include "core/synthetic_env.h"

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

int RunExperiment(int argc, char** argv) {
  SyntheticFlags synth;
  synth.n_actions = 100;
  synth.dim_context = 5;
  synth.beta = -3;
  synth.behavior = "linear";
  LearnerFlags lf;
  lf.hidden = "";  // linear towers: q̂ is well specified for OBP's logistic rewards
  lf.temperature = 0.02;
  std::string sizes = "1000,2000,5000,10000,20000", objectives = "dr,ipw,dm", out = "experiment-out",
              config, seeds_text;
  int64_t seeds = 3, first_seed = 0, test_rounds = 10000;
  bool overwrite = false, no_plot = false, quiet = false;
  FlagParser p("optower experiment [--config FILE] [flags]",
               "Learning curves on OBP's synthetic data: for every seed, logged-data size and\n"
               "objective, trains on n logged rounds and measures the learned policy's true value on\n"
               "test contexts, beside the behaviour and optimal policies. Writes results.csv,\n"
               "summary.csv, summary.json and learning_curve.png into --out.");
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

  // Config file first, then the command line.
  std::vector<std::string> args = {argv[0]};
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
    auto extra = ConfigArgs(config);
    if (!extra.ok()) return ReportError(extra.status());
    args.insert(args.begin() + 1, extra->begin(), extra->end());
  }
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  if (auto done = ParseCommandLine(p, static_cast<int>(cargv.size()), cargv.data())) return *done;
  auto size_list = ParseIntList("sizes", sizes);
  if (!size_list.ok()) return ReportError(size_list.status());
  std::vector<int64_t> seed_list;
  if (!seeds_text.empty()) {
    auto parsed = ParseIntList("seed-list", seeds_text);
    if (!parsed.ok()) return ReportError(parsed.status());
    seed_list = *parsed;
  } else {
    if (seeds < 1) return UsageError(absl::StrFormat("--seeds=%d: must be >= 1", seeds));
    for (int64_t s = 0; s < seeds; ++s) seed_list.push_back(first_seed + s);
  }
  std::vector<Objective> objective_list;
  for (absl::string_view o : absl::StrSplit(objectives, ',', absl::SkipEmpty())) {
    auto obj = ParseObjective(std::string(o));
    if (!obj.ok()) return ReportError(obj.status());
    objective_list.push_back(*obj);
  }
  if (objective_list.empty()) return UsageError("--objectives is empty");
  if (test_rounds < 1) return UsageError(absl::StrFormat("--test-rounds=%d: must be >= 1", test_rounds));
  PolicyLearnerOptions base;
  if (absl::Status s = lf.Apply(base); !s.ok()) return ReportError(s);
  if (auto s = synth.ToOptions(p, 0); !s.ok()) return ReportError(s.status());

  AtomicDirectory::Options dir_options;
  dir_options.overwrite = overwrite;
  auto dir = AtomicDirectory::Create(out, dir_options);
  if (!dir.ok()) return ReportError(dir.status());

  const std::string setting = synth.SettingName();
  std::printf("experiment %s: sizes %s, objectives %s, seeds %zu, %lld test contexts\n",
              setting.c_str(), sizes.c_str(), objectives.c_str(), seed_list.size(),
              static_cast<long long>(test_rounds));
  std::vector<Row> rows;
  for (int64_t seed : seed_list) {
    auto options = synth.ToOptions(p, seed);
    if (!options.ok()) return ReportError(options.status());
    auto env = SyntheticBandit::Create(*options);
    if (!env.ok()) return ReportError(env.status());
    const ItemCatalog items = (*env)->Items();
    const SyntheticRounds test = (*env)->ObtainBatch(test_rounds);
    auto behavior = TruePolicyValue(test.behavior_policy, test.expected_reward);
    if (!behavior.ok()) return ReportError(behavior.status());
    const double optimal = OptimalPolicyValue(test.expected_reward);
    const double uniform = UniformPolicyValue(test.expected_reward);
    for (int64_t n : *size_list) {
      const SyntheticRounds train = (*env)->ObtainBatch(n);
      for (Objective objective : objective_list) {
        PolicyLearnerOptions o = base;
        o.objective = objective;
        o.seed = static_cast<uint64_t>(seed);
        auto result = TrainPolicy(train.log, items, o);
        if (!result.ok()) return ReportError(result.status());
        auto pi = result->policy.ActionProbabilities(test.log.contexts.data(), test.log.size(), items);
        if (!pi.ok()) return ReportError(pi.status());
        auto value = TruePolicyValue(*pi, test.expected_reward);
        if (!value.ok()) return ReportError(value.status());
        Row r{ObjectiveName(objective), n, seed, *value, *behavior, optimal, uniform,
              NormalizedValue(*value, *behavior, optimal), result->metrics.total_seconds,
              result->metrics.epochs_run, result->metrics.best_epoch};
        rows.push_back(r);
        if (!quiet)
          std::printf("  seed %lld n %6lld %-3s value %.4f (behaviour %.4f optimal %.4f) normalised "
                      "%.3f  %.1f s\n",
                      static_cast<long long>(seed), static_cast<long long>(n), r.objective.c_str(),
                      r.value, r.behavior, r.optimal, r.normalized, r.seconds);
        std::fflush(stdout);
      }
    }
  }

  // Per-run CSV.
  std::string results =
      "setting,n_actions,n_rounds,seed,objective,behavior_value,optimal_value,uniform_value,value,"
      "normalized_value,train_time_s,epochs_run,best_epoch\n";
  for (const Row& r : rows)
    absl::StrAppend(&results,
                    absl::StrFormat("%s,%d,%d,%d,%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f,%d,%d\n", setting,
                                    synth.n_actions, r.n, r.seed, r.objective, r.behavior, r.optimal,
                                    r.uniform, r.value, r.normalized, r.seconds, r.epochs, r.best_epoch));
  // Mean and sd over seeds per (n, objective).
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
  }
  auto mean = [](const std::vector<double>& x) {
    double s = 0;
    for (double v : x) s += v;
    return x.empty() ? 0.0 : s / x.size();
  };
  auto sd = [&](const std::vector<double>& x) {
    if (x.size() < 2) return 0.0;
    const double m = mean(x);
    double s = 0;
    for (double v : x) s += (v - m) * (v - m);
    return std::sqrt(s / (x.size() - 1));
  };
  for (const Row& r : rows) {
    if (r.n == rows.front().n && r.objective == rows.front().objective) {
      beh.push_back(r.behavior);
      opt.push_back(r.optimal);
    }
  }
  std::string summary =
      "setting,n_rounds,objective,seeds,value_mean,value_sd,normalized_mean,normalized_sd,"
      "train_time_s_mean,behavior_mean,optimal_mean\n";
  std::printf("\n%-8s %-4s %8s %8s %10s %8s %8s\n", "n", "obj", "value", "sd", "normalised", "sd",
              "time s");
  for (const auto& [key, a] : agg) {
    absl::StrAppend(&summary, absl::StrFormat("%s,%d,%s,%d,%.6f,%.6f,%.6f,%.6f,%.3f,%.6f,%.6f\n",
                                              setting, key.first, key.second, a.v.size(), mean(a.v),
                                              sd(a.v), mean(a.nv), sd(a.nv), mean(a.s), mean(beh),
                                              mean(opt)));
    std::printf("%-8lld %-4s %8.4f %8.4f %10.3f %8.3f %8.2f\n", static_cast<long long>(key.first),
                key.second.c_str(), mean(a.v), sd(a.v), mean(a.nv), sd(a.nv), mean(a.s));
  }
  std::printf("behaviour %.4f (sd %.4f)  optimal %.4f (sd %.4f)  over %zu seeds\n", mean(beh),
              sd(beh), mean(opt), sd(opt), beh.size());

  JsonWriter w;
  w.BeginObject().Field("setting", setting).Field("n_actions", synth.n_actions)
      .Field("dim_context", synth.dim_context).Field("behavior", synth.behavior)
      .Field("beta", synth.beta).Field("reward", synth.reward).Field("test_rounds", test_rounds)
      .Field("behavior_value_mean", mean(beh)).Field("optimal_value_mean", mean(opt));
  w.Key("learner");
  lf.WriteJson(w);
  w.Key("results").BeginArray();
  for (const auto& [key, a] : agg)
    w.BeginObject().Field("n_rounds", key.first).Field("objective", key.second)
        .Field("value_mean", mean(a.v)).Field("value_sd", sd(a.v))
        .Field("normalized_mean", mean(a.nv)).Field("normalized_sd", sd(a.nv))
        .Field("train_time_s_mean", mean(a.s)).EndObject();
  w.EndArray().EndObject();
  auto json = w.Finish();
  if (!json.ok()) return ReportError(json.status());

  for (auto [name, text] : {std::pair<const char*, const std::string*>{"results.csv", &results},
                            {"summary.csv", &summary}, {"summary.json", &*json}}) {
    if (absl::Status s = WriteFileAtomically((*dir)->FilePath(name), *text); !s.ok())
      return ReportError(s);
  }
  if (!no_plot) {
    const std::string cmd = absl::StrFormat("/usr/bin/python3 '%s' '%s' '%s' 2>&1", PlotScript(),
                                            (*dir)->FilePath("results.csv"),
                                            (*dir)->FilePath("learning_curve.png"));
    if (std::system(cmd.c_str()) != 0)
      return ReportError(absl::InternalError(absl::StrCat("plotting failed: ", cmd)));
  }
  if (absl::Status s = (*dir)->Commit(); !s.ok()) return ReportError(s);
  std::printf("wrote %s/{results.csv,summary.csv,summary.json%s}\n", out.c_str(),
              no_plot ? "" : ",learning_curve.png");
  return kExitOk;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(experiment, "experiment",
                         "learning curves of dr/ipw/dm on OBP synthetic data vs behaviour/optimal",
                         RunExperiment);

}  // namespace optower::cli
