#include "core/serving/context_sample.h"

#include <algorithm>
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

absl::StatusOr<std::vector<float>> RecentLoggedContexts(const EventLog& log, int64_t max_contexts,
                                                        int64_t dim) {
  std::vector<float> out;
  if (max_contexts < 1 || dim < 1) return out;
  ASSIGN_OR_RETURN(const int64_t max_id, log.MaxServedId());
  if (max_id == 0) return out;
  // Rows are per served item; slates of up to ~10 items are typical, so 10 rows per context.
  EventLog::ReadOptions read;
  read.max_served_id = max_id;
  read.min_served_id = std::max<int64_t>(1, max_id - 10 * max_contexts + 1);
  ASSIGN_OR_RETURN(const std::vector<EventLog::JoinedRow> rows, log.ReadJoined(read));
  absl::flat_hash_set<std::string> seen;
  std::vector<const EventLog::JoinedRow*> picked;  // newest first
  for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
    if (static_cast<int64_t>(picked.size()) >= max_contexts) break;
    if (static_cast<int64_t>(it->context.size()) != dim) continue;
    if (seen.insert(it->request_id).second) picked.push_back(&*it);
  }
  out.reserve(picked.size() * static_cast<size_t>(dim));
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) {
    out.insert(out.end(), (*it)->context.begin(), (*it)->context.end());
  }
  return out;
}

}  // namespace optower
