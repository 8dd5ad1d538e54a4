#include "core/serving/model_snapshot.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/serving/index_probe.h"

namespace optower {

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelSnapshot::Build(
    std::string model_version, std::shared_ptr<const TwoTowerModel> model, ItemCatalog catalog,
    int64_t catalog_version, const Options& options, const ModelSnapshot* previous,
    const std::vector<float>* logged_contexts) {
  if (model == nullptr) return absl::InvalidArgumentError("model=null");
  if (catalog.size() == 0) {
    return absl::InvalidArgumentError("catalog: empty (a snapshot needs at least one item)");
  }
  ASSIGN_OR_RETURN(std::vector<float> embeddings, model->EmbedItems(catalog));
  return BuildWithEmbeddings(std::move(model_version), std::move(model), std::move(catalog),
                             std::move(embeddings), catalog_version, options, previous,
                             logged_contexts);
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelSnapshot::BuildWithEmbeddings(
    std::string model_version, std::shared_ptr<const TwoTowerModel> model, ItemCatalog catalog,
    std::vector<float> item_embeddings, int64_t catalog_version, const Options& options,
    const ModelSnapshot* previous, const std::vector<float>* logged_contexts) {
  const auto start = std::chrono::steady_clock::now();
  if (model_version.empty()) return absl::InvalidArgumentError("model_version: empty");
  if (model == nullptr) return absl::InvalidArgumentError("model=null");
  const int64_t n = catalog.size();
  if (n == 0) return absl::InvalidArgumentError("catalog: empty (a snapshot needs at least one item)");
  if (catalog.dim_features != model->config().dim_item) {
    return absl::InvalidArgumentError(absl::StrCat(
        "catalog.dim_features=", catalog.dim_features, ": the model's item tower takes dim_item=",
        model->config().dim_item));
  }
  if (static_cast<int64_t>(catalog.features.size()) != n * catalog.dim_features) {
    return absl::InvalidArgumentError(absl::StrCat("catalog.features has ", catalog.features.size(),
                                                   " values: expected ", n, " x ",
                                                   catalog.dim_features));
  }
  const int64_t d = model->config().embedding_dim;
  if (static_cast<int64_t>(item_embeddings.size()) != n * d) {
    return absl::InvalidArgumentError(absl::StrCat("item_embeddings has ", item_embeddings.size(),
                                                   " values: expected ", n, " x d=", d));
  }
  {
    absl::flat_hash_set<int64_t> seen;
    seen.reserve(static_cast<size_t>(n));
    for (int64_t id : catalog.ids) {
      if (!seen.insert(id).second) {
        return absl::InvalidArgumentError(absl::StrCat("catalog: item_id=", id, " appears twice"));
      }
    }
  }
  // The recall probe: user-tower outputs, only when an approximate index may be tried.
  using Type = ItemIndexOptions::Type;
  const ItemIndexOptions& io = options.index;
  const bool approximate = io.type == Type::kIvf || io.type == Type::kHnsw ||
                           (io.type == Type::kAuto && n > io.exact_max_items);
  IndexProbe probe;
  if (approximate) {
    ASSIGN_OR_RETURN(probe, MakeIndexProbe(*model, logged_contexts, io.recall_queries, io.seed));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ItemIndex> index,
                   ItemIndex::Build(item_embeddings.data(), n, d, catalog.ids, io,
                                    approximate ? probe.queries.data() : nullptr, probe.count(),
                                    previous != nullptr ? &previous->index() : nullptr));
  // The index holds its own copy of the vectors; free ours before publishing.
  std::vector<float>().swap(item_embeddings);

  std::shared_ptr<ModelSnapshot> snapshot(new ModelSnapshot());
  snapshot->model_version_ = std::move(model_version);
  snapshot->catalog_version_ = catalog_version;
  snapshot->model_ = std::move(model);
  snapshot->catalog_ = std::move(catalog);
  snapshot->index_ = std::move(index);
  snapshot->embedding_dim_ = d;
  snapshot->built_at_ = absl::Now();
  snapshot->build_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (approximate) snapshot->probe_source_ = probe.Describe();
  return std::shared_ptr<const ModelSnapshot>(std::move(snapshot));
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ModelSnapshot::WithCatalogChanges(
    const ModelSnapshot& previous, ItemCatalog catalog, int64_t catalog_version,
    ItemIndex::Changes changes, const Options& options,
    const std::vector<float>* logged_contexts) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = catalog.size();
  if (n == 0) return absl::InvalidArgumentError("catalog: empty (a snapshot needs at least one item)");
  if (catalog.dim_features != previous.catalog().dim_features ||
      static_cast<int64_t>(catalog.features.size()) != n * catalog.dim_features) {
    return absl::InvalidArgumentError(absl::StrCat(
        "catalog.features has ", catalog.features.size(), " values: expected ", n, " x ",
        previous.catalog().dim_features));
  }
  changes.ids = catalog.ids;
  ASSIGN_OR_RETURN(std::unique_ptr<ItemIndex> index,
                   ItemIndex::WithChanges(previous.index(), changes));
  if (index->Drifted(options.index)) {
    // Too many changed items for the layers: rebuild from every row's current embedding.
    const int64_t d = previous.embedding_dim();
    std::vector<float> embeddings(static_cast<size_t>(n * d));
    for (int64_t row = 0; row < n; ++row) {
      std::copy_n(index->embedding(row), d, embeddings.data() + row * d);
    }
    index.reset();
    return BuildWithEmbeddings(previous.model_version(), previous.shared_model(),
                               std::move(catalog), std::move(embeddings), catalog_version, options,
                               &previous, logged_contexts);
  }
  std::shared_ptr<ModelSnapshot> snapshot(new ModelSnapshot());
  snapshot->model_version_ = previous.model_version();
  snapshot->catalog_version_ = catalog_version;
  snapshot->model_ = previous.shared_model();
  snapshot->catalog_ = std::move(catalog);
  snapshot->index_ = std::move(index);
  snapshot->embedding_dim_ = previous.embedding_dim();
  snapshot->built_at_ = absl::Now();
  snapshot->build_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  snapshot->probe_source_ = previous.probe_source();
  snapshot->index_rebuilt_ = false;
  return std::shared_ptr<const ModelSnapshot>(std::move(snapshot));
}

}  // namespace optower
