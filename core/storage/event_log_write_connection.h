// EventLogWriteConnection: what the group-commit writer (core/storage/event_log_writer.h) needs from
// a backend's write connection: transactions, the served inserts and the feedback decisions
// (docs/EVENT_LOG.md "Writer: one thread, FIFO, group commit"). Implementations:
//   core/storage/sqlite_write_connection.h    SQLite (BEGIN IMMEDIATE, one SAVEPOINT per operation)
//   core/storage/postgres_write_connection.h  PostgreSQL (an advisory lock per batch)
//
// The contract every implementation keeps:
// - served.id is assigned by the connection: read once per transaction at Begin() (under a lock
//   that keeps every other writer of the same log out until the COMMIT), advanced per slate and
//   restored when an operation fails on its own. Ids thus increase in commit order and are never
//   reused; the items of one request are a contiguous id range in serving order.
// - An operation that fails on its own (a request_id already logged: AlreadyExists; a value the
//   backend cannot store: InvalidArgument) writes nothing and leaves the transaction open, unless
//   InTransaction() says otherwise.
// - Write faults (the disk, the server or the connection failed; a lock wait timed out) are
//   Unavailable: the writer rolls the batch back and retries it.
//
// Thread safety: none. Used by the backend's Open (before the writer thread starts), then by the
// writer thread only.
#ifndef OPTOWER_CORE_STORAGE_EVENT_LOG_WRITE_CONNECTION_H_
#define OPTOWER_CORE_STORAGE_EVENT_LOG_WRITE_CONNECTION_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "core/storage/event_log.h"

namespace optower {

class EventLogWriteConnection {
 public:
  virtual ~EventLogWriteConnection() = default;

  // Opens a transaction and reads the next served.id. Any failure is a write fault (Unavailable):
  // nothing was written.
  virtual absl::Status Begin() = 0;
  virtual absl::Status Commit() = 0;
  // Rolls back the open (or failed) transaction, if any; errors are ignored.
  virtual void RollbackIfOpen() = 0;
  // False once the transaction ended on its own (SQLite: I/O error, disk full; PostgreSQL: any
  // error aborts it, or the connection broke): the batch is gone.
  virtual bool InTransaction() const = 0;

  // Inserts the slates of one operation (one requests row and one served row per item each),
  // atomically: on error nothing of them is kept and served ids are restored. AlreadyExists (naming
  // request_id='...') for a request_id already logged.
  virtual absl::Status InsertSlates(const std::vector<ServedSlate>& slates) = 0;
  // Decides each feedback event: kUnknown if (request_id, item_id) was never served (served rows
  // of the open transaction count, and so do rows other writers committed), else inserted
  // (kAccepted) or already there (kDuplicate: first write wins). `accepted` counts the kAccepted.
  // Atomic as InsertSlates.
  virtual absl::Status DecideFeedback(const std::vector<FeedbackEvent>& events,
                                      std::vector<FeedbackOutcome>& outcomes,
                                      int64_t& accepted) = 0;

 protected:
  EventLogWriteConnection() = default;
  EventLogWriteConnection(const EventLogWriteConnection&) = delete;
  EventLogWriteConnection& operator=(const EventLogWriteConnection&) = delete;
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_EVENT_LOG_WRITE_CONNECTION_H_
