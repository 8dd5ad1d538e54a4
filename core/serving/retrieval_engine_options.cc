// RetrievalEngineOptions::Validate (core/serving/retrieval_engine.h): the engine's ranges in one
// place, apart from the engine so that readers of a server config (and its fuzz target) can check
// the options without FAISS or the snapshot code.
#include <cmath>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/serving/retrieval_engine.h"

namespace optower {

absl::Status RetrievalEngineOptions::Validate() const {
  const RetrievalEngineOptions& o = *this;
  auto bad = [](const char* name, auto value, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(name, "=", value, ": ", why));
  };
  if (o.max_k < 1) return bad("max_k", o.max_k, "must be >= 1");
  if (o.top_m < 1) return bad("top_m", o.top_m, "must be >= 1");
  if (!(o.epsilon >= 0.0 && o.epsilon <= 1.0)) return bad("epsilon", o.epsilon, "must be in [0, 1]");
  if (!(o.temperature >= 0.0) || !std::isfinite(o.temperature)) {
    return bad("temperature", o.temperature, "must be finite and >= 0 (0 = the model's)");
  }
  if (o.max_exclude < 0) return bad("max_exclude", o.max_exclude, "must be >= 0");
  if (o.max_categorical_features < 0) {
    return bad("max_categorical_features", o.max_categorical_features, "must be >= 0");
  }
  if (o.max_request_id_bytes < 1) {
    return bad("max_request_id_bytes", o.max_request_id_bytes, "must be >= 1");
  }
  if (o.max_feedback_batch < 1) return bad("max_feedback_batch", o.max_feedback_batch, "must be >= 1");
  if (o.max_upsert_batch < 1) return bad("max_upsert_batch", o.max_upsert_batch, "must be >= 1");
  if (!(std::abs(o.reward_min) <= kMaxRewardMagnitude)) {
    return bad("reward_min", o.reward_min, "must be finite, within +-1e30");
  }
  if (!(std::abs(o.reward_max) <= kMaxRewardMagnitude) || !(o.reward_max >= o.reward_min)) {
    return bad("reward_max", o.reward_max,
               absl::StrCat("must be >= reward_min=", o.reward_min, " and within +-1e30"));
  }
  return absl::OkStatus();
}

}  // namespace optower
