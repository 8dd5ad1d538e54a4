#include "core/storage/sqlite_write_connection.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "core/storage/event_log_schema.h"
#include "core/storage/event_log_validation.h"
#include "core/base/status_macros.h"

// Contexts are stored as the raw bytes of their float32 values; that is only portable across the hosts
// we build for (all little-endian).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "context BLOBs assume little-endian float32");

namespace optower {

absl::StatusOr<std::unique_ptr<SqliteWriteConnection>> SqliteWriteConnection::Open(
    const EventLogOptions& options) {
  std::unique_ptr<SqliteWriteConnection> c(new SqliteWriteConnection());
  ASSIGN_OR_RETURN(c->db_, OpenConnection(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                          options.busy_timeout));
  RETURN_IF_ERROR(ConfigureWriteConnection(
      c->db_.get(), options.path,
      /*synchronous=*/options.durability == EventLogOptions::Durability::kSynchronous));
  RETURN_IF_ERROR(CreateOrCheckSchema(c->db_.get(), options.path));
  RETURN_IF_ERROR(c->PrepareStatements());
  return c;
}

absl::Status SqliteWriteConnection::PrepareStatements() {
  sqlite3* db = db_.get();
  // BEGIN IMMEDIATE takes the write lock up front, so lock waits happen (and fail) at BEGIN rather than
  // in the middle of a batch.
  ASSIGN_OR_RETURN(begin_, Prepare(db, "BEGIN IMMEDIATE"));
  ASSIGN_OR_RETURN(commit_, Prepare(db, "COMMIT"));
  ASSIGN_OR_RETURN(rollback_, Prepare(db, "ROLLBACK"));
  ASSIGN_OR_RETURN(savepoint_, Prepare(db, "SAVEPOINT op"));
  ASSIGN_OR_RETURN(release_, Prepare(db, "RELEASE op"));
  ASSIGN_OR_RETURN(rollback_to_, Prepare(db, "ROLLBACK TO op"));
  ASSIGN_OR_RETURN(insert_request_,
                   Prepare(db,
                           "INSERT INTO requests(request_id, k, m, epsilon, temperature, "
                           "model_version, context, time_us, first_served, categorical) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  ASSIGN_OR_RETURN(insert_served_,
                   Prepare(db,
                           "INSERT INTO served(id, request, item_id, position, propensity, "
                           "conditional_propensity) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  ASSIGN_OR_RETURN(max_served_, Prepare(db, "SELECT COALESCE(MAX(id), 0) FROM served"));
  // The request by its UNIQUE request_id, then its items by served.id range (they are contiguous
  // from first_served and there are at most k of them): two B-tree probes and no index on served.
  // `s.request = r.id` keeps the range from matching another request's items when a slate had
  // fewer than k items.
  ASSIGN_OR_RETURN(served_exists_,
                   Prepare(db,
                           "SELECT 1 FROM requests AS r, served AS s "
                           "WHERE r.request_id = ?1 AND s.id >= r.first_served "
                           "AND s.id < r.first_served + r.k AND s.request = r.id "
                           "AND s.item_id = ?2 LIMIT 1"));
  // ON CONFLICT on the key only (unlike INSERT OR IGNORE, which would also swallow NOT NULL/CHECK
  // failures and report them as duplicates).
  ASSIGN_OR_RETURN(insert_feedback_,
                   Prepare(db,
                           "INSERT INTO feedback(request_id, item_id, reward, time_us) "
                           "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (request_id, item_id) DO NOTHING"));
  return absl::OkStatus();
}

absl::Status SqliteWriteConnection::Begin() {
  RETURN_IF_ERROR(StepDone(db_.get(), begin_.get(), "BEGIN IMMEDIATE"));
  absl::StatusOr<int64_t> max_id = QueryInt(db_.get(), max_served_.get(), "max served id");
  if (!max_id.ok()) return absl::UnavailableError(max_id.status().message());
  next_served_id_ = *max_id + 1;
  return absl::OkStatus();
}

absl::Status SqliteWriteConnection::Commit() {
  return StepDone(db_.get(), commit_.get(), "COMMIT");
}

void SqliteWriteConnection::RollbackIfOpen() {
  if (InTransaction()) StepDone(db_.get(), rollback_.get(), "ROLLBACK").IgnoreError();
}

bool SqliteWriteConnection::InTransaction() const {
  return sqlite3_get_autocommit(db_.get()) == 0;
}

template <typename Body>
absl::Status SqliteWriteConnection::InSavepoint(const Body& body) {
  RETURN_IF_ERROR(StepDone(db_.get(), savepoint_.get(), "SAVEPOINT"));
  absl::Status s = body();
  if (s.ok()) return StepDone(db_.get(), release_.get(), "RELEASE");
  // Some errors (I/O, disk full) make SQLite roll the whole transaction back on its own; the caller
  // notices through InTransaction().
  if (InTransaction()) {
    StepDone(db_.get(), rollback_to_.get(), "ROLLBACK TO").IgnoreError();
    StepDone(db_.get(), release_.get(), "RELEASE").IgnoreError();
  }
  return s;
}

absl::Status SqliteWriteConnection::InsertSlates(const std::vector<ServedSlate>& slates) {
  const int64_t served_id_before = next_served_id_;
  absl::Status s = InSavepoint([&] {
    for (const ServedSlate& slate : slates) RETURN_IF_ERROR(InsertSlate(slate));
    return absl::OkStatus();
  });
  if (!s.ok()) next_served_id_ = served_id_before;  // the op's rows were rolled back
  return s;
}

absl::Status SqliteWriteConnection::InsertSlate(const ServedSlate& slate) {
  sqlite3* db = db_.get();
  const int64_t first_served = next_served_id_;
  sqlite3_stmt* rq = insert_request_.get();
  sqlite3_bind_text(rq, 1, slate.request_id.data(), static_cast<int>(slate.request_id.size()),
                    SQLITE_STATIC);
  sqlite3_bind_int(rq, 2, slate.k);
  sqlite3_bind_int(rq, 3, slate.m);
  sqlite3_bind_double(rq, 4, slate.epsilon);
  sqlite3_bind_double(rq, 5, slate.temperature);
  sqlite3_bind_text(rq, 6, slate.model_version.data(),
                    static_cast<int>(slate.model_version.size()), SQLITE_STATIC);
  // zeroblob for an empty context: a null pointer would bind SQL NULL.
  if (slate.context.empty()) {
    sqlite3_bind_zeroblob(rq, 7, 0);
  } else {
    sqlite3_bind_blob(rq, 7, slate.context.data(),
                      static_cast<int>(slate.context.size() * sizeof(float)), SQLITE_STATIC);
  }
  sqlite3_bind_int64(rq, 8, slate.time_us);
  sqlite3_bind_int64(rq, 9, first_served);
  sqlite3_bind_text(rq, 10, slate.categorical.data(), static_cast<int>(slate.categorical.size()),
                    SQLITE_STATIC);
  RETURN_IF_ERROR(StepDoneLazy(db, rq, [&] {
    return absl::StrCat("insert request request_id=", Quoted(slate.request_id));
  }));
  const int64_t request = sqlite3_last_insert_rowid(db);

  sqlite3_stmt* st = insert_served_.get();
  for (size_t j = 0; j < slate.items.size(); ++j) {
    const ServedItem& item = slate.items[j];
    sqlite3_bind_int64(st, 1, first_served + static_cast<int64_t>(j));
    sqlite3_bind_int64(st, 2, request);
    sqlite3_bind_int64(st, 3, item.item_id);
    sqlite3_bind_int(st, 4, item.position);
    sqlite3_bind_double(st, 5, item.propensity);
    sqlite3_bind_double(st, 6, item.conditional_propensity);
    RETURN_IF_ERROR(StepDoneLazy(db, st, [&] {
      return absl::StrCat("insert served request_id=", Quoted(slate.request_id),
                          " item_id=", item.item_id);
    }));
  }
  next_served_id_ = first_served + static_cast<int64_t>(slate.items.size());
  return absl::OkStatus();
}

absl::StatusOr<bool> SqliteWriteConnection::WasServed(const FeedbackEvent& e) {
  // Same connection as the served inserts, so served rows of the open transaction are visible.
  sqlite3_stmt* q = served_exists_.get();
  sqlite3_bind_text(q, 1, e.request_id.data(), static_cast<int>(e.request_id.size()),
                    SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, e.item_id);
  const int rc = sqlite3_step(q);
  absl::StatusOr<bool> out = rc == SQLITE_ROW || rc == SQLITE_DONE
                                 ? absl::StatusOr<bool>(rc == SQLITE_ROW)
                                 : SqliteError(db_.get(), rc, "look up served row for feedback");
  sqlite3_reset(q);
  return out;
}

absl::Status SqliteWriteConnection::DecideFeedback(const std::vector<FeedbackEvent>& events,
                                                     std::vector<FeedbackOutcome>& outcomes,
                                                     int64_t& accepted) {
  return InSavepoint([&]() -> absl::Status {
    outcomes.clear();
    outcomes.reserve(events.size());
    accepted = 0;
    for (const FeedbackEvent& e : events) {
      ASSIGN_OR_RETURN(const bool served, WasServed(e));
      if (!served) {
        outcomes.push_back(FeedbackOutcome::kUnknown);
        continue;
      }
      sqlite3_stmt* st = insert_feedback_.get();
      sqlite3_bind_text(st, 1, e.request_id.data(), static_cast<int>(e.request_id.size()),
                        SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, e.item_id);
      sqlite3_bind_double(st, 3, e.reward);
      sqlite3_bind_int64(st, 4, e.time_us);
      RETURN_IF_ERROR(StepDoneLazy(db_.get(), st, [&] {
        return absl::StrCat("insert feedback request_id=", Quoted(e.request_id),
                            " item_id=", e.item_id);
      }));
      if (sqlite3_changes(db_.get()) == 1) {
        outcomes.push_back(FeedbackOutcome::kAccepted);
        ++accepted;
      } else {
        outcomes.push_back(FeedbackOutcome::kDuplicate);
      }
    }
    return absl::OkStatus();
  });
}

}  // namespace optower
