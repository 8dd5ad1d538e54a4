#include "server/model_loader.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/base/categorical.h"
#include "core/base/csv_io.h"
#include "core/model/model_folder.h"
#include "core/base/status_macros.h"
#include "server/server_config.h"

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

void Warn(const std::string& line) {
  std::fprintf(stderr, "optower-server: warning: %s\n", line.c_str());
}

// The catalog: the stored one if any, else items_path if given, else `folder_items` (the model's
// own items.csv).
absl::StatusOr<ItemCatalog> ChooseCatalog(const v1::ServerConfig& config,
                                          const std::optional<StoredCatalog>& stored,
                                          std::optional<ItemCatalog> folder_items,
                                          const std::string& model_where) {
  ItemCatalog catalog;
  if (stored.has_value()) {
    catalog = stored->items;
  } else if (!config.items_path().empty()) {
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

std::string FieldsText(const std::vector<CategoricalField>& fields) {
  return absl::StrJoin(fields, ", ", [](std::string* out, const CategoricalField& f) {
    out->append(CategoricalFieldToText(f));
  });
}

// A schema declared in the config (init_*_fields) must be the loaded model's, if given at all.
absl::Status CheckDeclaredSchema(const std::vector<CategoricalField>& declared,
                                 const std::vector<CategoricalField>& model,
                                 const std::string& what, const std::string& model_where) {
  if (declared.empty() || declared == model) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, "=[", FieldsText(declared), "]: the model in ", model_where, " has [",
      FieldsText(model), "] (omit ", what, " to serve the model's own schema)"));
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
  RETURN_IF_ERROR(CheckDeclaredSchema(InitContextFieldsFromConfig(config), mc.context_fields,
                                      "init_context_fields", model_where));
  RETURN_IF_ERROR(CheckDeclaredSchema(InitItemFieldsFromConfig(config), mc.item_fields,
                                      "init_item_fields", model_where));
  return WithField(CheckCatalogSchema(mc, catalog), absl::StrCat("items_path=", items_where));
}

// One stored version, ready to serve, or why not.
absl::StatusOr<ServingModel> ServeStored(const v1::ServerConfig& config, ModelStore& store,
                                         const std::optional<StoredCatalog>& stored,
                                         const std::string& version) {
  const std::string where = store.VersionDir(version);
  absl::StatusOr<ModelFolder> folder = store.Load(version);
  if (!folder.ok()) return folder.status();
  ServingModel out;
  ASSIGN_OR_RETURN(out.catalog, ChooseCatalog(config, stored, std::move(folder->items), where));
  RETURN_IF_ERROR(CheckDims(config, folder->policy, out.catalog, where,
                            stored.has_value()               ? stored->path
                            : config.items_path().empty() ? where + "/items.csv"
                                                          : config.items_path()));
  out.model = std::make_shared<const TwoTowerModel>(std::move(folder->policy));
  out.version = version;
  out.trained = true;
  return out;
}

// Step 1: the store's serving version, if any — CURRENT, else the newest promoted version; when it
// cannot be served, the next newest promoted one, and so on (each failure is a warning line).
absl::StatusOr<std::optional<ServingModel>> FromStore(const v1::ServerConfig& config,
                                                      ModelStore& store,
                                                      const std::optional<StoredCatalog>& stored) {
  std::vector<absl::Status> skipped;
  ASSIGN_OR_RETURN(const std::vector<ModelManifest> all, store.List(/*max_entries=*/0, &skipped));
  for (const absl::Status& s : skipped) {
    Warn(absl::StrCat("model store: skipping a version whose manifest cannot be read: ",
                      s.message()));
  }
  const absl::StatusOr<std::optional<std::string>> current = store.Current();
  if (!current.ok()) {
    Warn(absl::StrCat("model store: ", current.status().message(),
                      "; serving the newest promoted version that loads instead"));
  }
  std::vector<std::string> candidates;
  if (current.ok() && current->has_value()) candidates.push_back(**current);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->promoted && std::find(candidates.begin(), candidates.end(), it->version) ==
                            candidates.end()) {
      candidates.push_back(it->version);
    }
  }
  if (candidates.empty()) return std::optional<ServingModel>();
  std::vector<std::string> failures;
  for (const std::string& version : candidates) {
    absl::StatusOr<ServingModel> out = ServeStored(config, store, stored, version);
    if (!out.ok()) {
      const bool is_current = current.ok() && current->has_value() && **current == version;
      Warn(absl::StrCat("model store version ", version, is_current ? " (CURRENT)" : "",
                        " cannot be served: ", out.status().message(),
                        "; trying the next newest promoted version"));
      failures.push_back(absl::StrCat(version, ": ", out.status().message()));
      continue;
    }
    const bool is_current = current.ok() && current->has_value() && **current == version;
    out->source = absl::StrCat("stored version ", version,
                               is_current                           ? " (CURRENT)"
                               : current.ok() && !current->has_value() ? " (latest promoted)"
                                                                      : " (newest loadable promoted)");
    if (!failures.empty()) {
      absl::StrAppend(&out->source, "; not served: ", absl::StrJoin(failures, "; "));
    }
    if (!config.model_dir().empty()) {
      absl::StrAppend(&out->source, "; model_dir ", config.model_dir(),
                      " ignored: the store has a serving version");
    }
    return std::optional<ServingModel>(std::move(*out));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no stored model version in ", store.Location(), " can be served (",
      absl::StrJoin(failures, "; "),
      "); repair or remove the broken versions, or start with another data_dir"));
}

// The stored catalog, and a warning when items_path says something else.
absl::StatusOr<std::optional<StoredCatalog>> LoadStoredCatalog(const v1::ServerConfig& config,
                                                               CatalogStore* catalogs) {
  if (catalogs == nullptr) return std::optional<StoredCatalog>();
  ASSIGN_OR_RETURN(std::optional<StoredCatalog> stored, catalogs->Load());
  if (!stored.has_value() || config.items_path().empty()) return stored;
  absl::StatusOr<ItemCatalog> given = ReadItemsCsv(config.items_path());
  if (!given.ok() || !SameCatalog(*given, stored->items)) {
    Warn(absl::StrCat("items_path=", config.items_path(),
                      given.ok() ? " differs from" : " cannot be read and is not needed:",
                      given.ok() ? "" : std::string(given.status().message()),
                      given.ok() ? "" : ";", " the stored catalog ", stored->path, " (",
                      stored->items.size(), " items, catalog version ", stored->version,
                      ") wins: it holds every acknowledged UpsertItems/DeleteItems (items_path "
                      "seeds an empty store only; remove ", catalogs->Location(), " to reseed)"));
  }
  return stored;
}

}  // namespace

namespace {

absl::StatusOr<ServingModel> LoadModelAndCatalog(const v1::ServerConfig& config, ModelStore* store,
                                                 const std::optional<StoredCatalog>& catalog,
                                                 bool seed) {
  if (store != nullptr) {
    ASSIGN_OR_RETURN(std::optional<ServingModel> stored, FromStore(config, *store, catalog));
    if (stored.has_value()) return std::move(*stored);
  }

  ServingModel out;
  if (!config.model_dir().empty()) {
    absl::StatusOr<ModelFolder> folder = LoadModelFolder(config.model_dir());
    if (!folder.ok()) return WithField(folder.status(), absl::StrCat("model_dir=", config.model_dir()));
    ASSIGN_OR_RETURN(out.catalog,
                     ChooseCatalog(config, catalog, std::move(folder->items),
                                   absl::StrCat("the model folder ", config.model_dir())));
    RETURN_IF_ERROR(CheckDims(config, folder->policy, out.catalog, config.model_dir(),
                              catalog.has_value()            ? catalog->path
                              : config.items_path().empty() ? config.model_dir() + "/items.csv"
                                                          : config.items_path()));
    out.trained = true;
    if (store == nullptr || !seed) {
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

  ASSIGN_OR_RETURN(out.catalog, ChooseCatalog(config, catalog, std::nullopt, "no model_dir"));
  TwoTowerConfig mc;
  mc.dim_context = config.dim_context();
  mc.dim_item = out.catalog.dim_features;
  mc.hidden.assign(config.init_hidden().begin(), config.init_hidden().end());
  mc.embedding_dim = config.init_embedding_dim();
  mc.context_fields = InitContextFieldsFromConfig(config);
  // The declared item fields, then one per categorical catalog column not declared (sized from
  // the catalog, as the learner does).
  mc.item_fields = out.catalog.categorical.empty()
                       ? InitItemFieldsFromConfig(config)
                       : DeriveCategoricalFields(out.catalog.categorical,
                                                 InitItemFieldsFromConfig(config));
  // Items without features can only be told apart by a learned id embedding.
  mc.item_id_embedding = config.has_init_item_id_embedding()
                             ? config.init_item_id_embedding()
                             : out.catalog.dim_features == 0 && mc.item_fields.empty();
  mc.temperature = config.temperature() > 0 ? config.temperature() : 1.0;
  RETURN_IF_ERROR(WithField(CheckCatalogSchema(mc, out.catalog),
                            absl::StrCat("items_path=", config.items_path())));
  ASSIGN_OR_RETURN(TwoTowerModel model,
                   TwoTowerModel::Create(mc, out.catalog.ids, config.init_seed()));
  out.model = std::make_shared<const TwoTowerModel>(std::move(model));
  out.version = absl::StrCat("init-", config.init_seed());
  out.trained = false;
  out.source = absl::StrCat("random towers (seed ", config.init_seed(), ")");
  return out;
}

}  // namespace

absl::StatusOr<ServingModel> LoadServingModel(const v1::ServerConfig& config, ModelStore* store,
                                              CatalogStore* catalogs, bool seed) {
  ASSIGN_OR_RETURN(const std::optional<StoredCatalog> catalog, LoadStoredCatalog(config, catalogs));
  ASSIGN_OR_RETURN(ServingModel out, LoadModelAndCatalog(config, store, catalog, seed));
  if (catalog.has_value()) {
    out.catalog_version = catalog->version;
    absl::StrAppend(&out.source, "; catalog ", catalog->path);
  } else if (catalogs != nullptr && seed) {
    // Seed the store: from now on every catalog change is saved there before it is acknowledged.
    RETURN_IF_ERROR(WithField(catalogs->Save(out.catalog, /*version=*/0),
                              absl::StrCat("saving the catalog to ", catalogs->Location())));
  }
  return out;
}

}  // namespace optower::server
