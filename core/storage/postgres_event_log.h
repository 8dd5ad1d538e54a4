// PostgresEventLog: the EventLog backend on PostgreSQL, for deployments where several serving
// replicas and one trainer share one log (docs/EVENT_LOG.md "PostgreSQL backend"). Same contract
// as SqliteEventLog (core/storage/event_log.h; the tests in tests/event_log_test.cc run against
// both): the queue, the one writer thread with group commit and the API are QueuedEventLog's
// (core/storage/queued_event_log.h); this backend brings
//   core/storage/postgres_write_connection.h   transactions, inserts, feedback decisions; served
//                                              ids across processes; durability per mode
//   core/storage/postgres_event_log_schema.h   the tables, as versioned migrations
//   core/storage/postgres_event_log_reader.h   the join, watermark and counts
// over two libpq connections (core/storage/pg_connection.h): the writer's and the reader's.
//
// Durability per mode (the writer connection's synchronous_commit):
// - kSynchronous: on. Every acknowledged append (and feedback) is durable in PostgreSQL before
//   the call returns: it survives a crash of this process, of the server and of its machine.
// - kGroupCommit: off, the analogue of SQLite's synchronous=NORMAL. Appends are acknowledged once
//   queued and committed within max_commit_delay; a committed batch survives this process's crash
//   as soon as COMMIT returns, but a crash of the PostgreSQL server may lose its last few hundred
//   ms of commits (up to 3 x wal_writer_delay).
//
// Several processes (replicas) may open the same schema: served ids stay unique and increasing in
// commit order (one advisory lock per batch, see postgres_write_connection.h), feedback may arrive
// at any of them (first write wins across all), and each one's reads see everybody's commits.
// Stats count this instance's work only.
//
// Feedback for a slate another replica acknowledged but has not committed yet (kGroupCommit: up to
// max_commit_delay after its acknowledgement) is not known to this replica. So in kGroupCommit an
// event decided kUnknown is decided once more after kUnknownRecheck (max_commit_delay + 50 ms of
// commit time, within the call's deadline): a replica's batch is committed by then, and an event
// still unknown is final. Every replica of a deployment is expected to run the same
// max_commit_delay. kSynchronous needs no second look: a slate is committed before any client
// has it. Measured: `optower simulate --backend postgres --replicas 2` sends each round's feedback
// right after serving, and without the second look about 1% of it was answered unknown.
//
// Thread safety: as EventLog (every method from any thread).
#ifndef OPTOWER_CORE_STORAGE_POSTGRES_EVENT_LOG_H_
#define OPTOWER_CORE_STORAGE_POSTGRES_EVENT_LOG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"
#include "core/storage/queued_event_log.h"

namespace optower {

class PostgresEventLog final : public QueuedEventLog {
 public:
  // Connects twice to `dsn` (libpq keywords or URI; its search_path names the schema that holds
  // the tables: several deployments may share one database, one schema each), creates or
  // upgrades the tables, and starts the writer thread. options.path and the SQLite-only fields
  // are ignored (busy_timeout becomes the writer's lock_timeout). Errors: InvalidArgument for bad
  // options, Unavailable if the server cannot be reached or refuses the login (the message never
  // holds the DSN), FailedPrecondition if the database holds a newer event_log schema (naming both
  // versions), PostgreSQL's error otherwise.
  static absl::StatusOr<std::unique_ptr<EventLog>> Open(const EventLogOptions& options,
                                                        const std::string& dsn);

  using EventLog::AppendFeedback;
  // QueuedEventLog::AppendFeedback, then (kGroupCommit) the second look at kUnknown events above.
  absl::StatusOr<std::vector<FeedbackOutcome>> AppendFeedback(std::vector<FeedbackEvent> events,
                                                              absl::Time deadline) override;

 private:
  PostgresEventLog(const EventLogOptions& options, std::unique_ptr<EventLogWriteConnection> connection,
                   std::unique_ptr<EventLogReader> reader);
  const absl::Duration recheck_after_;  // zero: no second look (kSynchronous)
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_POSTGRES_EVENT_LOG_H_
