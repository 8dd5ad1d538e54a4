#include "core/storage/model_version_folder.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/atomic_file.h"
#include "core/base/csv_io.h"
#include "core/base/status_macros.h"
#include "core/base/test_points.h"

namespace optower {

absl::Status SetManifestVersion(const std::string& version, ModelManifest* manifest) {
  RETURN_IF_ERROR(CheckModelVersion(version));
  if (!manifest->version.empty() && manifest->version != version)
    return absl::InvalidArgumentError(absl::StrFormat(
        "manifest.version=\"%s\" differs from version=\"%s\"", manifest->version, version));
  manifest->version = version;
  return absl::OkStatus();
}

absl::Status WriteModelVersionFolder(const std::string& dir, const TwoTowerModel& policy,
                                     const TwoTowerModel* reward_model, const ItemCatalog& items,
                                     const ModelManifest& manifest) {
  ASSIGN_OR_RETURN(std::string json, FormatManifestJson(manifest));
  const std::string text = FormatManifestText(manifest);
  // Same layout as SaveModelFolder (LoadModelFolder reads it) plus manifest.txt, in one rename.
  AtomicDirectory::Options folder_options;
  folder_options.crash_point_prefix = "save";
  ASSIGN_OR_RETURN(auto out, AtomicDirectory::Create(dir, folder_options));
  RETURN_IF_ERROR(FaultPoint("save.weights", absl::StrCat("write ", out->FilePath("policy"))));
  RETURN_IF_ERROR(policy.Save(out->FilePath("policy")));
  if (reward_model != nullptr) RETURN_IF_ERROR(reward_model->Save(out->FilePath("reward_model")));
  CrashPoint("save.after_weights");
  RETURN_IF_ERROR(WriteItemsCsv(out->FilePath("items.csv"), items));
  RETURN_IF_ERROR(WriteFileAtomically(out->FilePath(kManifestJsonFile), json));
  RETURN_IF_ERROR(WriteFileAtomically(out->FilePath(kManifestTextFile), text));
  return out->Commit();
}

absl::StatusOr<ModelManifest> ParseVersionManifest(const std::string& text,
                                                   const std::string& version,
                                                   const std::string& where) {
  absl::StatusOr<ModelManifest> m = ParseManifestText(text);
  if (!m.ok()) return absl::DataLossError(absl::StrCat(where, ": ", m.status().message()));
  if (m->version != version)
    return absl::DataLossError(absl::StrFormat("%s: version=\"%s\" but the version is %s", where,
                                               m->version, version));
  return m;
}

}  // namespace optower
