#include "core/storage/queued_event_log.h"

#include <memory>
#include <utility>

#include "absl/time/clock.h"
#include "core/storage/event_log_op.h"
#include "core/storage/event_log_queue.h"
#include "core/storage/event_log_reader.h"
#include "core/storage/event_log_validation.h"
#include "core/storage/event_log_write_connection.h"
#include "core/storage/event_log_writer.h"
#include "core/base/status_macros.h"

namespace optower {

QueuedEventLog::QueuedEventLog(const EventLogOptions& options,
                               std::unique_ptr<EventLogWriteConnection> connection,
                               std::unique_ptr<EventLogReader> reader)
    : queue_(std::make_unique<EventLogQueue>(options)),
      connection_(std::move(connection)),
      reader_(std::move(reader)),
      writer_(std::make_unique<EventLogWriter>(queue_.get(), connection_.get())) {
  writer_->Start();
}

QueuedEventLog::~QueuedEventLog() { Close().IgnoreError(); }

absl::Status QueuedEventLog::AppendSlate(ServedSlate slate, absl::Time deadline) {
  RETURN_IF_ERROR(ValidateSlate(slate));
  if (slate.items.empty()) return absl::OkStatus();  // nothing to log
  Op op;
  op.kind = Op::Kind::kServed;
  op.num_events = static_cast<int64_t>(slate.items.size());
  op.served.push_back(std::move(slate));
  op.bytes = OpBytes(op);
  RETURN_IF_ERROR(queue_->CheckFits(op));
  op.enqueued = absl::Now();  // outside the queue's lock
  if (!queue_->synchronous()) return queue_->Enqueue(std::move(op));
  auto done = std::make_shared<Completion>();
  op.completion = done;
  const absl::Time enqueued = op.enqueued;
  RETURN_IF_ERROR(queue_->Enqueue(std::move(op)));
  RETURN_IF_ERROR(queue_->Wait(*done, enqueued, deadline));
  return done->status;
}

absl::StatusOr<std::vector<FeedbackOutcome>> QueuedEventLog::AppendFeedback(
    std::vector<FeedbackEvent> events, absl::Time deadline) {
  if (events.empty()) return std::vector<FeedbackOutcome>();
  RETURN_IF_ERROR(ValidateFeedback(events));
  auto done = std::make_shared<Completion>();
  Op op;
  op.kind = Op::Kind::kFeedback;
  op.num_events = static_cast<int64_t>(events.size());
  op.feedback = std::move(events);
  op.bytes = OpBytes(op);
  RETURN_IF_ERROR(queue_->CheckFits(op));
  op.completion = done;
  op.enqueued = absl::Now();
  const absl::Time enqueued = op.enqueued;
  RETURN_IF_ERROR(queue_->Enqueue(std::move(op)));
  RETURN_IF_ERROR(queue_->Wait(*done, enqueued, deadline));
  RETURN_IF_ERROR(done->status);
  return std::move(done->outcomes);
}

absl::Status QueuedEventLog::Flush(absl::Time deadline) {
  auto done = std::make_shared<Completion>();
  Op op;
  op.kind = Op::Kind::kFlush;
  op.completion = done;
  op.enqueued = absl::Now();
  const absl::Time enqueued = op.enqueued;
  RETURN_IF_ERROR(queue_->Enqueue(std::move(op)));
  RETURN_IF_ERROR(queue_->Wait(*done, enqueued, deadline));
  return done->status;
}

absl::Status QueuedEventLog::Close() {
  absl::MutexLock l(&close_mu_);
  if (closed_) return close_status_;
  absl::Status s = Flush();
  queue_->Stop();
  // The writer drains whatever was queued between the Flush and Stop (retrying failed writes for
  // up to write_failure_window), then exits.
  writer_->Join();
  absl::Status late = queue_->TakeBackgroundError();
  if (s.ok() || late.code() == absl::StatusCode::kDataLoss) s = late;
  closed_ = true;
  close_status_ = s;
  return s;
}

absl::Status QueuedEventLog::WriteStatus() const { return queue_->WriteStatus(); }

EventLog::Stats QueuedEventLog::stats() const { return queue_->stats(); }

absl::StatusOr<std::vector<EventLog::JoinedRow>> QueuedEventLog::ReadJoined(
    const ReadOptions& options) const {
  RETURN_IF_ERROR(ValidateReadOptions(options));
  return reader_->ReadJoined(options);
}

absl::StatusOr<int64_t> QueuedEventLog::MaxServedId() const { return reader_->MaxServedId(); }

absl::StatusOr<int64_t> QueuedEventLog::CountFeedback() const { return reader_->CountFeedback(); }

}  // namespace optower
