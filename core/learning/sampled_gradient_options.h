// When and how the policy learner estimates its gradient from a sample of the catalog instead of
// the whole catalog (core/learning/sampled_gradient.h; docs/LEARNING.md "Large catalogs").
#ifndef OPTOWER_CORE_LEARNING_SAMPLED_GRADIENT_OPTIONS_H_
#define OPTOWER_CORE_LEARNING_SAMPLED_GRADIENT_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/learning/item_proposal.h"

namespace optower {

enum class GradientMode {
  kAuto,     // exact up to SampledGradientOptions::auto_min_items items, sampled from there on
  kExact,    // every sum over actions over the whole catalog ([batch, N] logits)
  kSampled,  // head (top-M of the proposal index) + uniform tail, self-normalised
};

absl::StatusOr<GradientMode> ParseGradientMode(const std::string& name);  // auto|exact|sampled
std::string GradientModeName(GradientMode mode);

struct SampledGradientOptions {
  GradientMode mode = GradientMode::kAuto;
  // kAuto switches to the sampled estimator at this catalog size. Measured (docs/BENCHMARKS.md
  // §3): with the defaults below a sampled step costs about what an exact step costs at ~20k
  // items; the exact one grows linearly from there.
  int64_t auto_min_items = 20000;
  // Per context, the top `head_items` rows of the proposal index (exact logits, weight 1).
  int head_items = 64;
  // Per minibatch, `tail_items` uniform draws (with replacement) from the catalog, shared by its
  // rows; a draw that is in a row's head (or among its slate's earlier items) counts 0 for that
  // row, the others N / tail_items each.
  int tail_items = 1024;
  // The proposal index (core/learning/item_proposal.h), rebuilt from the policy's item embeddings
  // at the start of every epoch (its seed is the learner's).
  ItemProposalOptions proposal;

  // True when a catalog of n_items uses the sampled estimator.
  bool UseSampled(int64_t n_items) const {
    return mode == GradientMode::kSampled ||
           (mode == GradientMode::kAuto && n_items >= auto_min_items);
  }
  // InvalidArgument naming the field ("sampled.head_items=0: must be >= 1").
  absl::Status Validate() const;
};

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_SAMPLED_GRADIENT_OPTIONS_H_
