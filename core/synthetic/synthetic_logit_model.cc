// The folded logit models of the OBP synthetic environment (core/synthetic/synthetic_logit_model.h).
#include "core/synthetic/synthetic_logit_model.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"

namespace optower::synthetic_internal {

void FeatureMoments::Add(const double* feats, int64_t n) {
  if (n <= 0) return;
  std::vector<double> mean(static_cast<size_t>(dim_), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < dim_; ++k) mean[k] += feats[i * dim_ + k];
  for (double& v : mean) v /= static_cast<double>(n);
  std::vector<double> m2(static_cast<size_t>(dim_ * dim_), 0.0);
  std::vector<double> centred(static_cast<size_t>(dim_));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < dim_; ++k) centred[k] = feats[i * dim_ + k] - mean[k];
    for (int64_t k = 0; k < dim_; ++k) {
      const double ck = centred[k];
      double* row = m2.data() + k * dim_;
      for (int64_t l = k; l < dim_; ++l) row[l] += ck * centred[l];
    }
  }
  const double na = static_cast<double>(count_), nb = static_cast<double>(n);
  const double total = na + nb;
  std::vector<double> delta(static_cast<size_t>(dim_));
  for (int64_t k = 0; k < dim_; ++k) delta[k] = mean[k] - mean_[k];
  for (int64_t k = 0; k < dim_; ++k)
    for (int64_t l = k; l < dim_; ++l)
      m2_[k * dim_ + l] += m2[k * dim_ + l] + delta[k] * delta[l] * na * nb / total;
  for (int64_t k = 0; k < dim_; ++k) mean_[k] += delta[k] * nb / total;
  count_ += n;
}

// The two element-wise passes over [n, N] matrices (10^7 entries at 10k rounds × 1000 actions)
// dominate a batch; ATen's vectorised exp (AVX2/AVX-512, chosen at run time) measured ~3.5× faster
// than libm's scalar one here. `data` is [rows, cols] row-major and is modified in place.
void SigmoidInPlace(double* data, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  at::from_blob(data, {rows, cols}, at::TensorOptions().dtype(at::kDouble)).sigmoid_();
}

void SoftmaxRowsInPlace(double beta, double* data, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  at::Tensor t = at::from_blob(data, {rows, cols}, at::TensorOptions().dtype(at::kDouble));
  t.mul_(beta);
  t.sub_(std::get<0>(t.max(/*dim=*/1, /*keepdim=*/true)));
  t.exp_();
  t.div_(t.sum(/*dim=*/1, /*keepdim=*/true));
}

void LogitModel::Features(const float* contexts, int64_t n, std::vector<double>* out) const {
  const int64_t d = dk();
  out->assign(static_cast<size_t>(n * d), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const float* x = contexts + i * dim_context;
    double* f = out->data() + i * d;
    for (int64_t k = 0; k < d; ++k) {
      const Monomial& m = context_terms[k];
      double v = 1.0;
      for (int j = 0; j < m.n; ++j) v *= static_cast<double>(x[m.idx[j]]);
      f[k] = v;
    }
  }
}

void LogitModel::TransformedLogits(const double* feats, int64_t n, double scale, double offset,
                       double* out) const {
  if (n == 0) return;
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  std::vector<double> shifted_bias(bias.size());
  for (size_t a = 0; a < bias.size(); ++a) shifted_bias[a] = scale * (bias[a] - offset);
  at::Tensor out_t = at::from_blob(out, {n, n_actions}, f64);
  at::addmm_out(out_t, at::from_blob(shifted_bias.data(), {n_actions}, f64),
                at::from_blob(const_cast<double*>(feats), {n, dk()}, f64),
                at::from_blob(const_cast<double*>(weights.data()), {dk(), n_actions}, f64),
                /*beta=*/1.0, /*alpha=*/scale);
}

LogitStats LogitModel::Stats(const FeatureMoments& moments) const {
  const int64_t d = dk(), na = n_actions;
  const std::vector<double>& mu = moments.mean();
  std::vector<double> cov(static_cast<size_t>(d * d));
  for (int64_t k = 0; k < d; ++k)
    for (int64_t l = 0; l < d; ++l) cov[k * d + l] = moments.Covariance(k, l);
  std::vector<double> action_mean(static_cast<size_t>(na));
  double within = 0.0;  // Σ_a w_aᵀ Σ w_a
  std::vector<double> w(static_cast<size_t>(d));
  for (int64_t a = 0; a < na; ++a) {
    double m = bias[a];
    for (int64_t k = 0; k < d; ++k) {
      w[k] = weights[k * na + a];
      m += mu[k] * w[k];
    }
    action_mean[a] = m;
    double quad = 0.0;
    for (int64_t k = 0; k < d; ++k) {
      double s = 0.0;
      for (int64_t l = 0; l < d; ++l) s += cov[k * d + l] * w[l];
      quad += w[k] * s;
    }
    within += quad;
  }
  LogitStats stats;
  double mean = 0.0;
  for (double m : action_mean) mean += m;
  mean /= static_cast<double>(na);
  double between = 0.0;
  for (double m : action_mean) between += (m - mean) * (m - mean);
  const double var = std::max((within + between) / static_cast<double>(na), 0.0);
  stats.mean = mean;
  // A constant logit matrix has std 0 (OBP would divide by it and produce NaN); leave it
  // unscaled.
  stats.std = var > 0.0 ? std::sqrt(var) : 1.0;
  return stats;
}

namespace {

// Guards against polynomial expansions of dense action contexts that would take minutes to fold.
constexpr double kMaxFoldWork = 2e9;
// Largest total monomial count for which the sparse selection is exact in double precision.
constexpr double kMaxExactCount = 9007199254740992.0;  // 2^53

// All monomials of degree <= `degree` in `k` variables, in scikit-learn's PolynomialFeatures order:
// bias first, then by degree, each degree in lexicographic combinations-with-replacement order.
std::vector<Monomial> AllMonomials(int64_t k, int degree) {
  std::vector<Monomial> out(1);
  for (int d = 1; d <= degree; ++d) {
    Monomial m;
    m.n = d;
    // Iterate non-decreasing index tuples idx[0] <= ... <= idx[d-1] < k.
    std::fill(m.idx.begin(), m.idx.begin() + d, 0);
    while (true) {
      out.push_back(m);
      int p = d - 1;
      while (p >= 0 && m.idx[p] == k - 1) --p;
      if (p < 0) break;
      ++m.idx[p];
      for (int q = p + 1; q < d; ++q) m.idx[q] = m.idx[p];
    }
  }
  return out;
}

// C(k + d, d): how many monomials of degree <= d in k variables; +inf when it exceeds 2^53.
double MonomialCount(int64_t k, int degree) {
  double c = 1.0;
  for (int i = 1; i <= degree; ++i) {
    c = c * static_cast<double>(k + i) / static_cast<double>(i);
    if (c > kMaxExactCount) return std::numeric_limits<double>::infinity();
  }
  return std::round(c);
}

// OBP keeps max(int(D * ratio), 1) dimensions.
double KeptCount(double total, double ratio) { return std::max(std::floor(total * ratio), 1.0); }

// Selection sampling (Knuth's Algorithm S): walking the first `candidates` of `total` items, keeps
// each so that the kept set is a uniform random subset of size `keep` of all `total` items — the
// same law as numpy's choice(total, keep, replace=False). Items past `candidates` are never
// visited, which is how one-hot actions select among C(N+d, d) monomials while only looking at the
// non-zero ones.
std::vector<bool> SelectUniformSubset(int64_t candidates, double total, double keep,
                                      std::mt19937_64& rng) {
  std::vector<bool> kept(static_cast<size_t>(candidates), false);
  double selected = 0.0;
  for (int64_t t = 0; t < candidates && selected < keep; ++t) {
    if (Uniform01(rng) * (total - static_cast<double>(t)) < keep - selected) {
      kept[static_cast<size_t>(t)] = true;
      selected += 1.0;
    }
  }
  return kept;
}

// Context side: which monomials of x are kept (all of them unless sparse).
void SelectContextTerms(const LogitModelSpec& spec, std::mt19937_64& rng, LogitModel* model) {
  std::vector<Monomial> all_context = AllMonomials(model->dim_context, spec.degree);
  const int64_t d_x = static_cast<int64_t>(all_context.size());
  if (spec.keep_ratio < 1.0) {
    std::vector<bool> kept = SelectUniformSubset(
        d_x, static_cast<double>(d_x), KeptCount(static_cast<double>(d_x), spec.keep_ratio), rng);
    for (int64_t k = 0; k < d_x; ++k)
      if (kept[k]) model->context_terms.push_back(all_context[k]);
  } else {
    model->context_terms = std::move(all_context);
  }
}

// The action side's candidate monomials and which of them are kept.
struct ActionTerms {
  std::vector<Monomial> dense_terms;  // dense action contexts: every candidate monomial
  int64_t candidates = 0;
  std::vector<bool> kept;             // [candidates]
};

// One-hot: the candidate monomials are the bias (value 1 for every action) and, for each action a
// and power p in 1..degree, e_a^p (value 1 for a only); all other monomials are 0 for every action.
// Dense: every monomial of the E action-context dims is a candidate.
absl::StatusOr<ActionTerms> SelectActionTerms(const LogitModelSpec& spec,
                                              const DenseMatrix& action_context, bool one_hot,
                                              int64_t dk, std::mt19937_64& rng) {
  const int64_t n_actions = action_context.rows;
  const int degree = spec.degree;
  ActionTerms terms;
  double total_terms = 0.0;
  if (one_hot) {
    terms.candidates = 1 + n_actions * degree;
    total_terms = MonomialCount(n_actions, degree);
  } else {
    total_terms = MonomialCount(action_context.cols, degree);
    const double work = total_terms * static_cast<double>(n_actions) *
                        static_cast<double>(dk + degree) * spec.keep_ratio;
    if (!std::isfinite(total_terms) || work > kMaxFoldWork)
      return absl::InvalidArgumentError(absl::StrFormat(
          "action_context has %d dims: its degree-%d polynomial expansion (%g monomials) for %d "
          "actions is too large to generate",
          action_context.cols, degree, total_terms, n_actions));
    terms.dense_terms = AllMonomials(action_context.cols, degree);
    terms.candidates = static_cast<int64_t>(terms.dense_terms.size());
  }
  if (spec.keep_ratio < 1.0) {
    if (!std::isfinite(total_terms))
      return absl::InvalidArgumentError(absl::StrFormat(
          "n_actions=%d: too many actions for sparse degree-%d polynomial action features",
          n_actions, degree));
    terms.kept = SelectUniformSubset(terms.candidates, total_terms,
                                     KeptCount(total_terms, spec.keep_ratio), rng);
  } else {
    terms.kept.assign(static_cast<size_t>(terms.candidates), true);
  }
  return terms;
}

// Coefficients, drawn after the kept dimensions as in OBP, folded into w_a and b_a.
void DrawCoefficients(const LogitModelSpec& spec, const DenseMatrix& action_context, bool one_hot,
                      const ActionTerms& terms, std::mt19937_64& rng, LogitModel* model) {
  const int64_t n_actions = model->n_actions, dk = model->dk();
  const int degree = spec.degree;
  std::uniform_real_distribution<double> coef(spec.coef_low, spec.coef_high);
  std::vector<double> context_coef(static_cast<size_t>(dk), 0.0);
  if (spec.context_term)
    for (double& c : context_coef) c = coef(rng);
  model->weights.assign(static_cast<size_t>(dk * n_actions), 0.0);
  model->bias.assign(static_cast<size_t>(n_actions), 0.0);
  std::vector<double> column(static_cast<size_t>(dk));              // M[:, j]
  std::vector<double> shared_column(static_cast<size_t>(dk), 0.0);  // one-hot bias term's M[:, 0]
  double shared_bias = 0.0;
  for (int64_t j = 0; j < terms.candidates; ++j) {
    if (!terms.kept[j]) continue;
    const double action_coef = coef(rng);
    for (double& c : column) c = coef(rng);
    if (one_hot) {
      if (j == 0) {
        shared_bias += action_coef;
        for (int64_t k = 0; k < dk; ++k) shared_column[k] += column[k];
      } else {
        const int64_t a = (j - 1) / degree;  // e_a^p for p = 1 + (j - 1) % degree
        model->bias[a] += action_coef;
        for (int64_t k = 0; k < dk; ++k) model->weights[k * n_actions + a] += column[k];
      }
    } else {
      const Monomial& m = terms.dense_terms[j];
      for (int64_t a = 0; a < n_actions; ++a) {
        double v = 1.0;
        for (int p = 0; p < m.n; ++p) v *= action_context.at(a, m.idx[p]);
        if (v == 0.0) continue;
        model->bias[a] += action_coef * v;
        for (int64_t k = 0; k < dk; ++k) model->weights[k * n_actions + a] += column[k] * v;
      }
    }
  }
  for (int64_t k = 0; k < dk; ++k) {
    const double add = context_coef[k] + shared_column[k];
    for (int64_t a = 0; a < n_actions; ++a) model->weights[k * n_actions + a] += add;
  }
  for (double& b : model->bias) b += shared_bias;
}

}  // namespace

absl::StatusOr<LogitModel> BuildLogitModel(const LogitModelSpec& spec, int64_t dim_context,
                                           const DenseMatrix& action_context, bool one_hot,
                                           std::mt19937_64& rng) {
  LogitModel model;
  model.degree = spec.degree;
  model.n_actions = action_context.rows;
  model.dim_context = dim_context;
  SelectContextTerms(spec, rng, &model);
  ASSIGN_OR_RETURN(const ActionTerms terms,
                   SelectActionTerms(spec, action_context, one_hot, model.dk(), rng));
  DrawCoefficients(spec, action_context, one_hot, terms, rng, &model);
  return model;
}

}  // namespace optower::synthetic_internal
