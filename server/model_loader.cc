#include "server/model_loader.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/csv_io.h"
#include "core/model_folder.h"
#include "core/status_macros.h"

namespace optower::server {
namespace {

// "runs/m1/" -> "m1"; "runs/m1/policy" -> "m1"; "policy" -> "policy".
std::string VersionFromDir(const std::string& dir) {
  std::vector<std::string> parts = absl::StrSplit(dir, '/', absl::SkipEmpty());
  if (parts.empty()) return "model";
  if (parts.back() == "policy" && parts.size() >= 2) return parts[parts.size() - 2];
  return parts.back();
}

absl::Status WithField(const absl::Status& s, const std::string& prefix) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, ": ", s.message()));
}

// The catalog: items_path if given, else `folder_items` (the model's own items.csv).
absl::StatusOr<ItemCatalog> ChooseCatalog(const v1::ServerConfig& config,
                                          std::optional<ItemCatalog> folder_items,
                                          const std::string& model_where) {
  ItemCatalog catalog;
  if (!config.items_path().empty()) {
    ASSIGN_OR_RETURN(catalog, ReadItemsCsv(config.items_path()));
  } else if (folder_items.has_value()) {
    catalog = std::move(*folder_items);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("items_path: required (", model_where, " has no items.csv)"));
  }
  if (catalog.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("items_path=", config.items_path(), ": the catalog has no items"));
  }
  return catalog;
}

absl::Status CheckDims(const v1::ServerConfig& config, const TwoTowerModel& model,
                       const ItemCatalog& catalog, const std::string& model_where,
                       const std::string& items_where) {
  const TwoTowerConfig& mc = model.config();
  if (config.dim_context() != 0 && config.dim_context() != mc.dim_context) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dim_context=", config.dim_context(), ": the model in ", model_where,
        " takes dim_context=", mc.dim_context, " (omit dim_context to use the model's)"));
  }
  if (catalog.dim_features != mc.dim_item) {
    return absl::InvalidArgumentError(absl::StrCat(
        "items_path=", items_where, ": the items have ", catalog.dim_features,
        " features but the model's item tower (", model_where, ") takes ", mc.dim_item));
  }
  return absl::OkStatus();
}

// Step 1: the store's serving version, if any.
absl::StatusOr<std::optional<ServingModel>> FromStore(const v1::ServerConfig& config,
                                                      ModelStore& store) {
  ASSIGN_OR_RETURN(const std::optional<std::string> version, store.ServingVersion());
  if (!version.has_value()) return std::optional<ServingModel>();
  ASSIGN_OR_RETURN(const std::optional<std::string> current, store.Current());
  const std::string where = store.VersionDir(*version);
  absl::StatusOr<ModelFolder> folder = store.Load(*version);
  if (!folder.ok()) {
    return WithField(folder.status(), absl::StrCat("model store version ", *version));
  }
  ServingModel out;
  ASSIGN_OR_RETURN(out.catalog, ChooseCatalog(config, std::move(folder->items), where));
  RETURN_IF_ERROR(CheckDims(config, folder->policy, out.catalog, where,
                            config.items_path().empty() ? where + "/items.csv"
                                                        : config.items_path()));
  out.model = std::make_shared<const TwoTowerModel>(std::move(folder->policy));
  out.version = *version;
  out.trained = true;
  out.source = absl::StrCat("stored version ", *version,
                            current.has_value() ? " (CURRENT)" : " (latest promoted)");
  if (!config.model_dir().empty()) {
    absl::StrAppend(&out.source, "; model_dir ", config.model_dir(),
                    " ignored: the store has a serving version");
  }
  return std::optional<ServingModel>(std::move(out));
}

}  // namespace

absl::StatusOr<ServingModel> LoadServingModel(const v1::ServerConfig& config, ModelStore* store) {
  if (store != nullptr) {
    ASSIGN_OR_RETURN(std::optional<ServingModel> stored, FromStore(config, *store));
    if (stored.has_value()) return std::move(*stored);
  }

  ServingModel out;
  if (!config.model_dir().empty()) {
    absl::StatusOr<ModelFolder> folder = LoadModelFolder(config.model_dir());
    if (!folder.ok()) return WithField(folder.status(), absl::StrCat("model_dir=", config.model_dir()));
    ASSIGN_OR_RETURN(out.catalog, ChooseCatalog(config, std::move(folder->items),
                                                absl::StrCat("the model folder ", config.model_dir())));
    RETURN_IF_ERROR(CheckDims(config, folder->policy, out.catalog, config.model_dir(),
                              config.items_path().empty() ? config.model_dir() + "/items.csv"
                                                          : config.items_path()));
    out.trained = true;
    if (store == nullptr) {
      out.version = VersionFromDir(config.model_dir());
      out.source = absl::StrCat("model_dir ", config.model_dir());
    } else {
      // Imported so that ListModels shows it and a rollback can return to it.
      ASSIGN_OR_RETURN(out.version, store->NextVersion());
      ModelManifest m;
      m.created_time_us = absl::ToUnixMicros(absl::Now());
      m.promoted = true;
      m.decision = "imported";
      m.reason = absl::StrCat("imported from model_dir=", config.model_dir(), " at start-up");
      const TwoTowerModel* qhat = folder->reward_model.has_value() ? &*folder->reward_model : nullptr;
      RETURN_IF_ERROR(WithField(store->Save(out.version, folder->policy, qhat, out.catalog, m),
                                absl::StrCat("importing model_dir=", config.model_dir(),
                                             " into the model store as ", out.version)));
      RETURN_IF_ERROR(store->SetCurrent(out.version));
      out.source = absl::StrCat("model_dir ", config.model_dir(), ", imported as version ",
                                out.version);
    }
    out.model = std::make_shared<const TwoTowerModel>(std::move(folder->policy));
    return out;
  }

  ASSIGN_OR_RETURN(out.catalog, ChooseCatalog(config, std::nullopt, "no model_dir"));
  TwoTowerConfig mc;
  mc.dim_context = config.dim_context();
  mc.dim_item = out.catalog.dim_features;
  mc.hidden.assign(config.init_hidden().begin(), config.init_hidden().end());
  mc.embedding_dim = config.init_embedding_dim();
  // Items without features can only be told apart by a learned id embedding.
  mc.item_id_embedding = out.catalog.dim_features == 0;
  mc.temperature = config.temperature() > 0 ? config.temperature() : 1.0;
  ASSIGN_OR_RETURN(TwoTowerModel model,
                   TwoTowerModel::Create(mc, out.catalog.ids, config.init_seed()));
  out.model = std::make_shared<const TwoTowerModel>(std::move(model));
  out.version = absl::StrCat("init-", config.init_seed());
  out.trained = false;
  out.source = absl::StrCat("random towers (seed ", config.init_seed(), ")");
  return out;
}

}  // namespace optower::server
