// QueuedEventLog: the EventLog every backend shares — the caller side (validation, the queue,
// back-pressure, blocking with deadlines, Flush, Close, WriteStatus, stats) and the one
// group-commit writer thread — over a backend's write connection and reader. A backend is a
// factory that opens those two and hands them over:
//   core/storage/sqlite_event_log.h    SqliteEventLog::Open (one SQLite file in WAL mode)
//   core/storage/postgres_event_log.h  PostgresEventLog::Open (a PostgreSQL schema)
// The parts, each in its own file:
//   core/storage/event_log_validation.h        argument checks (options, slates, feedback, read ranges)
//   core/storage/event_log_queue.h             the queue, back-pressure, write status and stats
//   core/storage/event_log_writer.h            the group-commit writer thread
//   core/storage/event_log_write_connection.h  the backend's write connection (interface)
//   core/storage/event_log_reader.h            the backend's reads (interface)
//
// Every write goes through the one writer thread, which owns the write connection; reads use the
// reader, which never blocks it.
//
// Thread safety: as EventLog (every method from any thread).
#ifndef OPTOWER_CORE_STORAGE_QUEUED_EVENT_LOG_H_
#define OPTOWER_CORE_STORAGE_QUEUED_EVENT_LOG_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"

namespace optower {

class EventLogQueue;
class EventLogReader;
class EventLogWriteConnection;
class EventLogWriter;

class QueuedEventLog : public EventLog {
 public:
  // Close()s (dropping its status), then releases the writer, the connection and the reader.
  ~QueuedEventLog() override;

  using EventLog::AppendFeedback;
  using EventLog::AppendSlate;
  using EventLog::Flush;
  absl::Status AppendSlate(ServedSlate slate, absl::Time deadline) override;
  absl::StatusOr<std::vector<FeedbackOutcome>> AppendFeedback(std::vector<FeedbackEvent> events,
                                                              absl::Time deadline) override;
  absl::Status Flush(absl::Time deadline) override;
  absl::Status Close() override;
  absl::Status WriteStatus() const override;
  Stats stats() const override;
  absl::StatusOr<std::vector<JoinedRow>> ReadJoined(const ReadOptions& options) const override;
  absl::StatusOr<int64_t> MaxServedId() const override;
  absl::StatusOr<int64_t> CountFeedback() const override;

 protected:
  // `options` must be valid (EventLogOptions::Validate). Starts the writer thread.
  QueuedEventLog(const EventLogOptions& options,
                 std::unique_ptr<EventLogWriteConnection> connection,
                 std::unique_ptr<EventLogReader> reader);

 private:
  // Destroyed in reverse order: the writer (joined) before what it borrows.
  std::unique_ptr<EventLogQueue> queue_;
  std::unique_ptr<EventLogWriteConnection> connection_;
  std::unique_ptr<EventLogReader> reader_;
  std::unique_ptr<EventLogWriter> writer_;

  absl::Mutex close_mu_;
  bool closed_ ABSL_GUARDED_BY(close_mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(close_mu_);
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_QUEUED_EVENT_LOG_H_
