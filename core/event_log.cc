#include "core/event_log.h"

#include <sqlite3.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/status_macros.h"

// Contexts are stored as the raw bytes of their float32 values; that is only portable across the hosts
// we build for (all little-endian).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "context BLOBs assume little-endian float32");

namespace optower {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS served (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id    TEXT    NOT NULL,
  item_id       INTEGER NOT NULL,
  position      INTEGER NOT NULL,
  propensity    REAL    NOT NULL CHECK (propensity > 0 AND propensity <= 1),
  k             INTEGER NOT NULL,
  m             INTEGER NOT NULL,
  epsilon       REAL    NOT NULL,
  temperature   REAL    NOT NULL,
  model_version TEXT    NOT NULL,
  context       BLOB    NOT NULL,
  time_us       INTEGER NOT NULL,
  UNIQUE (request_id, item_id)
);
CREATE TABLE IF NOT EXISTS feedback (
  request_id TEXT    NOT NULL,
  item_id    INTEGER NOT NULL,
  reward     REAL    NOT NULL,
  time_us    INTEGER NOT NULL,
  PRIMARY KEY (request_id, item_id)
) WITHOUT ROWID;
)sql";

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  const std::string msg =
      absl::StrCat(what, ": sqlite error ", rc, " (", sqlite3_errstr(rc),
                   db != nullptr ? absl::StrCat("): ", sqlite3_errmsg(db)) : std::string(")"));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                 ? absl::AlreadyExistsError(msg)
                 : absl::InvalidArgumentError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::InternalError(msg);
  }
}

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

absl::StatusOr<Stmt> Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, absl::StrCat("prepare '", sql, "'"));
  return Stmt(s);
}

// Steps a statement that returns no rows and resets it for reuse.
absl::Status StepDone(sqlite3* db, sqlite3_stmt* s, absl::string_view what) {
  const int rc = sqlite3_step(s);
  absl::Status status = rc == SQLITE_DONE ? absl::OkStatus() : SqliteError(db, rc, what);
  sqlite3_reset(s);
  return status;
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status s = SqliteError(db, rc, absl::StrCat("exec '", sql, "'"));
  sqlite3_free(err);
  return s;
}

// Runs a one-value query (PRAGMA or SELECT) and returns the first column of the first row as text.
absl::StatusOr<std::string> QueryText(sqlite3* db, const char* sql) {
  ASSIGN_OR_RETURN(Stmt s, Prepare(db, sql));
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(s.get(), 0);
    return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
  }
  if (rc == SQLITE_DONE) return absl::InternalError(absl::StrCat("'", sql, "' returned no row"));
  return SqliteError(db, rc, sql);
}

absl::StatusOr<sqlite3*> OpenConnection(const std::string& path, int flags,
                                        absl::Duration busy_timeout) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = SqliteError(db, rc, absl::StrCat("open path='", path, "'"));
    sqlite3_close_v2(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(busy_timeout)));
  return db;
}

std::string Quoted(absl::string_view s) { return absl::StrCat("'", s, "'"); }

absl::Status ValidateOptions(const EventLogOptions& o) {
  if (o.path.empty()) return absl::InvalidArgumentError("path='': path must name a file");
  if (o.max_commit_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("max_commit_delay=",
                                                   absl::FormatDuration(o.max_commit_delay),
                                                   ": must be >= 0"));
  }
  if (o.max_batch_events < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_events=", o.max_batch_events, ": must be >= 1"));
  }
  if (o.max_queue_events < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queue_events=", o.max_queue_events, ": must be >= 1"));
  }
  if (o.busy_timeout < absl::ZeroDuration() || o.busy_timeout > absl::Hours(24)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "busy_timeout=", absl::FormatDuration(o.busy_timeout), ": must be in [0, 24h]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateServed(const std::vector<ServedEvent>& events) {
  absl::flat_hash_set<std::pair<absl::string_view, int64_t>> seen;
  for (size_t i = 0; i < events.size(); ++i) {
    const ServedEvent& e = events[i];
    const std::string at = absl::StrCat("served event ", i, " (request_id=", Quoted(e.request_id),
                                        ", item_id=", e.item_id, "): ");
    if (e.request_id.empty()) return absl::InvalidArgumentError(at + "request_id must not be empty");
    // NaN fails both comparisons, so it is rejected too.
    if (!(e.propensity > 0.0 && e.propensity <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, "propensity=", e.propensity, ": must be in (0, 1]"));
    }
    if (e.k < 1) return absl::InvalidArgumentError(absl::StrCat(at, "k=", e.k, ": must be >= 1"));
    if (e.m < e.k) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, "m=", e.m, ": must be >= k=", e.k));
    }
    if (e.position < 0 || e.position >= e.k) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, "position=", e.position, ": must be in [0, k=", e.k, ")"));
    }
    if (!(e.epsilon >= 0.0 && e.epsilon <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, "epsilon=", e.epsilon, ": must be in [0, 1]"));
    }
    if (!(e.temperature >= 0.0 && std::isfinite(e.temperature))) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, "temperature=", e.temperature, ": must be finite and >= 0"));
    }
    for (size_t j = 0; j < e.context.size(); ++j) {
      if (!std::isfinite(e.context[j])) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, "context[", j, "]=", e.context[j], ": must be finite"));
      }
    }
    if (!seen.insert({e.request_id, e.item_id}).second) {
      return absl::InvalidArgumentError(at + "this (request_id, item_id) appears twice in the call");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFeedback(const std::vector<FeedbackEvent>& events) {
  for (size_t i = 0; i < events.size(); ++i) {
    const FeedbackEvent& e = events[i];
    const std::string at = absl::StrCat("feedback event ", i, " (request_id=", Quoted(e.request_id),
                                        ", item_id=", e.item_id, "): ");
    if (e.request_id.empty()) return absl::InvalidArgumentError(at + "request_id must not be empty");
    if (!std::isfinite(e.reward)) {
      return absl::InvalidArgumentError(absl::StrCat(at, "reward=", e.reward, ": must be finite"));
    }
  }
  return absl::OkStatus();
}

// What a blocked caller waits on. The caller owns it (on its stack) and blocks until `done`; the
// writer fills status/outcomes and then notifies, and never touches it afterwards.
struct Completion {
  absl::Notification done;
  absl::Status status;
  std::vector<FeedbackOutcome> outcomes;

  void Finish(absl::Status s) {
    status = std::move(s);
    done.Notify();
  }
};

struct Op {
  enum class Kind { kServed, kFeedback, kFlush };
  Kind kind = Kind::kFlush;
  std::vector<ServedEvent> served;
  std::vector<FeedbackEvent> feedback;
  Completion* completion = nullptr;  // null: fire-and-forget (group-commit served)
  absl::Time enqueued;
  int64_t num_events = 0;
};

}  // namespace

struct EventLog::Impl {
  EventLogOptions options;
  bool synchronous = false;

  // Writer side: touched only by Open (before the thread starts), the writer thread, and ~Impl.
  sqlite3* write_db = nullptr;
  Stmt begin, commit, rollback, savepoint, release, rollback_to;
  Stmt insert_served, served_exists, insert_feedback;

  // Reader side.
  mutable absl::Mutex read_mu;
  sqlite3* read_db ABSL_GUARDED_BY(read_mu) = nullptr;
  Stmt read_joined ABSL_GUARDED_BY(read_mu);
  Stmt max_served_id ABSL_GUARDED_BY(read_mu);
  Stmt count_feedback ABSL_GUARDED_BY(read_mu);

  // Queue and counters.
  mutable absl::Mutex mu;
  std::deque<Op> queue ABSL_GUARDED_BY(mu);
  int64_t queued_events ABSL_GUARDED_BY(mu) = 0;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  absl::Status background_error ABSL_GUARDED_BY(mu);
  Stats stats ABSL_GUARDED_BY(mu);

  absl::Mutex close_mu;
  bool closed ABSL_GUARDED_BY(close_mu) = false;
  absl::Status close_status ABSL_GUARDED_BY(close_mu);
  std::thread writer;

  // One open transaction of the writer.
  struct Batch {
    bool open = false;
    absl::Time deadline;
    int64_t events = 0;
    int64_t served_rows = 0;
    int64_t feedback_rows = 0;
    bool has_unwaited = false;          // acknowledged work nobody waits on (group-commit mode)
    std::vector<Completion*> waiters;   // sync appends: finished with the commit status
    std::vector<Completion*> flushers;  // Flush calls: finished with background error or commit
  };

  ~Impl() {
    insert_served.reset();
    served_exists.reset();
    insert_feedback.reset();
    begin.reset();
    commit.reset();
    rollback.reset();
    savepoint.reset();
    release.reset();
    rollback_to.reset();
    if (write_db != nullptr) sqlite3_close_v2(write_db);
    absl::MutexLock l(&read_mu);
    read_joined.reset();
    max_served_id.reset();
    count_feedback.reset();
    if (read_db != nullptr) sqlite3_close_v2(read_db);
  }

  absl::Status InitWriter();
  absl::Status InitReader();

  absl::Status Enqueue(Op op) {
    absl::MutexLock l(&mu);
    if (stopping) return absl::FailedPreconditionError("event log is closed: path=" + options.path);
    if (queued_events + op.num_events > options.max_queue_events) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "event log queue full: ", queued_events, " events queued + ", op.num_events,
          " would exceed max_queue_events=", options.max_queue_events));
    }
    queued_events += op.num_events;
    op.enqueued = absl::Now();
    queue.push_back(std::move(op));
    return absl::OkStatus();
  }

  // Counts a failed op and reports it: to its waiter, or (fire-and-forget) through the next Flush.
  // The count is updated before the waiter wakes, so the caller sees it in stats().
  void FailOp(Op& op, const absl::Status& s) {
    {
      absl::MutexLock l(&mu);
      ++stats.errors;
      if (op.completion == nullptr && background_error.ok()) background_error = s;
    }
    if (op.completion != nullptr) op.completion->Finish(s);
  }
  absl::Status TakeBackgroundError() {
    absl::MutexLock l(&mu);
    return std::exchange(background_error, absl::OkStatus());
  }

  void WriterLoop();
  void Execute(Op& op, Batch& batch);
  absl::Status ExecuteServed(const std::vector<ServedEvent>& events);
  absl::Status ExecuteFeedback(const std::vector<FeedbackEvent>& events,
                               std::vector<FeedbackOutcome>& outcomes, int64_t& accepted);
  absl::Status InSavepoint(const std::function<absl::Status()>& body);
  void Commit(Batch& batch);
  void FailBatch(Batch& batch, const absl::Status& s);
};

absl::Status EventLog::Impl::InitWriter() {
  ASSIGN_OR_RETURN(write_db, OpenConnection(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                            options.busy_timeout));
  ASSIGN_OR_RETURN(std::string mode, QueryText(write_db, "PRAGMA journal_mode=WAL"));
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("path='", options.path, "': cannot enable WAL, journal_mode=", mode));
  }
  RETURN_IF_ERROR(Exec(write_db, synchronous ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));

  RETURN_IF_ERROR(Exec(write_db, "BEGIN IMMEDIATE"));
  absl::Status s = Exec(write_db, kSchemaSql);
  if (s.ok()) {
    s = Exec(write_db,
             absl::StrCat("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '",
                          kSchemaVersion, "')")
                 .c_str());
  }
  if (s.ok()) {
    absl::StatusOr<std::string> version =
        QueryText(write_db, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (!version.ok()) {
      s = version.status();
    } else if (*version != std::to_string(kSchemaVersion)) {
      s = absl::FailedPreconditionError(absl::StrCat("path='", options.path, "': schema_version=",
                                                     *version, ", this build reads ",
                                                     kSchemaVersion));
    }
  }
  if (s.ok()) s = Exec(write_db, "COMMIT");
  if (!s.ok()) {
    if (sqlite3_get_autocommit(write_db) == 0) Exec(write_db, "ROLLBACK").IgnoreError();
    return s;
  }

  // BEGIN IMMEDIATE takes the write lock up front, so lock waits happen (and fail) at BEGIN rather than
  // in the middle of a batch.
  ASSIGN_OR_RETURN(begin, Prepare(write_db, "BEGIN IMMEDIATE"));
  ASSIGN_OR_RETURN(commit, Prepare(write_db, "COMMIT"));
  ASSIGN_OR_RETURN(rollback, Prepare(write_db, "ROLLBACK"));
  ASSIGN_OR_RETURN(savepoint, Prepare(write_db, "SAVEPOINT op"));
  ASSIGN_OR_RETURN(release, Prepare(write_db, "RELEASE op"));
  ASSIGN_OR_RETURN(rollback_to, Prepare(write_db, "ROLLBACK TO op"));
  ASSIGN_OR_RETURN(insert_served,
                   Prepare(write_db,
                           "INSERT INTO served(request_id, item_id, position, propensity, k, m, "
                           "epsilon, temperature, model_version, context, time_us) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"));
  ASSIGN_OR_RETURN(served_exists,
                   Prepare(write_db, "SELECT 1 FROM served WHERE request_id = ?1 AND item_id = ?2"));
  // ON CONFLICT on the key only (unlike INSERT OR IGNORE, which would also swallow NOT NULL/CHECK
  // failures and report them as duplicates).
  ASSIGN_OR_RETURN(insert_feedback,
                   Prepare(write_db,
                           "INSERT INTO feedback(request_id, item_id, reward, time_us) "
                           "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (request_id, item_id) DO NOTHING"));
  return absl::OkStatus();
}

absl::Status EventLog::Impl::InitReader() {
  absl::MutexLock l(&read_mu);
  ASSIGN_OR_RETURN(read_db,
                   OpenConnection(options.path, SQLITE_OPEN_READONLY, options.busy_timeout));
  ASSIGN_OR_RETURN(
      read_joined,
      Prepare(read_db,
              "SELECT s.id, s.request_id, s.item_id, s.position, s.propensity, s.k, s.m, s.epsilon, "
              "s.temperature, s.model_version, s.context, s.time_us, "
              "f.request_id IS NOT NULL, f.reward, f.time_us "
              "FROM served AS s LEFT JOIN feedback AS f "
              "ON f.request_id = s.request_id AND f.item_id = s.item_id "
              "WHERE s.id >= ?1 AND s.id <= ?2 ORDER BY s.id LIMIT ?3"));
  ASSIGN_OR_RETURN(max_served_id, Prepare(read_db, "SELECT COALESCE(MAX(id), 0) FROM served"));
  ASSIGN_OR_RETURN(count_feedback, Prepare(read_db, "SELECT COUNT(*) FROM feedback"));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Writer thread.

void EventLog::Impl::WriterLoop() {
  Batch batch;
  for (;;) {
    Op op;
    bool have_op = false;
    bool stop = false;
    bool queue_drained = false;
    {
      absl::MutexLock l(&mu);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return !queue.empty() || stopping; };
      if (batch.open) {
        mu.AwaitWithDeadline(absl::Condition(&ready), batch.deadline);
      } else {
        mu.Await(absl::Condition(&ready));
      }
      if (!queue.empty()) {
        op = std::move(queue.front());
        queue.pop_front();
        queued_events -= op.num_events;
        stats.queue_depth = queued_events;
        have_op = true;
        queue_drained = queue.empty();
      } else {
        stop = stopping;
      }
    }
    if (!have_op) {  // commit deadline reached, or stopping with nothing left
      if (batch.open) Commit(batch);
      if (stop) return;
      continue;
    }
    const bool is_flush = op.kind == Op::Kind::kFlush;
    Execute(op, batch);
    if (!batch.open) continue;
    // Commit once the deadline has passed and nothing more is queued. In synchronous mode the deadline
    // is the first op's enqueue time, so everyone already waiting shares the commit (and its fsync) and
    // nobody waits for a timer. Under a backlog a batch takes what is already queued (up to
    // max_batch_events) instead of committing per op, which would collapse throughput just when it is
    // needed.
    const bool due = is_flush || batch.events >= options.max_batch_events ||
                     (queue_drained && absl::Now() >= batch.deadline);
    if (due) Commit(batch);
  }
}

absl::Status EventLog::Impl::InSavepoint(const std::function<absl::Status()>& body) {
  RETURN_IF_ERROR(StepDone(write_db, savepoint.get(), "SAVEPOINT"));
  absl::Status s = body();
  if (s.ok()) return StepDone(write_db, release.get(), "RELEASE");
  // Some errors (I/O, disk full) make SQLite roll the whole transaction back on its own; the caller
  // notices through sqlite3_get_autocommit.
  if (sqlite3_get_autocommit(write_db) == 0) {
    StepDone(write_db, rollback_to.get(), "ROLLBACK TO").IgnoreError();
    StepDone(write_db, release.get(), "RELEASE").IgnoreError();
  }
  return s;
}

absl::Status EventLog::Impl::ExecuteServed(const std::vector<ServedEvent>& events) {
  sqlite3_stmt* st = insert_served.get();
  for (const ServedEvent& e : events) {
    sqlite3_bind_text(st, 1, e.request_id.data(), static_cast<int>(e.request_id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, e.item_id);
    sqlite3_bind_int(st, 3, e.position);
    sqlite3_bind_double(st, 4, e.propensity);
    sqlite3_bind_int(st, 5, e.k);
    sqlite3_bind_int(st, 6, e.m);
    sqlite3_bind_double(st, 7, e.epsilon);
    sqlite3_bind_double(st, 8, e.temperature);
    sqlite3_bind_text(st, 9, e.model_version.data(), static_cast<int>(e.model_version.size()),
                      SQLITE_STATIC);
    // zeroblob for an empty context: a null pointer would bind SQL NULL.
    if (e.context.empty()) {
      sqlite3_bind_zeroblob(st, 10, 0);
    } else {
      sqlite3_bind_blob(st, 10, e.context.data(),
                        static_cast<int>(e.context.size() * sizeof(float)), SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 11, e.time_us);
    RETURN_IF_ERROR(StepDone(write_db, st,
                             absl::StrCat("insert served request_id='", e.request_id,
                                          "' item_id=", e.item_id)));
  }
  return absl::OkStatus();
}

absl::Status EventLog::Impl::ExecuteFeedback(const std::vector<FeedbackEvent>& events,
                                             std::vector<FeedbackOutcome>& outcomes,
                                             int64_t& accepted) {
  outcomes.clear();
  outcomes.reserve(events.size());
  accepted = 0;
  for (const FeedbackEvent& e : events) {
    // Same connection as the served inserts, so served rows of the open transaction are visible.
    sqlite3_stmt* q = served_exists.get();
    sqlite3_bind_text(q, 1, e.request_id.data(), static_cast<int>(e.request_id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, e.item_id);
    const int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      absl::Status s = SqliteError(write_db, rc, "look up served row for feedback");
      sqlite3_reset(q);
      return s;
    }
    sqlite3_reset(q);
    if (rc == SQLITE_DONE) {
      outcomes.push_back(FeedbackOutcome::kUnknown);
      continue;
    }
    sqlite3_stmt* st = insert_feedback.get();
    sqlite3_bind_text(st, 1, e.request_id.data(), static_cast<int>(e.request_id.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, e.item_id);
    sqlite3_bind_double(st, 3, e.reward);
    sqlite3_bind_int64(st, 4, e.time_us);
    RETURN_IF_ERROR(StepDone(write_db, st,
                             absl::StrCat("insert feedback request_id='", e.request_id,
                                          "' item_id=", e.item_id)));
    if (sqlite3_changes(write_db) == 1) {
      outcomes.push_back(FeedbackOutcome::kAccepted);
      ++accepted;
    } else {
      outcomes.push_back(FeedbackOutcome::kDuplicate);
    }
  }
  return absl::OkStatus();
}

void EventLog::Impl::Execute(Op& op, Batch& batch) {
  if (op.kind == Op::Kind::kFlush) {
    if (batch.open) {
      batch.flushers.push_back(op.completion);
    } else {
      op.completion->Finish(TakeBackgroundError());
    }
    return;
  }
  if (!batch.open) {
    const absl::Status s = StepDone(write_db, begin.get(), "BEGIN IMMEDIATE");
    if (!s.ok()) {  // nothing of this op was written
      FailOp(op, s);
      return;
    }
    batch.open = true;
    batch.deadline = op.enqueued + (synchronous ? absl::ZeroDuration() : options.max_commit_delay);
  }

  absl::Status s;
  int64_t accepted = 0;
  std::vector<FeedbackOutcome> outcomes;
  if (op.kind == Op::Kind::kServed) {
    s = InSavepoint([&] { return ExecuteServed(op.served); });
  } else {
    s = InSavepoint([&] { return ExecuteFeedback(op.feedback, outcomes, accepted); });
  }

  if (sqlite3_get_autocommit(write_db) != 0) {
    // SQLite rolled the whole transaction back (I/O error, disk full...): the batch is gone.
    if (s.ok()) s = absl::InternalError("event log transaction ended unexpectedly");
    if (op.completion != nullptr) {
      batch.waiters.push_back(op.completion);
    } else {
      batch.has_unwaited = true;
    }
    FailBatch(batch, s);
    return;
  }
  if (!s.ok()) {  // this op rolled back to its savepoint; the batch goes on
    FailOp(op, s);
    return;
  }

  batch.events += op.num_events;
  if (op.kind == Op::Kind::kServed) {
    batch.served_rows += static_cast<int64_t>(op.served.size());
  } else {
    batch.feedback_rows += accepted;
  }
  if (op.completion == nullptr) {
    batch.has_unwaited = true;
  } else if (synchronous) {
    op.completion->outcomes = std::move(outcomes);
    batch.waiters.push_back(op.completion);
  } else {  // group-commit feedback: answered once decided
    batch.has_unwaited = true;
    op.completion->outcomes = std::move(outcomes);
    op.completion->Finish(absl::OkStatus());
  }
}

void EventLog::Impl::Commit(Batch& batch) {
  const absl::Time t0 = absl::Now();
  const absl::Status s = StepDone(write_db, commit.get(), "COMMIT");
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  if (!s.ok()) {
    if (sqlite3_get_autocommit(write_db) == 0) {
      StepDone(write_db, rollback.get(), "ROLLBACK").IgnoreError();
    }
    FailBatch(batch, s);
    return;
  }
  {
    absl::MutexLock l(&mu);
    ++stats.commits;
    stats.served_rows += batch.served_rows;
    stats.feedback_rows += batch.feedback_rows;
    stats.last_commit_ms = ms;
    if (ms > stats.max_commit_ms) stats.max_commit_ms = ms;
  }
  for (Completion* c : batch.waiters) c->Finish(absl::OkStatus());
  for (Completion* c : batch.flushers) c->Finish(TakeBackgroundError());
  batch = Batch();
}

void EventLog::Impl::FailBatch(Batch& batch, const absl::Status& s) {
  {
    absl::MutexLock l(&mu);
    ++stats.errors;
    // Acknowledged work nobody waits on is lost: report it through the next Flush.
    if (batch.has_unwaited && background_error.ok()) background_error = s;
  }
  for (Completion* c : batch.waiters) c->Finish(s);
  for (Completion* c : batch.flushers) {
    absl::Status bg = TakeBackgroundError();
    c->Finish(bg.ok() ? s : bg);
  }
  batch = Batch();
}

// ---------------------------------------------------------------------------------------------------
// Public API.

EventLog::EventLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EventLog::~EventLog() {
  if (impl_ != nullptr) Close().IgnoreError();
}

absl::StatusOr<std::unique_ptr<EventLog>> EventLog::Open(const EventLogOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->synchronous = options.durability == EventLogOptions::Durability::kSynchronous;
  RETURN_IF_ERROR(impl->InitWriter());
  RETURN_IF_ERROR(impl->InitReader());
  Impl* raw = impl.get();
  raw->writer = std::thread([raw] { raw->WriterLoop(); });
  return std::unique_ptr<EventLog>(new EventLog(std::move(impl)));
}

absl::Status EventLog::AppendServed(std::vector<ServedEvent> events) {
  if (events.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(ValidateServed(events));
  const int64_t n = static_cast<int64_t>(events.size());
  if (n > impl_->options.max_queue_events) {
    return absl::InvalidArgumentError(absl::StrCat("events.size()=", n,
                                                   ": exceeds max_queue_events=",
                                                   impl_->options.max_queue_events));
  }
  Op op;
  op.kind = Op::Kind::kServed;
  op.served = std::move(events);
  op.num_events = n;
  if (!impl_->synchronous) return impl_->Enqueue(std::move(op));
  Completion done;
  op.completion = &done;
  RETURN_IF_ERROR(impl_->Enqueue(std::move(op)));
  done.done.WaitForNotification();
  return done.status;
}

absl::StatusOr<std::vector<FeedbackOutcome>> EventLog::AppendFeedback(
    std::vector<FeedbackEvent> events) {
  if (events.empty()) return std::vector<FeedbackOutcome>();
  RETURN_IF_ERROR(ValidateFeedback(events));
  const int64_t n = static_cast<int64_t>(events.size());
  if (n > impl_->options.max_queue_events) {
    return absl::InvalidArgumentError(absl::StrCat("events.size()=", n,
                                                   ": exceeds max_queue_events=",
                                                   impl_->options.max_queue_events));
  }
  Completion done;
  Op op;
  op.kind = Op::Kind::kFeedback;
  op.feedback = std::move(events);
  op.num_events = n;
  op.completion = &done;
  RETURN_IF_ERROR(impl_->Enqueue(std::move(op)));
  done.done.WaitForNotification();
  RETURN_IF_ERROR(done.status);
  return std::move(done.outcomes);
}

absl::Status EventLog::Flush() {
  Completion done;
  Op op;
  op.kind = Op::Kind::kFlush;
  op.completion = &done;
  RETURN_IF_ERROR(impl_->Enqueue(std::move(op)));
  done.done.WaitForNotification();
  return done.status;
}

absl::Status EventLog::Close() {
  absl::MutexLock l(&impl_->close_mu);
  if (impl_->closed) return impl_->close_status;
  absl::Status s = Flush();
  {
    absl::MutexLock q(&impl_->mu);
    impl_->stopping = true;
  }
  // The writer drains whatever was queued between the Flush and `stopping`, then exits.
  impl_->writer.join();
  absl::Status late = impl_->TakeBackgroundError();
  if (s.ok()) s = late;
  impl_->closed = true;
  impl_->close_status = s;
  return s;
}

EventLog::Stats EventLog::stats() const {
  absl::MutexLock l(&impl_->mu);
  Stats s = impl_->stats;
  s.queue_depth = impl_->queued_events;
  return s;
}

absl::StatusOr<std::vector<EventLog::JoinedRow>> EventLog::ReadJoined(
    const ReadOptions& options) const {
  if (options.min_served_id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_served_id=", options.min_served_id, ": must be >= 0"));
  }
  if (options.max_served_id < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_served_id=", options.max_served_id, ": must be >= -1 (-1 = all)"));
  }
  if (options.max_rows < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_rows=", options.max_rows, ": must be >= -1 (-1 = no limit)"));
  }
  absl::MutexLock l(&impl_->read_mu);
  sqlite3* db = impl_->read_db;
  sqlite3_stmt* st = impl_->read_joined.get();
  sqlite3_bind_int64(st, 1, options.min_served_id);
  sqlite3_bind_int64(st, 2, options.max_served_id < 0 ? std::numeric_limits<int64_t>::max()
                                                      : options.max_served_id);
  sqlite3_bind_int64(st, 3, options.max_rows);  // LIMIT -1 = no limit
  std::vector<JoinedRow> rows;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    JoinedRow r;
    r.served_id = sqlite3_column_int64(st, 0);
    r.request_id.assign(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                        sqlite3_column_bytes(st, 1));
    r.item_id = sqlite3_column_int64(st, 2);
    r.position = sqlite3_column_int(st, 3);
    r.propensity = sqlite3_column_double(st, 4);
    r.k = sqlite3_column_int(st, 5);
    r.m = sqlite3_column_int(st, 6);
    r.epsilon = sqlite3_column_double(st, 7);
    r.temperature = sqlite3_column_double(st, 8);
    if (const unsigned char* version = sqlite3_column_text(st, 9); version != nullptr) {
      r.model_version.assign(reinterpret_cast<const char*>(version), sqlite3_column_bytes(st, 9));
    }
    const void* blob = sqlite3_column_blob(st, 10);
    const int bytes = sqlite3_column_bytes(st, 10);
    if (bytes % static_cast<int>(sizeof(float)) != 0) {
      sqlite3_reset(st);
      return absl::DataLossError(absl::StrCat("served id=", r.served_id, ": context BLOB of ",
                                              bytes, " bytes is not a float32 array"));
    }
    r.context.resize(static_cast<size_t>(bytes) / sizeof(float));
    if (bytes > 0) std::memcpy(r.context.data(), blob, static_cast<size_t>(bytes));
    r.served_time_us = sqlite3_column_int64(st, 11);
    r.has_feedback = sqlite3_column_int(st, 12) != 0;
    if (r.has_feedback) {
      r.reward = sqlite3_column_double(st, 13);
      r.feedback_time_us = sqlite3_column_int64(st, 14);
    }
    rows.push_back(std::move(r));
  }
  absl::Status s = rc == SQLITE_DONE ? absl::OkStatus() : SqliteError(db, rc, "read joined log");
  sqlite3_reset(st);
  RETURN_IF_ERROR(s);
  return rows;
}

namespace {
absl::StatusOr<int64_t> QueryInt(sqlite3* db, sqlite3_stmt* st, absl::string_view what) {
  const int rc = sqlite3_step(st);
  absl::StatusOr<int64_t> out =
      rc == SQLITE_ROW ? absl::StatusOr<int64_t>(sqlite3_column_int64(st, 0))
                       : absl::StatusOr<int64_t>(SqliteError(db, rc, what));
  sqlite3_reset(st);
  return out;
}
}  // namespace

absl::StatusOr<int64_t> EventLog::MaxServedId() const {
  absl::MutexLock l(&impl_->read_mu);
  return QueryInt(impl_->read_db, impl_->max_served_id.get(), "max served id");
}

absl::StatusOr<int64_t> EventLog::CountFeedback() const {
  absl::MutexLock l(&impl_->read_mu);
  return QueryInt(impl_->read_db, impl_->count_feedback.get(), "count feedback");
}

}  // namespace optower
