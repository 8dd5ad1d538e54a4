// SqliteEventLogReader: the SQLite event log's read-only connection (an EventLogReader,
// core/storage/event_log_reader.h) (docs/EVENT_LOG.md "Reading: the join
// and the watermark"). Under WAL it reads the last committed state without blocking the writer:
// one row per served item (served JOIN requests LEFT JOIN feedback), the watermark (largest
// served.id) and the feedback count.
//
// Thread safety: all methods may be called from any thread; they serialise on the connection.
#ifndef OPTOWER_CORE_STORAGE_SQLITE_EVENT_LOG_READER_H_
#define OPTOWER_CORE_STORAGE_SQLITE_EVENT_LOG_READER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/storage/event_log.h"
#include "core/storage/event_log_reader.h"
#include "core/storage/sqlite_util.h"

namespace optower {

class SqliteEventLogReader final : public EventLogReader {
 public:
  // Opens options.path read-only (the file and its schema must exist: open the write connection
  // first) and prepares the queries.
  static absl::StatusOr<std::unique_ptr<SqliteEventLogReader>> Open(const EventLogOptions& options);

  // EventLog::ReadJoined; `options` must be valid (ValidateReadOptions).
  absl::StatusOr<std::vector<EventLog::JoinedRow>> ReadJoined(
      const EventLog::ReadOptions& options) const override;
  // Largest committed served_id; 0 if the log has no served rows.
  absl::StatusOr<int64_t> MaxServedId() const override;
  // Number of committed feedback rows in the file.
  absl::StatusOr<int64_t> CountFeedback() const override;

 private:
  SqliteEventLogReader() = default;

  mutable absl::Mutex mu_;
  SqliteDb db_ ABSL_GUARDED_BY(mu_);
  Stmt read_joined_ ABSL_GUARDED_BY(mu_);
  Stmt max_served_id_ ABSL_GUARDED_BY(mu_);
  Stmt count_feedback_ ABSL_GUARDED_BY(mu_);
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_SQLITE_EVENT_LOG_READER_H_
