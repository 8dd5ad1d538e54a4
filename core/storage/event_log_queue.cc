#include "core/storage/event_log_queue.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"

namespace optower {

EventLogQueue::EventLogQueue(const EventLogOptions& options)
    : options_(options),
      synchronous_(options.durability == EventLogOptions::Durability::kSynchronous),
      stale_after_((synchronous_ ? absl::ZeroDuration() : options.max_commit_delay) +
                   options.write_failure_window) {}

// ---------------------------------------------------------------------------------------------------
// Caller side.

absl::Status EventLogQueue::CheckFits(const Op& op) const {
  const bool feedback = op.kind == Op::Kind::kFeedback;
  const int64_t max_events = feedback ? std::max<int64_t>(1, options_.max_queue_events / 2)
                                      : options_.max_queue_events;
  const int64_t max_bytes = feedback ? options_.max_queue_bytes / 2 : options_.max_queue_bytes;
  const char* what = feedback ? "feedback events" : "served items";
  const char* share = feedback ? "half of " : "";
  if (op.num_events > max_events) {
    return absl::InvalidArgumentError(absl::StrCat(what, "=", op.num_events, ": exceeds ", share,
                                                   "max_queue_events=", options_.max_queue_events));
  }
  if (op.bytes > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " of ", op.bytes, " bytes: exceed ", share,
                                                   "max_queue_bytes=", options_.max_queue_bytes));
  }
  return absl::OkStatus();
}

absl::Status EventLogQueue::CheckRoom(const Op& op) const {
  const bool feedback = op.kind == Op::Kind::kFeedback;
  // Feedback gets half of each limit, so a flood of it leaves room for served rows.
  const int64_t max_events = feedback ? std::max<int64_t>(1, options_.max_queue_events / 2)
                                      : options_.max_queue_events;
  const int64_t max_bytes = feedback ? options_.max_queue_bytes / 2 : options_.max_queue_bytes;
  const int64_t events = feedback ? pending_feedback_events_ : pending_events_;
  const int64_t bytes = feedback ? pending_feedback_bytes_ : pending_bytes_;
  const char* what = feedback ? "feedback " : "";
  if (pending_events_ + op.num_events > options_.max_queue_events ||
      events + op.num_events > max_events) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "event log queue full: ", events, " ", what, "events not yet written + ", op.num_events,
        " would exceed ", feedback ? "half of " : "", "max_queue_events=",
        options_.max_queue_events));
  }
  if (pending_bytes_ + op.bytes > options_.max_queue_bytes || bytes + op.bytes > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "event log queue full: ", bytes, " bytes of ", what, "events not yet written + ", op.bytes,
        " would exceed ", feedback ? "half of " : "", "max_queue_bytes=",
        options_.max_queue_bytes));
  }
  return absl::OkStatus();
}

// absl::Mutex evaluates the writer's wait condition when we unlock, and wakes it only when the
// condition holds (see TakeQueued).
absl::Status EventLogQueue::Enqueue(Op op) {
  const bool feedback = op.kind == Op::Kind::kFeedback;
  absl::MutexLock l(&mu_);
  if (stopping_) return absl::FailedPreconditionError("event log is closed: path=" + options_.path);
  RETURN_IF_ERROR(StaleStatus(op.enqueued));
  if (op.completion != nullptr) RETURN_IF_ERROR(StallStatus(op.enqueued));
  if (op.kind != Op::Kind::kFlush) RETURN_IF_ERROR(CheckRoom(op));
  queued_events_ += op.num_events;
  pending_events_ += op.num_events;
  pending_bytes_ += op.bytes;
  if (feedback) {
    pending_feedback_events_ += op.num_events;
    pending_feedback_bytes_ += op.bytes;
  }
  if (op.completion != nullptr) ++waited_ops_;
  queue_.push_back(std::move(op));
  return absl::OkStatus();
}

absl::Status EventLogQueue::Wait(Completion& c, absl::Time enqueued, absl::Time deadline) {
  const absl::Time give_up = enqueued + stale_after_;
  // Looks at the writer every half stall timeout; the common case is answered in the first slice.
  const absl::Duration slice = options_.writer_stall_timeout / 2;
  for (;;) {
    const absl::Time until = std::min({deadline, give_up, absl::Now() + slice});
    if (c.done.WaitForNotificationWithDeadline(until)) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (now >= deadline || now >= give_up) break;
    if (absl::Status stalled = StallStatus(now); !stalled.ok()) {
      c.abandoned.store(true, std::memory_order_relaxed);
      return stalled;
    }
  }
  c.abandoned.store(true, std::memory_order_relaxed);
  if (deadline <= give_up) {
    return absl::DeadlineExceededError(
        "deadline passed while waiting for the event log writer (the operation may still be "
        "written)");
  }
  absl::MutexLock l(&mu_);
  absl::Status stale = StaleStatus(absl::Now());
  return stale.ok() ? absl::UnavailableError(absl::StrCat(
                          "event log writer did not answer within write_failure_window=",
                          absl::FormatDuration(options_.write_failure_window)))
                    : stale;
}

absl::Status EventLogQueue::WriteStatus() const {
  absl::MutexLock l(&mu_);
  return StaleStatus(absl::Now());
}

EventLog::Stats EventLogQueue::stats() const {
  absl::MutexLock l(&mu_);
  EventLog::Stats s = stats_;
  s.queue_depth = queued_events_;
  s.pending_events = pending_events_;
  s.pending_bytes = pending_bytes_;
  return s;
}

void EventLogQueue::Stop() {
  absl::MutexLock l(&mu_);
  stopping_ = true;
}

absl::Status EventLogQueue::StaleStatus(absl::Time now) const {
  absl::Time oldest = oldest_held_;
  if (!queue_.empty()) oldest = std::min(oldest, queue_.front().enqueued);
  if (oldest == absl::InfiniteFuture() || now - oldest <= stale_after_) return absl::OkStatus();
  std::string why;
  if (failing_since_ != absl::InfiniteFuture()) {
    why = absl::StrCat("writes fail since ",
                       absl::FormatDuration(absl::Trunc(now - failing_since_, absl::Milliseconds(1))),
                       " ago: ", last_fault_.message());
  } else if (WriterBusyFor(now, std::min(options_.writer_stall_timeout,
                                         options_.write_failure_window))) {
    why = "the writer is stalled (disk or lock)";
  } else {
    why = absl::StrCat("the writer is behind: ", pending_events_, " events (", pending_bytes_,
                       " bytes) not yet written");
  }
  return absl::UnavailableError(absl::StrCat(
      "event log cannot write: an acknowledged operation has waited ",
      absl::FormatDuration(absl::Trunc(now - oldest, absl::Milliseconds(1))),
      " for its commit (limit ", synchronous_ ? "" : "max_commit_delay + ",
      "write_failure_window = ", absl::FormatDuration(stale_after_), "); ", why));
}

absl::Status EventLogQueue::StallStatus(absl::Time now) const {
  if (!WriterBusyFor(now, options_.writer_stall_timeout)) return absl::OkStatus();
  const absl::Duration busy =
      now - absl::FromUnixNanos(busy_since_ns_.load(std::memory_order_relaxed));
  return absl::UnavailableError(absl::StrCat(
      "event log writer stalled: one write has taken ",
      absl::FormatDuration(absl::Trunc(busy, absl::Milliseconds(1))),
      " so far (writer_stall_timeout=", absl::FormatDuration(options_.writer_stall_timeout), ")"));
}

bool EventLogQueue::WriterBusyFor(absl::Time now, absl::Duration limit) const {
  const int64_t since = busy_since_ns_.load(std::memory_order_relaxed);
  return since != 0 && now - absl::FromUnixNanos(since) > limit;
}

// ---------------------------------------------------------------------------------------------------
// Writer side.

bool EventLogQueue::TakeQueued(std::deque<Op>& held, const BatchView& batch) {
  absl::MutexLock l(&mu_);
  // Idle (no open batch, nothing held): sleep until something is queued. This is the one wake-up
  // per batch that a fire-and-forget append can cause.
  auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
  if (!batch.open && !batch.to_run) mu_.Await(absl::Condition(&has_work));
  // kGroupCommit: the batch (open, or about to be opened by queue_.front()) is due at its deadline.
  // Until then appends just pile up in the queue, without waking us, unless somebody waits for an
  // answer (Flush, feedback), the batch would be full, or Close is stopping us. kSynchronous: every
  // op is waited on, so we never wait here; whatever queued while we were committing shares the
  // next commit. Held ops (a retry) run at once.
  if (!synchronous_ && !stopping_ && waited_ops_ == 0 && !batch.to_run &&
      (batch.open || !queue_.empty())) {
    const absl::Time deadline =
        batch.open ? batch.deadline : queue_.front().enqueued + options_.max_commit_delay;
    const int64_t room = options_.max_batch_events - batch.events;  // >= 1: full batches commit
    auto due = [this, room]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return stopping_ || waited_ops_ > 0 || queued_events_ >= room;
    };
    mu_.AwaitWithDeadline(absl::Condition(&due), deadline);
  }
  // Everything queued, in FIFO order; one O(1) swap when nothing is held (the common case).
  if (held.empty()) {
    held.swap(queue_);
  } else {
    for (Op& op : queue_) held.push_back(std::move(op));
    queue_.clear();
  }
  if (oldest_held_ == absl::InfiniteFuture() && !held.empty()) oldest_held_ = held.front().enqueued;
  queued_events_ = 0;
  waited_ops_ = 0;
  stats_.queue_depth = 0;
  return stopping_;
}

void EventLogQueue::MarkBusy() {
  busy_since_ns_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
}

void EventLogQueue::MarkIdle() { busy_since_ns_.store(0, std::memory_order_relaxed); }

// The count is updated before the waiter wakes, so the caller sees it in stats().
void EventLogQueue::FailOp(Op& op, const absl::Status& s) {
  {
    absl::MutexLock l(&mu_);
    ++stats_.errors;
    Release(op);
    if (op.completion == nullptr) {
      if (op.kind == Op::Kind::kServed && s.code() == absl::StatusCode::kAlreadyExists) {
        ++stats_.duplicate_requests;
      } else if (background_error_.ok()) {
        background_error_ = s;
      }
    }
  }
  op.finished = true;
  if (op.completion != nullptr) op.completion->Finish(s);
}

void EventLogQueue::SkipOp(Op& op) {
  {
    absl::MutexLock l(&mu_);
    Release(op);
  }
  op.finished = true;
}

absl::Status EventLogQueue::TakeBackgroundError() {
  absl::MutexLock l(&mu_);
  return std::exchange(background_error_, absl::OkStatus());
}

void EventLogQueue::Committed(std::deque<Op>& held, size_t executed, const CommitCounts& counts,
                              std::vector<std::shared_ptr<Completion>>& waiters,
                              std::vector<std::shared_ptr<Completion>>& flushers) {
  absl::MutexLock l(&mu_);
  ++stats_.commits;
  stats_.served_rows += counts.served_rows;
  stats_.feedback_rows += counts.feedback_rows;
  stats_.last_commit_ms = counts.commit_ms;
  if (counts.commit_ms > stats_.max_commit_ms) stats_.max_commit_ms = counts.commit_ms;
  for (size_t i = 0; i < executed; ++i) {
    Op& op = held[i];
    if (op.finished) continue;
    Release(op);
    if (op.completion == nullptr) continue;
    (op.kind == Op::Kind::kFlush ? flushers : waiters).push_back(std::move(op.completion));
  }
  failing_since_ = absl::InfiniteFuture();
  last_fault_ = absl::OkStatus();
  oldest_held_ = held.size() > executed ? held[executed].enqueued : absl::InfiniteFuture();
}

void EventLogQueue::Faulted(std::deque<Op>& held, const absl::Status& fault,
                            std::vector<std::shared_ptr<Completion>>& failed) {
  std::deque<Op> kept;
  {
    absl::MutexLock l(&mu_);
    for (Op& op : held) {
      if (op.finished) continue;
      if (op.completion != nullptr) {  // waited on and not answered yet: tell the caller now
        Release(op);
        failed.push_back(std::move(op.completion));
        continue;
      }
      kept.push_back(std::move(op));
    }
    ++stats_.errors;
    ++stats_.write_faults;
    if (failing_since_ == absl::InfiniteFuture()) failing_since_ = absl::Now();
    last_fault_ = fault;
    oldest_held_ = kept.empty() ? absl::InfiniteFuture() : kept.front().enqueued;
  }
  held.swap(kept);
}

void EventLogQueue::Dropped(std::deque<Op>& held, const absl::Status& fault) {
  int64_t lost = 0;
  {
    absl::MutexLock l(&mu_);
    for (Op& op : held) {
      if (op.finished) continue;
      lost += op.num_events;
      Release(op);
    }
    stats_.lost_events += lost;
    oldest_held_ = absl::InfiniteFuture();
    background_error_ = absl::DataLossError(absl::StrCat(
        "event log closed with ", lost, " acknowledged events not written after retrying for ",
        absl::FormatDuration(options_.write_failure_window), ": ", fault.message()));
  }
  held.clear();
}

void EventLogQueue::HeldCleared() {
  absl::MutexLock l(&mu_);
  oldest_held_ = absl::InfiniteFuture();
}

void EventLogQueue::Release(const Op& op) {
  pending_events_ -= op.num_events;
  pending_bytes_ -= op.bytes;
  if (op.kind == Op::Kind::kFeedback) {
    pending_feedback_events_ -= op.num_events;
    pending_feedback_bytes_ -= op.bytes;
  }
}

}  // namespace optower
