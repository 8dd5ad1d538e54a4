#include "core/serving/snapshot_reaper.h"

#include <utility>
#include <vector>

#include "absl/time/clock.h"

namespace optower {

SnapshotReaper::SnapshotReaper(const Options& options) : options_(options) {
  thread_ = std::thread([this] {
    // A thread that exists for background work: lowering it is safe (core/base/background_priority.h).
    const absl::Status set = SetCurrentThreadPriority(options_.priority);
    if (!set.ok()) WarnPriorityNotSet(options_.priority, set);
    Loop();
  });
}

SnapshotReaper::~SnapshotReaper() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void SnapshotReaper::Retire(std::shared_ptr<const ModelSnapshot> snapshot) {
  if (snapshot == nullptr) return;
  absl::MutexLock lock(&mu_);
  queue_.push_back({std::move(snapshot), absl::Now() + options_.max_hold});
}

int64_t SnapshotReaper::freed() const {
  absl::MutexLock lock(&mu_);
  return freed_;
}

int64_t SnapshotReaper::released_unfreed() const {
  absl::MutexLock lock(&mu_);
  return released_;
}

int64_t SnapshotReaper::pending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

void SnapshotReaper::Loop() {
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
  for (;;) {
    std::vector<std::shared_ptr<const ModelSnapshot>> to_drop;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&has_work));
      stopping = stop_;
      const absl::Time now = absl::Now();
      for (auto it = queue_.begin(); it != queue_.end();) {
        // use_count() == 1: nobody else holds it, and nobody can take it again (it left the
        // holder), so dropping our reference frees it, here.
        const bool last = it->snapshot.use_count() == 1;
        if (last || stopping || now >= it->deadline) {
          if (last) {
            ++freed_;
          } else {
            ++released_;
          }
          to_drop.push_back(std::move(it->snapshot));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    to_drop.clear();  // frees, outside the lock, at this thread's priority
    if (stopping) return;
    absl::SleepFor(options_.poll_interval);
  }
}

}  // namespace optower
