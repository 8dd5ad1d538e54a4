// EventLog: the durable log of served items and reward feedback (DESIGN §2 step 4, §6), as an
// interface. The server, the engine and the trainer hold an `EventLog*`; a backend implements it.
// Two backends implement it, both QueuedEventLogs (core/storage/queued_event_log.h): SQLite
// (core/storage/sqlite_event_log.h: SqliteEventLog::Open, the embedded default) and PostgreSQL
// (core/storage/postgres_event_log.h: PostgresEventLog::Open, for several processes sharing one log).
// Files, schemas, durability per mode, the join and the watermark: docs/EVENT_LOG.md.
//
// The contract every backend keeps (the tests in tests/event_log_test.cc state it):
// - Appends run in FIFO order through one writer, which commits them in groups: a burst of Retrieve
//   calls costs one commit per batch rather than per call. kGroupCommit acknowledges an append once
//   queued (committed within max_commit_delay); kSynchronous after the commit holding it.
// - Feedback is decided in log order: it sees the served rows of every append that returned before
//   it, committed or not. First write wins per (request_id, item_id).
// - Bounded memory (back-pressure), a write-failure window after which appends fail fast with
//   Unavailable (WriteStatus() says why, for health checks), and a writer stall timeout.
// - Reads see committed rows only, and never block the writer.
//
// Thread safety: every method is safe to call concurrently from any thread. Append*, Flush and
// Close block as described on each method; reads may serialise among themselves.
#ifndef OPTOWER_CORE_STORAGE_EVENT_LOG_H_
#define OPTOWER_CORE_STORAGE_EVENT_LOG_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace optower {

// One Retrieve's slate: the request-level fields once, then its items (EventLog::AppendSlate; in
// SQLite one `requests` row plus one small `served` row per item).
struct ServedItem {
  int64_t item_id = 0;     // unique within the slate
  int32_t position = 0;    // 0-based slot in the slate, in [0, k)
  // Single-draw pi_0(a|x) the sampler used, in (0, 1]. Stored bit-exactly as given (REAL = IEEE double).
  double propensity = 0.0;
  // The probability of this draw given the slate's earlier draws (SlateItem::conditional_propensity),
  // in (0, 1]; equals `propensity` at position 0. Stored bit-exactly. Required: 0 is refused.
  double conditional_propensity = 0.0;
};
struct ServedSlate {
  std::string request_id;  // non-empty; unique in the log (one slate per request)
  int32_t k = 0;           // slate size K >= 1; at most k items
  int32_t m = 0;           // candidate count M >= K
  double epsilon = 0.0;    // uniform-exploration share, in [0, 1]
  double temperature = 0.0;  // softmax temperature tau >= 0 (0 only for greedy serving)
  std::string model_version;
  std::vector<float> context;  // [d] dense context features, finite; stored as a float32 BLOB
  // The request's categorical context features in CategoricalFeaturesToText form
  // ("user=12;tags=3|9", core/base/categorical.h); "" = none. Stored as given (TEXT).
  std::string categorical;
  int64_t time_us = 0;         // unix micros
  std::vector<ServedItem> items;  // in serving order; served ids follow this order
};

struct FeedbackEvent {
  std::string request_id;  // non-empty
  int64_t item_id = 0;
  double reward = 0.0;     // finite
  int64_t time_us = 0;     // unix micros
};

// Outcome of one FeedbackEvent. First write wins: a second reward for the same (request, item) is a
// kDuplicate and leaves the first one in place. kUnknown: that (request, item) was never served
// (nothing is written).
enum class FeedbackOutcome { kAccepted, kDuplicate, kUnknown };

// Options of the log. `path` is SQLite's (PostgreSQL takes a DSN instead), `busy_timeout` is SQLite's
// busy timeout and PostgreSQL's lock_timeout; the rest (durability, group commit, back-pressure,
// write failures) hold for any backend (PostgreSQL's durability: core/storage/postgres_event_log.h).
struct EventLogOptions {
  std::string path;  // SQLite file; its parent directory must exist. Reopening an existing log appends.

  // kGroupCommit: PRAGMA synchronous=NORMAL. A commit survives a process crash (SIGKILL, abort) as soon
  //   as COMMIT returns, but the last commits before a power loss / kernel crash may be lost (the WAL is
  //   fsynced only at checkpoints). Appends are acknowledged before their commit; the commit follows
  //   within max_commit_delay (+ the commit's own time).
  // kSynchronous: PRAGMA synchronous=FULL. Every Append* returns only after the COMMIT (WAL fsync)
  //   containing its events; concurrent callers still share one commit (group commit without delay).
  enum class Durability { kGroupCommit, kSynchronous };
  Durability durability = Durability::kGroupCommit;

  // Group commit: a batch is committed at most this long after its first event was queued
  // (plus the time to execute what is queued). Must be >= 0. Ignored in kSynchronous mode.
  absl::Duration max_commit_delay = absl::Milliseconds(5);
  int max_batch_events = 4096;        // a batch is committed once it holds this many events; >= 1
  // Back-pressure. Both limits count everything not yet committed: what is queued and what the
  // writer holds (taken, running, or kept for a retry after a failed write). Append* returns
  // ResourceExhausted (retryable: "queue full") at once when a call would push either count past its
  // limit; a single call larger than a limit gets InvalidArgument. Feedback may use at most half of
  // each limit, so that a flood of feedback cannot crowd out the served rows of Retrieve. >= 1.
  int64_t max_queue_events = int64_t{1} << 20;
  // Bytes of the queued and held operations (their payload plus per-object overhead, an estimate of
  // the heap they hold). >= 1024.
  int64_t max_queue_bytes = int64_t{64} << 20;
  // Write failures and stalls (docs/EVENT_LOG.md "Write failures"): once the oldest acknowledged but
  // uncommitted operation is older than max_commit_delay + write_failure_window (kSynchronous: the
  // window alone), Append* and Flush fail at once with Unavailable and WriteStatus() says why, until
  // a commit succeeds again. The writer keeps retrying (with backoff) and keeps what it acknowledged.
  // A blocked caller waits at most that long for its own operation. > 0.
  absl::Duration write_failure_window = absl::Seconds(2);
  // A caller that blocks on the writer (feedback, kSynchronous appends, Flush) gives up with
  // Unavailable once the writer has spent longer than this inside one operation or commit (a stalled
  // disk), and such calls are refused at once while it does. Keeps the callers' threads (gRPC's few
  // callback threads, which also serve health checks) from being held by a stalled disk. > 0.
  absl::Duration writer_stall_timeout = absl::Milliseconds(500);
  // How long a statement waits for a lock held by another connection (another process writing the
  // same file, a checkpoint) before failing with Unavailable (the writer then retries). >= 0.
  absl::Duration busy_timeout = absl::Seconds(1);

  // InvalidArgument naming the first field out of range and its value (core/storage/event_log_options.cc).
  absl::Status Validate() const;
};

class EventLog {
 public:
  // Close()s (flushing everything queued) in the implementation's destructor; the Close status is
  // dropped there: call Close() first if you need it.
  virtual ~EventLog() = default;

  // Appends one Retrieve's slate, atomically (its request row and all its items, or nothing). The
  // request path's call: validation allocates nothing unless it fails, and in kGroupCommit mode the
  // call only queues (it does not wake the writer thread, which collects the queue once per batch).
  // Validation (InvalidArgument naming field and value, nothing queued): request_id non-empty,
  // k >= 1, m >= k, epsilon in [0, 1], temperature finite and >= 0, context finite, at most k items,
  // each with propensity and conditional_propensity in (0, 1] and position in [0, k), no item_id
  // twice. A slate with no items is a no-op (nothing is logged, OK).
  // kGroupCommit: returns once queued. A request_id already in the log is skipped by the writer and
  //   counted in Stats::duplicate_requests (the first slate stays; Flush/Close are not failed by it).
  //   A failed write is retried by the writer (the slate is kept, in order) and counted in
  //   Stats::write_faults; see write_failure_window.
  // kSynchronous: returns after the COMMIT containing the rows, with that commit's status
  //   (AlreadyExists if the request_id was already logged, Unavailable if the write failed: nothing
  //   of the call is kept then).
  // `deadline`: a blocked caller (kSynchronous) waits at most until then, then gets DeadlineExceeded
  //   (the slate may still be written: the writer skips it only if it has not started on it yet).
  // Errors without waiting: ResourceExhausted if the queue is full (see max_queue_events/bytes),
  // Unavailable while writes fail or stall beyond the window (WriteStatus()), FailedPrecondition after
  // Close().
  virtual absl::Status AppendSlate(ServedSlate slate, absl::Time deadline) = 0;
  absl::Status AppendSlate(ServedSlate slate) {
    return AppendSlate(std::move(slate), absl::InfiniteFuture());
  }

  // Records rewards. Returns one outcome per event, in order, decided by the writer thread in log order:
  // feedback appended after an AppendSlate call returned sees those served rows even if
  // they are not committed yet. Duplicates within one call: the first is kAccepted, later ones kDuplicate.
  // kGroupCommit: returns once decided (committed within max_commit_delay; kept and retried if that
  //   commit fails).
  // kSynchronous: returns after the COMMIT containing the accepted rows.
  // Waits at most until `deadline` (DeadlineExceeded) and at most max_commit_delay +
  // write_failure_window after it was queued (Unavailable: the writer failed or stalled). After
  // either, the outcomes are unknown: the events may still be recorded; sending them again is safe
  // (first write wins, a repeat is kDuplicate). Unavailable at once if the writer failed to write
  // the batch holding these events before deciding them.
  // Errors as AppendSlate (InvalidArgument: empty request_id or non-finite reward).
  virtual absl::StatusOr<std::vector<FeedbackOutcome>> AppendFeedback(
      std::vector<FeedbackEvent> events, absl::Time deadline) = 0;
  absl::StatusOr<std::vector<FeedbackOutcome>> AppendFeedback(std::vector<FeedbackEvent> events) {
    return AppendFeedback(std::move(events), absl::InfiniteFuture());
  }

  // Blocks until everything queued before the call is committed. Returns the first error of any
  // acknowledged-but-failed work since the previous Flush or Open (an operation that failed on its
  // own, other than a duplicate request_id), else the status of the commit; the reported error is
  // then cleared. Unavailable if the writer failed to write (what was acknowledged is kept and
  // retried) or at once while writes fail beyond the window; DeadlineExceeded at `deadline`.
  virtual absl::Status Flush(absl::Time deadline) = 0;
  absl::Status Flush() { return Flush(absl::InfiniteFuture()); }

  // Flushes, stops the writer thread and returns the flush status. If writes are failing, the writer
  // keeps retrying for up to write_failure_window after Close was called, then gives up: DataLoss
  // naming how many acknowledged events were not written. Idempotent: later calls return the same
  // status. Appends after Close fail with FailedPrecondition; reads keep working.
  virtual absl::Status Close() = 0;

  // OK while the log accepts appends; Unavailable (saying since when and the last write error) once
  // the oldest acknowledged but uncommitted operation is older than the window (see
  // write_failure_window). Never blocks on the writer or the disk: for health checks.
  virtual absl::Status WriteStatus() const = 0;

  // Counters of this instance since Open (not of the whole file).
  struct Stats {
    int64_t served_rows = 0;    // served rows (items) committed
    int64_t feedback_rows = 0;  // feedback rows committed (accepted outcomes)
    int64_t queue_depth = 0;    // events queued, not yet taken by the writer
    int64_t pending_events = 0;  // events not yet committed: queued + held by the writer
    int64_t pending_bytes = 0;   // their estimated bytes (the max_queue_bytes count)
    int64_t commits = 0;        // successful COMMITs
    double last_commit_ms = 0;  // wall time of the last COMMIT statement
    double max_commit_ms = 0;
    int64_t errors = 0;         // failed operations and failed writes (commits, BEGIN, inserts)
    int64_t write_faults = 0;   // failed writes of a batch (disk full, I/O error, lock timeout...)
    int64_t duplicate_requests = 0;  // group-commit slates skipped: request_id already logged
    int64_t lost_events = 0;    // acknowledged events never written (Close gave up on them)
  };
  virtual Stats stats() const = 0;

  // ---- Reading: committed rows only, safe concurrently with the writer (SQLite: its own read-only
  // connection on a WAL snapshot). ----

  struct JoinedRow {
    int64_t served_id = 0;  // served.id: > 0, increasing in log (commit) order, never reused
    std::string request_id;
    int64_t item_id = 0;
    int32_t position = 0;
    double propensity = 0.0;
    // The probability of this draw given the earlier ones of its slate, in (0, 1], always filled:
    // the stored value, or for rows of schema 2 files (NULL) the draw-remove-renormalise
    // pi_0(a_j) / (1 - sum of pi_0 of the slate's earlier items), exact for the sampler that wrote
    // them (docs/EVENT_LOG.md "Conditional propensities").
    double conditional_propensity = 0.0;
    int32_t k = 0;
    int32_t m = 0;
    double epsilon = 0.0;
    double temperature = 0.0;
    std::string model_version;
    std::vector<float> context;
    // CategoricalFeaturesToText form as logged; "" = none (also for rows of schema <= 3 files).
    std::string categorical;
    int64_t served_time_us = 0;
    bool has_feedback = false;
    double reward = 0.0;             // 0 when !has_feedback
    int64_t feedback_time_us = 0;    // 0 when !has_feedback
  };
  struct ReadOptions {
    // Watermark: only rows with served_id <= max_served_id (-1 = all). A watermark taken from
    // MaxServedId() names a fixed set of served rows: later reads with it return the same rows
    // (their feedback may have grown).
    int64_t max_served_id = -1;
    int64_t min_served_id = 0;   // inclusive lower bound, for paging
    int64_t max_rows = -1;       // at most this many rows (-1 = no limit), for paging
  };
  // One row per served item: served JOIN requests (the request-level fields) LEFT JOIN feedback ON
  // (request_id, item_id), ordered by served_id; committed rows only.
  // InvalidArgument for a bad range (min_served_id < 0, max_served_id or max_rows < -1).
  virtual absl::StatusOr<std::vector<JoinedRow>> ReadJoined(const ReadOptions& options) const = 0;
  // Largest committed served_id; 0 if the log has no served rows.
  virtual absl::StatusOr<int64_t> MaxServedId() const = 0;
  // Number of committed feedback rows in the file.
  virtual absl::StatusOr<int64_t> CountFeedback() const = 0;

 protected:
  EventLog() = default;
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_EVENT_LOG_H_
