#include "server/model_loader.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
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

}  // namespace

absl::StatusOr<ServingModel> LoadServingModel(const v1::ServerConfig& config) {
  ServingModel out;
  std::optional<ItemCatalog> folder_items;
  if (!config.model_dir().empty()) {
    absl::StatusOr<ModelFolder> folder = LoadModelFolder(config.model_dir());
    if (!folder.ok()) return WithField(folder.status(), absl::StrCat("model_dir=", config.model_dir()));
    const TwoTowerConfig& mc = folder->policy.config();
    if (config.dim_context() != 0 && config.dim_context() != mc.dim_context) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dim_context=", config.dim_context(), ": the model in ", config.model_dir(),
          " takes dim_context=", mc.dim_context, " (omit dim_context to use the model's)"));
    }
    folder_items = std::move(folder->items);
    out.model = std::make_shared<const TwoTowerModel>(std::move(folder->policy));
    out.version = VersionFromDir(config.model_dir());
  }

  if (!config.items_path().empty()) {
    ASSIGN_OR_RETURN(out.catalog, ReadItemsCsv(config.items_path()));
  } else if (folder_items.has_value()) {
    out.catalog = std::move(*folder_items);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "items_path: required (the model folder ", config.model_dir(), " has no items.csv)"));
  }
  if (out.catalog.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("items_path=", config.items_path(), ": the catalog has no items"));
  }

  if (out.model == nullptr) {
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
  } else if (out.catalog.dim_features != out.model->config().dim_item) {
    return absl::InvalidArgumentError(absl::StrCat(
        "items_path=", config.items_path().empty() ? config.model_dir() + "/items.csv"
                                                   : config.items_path(),
        ": the items have ", out.catalog.dim_features, " features but the model's item tower takes ",
        out.model->config().dim_item));
  }
  return out;
}

}  // namespace optower::server
