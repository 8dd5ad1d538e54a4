// PolicyLearnerOptions::Validate (core/learning/policy_learner.h): the learner's and q̂'s ranges in one place.
// The trainer validates its learner options with it (TrainerOptions::Validate).
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/learning/policy_learner.h"

namespace optower {
namespace {

absl::Status Bad(const std::string& prefix, const std::string& field, double value,
                 const char* why) {
  return absl::InvalidArgumentError(absl::StrCat(prefix, field, "=", value, ": ", why));
}

// The towers' shape, shared by the policy and q̂.
absl::Status ValidateTowers(const std::string& prefix, const std::vector<int64_t>& hidden,
                            int64_t embedding_dim) {
  for (size_t i = 0; i < hidden.size(); ++i) {
    if (hidden[i] < 1) return Bad(prefix, absl::StrCat("hidden[", i, "]"), hidden[i], "must be >= 1");
  }
  if (embedding_dim < 1) return Bad(prefix, "embedding_dim", embedding_dim, "must be >= 1");
  return absl::OkStatus();
}

absl::Status ValidateRewardModel(const RewardModelOptions& o) {
  const std::string p = "reward_model.";
  if (absl::Status s = ValidateTowers(p, o.hidden, o.embedding_dim); !s.ok()) return s;
  if (o.epochs < 1) return Bad(p, "epochs", o.epochs, "must be >= 1");
  if (o.batch_size < 1) return Bad(p, "batch_size", o.batch_size, "must be >= 1");
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate)) {
    return Bad(p, "learning_rate", o.learning_rate, "must be finite and > 0");
  }
  if (!(o.l2 >= 0) || !std::isfinite(o.l2)) return Bad(p, "l2", o.l2, "must be finite and >= 0");
  if (!(o.validation_fraction >= 0 && o.validation_fraction < 1)) {
    return Bad(p, "validation_fraction", o.validation_fraction, "must be in [0, 1)");
  }
  if (o.patience < 1) return Bad(p, "patience", o.patience, "must be >= 1");
  if (o.threads < 0) return Bad(p, "threads", o.threads, "must be >= 0 (0 = all cores)");
  return absl::OkStatus();
}

}  // namespace

// Torch-free like the rest of this file (the fuzz targets link it), though declared in
// reward_model_choice.h.
absl::Status QhatSearch::Validate() const {
  for (int64_t k : context_degrees)
    if (k < 1 || k > 3)
      return absl::InvalidArgumentError(
          absl::StrFormat("qhat_search.context_degrees: %d: must be 1, 2 or 3", k));
  for (double c : l2_per_row)
    if (!(c >= 0) || !(c < 1e9))
      return absl::InvalidArgumentError(
          absl::StrFormat("qhat_search.l2_per_row: %g: must be >= 0 and finite", c));
  if (!(selection_z >= 0) || !std::isfinite(selection_z))
    return absl::InvalidArgumentError(
        absl::StrFormat("qhat_search.selection_z: %g: must be finite and >= 0", selection_z));
  return absl::OkStatus();
}

absl::Status PolicyLearnerOptions::Validate() const {
  if (absl::Status s = ValidateTowers("", hidden, embedding_dim); !s.ok()) return s;
  if (!(temperature > 0) || !std::isfinite(temperature)) {
    return Bad("", "temperature", temperature, "must be finite and > 0");
  }
  if (!(min_train_temperature >= 0) || !std::isfinite(min_train_temperature)) {
    return Bad("", "min_train_temperature", min_train_temperature, "must be finite and >= 0 (0 = temperature)");
  }
  if (epochs < 0) return Bad("", "epochs", epochs, "must be >= 0 (0 = keep the initial policy)");
  if (batch_size < 1) return Bad("", "batch_size", batch_size, "must be >= 1");
  if (!(learning_rate > 0) || !std::isfinite(learning_rate)) {
    return Bad("", "learning_rate", learning_rate, "must be finite and > 0");
  }
  if (!(l2 >= 0) || !std::isfinite(l2)) return Bad("", "l2", l2, "must be finite and >= 0");
  if (!std::isfinite(weight_clip)) {
    return Bad("", "weight_clip", weight_clip, "must be finite (< 0 = the rule, 0 = none)");
  }
  if (!(selection_z >= 0) || !std::isfinite(selection_z)) {
    return Bad("", "selection_z", selection_z, "must be finite and >= 0");
  }
  if (top_k < 0) return Bad("", "top_k", top_k, "must be >= 0 (0 = off)");
  if (!(validation_fraction >= 0 && validation_fraction < 1)) {
    return Bad("", "validation_fraction", validation_fraction, "must be in [0, 1)");
  }
  if (patience < 1) return Bad("", "patience", patience, "must be >= 1");
  if (threads < 0) return Bad("", "threads", threads, "must be >= 0 (0 = all cores)");
  if (absl::Status s = sampled.Validate(); !s.ok()) return s;
  if (absl::Status s = qhat_search.Validate(); !s.ok()) return s;
  return ValidateRewardModel(reward_model);
}

}  // namespace optower
