#include "core/serving/index_probe.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"

namespace optower {

std::string IndexProbe::Describe() const {
  return absl::StrCat("user tower on ", logged, " logged + ", sampled, " sampled contexts");
}

absl::StatusOr<IndexProbe> MakeIndexProbe(const TwoTowerModel& model,
                                          const std::vector<float>* logged_contexts,
                                          int64_t count, uint64_t seed) {
  if (count < 1) return absl::InvalidArgumentError(absl::StrCat("count=", count, ": must be >= 1"));
  // Rows are the user tower's input: dense features, then the categorical slots (-1 = empty).
  const int64_t dim = ContextInputWidth(model.config());
  const int64_t dense = model.config().dim_context;
  const int64_t values =
      logged_contexts == nullptr ? 0 : static_cast<int64_t>(logged_contexts->size());
  if (dim < 1 || values % dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "logged_contexts has ", values, " values: not a multiple of the model's input width ",
        dim, " (dim_context=", dense, " + categorical slots)"));
  }
  IndexProbe probe;
  probe.logged = std::min(count, values / dim);
  probe.sampled = count - probe.logged;
  std::vector<float> contexts(static_cast<size_t>(count * dim));
  if (probe.logged > 0) {  // the most recent ones: the end of the array
    const float* from = logged_contexts->data() + (values - probe.logged * dim);
    for (int64_t i = 0; i < probe.logged * dim; ++i) {
      if (!std::isfinite(from[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("logged context value ", from[i], ": must be finite"));
      }
    }
    std::copy_n(from, probe.logged * dim, contexts.begin());
  }
  if (probe.sampled > 0) {
    std::vector<float> mean, sd;
    RETURN_IF_ERROR(model.ContextMoments(&mean, &sd));
    if (static_cast<int64_t>(mean.size()) != dense || static_cast<int64_t>(sd.size()) != dense) {
      return absl::InternalError("context moments: wrong size");
    }
    std::mt19937_64 rng(seed ^ 0x2545f4914f6cdd1dULL);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    // Sampled contexts have no categorical ids (empty slots): moments say nothing about them.
    for (int64_t i = probe.logged; i < count; ++i) {
      for (int64_t j = 0; j < dense; ++j) contexts[i * dim + j] = mean[j] + sd[j] * normal(rng);
      std::fill(contexts.begin() + i * dim + dense, contexts.begin() + (i + 1) * dim, -1.0f);
    }
  }
  ASSIGN_OR_RETURN(probe.queries, model.EmbedContexts(contexts.data(), count));
  return probe;
}

}  // namespace optower
