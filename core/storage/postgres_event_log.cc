#include "core/storage/postgres_event_log.h"

#include <memory>
#include <utility>

#include "core/base/status_macros.h"
#include "core/storage/postgres_event_log_reader.h"
#include "core/storage/postgres_write_connection.h"

namespace optower {

absl::StatusOr<std::unique_ptr<EventLog>> PostgresEventLog::Open(const EventLogOptions& options,
                                                                 const std::string& dsn) {
  // path names the log in messages ("event log is closed: path=..."); it is not a file here.
  EventLogOptions o = options;
  o.path = "postgresql";
  RETURN_IF_ERROR(o.Validate());
  // The write connection first: it creates the tables.
  ASSIGN_OR_RETURN(std::unique_ptr<PostgresWriteConnection> connection,
                   PostgresWriteConnection::Open(o, dsn));
  ASSIGN_OR_RETURN(std::unique_ptr<PostgresEventLogReader> reader,
                   PostgresEventLogReader::Open(dsn));
  return std::unique_ptr<EventLog>(
      new PostgresEventLog(o, std::move(connection), std::move(reader)));
}

}  // namespace optower
