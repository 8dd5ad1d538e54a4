#include "core/model/model_folder.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "core/base/atomic_file.h"
#include "core/base/csv_io.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {
bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}
}  // namespace

absl::Status SaveModelFolder(const std::string& dir, const TwoTowerModel& policy,
                             const TwoTowerModel* reward_model, const ItemCatalog& items,
                             const std::string& manifest_json, bool overwrite) {
  AtomicDirectory::Options options;
  options.overwrite = overwrite;
  ASSIGN_OR_RETURN(auto out, AtomicDirectory::Create(dir, options));
  RETURN_IF_ERROR(policy.Save(out->FilePath("policy")));
  if (reward_model != nullptr) RETURN_IF_ERROR(reward_model->Save(out->FilePath("reward_model")));
  RETURN_IF_ERROR(WriteItemsCsv(out->FilePath("items.csv"), items));
  RETURN_IF_ERROR(WriteFileAtomically(out->FilePath("manifest.json"), manifest_json));
  return out->Commit();
}

absl::StatusOr<ModelFolder> LoadModelFolder(const std::string& dir) {
  if (!Exists(dir + "/policy/config.txt")) {
    // A bare policy folder.
    ASSIGN_OR_RETURN(TwoTowerModel policy, TwoTowerModel::Load(dir));
    return ModelFolder{std::move(policy), std::nullopt, std::nullopt};
  }
  ASSIGN_OR_RETURN(TwoTowerModel policy, TwoTowerModel::Load(dir + "/policy"));
  ModelFolder folder{std::move(policy), std::nullopt, std::nullopt};
  if (Exists(dir + "/reward_model/config.txt")) {
    ASSIGN_OR_RETURN(TwoTowerModel qhat, TwoTowerModel::Load(dir + "/reward_model"));
    folder.reward_model = std::move(qhat);
  }
  if (Exists(dir + "/items.csv")) {
    ASSIGN_OR_RETURN(ItemCatalog items, ReadItemsCsv(dir + "/items.csv"));
    folder.items = std::move(items);
  }
  return folder;
}

absl::StatusOr<ItemCatalog> CatalogForModel(const ModelFolder& model, const std::string& model_dir,
                                            const std::string& items_path,
                                            std::string* items_name) {
  if (!items_path.empty()) {
    if (items_name != nullptr) *items_name = items_path;
    return ReadItemsCsv(items_path);
  }
  if (!model.items)
    return absl::InvalidArgumentError(
        absl::StrCat("--model=", model_dir, " has no items.csv: pass --items"));
  if (items_name != nullptr) *items_name = model_dir + "/items.csv";
  return *model.items;
}

}  // namespace optower
