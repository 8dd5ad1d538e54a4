// EventLogReader: a backend's read side of the event log (docs/EVENT_LOG.md "Reading: the join and
// the watermark"): one row per served item (served JOIN requests LEFT JOIN feedback), the
// watermark (largest committed served.id) and the feedback count, on committed rows only, without
// blocking the writer. Implementations:
//   core/storage/sqlite_event_log_reader.h    SQLite (a read-only connection on a WAL snapshot)
//   core/storage/postgres_event_log_reader.h  PostgreSQL (a connection of its own)
//
// Thread safety: all methods may be called from any thread (implementations serialise them on
// their connection).
#ifndef OPTOWER_CORE_STORAGE_EVENT_LOG_READER_H_
#define OPTOWER_CORE_STORAGE_EVENT_LOG_READER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/storage/event_log.h"

namespace optower {

class EventLogReader {
 public:
  virtual ~EventLogReader() = default;

  // EventLog::ReadJoined; `options` must be valid (ValidateReadOptions).
  virtual absl::StatusOr<std::vector<EventLog::JoinedRow>> ReadJoined(
      const EventLog::ReadOptions& options) const = 0;
  // Largest committed served_id; 0 if the log has no served rows.
  virtual absl::StatusOr<int64_t> MaxServedId() const = 0;
  // Number of committed feedback rows in the log.
  virtual absl::StatusOr<int64_t> CountFeedback() const = 0;

 protected:
  EventLogReader() = default;
  EventLogReader(const EventLogReader&) = delete;
  EventLogReader& operator=(const EventLogReader&) = delete;
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_EVENT_LOG_READER_H_
