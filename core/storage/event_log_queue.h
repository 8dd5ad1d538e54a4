// EventLogQueue: the operations that callers handed to the event log and the writer has not
// committed yet, and everything callers and health checks read about them (docs/EVENT_LOG.md
// "Back-pressure" and "Write failures, stalls and deadlines"):
// - the FIFO queue and the back-pressure counts (queued + held by the writer, events and bytes;
//   feedback may use at most half of each limit);
// - the age of the oldest unwritten operation, the write failure in progress, and the writer's busy
//   mark, from which WriteStatus() and the stall checks are derived;
// - the counters (EventLog::Stats) and the first error of fire-and-forget work (for Flush).
// Backend-independent: the group-commit writer (core/storage/event_log_writer.h) takes operations from here
// and reports commits, faults and failed operations back.
//
// Thread safety: all methods may be called from any thread; state is under one mutex, except the
// writer's busy mark (an atomic, read by callers without the lock).
#ifndef OPTOWER_CORE_STORAGE_EVENT_LOG_QUEUE_H_
#define OPTOWER_CORE_STORAGE_EVENT_LOG_QUEUE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"
#include "core/storage/event_log_op.h"

namespace optower {

class EventLogQueue {
 public:
  // `options` must be valid (EventLogOptions::Validate).
  explicit EventLogQueue(const EventLogOptions& options);
  EventLogQueue(const EventLogQueue&) = delete;
  EventLogQueue& operator=(const EventLogQueue&) = delete;

  const EventLogOptions& options() const { return options_; }
  bool synchronous() const { return synchronous_; }

  // ---- Caller side ----

  // Single-call limits: InvalidArgument for an operation that could never fit.
  absl::Status CheckFits(const Op& op) const;
  // Queues `op` (op.enqueued and op.bytes set by the caller). Refuses with FailedPrecondition after
  // Stop(), Unavailable while writes fail or stall beyond the window (and, for an op somebody waits
  // on, while the writer is stalled), ResourceExhausted when the op would pass a limit. Wakes the
  // writer only if it waits for work or if op is waited on (see TakeQueued).
  absl::Status Enqueue(Op op);
  // Waits for a queued op's completion: at most until `deadline` (DeadlineExceeded), until the op
  // is older than max_commit_delay + write_failure_window (Unavailable, with WriteStatus's
  // reason), and until the writer has been stuck in one write for writer_stall_timeout
  // (Unavailable). OK once it finished (its status is then in c.status).
  absl::Status Wait(Completion& c, absl::Time enqueued, absl::Time deadline);
  // EventLog::WriteStatus: never blocks on the writer.
  absl::Status WriteStatus() const;
  EventLog::Stats stats() const;
  // Refuses further operations; the writer drains what is queued and exits.
  void Stop();

  // ---- Writer side ----

  // What the writer's open batch looks like, for TakeQueued's wait.
  struct BatchView {
    bool open = false;         // a transaction is open
    absl::Time deadline;       // when it is due (if open)
    int64_t events = 0;        // events it holds
    bool to_run = false;       // `held` has ops not yet run
  };
  // Waits as the writer's loop needs (docs/EVENT_LOG.md "Writer"), then appends everything queued
  // to `held` in FIFO order. Returns whether Stop() was called.
  bool TakeQueued(std::deque<Op>& held, const BatchView& batch);

  // The writer's busy mark: set when it starts an operation or commit, cleared while it waits.
  void MarkBusy();
  void MarkIdle();

  // Counts an op that failed on its own and reports it: to its waiter, or (fire-and-forget) through
  // the next Flush, except a duplicate request_id of a group-commit slate, which is only counted.
  void FailOp(Op& op, const absl::Status& s);
  // An abandoned op the writer skips: returns what it held to the counts.
  void SkipOp(Op& op);
  // The first error of fire-and-forget work since the last call (cleared).
  absl::Status TakeBackgroundError();

  struct CommitCounts {
    double commit_ms = 0;
    int64_t served_rows = 0;
    int64_t feedback_rows = 0;
  };
  // After a COMMIT of held[0, executed): counts it, releases those ops and moves out the
  // completions to answer (waiters: OK; flushers: TakeBackgroundError()), and clears the failure.
  void Committed(std::deque<Op>& held, size_t executed, const CommitCounts& counts,
                 std::vector<std::shared_ptr<Completion>>& waiters,
                 std::vector<std::shared_ptr<Completion>>& flushers);
  // After a failed write: counts it, releases and moves out the completions of ops somebody waits
  // on (they are answered with Unavailable), and keeps the acknowledged ops, in order, in `held`.
  void Faulted(std::deque<Op>& held, const absl::Status& fault,
               std::vector<std::shared_ptr<Completion>>& failed);
  // Close gave up retrying: the ops in `held` are counted as lost (DataLoss for Close); clears it.
  void Dropped(std::deque<Op>& held, const absl::Status& fault);
  // The writer holds nothing unwritten any more.
  void HeldCleared();

 private:
  // Unavailable once the oldest unwritten operation (held by the writer or queued) is older than
  // stale_after_: the writer fails or stalls. OK otherwise.
  absl::Status StaleStatus(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unavailable while the writer has been inside one operation or commit for longer than
  // writer_stall_timeout.
  absl::Status StallStatus(absl::Time now) const;
  // Whether the writer has been inside one operation or commit for longer than `limit`.
  bool WriterBusyFor(absl::Time now, absl::Duration limit) const;
  // ResourceExhausted if `op` would pass a back-pressure limit.
  absl::Status CheckRoom(const Op& op) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns what `op` held to the back-pressure counts.
  void Release(const Op& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EventLogOptions options_;
  const bool synchronous_;
  // Age of the oldest unwritten operation beyond which appends are refused (see WriteStatus).
  const absl::Duration stale_after_;

  // When the writer started the operation or commit it is running (unix nanos), 0 while it waits
  // for work or sleeps: how blocked callers tell a stalled disk from a busy writer.
  std::atomic<int64_t> busy_since_ns_{0};

  mutable absl::Mutex mu_;
  std::deque<Op> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_events_ ABSL_GUARDED_BY(mu_) = 0;  // in `queue_` (Stats::queue_depth)
  // Not yet committed: queued + held by the writer. The back-pressure limits apply to these.
  int64_t pending_events_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t pending_feedback_events_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t pending_feedback_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Enqueue time of the oldest operation the writer holds (InfiniteFuture when none).
  absl::Time oldest_held_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Since the first failed write after the last successful commit (InfiniteFuture when writing).
  absl::Time failing_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Status last_fault_ ABSL_GUARDED_BY(mu_);
  // Queued ops somebody blocks on (Flush, feedback, synchronous appends): the writer stops waiting
  // for the batch deadline as soon as there is one. Fire-and-forget appends do not count, so they
  // never wake the writer while it has an open batch.
  int64_t waited_ops_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status background_error_ ABSL_GUARDED_BY(mu_);
  EventLog::Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_EVENT_LOG_QUEUE_H_
