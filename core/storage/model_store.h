// ModelStore: the service's numbered model versions — the registry of trained models, their
// manifests and CURRENT (DESIGN §6 "Model store"), in the shape of tensorflow/serving's version
// folders. This is the interface; two backends implement it:
//   FileModelStore      (core/storage/file_model_store.h)      <root>/models/<version>/ folders and a
//                       CURRENT file: the embedded default, one process per data_dir;
//   PostgresModelStore  (core/storage/postgres_model_store.h)  tables in PostgreSQL, shared by
//                       several serving replicas and one trainer (docs/SCALING.md); Load materialises
//                       a version into a local cache folder.
//
// A version is a string of >= 6 decimal digits, zero-padded ("000001"), so that lexical order is
// numeric order up to 999999 (List() sorts numerically anyway). Each version is a model folder
// (core/model/model_folder.h: LoadModelFolder reads it) plus the manifest twins:
//   manifest.json  for people and tools (also holds the per-epoch training history);
//   manifest.txt   `key=value` lines, the machine-read copy that List()/GetManifest() parse.
// Save is atomic in both backends: a reader sees the complete version or none of it.
//
// Retention (Options): after each Save and SetCurrent, versions beyond the newest keep_promoted
// promoted ones and the newest keep_rejected others are deleted — never CURRENT, never the newest
// version (a job's version between its Save and its SetCurrent). A version whose manifest cannot be
// read is reported and left alone. A rejected version never becomes CURRENT by itself; only an
// explicit SetCurrent (a rollback) can name it.
//
// Thread safety: all methods are safe to call concurrently within one process.
// Blocking: every call does I/O (file system or database; Save: the model weights).
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

// "Invalid argument" unless IsModelVersion(version), with an example of a version.
absl::Status CheckModelVersion(const std::string& version);
// Numeric order of version names (shorter is smaller, then lexical).
bool ModelVersionLess(const std::string& a, const std::string& b);
// `n` zero-padded to 6 digits ("000007"): what NextVersion returns after version n - 1.
std::string FormatModelVersion(uint64_t n);

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

  ModelStore() = default;
  virtual ~ModelStore() = default;
  ModelStore(const ModelStore&) = delete;
  ModelStore& operator=(const ModelStore&) = delete;

  // One past the largest stored version (complete or not), zero-padded to 6 digits; "000001" for
  // an empty store. Not a reservation: with one writer (the trainer) it is unique.
  virtual absl::StatusOr<std::string> NextVersion() const = 0;

  // Stores `version` atomically, then applies retention. manifest.version must be empty or equal
  // `version` (it is set to `version`). `reward_model` may be null. AlreadyExists if the version
  // exists. Test points (core/base/test_points.h): fault "save.weights"; the file store's crash
  // points are in file_model_store.h.
  virtual absl::Status Save(const std::string& version, const TwoTowerModel& policy,
                            const TwoTowerModel* reward_model, const ItemCatalog& items,
                            ModelManifest manifest) = 0;

  // Manifests of complete versions, ascending by version: all of them, or with `max_entries` > 0
  // only the newest max_entries versions. A version whose manifest.txt is malformed is skipped, and
  // its DataLoss error (naming the version) appended to `skipped` when given.
  virtual absl::StatusOr<std::vector<ModelManifest>> List(
      size_t max_entries = 0, std::vector<absl::Status>* skipped = nullptr) const = 0;
  // NotFound if the version is not a complete stored version.
  virtual absl::StatusOr<ModelManifest> GetManifest(const std::string& version) const = 0;
  // The version's model folder, read from VersionDir(version) (which the PostgreSQL store fills
  // from the database first, atomically, when it is not there yet).
  virtual absl::StatusOr<ModelFolder> Load(const std::string& version) const = 0;

  // Rewrites the manifest twins of an existing version. `edit` must not change the version. Used to
  // record the publish outcome and the index recall.
  virtual absl::Status UpdateManifest(const std::string& version,
                                      const std::function<void(ModelManifest&)>& edit) = 0;

  // The version named by CURRENT, or nullopt when no CURRENT exists yet. DataLoss if CURRENT names
  // something that is not a complete version.
  virtual absl::StatusOr<std::optional<std::string>> Current() const = 0;
  // Points CURRENT at `version` (NotFound unless it is a complete version), then applies
  // retention. Does not look at `promoted`: callers decide (the trainer only after a successful
  // publish, Rollback explicitly).
  virtual absl::Status SetCurrent(const std::string& version) = 0;

  // Applies retention now (Save and SetCurrent call it). Returns the versions deleted; a failed
  // deletion is an error (the version that could not be removed is named).
  virtual absl::StatusOr<std::vector<std::string>> Prune() = 0;

  // The promoted version with the largest number, or nullopt.
  absl::StatusOr<std::optional<ModelManifest>> LatestPromoted() const;

  // What a restarting server should serve: Current() if set (it reflects rollbacks), else
  // LatestPromoted()'s version, else nullopt.
  absl::StatusOr<std::optional<std::string>> ServingVersion() const;

  // The local folder Load(version) reads (file store: <root>/models/<version>; PostgreSQL store:
  // <cache_dir>/<version>, present once Load ran). For messages and tools.
  virtual std::string VersionDir(const std::string& version) const = 0;
  // Where the store lives, for messages: a folder, or the PostgreSQL schema and the cache folder.
  virtual std::string Location() const = 0;
  virtual const Options& options() const = 0;

 protected:
  // Prune() after a Save or SetCurrent, a failure printed as a warning: the version is saved (or
  // CURRENT set) either way; a failed clean-up costs space, not data, and is retried after the next
  // publish.
  void PruneAndReport();
};

// The versions retention deletes, newest first: `manifests` ascending by version (all complete
// versions that could be read), `current` the CURRENT version if any. Never the newest version
// (`newest`, the largest stored name, complete or not) nor CURRENT. Shared by both backends.
std::vector<std::string> VersionsToPrune(const std::vector<ModelManifest>& manifests,
                                         const std::string& newest,
                                         const std::optional<std::string>& current,
                                         const ModelStore::Options& options);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_MODEL_STORE_H_
