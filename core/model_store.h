// ModelStore: the service's numbered model versions on disk (DESIGN §6 "Model store"), in the shape of
// tensorflow/serving's version folders:
//
//   <root>/models/000001/{policy/,reward_model/,items.csv,manifest.json,manifest.txt}
//   <root>/models/000002/...
//   <root>/models/CURRENT          one line: the version being served (written atomically)
//
// A version is a string of >= 6 decimal digits, zero-padded ("000001"), so that lexical order is
// numeric order up to 999999 (List() sorts numerically anyway). Each version folder is a model folder
// (core/model_folder.h: LoadModelFolder reads it) plus the manifest twins:
//   manifest.json  for people and tools (also holds the per-epoch training history);
//   manifest.txt   `key=value` lines, the machine-read copy that List()/GetManifest() parse.
// A folder is written under a temporary sibling (`000003.tmp-<random>`) and renamed into place, so a
// crash leaves either the complete version or a leftover temporary, which List() ignores (as it
// ignores any entry that is not a version name or has no manifest.txt).
//
// Every version is kept, promoted or not. A rejected version never becomes CURRENT by itself; only an
// explicit SetCurrent (a rollback) can name it.
//
// Thread safety: all methods are safe to call concurrently within one process (an internal mutex
// serialises CURRENT and manifest rewrites). Two processes must not write the same root.
// Blocking: every call does file I/O (Save: the model weights plus fsyncs).
#ifndef OPTOWER_CORE_MODEL_STORE_H_
#define OPTOWER_CORE_MODEL_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/bandit_data.h"
#include "core/model_folder.h"
#include "core/ope.h"
#include "core/policy_learner.h"
#include "core/two_tower_model.h"

namespace optower {

// The promotion gate's numbers: old (served) and new (candidate) policy values by DR on the same
// holdout with the same q̂, and the paired per-sample difference DR_i(new) - DR_i(old).
struct OpeComparison {
  double confidence = 0.95;  // two-sided level of every interval here
  double tolerance = 0.0;    // the gate rejects when difference.ci_high < -tolerance
  OpeEstimate old_policy;    // estimator "dr"
  OpeEstimate new_policy;    // estimator "dr"
  OpeEstimate difference;    // estimator "dr_diff"
};

struct ModelManifest {
  std::string version;          // the folder name
  std::string parent_version;   // the version served when the job started ("" = none / untracked)
  int64_t created_time_us = 0;  // unix micros
  std::string job_id;           // the trainer job that produced it ("" = saved by other means)
  int64_t data_watermark = 0;   // max served_id of the event log rows used (0 = none)
  std::string objective;        // dr | ipw | dm
  // Counts of the job's training data.
  int64_t n_events = 0;   // usable samples (train + holdout)
  int64_t n_train = 0;
  int64_t n_holdout = 0;
  // Learner metrics (metrics.history is written to manifest.json only; List() returns it empty).
  PolicyTrainMetrics metrics;
  std::optional<OpeComparison> ope;  // absent when there was nothing to compare against
  bool promoted = false;
  std::string decision;  // "promoted" | "rejected" | "failed" (passed the gate but publishing failed)
  std::string reason;    // why, with the numbers
  std::optional<double> index_recall;  // recall@K of the served ANN index, if the service measured it
};

// True for names of >= 6 ASCII digits (what NextVersion produces). Anything else (including path
// separators) is not a version; every method that takes a version checks it (InvalidArgument).
bool IsModelVersion(const std::string& name);

// The manifest twins, exposed for tests and tools. ParseManifestText reads what
// FormatManifestText wrote (unknown keys are ignored, so newer writers stay readable); DataLoss
// naming the line on malformed input.
absl::StatusOr<std::string> FormatManifestJson(const ModelManifest& manifest);
std::string FormatManifestText(const ModelManifest& manifest);
absl::StatusOr<ModelManifest> ParseManifestText(const std::string& text);

class ModelStore {
 public:
  // Creates <root>/models if missing (root itself must exist: NotFound otherwise).
  static absl::StatusOr<std::unique_ptr<ModelStore>> Open(const std::string& root);

  ModelStore(const ModelStore&) = delete;
  ModelStore& operator=(const ModelStore&) = delete;

  // One past the largest version-named entry in models/ (complete or not), zero-padded to 6 digits;
  // "000001" for an empty store. Not a reservation: with one writer (the trainer) it is unique.
  absl::StatusOr<std::string> NextVersion() const;

  // Writes models/<version>/ atomically (temporary folder + rename). manifest.version must be empty
  // or equal `version` (it is set to `version`). `reward_model` may be null. AlreadyExists if the
  // version exists.
  absl::Status Save(const std::string& version, const TwoTowerModel& policy,
                    const TwoTowerModel* reward_model, const ItemCatalog& items,
                    ModelManifest manifest);

  // Manifests of all complete versions, ascending by version. DataLoss if a manifest.txt is
  // malformed (naming the file).
  absl::StatusOr<std::vector<ModelManifest>> List() const;
  // NotFound if the version has no complete folder.
  absl::StatusOr<ModelManifest> GetManifest(const std::string& version) const;
  absl::StatusOr<ModelFolder> Load(const std::string& version) const;

  // Rewrites the manifest twins of an existing version (each file atomically; manifest.txt last).
  // `edit` must not change the version. Used to record the publish outcome and the index recall.
  absl::Status UpdateManifest(const std::string& version,
                              const std::function<void(ModelManifest&)>& edit);

  // The version named by CURRENT, or nullopt when no CURRENT exists yet. DataLoss if CURRENT names
  // something that is not a complete version.
  absl::StatusOr<std::optional<std::string>> Current() const;
  // Points CURRENT at `version` (NotFound unless it is a complete version). Does not look at
  // `promoted`: callers decide (the trainer only after a successful publish, Rollback explicitly).
  absl::Status SetCurrent(const std::string& version);

  // The promoted version with the largest number, or nullopt.
  absl::StatusOr<std::optional<ModelManifest>> LatestPromoted() const;

  // What a restarting server should serve: Current() if set (it reflects rollbacks), else
  // LatestPromoted()'s version, else nullopt.
  absl::StatusOr<std::optional<std::string>> ServingVersion() const;

  const std::string& models_dir() const { return models_dir_; }
  std::string VersionDir(const std::string& version) const;

 private:
  explicit ModelStore(std::string models_dir) : models_dir_(std::move(models_dir)) {}
  absl::StatusOr<std::vector<std::string>> VersionNames() const;  // sorted numerically, all entries
  absl::StatusOr<ModelManifest> ReadManifest(const std::string& version) const;

  const std::string models_dir_;
  mutable absl::Mutex mu_;  // serialises writes of CURRENT and of manifests
};

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_STORE_H_
