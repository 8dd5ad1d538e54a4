// SlateSampler: the logging policy of DESIGN §2 and the propensities it logs.
//
// Given the ANN top-M candidates C of a context x (with scores s(x,a) = <u(x), v(a)>), the catalog
// (an ItemIndex: its rows are the catalog) and exclusions E, the single-draw distribution is
//   pi_0(a|x) = (1 - eps) * softmax_{a in C'}(s(x,a) / tau) + eps / N,   a in catalog \ E,
// with C' = C \ E, N = |catalog \ E|, the softmax term 0 outside C', and pi_0 = 0 on E.
// A slate of K items is drawn from pi_0 without replacement ("draw, remove, renormalise"): every
// draw picks among the remaining items with probability proportional to their pi_0.
// Each served item carries pi_0(a|x) of the *initial* distribution — exactly the double the
// sampler used as that item's weight — which is what the trainer's IPS/DR weights need (DESIGN §3,
// "each served item is one logged sample with its single-draw propensity").
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
#include "core/serving/item_index.h"

namespace optower {

struct SlateSamplerOptions {
  double epsilon = 0.1;      // uniform-exploration mass, in [0, 1]
  double temperature = 1.0;  // softmax temperature tau over candidate scores, > 0
  // Deterministic top-K of the candidates by score. Every served item is logged with propensity
  // 1.0 (the probability that the deterministic policy serves it); such logs cannot train an
  // off-policy learner, and the trainer refuses them (DESIGN §2). epsilon/temperature are still
  // validated but unused.
  bool greedy = false;
};

struct SlateItem {
  int64_t item_id = 0;
  int64_t position = 0;  // 0-based rank in the slate = draw order
  float score = 0.0f;    // s(x,a): the candidate's score, else <query, embedding(a)>
  double propensity = 0.0;  // pi_0(a|x) of the initial single-draw distribution, in (0, 1]
  bool in_candidates = false;  // a in C' (drawn through the softmax part)
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
  // catalog or repeated; eps < 1 with no candidates left after exclusion; fewer than k items with
  // non-zero probability (eps = 0 and k > number of candidates whose softmax did not underflow);
  // greedy with k > |C'|.
  // Cost: O(M * K + |E|) plus O(1) expected per uniform draw (a few µs for K=10 of M=100).
  absl::StatusOr<Slate> Sample(const float* query, const std::vector<SearchHit>& candidates,
                               const ItemIndex& catalog, const std::vector<int64_t>& exclude,
                               int64_t k, uint64_t seed) const;

  // The full initial distribution pi_0(.|x) by catalog row ([catalog.size()], 0 on exclusions),
  // computed with the same arithmetic as Sample (for tests and for offline analysis; O(N)).
  // Greedy samplers fail with FailedPrecondition (their policy is not a single-draw distribution).
  absl::StatusOr<std::vector<double>> FirstDrawDistribution(
      const std::vector<SearchHit>& candidates, const ItemIndex& catalog,
      const std::vector<int64_t>& exclude) const;

  const SlateSamplerOptions& options() const { return options_; }

 private:
  explicit SlateSampler(const SlateSamplerOptions& options) : options_(options) {}
  SlateSamplerOptions options_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_SLATE_SAMPLER_H_
