// The sampled DR / IPS policy gradient for large catalogs (docs/LEARNING.md "Large catalogs";
// Sakhi et al., "Fast Offline Policy Optimization for Large Scale Recommendation", AAAI 2023).
// Torch header: include only from the learner and its tests.
//
// Both terms of the DR gradient need sums over all N items: the log-normaliser
// Z(x) = sum_a exp(s(x,a)) inside log pi(a_i|x_i), and E_{a~pi}[q̂(x,a) grad log pi(a|x)]. Per
// context x_i a candidate set replaces the catalog:
//   head H_i: the top-M rows of the proposal index (core/learning/item_proposal.h) for u(x_i),
//             and the logged action a_i, each with weight 1 — where a small-temperature softmax
//             keeps most of its mass;
//   tail:     m uniform draws (with replacement) from the catalog, shared by the minibatch; a draw
//             in H_i (or among the slate's earlier items) has weight 0 for row i, any other N/m.
// Then Z^ = sum_{H_i} e^s + (N/m) sum_{tail, not in H_i} e^s is unbiased for Z (the head is a
// fixed set given the index; the tail estimates the rest), and putting log(weight) on each
// candidate's logit makes
//   log pi^(a_i|x_i) = s_i - log Z^,   E^_pi[f] = sum_c softmax(s_c + log weight_c) f_c
// the self-normalised importance-sampling estimates of both terms; SurrogateOverCandidates
// (policy_gradient.h) turns them into the loss. With every item in the head (M >= N, m = 0) the
// candidate set is the catalog and the gradient is exactly the exact one. Otherwise the estimate
// is consistent (bias O(1/m) from the ratio, only on the tail's share of the mass), and the cost of
// a step is O(B M + m) item-tower evaluations whatever N is.
#ifndef OPTOWER_CORE_LEARNING_SAMPLED_GRADIENT_H_
#define OPTOWER_CORE_LEARNING_SAMPLED_GRADIENT_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace optower {

struct CandidateSet {
  // [B, M + 1] int64 catalog rows: the proposal's M, then the row's logged action (weight 0 when
  // the proposal already holds it). Slots the proposal left empty hold row 0 with weight 0.
  torch::Tensor head;
  torch::Tensor tail;       // [m] int64 catalog rows, shared by the batch (may be empty)
  torch::Tensor log_count;  // [B, M + 1 + m] float: log(weight), kExcludedLogit where weight = 0
  int64_t rows() const { return head.size(0); }
};

// head_rows: [B * M] rows from ItemProposal::TopRows (-1 = empty slot); actions: [B] int64 logged
// rows (each joins its row's head); tail: [m] int64 rows in [0, n_items); prefix: [B, P] rows of
// each row's earlier slate items (-1 padded) or undefined.
CandidateSet MakeCandidateSet(const std::vector<int64_t>& head_rows, int64_t batch,
                              int64_t m_proposal, const torch::Tensor& actions,
                              const torch::Tensor& tail, int64_t n_items,
                              const torch::Tensor& prefix);

// m uniform draws from [0, n_items), with replacement.
torch::Tensor DrawTail(int64_t n_items, int64_t m, torch::Generator& gen);

// Embeddings of what a candidate set and the logged actions need, from `embed` (rows [k] int64 ->
// [k, d]). With dedup, `embed` sees every distinct row once (the item tower's cost of a step).
struct CandidateEmbeddings {
  torch::Tensor head;    // [B, M, d]
  torch::Tensor tail;    // [m, d]
  torch::Tensor logged;  // [B, d]
};
CandidateEmbeddings EmbedCandidates(const CandidateSet& candidates, const torch::Tensor& actions,
                                    const std::function<torch::Tensor(const torch::Tensor&)>& embed,
                                    bool dedup);

// Inner products <user_i, v_c> of each row's candidates: [B, M + m] (head then tail), and of its
// logged action: [B].
torch::Tensor CandidateInnerProducts(const torch::Tensor& user, const CandidateEmbeddings& e);
torch::Tensor LoggedInnerProducts(const torch::Tensor& user, const CandidateEmbeddings& e);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_SAMPLED_GRADIENT_H_
