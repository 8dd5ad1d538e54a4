// optower evaluate: off-policy estimates (IPS, SNIPS, DR) of a trained policy's value on logs.
#include <cstdio>
#include <iostream>

#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "core/base/csv_io.h"
#include "core/base/json_writer.h"
#include "core/model/model_folder.h"
#include "core/learning/ope.h"
#include "core/learning/policy_evaluation.h"

namespace optower::cli {
namespace {

int RunEvaluate(int argc, char** argv) {
  std::string model_dir, logs_path, items_path;
  double confidence = OpeOptions().confidence, weight_clip = OpeOptions().weight_clip;
  bool json = false;
  FlagParser p("optower evaluate --model MODEL_DIR --logs logs.csv",
               "Estimates the model's policy value on logged data with IPS, SNIPS and DR (DR uses\n"
               "the model's reward model q̂), each with a normal-approximation confidence interval.\n"
               "Use logs the model was not trained on for an honest estimate.");
  p.AddString("model", &model_dir, "model folder written by optower train");
  p.AddString("logs", &logs_path, "logged data: x0..x{D-1},action,reward,pscore");
  p.AddString("items", &items_path, "catalog (default: the model's items.csv)");
  p.AddDouble("confidence", &confidence, "two-sided interval level");
  p.AddDouble("weight-clip", &weight_clip, "clip importance weights (0 = off)");
  p.AddBool("json", &json, "print one JSON object");
  p.Require("model");
  p.Require("logs");
  if (auto done = ParseCommandLine(p, argc, argv, 0)) return *done;
  auto model = LoadModelFolder(model_dir);
  if (!model.ok()) return ReportError(model.status());
  std::string items_name;
  auto catalog = CatalogForModel(*model, model_dir, items_path, &items_name);
  if (!catalog.ok()) return ReportError(catalog.status());
  const ItemCatalog& items = *catalog;
  auto log = ReadLogsCsv(logs_path, items, items_name);
  if (!log.ok()) return ReportError(log.status());
  const TwoTowerModel* qhat = model->reward_model ? &*model->reward_model : nullptr;
  auto samples = MakeOpeSamples(model->policy, qhat, *log, items);
  if (!samples.ok()) return ReportError(samples.status());
  OpeOptions options;
  options.confidence = confidence;
  options.weight_clip = weight_clip;
  auto estimates = EstimateAll(*samples, options);
  if (!estimates.ok()) return ReportError(estimates.status());
  double logged = 0;
  for (float r : log->rewards) logged += r;
  logged /= static_cast<double>(log->size());
  if (json) {
    JsonWriter w;
    w.BeginObject().Field("n", log->size()).Field("logging_policy_value", logged)
        .Field("confidence", confidence);
    w.Key("estimates").BeginArray();
    for (const OpeEstimate& e : *estimates)
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
  std::printf("%lld logged rounds; logging policy's observed value %.4f\n",
              static_cast<long long>(log->size()), logged);
  std::printf("%-6s %9s %9s   %2.0f%% interval        max w   ESS\n", "", "value", "std err",
              confidence * 100);
  for (const OpeEstimate& e : *estimates)
    std::printf("%-6s %9.4f %9.4f   [%.4f, %.4f]  %7.2f  %.0f\n", e.estimator.c_str(), e.value,
                e.std_error, e.ci_low, e.ci_high, e.max_weight, e.effective_sample_size);
  return kExitOk;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(evaluate, "evaluate",
                         "off-policy estimates (IPS, SNIPS, DR) of a model's value on logs",
                         RunEvaluate);

}  // namespace optower::cli
