#include "core/storage/trainer_election.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

const std::vector<std::string>& ElectionMigrations() {
  static const std::vector<std::string> m = {
      "CREATE TABLE optower_trainer_lease (id INTEGER PRIMARY KEY CHECK (id = 1), "
      "epoch BIGINT NOT NULL, holder TEXT NOT NULL, since_us BIGINT NOT NULL); "
      "INSERT INTO optower_trainer_lease VALUES (1, 0, '', 0)"};
  return m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TrainerElection>> TrainerElection::Open(const std::string& dsn,
                                                                       std::string holder) {
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn, PgConnection::Connect(dsn, "optower-election"));
  RETURN_IF_ERROR(ApplyPgMigrations(*conn, "election", ElectionMigrations()));
  // A trainer cut off by the network (not dead) holds the lock until PostgreSQL notices its
  // session is gone: with the server's keepalive on this session that is ~5 + 3 x 2 = 11 s, not
  // the kernel's default of hours. (A crashed or killed trainer's socket closes at once.)
  RETURN_IF_ERROR(conn->Exec("SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
                             "SET tcp_keepalives_count = 3",
                             "postgres: election session keepalives"));
  return std::unique_ptr<TrainerElection>(new TrainerElection(std::move(conn), std::move(holder)));
}

absl::StatusOr<bool> TrainerElection::TryAcquire() {
  if (elected_.load()) {
    if (StillHeld()) return true;
  }
  if (!conn_->ok()) RETURN_IF_ERROR(conn_->Reset());
  const std::string key = absl::StrCat(conn_->LockKey("trainer"));
  ASSIGN_OR_RETURN(PgResult r, conn_->Query(absl::StrCat("SELECT pg_try_advisory_lock(", key, ")"), {},
                                            "postgres: trainer election"));
  if (!r.GetBool(0, 0)) return false;
  absl::StatusOr<PgResult> lease = conn_->Query(
      "UPDATE optower_trainer_lease SET epoch = epoch + 1, holder = $1, since_us = $2 "
      "WHERE id = 1 RETURNING epoch",
      {PgParam::Text(holder_), PgParam::Int(absl::ToUnixMicros(absl::Now()))},
      "postgres: trainer lease");
  if (!lease.ok() || lease->rows() != 1) {
    Release();
    return lease.ok() ? absl::DataLossError("postgres: the trainer lease row is missing")
                      : lease.status();
  }
  epoch_.store(lease->GetInt(0, 0));
  elected_.store(true);
  return true;
}

bool TrainerElection::StillHeld() {
  if (!elected_.load()) return false;
  if (conn_->ok() && conn_->Exec("SELECT 1", "postgres: election heartbeat").ok()) return true;
  elected_.store(false);  // the session is gone, and with it the lock
  return false;
}

void TrainerElection::Release() {
  if (elected_.exchange(false) && conn_->ok()) {
    conn_->Exec(absl::StrCat("SELECT pg_advisory_unlock(", conn_->LockKey("trainer"), ")"),
                "postgres: trainer election release")
        .IgnoreError();
  }
}

absl::Status TrainerElection::CheckFence(PgConnection& conn) const {
  ASSIGN_OR_RETURN(PgResult r, conn.Query("SELECT epoch, holder FROM optower_trainer_lease WHERE id = 1 "
                                          "FOR SHARE", {}, "postgres: trainer fence"));
  const int64_t mine = epoch_.load();
  if (r.rows() != 1 || !elected_.load() || r.GetInt(0, 0) != mine) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this trainer (epoch ", mine, ") is no longer the elected one",
        r.rows() == 1 ? absl::StrCat(": ", r.Get(0, 1), " holds epoch ", r.GetInt(0, 0)) : std::string(),
        "; nothing was written"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<std::string, int64_t>> TrainerElection::ReadLease(PgConnection& conn) {
  ASSIGN_OR_RETURN(PgResult r, conn.Query("SELECT holder, epoch FROM optower_trainer_lease WHERE id = 1",
                                          {}, "postgres: trainer lease"));
  if (r.rows() != 1) return absl::NotFoundError("postgres: no trainer lease row");
  return std::make_pair(r.Get(0, 0), r.GetInt(0, 0));
}

}  // namespace optower
