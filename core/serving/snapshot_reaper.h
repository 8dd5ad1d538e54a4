// SnapshotReaper: frees replaced ModelSnapshots off both the serving path and the writer's path.
//
// After a swap, requests that started earlier still hold the old snapshot. Freeing it (the index and
// the embeddings: hundreds of MB at 1M items) takes milliseconds; done by the last request's thread
// it would land in that request's latency. Retire() hands the snapshot to one background thread (at
// the engine's build priority) and returns at once, so a catalog change or a model swap costs what
// its build costs (before, the writer itself waited up to 2 s for readers to let go — a DeleteItems
// of 3 items took 2,006 ms while anything else held the old snapshot). The thread polls every
// poll_interval and frees a snapshot once it is the last holder; past max_hold (a request stuck for
// that long, or a caller that keeps a snapshot), it lets go of its reference and the last holder
// frees it after all.
//
// Thread safety: Retire may be called from any thread. The destructor frees what it still holds.
#ifndef OPTOWER_CORE_SERVING_SNAPSHOT_REAPER_H_
#define OPTOWER_CORE_SERVING_SNAPSHOT_REAPER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/base/background_priority.h"
#include "core/serving/model_snapshot.h"

namespace optower {

class SnapshotReaper {
 public:
  struct Options {
    BackgroundPriority priority = BackgroundPriority::kIdle;
    absl::Duration poll_interval = absl::Milliseconds(1);
    absl::Duration max_hold = absl::Seconds(2);
  };
  explicit SnapshotReaper(const Options& options);
  ~SnapshotReaper();
  SnapshotReaper(const SnapshotReaper&) = delete;
  SnapshotReaper& operator=(const SnapshotReaper&) = delete;

  // Takes `snapshot` (may be null: ignored) and returns without waiting.
  void Retire(std::shared_ptr<const ModelSnapshot> snapshot);

  // Snapshots freed by this thread (it was the last holder) and let go past max_hold, since start.
  int64_t freed() const;
  int64_t released_unfreed() const;
  // Snapshots currently waiting.
  int64_t pending() const;

 private:
  struct Entry {
    std::shared_ptr<const ModelSnapshot> snapshot;
    absl::Time deadline;
  };
  void Loop();

  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t freed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t released_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_SNAPSHOT_REAPER_H_
