// `optower synth`: generates an OBP-compatible synthetic bandit data set (core/synthetic/synthetic_env.h) as
// CSV files plus a summary.json of ground-truth policy values, written into --out as one atomic
// folder (a failed run leaves nothing behind).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/synthetic_flags.h"
#include "core/base/atomic_file.h"
#include "core/base/bandit_data.h"
#include "core/base/csv_io.h"
#include "core/base/json_writer.h"
#include "core/synthetic/policy_value.h"
#include "core/base/status_macros.h"
#include "core/synthetic/synthetic_env.h"

namespace optower::cli {
namespace {

// q and pi_b of the logged rounds are held as [rounds, n_actions] doubles (16 bytes per cell for
// both); past this many cells the run would need several GB and is almost surely a typo.
constexpr int64_t kMaxCells = 250'000'000;

struct SynthFlags {
  SyntheticFlags setting;
  int64_t rounds = 0;
  int64_t test_rounds = 10000;
  int64_t seed = 0;
  std::string out;
  bool overwrite = false;
};

struct Values {
  double behavior = 0, optimal = 0, uniform = 0;
};

absl::StatusOr<Values> GroundTruth(const SyntheticRounds& rounds) {
  Values v;
  ASSIGN_OR_RETURN(v.behavior, TruePolicyValue(rounds.behavior_policy, rounds.expected_reward));
  v.optimal = OptimalPolicyValue(rounds.expected_reward);
  v.uniform = UniformPolicyValue(rounds.expected_reward);
  return v;
}

// Flag checks that name the flag (the environment's own checks name option fields instead).
absl::StatusOr<SyntheticOptions> ToOptions(const SynthFlags& f, const FlagParser& parser) {
  ASSIGN_OR_RETURN(SyntheticOptions options, f.setting.ToOptions(parser, f.seed));
  auto bad = [](const std::string& flag, auto value, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": ", why));
  };
  if (f.rounds < 1) return bad("rounds", f.rounds, "must be >= 1");
  if (f.test_rounds < 1) return bad("test-rounds", f.test_rounds, "must be >= 1");
  for (const auto& [flag, rows] : {std::pair<const char*, int64_t>{"rounds", f.rounds},
                                   std::pair<const char*, int64_t>{"test-rounds", f.test_rounds}})
    if (rows > kMaxCells / options.n_actions)
      return absl::InvalidArgumentError(absl::StrFormat(
          "--%s=%d: with --n-actions=%d that is %d ground-truth cells, over the memory limit of "
          "%d; generate fewer rounds",
          flag, rows, options.n_actions, rows * options.n_actions, kMaxCells));
  return options;
}

absl::StatusOr<std::string> SummaryJson(const SynthFlags& f, const SyntheticBandit& env,
                                        const Values& logged, const Values& test,
                                        const SyntheticRounds& rounds) {
  double reward_sum = 0;
  for (float r : rounds.log.rewards) reward_sum += r;
  const float min_pscore = *std::min_element(rounds.log.pscores.begin(), rounds.log.pscores.end());
  const SyntheticOptions& o = env.options();
  JsonWriter w;
  w.BeginObject();
  w.Field("generator", "obp-synthetic");
  w.Field("n_actions", o.n_actions);
  w.Field("dim_context", o.dim_context);
  w.Field("action_context", o.dim_action_context > 0 ? "normal" : "one-hot");
  w.Field("dim_action_context", env.action_context().cols);
  w.Field("reward", RewardTypeName(o.reward_type));
  w.Field("behavior", BehaviorTypeName(o.behavior));
  w.Field("beta", o.beta);
  w.Field("seed", f.seed);
  w.Field("rounds", f.rounds);
  w.Field("test_rounds", f.test_rounds);
  w.Field("behavior_value", logged.behavior);
  w.Field("optimal_value", logged.optimal);
  w.Field("uniform_value", logged.uniform);
  w.Field("test_behavior_value", test.behavior);
  w.Field("test_optimal_value", test.optimal);
  w.Field("test_uniform_value", test.uniform);
  w.Field("reward_rate", reward_sum / static_cast<double>(rounds.log.size()));
  w.Field("min_pscore", static_cast<double>(min_pscore));
  w.EndObject();
  return w.Finish();
}

// Everything after flag parsing. AlreadyExists from the output folder is left to the caller, which
// turns it into a usage error that mentions --overwrite.
absl::Status RunSynth(const SynthFlags& f, const FlagParser& parser) {
  ASSIGN_OR_RETURN(SyntheticOptions options, ToOptions(f, parser));
  ASSIGN_OR_RETURN(std::unique_ptr<SyntheticBandit> env, SyntheticBandit::Create(options));
  // Before generating anything: a bad --out should fail fast.
  AtomicDirectory::Options dir_options;
  dir_options.overwrite = f.overwrite;
  ASSIGN_OR_RETURN(std::unique_ptr<AtomicDirectory> dir,
                   AtomicDirectory::Create(f.out, dir_options));

  const ItemCatalog items = env->Items();
  const SyntheticRounds logged = env->ObtainBatch(f.rounds);
  ASSIGN_OR_RETURN(const Values logged_values, GroundTruth(logged));
  RETURN_IF_ERROR(WriteLogsCsv(dir->FilePath("logs.csv"), logged.log, items));
  RETURN_IF_ERROR(WriteItemsCsv(dir->FilePath("items.csv"), items));

  // A second batch: fresh contexts to measure learned policies on (not seen in the logs).
  const SyntheticRounds test = env->ObtainBatch(f.test_rounds);
  ASSIGN_OR_RETURN(const Values test_values, GroundTruth(test));
  RETURN_IF_ERROR(
      WriteContextsCsv(dir->FilePath("test_contexts.csv"), test.log.contexts, options.dim_context));
  RETURN_IF_ERROR(
      WriteMatrixCsv(dir->FilePath("test_expected_reward.csv"), "a", test.expected_reward));
  RETURN_IF_ERROR(
      WriteMatrixCsv(dir->FilePath("test_behavior_policy.csv"), "a", test.behavior_policy));

  ASSIGN_OR_RETURN(const std::string summary,
                   SummaryJson(f, *env, logged_values, test_values, logged));
  RETURN_IF_ERROR(WriteFileAtomically(dir->FilePath("summary.json"), summary));
  RETURN_IF_ERROR(dir->Commit());

  double reward_sum = 0;
  for (float r : logged.log.rewards) reward_sum += r;
  std::printf("synth: wrote %lld logged rounds and %lld test rounds to %s\n",
              static_cast<long long>(f.rounds), static_cast<long long>(f.test_rounds),
              dir->final_path().c_str());
  std::printf(
      "  %lld actions (%s action contexts, %lld dims), reward %s, behavior %s, beta %g, "
      "seed %lld\n",
      static_cast<long long>(options.n_actions),
      options.dim_action_context > 0 ? "normal" : "one-hot",
      static_cast<long long>(env->action_context().cols),
      RewardTypeName(options.reward_type).c_str(), BehaviorTypeName(options.behavior).c_str(),
      options.beta, static_cast<long long>(f.seed));
  std::printf("  logged: behavior %.4f  optimal %.4f  uniform %.4f  reward rate %.4f\n",
              logged_values.behavior, logged_values.optimal, logged_values.uniform,
              reward_sum / static_cast<double>(f.rounds));
  std::printf("  test:   behavior %.4f  optimal %.4f  uniform %.4f\n", test_values.behavior,
              test_values.optimal, test_values.uniform);
  return absl::OkStatus();
}

int SynthMain(int argc, char** argv) {
  SynthFlags f;
  FlagParser parser(
      "optower synth --n-actions N --dim-context D --rounds R --out DIR [flags]",
      "Generates logged bandit data from Open Bandit Pipeline's synthetic environment, with\n"
      "ground truth, into DIR: logs.csv, items.csv, test_contexts.csv, test_expected_reward.csv,\n"
      "test_behavior_policy.csv and summary.json. DIR appears complete or not at all.");
  f.setting.Register(parser);
  parser.AddInt("rounds", &f.rounds, "logged rounds in logs.csv, >= 1");
  parser.AddInt("test-rounds", &f.test_rounds, "fresh test rounds for the test_*.csv files, >= 1");
  parser.AddInt("seed", &f.seed, "random seed, >= 0");
  parser.AddString("out", &f.out, "output folder (missing parent folders are created)");
  parser.AddBool("overwrite", &f.overwrite, "replace DIR if it exists and is not empty");
  for (const char* required : {"n-actions", "dim-context", "rounds", "out"})
    parser.Require(required);

  if (auto done = ParseCommandLine(parser, argc, argv, 0)) return *done;
  absl::Status s = RunSynth(f, parser);
  if (absl::IsAlreadyExists(s))
    return UsageError(absl::StrCat("--out: ", s.message(), " (pass --overwrite to replace it)"));
  if (!s.ok()) return ReportError(s);
  return kExitOk;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(synth, "synth",
                         "generate an OBP-style synthetic data set with ground truth", SynthMain);

}  // namespace optower::cli
