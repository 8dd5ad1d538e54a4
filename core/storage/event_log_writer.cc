#include "core/storage/event_log_writer.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

// A failed write of the batch (disk full, I/O error, read-only file, lock timeout, a lost database
// connection): the batch is rolled back and retried. SqliteError and PgStatus map exactly these
// errors to Unavailable.
bool IsWriteFault(const absl::Status& s) { return s.code() == absl::StatusCode::kUnavailable; }

// First delay between retries after a failed write, doubled per failure up to the maximum.
constexpr absl::Duration kMinRetryBackoff = absl::Milliseconds(10);
constexpr absl::Duration kMaxRetryBackoff = absl::Milliseconds(500);
// A group-commit batch is committed once it has been running this long (or max_commit_delay, if
// longer), even if more is queued: a long run of feedback lookups cannot hold back the served rows.
constexpr absl::Duration kMinRunPerCommit = absl::Milliseconds(25);

}  // namespace

EventLogWriter::EventLogWriter(EventLogQueue* queue, EventLogWriteConnection* connection)
    : queue_(queue),
      connection_(connection),
      options_(queue->options()),
      synchronous_(queue->synchronous()) {}

EventLogWriter::~EventLogWriter() { Join(); }

void EventLogWriter::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void EventLogWriter::Join() {
  if (thread_.joinable()) thread_.join();
}

void EventLogWriter::Loop() {
  absl::Duration backoff = absl::ZeroDuration();
  absl::Time give_up_at = absl::InfiniteFuture();  // set when Close waits for a failing writer
  for (;;) {
    const bool stop = queue_->TakeQueued(
        held_, {batch_.open, batch_.deadline, batch_.events, batch_.executed < held_.size()});
    absl::Status fault = RunHeld();
    // kSynchronous: commit now, so everyone taken shares this commit (and its fsync) and nobody
    // waits for a timer. kGroupCommit: commit at the deadline; before it (we were woken for a
    // feedback op) the batch stays open and we go back to sleep until the deadline.
    if (fault.ok() && batch_.open && (synchronous_ || stop || absl::Now() >= batch_.deadline)) {
      queue_->MarkBusy();
      fault = Commit();
    }
    queue_->MarkIdle();
    if (!fault.ok()) {
      HandleFault(fault);
      backoff = std::min(std::max(2 * backoff, kMinRetryBackoff), kMaxRetryBackoff);
    } else {
      backoff = absl::ZeroDuration();
      // Every op ran and none is in an open batch: all were answered (Flushes with nothing to
      // commit, ops that failed on their own or were abandoned), so nothing is unwritten.
      if (!batch_.open && !held_.empty()) {
        held_.clear();
        batch_.executed = 0;
        queue_->HeldCleared();
      }
    }
    if (stop) {
      if (held_.empty() && !batch_.open) return;  // Close stopped the queue after its Flush
      if (!fault.ok()) {
        if (give_up_at == absl::InfiniteFuture()) {
          give_up_at = absl::Now() + options_.write_failure_window;
        }
        if (absl::Now() >= give_up_at) {
          queue_->Dropped(held_, fault);
          return;
        }
      }
    }
    // After a failed write, wait before retrying; appends keep queueing (bounded by the limits).
    if (!fault.ok()) absl::SleepFor(backoff);
  }
}

absl::Status EventLogWriter::RunHeld() {
  while (batch_.executed < held_.size()) {
    Op& op = held_[batch_.executed];
    queue_->MarkBusy();
    RETURN_IF_ERROR(Execute(op));
    ++batch_.executed;
    // A Flush commits what precedes it; a full batch commits and the rest opens a new one; a
    // batch that has run for a whole commit delay commits before it runs more.
    if (CommitDue(op)) {
      queue_->MarkBusy();
      RETURN_IF_ERROR(Commit());  // drops the committed ops (op included) from held_
    }
  }
  return absl::OkStatus();
}

bool EventLogWriter::CommitDue(const Op& last) const {
  if (!batch_.open) return false;
  const bool flush = last.kind == Op::Kind::kFlush && !last.finished;  // in an open batch
  return flush || batch_.events >= options_.max_batch_events ||
         (!synchronous_ &&
          absl::Now() - batch_.opened >= std::max(options_.max_commit_delay, kMinRunPerCommit));
}

absl::Status EventLogWriter::Execute(Op& op) {
  if (op.kind == Op::Kind::kFlush) {
    // In an open batch it is answered by the commit that follows; else nothing precedes it.
    if (!batch_.open) {
      op.finished = true;
      op.completion->Finish(queue_->TakeBackgroundError());
    }
    return absl::OkStatus();
  }
  if (op.completion != nullptr && op.completion->abandoned.load(std::memory_order_relaxed)) {
    // The caller left (its deadline passed) before we started: it was told so; skip the op.
    queue_->SkipOp(op);
    return absl::OkStatus();
  }
  if (!batch_.open) {
    RETURN_IF_ERROR(connection_->Begin());  // a failure here is a write fault: nothing was written
    batch_.open = true;
    batch_.opened = absl::Now();
    batch_.deadline =
        op.enqueued + (synchronous_ ? absl::ZeroDuration() : options_.max_commit_delay);
  }

  absl::Status s;
  int64_t accepted = 0;
  std::vector<FeedbackOutcome> outcomes;
  if (op.kind == Op::Kind::kServed) {
    s = connection_->InsertSlates(op.served);
  } else {
    s = connection_->DecideFeedback(op.feedback, outcomes, accepted);
  }

  if (!connection_->InTransaction()) {
    // The backend ended the whole transaction (SQLite: I/O error, disk full...; PostgreSQL: any
    // error aborts it): the batch is gone. When this op's own error did it (PostgreSQL refused one
    // of its values), the op is answered with that error and not retried, so that it cannot fail
    // every retry; the rest of the batch is retried as after a write fault.
    if (!s.ok() && !IsWriteFault(s)) queue_->FailOp(op, s);
    return s.ok() || !IsWriteFault(s)
               ? absl::UnavailableError(absl::StrCat("event log transaction ended unexpectedly",
                                                     s.ok() ? "" : ": ", s.message()))
               : s;
  }
  if (!s.ok()) {
    if (IsWriteFault(s)) return s;  // the batch is rolled back and retried
    queue_->FailOp(op, s);          // this op rolled back to its savepoint; the batch goes on
    return absl::OkStatus();
  }
  Executed(op, accepted, std::move(outcomes));
  return absl::OkStatus();
}

void EventLogWriter::Executed(Op& op, int64_t accepted, std::vector<FeedbackOutcome> outcomes) {
  batch_.events += op.num_events;
  if (op.kind == Op::Kind::kServed) {
    batch_.served_rows += op.num_events;
  } else {
    batch_.feedback_rows += accepted;
  }
  if (op.completion != nullptr) {
    op.completion->outcomes = std::move(outcomes);
    if (!synchronous_) {  // group-commit feedback: answered once decided, committed later
      op.completion->Finish(absl::OkStatus());
      op.completion.reset();
    }
  }
}

absl::Status EventLogWriter::Commit() {
  const absl::Time t0 = absl::Now();
  RETURN_IF_ERROR(connection_->Commit());
  EventLogQueue::CommitCounts counts;
  counts.commit_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  counts.served_rows = batch_.served_rows;
  counts.feedback_rows = batch_.feedback_rows;
  std::vector<std::shared_ptr<Completion>> waiters, flushers;
  queue_->Committed(held_, batch_.executed, counts, waiters, flushers);
  held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(batch_.executed));
  batch_ = Batch();
  for (const auto& c : waiters) c->Finish(absl::OkStatus());
  for (const auto& c : flushers) c->Finish(queue_->TakeBackgroundError());
  return absl::OkStatus();
}

void EventLogWriter::HandleFault(const absl::Status& fault) {
  connection_->RollbackIfOpen();
  batch_ = Batch();
  const absl::Status status = absl::UnavailableError(
      absl::StrCat("event log write failed (retrying; acknowledged events are kept): ",
                   fault.message()));
  std::vector<std::shared_ptr<Completion>> failed;
  queue_->Faulted(held_, fault, failed);
  for (const auto& c : failed) c->Finish(status);
}

}  // namespace optower
