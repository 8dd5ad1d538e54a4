// optower train: fits q̂ and the policy towers off-policy from a logs CSV and writes a model folder.
#include <sys/stat.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/learner_flags.h"
#include "core/base/csv_io.h"
#include "core/base/json_writer.h"
#include "core/model/model_folder.h"
#include "core/learning/ope.h"
#include "core/learning/policy_evaluation.h"
#include "core/learning/policy_learner.h"
#include "core/base/status_macros.h"

namespace optower::cli {
namespace {

bool NonEmptyPathExists(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  if (!S_ISDIR(st.st_mode)) return true;
  return ::rmdir(path.c_str()) != 0;  // an empty folder is removed (and later recreated)
}

std::string ManifestJson(const LearnerFlags& flags, const std::string& logs, const std::string& items,
                         const PolicyTrainMetrics& m) {
  JsonWriter w;
  w.BeginObject()
      .Field("format", "optower-model-v1")
      .Field("objective", m.objective)
      .Field("logs", logs)
      .Field("items", items);
  w.Key("options");
  flags.WriteJson(w);
  w.Key("metrics").BeginObject()
      .Field("n_train", m.n_train)
      .Field("n_validation", m.n_validation)
      .Field("n_items", m.n_items)
      .Field("epochs_run", m.epochs_run)
      .Field("best_epoch", m.best_epoch)
      .Field("reward_model_seconds", m.reward_model_seconds)
      .Field("policy_seconds", m.policy_seconds)
      .Field("total_seconds", m.total_seconds)
      .Field("threads", m.threads)
      .Field("validation_dr_initial", m.validation_dr_initial)
      .Field("validation_dr_best", m.validation_dr_best)
      .Field("logging_policy_value", m.logging_policy_value);
  w.Key("history").BeginArray();
  for (const EpochRecord& r : m.history)
    w.BeginObject().Field("epoch", r.epoch).Field("train_loss", r.train_loss)
        .Field("validation_dr", r.validation_dr).EndObject();
  w.EndArray().EndObject().EndObject();
  auto s = w.Finish();
  return s.ok() ? *s : "{}\n";
}

int RunTrain(int argc, char** argv) {
  std::string logs_path, items_path, out;
  bool overwrite = false, quiet = false;
  LearnerFlags lf;
  FlagParser p("optower train --logs logs.csv --items items.csv --objective dr|ipw|dm --out MODEL_DIR",
               "Fits the reward model q̂ and the two-tower policy off-policy (DR / IPS policy\n"
               "gradients, or the direct method) and writes a model folder: policy/, reward_model/,\n"
               "items.csv and manifest.json (config, options, metrics).");
  p.AddString("logs", &logs_path,
              "logged data: x0..x{D-1}[,c:<field>...],action,reward,pscore[,position]");
  p.AddString("items", &items_path, "item catalog: item,f0..f{E-1}");
  p.AddString("out", &out, "model folder to write (atomically)");
  p.AddBool("overwrite", &overwrite, "replace an existing non-empty --out");
  p.AddBool("quiet", &quiet, "no progress output");
  lf.Register(p);
  p.Require("logs");
  p.Require("items");
  p.Require("out");
  if (auto done = ParseCommandLine(p, argc, argv, 0)) return *done;
  PolicyLearnerOptions options;
  if (absl::Status s = lf.Apply(options); !s.ok()) return ReportError(s);
  if (!overwrite && NonEmptyPathExists(out))
    return UsageError(absl::StrFormat("--out=%s exists and is not empty (use --overwrite)", out));

  auto items = ReadItemsCsv(items_path);
  if (!items.ok()) return ReportError(items.status());
  auto log = ReadLogsCsv(logs_path, *items, items_path);
  if (!log.ok()) return ReportError(log.status());

  auto result = TrainPolicy(*log, *items, options, MakeProgressPrinter(quiet));
  if (!quiet && ::isatty(2)) std::fprintf(stderr, "\n");
  if (!result.ok()) return ReportError(result.status());
  const PolicyTrainMetrics& m = result->metrics;
  absl::Status saved = SaveModelFolder(out, result->policy, &result->reward_model, *items,
                                       ManifestJson(lf, logs_path, items_path, m), overwrite);
  if (!saved.ok()) return ReportError(saved);
  std::printf(
      "trained %s on %lld rows (%lld held out) x %lld items in %.2f s (q̂ %.2f s, policy %.2f s, "
      "%d threads)\nvalidation DR value: initial %.4f -> best %.4f (epoch %d of %d); logging "
      "policy %.4f\nwrote %s\n",
      m.objective.c_str(), static_cast<long long>(m.n_train), static_cast<long long>(m.n_validation),
      static_cast<long long>(m.n_items), m.total_seconds, m.reward_model_seconds, m.policy_seconds,
      m.threads, m.validation_dr_initial, m.validation_dr_best, m.best_epoch, m.epochs_run,
      m.logging_policy_value, out.c_str());
  return kExitOk;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(train, "train",
                         "train the two-tower policy off-policy (dr | ipw | dm) from a logs CSV",
                         RunTrain);

}  // namespace optower::cli
