// TwoTowerModel: the served policy's towers behind a torch-free facade (pimpl), so that the server,
// the CLI and most of core never include <torch/torch.h>.
//
//   user tower u(x) in R^d, item tower v(a) in R^d, score s(x,a) = <u(x), v(a)>,
//   policy pi(a|x) = softmax_a(s(x,a) / tau) over the whole catalog      (DESIGN §1)
//
// Thread safety: after construction every const method may be called concurrently (forwards run
// under c10::InferenceMode with no shared mutable state). Loading/saving are not concurrent with
// mutation; the learner mutates only models it owns exclusively.
#ifndef OPTOWER_CORE_MODEL_TWO_TOWER_MODEL_H_
#define OPTOWER_CORE_MODEL_TWO_TOWER_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/base/bandit_data.h"
#include "core/base/categorical.h"

namespace optower {

struct TwoTowerConfig {
  int64_t dim_context = 0;             // dense input features of the user tower
  int64_t dim_item = 0;                // dense input features of the item tower
  // Categorical fields (core/base/categorical.h, docs/FEATURES.md): each a hashed embedding bag
  // (mean of its ids' rows) concatenated with the dense input before the tower's MLP. The schema
  // is part of the model: data with a field outside it is refused.
  std::vector<CategoricalField> context_fields;
  std::vector<CategoricalField> item_fields;
  std::vector<int64_t> hidden = {64};  // hidden widths of each tower's MLP ({} = linear tower)
  // Feature crosses of the user tower: the standardised dense context x is extended with every
  // monomial of degree 2..context_degree of its coordinates (x_i x_j, x_i x_j x_k, ...) before the
  // MLP, so that even a linear tower scores polynomials of x (a factorisation machine's cross terms,
  // explicit). 1 = none. Bounded by kMaxCrossFeatures.
  int64_t context_degree = 1;
  int64_t embedding_dim = 32;          // d
  std::string activation = "relu";     // relu | tanh | elu | gelu
  // Learned item-id embedding added to the item tower's output (0 = off). Rows are keyed by the
  // item ids seen at training time; an unseen id (cold start) gets features only.
  bool item_id_embedding = false;
  double temperature = 1.0;            // tau
  // Only for reward models (q̂ as a two-tower scorer): the link from score to expected reward,
  // "sigmoid" (binary rewards, fitted with BCE) or "identity" (continuous rewards, MSE).
  std::string reward_link = "sigmoid";
};

// Upper bound on the monomials context_degree adds (ContextCrossCount).
inline constexpr int64_t kMaxCrossFeatures = 4096;
// Monomials of degree 2..degree in `dim` variables: C(dim + degree, degree) − 1 − dim (0 for
// degree <= 1); saturates at kMaxCrossFeatures + 1.
int64_t ContextCrossCount(int64_t dim, int64_t degree);

// A config for towers over `dim_context` context features and the catalog's item features; the item
// id embedding is forced on when items have neither dense nor categorical features (the item tower
// needs some input). Categorical schemas are left empty (set them on the result).
TwoTowerConfig MakeTowerConfig(int64_t dim_context, const ItemCatalog& items,
                               const std::vector<int64_t>& hidden, int64_t embedding_dim,
                               const std::string& activation, bool item_id_embedding,
                               double temperature);

// Width of a model input row: the dense features, then CategoricalSlotCount(fields) slots
// (core/base/categorical.h). Equal to dim_context / dim_item for dense-only towers.
int64_t ContextInputWidth(const TwoTowerConfig& config);
int64_t ItemInputWidth(const TwoTowerConfig& config);

// InvalidArgument unless `items` fits the item tower: dim_features == dim_item and every
// categorical field of the catalog is in item_fields ("the catalog's categorical field 'brand' is
// not in the model's item schema (fields: category)").
absl::Status CheckCatalogSchema(const TwoTowerConfig& config, const ItemCatalog& items);

class TwoTowerModel {
 public:
  ~TwoTowerModel();
  TwoTowerModel(TwoTowerModel&&) noexcept;
  TwoTowerModel& operator=(TwoTowerModel&&) noexcept;

  // Fresh towers with a seeded random initialisation. `item_ids` keys the id embedding (if on).
  static absl::StatusOr<TwoTowerModel> Create(const TwoTowerConfig& config,
                                              const std::vector<int64_t>& item_ids, uint64_t seed);
  // Reads a folder written by Save (config.txt + weights.pt).
  static absl::StatusOr<TwoTowerModel> Load(const std::string& dir);
  // Writes config.txt and weights.pt into `dir` (created if missing). Not atomic by itself: callers
  // that publish a folder write it under a temporary name and rename.
  absl::Status Save(const std::string& dir) const;

  const TwoTowerConfig& config() const;
  TwoTowerModel Clone() const;

  // Model input rows [n, ContextInputWidth] from dense contexts [n, dim_context] and rows
  // [first_row, first_row + n) of raw categorical columns (may be empty). InvalidArgument for
  // fields outside the schema or too many ids (EncodeRows).
  absl::StatusOr<std::vector<float>> EncodeContexts(const float* dense, int64_t n,
                                                    const CategoricalColumns& categorical,
                                                    int64_t first_row) const;
  // The same for one request's features (CheckFeaturesAgainstSchema first; `what` names them in
  // messages, e.g. "context.categorical").
  absl::StatusOr<std::vector<float>> EncodeContext(const float* dense,
                                                   absl::Span<const CategoricalFeature> features,
                                                   absl::string_view what) const;
  // Every context of a log, encoded (the log's dim_context must equal the model's).
  absl::StatusOr<std::vector<float>> EncodeLogContexts(const BanditLog& log) const;

  // u(x) for n encoded contexts: inputs is [n, ContextInputWidth] -> [n, d]. For dense-only
  // models the encoded row is the dense row.
  absl::StatusOr<std::vector<float>> EmbedContexts(const float* inputs, int64_t n) const;
  // v(a) for every catalog item -> [N, d] (row i = catalog row i). Runs in batches of
  // kEmbedBatchItems items, so its working memory beyond the output does not grow with N.
  static constexpr int64_t kEmbedBatchItems = 65536;
  absl::StatusOr<std::vector<float>> EmbedItems(const ItemCatalog& items) const;
  // The user tower's input standardisation, [dim_context] each: u(x) = MLP((x - mean) / sd). Set
  // from the training contexts by the learner (mean 0, sd 1 for fresh towers); the index probe
  // samples contexts from N(mean, sd^2) when no logged ones exist (core/serving/model_snapshot.h).
  absl::Status ContextMoments(std::vector<float>* mean, std::vector<float>* sd) const;
  // pi(a|x) for n encoded contexts ([n, ContextInputWidth]) over the catalog -> [n, N]. (Slates' conditional draws are valued by
  // MakeOpeSamples, core/learning/policy_evaluation.h, which excludes each draw's earlier items.)
  absl::StatusOr<DenseMatrix> ActionProbabilities(const float* contexts, int64_t n,
                                                  const ItemCatalog& items) const;

  // Internal handle for core's torch code (learner, reward model); opaque elsewhere.
  struct Impl;
  Impl& impl() { return *impl_; }
  const Impl& impl() const { return *impl_; }

 private:
  explicit TwoTowerModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_MODEL_TWO_TOWER_MODEL_H_
