// SyntheticBandit (core/synthetic/synthetic_env.h). The folded logit models it draws and evaluates are in
// core/synthetic/synthetic_logit_model.h (with the implementation notes).
#include "core/synthetic/synthetic_env.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "core/synthetic/synthetic_logit_model.h"

namespace optower {
namespace {

using synthetic_internal::BuildLogitModel;
using synthetic_internal::FeatureMoments;
using synthetic_internal::LogitModel;
using synthetic_internal::LogitModelSpec;
using synthetic_internal::LogitStats;
using synthetic_internal::SigmoidInPlace;
using synthetic_internal::SoftmaxRowsInPlace;
using synthetic_internal::Uniform01;

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
