// Internal (torch) side of TwoTowerModel. Include only from core's torch translation units and
// tests of the learner: it pulls in <torch/torch.h>.
#ifndef OPTOWER_CORE_MODEL_TWO_TOWER_NET_H_
#define OPTOWER_CORE_MODEL_TWO_TOWER_NET_H_

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/model/torch_status.h"
#include "core/model/two_tower_model.h"

namespace optower {

// The towers as one module, so one torch::save holds every parameter and buffer.
//   user(x)  = MLP_u([z, cross(z), bag_1(x), ..., bag_F(x)])                  [B, d]
//              z = (x - ctx_mean) / ctx_std; cross(z) = monomials of degree 2..context_degree
//   item(a)  = MLP_v([f(a), bag_1(a), ...]) + id_emb[row(a)]  (id_emb when on)   [N, d]
// x and f(a) are encoded input rows (dense part, then categorical slots: core/base/categorical.h);
// bag_j is the mean of field j's embedding rows over the row's present ids (zeros when none).
class TwoTowerNetImpl : public torch::nn::Module {
 public:
  TwoTowerNetImpl(const TwoTowerConfig& config, int64_t n_item_ids);

  torch::Tensor User(const torch::Tensor& contexts);  // [B, ContextInputWidth] -> [B, d]
  // features [N, ItemInputWidth]; id_rows [N] int64 rows of the id table, -1 = unseen id (no id
  // term).
  torch::Tensor Item(const torch::Tensor& features, const torch::Tensor& id_rows);
  // Sets ctx_mean / ctx_std to the statistics of `inputs`' dense columns ([n, ContextInputWidth]:
  // the training rows), without autograd.
  void StandardiseContexts(const torch::Tensor& inputs);

  int64_t dim_context = 0;
  int64_t dim_item = 0;
  std::vector<CategoricalField> context_fields;
  std::vector<CategoricalField> item_fields;
  torch::nn::Sequential user{nullptr};
  torch::nn::Sequential item{nullptr};
  std::vector<torch::nn::Embedding> user_bags;  // one per context field
  std::vector<torch::nn::Embedding> item_bags;  // one per item field
  torch::nn::Embedding id_embedding{nullptr};
  // The cross monomials' coordinates, one index tensor per degree k >= 2: [M_k, k] int64 (derived
  // from the config, not saved).
  std::vector<torch::Tensor> cross_indices;
  torch::Tensor ctx_mean;  // buffer [dim_context]
  torch::Tensor ctx_std;   // buffer [dim_context]
  torch::Tensor item_ids;  // buffer [n_item_ids] int64: the ids keyed by the id table's rows
};
TORCH_MODULE(TwoTowerNet);

struct TwoTowerModel::Impl {
  TwoTowerConfig config;
  TwoTowerNet net{nullptr};
  absl::flat_hash_map<int64_t, int64_t> id_to_row;  // from net->item_ids

  void RebuildIdMap();
  // Catalog -> tensors for Item(): features [N, ItemInputWidth] float (encoded), id rows [N]
  // int64. ItemFeatures throws (caught by TorchStatus callers) when the catalog does not fit the
  // item schema; check with CheckCatalogSchema first.
  torch::Tensor ItemFeatures(const ItemCatalog& items) const;
  torch::Tensor ItemIdRows(const ItemCatalog& items) const;
  // The item tower over every row of (features [N, dim_item], id_rows [N]) without autograd, in
  // batches of TwoTowerModel::kEmbedBatchItems rows written into `out` ([N, d], allocated by the
  // caller; it may wrap the caller's memory), so the working memory beyond `out` (hidden layers'
  // activations) does not grow with N. Every catalog-wide embedding goes through here.
  void EmbedItemsInto(const torch::Tensor& features, const torch::Tensor& id_rows,
                      torch::Tensor out);
  // EmbedItemsInto a new [N, d] tensor.
  torch::Tensor ItemEmbeddings(const torch::Tensor& features, const torch::Tensor& id_rows);
  // The same for a catalog (dense-only features viewed in place, not copied).
  torch::Tensor ItemEmbeddings(const ItemCatalog& items);
  // True when the log's contexts are this model's input rows as they are (no categorical fields on
  // either side), so no encoding is needed.
  bool ContextsAreInputs(const BanditLog& log) const;
  // Rows [first, first + n) of a log's contexts as a [n, ContextInputWidth] tensor: a view of the
  // log's memory when ContextsAreInputs (the log must outlive it), else new encoded rows. Throws
  // (for TorchStatus callers) on another dim_context or categorical fields outside the schema.
  torch::Tensor ContextInputs(const BanditLog& log, int64_t first, int64_t n) const;
  // Every row, in memory of its own.
  torch::Tensor ContextInputs(const BanditLog& log) const;
};

// Sets intra-op threads (0 = all cores) and flush-to-zero for subnormal floats, once per process
// for the trainer; returns the number of threads in use.
int ConfigureTorchForTraining(int threads);

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_TWO_TOWER_NET_H_
