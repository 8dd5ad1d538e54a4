#include "core/serving/context_sample.h"

#include <algorithm>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "core/base/status_macros.h"

namespace optower {

void ContextSample::AddLocked(const float* context, int64_t dim) {
  if (dim != dim_) {
    dim_ = dim;
    ring_.assign(static_cast<size_t>(capacity_ * dim), 0.0f);
    next_ = 0;
    count_ = 0;
  }
  std::copy_n(context, dim, ring_.begin() + next_ * dim);
  next_ = (next_ + 1) % capacity_;
  count_ = std::min(count_ + 1, capacity_);
}

void ContextSample::Record(const float* context, int64_t dim) {
  if (dim < 1 || !mu_.TryLock()) return;
  AddLocked(context, dim);
  mu_.Unlock();
}

void ContextSample::RecordAll(const std::vector<float>& contexts, int64_t dim) {
  if (dim < 1) return;
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i + dim <= contexts.size(); i += dim) AddLocked(contexts.data() + i, dim);
}

std::vector<float> ContextSample::Recent(int64_t dim) const {
  absl::MutexLock lock(&mu_);
  std::vector<float> out;
  if (dim != dim_ || count_ == 0) return out;
  out.reserve(static_cast<size_t>(count_ * dim));
  const int64_t oldest = (next_ - count_ + capacity_) % capacity_;
  for (int64_t i = 0; i < count_; ++i) {
    const auto slot = ring_.begin() + ((oldest + i) % capacity_) * dim;
    out.insert(out.end(), slot, slot + dim);
  }
  return out;
}

namespace {

// The encoded user-tower input of a logged row, or nullopt when it does not fit `model`.
std::optional<std::vector<float>> EncodeLogged(const EventLog::JoinedRow& row,
                                               const TwoTowerModel& model) {
  const TwoTowerConfig& config = model.config();
  if (static_cast<int64_t>(row.context.size()) != config.dim_context) return std::nullopt;
  if (config.context_fields.empty()) {
    if (!row.categorical.empty()) return std::nullopt;  // logged under another schema
    return row.context;
  }
  absl::StatusOr<std::vector<CategoricalFeature>> features =
      CategoricalFeaturesFromText(row.categorical);
  if (!features.ok()) return std::nullopt;
  absl::StatusOr<std::vector<float>> encoded =
      model.EncodeContext(row.context.data(), *features, "logged categorical");
  if (!encoded.ok()) return std::nullopt;
  return *std::move(encoded);
}

}  // namespace

absl::StatusOr<std::vector<float>> RecentLoggedContexts(const EventLog& log, int64_t max_contexts,
                                                        const TwoTowerModel& model) {
  std::vector<float> out;
  if (max_contexts < 1 || ContextInputWidth(model.config()) < 1) return out;
  ASSIGN_OR_RETURN(const int64_t max_id, log.MaxServedId());
  if (max_id == 0) return out;
  // Rows are per served item; slates of up to ~10 items are typical, so 10 rows per context.
  EventLog::ReadOptions read;
  read.max_served_id = max_id;
  read.min_served_id = std::max<int64_t>(1, max_id - 10 * max_contexts + 1);
  ASSIGN_OR_RETURN(const std::vector<EventLog::JoinedRow> rows, log.ReadJoined(read));
  absl::flat_hash_set<std::string> seen;
  std::vector<std::vector<float>> picked;  // encoded, newest first
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
    if (static_cast<int64_t>(picked.size()) >= max_contexts) break;
    if (!seen.insert(it->request_id).second) continue;
    std::optional<std::vector<float>> encoded = EncodeLogged(*it, model);
    if (encoded.has_value()) picked.push_back(*std::move(encoded));
  }
  out.reserve(picked.size() * static_cast<size_t>(ContextInputWidth(model.config())));
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) {
    out.insert(out.end(), it->begin(), it->end());
  }
  return out;
}

}  // namespace optower
