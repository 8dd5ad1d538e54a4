#include "core/serving/snapshot_holder.h"

#include <utility>

namespace optower {

SnapshotHolder::SnapshotHolder(std::shared_ptr<const ModelSnapshot> initial)
    : current_(std::move(initial)) {}

std::shared_ptr<const ModelSnapshot> SnapshotHolder::Get() const {
  absl::ReaderMutexLock lock(&mu_);
  return current_;
}

std::shared_ptr<const ModelSnapshot> SnapshotHolder::Publish(
    std::shared_ptr<const ModelSnapshot> next) {
  absl::MutexLock lock(&mu_);
  ++publications_;
  current_.swap(next);
  return next;  // the previous snapshot; destroyed by the caller outside the lock
}

int64_t SnapshotHolder::publications() const {
  absl::ReaderMutexLock lock(&mu_);
  return publications_;
}

}  // namespace optower
