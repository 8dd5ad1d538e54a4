// Implementation notes (the model itself is defined in shared/OBP_SYNTHETIC.md).
//
// Every logit model here — OBP's reward logits f and its linear/polynomial behaviour logits g — has
// the form  logit(x, a) = poly(x)ᵀ C poly(a) + cᵀ poly(a) [+ c_xᵀ poly(x)].  Since the action side
// is fixed, we fold it once at Create time into per-action parameters
//     w_a = C poly(a) [+ c_x] ∈ R^{D_x},   b_a = cᵀ poly(a),
// so that logit(x, a) = poly(x)ᵀ w_a + b_a costs O(D_x) per pair and no [N, D_a] feature matrix is
// ever built. That matters for one-hot actions: poly_3(e_a) has C(N+3, 3) dims (1.7e8 at N = 1000)
// but only 1 + degree of them are non-zero (the bias and e_a, e_a², e_a³ at the "diagonal"
// monomials; every cross term is 0). Coefficients that multiply a zero can never influence the
// model, so we draw only the ones that can — the same distribution as OBP, which draws all of them.
//
// Batch statistics (OBP's shift f − mean(f)/std(f) and the behaviour standardisation) are the mean
// and population std over all n·N entries. They follow exactly from the mean μ and covariance Σ of
// poly(x) over the batch (law of total variance over actions):
//     mean = 1/N Σ_a (μᵀw_a + b_a),   var = 1/N Σ_a [ w_aᵀ Σ w_a + (μᵀw_a + b_a − mean)² ],
// which lets FixStatistics use a large reference batch without materialising its [n, N] logits.
#include "core/synthetic_env.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace optower {
namespace {

// Tags that derive independent random streams from the user's seed.
enum StreamTag : uint64_t {
  kMainStream = 0,           // contexts, actions, rewards
  kRewardCoefStream = 1,     // reward coefficients and the sparse kept dimensions
  kBehaviorCoefStream = 2,   // behaviour coefficients
  kActionContextStream = 3,  // N(0, 1) action contexts
  kReferenceStream = 4,      // FixStatistics' reference contexts
};

std::mt19937_64 DerivedStream(uint64_t seed, StreamTag tag) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(tag), 0x6f707477u /* "optw" */};
  return std::mt19937_64(seq);
}

// The polynomial degree OBP uses for each function, which is also its logit multiplier.
int RewardDegree(RewardType t) {
  switch (t) {
    case RewardType::kLogistic:
      return 1;
    case RewardType::kLogisticPolynomial:
      return 3;
    case RewardType::kLogisticSparse:
      return 4;
  }
  return 1;
}
double RewardKeepRatio(RewardType t) { return t == RewardType::kLogisticSparse ? 0.3 : 1.0; }
int BehaviorDegree(BehaviorType t) { return t == BehaviorType::kPolynomial ? 3 : 1; }

constexpr int kMaxDegree = 4;
// Guards against polynomial expansions of dense action contexts that would take minutes to fold.
constexpr double kMaxFoldWork = 2e9;
// Largest total monomial count for which the sparse selection is exact in double precision.
constexpr double kMaxExactCount = 9007199254740992.0;  // 2^53

// A monomial of degree n: the product of x[idx[0]] ... x[idx[n-1]] (n = 0 is the bias).
struct Monomial {
  int n = 0;
  std::array<int32_t, kMaxDegree> idx{};
};

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

double Uniform01(std::mt19937_64& rng) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

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

// Mean and population covariance of feature rows, accumulated chunk by chunk (Chan et al.'s
// pairwise update) so that a large reference batch need not be held in memory.
class FeatureMoments {
 public:
  explicit FeatureMoments(int64_t dim)
      : dim_(dim), mean_(static_cast<size_t>(dim), 0.0), m2_(static_cast<size_t>(dim * dim), 0.0) {}

  // feats: [n, dim] row-major.
  void Add(const double* feats, int64_t n) {
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

  int64_t count() const { return count_; }
  const std::vector<double>& mean() const { return mean_; }
  // Population covariance (divided by count), upper triangle filled.
  double Covariance(int64_t k, int64_t l) const {
    if (k > l) std::swap(k, l);
    return m2_[k * dim_ + l] / static_cast<double>(count_);
  }

 private:
  int64_t dim_;
  int64_t count_ = 0;
  std::vector<double> mean_;
  std::vector<double> m2_;  // sums of centred cross products; upper triangle
};

struct LogitStats {
  double mean = 0.0;
  double std = 1.0;
};

// The two element-wise passes over [n, N] matrices (10^7 entries at 10k rounds × 1000 actions)
// dominate a batch; ATen's vectorised exp (AVX2/AVX-512, chosen at run time) measured ~3.5× faster
// than libm's scalar one here. `data` is [rows, cols] row-major and is modified in place.
void SigmoidInPlace(double* data, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  at::from_blob(data, {rows, cols}, at::TensorOptions().dtype(at::kDouble)).sigmoid_();
}

// Each row <- softmax(beta * row).
void SoftmaxRowsInPlace(double beta, double* data, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  at::Tensor t = at::from_blob(data, {rows, cols}, at::TensorOptions().dtype(at::kDouble));
  t.mul_(beta);
  t.sub_(std::get<0>(t.max(/*dim=*/1, /*keepdim=*/true)));
  t.exp_();
  t.div_(t.sum(/*dim=*/1, /*keepdim=*/true));
}

// One folded logit model: logit(x, a) = features(x)ᵀ w_a + b_a (see the note at the top).
struct LogitModel {
  int degree = 1;
  int64_t n_actions = 0;
  int64_t dim_context = 0;
  std::vector<Monomial> context_terms;  // the kept monomials of x: D_k of them
  std::vector<double> weights;          // [D_k, N] row-major: column a is w_a
  std::vector<double> bias;             // [N]

  int64_t dk() const { return static_cast<int64_t>(context_terms.size()); }

  // contexts: [n, dim_context] floats -> out: [n, D_k].
  void Features(const float* contexts, int64_t n, std::vector<double>* out) const {
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

  // Affine-transformed logits of n contexts: out[i, a] = scale * (feats_iᵀ w_a + b_a - offset).
  // feats: [n, D_k], out: [n, N]. One GEMM: at degree 3 (D_k = 56) it is most of a batch's work.
  void TransformedLogits(const double* feats, int64_t n, double scale, double offset,
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

  // Mean and population std of the logits over (contexts whose features have these moments) ×
  // actions.
  LogitStats Stats(const FeatureMoments& moments) const {
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
};

// How the action side of a logit model is drawn: OBP's _base_reward_function (coefficients in
// (-1, 1), a context-only term, optional sparsity) or _base_behavior_policy_function (coefficients
// in (0, 1), no context-only term).
struct LogitModelSpec {
  int degree = 1;
  double keep_ratio = 1.0;
  double coef_low = -1.0;
  double coef_high = 1.0;
  bool context_term = true;
};

// `action_context` is [N, E]; `one_hot` says it is the N×N identity (then it is not read).
absl::StatusOr<LogitModel> BuildLogitModel(const LogitModelSpec& spec, int64_t dim_context,
                                           const DenseMatrix& action_context, bool one_hot,
                                           std::mt19937_64& rng) {
  const int64_t n_actions = action_context.rows;
  const int degree = spec.degree;
  std::uniform_real_distribution<double> coef(spec.coef_low, spec.coef_high);

  LogitModel model;
  model.degree = degree;
  model.n_actions = n_actions;
  model.dim_context = dim_context;

  // Context side: which monomials of x are kept (all of them unless sparse).
  std::vector<Monomial> all_context = AllMonomials(dim_context, degree);
  const int64_t d_x = static_cast<int64_t>(all_context.size());
  if (spec.keep_ratio < 1.0) {
    std::vector<bool> kept = SelectUniformSubset(
        d_x, static_cast<double>(d_x), KeptCount(static_cast<double>(d_x), spec.keep_ratio), rng);
    for (int64_t k = 0; k < d_x; ++k)
      if (kept[k]) model.context_terms.push_back(all_context[k]);
  } else {
    model.context_terms = std::move(all_context);
  }
  const int64_t dk = model.dk();

  // Action side. One-hot: the candidate monomials are the bias (value 1 for every action) and, for
  // each action a and power p in 1..degree, e_a^p (value 1 for a only); all other monomials are 0
  // for every action. Dense: every monomial of the E action-context dims is a candidate.
  std::vector<Monomial> dense_terms;
  int64_t candidates = 0;
  double total_terms = 0.0;
  if (one_hot) {
    candidates = 1 + n_actions * degree;
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
    dense_terms = AllMonomials(action_context.cols, degree);
    candidates = static_cast<int64_t>(dense_terms.size());
  }
  std::vector<bool> kept_actions;
  if (spec.keep_ratio < 1.0) {
    if (!std::isfinite(total_terms))
      return absl::InvalidArgumentError(absl::StrFormat(
          "n_actions=%d: too many actions for sparse degree-%d polynomial action features",
          n_actions, degree));
    kept_actions =
        SelectUniformSubset(candidates, total_terms, KeptCount(total_terms, spec.keep_ratio), rng);
  } else {
    kept_actions.assign(static_cast<size_t>(candidates), true);
  }

  // Coefficients, drawn after the kept dimensions as in OBP.
  std::vector<double> context_coef(static_cast<size_t>(dk), 0.0);
  if (spec.context_term)
    for (double& c : context_coef) c = coef(rng);
  model.weights.assign(static_cast<size_t>(dk * n_actions), 0.0);
  model.bias.assign(static_cast<size_t>(n_actions), 0.0);
  std::vector<double> column(static_cast<size_t>(dk));              // M[:, j]
  std::vector<double> shared_column(static_cast<size_t>(dk), 0.0);  // one-hot bias term's M[:, 0]
  double shared_bias = 0.0;
  for (int64_t j = 0; j < candidates; ++j) {
    if (!kept_actions[j]) continue;
    const double action_coef = coef(rng);
    for (double& c : column) c = coef(rng);
    if (one_hot) {
      if (j == 0) {
        shared_bias += action_coef;
        for (int64_t k = 0; k < dk; ++k) shared_column[k] += column[k];
      } else {
        const int64_t a = (j - 1) / degree;  // e_a^p for p = 1 + (j - 1) % degree
        model.bias[a] += action_coef;
        for (int64_t k = 0; k < dk; ++k) model.weights[k * n_actions + a] += column[k];
      }
    } else {
      const Monomial& m = dense_terms[j];
      for (int64_t a = 0; a < n_actions; ++a) {
        double v = 1.0;
        for (int p = 0; p < m.n; ++p) v *= action_context.at(a, m.idx[p]);
        if (v == 0.0) continue;
        model.bias[a] += action_coef * v;
        for (int64_t k = 0; k < dk; ++k) model.weights[k * n_actions + a] += column[k] * v;
      }
    }
  }
  for (int64_t k = 0; k < dk; ++k) {
    const double add = context_coef[k] + shared_column[k];
    for (int64_t a = 0; a < n_actions; ++a) model.weights[k * n_actions + a] += add;
  }
  for (double& b : model.bias) b += shared_bias;
  return model;
}

bool IsIdentity(const DenseMatrix& m) {
  if (m.rows != m.cols) return false;
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c)
      if (m.at(r, c) != (r == c ? 1.0 : 0.0)) return false;
  return true;
}

}  // namespace

struct SyntheticBandit::Impl {
  LogitModel reward;
  bool has_behavior_model = false;  // false for kExpected (pi_b = softmax(beta q))
  LogitModel behavior;
  // Streaming-mode statistics, set by FixStatistics.
  LogitStats reward_stats;
  LogitStats behavior_stats;

  // q(x, a) = sigmoid(degree * (f - mean(f)/std(f))): OBP's shift-only "z-score", then ×degree.
  // reward_feats: [n, D_k] of the reward model; q: [n, N].
  void Rewards(const double* reward_feats, int64_t n, const LogitStats& s, double* q) const {
    reward.TransformedLogits(reward_feats, n, static_cast<double>(reward.degree), s.mean / s.std,
                             q);
    SigmoidInPlace(q, n, reward.n_actions);
  }
  // pi_b(.|x) = softmax(beta * logits): logits = q for kExpected, else the standardised
  // degree * (g - mean(g)) / std(g). behavior_feats: [n, D_k] of the behaviour model (unused for
  // kExpected); q, pi: [n, N].
  void Behavior(const double* behavior_feats, const double* q, int64_t n, const LogitStats& s,
                double beta, double* pi) const {
    const int64_t na = reward.n_actions;
    if (has_behavior_model) {
      behavior.TransformedLogits(behavior_feats, n, static_cast<double>(behavior.degree) / s.std,
                                 s.mean, pi);
    } else {
      std::copy(q, q + n * na, pi);
    }
    SoftmaxRowsInPlace(beta, pi, n, na);
  }
};

absl::StatusOr<RewardType> ParseRewardType(const std::string& name) {
  if (name == "logistic") return RewardType::kLogistic;
  if (name == "logistic-polynomial") return RewardType::kLogisticPolynomial;
  if (name == "logistic-sparse") return RewardType::kLogisticSparse;
  return absl::InvalidArgumentError(absl::StrFormat(
      "reward_type=\"%s\": must be one of logistic, logistic-polynomial, logistic-sparse", name));
}

absl::StatusOr<BehaviorType> ParseBehaviorType(const std::string& name) {
  if (name == "expected") return BehaviorType::kExpected;
  if (name == "linear") return BehaviorType::kLinear;
  if (name == "polynomial") return BehaviorType::kPolynomial;
  return absl::InvalidArgumentError(
      absl::StrFormat("behavior=\"%s\": must be one of expected, linear, polynomial", name));
}

std::string RewardTypeName(RewardType t) {
  switch (t) {
    case RewardType::kLogistic:
      return "logistic";
    case RewardType::kLogisticPolynomial:
      return "logistic-polynomial";
    case RewardType::kLogisticSparse:
      return "logistic-sparse";
  }
  return "unknown";
}

std::string BehaviorTypeName(BehaviorType t) {
  switch (t) {
    case BehaviorType::kExpected:
      return "expected";
    case BehaviorType::kLinear:
      return "linear";
    case BehaviorType::kPolynomial:
      return "polynomial";
  }
  return "unknown";
}

SyntheticBandit::SyntheticBandit(const SyntheticOptions& options)
    : options_(options),
      impl_(std::make_shared<Impl>()),
      rng_(DerivedStream(options.seed, kMainStream)) {}

absl::StatusOr<std::unique_ptr<SyntheticBandit>> SyntheticBandit::Create(
    const SyntheticOptions& options) {
  if (options.n_actions < 2)
    return absl::InvalidArgumentError(
        absl::StrFormat("n_actions=%d: n_actions must be >= 2", options.n_actions));
  if (options.dim_context < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("dim_context=%d: dim_context must be >= 1", options.dim_context));
  if (!std::isfinite(options.beta))
    return absl::InvalidArgumentError(
        absl::StrFormat("beta=%g: beta must be finite", options.beta));
  const DenseMatrix& given = options.action_context;
  const bool has_given = given.rows != 0 || given.cols != 0 || !given.data.empty();
  if (has_given) {
    if (given.rows != options.n_actions)
      return absl::InvalidArgumentError(
          absl::StrFormat("action_context has %d rows: it needs one row per action (n_actions=%d)",
                          given.rows, options.n_actions));
    if (given.cols < 1)
      return absl::InvalidArgumentError(
          absl::StrFormat("action_context has %d columns: it needs at least 1", given.cols));
    if (given.data.size() != static_cast<size_t>(given.rows * given.cols))
      return absl::InvalidArgumentError(
          absl::StrFormat("action_context is [%d, %d] but holds %d values", given.rows, given.cols,
                          given.data.size()));
    for (size_t i = 0; i < given.data.size(); ++i)
      if (!std::isfinite(given.data[i]))
        return absl::InvalidArgumentError(
            absl::StrFormat("action_context[%d, %d]=%g: values must be finite", i / given.cols,
                            i % given.cols, given.data[i]));
  } else if (options.dim_action_context < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "dim_action_context=%d: must be >= 0 (0 = one-hot actions)", options.dim_action_context));
  }

  std::unique_ptr<SyntheticBandit> env(new SyntheticBandit(options));
  const int64_t n_actions = options.n_actions;
  bool one_hot = false;
  if (has_given) {
    env->action_context_ = given;
    one_hot = IsIdentity(given);
  } else if (options.dim_action_context > 0) {
    env->action_context_ = DenseMatrix(n_actions, options.dim_action_context);
    std::mt19937_64 rng = DerivedStream(options.seed, kActionContextStream);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (double& v : env->action_context_.data) v = normal(rng);
  } else {
    env->action_context_ = DenseMatrix(n_actions, n_actions);
    for (int64_t a = 0; a < n_actions; ++a) env->action_context_.at(a, a) = 1.0;
    one_hot = true;
  }
  env->options_.action_context = env->action_context_;

  LogitModelSpec reward_spec;
  reward_spec.degree = RewardDegree(options.reward_type);
  reward_spec.keep_ratio = RewardKeepRatio(options.reward_type);
  std::mt19937_64 reward_rng = DerivedStream(options.seed, kRewardCoefStream);
  ASSIGN_OR_RETURN(env->impl_->reward, BuildLogitModel(reward_spec, options.dim_context,
                                                       env->action_context_, one_hot, reward_rng));
  if (options.behavior != BehaviorType::kExpected) {
    LogitModelSpec behavior_spec;
    behavior_spec.degree = BehaviorDegree(options.behavior);
    behavior_spec.coef_low = 0.0;
    behavior_spec.context_term = false;
    std::mt19937_64 behavior_rng = DerivedStream(options.seed, kBehaviorCoefStream);
    ASSIGN_OR_RETURN(env->impl_->behavior,
                     BuildLogitModel(behavior_spec, options.dim_context, env->action_context_,
                                     one_hot, behavior_rng));
    env->impl_->has_behavior_model = true;
  }
  return env;
}

ItemCatalog SyntheticBandit::Items() const {
  ItemCatalog items;
  items.dim_features = action_context_.cols;
  items.ids.resize(static_cast<size_t>(action_context_.rows));
  for (int64_t a = 0; a < action_context_.rows; ++a) items.ids[a] = a;
  items.features.assign(action_context_.data.begin(), action_context_.data.end());
  return items;
}

std::vector<float> SyntheticBandit::SampleContexts(int64_t n) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> x(static_cast<size_t>(std::max<int64_t>(n, 0) * options_.dim_context));
  for (float& v : x) v = static_cast<float>(normal(rng_));
  return x;
}

float SyntheticBandit::SampleReward(double q) { return Uniform01(rng_) < q ? 1.0f : 0.0f; }

SyntheticRounds SyntheticBandit::ObtainBatch(int64_t n) {
  n = std::max<int64_t>(n, 0);
  const int64_t na = options_.n_actions;
  SyntheticRounds out;
  out.log.dim_context = options_.dim_context;
  // Contexts are rounded to float first so that q and pi_b are exactly those of the logged
  // contexts.
  out.log.contexts = SampleContexts(n);
  out.expected_reward = DenseMatrix(n, na);
  out.behavior_policy = DenseMatrix(n, na);
  if (n == 0) return out;
  const Impl& impl = *impl_;

  // OBP's batch statistics of this batch's logits.
  std::vector<double> reward_feats, behavior_feats;
  impl.reward.Features(out.log.contexts.data(), n, &reward_feats);
  FeatureMoments reward_moments(impl.reward.dk());
  reward_moments.Add(reward_feats.data(), n);
  const LogitStats reward_stats = impl.reward.Stats(reward_moments);
  LogitStats behavior_stats;
  if (impl.has_behavior_model) {
    impl.behavior.Features(out.log.contexts.data(), n, &behavior_feats);
    FeatureMoments behavior_moments(impl.behavior.dk());
    behavior_moments.Add(behavior_feats.data(), n);
    behavior_stats = impl.behavior.Stats(behavior_moments);
  }

  double* q = out.expected_reward.data.data();
  double* pi = out.behavior_policy.data.data();
  impl.Rewards(reward_feats.data(), n, reward_stats, q);
  impl.Behavior(behavior_feats.data(), q, n, behavior_stats, options_.beta, pi);

  out.log.actions.resize(static_cast<size_t>(n));
  out.log.pscores.resize(static_cast<size_t>(n));
  out.log.rewards.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double* p = out.behavior_policy.row(i);
    // a ~ pi_b by inversion; the last action absorbs any rounding shortfall of the cumulative sum.
    const double u = Uniform01(rng_);
    double cum = 0.0;
    int64_t a = na - 1;
    for (int64_t j = 0; j < na; ++j) {
      cum += p[j];
      if (u < cum) {
        a = j;
        break;
      }
    }
    // Never return a zero-probability action (reachable only through the rounding fallback).
    while (p[a] == 0.0 && a > 0) --a;
    out.log.actions[i] = a;
    out.log.pscores[i] = static_cast<float>(p[a]);
    out.log.rewards[i] = SampleReward(out.expected_reward.at(i, a));
  }
  return out;
}

void SyntheticBandit::FixStatistics(int64_t reference_rounds) {
  reference_rounds = std::max<int64_t>(reference_rounds, 1);
  Impl& impl = *impl_;
  std::mt19937_64 rng = DerivedStream(options_.seed, kReferenceStream);
  std::normal_distribution<double> normal(0.0, 1.0);
  FeatureMoments reward_moments(impl.reward.dk());
  FeatureMoments behavior_moments(impl.has_behavior_model ? impl.behavior.dk() : 0);
  constexpr int64_t kChunk = 8192;
  std::vector<float> x;
  std::vector<double> feats;
  for (int64_t done = 0; done < reference_rounds; done += kChunk) {
    const int64_t n = std::min(kChunk, reference_rounds - done);
    x.resize(static_cast<size_t>(n * options_.dim_context));
    for (float& v : x) v = static_cast<float>(normal(rng));
    impl.reward.Features(x.data(), n, &feats);
    reward_moments.Add(feats.data(), n);
    if (impl.has_behavior_model) {
      impl.behavior.Features(x.data(), n, &feats);
      behavior_moments.Add(feats.data(), n);
    }
  }
  impl.reward_stats = impl.reward.Stats(reward_moments);
  if (impl.has_behavior_model) impl.behavior_stats = impl.behavior.Stats(behavior_moments);
  stats_fixed_ = true;
}

namespace {

absl::Status CheckStreamingInput(bool fixed, const std::vector<float>& contexts,
                                 int64_t dim_context) {
  if (!fixed)
    return absl::FailedPreconditionError(
        "the synthetic environment is not in streaming mode: call FixStatistics first");
  if (contexts.size() % static_cast<size_t>(dim_context) != 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "contexts.size()=%d: must be a multiple of dim_context=%d", contexts.size(), dim_context));
  for (size_t i = 0; i < contexts.size(); ++i)
    if (!std::isfinite(contexts[i]))
      return absl::InvalidArgumentError(
          absl::StrFormat("contexts[%d]=%g: contexts must be finite", i, contexts[i]));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DenseMatrix> SyntheticBandit::ExpectedReward(
    const std::vector<float>& contexts) const {
  RETURN_IF_ERROR(CheckStreamingInput(stats_fixed_, contexts, options_.dim_context));
  const int64_t n = static_cast<int64_t>(contexts.size()) / options_.dim_context;
  DenseMatrix q(n, options_.n_actions);
  std::vector<double> feats;
  impl_->reward.Features(contexts.data(), n, &feats);
  impl_->Rewards(feats.data(), n, impl_->reward_stats, q.data.data());
  return q;
}

absl::StatusOr<DenseMatrix> SyntheticBandit::BehaviorPolicy(
    const std::vector<float>& contexts) const {
  RETURN_IF_ERROR(CheckStreamingInput(stats_fixed_, contexts, options_.dim_context));
  const int64_t n = static_cast<int64_t>(contexts.size()) / options_.dim_context;
  DenseMatrix pi(n, options_.n_actions);
  const Impl& impl = *impl_;
  std::vector<double> feats;
  DenseMatrix q;
  if (impl.has_behavior_model) {
    impl.behavior.Features(contexts.data(), n, &feats);
  } else {
    ASSIGN_OR_RETURN(q, ExpectedReward(contexts));
  }
  impl.Behavior(feats.data(), q.data.data(), n, impl.behavior_stats, options_.beta, pi.data.data());
  return pi;
}

}  // namespace optower
