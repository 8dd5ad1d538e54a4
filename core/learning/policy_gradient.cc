#include "core/learning/policy_gradient.h"

namespace optower {

torch::Tensor SurrogateOverCandidates(const torch::Tensor& logged_logit,
                                      const torch::Tensor& cand_logits,
                                      const torch::Tensor& rewards, const torch::Tensor& pscores,
                                      const torch::Tensor& qhat_logged,
                                      const torch::Tensor& qhat_cand,
                                      const SurrogateOptions& options) {
  const torch::Tensor log_z = torch::logsumexp(cand_logits, /*dim=*/1);      // [B]
  const torch::Tensor log_pi_logged = logged_logit - log_z;                  // [B]
  const torch::Tensor pi_logged = log_pi_logged.detach().exp();

  torch::Tensor w = pi_logged / pscores;                                      // sg(w_i)
  if (options.weight_clip > 0) w = w.clamp_max(options.weight_clip);
  if (options.self_normalize) w = w / w.mean().clamp_min(1e-12);
  if (options.top_k > 1) w = w * options.top_k * (1.0 - pi_logged).pow(options.top_k - 1);

  if (options.objective == Objective::kIpw) {
    return -(w * rewards * log_pi_logged).mean();
  }
  const torch::Tensor direct = (torch::softmax(cand_logits, 1) * qhat_cand).sum(1);  // E_pi q̂
  return -(w * (rewards - qhat_logged) * log_pi_logged + direct).mean();
}

torch::Tensor PolicySurrogateLoss(const torch::Tensor& logits, const torch::Tensor& actions,
                                  const torch::Tensor& rewards, const torch::Tensor& pscores,
                                  const torch::Tensor& qhat, const SurrogateOptions& options) {
  const torch::Tensor idx = actions.unsqueeze(1);
  const torch::Tensor logged_logit = logits.gather(1, idx).squeeze(1);       // [B]
  torch::Tensor qhat_logged;
  if (options.objective != Objective::kIpw) qhat_logged = qhat.gather(1, idx).squeeze(1);
  return SurrogateOverCandidates(logged_logit, logits, rewards, pscores, qhat_logged, qhat,
                                 options);
}

}  // namespace optower
