// One model version's folder, the unit both model-store backends write and read
// (core/storage/model_store.h):
//
//   <dir>/{policy/,reward_model/,items.csv,manifest.json,manifest.txt}
//
// WriteModelVersionFolder writes it atomically: under a temporary sibling (`<dir>.tmp-<random>`),
// every file and folder fsynced, renamed into place, the parent fsynced (core/base/atomic_file.h).
// The file store writes straight into <root>/models/<version>; the PostgreSQL store writes into a
// private temporary folder and uploads the files from there.
#ifndef OPTOWER_CORE_STORAGE_MODEL_VERSION_FOLDER_H_
#define OPTOWER_CORE_STORAGE_MODEL_VERSION_FOLDER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/model/two_tower_model.h"
#include "core/storage/model_store.h"

namespace optower {

inline constexpr char kManifestJsonFile[] = "manifest.json";
inline constexpr char kManifestTextFile[] = "manifest.txt";

// Checks `version` (CheckModelVersion) and that manifest->version is empty or equal to it
// (InvalidArgument otherwise), then sets manifest->version. What every Save starts with.
absl::Status SetManifestVersion(const std::string& version, ModelManifest* manifest);

// Writes the folder `dir` (which must not exist: AlreadyExists otherwise) from the model, the
// catalog and `manifest` (whose version the caller has set). Test points: fault "save.weights";
// crash "save.after_weights" and, with crash_point_prefix "save", AtomicDirectory's
// "save.before_fsync", "save.before_rename", "save.after_rename".
absl::Status WriteModelVersionFolder(const std::string& dir, const TwoTowerModel& policy,
                                     const TwoTowerModel* reward_model, const ItemCatalog& items,
                                     const ModelManifest& manifest);

// Parses manifest.txt text of `version` (`where` names it in messages): DataLoss when it is
// malformed or names another version.
absl::StatusOr<ModelManifest> ParseVersionManifest(const std::string& text,
                                                   const std::string& version,
                                                   const std::string& where);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_MODEL_VERSION_FOLDER_H_
