// A synthetic bandit environment whose reward lives mostly in categorical structure
// (docs/LEARNING.md "Categorical features"), with known expected rewards so that a learned
// policy's true value can be computed exactly.
//
//   users u = 0..U-1, each in a segment g(u) (uniform); context = (dense x ~ N(0, I_D),
//     categorical {user: [u], segment: [g(u)]})
//   items a = 0..N-1, each in a category c(a) (uniform) with dense features f_a ~ N(0, I_E);
//     categorical {category: [c(a)]}
//   latents  s_g, z_c ~ N(0, I_k);  w_u = s_g(u) + user_noise * N(0, I_k);
//            e_a = item_noise * N(0, I_k)
//   logit(x, u, a) = bias + cat_scale * <w_u, z_c(a) + e_a> / sqrt(k)
//                         + dense_scale * x' M f_a / sqrt(D)          (M ~ N(0, 1), D x E)
//   reward ~ Bernoulli(sigmoid(logit));  logging policy pi_b = softmax(behavior_beta * logit)
//
// The user-category term is invisible to dense features, so a dense-only model can learn only
// the dense term and the items' average appeal; user (or segment) and category embeddings can
// learn the interaction; the item-specific part e_a needs an item-id embedding.
// Thread safety: const methods are reentrant. Randomness: std::mt19937_64 with our own normal
// draws (Box-Muller), so a seed gives the same data on every platform.
#ifndef OPTOWER_CORE_SYNTHETIC_CATEGORICAL_ENV_H_
#define OPTOWER_CORE_SYNTHETIC_CATEGORICAL_ENV_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"

namespace optower {

// Defaults: the setting of docs/LEARNING.md "Categorical features" — users are mostly described by
// their segment (user_noise 0.1), items by their category plus an item-specific part (item_noise
// 0.3), and the logging policy is weakly informed (behavior_beta 0.2).
struct CategoricalEnvOptions {
  int64_t n_users = 1000;
  int64_t n_segments = 10;
  int64_t n_items = 100;
  int64_t n_categories = 10;
  int64_t latent_dim = 5;
  int64_t dim_context = 5;
  int64_t dim_item = 5;
  double bias = -1.0;
  double cat_scale = 2.5;
  double dense_scale = 0.5;
  double user_noise = 0.1;
  double item_noise = 0.3;
  double behavior_beta = 0.2;
  uint64_t seed = 0;

  absl::Status Validate() const;
};

// Contexts drawn from the environment: dense [n, dim_context] and the users drawn.
struct CategoricalContexts {
  int64_t dim_context = 0;
  std::vector<float> dense;
  std::vector<int64_t> users;
  int64_t size() const { return static_cast<int64_t>(users.size()); }
};

class CategoricalEnv {
 public:
  static absl::StatusOr<CategoricalEnv> Create(const CategoricalEnvOptions& options);

  const CategoricalEnvOptions& options() const { return options_; }
  // Items with dense features f0.. and the categorical field "category".
  const ItemCatalog& items() const { return items_; }

  CategoricalContexts SampleContexts(int64_t n, uint64_t seed) const;
  // {user, segment} columns of `contexts`.
  CategoricalColumns ContextColumns(const CategoricalContexts& contexts) const;
  // True expected rewards q(x_i, a) [n, N].
  DenseMatrix ExpectedRewards(const CategoricalContexts& contexts) const;
  // The logging policy pi_b(a | x_i) [n, N].
  DenseMatrix BehaviorPolicy(const CategoricalContexts& contexts) const;
  // n logged rounds: contexts, a ~ pi_b, r ~ Bernoulli(q), pscore = pi_b(a|x) (exact);
  // context_categorical = {user, segment}.
  BanditLog SampleLog(int64_t n, uint64_t seed) const;

 private:
  explicit CategoricalEnv(const CategoricalEnvOptions& options) : options_(options) {}
  DenseMatrix Logits(const CategoricalContexts& contexts) const;

  CategoricalEnvOptions options_;
  ItemCatalog items_;
  std::vector<int64_t> segment_of_user_;
  std::vector<int64_t> category_of_item_;
  std::vector<double> user_latent_;   // [U, k]
  std::vector<double> item_latent_;   // [N, k]: z_c(a) + e_a
  std::vector<double> dense_map_;     // [D, E]
};

}  // namespace optower

#endif  // OPTOWER_CORE_SYNTHETIC_CATEGORICAL_ENV_H_
