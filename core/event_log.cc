#include "core/event_log.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/status_macros.h"

// Contexts are stored as the raw bytes of their float32 values; that is only portable across the hosts
// we build for (all little-endian).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "context BLOBs assume little-endian float32");

namespace optower {
namespace {

// 2: one `requests` row per Retrieve + one small `served` row per item (1: one wide `served` row per
// item). No migration: a file of another version is refused at Open (docs/EVENT_LOG.md).
constexpr int kSchemaVersion = 2;

constexpr const char* kMetaSql = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

// No AUTOINCREMENT: the log is append-only (nothing ever deletes rows), so max(rowid)+1 never hands
// out an id twice, and we save the sqlite_sequence update per insert. served.id is assigned by the
// writer (first_served + position in the slate's item list), so the items of one request are the
// contiguous id range [first_served, first_served + number of items) and the feedback lookup needs
// no index on served (see ExecuteFeedback).
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS requests (
  id            INTEGER PRIMARY KEY,
  request_id    TEXT    NOT NULL UNIQUE,
  k             INTEGER NOT NULL,
  m             INTEGER NOT NULL,
  epsilon       REAL    NOT NULL,
  temperature   REAL    NOT NULL,
  model_version TEXT    NOT NULL,
  context       BLOB    NOT NULL,
  time_us       INTEGER NOT NULL,
  first_served  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS served (
  id         INTEGER PRIMARY KEY,
  request    INTEGER NOT NULL,
  item_id    INTEGER NOT NULL,
  position   INTEGER NOT NULL,
  propensity REAL    NOT NULL CHECK (propensity > 0 AND propensity <= 1)
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
    // Failed writes that may pass (another connection's lock, disk full, I/O error, a read-only
    // remount, memory): the writer retries them (docs/EVENT_LOG.md "Write failures"). Not
    // ResourceExhausted, which the API reserves for a full queue.
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
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
// The same with the description built only on error (the per-row inserts run this per item).
template <typename What>
absl::Status StepDoneLazy(sqlite3* db, sqlite3_stmt* s, const What& what) {
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(s);
    return absl::OkStatus();
  }
  absl::Status status = SqliteError(db, rc, what());
  sqlite3_reset(s);
  return status;
}

// Runs a one-integer query (prepared) and resets it.
absl::StatusOr<int64_t> QueryInt(sqlite3* db, sqlite3_stmt* st, absl::string_view what) {
  const int rc = sqlite3_step(st);
  absl::StatusOr<int64_t> out =
      rc == SQLITE_ROW ? absl::StatusOr<int64_t>(sqlite3_column_int64(st, 0))
                       : absl::StatusOr<int64_t>(SqliteError(db, rc, what));
  sqlite3_reset(st);
  return out;
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

// Validation runs on the request path (AppendSlate per Retrieve), so it allocates nothing unless it
// fails: `at()` builds the message prefix naming the record only when there is an error to report.
template <typename At>
absl::Status CheckRequestFields(absl::string_view request_id, int32_t k, int32_t m, double epsilon,
                                double temperature, const std::vector<float>& context,
                                const At& at) {
  if (request_id.empty()) return absl::InvalidArgumentError(at() + "request_id must not be empty");
  if (k < 1) return absl::InvalidArgumentError(absl::StrCat(at(), "k=", k, ": must be >= 1"));
  if (m < k) return absl::InvalidArgumentError(absl::StrCat(at(), "m=", m, ": must be >= k=", k));
  // NaN fails both comparisons, so it is rejected too.
  if (!(epsilon >= 0.0 && epsilon <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "epsilon=", epsilon, ": must be in [0, 1]"));
  }
  if (!(temperature >= 0.0 && std::isfinite(temperature))) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "temperature=", temperature, ": must be finite and >= 0"));
  }
  for (size_t j = 0; j < context.size(); ++j) {
    if (!std::isfinite(context[j])) {
      return absl::InvalidArgumentError(
          absl::StrCat(at(), "context[", j, "]=", context[j], ": must be finite"));
    }
  }
  return absl::OkStatus();
}

template <typename At>
absl::Status CheckItemFields(int32_t position, double propensity, int32_t k, const At& at) {
  if (!(propensity > 0.0 && propensity <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "propensity=", propensity, ": must be in (0, 1]"));
  }
  if (position < 0 || position >= k) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "position=", position, ": must be in [0, k=", k, ")"));
  }
  return absl::OkStatus();
}

// Index of the first item whose item_id repeats an earlier one, or -1. Pairwise for slate-sized
// inputs (K <= 64: ~2k comparisons, no allocation); a hash set beyond that.
int64_t FirstRepeatedItem(const std::vector<ServedItem>& items) {
  constexpr size_t kPairwiseMax = 64;
  if (items.size() <= kPairwiseMax) {
    for (size_t i = 1; i < items.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (items[j].item_id == items[i].item_id) return static_cast<int64_t>(i);
      }
    }
    return -1;
  }
  absl::flat_hash_set<int64_t> seen;
  seen.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    if (!seen.insert(items[i].item_id).second) return static_cast<int64_t>(i);
  }
  return -1;
}

absl::Status ValidateSlate(const ServedSlate& s) {
  const auto at = [&s] { return absl::StrCat("slate (request_id=", Quoted(s.request_id), "): "); };
  RETURN_IF_ERROR(
      CheckRequestFields(s.request_id, s.k, s.m, s.epsilon, s.temperature, s.context, at));
  // The feedback lookup scans served ids [first_served, first_served + k): a slate never has more
  // than k items (Retrieve serves at most k).
  if (s.items.size() > static_cast<size_t>(s.k)) {
    return absl::InvalidArgumentError(
        absl::StrCat(at(), "items.size()=", s.items.size(), ": must be <= k=", s.k));
  }
  for (size_t j = 0; j < s.items.size(); ++j) {
    const ServedItem& item = s.items[j];
    RETURN_IF_ERROR(CheckItemFields(item.position, item.propensity, s.k, [&] {
      return absl::StrCat("slate (request_id=", Quoted(s.request_id), ") item ", j,
                          " (item_id=", item.item_id, "): ");
    }));
  }
  if (const int64_t j = FirstRepeatedItem(s.items); j >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(at(), "item ", j, " (item_id=",
                                                   s.items[static_cast<size_t>(j)].item_id,
                                                   "): this item_id appears twice in the slate"));
  }
  return absl::OkStatus();
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }
bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The schema-1 API: validates each event, then groups the events by request_id into slates (in
// order of first appearance) whose request-level fields must agree.
absl::StatusOr<std::vector<ServedSlate>> GroupServed(std::vector<ServedEvent> events) {
  for (size_t i = 0; i < events.size(); ++i) {
    const ServedEvent& e = events[i];
    const auto at = [&] {
      return absl::StrCat("served event ", i, " (request_id=", Quoted(e.request_id),
                          ", item_id=", e.item_id, "): ");
    };
    RETURN_IF_ERROR(
        CheckRequestFields(e.request_id, e.k, e.m, e.epsilon, e.temperature, e.context, at));
    RETURN_IF_ERROR(CheckItemFields(e.position, e.propensity, e.k, at));
  }
  std::vector<ServedSlate> slates;
  std::vector<size_t> first_event;  // per slate: the event it was started from
  absl::flat_hash_map<absl::string_view, size_t> slate_of;  // views into `events`, not moved yet
  for (size_t i = 0; i < events.size(); ++i) {
    ServedEvent& e = events[i];
    const auto [it, inserted] = slate_of.try_emplace(e.request_id, slates.size());
    if (inserted) {
      first_event.push_back(i);
      ServedSlate s;
      s.request_id = e.request_id;
      s.k = e.k;
      s.m = e.m;
      s.epsilon = e.epsilon;
      s.temperature = e.temperature;
      s.model_version = e.model_version;
      s.context = std::move(e.context);
      s.time_us = e.time_us;
      slates.push_back(std::move(s));
    } else {
      const ServedSlate& s = slates[it->second];
      const auto differs = [&](absl::string_view field, const auto& mine, const auto& theirs) {
        return absl::InvalidArgumentError(absl::StrCat(
            "served event ", i, " (request_id=", Quoted(e.request_id), ", item_id=", e.item_id,
            "): ", field, "=", mine, " differs from ", field, "=", theirs, " of served event ",
            first_event[it->second], " with the same request_id"));
      };
      if (e.k != s.k) return differs("k", e.k, s.k);
      if (e.m != s.m) return differs("m", e.m, s.m);
      if (!SameBits(e.epsilon, s.epsilon)) return differs("epsilon", e.epsilon, s.epsilon);
      if (!SameBits(e.temperature, s.temperature)) {
        return differs("temperature", e.temperature, s.temperature);
      }
      if (e.model_version != s.model_version) {
        return differs("model_version", Quoted(e.model_version), Quoted(s.model_version));
      }
      if (!SameBits(e.context, s.context)) {
        if (e.context.size() != s.context.size()) {
          return differs("context.size()", e.context.size(), s.context.size());
        }
        size_t j = 0;
        while (std::memcmp(&e.context[j], &s.context[j], sizeof(float)) == 0) ++j;
        return differs(absl::StrCat("context[", j, "]"), e.context[j], s.context[j]);
      }
      if (e.time_us != s.time_us) return differs("time_us", e.time_us, s.time_us);
    }
    slates[it->second].items.push_back({e.item_id, e.position, e.propensity});
  }
  for (size_t g = 0; g < slates.size(); ++g) {
    const ServedSlate& s = slates[g];
    if (s.items.size() > static_cast<size_t>(s.k)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "served events with request_id=", Quoted(s.request_id), ": ", s.items.size(),
          " items: must be <= k=", s.k));
    }
    if (const int64_t j = FirstRepeatedItem(s.items); j >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "served events with request_id=", Quoted(s.request_id), ", item_id=",
          s.items[static_cast<size_t>(j)].item_id,
          ": this (request_id, item_id) appears twice in the call"));
    }
  }
  return slates;
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

// What a blocked caller waits on. Shared by the caller and the writer: a caller whose deadline
// passes leaves (setting `abandoned`), and the writer may still finish it later. The writer fills
// status/outcomes and then notifies; the caller reads them only after the notification.
struct Completion {
  absl::Notification done;
  absl::Status status;
  std::vector<FeedbackOutcome> outcomes;
  // The caller stopped waiting: the writer skips the operation if it has not started on it.
  std::atomic<bool> abandoned{false};

  void Finish(absl::Status s) {
    status = std::move(s);
    done.Notify();
  }
};

struct Op {
  enum class Kind { kServed, kFeedback, kFlush };
  Kind kind = Kind::kFlush;
  std::vector<ServedSlate> served;   // one slate (AppendSlate) or several (AppendServed), atomic
  std::vector<FeedbackEvent> feedback;
  // Null when nobody waits: group-commit served ops, and group-commit feedback once answered.
  std::shared_ptr<Completion> completion;
  absl::Time enqueued;
  int64_t num_events = 0;
  int64_t bytes = 0;      // estimated heap held by this op (the max_queue_bytes count)
  bool finished = false;  // answered and released before its commit (failed on its own, skipped)
};

// Estimated bytes an operation holds until it is committed: its payload plus the objects around it
// (string and vector headers, the deque slot). Cheap: one pass over the slates, none over items.
int64_t OpBytes(const Op& op) {
  int64_t bytes = static_cast<int64_t>(sizeof(Op));
  for (const ServedSlate& s : op.served) {
    bytes += static_cast<int64_t>(sizeof(ServedSlate) + s.request_id.size() +
                                  s.model_version.size() + s.context.size() * sizeof(float) +
                                  s.items.size() * sizeof(ServedItem));
  }
  for (const FeedbackEvent& e : op.feedback) {
    bytes += static_cast<int64_t>(sizeof(FeedbackEvent) + e.request_id.size());
  }
  return bytes;
}

// A failed write of the batch (disk full, I/O error, read-only file, lock timeout): the batch is
// rolled back and retried. SqliteError maps exactly these SQLite codes to Unavailable.
bool IsWriteFault(const absl::Status& s) { return s.code() == absl::StatusCode::kUnavailable; }

// First delay between retries after a failed write, doubled per failure up to the maximum.
constexpr absl::Duration kMinRetryBackoff = absl::Milliseconds(10);
constexpr absl::Duration kMaxRetryBackoff = absl::Milliseconds(500);
// A group-commit batch is committed once it has been running this long (or max_commit_delay, if
// longer), even if more is queued: a long run of feedback lookups cannot hold back the served rows.
constexpr absl::Duration kMinRunPerCommit = absl::Milliseconds(25);

}  // namespace

struct EventLog::Impl {
  EventLogOptions options;
  bool synchronous = false;
  // Age of the oldest unwritten operation beyond which appends are refused (see WriteStatus).
  absl::Duration stale_after;

  // When the writer started the operation or commit it is running (unix nanos), 0 while it waits
  // for work or sleeps: how blocked callers tell a stalled disk from a busy writer.
  std::atomic<int64_t> busy_since_ns{0};

  // Writer side: touched only by Open (before the thread starts), the writer thread, and ~Impl.
  sqlite3* write_db = nullptr;
  Stmt begin, commit, rollback, savepoint, release, rollback_to;
  Stmt insert_request, insert_served, max_served, served_exists, insert_feedback;
  // served.id for the next item while a transaction is open: read once per batch at BEGIN (the write
  // lock is held from BEGIN IMMEDIATE to COMMIT, so nobody else can insert in between), advanced per
  // slate, restored when an op rolls back to its savepoint.
  int64_t next_served_id = 0;

  // Reader side.
  mutable absl::Mutex read_mu;
  sqlite3* read_db ABSL_GUARDED_BY(read_mu) = nullptr;
  Stmt read_joined ABSL_GUARDED_BY(read_mu);
  Stmt max_served_id ABSL_GUARDED_BY(read_mu);
  Stmt count_feedback ABSL_GUARDED_BY(read_mu);

  // Queue and counters.
  mutable absl::Mutex mu;
  std::deque<Op> queue ABSL_GUARDED_BY(mu);
  int64_t queued_events ABSL_GUARDED_BY(mu) = 0;  // in `queue` (Stats::queue_depth)
  // Not yet committed: queued + held by the writer. The back-pressure limits apply to these.
  int64_t pending_events ABSL_GUARDED_BY(mu) = 0;
  int64_t pending_bytes ABSL_GUARDED_BY(mu) = 0;
  int64_t pending_feedback_events ABSL_GUARDED_BY(mu) = 0;
  int64_t pending_feedback_bytes ABSL_GUARDED_BY(mu) = 0;
  // Enqueue time of the oldest operation the writer holds (InfiniteFuture when none).
  absl::Time oldest_held ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
  // Since the first failed write after the last successful commit (InfiniteFuture when writing).
  absl::Time failing_since ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
  absl::Status last_fault ABSL_GUARDED_BY(mu);
  // Queued ops somebody blocks on (Flush, feedback, synchronous appends): the writer stops waiting
  // for the batch deadline as soon as there is one. Fire-and-forget appends do not count, so they
  // never wake the writer while it has an open batch.
  int64_t waited_ops ABSL_GUARDED_BY(mu) = 0;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  absl::Status background_error ABSL_GUARDED_BY(mu);
  Stats stats ABSL_GUARDED_BY(mu);

  absl::Mutex close_mu;
  bool closed ABSL_GUARDED_BY(close_mu) = false;
  absl::Status close_status ABSL_GUARDED_BY(close_mu);
  std::thread writer;

  // One open transaction of the writer: the first `executed` ops the writer holds ran in it.
  struct Batch {
    bool open = false;
    absl::Time opened;
    absl::Time deadline;
    size_t executed = 0;
    int64_t events = 0;
    int64_t served_rows = 0;
    int64_t feedback_rows = 0;
  };

  ~Impl() {
    insert_request.reset();
    max_served.reset();
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

  // Unavailable once the oldest unwritten operation (held by the writer or queued) is older than
  // stale_after: the writer fails or stalls. OK otherwise.
  absl::Status StaleStatus(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    absl::Time oldest = oldest_held;
    if (!queue.empty()) oldest = std::min(oldest, queue.front().enqueued);
    if (oldest == absl::InfiniteFuture() || now - oldest <= stale_after) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(
        "event log cannot write: an acknowledged operation has waited ",
        absl::FormatDuration(absl::Trunc(now - oldest, absl::Milliseconds(1))),
        " for its commit (limit ", synchronous ? "" : "max_commit_delay + ",
        "write_failure_window = ", absl::FormatDuration(stale_after), "); ",
        failing_since == absl::InfiniteFuture()
            ? (!WriterBusyFor(now, std::min(options.writer_stall_timeout,
                                            options.write_failure_window))
                   ? absl::StrCat("the writer is behind: ", pending_events, " events (",
                                  pending_bytes, " bytes) not yet written")
                   : std::string("the writer is stalled (disk or lock)"))
            : absl::StrCat("writes fail since ",
                           absl::FormatDuration(absl::Trunc(now - failing_since,
                                                            absl::Milliseconds(1))),
                           " ago: ", last_fault.message())));
  }

  // Queues `op` (op.enqueued and op.bytes set by the caller). Wakes the writer only if it waits for
  // work (no open batch and nothing queued) or if op is waited on (see WriterLoop): absl::Mutex
  // evaluates the writer's wait condition when we unlock, and wakes it only when the condition holds.
  absl::Status Enqueue(Op op) {
    const bool feedback = op.kind == Op::Kind::kFeedback;
    absl::MutexLock l(&mu);
    if (stopping) return absl::FailedPreconditionError("event log is closed: path=" + options.path);
    RETURN_IF_ERROR(StaleStatus(op.enqueued));
    if (op.completion != nullptr) RETURN_IF_ERROR(StallStatus(op.enqueued));
    if (op.kind != Op::Kind::kFlush) {
      // Feedback gets half of each limit, so a flood of it leaves room for served rows.
      const int64_t max_events = feedback ? std::max<int64_t>(1, options.max_queue_events / 2)
                                          : options.max_queue_events;
      const int64_t max_bytes = feedback ? options.max_queue_bytes / 2 : options.max_queue_bytes;
      const int64_t events = feedback ? pending_feedback_events : pending_events;
      const int64_t bytes = feedback ? pending_feedback_bytes : pending_bytes;
      const char* what = feedback ? "feedback " : "";
      if (pending_events + op.num_events > options.max_queue_events ||
          events + op.num_events > max_events) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "event log queue full: ", events, " ", what, "events not yet written + ",
            op.num_events, " would exceed ", feedback ? "half of " : "",
            "max_queue_events=", options.max_queue_events));
      }
      if (pending_bytes + op.bytes > options.max_queue_bytes || bytes + op.bytes > max_bytes) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "event log queue full: ", bytes, " bytes of ", what, "events not yet written + ",
            op.bytes, " would exceed ", feedback ? "half of " : "",
            "max_queue_bytes=", options.max_queue_bytes));
      }
    }
    queued_events += op.num_events;
    pending_events += op.num_events;
    pending_bytes += op.bytes;
    if (feedback) {
      pending_feedback_events += op.num_events;
      pending_feedback_bytes += op.bytes;
    }
    if (op.completion != nullptr) ++waited_ops;
    queue.push_back(std::move(op));
    return absl::OkStatus();
  }

  // Returns what `op` held to the back-pressure counts.
  void Release(const Op& op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    pending_events -= op.num_events;
    pending_bytes -= op.bytes;
    if (op.kind == Op::Kind::kFeedback) {
      pending_feedback_events -= op.num_events;
      pending_feedback_bytes -= op.bytes;
    }
  }

  void MarkBusy() {
    busy_since_ns.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
  }
  void MarkIdle() { busy_since_ns.store(0, std::memory_order_relaxed); }
  // Whether the writer has been inside one operation or commit for longer than `limit`.
  bool WriterBusyFor(absl::Time now, absl::Duration limit) const {
    const int64_t since = busy_since_ns.load(std::memory_order_relaxed);
    return since != 0 && now - absl::FromUnixNanos(since) > limit;
  }
  // Unavailable while the writer has been inside one operation or commit for longer than
  // writer_stall_timeout.
  absl::Status StallStatus(absl::Time now) const {
    if (!WriterBusyFor(now, options.writer_stall_timeout)) return absl::OkStatus();
    const absl::Duration busy =
        now - absl::FromUnixNanos(busy_since_ns.load(std::memory_order_relaxed));
    return absl::UnavailableError(absl::StrCat(
        "event log writer stalled: one write has taken ",
        absl::FormatDuration(absl::Trunc(busy, absl::Milliseconds(1))),
        " so far (writer_stall_timeout=", absl::FormatDuration(options.writer_stall_timeout), ")"));
  }

  // Waits for a queued op's completion: at most until `deadline` (DeadlineExceeded), until the op
  // is older than stale_after (Unavailable, with WriteStatus's reason), and until the writer has
  // been stuck in one write for writer_stall_timeout (Unavailable). OK once it finished (its status
  // is then in c.status).
  absl::Status Wait(Completion& c, absl::Time enqueued, absl::Time deadline) {
    const absl::Time give_up = enqueued + stale_after;
    // Looks at the writer every half stall timeout; the common case is answered in the first slice.
    const absl::Duration slice = options.writer_stall_timeout / 2;
    for (;;) {
      const absl::Time until = std::min({deadline, give_up, absl::Now() + slice});
      if (c.done.WaitForNotificationWithDeadline(until)) return absl::OkStatus();
      const absl::Time now = absl::Now();
      if (now >= deadline || now >= give_up) break;
      if (absl::Status stalled = StallStatus(now); !stalled.ok()) {
        c.abandoned.store(true, std::memory_order_relaxed);
        return stalled;
      }
    }
    c.abandoned.store(true, std::memory_order_relaxed);
    if (deadline <= give_up) {
      return absl::DeadlineExceededError(
          "deadline passed while waiting for the event log writer (the operation may still be "
          "written)");
    }
    absl::MutexLock l(&mu);
    absl::Status stale = StaleStatus(absl::Now());
    return stale.ok() ? absl::UnavailableError(absl::StrCat(
                            "event log writer did not answer within write_failure_window=",
                            absl::FormatDuration(options.write_failure_window)))
                      : stale;
  }

  // Counts a failed op and reports it: to its waiter, or (fire-and-forget) through the next Flush,
  // except a duplicate request_id of a group-commit slate, which is only counted (docs/EVENT_LOG.md).
  // The count is updated before the waiter wakes, so the caller sees it in stats().
  void FailOp(Op& op, const absl::Status& s) {
    {
      absl::MutexLock l(&mu);
      ++stats.errors;
      Release(op);
      if (op.completion == nullptr) {
        if (op.kind == Op::Kind::kServed && s.code() == absl::StatusCode::kAlreadyExists) {
          ++stats.duplicate_requests;
        } else if (background_error.ok()) {
          background_error = s;
        }
      }
    }
    op.finished = true;
    if (op.completion != nullptr) op.completion->Finish(s);
  }
  absl::Status TakeBackgroundError() {
    absl::MutexLock l(&mu);
    return std::exchange(background_error, absl::OkStatus());
  }

  // Queues one atomic served op of `items` items in total; waits for its commit in kSynchronous mode.
  absl::Status EnqueueServed(std::vector<ServedSlate> slates, int64_t items, absl::Time deadline);
  // Single-call limits: InvalidArgument for a call that could never fit.
  absl::Status CheckFits(const Op& op) const;

  void WriterLoop();
  // Runs one op in the batch (opening it if needed). Returns the write fault that lost the batch,
  // else OK (an op that failed on its own was answered and finished).
  absl::Status Execute(Op& op, Batch& batch);
  absl::Status ExecuteServed(const std::vector<ServedSlate>& slates);
  absl::Status ExecuteFeedback(const std::vector<FeedbackEvent>& events,
                               std::vector<FeedbackOutcome>& outcomes, int64_t& accepted);
  absl::Status InSavepoint(const std::function<absl::Status()>& body);
  // Commits the batch and answers and drops its ops from `held`. Returns the COMMIT's error.
  absl::Status Commit(std::deque<Op>& held, Batch& batch);
  // After a write fault: rolls back, answers every op that someone waits on and that was not
  // answered yet with Unavailable, and keeps the acknowledged ones, in order, for the retry.
  void HandleFault(std::deque<Op>& held, Batch& batch, const absl::Status& fault);
  // Close gave up: acknowledged ops that were never written are counted as lost.
  void DropHeld(std::deque<Op>& held, const absl::Status& fault);
};

absl::Status EventLog::Impl::InitWriter() {
  ASSIGN_OR_RETURN(write_db, OpenConnection(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                            options.busy_timeout));
  // SQLite opens a file it cannot write read-only instead of failing; every write would then fail.
  if (sqlite3_db_readonly(write_db, "main") == 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "path='", options.path, "': the event log file is read-only (check its permissions and "
        "that its folder is writable)"));
  }
  ASSIGN_OR_RETURN(std::string mode, QueryText(write_db, "PRAGMA journal_mode=WAL"));
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("path='", options.path, "': cannot enable WAL, journal_mode=", mode));
  }
  RETURN_IF_ERROR(Exec(write_db, synchronous ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));

  RETURN_IF_ERROR(Exec(write_db, "BEGIN IMMEDIATE"));
  // The version is checked before any other table is created: CREATE ... IF NOT EXISTS would skip
  // a table of another version's layout and fail (or succeed wrongly) later.
  absl::Status s = Exec(write_db, kMetaSql);
  std::string version;
  if (s.ok()) {
    absl::StatusOr<Stmt> q = Prepare(write_db, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (!q.ok()) {
      s = q.status();
    } else {
      const int rc = sqlite3_step(q->get());
      if (rc == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(q->get(), 0);
        version = text == nullptr ? "" : reinterpret_cast<const char*>(text);
        if (version != std::to_string(kSchemaVersion)) {
          s = absl::FailedPreconditionError(absl::StrCat(
              "path='", options.path, "': schema_version=", version, ", this build reads ",
              kSchemaVersion, " (no migration: start a new log file)"));
        }
      } else if (rc != SQLITE_DONE) {
        s = SqliteError(write_db, rc, "read schema_version");
      }
    }
  }
  if (s.ok()) s = Exec(write_db, kSchemaSql);
  if (s.ok() && version.empty()) {
    s = Exec(write_db,
             absl::StrCat("INSERT INTO meta(key, value) VALUES ('schema_version', '",
                          kSchemaVersion, "')")
                 .c_str());
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
  ASSIGN_OR_RETURN(insert_request,
                   Prepare(write_db,
                           "INSERT INTO requests(request_id, k, m, epsilon, temperature, "
                           "model_version, context, time_us, first_served) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  ASSIGN_OR_RETURN(insert_served,
                   Prepare(write_db,
                           "INSERT INTO served(id, request, item_id, position, propensity) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)"));
  ASSIGN_OR_RETURN(max_served, Prepare(write_db, "SELECT COALESCE(MAX(id), 0) FROM served"));
  // The request by its UNIQUE request_id, then its items by served.id range (they are contiguous
  // from first_served and there are at most k of them): two B-tree probes and no index on served.
  // `s.request = r.id` keeps the range from matching another request's items when a slate had
  // fewer than k items.
  ASSIGN_OR_RETURN(served_exists,
                   Prepare(write_db,
                           "SELECT 1 FROM requests AS r, served AS s "
                           "WHERE r.request_id = ?1 AND s.id >= r.first_served "
                           "AND s.id < r.first_served + r.k AND s.request = r.id "
                           "AND s.item_id = ?2 LIMIT 1"));
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
  // r.id (column 15) lets ReadJoined copy the request-level fields once per request, not per item.
  ASSIGN_OR_RETURN(
      read_joined,
      Prepare(read_db,
              "SELECT s.id, r.request_id, s.item_id, s.position, s.propensity, r.k, r.m, r.epsilon, "
              "r.temperature, r.model_version, r.context, r.time_us, "
              "f.request_id IS NOT NULL, f.reward, f.time_us, r.id "
              "FROM served AS s JOIN requests AS r ON r.id = s.request "
              "LEFT JOIN feedback AS f ON f.request_id = r.request_id AND f.item_id = s.item_id "
              "WHERE s.id >= ?1 AND s.id <= ?2 ORDER BY s.id LIMIT ?3"));
  ASSIGN_OR_RETURN(max_served_id, Prepare(read_db, "SELECT COALESCE(MAX(id), 0) FROM served"));
  ASSIGN_OR_RETURN(count_feedback, Prepare(read_db, "SELECT COUNT(*) FROM feedback"));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Writer thread.

void EventLog::Impl::WriterLoop() {
  Batch batch;
  // Taken from the queue and not yet committed or answered, in queue order: held[0, executed) ran in
  // the open transaction, the rest is still to run. After a failed write it holds the acknowledged
  // ops that are retried first, before anything queued later.
  std::deque<Op> held;
  absl::Duration backoff = absl::ZeroDuration();
  absl::Time give_up_at = absl::InfiniteFuture();  // set when Close waits for a failing writer
  for (;;) {
    bool stop = false;
    {
      absl::MutexLock l(&mu);
      const bool to_run = batch.executed < held.size();
      // Idle (no open batch, nothing held): sleep until something is queued. This is the one
      // wake-up per batch that a fire-and-forget append can cause.
      auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return !queue.empty() || stopping; };
      if (!batch.open && !to_run) mu.Await(absl::Condition(&has_work));
      // kGroupCommit: the batch (open, or about to be opened by queue.front()) is due at its
      // deadline. Until then appends just pile up in the queue, without waking us, unless somebody
      // waits for an answer (Flush, feedback), the batch would be full, or Close is stopping us.
      // kSynchronous: every op is waited on, so we never wait here; whatever queued while we
      // were committing shares the next commit. Held ops (a retry) run at once.
      if (!synchronous && !stopping && waited_ops == 0 && !to_run &&
          (batch.open || !queue.empty())) {
        const absl::Time deadline =
            batch.open ? batch.deadline : queue.front().enqueued + options.max_commit_delay;
        const int64_t room = options.max_batch_events - batch.events;  // >= 1: full batches commit
        auto due = [this, room]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
          return stopping || waited_ops > 0 || queued_events >= room;
        };
        mu.AwaitWithDeadline(absl::Condition(&due), deadline);
      }
      // Everything queued, in FIFO order; one O(1) swap when nothing is held (the common case).
      if (held.empty()) {
        held.swap(queue);
      } else {
        for (Op& op : queue) held.push_back(std::move(op));
        queue.clear();
      }
      if (oldest_held == absl::InfiniteFuture() && !held.empty()) {
        oldest_held = held.front().enqueued;
      }
      queued_events = 0;
      waited_ops = 0;
      stats.queue_depth = 0;
      stop = stopping;
    }
    absl::Status fault;
    while (batch.executed < held.size()) {
      Op& op = held[batch.executed];
      MarkBusy();
      fault = Execute(op, batch);
      if (!fault.ok()) break;
      ++batch.executed;
      const bool flush = op.kind == Op::Kind::kFlush && !op.finished;  // in an open batch
      // A Flush commits what precedes it; a full batch commits and the rest opens a new one; a
      // batch that has run for a whole commit delay commits before it runs more.
      if (batch.open &&
          (flush || batch.events >= options.max_batch_events ||
           (!synchronous &&
            absl::Now() - batch.opened >= std::max(options.max_commit_delay, kMinRunPerCommit)))) {
        MarkBusy();
        fault = Commit(held, batch);
        if (!fault.ok()) break;
      }
    }
    // kSynchronous: commit now, so everyone taken shares this commit (and its fsync) and nobody
    // waits for a timer. kGroupCommit: commit at the deadline; before it (we were woken for a
    // feedback op) the batch stays open and we go back to sleep until the deadline.
    if (fault.ok() && batch.open && (synchronous || stop || absl::Now() >= batch.deadline)) {
      MarkBusy();
      fault = Commit(held, batch);
    }
    MarkIdle();
    if (!fault.ok()) {
      HandleFault(held, batch, fault);
      backoff = std::min(std::max(2 * backoff, kMinRetryBackoff), kMaxRetryBackoff);
    } else {
      backoff = absl::ZeroDuration();
      // Every op ran and none is in an open batch: all were answered (Flushes with nothing to
      // commit, ops that failed on their own or were abandoned), so nothing is unwritten.
      if (!batch.open && !held.empty()) {
        held.clear();
        batch.executed = 0;
        absl::MutexLock l(&mu);
        oldest_held = absl::InfiniteFuture();
      }
    }
    if (stop) {
      if (held.empty() && !batch.open) return;  // Close set `stopping` after its Flush
      if (!fault.ok()) {
        if (give_up_at == absl::InfiniteFuture()) {
          give_up_at = absl::Now() + options.write_failure_window;
        }
        if (absl::Now() >= give_up_at) {
          DropHeld(held, fault);
          return;
        }
      }
    }
    // After a failed write, wait before retrying; appends keep queueing (bounded by the limits).
    if (!fault.ok()) absl::SleepFor(backoff);
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

absl::Status EventLog::Impl::ExecuteServed(const std::vector<ServedSlate>& slates) {
  for (const ServedSlate& slate : slates) {
    const int64_t first_served = next_served_id;
    sqlite3_stmt* rq = insert_request.get();
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
    RETURN_IF_ERROR(StepDoneLazy(write_db, rq, [&] {
      return absl::StrCat("insert request request_id=", Quoted(slate.request_id));
    }));
    const int64_t request = sqlite3_last_insert_rowid(write_db);

    sqlite3_stmt* st = insert_served.get();
    for (size_t j = 0; j < slate.items.size(); ++j) {
      const ServedItem& item = slate.items[j];
      sqlite3_bind_int64(st, 1, first_served + static_cast<int64_t>(j));
      sqlite3_bind_int64(st, 2, request);
      sqlite3_bind_int64(st, 3, item.item_id);
      sqlite3_bind_int(st, 4, item.position);
      sqlite3_bind_double(st, 5, item.propensity);
      RETURN_IF_ERROR(StepDoneLazy(write_db, st, [&] {
        return absl::StrCat("insert served request_id=", Quoted(slate.request_id),
                            " item_id=", item.item_id);
      }));
    }
    next_served_id = first_served + static_cast<int64_t>(slate.items.size());
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
    RETURN_IF_ERROR(StepDoneLazy(write_db, st, [&] {
      return absl::StrCat("insert feedback request_id=", Quoted(e.request_id),
                          " item_id=", e.item_id);
    }));
    if (sqlite3_changes(write_db) == 1) {
      outcomes.push_back(FeedbackOutcome::kAccepted);
      ++accepted;
    } else {
      outcomes.push_back(FeedbackOutcome::kDuplicate);
    }
  }
  return absl::OkStatus();
}

absl::Status EventLog::Impl::Execute(Op& op, Batch& batch) {
  if (op.kind == Op::Kind::kFlush) {
    // In an open batch it is answered by the commit that follows; else nothing precedes it.
    if (!batch.open) {
      op.finished = true;
      op.completion->Finish(TakeBackgroundError());
    }
    return absl::OkStatus();
  }
  if (op.completion != nullptr && op.completion->abandoned.load(std::memory_order_relaxed)) {
    // The caller left (its deadline passed) before we started: it was told so; skip the op.
    {
      absl::MutexLock l(&mu);
      Release(op);
    }
    op.finished = true;
    return absl::OkStatus();
  }
  if (!batch.open) {
    // BEGIN IMMEDIATE waits up to busy_timeout for another connection's write lock; any failure
    // here is a write fault (nothing was written).
    RETURN_IF_ERROR(StepDone(write_db, begin.get(), "BEGIN IMMEDIATE"));
    absl::StatusOr<int64_t> max_id = QueryInt(write_db, max_served.get(), "max served id");
    if (!max_id.ok()) return absl::UnavailableError(max_id.status().message());
    next_served_id = *max_id + 1;
    batch.open = true;
    batch.opened = absl::Now();
    batch.deadline = op.enqueued + (synchronous ? absl::ZeroDuration() : options.max_commit_delay);
  }

  absl::Status s;
  int64_t accepted = 0;
  std::vector<FeedbackOutcome> outcomes;
  if (op.kind == Op::Kind::kServed) {
    const int64_t served_id_before = next_served_id;
    s = InSavepoint([&] { return ExecuteServed(op.served); });
    if (!s.ok()) next_served_id = served_id_before;  // the op's rows were rolled back
  } else {
    s = InSavepoint([&] { return ExecuteFeedback(op.feedback, outcomes, accepted); });
  }

  if (sqlite3_get_autocommit(write_db) != 0) {
    // SQLite rolled the whole transaction back (I/O error, disk full...): the batch is gone.
    return s.ok() || !IsWriteFault(s)
               ? absl::UnavailableError(absl::StrCat("event log transaction ended unexpectedly",
                                                     s.ok() ? "" : ": ", s.message()))
               : s;
  }
  if (!s.ok()) {
    if (IsWriteFault(s)) return s;  // the batch is rolled back and retried
    FailOp(op, s);                  // this op rolled back to its savepoint; the batch goes on
    return absl::OkStatus();
  }

  batch.events += op.num_events;
  if (op.kind == Op::Kind::kServed) {
    batch.served_rows += op.num_events;
  } else {
    batch.feedback_rows += accepted;
  }
  if (op.completion != nullptr) {
    op.completion->outcomes = std::move(outcomes);
    if (!synchronous) {  // group-commit feedback: answered once decided, committed later
      op.completion->Finish(absl::OkStatus());
      op.completion.reset();
    }
  }
  return absl::OkStatus();
}

absl::Status EventLog::Impl::Commit(std::deque<Op>& held, Batch& batch) {
  const absl::Time t0 = absl::Now();
  RETURN_IF_ERROR(StepDone(write_db, commit.get(), "COMMIT"));
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  std::vector<std::shared_ptr<Completion>> waiters, flushers;
  {
    absl::MutexLock l(&mu);
    ++stats.commits;
    stats.served_rows += batch.served_rows;
    stats.feedback_rows += batch.feedback_rows;
    stats.last_commit_ms = ms;
    if (ms > stats.max_commit_ms) stats.max_commit_ms = ms;
    for (size_t i = 0; i < batch.executed; ++i) {
      Op& op = held[i];
      if (op.finished) continue;
      Release(op);
      if (op.completion == nullptr) continue;
      (op.kind == Op::Kind::kFlush ? flushers : waiters).push_back(std::move(op.completion));
    }
    failing_since = absl::InfiniteFuture();
    last_fault = absl::OkStatus();
    oldest_held = held.size() > batch.executed ? held[batch.executed].enqueued
                                               : absl::InfiniteFuture();
  }
  held.erase(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(batch.executed));
  batch = Batch();
  for (const auto& c : waiters) c->Finish(absl::OkStatus());
  for (const auto& c : flushers) c->Finish(TakeBackgroundError());
  return absl::OkStatus();
}

void EventLog::Impl::HandleFault(std::deque<Op>& held, Batch& batch, const absl::Status& fault) {
  if (sqlite3_get_autocommit(write_db) == 0) {
    StepDone(write_db, rollback.get(), "ROLLBACK").IgnoreError();
  }
  batch = Batch();
  const absl::Status status = absl::UnavailableError(
      absl::StrCat("event log write failed (retrying; acknowledged events are kept): ",
                   fault.message()));
  std::deque<Op> kept;
  std::vector<std::shared_ptr<Completion>> failed;
  {
    absl::MutexLock l(&mu);
    for (Op& op : held) {
      if (op.finished) continue;
      if (op.completion != nullptr) {  // waited on and not answered yet: tell the caller now
        Release(op);
        failed.push_back(std::move(op.completion));
        continue;
      }
      kept.push_back(std::move(op));
    }
    ++stats.errors;
    ++stats.write_faults;
    const absl::Time now = absl::Now();
    if (failing_since == absl::InfiniteFuture()) failing_since = now;
    last_fault = fault;
    oldest_held = kept.empty() ? absl::InfiniteFuture() : kept.front().enqueued;
  }
  held.swap(kept);
  for (const auto& c : failed) c->Finish(status);
}

void EventLog::Impl::DropHeld(std::deque<Op>& held, const absl::Status& fault) {
  int64_t lost = 0;
  {
    absl::MutexLock l(&mu);
    for (Op& op : held) {
      if (op.finished) continue;
      lost += op.num_events;
      Release(op);
    }
    stats.lost_events += lost;
    oldest_held = absl::InfiniteFuture();
    background_error = absl::DataLossError(absl::StrCat(
        "event log closed with ", lost, " acknowledged events not written after retrying for ",
        absl::FormatDuration(options.write_failure_window), ": ", fault.message()));
  }
  held.clear();
}

// ---------------------------------------------------------------------------------------------------
// Public API.

EventLog::EventLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EventLog::~EventLog() {
  if (impl_ != nullptr) Close().IgnoreError();
}

absl::StatusOr<std::unique_ptr<EventLog>> EventLog::Open(const EventLogOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->synchronous = options.durability == EventLogOptions::Durability::kSynchronous;
  impl->stale_after = (impl->synchronous ? absl::ZeroDuration() : options.max_commit_delay) +
                      options.write_failure_window;
  RETURN_IF_ERROR(impl->InitWriter());
  RETURN_IF_ERROR(impl->InitReader());
  Impl* raw = impl.get();
  raw->writer = std::thread([raw] { raw->WriterLoop(); });
  return std::unique_ptr<EventLog>(new EventLog(std::move(impl)));
}

absl::Status EventLog::Impl::CheckFits(const Op& op) const {
  const bool feedback = op.kind == Op::Kind::kFeedback;
  const int64_t max_events = feedback ? std::max<int64_t>(1, options.max_queue_events / 2)
                                      : options.max_queue_events;
  const int64_t max_bytes = feedback ? options.max_queue_bytes / 2 : options.max_queue_bytes;
  const char* what = feedback ? "feedback events" : "served items";
  const char* share = feedback ? "half of " : "";
  if (op.num_events > max_events) {
    return absl::InvalidArgumentError(absl::StrCat(what, "=", op.num_events, ": exceeds ", share,
                                                   "max_queue_events=", options.max_queue_events));
  }
  if (op.bytes > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " of ", op.bytes, " bytes: exceed ", share,
                                                   "max_queue_bytes=", options.max_queue_bytes));
  }
  return absl::OkStatus();
}

absl::Status EventLog::Impl::EnqueueServed(std::vector<ServedSlate> slates, int64_t items,
                                           absl::Time deadline) {
  Op op;
  op.kind = Op::Kind::kServed;
  op.served = std::move(slates);
  op.num_events = items;
  op.bytes = OpBytes(op);
  RETURN_IF_ERROR(CheckFits(op));
  op.enqueued = absl::Now();  // outside the lock
  if (!synchronous) return Enqueue(std::move(op));
  auto done = std::make_shared<Completion>();
  op.completion = done;
  const absl::Time enqueued = op.enqueued;
  RETURN_IF_ERROR(Enqueue(std::move(op)));
  RETURN_IF_ERROR(Wait(*done, enqueued, deadline));
  return done->status;
}

absl::Status EventLog::AppendSlate(ServedSlate slate, absl::Time deadline) {
  RETURN_IF_ERROR(ValidateSlate(slate));
  if (slate.items.empty()) return absl::OkStatus();  // as AppendServed({}): nothing to log
  const int64_t items = static_cast<int64_t>(slate.items.size());
  std::vector<ServedSlate> slates;
  slates.push_back(std::move(slate));
  return impl_->EnqueueServed(std::move(slates), items, deadline);
}

absl::Status EventLog::AppendServed(std::vector<ServedEvent> events, absl::Time deadline) {
  if (events.empty()) return absl::OkStatus();
  const int64_t items = static_cast<int64_t>(events.size());
  ASSIGN_OR_RETURN(std::vector<ServedSlate> slates, GroupServed(std::move(events)));
  return impl_->EnqueueServed(std::move(slates), items, deadline);
}

absl::StatusOr<std::vector<FeedbackOutcome>> EventLog::AppendFeedback(
    std::vector<FeedbackEvent> events, absl::Time deadline) {
  if (events.empty()) return std::vector<FeedbackOutcome>();
  RETURN_IF_ERROR(ValidateFeedback(events));
  auto done = std::make_shared<Completion>();
  Op op;
  op.kind = Op::Kind::kFeedback;
  op.num_events = static_cast<int64_t>(events.size());
  op.feedback = std::move(events);
  op.bytes = OpBytes(op);
  RETURN_IF_ERROR(impl_->CheckFits(op));
  op.completion = done;
  op.enqueued = absl::Now();
  const absl::Time enqueued = op.enqueued;
  RETURN_IF_ERROR(impl_->Enqueue(std::move(op)));
  RETURN_IF_ERROR(impl_->Wait(*done, enqueued, deadline));
  RETURN_IF_ERROR(done->status);
  return std::move(done->outcomes);
}

absl::Status EventLog::Flush(absl::Time deadline) {
  auto done = std::make_shared<Completion>();
  Op op;
  op.kind = Op::Kind::kFlush;
  op.completion = done;
  op.enqueued = absl::Now();
  const absl::Time enqueued = op.enqueued;
  RETURN_IF_ERROR(impl_->Enqueue(std::move(op)));
  RETURN_IF_ERROR(impl_->Wait(*done, enqueued, deadline));
  return done->status;
}

absl::Status EventLog::Close() {
  absl::MutexLock l(&impl_->close_mu);
  if (impl_->closed) return impl_->close_status;
  absl::Status s = Flush();
  {
    absl::MutexLock q(&impl_->mu);
    impl_->stopping = true;
  }
  // The writer drains whatever was queued between the Flush and `stopping` (retrying failed writes
  // for up to write_failure_window), then exits.
  impl_->writer.join();
  absl::Status late = impl_->TakeBackgroundError();
  if (s.ok() || late.code() == absl::StatusCode::kDataLoss) s = late;
  impl_->closed = true;
  impl_->close_status = s;
  return s;
}

absl::Status EventLog::WriteStatus() const {
  absl::MutexLock l(&impl_->mu);
  return impl_->StaleStatus(absl::Now());
}

EventLog::Stats EventLog::stats() const {
  absl::MutexLock l(&impl_->mu);
  Stats s = impl_->stats;
  s.queue_depth = impl_->queued_events;
  s.pending_events = impl_->pending_events;
  s.pending_bytes = impl_->pending_bytes;
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
  int64_t last_request = 0;  // requests.id of rows.back(); ids are > 0
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    JoinedRow r;
    r.served_id = sqlite3_column_int64(st, 0);
    r.item_id = sqlite3_column_int64(st, 2);
    r.position = sqlite3_column_int(st, 3);
    r.propensity = sqlite3_column_double(st, 4);
    r.k = sqlite3_column_int(st, 5);
    r.m = sqlite3_column_int(st, 6);
    r.epsilon = sqlite3_column_double(st, 7);
    r.temperature = sqlite3_column_double(st, 8);
    const int64_t request = sqlite3_column_int64(st, 15);
    if (request == last_request && !rows.empty()) {
      // Items of one request are adjacent in served-id order: copy its strings and context from
      // the previous row instead of decoding them from SQLite again.
      const JoinedRow& prev = rows.back();
      r.request_id = prev.request_id;
      r.model_version = prev.model_version;
      r.context = prev.context;
    } else {
      r.request_id.assign(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                          sqlite3_column_bytes(st, 1));
      if (const unsigned char* version = sqlite3_column_text(st, 9); version != nullptr) {
        r.model_version.assign(reinterpret_cast<const char*>(version),
                               sqlite3_column_bytes(st, 9));
      }
      const void* blob = sqlite3_column_blob(st, 10);
      const int bytes = sqlite3_column_bytes(st, 10);
      if (bytes % static_cast<int>(sizeof(float)) != 0) {
        sqlite3_reset(st);
        return absl::DataLossError(absl::StrCat("requests id=", request, ": context BLOB of ",
                                                bytes, " bytes is not a float32 array"));
      }
      r.context.resize(static_cast<size_t>(bytes) / sizeof(float));
      if (bytes > 0) std::memcpy(r.context.data(), blob, static_cast<size_t>(bytes));
      last_request = request;
    }
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

absl::StatusOr<int64_t> EventLog::MaxServedId() const {
  absl::MutexLock l(&impl_->read_mu);
  return QueryInt(impl_->read_db, impl_->max_served_id.get(), "max served id");
}

absl::StatusOr<int64_t> EventLog::CountFeedback() const {
  absl::MutexLock l(&impl_->read_mu);
  return QueryInt(impl_->read_db, impl_->count_feedback.get(), "count feedback");
}

}  // namespace optower
