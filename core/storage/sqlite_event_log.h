// SqliteEventLog: the EventLog backend on one SQLite file in WAL mode (docs/EVENT_LOG.md). It wires
// the parts, each in its own file:
//   core/storage/event_log_validation.h        argument checks (options, slates, feedback, read ranges)
//   core/storage/event_log_queue.h             the queue, back-pressure, write status and stats
//   core/storage/event_log_writer.h            the group-commit writer thread
//   core/storage/event_log_write_connection.h  the write connection: transactions and inserts
//   core/storage/event_log_schema.h            pragmas and schema of the file
//   core/storage/event_log_reader.h            the read-only connection: the join, watermark, counts
//   core/storage/sqlite_util.h                 SQLite helpers (errors, handles, statements)
//
// Every write goes through the one writer thread, which owns the write connection; reads use a
// separate read-only connection and, under WAL, see the last committed state without blocking it.
//
// Thread safety: as EventLog (every method from any thread).
#ifndef OPTOWER_CORE_STORAGE_SQLITE_EVENT_LOG_H_
#define OPTOWER_CORE_STORAGE_SQLITE_EVENT_LOG_H_

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

class SqliteEventLog final : public EventLog {
 public:
  // Opens (creating if needed) options.path, switches it to WAL, creates or checks the schema, and
  // starts the writer thread. Errors: InvalidArgument for bad options, FailedPrecondition if the
  // file is read-only, WAL cannot be enabled or the file has another schema version, the SQLite
  // error otherwise.
  static absl::StatusOr<std::unique_ptr<EventLog>> Open(const EventLogOptions& options);

  // Close()s (dropping its status) and releases both connections.
  ~SqliteEventLog() override;

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

 private:
  SqliteEventLog(std::unique_ptr<EventLogQueue> queue,
                 std::unique_ptr<EventLogWriteConnection> connection,
                 std::unique_ptr<EventLogReader> reader);

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

#endif  // OPTOWER_CORE_STORAGE_SQLITE_EVENT_LOG_H_
