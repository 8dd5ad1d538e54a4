// Start-up: what the server serves first — the model (loaded from ServerConfig.model_dir, or fresh
// random towers) and the catalog (ServerConfig.items_path, or the model folder's items.csv).
//
// model_dir may be an `optower train` output folder (DIR/policy/ + DIR/items.csv, see
// core/model_folder.h), or a bare policy folder (config.txt + weights.pt), e.g. DIR/policy itself.
// Its version is the folder's name (the parent's name for a bare ".../policy" folder).
// Without model_dir, towers are created with TwoTowerModel::Create from the catalog's feature
// dimension and ServerConfig.dim_context (init_hidden, init_embedding_dim, init_seed; an item-id
// embedding when the items have no features), version "init-<seed>": the server then serves with
// exploration from the first request (softmax over random scores mixed with epsilon-uniform).
//
// Thread safety: reentrant. Blocks on file reads.
#ifndef OPTOWER_SERVER_MODEL_LOADER_H_
#define OPTOWER_SERVER_MODEL_LOADER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/bandit_data.h"
#include "core/two_tower_model.h"
#include "optower/v1/optower.pb.h"

namespace optower::server {

struct ServingModel {
  std::shared_ptr<const TwoTowerModel> model;
  std::string version;
  ItemCatalog catalog;
};

// `config` must have passed ValidateServerConfig. Errors name the config field (model_dir,
// items_path, dim_context) and the offending value.
absl::StatusOr<ServingModel> LoadServingModel(const v1::ServerConfig& config);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_MODEL_LOADER_H_
