// One queued event-log operation and what a blocked caller waits on: the unit the caller side
// (core/storage/event_log_queue.h) hands to the group-commit writer (core/storage/event_log_writer.h).
//
// Thread safety: an Op belongs to the queue (under its lock), then to the writer thread. A
// Completion is shared by the caller and the writer as described on it.
#ifndef OPTOWER_CORE_STORAGE_EVENT_LOG_OP_H_
#define OPTOWER_CORE_STORAGE_EVENT_LOG_OP_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"

namespace optower {

// What a blocked caller waits on. Shared by the caller and the writer: a caller whose deadline
// passes leaves (setting `abandoned`), and the writer may still finish it later. The writer fills
// status/outcomes and then notifies; the caller reads them only after the notification.
struct Completion {
  absl::Notification done;
  absl::Status status;
  std::vector<FeedbackOutcome> outcomes;
  // The caller stopped waiting: the writer skips the operation if it has not started on it.
  std::atomic<bool> abandoned{false};

  void Finish(absl::Status s) {
    status = std::move(s);
    done.Notify();
  }
};

struct Op {
  enum class Kind { kServed, kFeedback, kFlush };
  Kind kind = Kind::kFlush;
  std::vector<ServedSlate> served;  // kServed: the slate of one AppendSlate call (atomic)
  std::vector<FeedbackEvent> feedback;
  // Null when nobody waits: group-commit served ops, and group-commit feedback once answered.
  std::shared_ptr<Completion> completion;
  absl::Time enqueued;
  int64_t num_events = 0;
  int64_t bytes = 0;      // estimated heap held by this op (the max_queue_bytes count)
  bool finished = false;  // answered and released before its commit (failed on its own, skipped)
};

// Estimated bytes an operation holds until it is committed: its payload plus the objects around it
// (string and vector headers, the deque slot). Cheap: one pass over the slates, none over items.
inline int64_t OpBytes(const Op& op) {
  int64_t bytes = static_cast<int64_t>(sizeof(Op));
  for (const ServedSlate& s : op.served) {
    bytes += static_cast<int64_t>(sizeof(ServedSlate) + s.request_id.size() +
                                  s.model_version.size() + s.categorical.size() +
                                  s.context.size() * sizeof(float) +
                                  s.items.size() * sizeof(ServedItem));
  }
  for (const FeedbackEvent& e : op.feedback) {
    bytes += static_cast<int64_t>(sizeof(FeedbackEvent) + e.request_id.size());
  }
  return bytes;
}

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_EVENT_LOG_OP_H_
