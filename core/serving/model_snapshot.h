// ModelSnapshot: everything a Retrieve reads, frozen — the served model (user + item towers), the
// item catalog, the item tower's embeddings of that catalog and the inner-product index over them
// (DESIGN §6). A snapshot is built completely off the request path and then published as
// std::shared_ptr<const ModelSnapshot> (see SnapshotHolder); a request keeps the snapshot it started
// with alive until it finishes, so swapping in a new one never disturbs requests in flight.
//
// Conventions: catalog row i has id catalog().ids[i] and embedding item_embedding(i) = v(row i) [d];
// the index's ids()[row] equal catalog().ids[row]. The embeddings are stored once, inside the index
// (1M items x d=64 floats = 256 MB); a snapshot made by WithCatalogChanges shares the previous
// one's base index and adds only the changed items (core/serving/item_index.h).
//
// The index's recall probe (core/serving/index_probe.h) runs the user tower on `logged_contexts`
// (recent request contexts, [n, dim_context] row-major), topped up with sampled contexts to
// ItemIndexOptions::recall_queries.
//
// Thread safety: immutable after Build; every method is const and safe from any number of threads.
// The model is shared (std::shared_ptr<const TwoTowerModel>) between snapshots that differ only in
// their catalog.
#ifndef OPTOWER_CORE_SERVING_MODEL_SNAPSHOT_H_
#define OPTOWER_CORE_SERVING_MODEL_SNAPSHOT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/bandit_data.h"
#include "core/serving/item_index.h"
#include "core/model/two_tower_model.h"

namespace optower {

class ModelSnapshot {
 public:
  struct Options {
    ItemIndexOptions index;
  };

  // Embeds every catalog item with the model's item tower and builds the index. Blocks for the whole
  // build (seconds to minutes for large HNSW/IVF indexes). Errors: InvalidArgument for an empty
  // model_version, a null model, an empty catalog, duplicate ids or a feature dimension that differs
  // from the model's item tower; the index build's errors otherwise.
  // `previous`: optional, the snapshot this one replaces; an IVF index warm-starts from its lists
  // (ItemIndexOptions::ivf_warm_start). Not retained. `logged_contexts`: optional, see above.
  static absl::StatusOr<std::shared_ptr<const ModelSnapshot>> Build(
      std::string model_version, std::shared_ptr<const TwoTowerModel> model, ItemCatalog catalog,
      int64_t catalog_version, const Options& options, const ModelSnapshot* previous = nullptr,
      const std::vector<float>* logged_contexts = nullptr);

  // As Build, with the item embeddings already computed ([catalog.size(), d], row i = v(row i)).
  static absl::StatusOr<std::shared_ptr<const ModelSnapshot>> BuildWithEmbeddings(
      std::string model_version, std::shared_ptr<const TwoTowerModel> model, ItemCatalog catalog,
      std::vector<float> item_embeddings, int64_t catalog_version, const Options& options,
      const ModelSnapshot* previous = nullptr, const std::vector<float>* logged_contexts = nullptr);

  // A catalog change of `previous` (same model): `catalog` is the new catalog (its row order is
  // the index's), `changes` the upserted items' embeddings (from previous's item tower) and the
  // deleted ids (changes.ids is filled from catalog here). Incremental — the new index shares
  // previous's base and adds a delta and tombstones (ItemIndex::WithChanges), no FAISS work —
  // unless the result has drifted (ItemIndex::Drifted: too many changed items for the layers to
  // stay cheap); then the whole index is rebuilt from the catalog's embeddings (the unchanged ones
  // reused, IVF warm-started from previous) and index_rebuilt() is true.
  static absl::StatusOr<std::shared_ptr<const ModelSnapshot>> WithCatalogChanges(
      const ModelSnapshot& previous, ItemCatalog catalog, int64_t catalog_version,
      ItemIndex::Changes changes, const Options& options,
      const std::vector<float>* logged_contexts = nullptr);

  ModelSnapshot(const ModelSnapshot&) = delete;
  ModelSnapshot& operator=(const ModelSnapshot&) = delete;

  // The served model's version (logged with every served item).
  const std::string& model_version() const { return model_version_; }
  // Incremented by every catalog change (UpsertItems/DeleteItems); not logged.
  int64_t catalog_version() const { return catalog_version_; }
  const TwoTowerModel& model() const { return *model_; }
  const std::shared_ptr<const TwoTowerModel>& shared_model() const { return model_; }
  const ItemCatalog& catalog() const { return catalog_; }
  // [d] embedding of catalog row `row` in [0, catalog().size()), owned by the index.
  const float* item_embedding(int64_t row) const { return index_->embedding(row); }
  const ItemIndex& index() const { return *index_; }
  int64_t embedding_dim() const { return embedding_dim_; }
  int64_t dim_context() const { return model_->config().dim_context; }
  absl::Time built_at() const { return built_at_; }
  double build_seconds() const { return build_seconds_; }
  // The probe the index's recall was measured on (IndexProbe::Describe), "none" when no
  // approximate index was tried; carried over by incremental changes.
  const std::string& probe_source() const { return probe_source_; }
  // Whether this snapshot's index was built (Build*, or WithCatalogChanges after drift) rather than
  // layered on the previous one's.
  bool index_rebuilt() const { return index_rebuilt_; }

 private:
  ModelSnapshot() = default;

  std::string model_version_;
  int64_t catalog_version_ = 0;
  std::shared_ptr<const TwoTowerModel> model_;
  ItemCatalog catalog_;
  std::unique_ptr<ItemIndex> index_;
  int64_t embedding_dim_ = 0;
  absl::Time built_at_;
  double build_seconds_ = 0;
  std::string probe_source_ = "none";
  bool index_rebuilt_ = true;
};

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_MODEL_SNAPSHOT_H_
