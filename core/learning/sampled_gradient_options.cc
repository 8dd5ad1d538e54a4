#include "core/learning/sampled_gradient_options.h"

#include "absl/strings/str_cat.h"

namespace optower {

absl::StatusOr<GradientMode> ParseGradientMode(const std::string& name) {
  if (name == "auto") return GradientMode::kAuto;
  if (name == "exact") return GradientMode::kExact;
  if (name == "sampled") return GradientMode::kSampled;
  return absl::InvalidArgumentError(
      absl::StrCat("gradient=", name, ": must be auto, exact or sampled"));
}

std::string GradientModeName(GradientMode mode) {
  switch (mode) {
    case GradientMode::kAuto:
      return "auto";
    case GradientMode::kExact:
      return "exact";
    case GradientMode::kSampled:
      return "sampled";
  }
  return "?";
}

absl::Status SampledGradientOptions::Validate() const {
  auto bad = [](const char* field, int64_t value, const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("sampled.", field, "=", value, ": ", why));
  };
  if (auto_min_items < 2) return bad("auto_min_items", auto_min_items, "must be >= 2");
  if (head_items < 1) return bad("head_items", head_items, "must be >= 1");
  if (tail_items < 0) return bad("tail_items", tail_items, "must be >= 0");
  if (proposal.exact_max_items < 0)
    return bad("proposal.exact_max_items", proposal.exact_max_items, "must be >= 0");
  if (proposal.ivf_nlist < 0) return bad("proposal.ivf_nlist", proposal.ivf_nlist, "must be >= 0");
  if (proposal.ivf_nprobe < 1) return bad("proposal.ivf_nprobe", proposal.ivf_nprobe, "must be >= 1");
  return absl::OkStatus();
}

}  // namespace optower
