// TrainerElection: exactly one trainer per shared deployment (docs/SCALING.md "Trainer election"),
// elected through PostgreSQL.
//
// - The lock: a session-level advisory lock (pg_try_advisory_lock on LockKey("trainer")) held by
//   this object's own connection. PostgreSQL releases it when that session ends, so a trainer that
//   crashes, is SIGKILLed or loses its network gives it up without any timeout of ours; a standby
//   retries TryAcquire every election_interval and takes over.
// - The fence: on each win the lease row optower_trainer_lease(id = 1) gets epoch + 1 (and the
//   holder's name). CheckFence(conn), run inside every registry/catalog write transaction (the
//   stores' WriteGuard), takes a share lock on that row and fails unless its epoch is still ours:
//   a trainer that lost the lock mid-job (its session died while its job kept running) cannot
//   publish over its successor. The successor's epoch update waits for such a transaction, so a
//   write either commits before the new epoch or is refused.
//
// Thread safety: TryAcquire/StillHeld/Release from one thread (the server's election loop);
// epoch(), elected() and CheckFence from any thread (CheckFence uses the caller's connection).
#ifndef OPTOWER_CORE_STORAGE_TRAINER_ELECTION_H_
#define OPTOWER_CORE_STORAGE_TRAINER_ELECTION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/storage/pg_connection.h"

namespace optower {

class TrainerElection {
 public:
  // Connects (a connection of its own) and applies the "election" schema. `holder`: this
  // process's name in the lease row (e.g. host:port), for operators.
  static absl::StatusOr<std::unique_ptr<TrainerElection>> Open(const std::string& dsn,
                                                               std::string holder);

  // One attempt. True when this process is (now or already) elected; false while another holds
  // the lock. Unavailable when the database cannot be reached (the caller retries later).
  absl::StatusOr<bool> TryAcquire();
  // Whether the lock is still ours: false once the connection broke (PostgreSQL then released
  // the lock, and another trainer may hold it). Cheap round trip.
  bool StillHeld();
  // Gives the lock up (also done by the destructor and by the session ending).
  void Release();

  bool elected() const { return elected_.load(); }
  int64_t epoch() const { return epoch_.load(); }
  // FailedPrecondition unless the lease row's epoch is still this process's (see the file comment).
  absl::Status CheckFence(PgConnection& conn) const;
  // The lease row's holder and epoch, as another process sees them.
  static absl::StatusOr<std::pair<std::string, int64_t>> ReadLease(PgConnection& conn);

 private:
  TrainerElection(std::unique_ptr<PgConnection> conn, std::string holder)
      : conn_(std::move(conn)), holder_(std::move(holder)) {}
  std::unique_ptr<PgConnection> conn_;
  const std::string holder_;
  std::atomic<bool> elected_{false};
  std::atomic<int64_t> epoch_{0};
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_TRAINER_ELECTION_H_
