// ModelStore: the service's numbered model versions on disk (DESIGN §6 "Model store"), in the shape of
// tensorflow/serving's version folders:
//
//   <root>/models/000001/{policy/,reward_model/,items.csv,manifest.json,manifest.txt}
//   <root>/models/000002/...
//   <root>/models/CURRENT          one line: the version being served (written atomically)
//
// A version is a string of >= 6 decimal digits, zero-padded ("000001"), so that lexical order is
// numeric order up to 999999 (List() sorts numerically anyway). Each version folder is a model folder
// (core/model/model_folder.h: LoadModelFolder reads it) plus the manifest twins:
//   manifest.json  for people and tools (also holds the per-epoch training history);
//   manifest.txt   `key=value` lines, the machine-read copy that List()/GetManifest() parse.
// A folder is written under a temporary sibling (`000003.tmp-<random>`), every file and folder in it
// fsynced, renamed into place and the parent fsynced (core/base/atomic_file.h), so a crash or a power loss
// leaves either the complete version or a leftover temporary, which List() ignores (as it ignores any
// entry that is not a version name or has no manifest.txt) and Open() removes.
//
// Retention (Options): after each Save and SetCurrent, versions beyond the newest keep_promoted
// promoted ones and the newest keep_rejected others are deleted — never CURRENT, never the newest
// version (a job's version between its Save and its SetCurrent). A deleted version is first renamed
// to `.trash-<version>` (one atomic step, so it is never seen half-deleted), then removed; Open()
// removes leftovers. A version whose manifest cannot be read is reported and left alone.
// A rejected version never becomes CURRENT by itself; only an explicit SetCurrent (a rollback) can
// name it.
//
// Thread safety: all methods are safe to call concurrently within one process (an internal mutex
// serialises CURRENT and manifest rewrites). Two processes must not write the same root (the server
// holds <data_dir>/LOCK, core/base/data_dir_lock.h).
// Blocking: every call does file I/O (Save: the model weights plus fsyncs).
#ifndef OPTOWER_CORE_STORAGE_MODEL_STORE_H_
#define OPTOWER_CORE_STORAGE_MODEL_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/base/bandit_data.h"
#include "core/base/learning_report.h"
#include "core/model/model_folder.h"
#include "core/model/two_tower_model.h"

namespace optower {

// The gate's estimates restricted to the draws at one slate position.
struct PositionComparison {
  int32_t position = 0;
  OpeEstimate old_policy;  // estimator "dr"
  OpeEstimate new_policy;  // estimator "dr"
  OpeEstimate difference;  // estimator "dr_diff"
};

// The promotion gate's numbers: old (served) and new (candidate) policy values by DR on the same
// holdout with the same q̂, and the paired per-sample difference DR_i(new) - DR_i(old).
struct OpeComparison {
  double confidence = 0.95;  // two-sided level of every interval here
  double tolerance = 0.0;    // the gate rejects when difference.ci_high < -tolerance
  OpeEstimate old_policy;    // estimator "dr"
  OpeEstimate new_policy;    // estimator "dr"
  OpeEstimate difference;    // estimator "dr_diff"
  // Slates (holdout draws at positions > 0): the same per position, in position order (positions
  // with fewer than 2 draws left out). Reported in the evaluate event; not part of the manifest.
  std::vector<PositionComparison> positions;
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
  struct Options {
    // Retention (file comment). keep_promoted >= 1 keeps a rollback target; keep_rejected >= 0.
    // Each version holds a full copy of the catalog, so these bound the store's disk use.
    int keep_promoted = 5;
    int keep_rejected = 3;
    // List(): at most this many newest versions (ListModels). >= 1.
    int list_limit = 100;

    // InvalidArgument naming the first field out of range and its value. The names are the
    // server config's (keep_promoted_versions, keep_rejected_versions, list_models_limit).
    absl::Status Validate() const;
  };

  // Creates <root>/models if missing (root itself must exist: NotFound otherwise) and removes what a
  // crash left behind (temporary and trash folders). InvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<ModelStore>> Open(const std::string& root,
                                                          const Options& options);
  static absl::StatusOr<std::unique_ptr<ModelStore>> Open(const std::string& root) {
    return Open(root, Options{});
  }

  ModelStore(const ModelStore&) = delete;
  ModelStore& operator=(const ModelStore&) = delete;

  // One past the largest version-named entry in models/ (complete or not), zero-padded to 6 digits;
  // "000001" for an empty store. Not a reservation: with one writer (the trainer) it is unique.
  absl::StatusOr<std::string> NextVersion() const;

  // Writes models/<version>/ atomically (temporary folder + fsyncs + rename), then applies
  // retention. manifest.version must be empty or equal `version` (it is set to `version`).
  // `reward_model` may be null. AlreadyExists if the version exists. Test points (core/base/test_points.h):
  // fault "save.weights"; crash "save.after_weights", "save.before_fsync", "save.before_rename",
  // "save.after_rename".
  absl::Status Save(const std::string& version, const TwoTowerModel& policy,
                    const TwoTowerModel* reward_model, const ItemCatalog& items,
                    ModelManifest manifest);

  // Manifests of complete versions, ascending by version: all of them, or with `max_entries` > 0
  // only the newest max_entries version folders. A version whose manifest.txt is malformed is
  // skipped, and its DataLoss error (naming the file) appended to `skipped` when given.
  absl::StatusOr<std::vector<ModelManifest>> List(size_t max_entries = 0,
                                                  std::vector<absl::Status>* skipped = nullptr) const;
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
  // Points CURRENT at `version` (NotFound unless it is a complete version), then applies
  // retention. Does not look at `promoted`: callers decide (the trainer only after a successful
  // publish, Rollback explicitly). Crash points "current.before_write", "current.after_write".
  absl::Status SetCurrent(const std::string& version);

  // Applies retention now (Save and SetCurrent call it). Returns the versions deleted; a failed
  // deletion is an error (the version that could not be removed is named).
  absl::StatusOr<std::vector<std::string>> Prune();

  // The promoted version with the largest number, or nullopt.
  absl::StatusOr<std::optional<ModelManifest>> LatestPromoted() const;

  // What a restarting server should serve: Current() if set (it reflects rollbacks), else
  // LatestPromoted()'s version, else nullopt.
  absl::StatusOr<std::optional<std::string>> ServingVersion() const;

  const std::string& models_dir() const { return models_dir_; }
  const Options& options() const { return options_; }
  std::string VersionDir(const std::string& version) const;

 private:
  ModelStore(std::string models_dir, Options options)
      : models_dir_(std::move(models_dir)), options_(options) {}
  absl::StatusOr<std::vector<std::string>> VersionNames() const;  // sorted numerically, all entries
  absl::StatusOr<ModelManifest> ReadManifest(const std::string& version) const;
  absl::StatusOr<std::optional<std::string>> CurrentLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PruneAndReport();  // Prune(), a failure printed as a warning

  const std::string models_dir_;
  const Options options_;
  mutable absl::Mutex mu_;  // serialises writes of CURRENT and of manifests
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_MODEL_STORE_H_
