// Training snapshot: the trainer's data step (DESIGN §3; core/training/trainer.h, phases "snapshot" and
// "(split)"). Turns the event log's joined rows (served item + its feedback) into the samples a job
// trains and gates on:
//   - served items without feedback get `default_reward` once older than the attribution window
//     and are left out of this snapshot while younger (their feedback may still come);
//   - logged categorical context features (schema 4) fill log.context_categorical, checked
//     against the served model's context schema (TrainingSnapshot::context_fields);
//   - rows whose item left the catalog, whose context has another size or categorical features
//     outside the schema, or whose reward is not
//     usable are left out and counted (SnapshotCounts, the API's TrainingDataCounts);
//   - each remaining served item is one sample with its draw's logged conditional propensity and
//     the earlier items of its slate (BanditLog's slate fields; docs/LEARNING.md "Slates");
//   - the time split holds out the newest samples (cut at a request boundary) for the gate.
// Everything here is a pure function of its arguments except ReadTrainingSnapshot, which reads an
// EventLog on the caller's thread. Thread safety: no shared state; a TrainingSnapshot belongs to
// one caller.
#ifndef OPTOWER_CORE_TRAINING_TRAINING_SNAPSHOT_H_
#define OPTOWER_CORE_TRAINING_TRAINING_SNAPSHOT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/bandit_data.h"
#include "core/base/categorical.h"
#include "core/storage/event_log.h"
#include "core/training/snapshot_options.h"

namespace optower {

struct SnapshotCounts {
  int64_t rows_read = 0;          // joined rows up to the watermark
  int64_t with_feedback = 0;      // used, with an observed reward
  int64_t default_reward = 0;     // used, past the window without feedback (got default_reward)
  int64_t pending_excluded = 0;   // left out: no feedback yet, younger than the window
  int64_t unknown_item = 0;       // left out: item no longer in the catalog
  // left out: context dimension differs from the model's, or categorical features outside its schema
  int64_t bad_context = 0;
  int64_t bad_reward = 0;         // left out: reward non-finite as a float or outside the range
  int64_t used() const { return with_feedback + default_reward; }
};

// The trainable samples of a snapshot, in served_id order.
struct TrainingSnapshot {
  BanditLog log;                      // actions are rows of the catalog given to the builder
  // The served model's context schema (set by the caller before the first append). Each row's
  // logged categorical features (EventLog::JoinedRow::categorical) are parsed and checked against
  // it — a row whose features do not fit (unknown field, too many ids, unreadable text) is counted
  // in bad_context — and kept in log.context_categorical, whose fields are these names in this
  // order. Empty: a dense-only model; logged features are ignored and context_categorical stays
  // empty.
  std::vector<CategoricalField> context_fields;
  std::vector<uint8_t> starts_request;  // [size] 1 where a sample starts a new request id
  SnapshotCounts counts;
  std::string last_request_id;        // of the last appended sample (continues across pages)
  // The slate being read (continues across pages): its request id and the catalog rows of its
  // items read so far, used or not (the next sample's prefix).
  std::string slate_request_id;
  std::vector<int64_t> slate_prefix;
  absl::flat_hash_map<int64_t, int64_t> item_rows;  // item id -> catalog row (built on first use)
};

// Appends `rows` (one page of EventLog::ReadJoined, in served_id order) to `snapshot`.
// `snapshot->log.dim_context` must be set (> 0) by the caller: rows with another context size are
// counted in bad_context. InvalidArgument on bad options or a catalog with duplicate ids.
absl::Status AppendToSnapshot(const std::vector<EventLog::JoinedRow>& rows,
                              const ItemCatalog& catalog, const SnapshotOptions& options,
                              absl::Time now, TrainingSnapshot* snapshot);

// Which served rows a job reads, and in what pages.
struct SnapshotReadRange {
  int64_t watermark = 0;        // newest served_id read (EventLog::MaxServedId); <= 0 reads nothing
  int64_t max_events = -1;      // >= 1: only served ids > watermark - max_events; -1: all
  int64_t page_rows = 100000;   // rows per ReadJoined call (bounds the JoinedRow memory), >= 1
};

// Reads the joined rows of `range` from `log` page by page into `snapshot` (AppendToSnapshot per
// page; pass a new TrainingSnapshot). `snapshot->log.dim_context` is the model's context size, or 0
// to take it from the first row read (FailedPrecondition if that row has no features).
// `between_pages`, if set, runs after each full page and an error from it ends the read with that
// error (the trainer's cancellation check). Blocks on the log's reads.
absl::Status ReadTrainingSnapshot(const EventLog& log, const SnapshotReadRange& range,
                                  const ItemCatalog& catalog, const SnapshotOptions& options,
                                  absl::Time now,
                                  const std::function<absl::Status()>& between_pages,
                                  TrainingSnapshot* snapshot);

// One line for the job's snapshot event: what was read up to `watermark`, what was used, what was
// left out and why.
std::string SnapshotCountsText(const SnapshotCounts& counts, int64_t watermark,
                               const SnapshotOptions& options);

// Index of the first holdout sample for a time split that keeps about `fraction` of the samples
// (the newest) in the holdout, moved back to the start of its request so that no slate is split.
// fraction in [0, 1); 0 gives size() (no holdout).
int64_t HoldoutStart(const TrainingSnapshot& snapshot, double fraction);

// Rows [begin, end) of a log.
BanditLog SliceLog(const BanditLog& log, int64_t begin, int64_t end);

// The time split of a snapshot: `train` the older samples, `holdout` the newest (the gate's).
struct HoldoutSplit {
  BanditLog train;
  BanditLog holdout;
};

// Splits at HoldoutStart(*snapshot, fraction) and empties snapshot->log (frees the copy early).
HoldoutSplit SplitHoldout(TrainingSnapshot* snapshot, double fraction);

// FailedPrecondition, with the numbers, when the split leaves too few samples: a holdout smaller
// than `min_holdout` while the gate is on (fraction > 0), or fewer than `min_train` to train on.
absl::Status CheckHoldoutSplit(const HoldoutSplit& split, double fraction, int64_t min_holdout,
                               int64_t min_train);

}  // namespace optower

#endif  // OPTOWER_CORE_TRAINING_TRAINING_SNAPSHOT_H_
