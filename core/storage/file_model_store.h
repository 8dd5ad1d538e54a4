// FileModelStore: the model store (core/storage/model_store.h) in folders on the local disk — the
// embedded default, one process per data_dir:
//
//   <root>/models/000001/{policy/,reward_model/,items.csv,manifest.json,manifest.txt}
//   <root>/models/000002/...
//   <root>/models/CURRENT          one line: the version being served (written atomically)
//
// A version folder is written under a temporary sibling (`000003.tmp-<random>`), every file and
// folder in it fsynced, renamed into place and the parent fsynced (core/storage/model_version_folder.h),
// so a crash or a power loss leaves either the complete version or a leftover temporary, which List()
// ignores (as it ignores any entry that is not a version name or has no manifest.txt) and Open()
// removes. A version deleted by retention is first renamed to `.trash-<version>` (one atomic step,
// so it is never seen half-deleted), then removed; Open() removes leftovers.
//
// Test points (core/base/test_points.h): Save: fault "save.weights"; crash "save.after_weights",
// "save.before_fsync", "save.before_rename", "save.after_rename". SetCurrent: crash
// "current.before_write", "current.after_write". Prune: crash "prune.after_rename".
//
// Thread safety: all methods are safe to call concurrently within one process (an internal mutex
// serialises CURRENT and manifest rewrites). Two processes must not write the same root (the server
// holds <data_dir>/LOCK, core/base/data_dir_lock.h).
#ifndef OPTOWER_CORE_STORAGE_FILE_MODEL_STORE_H_
#define OPTOWER_CORE_STORAGE_FILE_MODEL_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/storage/model_store.h"

namespace optower {

class FileModelStore : public ModelStore {
 public:
  // Creates <root>/models if missing (root itself must exist: NotFound otherwise) and removes what a
  // crash left behind (temporary and trash folders). InvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<FileModelStore>> Open(const std::string& root,
                                                              const Options& options);
  static absl::StatusOr<std::unique_ptr<FileModelStore>> Open(const std::string& root) {
    return Open(root, Options{});
  }

  // One past the largest version-named entry in models/ (complete or not).
  absl::StatusOr<std::string> NextVersion() const override;
  absl::Status Save(const std::string& version, const TwoTowerModel& policy,
                    const TwoTowerModel* reward_model, const ItemCatalog& items,
                    ModelManifest manifest) override;
  absl::StatusOr<std::vector<ModelManifest>> List(
      size_t max_entries = 0, std::vector<absl::Status>* skipped = nullptr) const override;
  absl::StatusOr<ModelManifest> GetManifest(const std::string& version) const override;
  absl::StatusOr<ModelFolder> Load(const std::string& version) const override;
  // Each manifest file atomically; manifest.txt last.
  absl::Status UpdateManifest(const std::string& version,
                              const std::function<void(ModelManifest&)>& edit) override;
  absl::StatusOr<std::optional<std::string>> Current() const override;
  absl::Status SetCurrent(const std::string& version) override;
  absl::StatusOr<std::vector<std::string>> Prune() override;

  std::string VersionDir(const std::string& version) const override;
  std::string Location() const override { return models_dir_; }
  const Options& options() const override { return options_; }
  const std::string& models_dir() const { return models_dir_; }

 private:
  FileModelStore(std::string models_dir, Options options)
      : models_dir_(std::move(models_dir)), options_(options) {}
  absl::StatusOr<std::vector<std::string>> VersionNames() const;  // sorted numerically, all entries
  absl::StatusOr<ModelManifest> ReadManifest(const std::string& version) const;
  absl::StatusOr<std::optional<std::string>> CurrentLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string models_dir_;
  const Options options_;
  mutable absl::Mutex mu_;  // serialises writes of CURRENT and of manifests
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_FILE_MODEL_STORE_H_
