// optower feature-experiment: what categorical features and item-id embeddings are worth, with
// ground truth. On the categorical environment (core/synthetic/categorical_env.h) trains a DR
// policy per (seed, n, variant) and reports its TRUE normalised value (V - V_b) / (V* - V_b) on
// held-out test contexts:
//   dense           the towers see the dense features only (categorical columns dropped)
//   categorical     plus hashed embedding bags of user, segment (context) and category (item)
//   categorical+id  plus a learned item-id embedding
// Writes results.csv (one row per run) and summary.csv (mean, sd, standard error per variant, n).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/learner_flags.h"
#include "cli/sample_stats.h"
#include "core/base/atomic_file.h"
#include "core/base/status_macros.h"
#include "core/learning/policy_learner.h"
#include "core/synthetic/categorical_env.h"
#include "core/synthetic/policy_value.h"

namespace optower::cli {
namespace {

struct FeatureRun {
  std::string variant;
  int64_t n = 0, seed = 0;
  double value = 0, behavior = 0, optimal = 0, normalized = 0, seconds = 0;
};

struct FeatureFlags {
  FeatureFlags() {
    lf.hidden = "";  // linear towers: the true logit is bilinear in the embeddings
    lf.temperature = 0.1;
  }
  void Register(FlagParser& p) {
    p.AddString("out", &out, "output folder (results.csv, summary.csv)");
    p.AddString("sizes", &sizes, "logged rounds n, comma-separated");
    p.AddString("variants", &variants, "dense, categorical, categorical+id (comma-separated)");
    p.AddInt("seeds", &seeds, "number of seeds (0, 1, ...)");
    p.AddInt("test-rounds", &test_rounds, "test contexts per seed for the true value");
    p.AddInt("users", &env.n_users, "users");
    p.AddInt("segments", &env.n_segments, "user segments");
    p.AddInt("items", &env.n_items, "items");
    p.AddInt("categories", &env.n_categories, "item categories");
    p.AddDouble("cat-scale", &env.cat_scale, "strength of the user x item latent term");
    p.AddDouble("dense-scale", &env.dense_scale, "strength of the dense term");
    p.AddDouble("behavior-beta", &env.behavior_beta, "logging policy softmax(beta * logit)");
    p.AddDouble("user-noise", &env.user_noise, "user latent = segment latent + this x N(0, I)");
    p.AddDouble("item-noise", &env.item_noise, "item latent = category latent + this x N(0, I)");
    p.AddBool("quiet", &quiet, "no per-run lines");
    lf.Register(p);
  }
  CategoricalEnvOptions env;
  LearnerFlags lf;
  std::string out, sizes = "1000,5000,20000", variants = "dense,categorical,categorical+id";
  int64_t seeds = 5, test_rounds = 5000;
  bool quiet = false;
};

absl::StatusOr<FeatureRun> RunOne(const CategoricalEnv& env, const std::string& variant,
                                  int64_t n, int64_t seed, PolicyLearnerOptions o,
                                  const CategoricalContexts& test, const DenseMatrix& q) {
  BanditLog log = env.SampleLog(n, static_cast<uint64_t>(seed) * 1000 + 1);
  ItemCatalog items = env.items();
  CategoricalColumns test_cols = env.ContextColumns(test);
  // `variant` is one of dense, categorical, categorical+id (checked by Run before any work).
  if (variant == "dense") {
    log.context_categorical = CategoricalColumns();
    items.categorical = CategoricalColumns();
    test_cols = CategoricalColumns();
  }
  o.item_id_embedding = variant == "categorical+id";
  o.reward_model.item_id_embedding = o.item_id_embedding;
  o.seed = static_cast<uint64_t>(seed);
  ASSIGN_OR_RETURN(const PolicyTrainResult result, TrainPolicy(log, items, o));
  ASSIGN_OR_RETURN(const std::vector<float> inputs,
                   result.policy.EncodeContexts(test.dense.data(), test.size(), test_cols, 0));
  ASSIGN_OR_RETURN(const DenseMatrix pi,
                   result.policy.ActionProbabilities(inputs.data(), test.size(), items));
  FeatureRun r;
  r.variant = variant;
  r.n = n;
  r.seed = seed;
  ASSIGN_OR_RETURN(r.value, TruePolicyValue(pi, q));
  r.seconds = result.metrics.total_seconds;
  return r;
}

absl::Status Run(const FeatureFlags& f) {
  PolicyLearnerOptions base;
  RETURN_IF_ERROR(f.lf.Apply(base));
  std::vector<int64_t> sizes;
  for (absl::string_view s : absl::StrSplit(f.sizes, ',', absl::SkipEmpty())) {
    int64_t v;
    if (!absl::SimpleAtoi(s, &v) || v < 10)
      return absl::InvalidArgumentError(absl::StrCat("--sizes=", f.sizes, ": integers >= 10"));
    sizes.push_back(v);
  }
  const std::vector<std::string> variants = absl::StrSplit(f.variants, ',', absl::SkipEmpty());
  if (f.seeds < 1 || f.test_rounds < 1 || sizes.empty() || variants.empty())
    return absl::InvalidArgumentError("--seeds, --test-rounds, --sizes, --variants: need >= 1");
  for (const std::string& v : variants)
    if (v != "dense" && v != "categorical" && v != "categorical+id")
      return absl::InvalidArgumentError(absl::StrCat(
          "--variants: unknown variant '", v, "' (dense, categorical, categorical+id)"));
  std::vector<FeatureRun> runs;
  for (int64_t seed = 0; seed < f.seeds; ++seed) {
    CategoricalEnvOptions eo = f.env;
    eo.seed = static_cast<uint64_t>(seed);
    ASSIGN_OR_RETURN(const CategoricalEnv env, CategoricalEnv::Create(eo));
    const CategoricalContexts test = env.SampleContexts(f.test_rounds, 999999 + seed);
    const DenseMatrix q = env.ExpectedRewards(test);
    ASSIGN_OR_RETURN(const double behavior, TruePolicyValue(env.BehaviorPolicy(test), q));
    const double optimal = OptimalPolicyValue(q);
    for (int64_t n : sizes)
      for (const std::string& v : variants) {
        ASSIGN_OR_RETURN(FeatureRun r, RunOne(env, v, n, seed, base, test, q));
        r.behavior = behavior;
        r.optimal = optimal;
        r.normalized = NormalizedValue(r.value, behavior, optimal);
        if (!f.quiet)
          std::fprintf(stderr, "seed %lld n %lld %-15s normalised %.4f (%.1f s)\n",
                       static_cast<long long>(seed), static_cast<long long>(n), v.c_str(),
                       r.normalized, r.seconds);
        runs.push_back(r);
      }
  }
  std::string results = "variant,n,seed,value,behavior,optimal,normalized,seconds\n";
  // Per (variant, n): the normalised values and training seconds over seeds.
  std::map<std::pair<std::string, int64_t>, std::pair<std::vector<double>, std::vector<double>>>
      groups;
  for (const FeatureRun& r : runs) {
    absl::StrAppendFormat(&results, "%s,%d,%d,%.6f,%.6f,%.6f,%.6f,%.3f\n", r.variant, r.n, r.seed,
                          r.value, r.behavior, r.optimal, r.normalized, r.seconds);
    groups[{r.variant, r.n}].first.push_back(r.normalized);
    groups[{r.variant, r.n}].second.push_back(r.seconds);
  }
  std::string summary = "variant,n,runs,normalized_mean,normalized_sd,normalized_se,seconds_mean\n";
  for (const auto& [key, g] : groups) {
    const double sd = Sd(g.first);
    absl::StrAppendFormat(&summary, "%s,%d,%d,%.4f,%.4f,%.4f,%.2f\n", key.first, key.second,
                          g.first.size(), Mean(g.first), sd,
                          sd / std::sqrt(static_cast<double>(g.first.size())), Mean(g.second));
  }
  std::fputs(summary.c_str(), stdout);
  if (f.out.empty()) return absl::OkStatus();
  std::error_code ec;
  std::filesystem::create_directories(f.out, ec);
  if (ec) return absl::InternalError(absl::StrCat("--out=", f.out, ": ", ec.message()));
  RETURN_IF_ERROR(WriteFileAtomically(f.out + "/results.csv", results));
  return WriteFileAtomically(f.out + "/summary.csv", summary);
}

int RunFeatureExperiment(int argc, char** argv) {
  FeatureFlags f;
  FlagParser p("optower feature-experiment [--out DIR]",
               "True value of DR policies with dense-only towers, categorical embedding bags, and\n"
               "item-id embeddings on the categorical synthetic environment (docs/LEARNING.md).");
  f.Register(p);
  if (auto done = ParseCommandLine(p, argc, argv, 0)) return *done;
  const absl::Status status = Run(f);
  return status.ok() ? kExitOk : ReportError(status);
}

}  // namespace

OPTOWER_REGISTER_COMMAND(feature_experiment, "feature-experiment",
                         "dense vs categorical vs item-id towers, true values (synthetic)",
                         RunFeatureExperiment);

}  // namespace optower::cli
