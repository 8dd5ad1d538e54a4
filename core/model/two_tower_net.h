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
//   user(x)  = MLP_u((x - ctx_mean) / ctx_std)                         [B, d]
//   item(a)  = MLP_v(f(a)) + id_emb[row(a)]  (id_emb only when enabled) [N, d]
class TwoTowerNetImpl : public torch::nn::Module {
 public:
  TwoTowerNetImpl(const TwoTowerConfig& config, int64_t n_item_ids);

  torch::Tensor User(const torch::Tensor& contexts);  // [B, dim_context] -> [B, d]
  // features [N, dim_item]; id_rows [N] int64 rows of the id table, -1 = unseen id (no id term).
  torch::Tensor Item(const torch::Tensor& features, const torch::Tensor& id_rows);

  torch::nn::Sequential user{nullptr};
  torch::nn::Sequential item{nullptr};
  torch::nn::Embedding id_embedding{nullptr};
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
  // Catalog -> tensors for Item(): features [N, dim_item] float, id rows [N] int64.
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
  // The same for a catalog (its features viewed in place, not copied).
  torch::Tensor ItemEmbeddings(const ItemCatalog& items);
};

// Sets intra-op threads (0 = all cores) and flush-to-zero for subnormal floats, once per process
// for the trainer; returns the number of threads in use.
int ConfigureTorchForTraining(int threads);

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_TWO_TOWER_NET_H_
