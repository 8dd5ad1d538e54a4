// The surrogate losses of core/learning/policy_gradient.h against the estimators they stand for.
#include "core/learning/policy_gradient.h"

#include "core/model/log_tensors.h"

#include <gtest/gtest.h>

#include <random>

namespace optower {
namespace {

// A tiny linear-softmax policy: logits(x) = x W, W [D, N] in double precision.
struct TinyProblem {
  static constexpr int64_t kContexts = 6;  // context "types", drawn uniformly
  static constexpr int64_t kDim = 3;
  static constexpr int64_t kActions = 4;
  torch::Tensor x;     // [kContexts, kDim]
  torch::Tensor q;     // [kContexts, kActions] true expected rewards
  torch::Tensor pi0;   // [kContexts, kActions] logging policy (full support)
  torch::Tensor w;     // [kDim, kActions] policy parameters

  explicit TinyProblem(uint64_t seed) {
    torch::manual_seed(seed);
    auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    x = torch::randn({kContexts, kDim}, opts);
    q = torch::rand({kContexts, kActions}, opts) * 0.8 + 0.1;
    pi0 = torch::softmax(torch::randn({kContexts, kActions}, opts), 1);
    w = (torch::randn({kDim, kActions}, opts) * 0.5).requires_grad_(true);
  }
  torch::Tensor Logits(const torch::Tensor& ctx_rows) const { return x.index_select(0, ctx_rows).matmul(w); }
  // Exact policy gradient of V(pi_w) = mean_x sum_a pi(a|x) q(x,a).
  torch::Tensor ExactGradient() const {
    torch::Tensor v = (torch::softmax(x.matmul(w), 1) * q).sum(1).mean();
    return torch::autograd::grad({v}, {w})[0];
  }
};

struct Sample {
  torch::Tensor ctx, a, r, p;
};

Sample Simulate(const TinyProblem& prob, int64_t n, std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> pick(0, TinyProblem::kContexts - 1);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<int64_t> ctx(n), act(n);
  std::vector<double> rew(n), ps(n);
  auto pi0 = prob.pi0.accessor<double, 2>();
  auto q = prob.q.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    ctx[i] = pick(rng);
    double u = unif(rng), acc = 0;
    int64_t a = TinyProblem::kActions - 1;
    for (int64_t k = 0; k < TinyProblem::kActions; ++k) {
      acc += pi0[ctx[i]][k];
      if (u < acc) { a = k; break; }
    }
    act[i] = a;
    ps[i] = pi0[ctx[i]][a];
    rew[i] = unif(rng) < q[ctx[i]][a] ? 1.0 : 0.0;
  }
  auto d = torch::TensorOptions().dtype(torch::kFloat64);
  return {torch::tensor(ctx, torch::kInt64), torch::tensor(act, torch::kInt64),
          torch::tensor(rew, d), torch::tensor(ps, d)};
}

// grad of the policy value estimate = -grad of the surrogate.
torch::Tensor EstimatorGradient(const TinyProblem& prob, const Sample& s, const torch::Tensor& qhat_rows,
                                const SurrogateOptions& o) {
  torch::Tensor loss = PolicySurrogateLoss(prob.Logits(s.ctx), s.a, s.r, s.p, qhat_rows, o);
  return -torch::autograd::grad({loss}, {prob.w})[0];
}

TEST(PolicyGradientTest, DrSurrogateGradientEqualsEstimatorTermByTerm) {
  TinyProblem prob(/*seed=*/1);
  std::mt19937_64 rng(2);
  const Sample s = Simulate(prob, /*n=*/9, rng);
  const torch::Tensor qhat = (prob.q + 0.15).clamp(0, 1).index_select(0, s.ctx);  // deliberately off
  SurrogateOptions o;
  o.objective = Objective::kDr;
  const torch::Tensor autograd_grad = EstimatorGradient(prob, s, qhat, o);

  // 1/n sum_i { w_i (r_i - q̂_i) grad log pi(a_i|x_i) + sum_a pi(a|x_i) q̂(x_i,a) grad log pi(a|x_i) },
  // with every grad log pi taken by its own backward pass.
  torch::Tensor manual = torch::zeros_like(prob.w);
  const int64_t n = s.a.size(0);
  for (int64_t i = 0; i < n; ++i) {
    auto grad_log_pi = [&](int64_t a) {
      torch::Tensor lp = torch::log_softmax(prob.Logits(s.ctx.slice(0, i, i + 1)), 1)[0][a];
      return torch::autograd::grad({lp}, {prob.w})[0];
    };
    torch::Tensor pi = torch::softmax(prob.Logits(s.ctx.slice(0, i, i + 1)), 1)[0].detach();
    const int64_t ai = s.a[i].item<int64_t>();
    const double w = pi[ai].item<double>() / s.p[i].item<double>();
    manual += w * (s.r[i].item<double>() - qhat[i][ai].item<double>()) * grad_log_pi(ai);
    for (int64_t a = 0; a < TinyProblem::kActions; ++a)
      manual += pi[a].item<double>() * qhat[i][a].item<double>() * grad_log_pi(a);
  }
  manual /= static_cast<double>(n);
  EXPECT_LT((autograd_grad - manual).abs().max().item<double>(), 1e-5)
      << "autograd\n" << autograd_grad << "\nmanual\n" << manual;
  EXPECT_GT(manual.abs().max().item<double>(), 1e-3);  // the comparison is not between zeros
}

// Slates: a draw whose earlier slate items are excluded (ExcludeEarlierItems) is valued under the
// policy restricted to the remaining items. The surrogate on the masked logits must give exactly
// the gradient of the same estimator on a catalog from which those items were removed: computed
// here by dropping the columns, per sample, and summing the per-sample gradients.
TEST(PolicyGradientTest, ExcludedItemsGiveTheGradientOnTheRemainingCatalog) {
  TinyProblem prob(/*seed=*/5);
  std::mt19937_64 rng(6);
  Sample s = Simulate(prob, /*n=*/8, rng);
  const int64_t n = s.a.size(0);
  // Prefixes of 0, 1 or 2 earlier items, never the sample's own action; padded with -1.
  torch::Tensor prefix = torch::full({n, 2}, -1, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = s.a[i].item<int64_t>();
    for (int64_t j = 0; j < i % 3; ++j) prefix[i][j] = (a + 1 + j) % TinyProblem::kActions;
  }
  const torch::Tensor qhat = (prob.q + 0.1).clamp(0, 1).index_select(0, s.ctx);
  for (Objective objective : {Objective::kDr, Objective::kIpw}) {
    SurrogateOptions o;
    o.objective = objective;
    const torch::Tensor masked = ExcludeEarlierItems(prob.Logits(s.ctx), prefix);
    torch::Tensor loss = PolicySurrogateLoss(masked, s.a, s.r, s.p, qhat, o);
    const torch::Tensor autograd_grad = torch::autograd::grad({loss}, {prob.w})[0];

    torch::Tensor manual = torch::zeros_like(prob.w);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int64_t> keep;
      int64_t a_kept = -1;
      for (int64_t b = 0; b < TinyProblem::kActions; ++b) {
        if ((prefix[i] == b).any().item<bool>()) continue;
        if (b == s.a[i].item<int64_t>()) a_kept = static_cast<int64_t>(keep.size());
        keep.push_back(b);
      }
      const torch::Tensor cols = torch::tensor(keep, torch::kInt64);
      const torch::Tensor li = prob.Logits(s.ctx.slice(0, i, i + 1)).index_select(1, cols);
      torch::Tensor li_loss = PolicySurrogateLoss(
          li, torch::tensor({a_kept}, torch::kInt64), s.r.slice(0, i, i + 1),
          s.p.slice(0, i, i + 1), qhat.slice(0, i, i + 1).index_select(1, cols), o);
      manual += torch::autograd::grad({li_loss}, {prob.w})[0] / static_cast<double>(n);
    }
    // Both in double, the same terms summed in another order (log_softmax over 4 vs 2-4 columns):
    // rounding ~1e-15 on O(1) terms; 1e-9 is far above it and far below the gradient (next line).
    EXPECT_LT((autograd_grad - manual).abs().max().item<double>(), 1e-9)
        << ObjectiveName(objective) << "\nautograd\n" << autograd_grad << "\nmanual\n" << manual;
    EXPECT_GT(manual.abs().max().item<double>(), 1e-3);
  }
}

TEST(PolicyGradientTest, ExcludeEarlierItemsLeavesLogitsWithoutPrefixesAlone) {
  const torch::Tensor logits = torch::randn({3, 5});
  EXPECT_TRUE(ExcludeEarlierItems(logits, torch::Tensor()).equal(logits));
  const torch::Tensor none = torch::full({3, 2}, -1, torch::kInt64);
  EXPECT_TRUE(ExcludeEarlierItems(logits, none).equal(logits));
  torch::Tensor one = none.clone();
  one[1][0] = 4;
  const torch::Tensor masked = ExcludeEarlierItems(logits, one);
  EXPECT_EQ(masked[1][4].item<float>(), kExcludedLogit);
  EXPECT_EQ(torch::softmax(masked, 1)[1][4].item<float>(), 0.0f);
  EXPECT_EQ((masked != logits).sum().item<int64_t>(), 1);
}

TEST(PolicyGradientTest, IpsSurrogateGradientEqualsEstimatorTermByTerm) {
  TinyProblem prob(/*seed=*/3);
  std::mt19937_64 rng(4);
  const Sample s = Simulate(prob, /*n=*/11, rng);
  SurrogateOptions o;
  o.objective = Objective::kIpw;
  const torch::Tensor autograd_grad = EstimatorGradient(prob, s, torch::Tensor(), o);
  torch::Tensor manual = torch::zeros_like(prob.w);
  for (int64_t i = 0; i < s.a.size(0); ++i) {
    torch::Tensor lp_all = torch::log_softmax(prob.Logits(s.ctx.slice(0, i, i + 1)), 1)[0];
    const int64_t ai = s.a[i].item<int64_t>();
    const double w = lp_all[ai].exp().item<double>() / s.p[i].item<double>();
    manual += w * s.r[i].item<double>() * torch::autograd::grad({lp_all[ai]}, {prob.w})[0];
  }
  manual /= static_cast<double>(s.a.size(0));
  EXPECT_LT((autograd_grad - manual).abs().max().item<double>(), 1e-5);
  EXPECT_GT(manual.abs().max().item<double>(), 1e-3);
}

TEST(PolicyGradientTest, TopKCorrectionScalesTheFirstTermByLambdaK) {
  TinyProblem prob(/*seed=*/5);
  std::mt19937_64 rng(6);
  const Sample s = Simulate(prob, /*n=*/7, rng);
  SurrogateOptions plain, topk;
  plain.objective = topk.objective = Objective::kIpw;
  topk.top_k = 3;
  // With one sample, lambda_K = K (1 - pi)^(K-1) multiplies the whole IPS gradient.
  const Sample one{s.ctx.slice(0, 0, 1), s.a.slice(0, 0, 1), torch::ones({1}, torch::kFloat64),
                   s.p.slice(0, 0, 1)};
  const double pi = torch::softmax(prob.Logits(one.ctx), 1)[0][one.a[0].item<int64_t>()].item<double>();
  const double lambda = 3 * std::pow(1 - pi, 2);
  torch::Tensor g_plain = EstimatorGradient(prob, one, torch::Tensor(), plain);
  torch::Tensor g_topk = EstimatorGradient(prob, one, torch::Tensor(), topk);
  EXPECT_LT((g_topk - lambda * g_plain).abs().max().item<double>(), 1e-9);
}

// Unbiasedness: E[grad V_IPS] = E[grad V_DR] = grad V(pi_theta) when pi_0 is known, whatever q̂ is.
// Over M = 4000 simulated logs of n = 50 rounds, each of the 12 gradient coordinates of the mean
// estimate must be within 4 standard errors of the exact gradient, the SE being the coordinate's
// sample standard deviation over the M logs / sqrt(M). For one coordinate a 4-SE miss has
// probability 6e-5 under the normal approximation (M is large), so ~1e-3 for all 12 x 3 checks;
// the seed is fixed anyway. A biased estimator (e.g. dropping w_i) is off by far more than 4 SE.
TEST(PolicyGradientTest, IpsAndDrGradientsAreUnbiasedAndDrHasLowerVarianceWithTrueQ) {
  TinyProblem prob(/*seed=*/7);
  const torch::Tensor exact = prob.ExactGradient();
  std::mt19937_64 rng(8);
  constexpr int kSets = 4000;
  constexpr int64_t kRounds = 50;
  std::vector<torch::Tensor> ips, dr_true, dr_wrong;
  SurrogateOptions o_ips, o_dr;
  o_ips.objective = Objective::kIpw;
  o_dr.objective = Objective::kDr;
  const torch::Tensor wrong_q = (1.0 - prob.q);  // badly misspecified q̂
  for (int m = 0; m < kSets; ++m) {
    const Sample s = Simulate(prob, kRounds, rng);
    ips.push_back(EstimatorGradient(prob, s, torch::Tensor(), o_ips).flatten());
    dr_true.push_back(EstimatorGradient(prob, s, prob.q.index_select(0, s.ctx), o_dr).flatten());
    dr_wrong.push_back(EstimatorGradient(prob, s, wrong_q.index_select(0, s.ctx), o_dr).flatten());
  }
  auto check = [&](const std::vector<torch::Tensor>& g, const char* name) {
    torch::Tensor all = torch::stack(g);
    torch::Tensor mean = all.mean(0);
    torch::Tensor se = all.std(0) / std::sqrt(static_cast<double>(kSets));
    torch::Tensor z = (mean - exact.flatten()).abs() / se;
    EXPECT_LT(z.max().item<double>(), 4.0) << name << " mean\n" << mean << "\nexact\n" << exact.flatten();
    return all.var(0).sum().item<double>();  // total variance
  };
  const double var_ips = check(ips, "ips");
  const double var_dr = check(dr_true, "dr(q̂=q)");
  check(dr_wrong, "dr(q̂ wrong)");
  EXPECT_LT(var_dr, var_ips) << "DR with the true q should have lower variance than IPS";
}

}  // namespace
}  // namespace optower
