// optower evaluate: off-policy estimates (IPS, SNIPS, DR) of a trained policy's value on logs, or
// (--uniform) of the uniform-random policy over the catalog.
#include <cstdio>
#include <iostream>

#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/learner_flags.h"
#include "core/base/csv_io.h"
#include "core/base/json_writer.h"
#include "core/base/status_macros.h"
#include "core/learning/ope.h"
#include "core/learning/policy_evaluation.h"
#include "core/learning/uniform_evaluation.h"
#include "core/model/model_folder.h"
#include "core/model/reward_model.h"

namespace optower::cli {
namespace {

struct EvaluateFlags {
  std::string model_dir, logs_path, items_path;
  double confidence = OpeOptions().confidence, weight_clip = OpeOptions().weight_clip;
  bool json = false;
  bool uniform = false;
  int64_t qhat_epochs = RewardModelOptions().epochs;
  int64_t seed = 0;
  int64_t threads = 0;
};

int PrintEstimates(const EvaluateFlags& f, const BanditLog& log, const std::string& target,
                   const std::vector<OpeEstimate>& estimates) {
  double logged = 0;
  for (float r : log.rewards) logged += r;
  logged /= static_cast<double>(log.size());
  if (f.json) {
    JsonWriter w;
    w.BeginObject().Field("n", log.size()).Field("target", target)
        .Field("logging_policy_value", logged).Field("confidence", f.confidence);
    w.Key("estimates").BeginArray();
    for (const OpeEstimate& e : estimates)
      w.BeginObject().Field("estimator", e.estimator).Field("value", e.value)
          .Field("std_error", e.std_error).Field("ci_low", e.ci_low).Field("ci_high", e.ci_high)
          .Field("max_weight", e.max_weight).Field("effective_sample_size", e.effective_sample_size)
          .EndObject();
    w.EndArray().EndObject();
    auto text = w.Finish();
    if (!text.ok()) return ReportError(text.status());
    std::fputs(text->c_str(), stdout);
    return kExitOk;
  }
  std::printf("%lld logged rounds; logging policy's observed value %.4f; target: %s\n",
              static_cast<long long>(log.size()), logged, target.c_str());
  std::printf("%-6s %9s %9s   %2.0f%% interval        max w   ESS\n", "", "value", "std err",
              f.confidence * 100);
  for (const OpeEstimate& e : estimates)
    std::printf("%-6s %9.4f %9.4f   [%.4f, %.4f]  %7.2f  %.0f\n", e.estimator.c_str(), e.value,
                e.std_error, e.ci_low, e.ci_high, e.max_weight, e.effective_sample_size);
  return kExitOk;
}

// --uniform: the target is the uniform-random policy over the catalog; q̂ for DR is fitted on the
// evaluated logs themselves (FitRewardModel, as the learner fits it).
absl::StatusOr<OpeSamples> UniformSamples(const EvaluateFlags& f, const BanditLog& log,
                                          const ItemCatalog& items) {
  RewardModelOptions options;
  options.epochs = static_cast<int>(f.qhat_epochs);
  options.learning_rate = LearnerFlags::kQhatLearningRate;
  options.seed = static_cast<uint64_t>(f.seed);
  options.threads = static_cast<int>(f.threads);
  ASSIGN_OR_RETURN(const TwoTowerModel qhat, FitRewardModel(log, items, options));
  return MakeUniformOpeSamples(&qhat, log, items);
}

absl::StatusOr<OpeSamples> ModelSamples(const EvaluateFlags& f, const BanditLog** log_out,
                                        BanditLog* log_storage) {
  ASSIGN_OR_RETURN(ModelFolder model, LoadModelFolder(f.model_dir));
  std::string items_name;
  ASSIGN_OR_RETURN(const ItemCatalog items,
                   CatalogForModel(model, f.model_dir, f.items_path, &items_name));
  ASSIGN_OR_RETURN(*log_storage, ReadLogsCsv(f.logs_path, items, items_name));
  *log_out = log_storage;
  const TwoTowerModel* qhat = model.reward_model ? &*model.reward_model : nullptr;
  return MakeOpeSamples(model.policy, qhat, *log_storage, items);
}

int RunEvaluate(int argc, char** argv) {
  EvaluateFlags f;
  FlagParser p("optower evaluate --model MODEL_DIR --logs logs.csv\n"
               "       optower evaluate --uniform --logs logs.csv --items items.csv",
               "Estimates the model's policy value on logged data with IPS, SNIPS and DR (DR uses\n"
               "the model's reward model q̂), each with a normal-approximation confidence interval.\n"
               "Use logs the model was not trained on for an honest estimate. With --uniform the\n"
               "target is the uniform-random policy over the catalog (pi(a|x) = 1/N, also the\n"
               "marginal of any item at any slate position) and DR's q̂ is fitted on these logs.");
  p.AddString("model", &f.model_dir, "model folder written by optower train");
  p.AddString("logs", &f.logs_path, "logged data: x0..x{D-1}[,c:...],action,reward,pscore[,position]");
  p.AddString("items", &f.items_path, "catalog (default: the model's items.csv)");
  p.AddBool("uniform", &f.uniform, "evaluate the uniform-random policy instead of a model");
  p.AddInt("qhat-epochs", &f.qhat_epochs, "--uniform: epochs of the q̂ fitted for DR");
  p.AddInt("seed", &f.seed, "--uniform: seed of the q̂ fit");
  p.AddInt("threads", &f.threads, "--uniform: threads of the q̂ fit (0 = all cores)");
  p.AddDouble("confidence", &f.confidence, "two-sided interval level");
  p.AddDouble("weight-clip", &f.weight_clip, "clip importance weights (0 = off)");
  p.AddBool("json", &f.json, "print one JSON object");
  p.Require("logs");
  if (auto done = ParseCommandLine(p, argc, argv, 0)) return *done;
  if (f.uniform && !f.model_dir.empty())
    return UsageError("--uniform evaluates the uniform-random policy: drop --model");
  if (f.uniform && f.items_path.empty()) return UsageError("--uniform needs --items");
  if (!f.uniform && f.model_dir.empty()) return UsageError("missing required flag --model (or --uniform)");
  if (f.qhat_epochs < 1) return UsageError("--qhat-epochs: must be >= 1");
  BanditLog log_storage;
  const BanditLog* log = &log_storage;
  absl::StatusOr<OpeSamples> samples;
  std::string target;
  if (f.uniform) {
    auto items = ReadItemsCsv(f.items_path);
    if (!items.ok()) return ReportError(items.status());
    auto read = ReadLogsCsv(f.logs_path, *items, f.items_path);
    if (!read.ok()) return ReportError(read.status());
    log_storage = *std::move(read);
    samples = UniformSamples(f, log_storage, *items);
    target = absl::StrFormat("uniform random over %d items", items->size());
  } else {
    samples = ModelSamples(f, &log, &log_storage);
    target = "the model's policy";
  }
  if (!samples.ok()) return ReportError(samples.status());
  OpeOptions options;
  options.confidence = f.confidence;
  options.weight_clip = f.weight_clip;
  auto estimates = EstimateAll(*samples, options);
  if (!estimates.ok()) return ReportError(estimates.status());
  return PrintEstimates(f, *log, target, *estimates);
}

}  // namespace

OPTOWER_REGISTER_COMMAND(evaluate, "evaluate",
                         "off-policy estimates (IPS, SNIPS, DR) of a model's or the uniform policy's "
                         "value on logs",
                         RunEvaluate);

}  // namespace optower::cli
