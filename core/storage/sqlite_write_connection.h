// SqliteWriteConnection: the SQLite event log's write connection (an EventLogWriteConnection,
// core/storage/event_log_write_connection.h) — the file's pragmas and schema
// at open, and the statements the group-commit writer runs: BEGIN IMMEDIATE / COMMIT / ROLLBACK,
// one SAVEPOINT per operation, the served inserts and the feedback decisions (docs/EVENT_LOG.md
// "Writer: one thread, FIFO, group commit").
//
// served.id is assigned here, not by SQLite: it is read once per transaction at Begin() (the write
// lock is held from BEGIN IMMEDIATE to COMMIT, so nobody else can insert in between), advanced per
// slate, and restored when an operation rolls back to its savepoint. The items of one request are
// thus the contiguous id range [first_served, first_served + number of items).
//
// Thread safety: none. Used by Open (before the writer thread starts), then by the writer thread
// only.
#ifndef OPTOWER_CORE_STORAGE_SQLITE_WRITE_CONNECTION_H_
#define OPTOWER_CORE_STORAGE_SQLITE_WRITE_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/storage/event_log.h"
#include "core/storage/event_log_write_connection.h"
#include "core/storage/sqlite_util.h"

namespace optower {

class SqliteWriteConnection final : public EventLogWriteConnection {
 public:
  // Opens (creating if needed) options.path read-write, switches it to WAL with the durability's
  // synchronous pragma, creates or checks the schema, and prepares the statements. Errors:
  // FailedPrecondition if the file is read-only, WAL cannot be enabled or the file has another
  // schema version; the SQLite error otherwise.
  static absl::StatusOr<std::unique_ptr<SqliteWriteConnection>> Open(
      const EventLogOptions& options);

  // BEGIN IMMEDIATE (waits up to busy_timeout for another connection's write lock), then reads the
  // next served.id. Any failure is a write fault (Unavailable): nothing was written.
  absl::Status Begin() override;
  absl::Status Commit() override;
  // Rolls back the open transaction, if any (errors are ignored: SQLite may have rolled it back).
  void RollbackIfOpen() override;
  // False once SQLite rolled the transaction back on its own (I/O error, disk full...).
  bool InTransaction() const override;

  // Inserts the slates (one requests row and one served row per item each) inside a savepoint:
  // on error the operation's rows are rolled back and served ids are restored. Returns the SQLite
  // error (AlreadyExists for a request_id already logged).
  absl::Status InsertSlates(const std::vector<ServedSlate>& slates) override;
  // Decides each feedback event inside a savepoint: kUnknown if (request_id, item_id) was never
  // served (served rows of the open transaction count), else inserted (kAccepted) or already there
  // (kDuplicate: first write wins). `accepted` counts the kAccepted.
  absl::Status DecideFeedback(const std::vector<FeedbackEvent>& events,
                              std::vector<FeedbackOutcome>& outcomes, int64_t& accepted) override;

 private:
  SqliteWriteConnection() = default;
  absl::Status PrepareStatements();
  // Runs `body` inside SAVEPOINT op: released on success, rolled back to on error.
  template <typename Body>
  absl::Status InSavepoint(const Body& body);
  absl::Status InsertSlate(const ServedSlate& slate);
  // Whether (request_id, item_id) was served; the lookup's SQLite error otherwise.
  absl::StatusOr<bool> WasServed(const FeedbackEvent& e);

  SqliteDb db_;
  Stmt begin_, commit_, rollback_, savepoint_, release_, rollback_to_;
  Stmt insert_request_, insert_served_, max_served_, served_exists_, insert_feedback_;
  int64_t next_served_id_ = 0;  // served.id for the next item while a transaction is open
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_SQLITE_WRITE_CONNECTION_H_
