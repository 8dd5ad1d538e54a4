#include "core/storage/sqlite_event_log.h"

#include <memory>
#include <utility>

#include "core/base/status_macros.h"
#include "core/storage/sqlite_event_log_reader.h"
#include "core/storage/sqlite_write_connection.h"

namespace optower {

absl::StatusOr<std::unique_ptr<EventLog>> SqliteEventLog::Open(const EventLogOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  // The write connection first: it creates the file and the schema the reader prepares against.
  ASSIGN_OR_RETURN(std::unique_ptr<SqliteWriteConnection> connection,
                   SqliteWriteConnection::Open(options));
  ASSIGN_OR_RETURN(std::unique_ptr<SqliteEventLogReader> reader,
                   SqliteEventLogReader::Open(options));
  return std::unique_ptr<EventLog>(
      new SqliteEventLog(options, std::move(connection), std::move(reader)));
}

}  // namespace optower
