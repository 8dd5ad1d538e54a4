// PostgresEventLogReader: the PostgreSQL event log's reads (an EventLogReader,
// core/storage/event_log_reader.h) on a connection of their own: the join, the watermark and the
// feedback count, each one statement (so one snapshot) in autocommit, on committed rows of every
// writer of the schema. Rows come back in binary (no float formatting or parsing: doubles are
// bit-exact). A broken connection is re-established (PQreset) and the read tried once more.
//
// Thread safety: all methods may be called from any thread; they serialise on the connection.
#ifndef OPTOWER_CORE_STORAGE_POSTGRES_EVENT_LOG_READER_H_
#define OPTOWER_CORE_STORAGE_POSTGRES_EVENT_LOG_READER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/storage/event_log.h"
#include "core/storage/event_log_reader.h"
#include "core/storage/pg_connection.h"

namespace optower {

class PostgresEventLogReader final : public EventLogReader {
 public:
  // Connects to `dsn` (the tables must exist: open the write connection first).
  static absl::StatusOr<std::unique_ptr<PostgresEventLogReader>> Open(const std::string& dsn);

  absl::StatusOr<std::vector<EventLog::JoinedRow>> ReadJoined(
      const EventLog::ReadOptions& options) const override;
  absl::StatusOr<int64_t> MaxServedId() const override;
  absl::StatusOr<int64_t> CountFeedback() const override;

 private:
  PostgresEventLogReader() = default;
  // Runs `sql` (reconnecting and retrying once if the connection broke).
  absl::StatusOr<PgResult> Run(const std::string& sql, const std::vector<PgParam>& params,
                               const char* what, bool binary) const;

  mutable absl::Mutex mu_;
  std::unique_ptr<PgConnection> conn_ ABSL_GUARDED_BY(mu_);
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_POSTGRES_EVENT_LOG_READER_H_
