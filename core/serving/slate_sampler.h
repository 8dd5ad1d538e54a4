// SlateSampler: the logging policy of DESIGN §2 and the propensities it logs.
//
// Given the ANN top-M candidates C of a context x (with scores s(x,a) = <u(x), v(a)>), the catalog
// (an ItemIndex: its rows are the catalog) and exclusions E, the single-draw distribution is
//   pi_0(a|x) = (1 - eps) * softmax_{a in C'}(s(x,a) / tau) + eps / N,   a in catalog \ E,
// with C' = C \ E, N = |catalog \ E|, the softmax term 0 outside C', and pi_0 = 0 on E.
// The first item of a slate is drawn from pi_0. How the later draws explore is the option
// `exploration` (docs/SERVING.md "Exploration across the slate"); in both modes draw j picks from
// the remaining eligible items R_j = catalog \ E \ {a_0 .. a_{j-1}}, |R_j| = N - j:
// - kPerSlate ("draw, remove, renormalise"): with probability proportional to pi_0, i.e.
//     p_j(a) = pi_0(a|x) / (1 - sum_{i<j} pi_0(a_i|x)).
//   Once a trained policy's softmax mass sits on one item, the remainder is dominated by the
//   eps-uniform part and positions >= 1 are close to uniform over the catalog.
// - kPerPosition (default): every draw is a fresh epsilon-mixture over what remains,
//     p_j(a) = (1 - eps) * softmax_{C_j}(s/tau)(a) + eps / |R_j|   for a in C_j = C' ∩ R_j,
//     p_j(a) = eps / |R_j|                                          for a in R_j \ C_j,
//   and p_j = 1 / |R_j| (uniform) once C_j is empty. The softmax is shifted by max_{C_j} s, so it
//   never underflows to all-zero. (With eps = 0, C_j leaves out the candidates whose pi_0
//   underflowed to 0: they could not be logged.)
// At position 0 both are pi_0 (same numbers, same draw for a given seed): K = 1 serves the same.
// Each served item carries pi_0(a|x) of the *initial* distribution — exactly the double the
// sampler used as that item's weight at position 0 — and `conditional_propensity`, the
// probability p_j(a_j) with which draw j picked it given the earlier draws (the weight of the
// trainer's per-draw IPS/DR, docs/LEARNING.md "Slates"); the probability of the ordered slate is
// their product.
//
// Items outside C' are drawn uniformly by rejection against a hash set of C ∪ E ∪ drawn, so the
// N-vector is never materialised; when that set covers most of the catalog (tiny catalogs), the
// remaining items are enumerated instead, so a draw never loops.
//
// Thread safety: a SlateSampler is immutable; Sample/FirstDrawDistribution are const and may run
// concurrently. All randomness comes from the per-call seed (reproducible across runs/platforms).
#ifndef OPTOWER_CORE_SERVING_SLATE_SAMPLER_H_
#define OPTOWER_CORE_SERVING_SLATE_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/serving/item_index.h"
#include "core/serving/slate_exploration.h"

namespace optower {

struct SlateSamplerOptions {
  double epsilon = 0.1;      // uniform-exploration mass, in [0, 1]
  double temperature = 1.0;  // softmax temperature tau over candidate scores, > 0
  // Deterministic top-K of the candidates by score. Every served item is logged with propensity
  // 1.0 (the probability that the deterministic policy serves it); such logs cannot train an
  // off-policy learner, and the trainer refuses them (DESIGN §2). epsilon/temperature are still
  // validated but unused.
  bool greedy = false;
  SlateExploration exploration = SlateExploration::kPerPosition;
};

struct SlateItem {
  int64_t item_id = 0;
  int64_t position = 0;  // 0-based rank in the slate = draw order
  float score = 0.0f;    // s(x,a): the candidate's score, else <query, embedding(a)>
  double propensity = 0.0;  // pi_0(a|x) of the initial single-draw distribution, in (0, 1]
  bool in_candidates = false;  // a in C' (drawn through the softmax part)
  // p_j(a_j): the probability of this draw given the earlier ones of the slate (file comment), in
  // (0, 1]; equal to `propensity` at position 0. Greedy: 1.
  double conditional_propensity = 0.0;
};

struct Slate {
  std::vector<SlateItem> items;  // [K], in position order
  int64_t num_eligible = 0;      // N = |catalog \ E|
  int64_t num_candidates = 0;    // |C'| = |C \ E|
};

class SlateSampler {
 public:
  // InvalidArgument for epsilon outside [0, 1] or temperature <= 0 (or non-finite).
  static absl::StatusOr<SlateSampler> Create(const SlateSamplerOptions& options);

  // Draws a slate of k items.
  //   query: [catalog.dim()] user embedding u(x); used only for the scores of items drawn from
  //          outside the candidates. Not retained.
  //   candidates: C, distinct ids of `catalog` with finite scores (typically ItemIndex::Search).
  //   exclude: ids never to serve; ids not in the catalog are ignored.
  // Errors (InvalidArgument): k outside [1, N]; a non-finite score; a candidate id not in the
  // catalog or repeated; eps < 1 with no candidates left after exclusion; eps = 0 with k above the
  // number of candidates with pi_0 > 0 (whose softmax weight did not underflow: only they can be
  // drawn, in both modes, since every served item is logged with its pi_0); greedy with k > |C'|.
  // Cost: O(M * K + |E|) plus O(1) expected per uniform draw (a few µs for K=10 of M=100);
  // kPerPosition adds up to M exp() per draw, only for draws after the best remaining candidate
  // was taken (docs/BENCHMARKS.md "Slate sampler: exploration modes").
  absl::StatusOr<Slate> Sample(const float* query, const std::vector<SearchHit>& candidates,
                               const ItemIndex& catalog, const std::vector<int64_t>& exclude,
                               int64_t k, uint64_t seed) const;

  // The full initial distribution pi_0(.|x) by catalog row ([catalog.size()], 0 on exclusions),
  // computed with the same arithmetic as Sample (for tests and for offline analysis; O(N)).
  // Greedy samplers fail with FailedPrecondition (their policy is not a single-draw distribution).
  absl::StatusOr<std::vector<double>> FirstDrawDistribution(
      const std::vector<SearchHit>& candidates, const ItemIndex& catalog,
      const std::vector<int64_t>& exclude) const;

  // The conditional distribution p_j(.) of the next draw given the already drawn ids `drawn`
  // (j = drawn.size(); in draw order, though only the set matters), by catalog row
  // ([catalog.size()], 0 on exclusions and drawn items), computed with the same arithmetic as
  // Sample: Sample's conditional_propensity of draw j is this vector at the drawn row. With
  // drawn = {} it is pi_0 (FirstDrawDistribution). For tests and offline analysis; O(N).
  // InvalidArgument as Sample, and for a drawn id that is not eligible (not in the catalog,
  // excluded) or repeated, or when nothing drawable is left. FailedPrecondition for greedy.
  absl::StatusOr<std::vector<double>> StepDistribution(const std::vector<SearchHit>& candidates,
                                                       const ItemIndex& catalog,
                                                       const std::vector<int64_t>& exclude,
                                                       const std::vector<int64_t>& drawn) const;

  const SlateSamplerOptions& options() const { return options_; }

 private:
  explicit SlateSampler(const SlateSamplerOptions& options) : options_(options) {}
  SlateSamplerOptions options_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_SLATE_SAMPLER_H_
