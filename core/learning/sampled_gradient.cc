#include "core/learning/sampled_gradient.h"

#include <cmath>

#include "core/model/log_tensors.h"

namespace optower {

CandidateSet MakeCandidateSet(const std::vector<int64_t>& head_rows, int64_t batch,
                              int64_t m_proposal, const torch::Tensor& actions,
                              const torch::Tensor& tail, int64_t n_items,
                              const torch::Tensor& prefix) {
  torch::NoGradGuard ng;
  CandidateSet c;
  const torch::Tensor proposed =
      torch::from_blob(const_cast<int64_t*>(head_rows.data()), {batch, m_proposal}, torch::kInt64);
  // The logged action joins its row's head (once): it is known before any draw, so the head stays
  // a fixed set, and then pi^(a_i|x_i) = e^{s_i} / Z^ <= 1 (outside the candidates, a large s_i
  // over an underestimated Z^ gave pi^ > 1 and exploding importance weights).
  const torch::Tensor a = actions.view({batch, 1});
  const torch::Tensor action_in_head = proposed.eq(a).any(1, /*keepdim=*/true);  // [B, 1]
  torch::Tensor head = torch::cat({proposed, a}, 1);                           // [B, M + 1]
  const int64_t m_head = m_proposal + 1;
  torch::Tensor head_masked =
      torch::cat({proposed.lt(0), action_in_head}, 1);                          // [B, M + 1]
  c.head = head.clamp_min(0);
  c.tail = tail.defined() ? tail : torch::zeros({0}, torch::kInt64);
  const int64_t m = c.tail.size(0);
  // A tail draw counts for row i only outside H_i: binary search of each draw in the row's
  // sorted head (B m log M operations; the [B, m, M] comparison was 17M for the defaults).
  torch::Tensor tail_masked = torch::zeros({batch, m}, torch::kBool);
  if (m > 0 && m_head > 0) {
    const torch::Tensor sorted = std::get<0>(head.sort(1));
    const torch::Tensor draws = c.tail.view({1, m}).expand({batch, m}).contiguous();
    const torch::Tensor pos = torch::searchsorted(sorted, draws).clamp_max(m_head - 1);
    tail_masked = sorted.gather(1, pos).eq(draws);
  }
  if (prefix.defined() && prefix.size(1) > 0) {
    const int64_t p = prefix.size(1);
    head_masked = head_masked.logical_or(
        c.head.view({batch, m_head, 1}).eq(prefix.view({batch, 1, p})).any(2));
    if (m > 0)
      tail_masked = tail_masked.logical_or(
          c.tail.view({1, m, 1}).eq(prefix.view({batch, 1, p})).any(2));
  }
  const float tail_log_weight =
      m > 0 ? static_cast<float>(std::log(static_cast<double>(n_items) / static_cast<double>(m)))
            : 0.0f;
  torch::Tensor head_lc = torch::zeros({batch, m_head}).masked_fill(head_masked, kExcludedLogit);
  torch::Tensor tail_lc =
      torch::full({batch, m}, tail_log_weight).masked_fill(tail_masked, kExcludedLogit);
  c.log_count = torch::cat({head_lc, tail_lc}, 1);
  return c;
}

torch::Tensor DrawTail(int64_t n_items, int64_t m, torch::Generator& gen) {
  if (m <= 0) return torch::zeros({0}, torch::kInt64);
  return torch::randint(n_items, {m}, gen, torch::kInt64);
}

CandidateEmbeddings EmbedCandidates(const CandidateSet& candidates, const torch::Tensor& actions,
                                    const std::function<torch::Tensor(const torch::Tensor&)>& embed,
                                    bool dedup) {
  const int64_t b = candidates.head.size(0);
  const int64_t mh = candidates.head.size(1);
  const int64_t m = candidates.tail.size(0);
  const torch::Tensor all = torch::cat({candidates.head.reshape({-1}), candidates.tail, actions});
  torch::Tensor emb;
  if (dedup) {
    torch::Tensor unique, inverse;
    std::tie(unique, inverse, std::ignore) =
        torch::_unique2(all, /*sorted=*/false, /*return_inverse=*/true, /*return_counts=*/false);
    emb = embed(unique).index_select(0, inverse);
  } else {
    emb = embed(all);
  }
  const int64_t d = emb.size(1);
  CandidateEmbeddings e;
  e.head = emb.slice(0, 0, b * mh).view({b, mh, d});
  e.tail = emb.slice(0, b * mh, b * mh + m);
  e.logged = emb.slice(0, b * mh + m, b * mh + m + b);
  return e;
}

torch::Tensor CandidateInnerProducts(const torch::Tensor& user, const CandidateEmbeddings& e) {
  const torch::Tensor head = torch::bmm(e.head, user.unsqueeze(2)).squeeze(2);  // [B, M]
  if (e.tail.size(0) == 0) return head;
  return torch::cat({head, user.matmul(e.tail.t())}, 1);                        // [B, M + m]
}

torch::Tensor LoggedInnerProducts(const torch::Tensor& user, const CandidateEmbeddings& e) {
  return (user * e.logged).sum(1);
}

}  // namespace optower
