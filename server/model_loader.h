// Start-up: what the server serves first — the model and the catalog.
//
// Order (docs/TRAINING.md "Restart"):
//   1. the model store (<data_dir>/models, core/storage/model_store.h) has a serving version — CURRENT, else
//      the latest promoted one: serve it (this is how a restarted server continues with what the
//      trainer promoted or an operator rolled back to; model_dir is then ignored). If it cannot be
//      served (unreadable CURRENT, missing or corrupt weights, a malformed manifest, dimensions that
//      do not fit), a warning line names the version and the error, and the next newest promoted
//      version is tried; start-up fails only when no stored version can be served;
//   2. else ServerConfig.model_dir: an `optower train` output folder (DIR/policy/ + DIR/items.csv,
//      core/model/model_folder.h) or a bare policy folder. It is imported into the store as the next
//      version (000001 in a fresh store), promoted and CURRENT, so that a rollback can return to it;
//      it is served under that version;
//   3. else fresh random towers (TwoTowerModel::Create from the catalog's feature dimension and
//      ServerConfig.dim_context; init_hidden, init_embedding_dim, init_seed; an item-id embedding
//      when the items have no features), version "init-<seed>", not stored: the server serves with
//      exploration from the first request, and the first trainer job does not warm-start from them.
// The catalog: the stored catalog (<data_dir>/catalog, core/storage/catalog_store.h) when there is one — it
// holds every acknowledged UpsertItems/DeleteItems, so it wins over items_path (a warning line says
// so when items_path differs from it); else ServerConfig.items_path when given, else the stored
// version's (or model folder's) items.csv. A catalog that did not come from the catalog store is
// saved there as catalog version 0 (items_path seeds an empty store only).
//
// Thread safety: reentrant. Blocks on file reads (and, for an import, the store's writes).
#ifndef OPTOWER_SERVER_MODEL_LOADER_H_
#define OPTOWER_SERVER_MODEL_LOADER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/storage/catalog_store.h"
#include "core/storage/model_store.h"
#include "core/model/two_tower_model.h"
#include "optower/v1/optower.pb.h"

namespace optower::server {

struct ServingModel {
  std::shared_ptr<const TwoTowerModel> model;
  std::string version;
  ItemCatalog catalog;
  // The towers come from training (a stored version or a model folder), not from random init.
  bool trained = false;
  int64_t catalog_version = 0;  // the stored catalog's version, else 0
  // For the start-up line, e.g. "stored version 000003 (CURRENT)".
  std::string source;
};

// `config` must have passed ValidateServerConfig. `store` may be null (no store: steps 2 without the
// import, and 3); `catalogs` may be null (the catalog is not persisted). Errors name the config field
// (model_dir, items_path, dim_context) and the offending value, or the stored version(s). Warnings
// (a version skipped, items_path overridden) go to stderr, one line each.
// `seed` false (a process of a shared deployment that does not hold the trainer election): an
// empty store is not written — model_dir is served under its folder name without an import, and
// the catalog is not stored — the elected trainer seeds the shared state and the follower brings it.
absl::StatusOr<ServingModel> LoadServingModel(const v1::ServerConfig& config, ModelStore* store,
                                              CatalogStore* catalogs = nullptr, bool seed = true);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_MODEL_LOADER_H_
