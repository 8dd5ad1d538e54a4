// SqliteEventLog: the EventLog backend on one SQLite file in WAL mode (docs/EVENT_LOG.md), the
// embedded default. The queue, the writer thread and the API are QueuedEventLog's
// (core/storage/queued_event_log.h); this backend brings
//   core/storage/sqlite_write_connection.h  the write connection: transactions and inserts
//   core/storage/event_log_schema.h         pragmas and schema of the file
//   core/storage/sqlite_event_log_reader.h  the read-only connection: the join, watermark, counts
//   core/storage/sqlite_util.h              SQLite helpers (errors, handles, statements)
//
// Reads use a separate read-only connection and, under WAL, see the last committed state without
// blocking the writer.
//
// Thread safety: as EventLog (every method from any thread).
#ifndef OPTOWER_CORE_STORAGE_SQLITE_EVENT_LOG_H_
#define OPTOWER_CORE_STORAGE_SQLITE_EVENT_LOG_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/storage/event_log.h"
#include "core/storage/queued_event_log.h"

namespace optower {

class SqliteEventLog final : public QueuedEventLog {
 public:
  // Opens (creating if needed) options.path, switches it to WAL, creates or checks the schema, and
  // starts the writer thread. Errors: InvalidArgument for bad options, FailedPrecondition if the
  // file is read-only, WAL cannot be enabled or the file has another schema version, the SQLite
  // error otherwise.
  static absl::StatusOr<std::unique_ptr<EventLog>> Open(const EventLogOptions& options);

 private:
  using QueuedEventLog::QueuedEventLog;
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_SQLITE_EVENT_LOG_H_
