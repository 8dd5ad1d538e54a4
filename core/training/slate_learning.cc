#include "core/training/slate_learning.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace optower {

std::string SlateLearningName(SlateLearning learning) {
  return learning == SlateLearning::kTopKCorrection ? "top_k" : "per_draw";
}

absl::StatusOr<SlateLearning> ParseSlateLearning(const std::string& name) {
  if (name == "per_draw") return SlateLearning::kPerDraw;
  if (name == "top_k") return SlateLearning::kTopKCorrection;
  return absl::InvalidArgumentError(
      absl::StrCat("slate_learning=", name, ": must be per_draw or top_k"));
}

absl::StatusOr<int> ToTopKCorrectionLog(BanditLog* log) {
  if (log == nullptr) return absl::InvalidArgumentError("log is null");
  if (!log->has_slates()) return 1;
  if (log->first_draw_pscores.size() != log->pscores.size())
    return absl::InvalidArgumentError(absl::StrFormat(
        "the top-K correction needs pi_0 of every sample: %d first-draw propensities for %d "
        "samples",
        log->first_draw_pscores.size(), log->pscores.size()));
  int32_t max_position = 0;
  for (const int32_t p : log->positions) max_position = std::max(max_position, p);
  log->pscores = log->first_draw_pscores;
  log->positions.clear();
  log->prefix_offsets.clear();
  log->prefix_rows.clear();
  return static_cast<int>(max_position) + 1;
}

}  // namespace optower
