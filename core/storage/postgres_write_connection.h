// PostgresWriteConnection: the PostgreSQL event log's write connection (an EventLogWriteConnection,
// core/storage/event_log_write_connection.h; docs/EVENT_LOG.md "PostgreSQL backend").
//
// served.id across processes: several replicas (and the trainer) may write the same schema. Begin()
// opens the transaction with pg_advisory_xact_lock(LockKey("event_log.served")) and only then reads
// max(served.id); the lock is held until COMMIT/ROLLBACK. Batches of all writers of the schema thus
// run one at a time, ids increase in commit order and are never reused, and a watermark
// (MaxServedId) names a fixed set of rows, as with SQLite's file lock. This lock is the log's
// scaling bottleneck: one lock hold per batch (not per request), lasting the batch's round trips
// and its COMMIT; the other writers wait for it (at most busy_timeout, as lock_timeout, then the
// batch is a write fault and is retried).
//
// Operations run without savepoints (a PostgreSQL savepoint costs two round trips, and more than
// 64 written subtransactions in one transaction slow every other session's snapshots): a slate is
// one statement (INSERT requests ... ON CONFLICT (request_id) DO NOTHING feeding the served
// INSERT), so a request_id already logged inserts nothing and leaves the transaction open
// (AlreadyExists); a feedback event is one statement (lookup + INSERT ... ON CONFLICT DO NOTHING).
// Strings PostgreSQL cannot store as TEXT (a NUL byte, invalid UTF-8) are refused before any SQL
// (InvalidArgument). Any other error aborts the transaction (InTransaction() is false): the writer
// answers the op with it and retries the rest of the batch.
//
// Durability (EventLogOptions::durability), set on this session:
// - kSynchronous: synchronous_commit = on. COMMIT returns once the commit record is flushed to the
//   server's WAL on disk: every acknowledged append survives a crash of our process and of the
//   PostgreSQL server (and of the machine, with fsync on).
// - kGroupCommit: synchronous_commit = off (the analogue of SQLite's synchronous=NORMAL): a commit
//   survives our process's crash as soon as COMMIT returns (the server has it), but a crash of the
//   PostgreSQL server itself may lose the last few hundred ms of commits (up to 3 x
//   wal_writer_delay, 600 ms by default), never a part of one.
//
// Faults: connection loss, server shutdown, a full disk, a lock timeout are Unavailable (PgStatus).
// A broken connection is re-established (PQreset) at the next Begin(), which also sets the session
// up again (settings and prepared statements). A COMMIT whose answer was lost may have committed:
// the writer's retry then finds its request_ids logged (counted as duplicate requests) and its
// feedback already there (kDuplicate), so nothing is written twice.
//
// Thread safety: none (see EventLogWriteConnection).
#ifndef OPTOWER_CORE_STORAGE_POSTGRES_WRITE_CONNECTION_H_
#define OPTOWER_CORE_STORAGE_POSTGRES_WRITE_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/storage/event_log.h"
#include "core/storage/event_log_write_connection.h"
#include "core/storage/pg_connection.h"

namespace optower {

class PostgresWriteConnection final : public EventLogWriteConnection {
 public:
  // Connects to `dsn`, creates or upgrades the tables (ApplyPostgresEventLogSchema) and sets the
  // session up. Unavailable if the server cannot be reached; FailedPrecondition if the database
  // holds a newer event_log schema.
  static absl::StatusOr<std::unique_ptr<PostgresWriteConnection>> Open(
      const EventLogOptions& options, const std::string& dsn);

  // Reconnects first if the connection broke; then BEGIN, the advisory lock, max(served.id).
  absl::Status Begin() override;
  absl::Status Commit() override;
  void RollbackIfOpen() override;
  // True while the transaction is open and not aborted.
  bool InTransaction() const override;
  absl::Status InsertSlates(const std::vector<ServedSlate>& slates) override;
  absl::Status DecideFeedback(const std::vector<FeedbackEvent>& events,
                              std::vector<FeedbackOutcome>& outcomes, int64_t& accepted) override;

 private:
  PostgresWriteConnection() = default;
  // synchronous_commit, lock_timeout, application_name ("optower event_log writer <schema>", for
  // pg_stat_activity) and the prepared statements, on a new session.
  absl::Status SetUpSession();
  // BEGIN and the advisory lock, then next_served_id_ = max(served.id) + 1.
  absl::Status BeginOnce();
  absl::Status InsertSlate(const ServedSlate& slate);
  // One feedback event's decision.
  absl::StatusOr<FeedbackOutcome> Decide(const FeedbackEvent& e);

  std::unique_ptr<PgConnection> conn_;
  bool synchronous_ = false;
  int64_t lock_timeout_ms_ = 1000;
  std::string begin_sql_;       // "BEGIN; SELECT pg_advisory_xact_lock(<key>)"
  int64_t next_served_id_ = 0;  // served.id for the next item while a transaction is open
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_POSTGRES_WRITE_CONNECTION_H_
