#include "core/synthetic/categorical_env.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "core/synthetic/synthetic_logit_model.h"

namespace optower {
namespace {

// Platform-stable draws (std::normal_distribution's algorithm is implementation-defined).
class Draws {
 public:
  explicit Draws(uint64_t seed) : gen_(seed) {}
  double Uniform() { return (static_cast<double>(gen_() >> 11) + 0.5) * 0x1.0p-53; }
  double Normal() {
    const double u1 = Uniform(), u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  int64_t Below(int64_t n) { return static_cast<int64_t>(gen_() % static_cast<uint64_t>(n)); }

 private:
  std::mt19937_64 gen_;
};

}  // namespace

absl::Status CategoricalEnvOptions::Validate() const {
  auto at_least = [](const char* name, int64_t v, int64_t lo) -> absl::Status {
    if (v >= lo) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrFormat("%s=%d: must be >= %d", name, v, lo));
  };
  RETURN_IF_ERROR(at_least("n_users", n_users, 1));
  RETURN_IF_ERROR(at_least("n_segments", n_segments, 1));
  RETURN_IF_ERROR(at_least("n_items", n_items, 2));
  RETURN_IF_ERROR(at_least("n_categories", n_categories, 1));
  RETURN_IF_ERROR(at_least("latent_dim", latent_dim, 1));
  RETURN_IF_ERROR(at_least("dim_context", dim_context, 0));
  RETURN_IF_ERROR(at_least("dim_item", dim_item, 1));
  for (double v : {bias, cat_scale, dense_scale, user_noise, item_noise, behavior_beta})
    if (!std::isfinite(v))
      return absl::InvalidArgumentError("categorical environment: parameters must be finite");
  return absl::OkStatus();
}

absl::StatusOr<CategoricalEnv> CategoricalEnv::Create(const CategoricalEnvOptions& o) {
  RETURN_IF_ERROR(o.Validate());
  CategoricalEnv env(o);
  Draws d(o.seed * 0x9e3779b97f4a7c15ull + 1);
  const int64_t k = o.latent_dim;
  std::vector<double> segment(static_cast<size_t>(o.n_segments * k));
  for (double& v : segment) v = d.Normal();
  std::vector<double> category(static_cast<size_t>(o.n_categories * k));
  for (double& v : category) v = d.Normal();
  env.segment_of_user_.resize(o.n_users);
  env.user_latent_.resize(static_cast<size_t>(o.n_users * k));
  for (int64_t u = 0; u < o.n_users; ++u) {
    env.segment_of_user_[u] = d.Below(o.n_segments);
    for (int64_t j = 0; j < k; ++j)
      env.user_latent_[u * k + j] =
          segment[env.segment_of_user_[u] * k + j] + o.user_noise * d.Normal();
  }
  ItemCatalog& items = env.items_;
  items.dim_features = o.dim_item;
  items.categorical = CategoricalColumns({"category"});
  env.category_of_item_.resize(o.n_items);
  env.item_latent_.resize(static_cast<size_t>(o.n_items * k));
  for (int64_t a = 0; a < o.n_items; ++a) {
    const int64_t c = d.Below(o.n_categories);
    env.category_of_item_[a] = c;
    items.ids.push_back(a);
    for (int64_t j = 0; j < o.dim_item; ++j)
      items.features.push_back(static_cast<float>(d.Normal()));
    items.categorical.AddCell(std::vector<int64_t>{c});
    for (int64_t j = 0; j < k; ++j)
      env.item_latent_[a * k + j] = category[c * k + j] + o.item_noise * d.Normal();
  }
  env.dense_map_.resize(static_cast<size_t>(o.dim_context * o.dim_item));
  for (double& v : env.dense_map_) v = d.Normal();
  return env;
}

CategoricalContexts CategoricalEnv::SampleContexts(int64_t n, uint64_t seed) const {
  Draws d(seed * 0xbf58476d1ce4e5b9ull + 7);
  CategoricalContexts c;
  c.dim_context = options_.dim_context;
  c.users.resize(n);
  c.dense.resize(static_cast<size_t>(n * options_.dim_context));
  for (int64_t i = 0; i < n; ++i) {
    c.users[i] = d.Below(options_.n_users);
    for (int64_t j = 0; j < options_.dim_context; ++j)
      c.dense[i * options_.dim_context + j] = static_cast<float>(d.Normal());
  }
  return c;
}

CategoricalColumns CategoricalEnv::ContextColumns(const CategoricalContexts& contexts) const {
  CategoricalColumns cols({"user", "segment"});
  cols.Reserve(contexts.size(), 2 * contexts.size());
  for (int64_t u : contexts.users) {
    cols.AddCell(std::vector<int64_t>{u});
    cols.AddCell(std::vector<int64_t>{segment_of_user_[u]});
  }
  return cols;
}

DenseMatrix CategoricalEnv::Logits(const CategoricalContexts& contexts) const {
  const CategoricalEnvOptions& o = options_;
  const int64_t n = contexts.size(), N = o.n_items, k = o.latent_dim;
  const int64_t D = o.dim_context, E = o.dim_item;
  DenseMatrix logits(n, N);
  const double cat = o.cat_scale / std::sqrt(static_cast<double>(k));
  const double dense = D > 0 ? o.dense_scale / std::sqrt(static_cast<double>(D)) : 0.0;
  std::vector<double> xm(static_cast<size_t>(E));
  for (int64_t i = 0; i < n; ++i) {
    const double* w = user_latent_.data() + contexts.users[i] * k;
    const float* x = contexts.dense.data() + i * D;
    std::fill(xm.begin(), xm.end(), 0.0);
    for (int64_t p = 0; p < D; ++p)
      for (int64_t q = 0; q < E; ++q) xm[q] += x[p] * dense_map_[p * E + q];
    for (int64_t a = 0; a < N; ++a) {
      double ip = 0, dp = 0;
      for (int64_t j = 0; j < k; ++j) ip += w[j] * item_latent_[a * k + j];
      const float* f = items_.feature(a);
      for (int64_t q = 0; q < E; ++q) dp += xm[q] * f[q];
      logits.at(i, a) = o.bias + cat * ip + dense * dp;
    }
  }
  return logits;
}

DenseMatrix CategoricalEnv::ExpectedRewards(const CategoricalContexts& contexts) const {
  DenseMatrix q = Logits(contexts);
  synthetic_internal::SigmoidInPlace(q.data.data(), q.rows, q.cols);
  return q;
}

DenseMatrix CategoricalEnv::BehaviorPolicy(const CategoricalContexts& contexts) const {
  DenseMatrix pi = Logits(contexts);
  synthetic_internal::SoftmaxRowsInPlace(options_.behavior_beta, pi.data.data(), pi.rows, pi.cols);
  return pi;
}

BanditLog CategoricalEnv::SampleLog(int64_t n, uint64_t seed) const {
  const CategoricalContexts contexts = SampleContexts(n, seed);
  const DenseMatrix q = ExpectedRewards(contexts);
  const DenseMatrix pi = BehaviorPolicy(contexts);
  Draws d(seed * 0x94d049bb133111ebull + 11);
  BanditLog log;
  log.dim_context = options_.dim_context;
  log.contexts = contexts.dense;
  log.context_categorical = ContextColumns(contexts);
  for (int64_t i = 0; i < n; ++i) {
    double u = d.Uniform(), acc = 0;
    int64_t a = pi.cols - 1;
    for (int64_t j = 0; j < pi.cols; ++j) {
      acc += pi.at(i, j);
      if (u < acc) {
        a = j;
        break;
      }
    }
    log.actions.push_back(a);
    log.pscores.push_back(static_cast<float>(std::max(pi.at(i, a), 1e-30)));
    log.rewards.push_back(d.Uniform() < q.at(i, a) ? 1.0f : 0.0f);
  }
  return log;
}

}  // namespace optower
