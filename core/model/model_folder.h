// A self-describing trained-model folder, as written by `optower train` and the service's trainer:
//
//   DIR/policy/{config.txt,weights.pt}        the two-tower policy (what is served)
//   DIR/reward_model/{config.txt,weights.pt}  q̂, kept for DR evaluation and warm starts
//   DIR/items.csv                             the catalog it was trained with (item,f0..)
//   DIR/manifest.json                         objective, options, metrics (written by the caller)
//
// SaveModelFolder writes everything into a temporary sibling folder and renames it into place, so a
// reader never sees a partial model.
#ifndef OPTOWER_CORE_MODEL_MODEL_FOLDER_H_
#define OPTOWER_CORE_MODEL_MODEL_FOLDER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/model/two_tower_model.h"

namespace optower {

struct ModelFolder {
  TwoTowerModel policy;
  std::optional<TwoTowerModel> reward_model;
  std::optional<ItemCatalog> items;  // absent if the folder has no items.csv
};

// `manifest_json` is written verbatim as manifest.json. Fails with AlreadyExists when `dir` exists
// and is non-empty unless `overwrite`.
absl::Status SaveModelFolder(const std::string& dir, const TwoTowerModel& policy,
                             const TwoTowerModel* reward_model, const ItemCatalog& items,
                             const std::string& manifest_json, bool overwrite);

// Accepts a folder written by SaveModelFolder, or a bare policy folder (config.txt + weights.pt).
absl::StatusOr<ModelFolder> LoadModelFolder(const std::string& dir);

// The catalog to score a loaded model on: `items_path` when given, else the folder's items.csv
// (InvalidArgument when neither exists). `*items_name` (optional) gets the catalog's file name, for
// messages such as "action=17 is not an item in <items_name>".
absl::StatusOr<ItemCatalog> CatalogForModel(const ModelFolder& model, const std::string& model_dir,
                                            const std::string& items_path,
                                            std::string* items_name = nullptr);

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_MODEL_FOLDER_H_
