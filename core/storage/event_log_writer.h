// EventLogWriter: the event log's single writer thread (docs/EVENT_LOG.md "Writer: one thread,
// FIFO, group commit" and "Write failures, stalls and deadlines"). It takes the queued operations
// in FIFO order and runs them in one transaction per batch, one savepoint per operation:
// - kGroupCommit: a batch commits at its deadline (max_commit_delay after its first operation was
//   queued), when it holds max_batch_events, at a Flush, or after it has run for a whole commit
//   delay; kSynchronous: at once, so that everything taken shares one commit (and its fsync).
// - An operation that fails on its own (a reused request_id) rolls back alone and is answered; a
//   failed write (disk full, I/O error, lock timeout) rolls the batch back, answers the waiters
//   with Unavailable and retries the acknowledged operations, in order, with backoff.
// - After Stop (Close), it drains the queue; if writes keep failing it gives up after
//   write_failure_window and counts what it held as lost.
//
// Ownership: borrows the queue and the write connection; both must outlive the writer (Join first).
// Thread safety: Start and Join from one thread (Open, Close); everything else runs on the thread.
#ifndef OPTOWER_CORE_STORAGE_EVENT_LOG_WRITER_H_
#define OPTOWER_CORE_STORAGE_EVENT_LOG_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/storage/event_log_op.h"
#include "core/storage/event_log_queue.h"
#include "core/storage/event_log_write_connection.h"

namespace optower {

class EventLogWriter {
 public:
  EventLogWriter(EventLogQueue* queue, EventLogWriteConnection* connection);
  ~EventLogWriter();  // joins the thread if it still runs (call queue->Stop() first)
  EventLogWriter(const EventLogWriter&) = delete;
  EventLogWriter& operator=(const EventLogWriter&) = delete;

  // Starts the thread.
  void Start();
  // Waits for the thread to exit: it does once the queue is stopped and drained (or given up on).
  void Join();

 private:
  // One open transaction: the first `executed` ops of `held` ran in it.
  struct Batch {
    bool open = false;
    absl::Time opened;
    absl::Time deadline;
    size_t executed = 0;
    int64_t events = 0;
    int64_t served_rows = 0;
    int64_t feedback_rows = 0;
  };

  void Loop();
  // Runs the ops taken and not yet run, committing whenever a batch is due. Returns the write fault
  // that lost the batch, else OK.
  absl::Status RunHeld();
  // Whether the open batch must commit before running more (after the op just run).
  bool CommitDue(const Op& last) const;
  // Runs one op in the batch (opening it if needed). Returns the write fault that lost the batch,
  // else OK (an op that failed on its own was answered and finished).
  absl::Status Execute(Op& op);
  // Counts a successfully run op in the batch and answers group-commit feedback.
  void Executed(Op& op, int64_t accepted, std::vector<FeedbackOutcome> outcomes);
  // Commits the batch and answers and drops its ops from `held_`. Returns the COMMIT's error.
  absl::Status Commit();
  // After a write fault: rolls back, answers every op that someone waits on and that was not
  // answered yet with Unavailable, and keeps the acknowledged ones, in order, for the retry.
  void HandleFault(const absl::Status& fault);

  EventLogQueue* const queue_;
  EventLogWriteConnection* const connection_;
  const EventLogOptions& options_;
  const bool synchronous_;
  // Taken from the queue and not yet committed or answered, in queue order: held_[0, executed) ran
  // in the open transaction, the rest is still to run. After a failed write it holds the
  // acknowledged ops that are retried first, before anything queued later.
  std::deque<Op> held_;
  Batch batch_;
  std::thread thread_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_EVENT_LOG_WRITER_H_
