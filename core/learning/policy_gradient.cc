#include "core/learning/policy_gradient.h"

namespace optower {
namespace {

// The surrogate from log pi(a_i|x_i) [B] (requires grad) and, unless kIpw, pi over the candidates
// [B, C] (requires grad) with q̂ of them.
torch::Tensor SurrogateFromLogPi(const torch::Tensor& log_pi_logged, const torch::Tensor& pi_cand,
                                 const torch::Tensor& rewards, const torch::Tensor& pscores,
                                 const torch::Tensor& qhat_logged, const torch::Tensor& qhat_cand,
                                 const SurrogateOptions& options) {
  const torch::Tensor pi_logged = log_pi_logged.detach().exp();
  torch::Tensor w = pi_logged / pscores;                                      // sg(w_i)
  if (options.weight_clip > 0) w = w.clamp_max(options.weight_clip);
  if (options.self_normalize) w = w / w.mean().clamp_min(1e-12);
  if (options.top_k > 1) w = w * options.top_k * (1.0 - pi_logged).pow(options.top_k - 1);

  if (options.objective == Objective::kIpw) {
    return -(w * rewards * log_pi_logged).mean();
  }
  const torch::Tensor direct = (pi_cand * qhat_cand).sum(1);  // E_pi q̂
  return -(w * (rewards - qhat_logged) * log_pi_logged + direct).mean();
}

}  // namespace

torch::Tensor SurrogateOverCandidates(const torch::Tensor& logged_logit,
                                      const torch::Tensor& cand_logits,
                                      const torch::Tensor& rewards, const torch::Tensor& pscores,
                                      const torch::Tensor& qhat_logged,
                                      const torch::Tensor& qhat_cand,
                                      const SurrogateOptions& options) {
  // log pi = (logged - m) - logsumexp(cand - m) with m the row's largest logit (detached; the
  // value and gradient do not depend on it): the differences stay small where logits are large,
  // so log pi keeps float precision (logged - logsumexp(cand) rounds at the logits' magnitude).
  const torch::Tensor m = std::get<0>(cand_logits.detach().max(/*dim=*/1));  // [B]
  const torch::Tensor log_pi_logged =
      (logged_logit - m) - torch::logsumexp(cand_logits - m.unsqueeze(1), /*dim=*/1);
  const torch::Tensor pi_cand = options.objective == Objective::kIpw
                                    ? torch::Tensor()
                                    : torch::softmax(cand_logits, 1);
  return SurrogateFromLogPi(log_pi_logged, pi_cand, rewards, pscores, qhat_logged, qhat_cand,
                            options);
}

// The same loss as SurrogateOverCandidates(logits.gather(a), logits, ...), from one log_softmax
// (log pi of the logged action gathered from it, pi its exp): fewer passes over [B, N] and fewer
// autograd nodes per minibatch than logsumexp and softmax separately.
torch::Tensor PolicySurrogateLoss(const torch::Tensor& logits, const torch::Tensor& actions,
                                  const torch::Tensor& rewards, const torch::Tensor& pscores,
                                  const torch::Tensor& qhat, const SurrogateOptions& options) {
  const torch::Tensor idx = actions.unsqueeze(1);
  const torch::Tensor log_pi = torch::log_softmax(logits, /*dim=*/1);         // [B, N]
  const torch::Tensor log_pi_logged = log_pi.gather(1, idx).squeeze(1);      // [B]
  if (options.objective == Objective::kIpw)
    return SurrogateFromLogPi(log_pi_logged, torch::Tensor(), rewards, pscores, torch::Tensor(),
                              torch::Tensor(), options);
  return SurrogateFromLogPi(log_pi_logged, log_pi.exp(), rewards, pscores,
                            qhat.gather(1, idx).squeeze(1), qhat, options);
}

}  // namespace optower
