// Surrogate losses whose autograd gradient is exactly minus an off-policy policy-gradient
// estimator (DESIGN §3). Torch header: include only from the learner and its tests.
//
// With w_i = pi_theta(a_i|x_i) / p_i and q̂ frozen:
//   IPS: grad V ~= 1/n sum_i w_i r_i grad log pi(a_i|x_i)
//        L_IPS = -1/n sum_i sg(w_i) r_i log pi(a_i|x_i)
//   DR:  grad V ~= 1/n sum_i { w_i (r_i - q̂_i) grad log pi(a_i|x_i) + E_{a~pi}[q̂(x_i,a) grad log pi(a|x_i)] }
//        L_DR  = -1/n sum_i [ sg(w_i)(r_i - q̂_i) log pi(a_i|x_i) + sum_a pi(a|x_i) q̂(x_i,a) ]
//   because grad sum_a pi q̂ = sum_a pi q̂ grad log pi. sg = stop-gradient (detach).
// Options (all change the estimator, none the surrogate identity):
//   weight_clip c > 0: w_i <- min(w_i, c);
//   self_normalize: w_i <- w_i / mean_batch(w) (SNIPS-style, biased but lower variance);
//   top_k K > 1: the first term is multiplied by lambda_K = K (1 - pi(a_i|x_i))^(K-1)
//     (Chen et al., WSDM 2019, top-K off-policy correction), detached.
#ifndef OPTOWER_CORE_LEARNING_POLICY_GRADIENT_H_
#define OPTOWER_CORE_LEARNING_POLICY_GRADIENT_H_

#include <torch/torch.h>

#include "core/learning/objective.h"

namespace optower {

struct SurrogateOptions {
  Objective objective = Objective::kDr;  // kDm has no policy-gradient surrogate (see learner)
  double weight_clip = 0.0;
  bool self_normalize = false;
  int top_k = 0;  // 0 or 1 = no top-K correction
};

// The same surrogate over any candidate set (the exact path below passes the whole catalog; the
// sampled path of sampled_gradient.h a head + tail sample whose log-counts are added to the logits):
//   log pi(a_i|x_i) ~= logged_logit_i - logsumexp_c cand_logits[i, c]
//   sum_a pi(a|x_i) q̂(x_i,a) ~= sum_c softmax(cand_logits[i])_c qhat_cand[i, c]
// logged_logit [B] = s(x_i, a_i) / tau (requires grad); cand_logits [B, C] (requires grad; excluded
// candidates at kExcludedLogit); qhat_logged [B] and qhat_cand [B, C] frozen (kIpw: may be
// undefined). With the whole catalog as the candidate set (offset 0) this is exactly the loss below.
torch::Tensor SurrogateOverCandidates(const torch::Tensor& logged_logit,
                                      const torch::Tensor& cand_logits,
                                      const torch::Tensor& rewards, const torch::Tensor& pscores,
                                      const torch::Tensor& qhat_logged,
                                      const torch::Tensor& qhat_cand,
                                      const SurrogateOptions& options);

// logits: [B, N] = s(x_i, a) / tau (requires grad; slates: the items sample i's draw could not
//         pick set to kExcludedLogit by ExcludeEarlierItems, so every sum over a is over the
//         remaining items); actions: [B] int64 catalog rows;
// rewards, pscores: [B] float; qhat: [B, N] frozen q̂(x_i, a) (ignored for kIpw, may be undefined).
// Returns the scalar surrogate loss L with -grad L equal to the estimator above.
torch::Tensor PolicySurrogateLoss(const torch::Tensor& logits, const torch::Tensor& actions,
                                  const torch::Tensor& rewards, const torch::Tensor& pscores,
                                  const torch::Tensor& qhat, const SurrogateOptions& options);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_POLICY_GRADIENT_H_
