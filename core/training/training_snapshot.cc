#include "core/training/training_snapshot.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

absl::Status BuildItemRows(const ItemCatalog& catalog, TrainingSnapshot* snapshot) {
  if (!snapshot->item_rows.empty()) return absl::OkStatus();
  snapshot->item_rows.reserve(catalog.ids.size());
  for (int64_t r = 0; r < catalog.size(); ++r) {
    if (!snapshot->item_rows.emplace(catalog.ids[r], r).second)
      return absl::InvalidArgumentError(
          absl::StrFormat("catalog item id %d appears twice", catalog.ids[r]));
  }
  return absl::OkStatus();
}

// A row's logged categorical features, if they fit the snapshot's context schema.
bool ParseLoggedFeatures(const EventLog::JoinedRow& row, const TrainingSnapshot& snapshot,
                         std::vector<CategoricalFeature>* features) {
  absl::StatusOr<std::vector<CategoricalFeature>> parsed =
      CategoricalFeaturesFromText(row.categorical);
  if (!parsed.ok()) return false;
  if (!CheckFeaturesAgainstSchema(*parsed, snapshot.context_fields, "logged categorical").ok()) {
    return false;
  }
  *features = *std::move(parsed);
  return true;
}

// log.context_categorical with the fields of snapshot->context_fields, before the first row.
absl::Status PrepareCategoricalColumns(TrainingSnapshot* snapshot) {
  BanditLog& log = snapshot->log;
  if (snapshot->context_fields.empty() || !log.context_categorical.empty()) return absl::OkStatus();
  // Rows appended before (a caller's own) would have no categorical cells.
  if (log.size() > 0) {
    return absl::InvalidArgumentError(
        "snapshot.context_fields: set before the first append (the log already has rows)");
  }
  std::vector<std::string> names;
  for (const CategoricalField& f : snapshot->context_fields) names.push_back(f.name);
  log.context_categorical = CategoricalColumns(std::move(names));
  return absl::OkStatus();
}

}  // namespace

absl::Status AppendToSnapshot(const std::vector<EventLog::JoinedRow>& rows,
                              const ItemCatalog& catalog, const SnapshotOptions& options,
                              absl::Time now, TrainingSnapshot* snapshot) {
  if (snapshot == nullptr) return absl::InvalidArgumentError("snapshot is null");
  BanditLog& log = snapshot->log;
  if (log.dim_context <= 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "snapshot.log.dim_context=%d: set it to the model's context dimension (> 0)",
        log.dim_context));
  RETURN_IF_ERROR(options.Validate());
  RETURN_IF_ERROR(BuildItemRows(catalog, snapshot));
  RETURN_IF_ERROR(PrepareCategoricalColumns(snapshot));
  SnapshotCounts& c = snapshot->counts;
  // A served item is "old" once served_time + window <= now.
  const absl::Time cutoff = now - options.attribution_window;
  for (const EventLog::JoinedRow& row : rows) {
    ++c.rows_read;
    const auto it = snapshot->item_rows.find(row.item_id);
    // The slate so far: every earlier served item of this request that is still in the catalog,
    // whether or not its own row is used (a pending or bad-reward row was still served, so this
    // draw could not pick it). Items that left the catalog need no exclusion: no policy over
    // today's catalog can pick them.
    if (row.request_id != snapshot->slate_request_id) {
      snapshot->slate_request_id = row.request_id;
      snapshot->slate_prefix.clear();
    }
    const size_t prefix_len = snapshot->slate_prefix.size();
    if (it != snapshot->item_rows.end()) snapshot->slate_prefix.push_back(it->second);
    if (it == snapshot->item_rows.end()) {
      ++c.unknown_item;
      continue;
    }
    if (static_cast<int64_t>(row.context.size()) != log.dim_context) {
      ++c.bad_context;
      continue;
    }
    std::vector<CategoricalFeature> features;
    if (!snapshot->context_fields.empty() && !ParseLoggedFeatures(row, *snapshot, &features)) {
      ++c.bad_context;
      continue;
    }
    float reward;
    if (row.has_feedback) {
      reward = static_cast<float>(row.reward);
      if (!std::isfinite(reward) || !(row.reward >= options.reward_min) ||
          !(row.reward <= options.reward_max)) {
        ++c.bad_reward;
        continue;
      }
    } else if (absl::FromUnixMicros(row.served_time_us) > cutoff) {
      ++c.pending_excluded;
      continue;
    } else {
      reward = static_cast<float>(options.default_reward);
    }
    snapshot->starts_request.push_back(
        log.actions.empty() || row.request_id != snapshot->last_request_id ? 1 : 0);
    snapshot->last_request_id = row.request_id;
    log.contexts.insert(log.contexts.end(), row.context.begin(), row.context.end());
    // Checked by ParseLoggedFeatures: cannot fail.
    if (!snapshot->context_fields.empty())
      RETURN_IF_ERROR(log.context_categorical.AppendFeatures(features));
    log.actions.push_back(it->second);
    log.rewards.push_back(reward);
    // The draw's own probability given the earlier items of the slate (= pi_0(a|x) at position 0).
    log.pscores.push_back(static_cast<float>(row.conditional_propensity));
    log.first_draw_pscores.push_back(static_cast<float>(row.propensity));
    if (log.prefix_offsets.empty()) log.prefix_offsets.push_back(0);
    log.positions.push_back(row.position);
    log.prefix_rows.insert(log.prefix_rows.end(), snapshot->slate_prefix.begin(),
                           snapshot->slate_prefix.begin() + static_cast<int64_t>(prefix_len));
    log.prefix_offsets.push_back(static_cast<int64_t>(log.prefix_rows.size()));
    if (row.has_feedback) {
      ++c.with_feedback;
    } else {
      ++c.default_reward;
    }
  }
  return absl::OkStatus();
}

absl::Status ReadTrainingSnapshot(const EventLog& log, const SnapshotReadRange& range,
                                  const ItemCatalog& catalog, const SnapshotOptions& options,
                                  absl::Time now,
                                  const std::function<absl::Status()>& between_pages,
                                  TrainingSnapshot* snapshot) {
  if (snapshot == nullptr) return absl::InvalidArgumentError("snapshot is null");
  if (range.page_rows < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("page_rows=%d: must be >= 1", range.page_rows));
  EventLog::ReadOptions ro;
  ro.max_served_id = range.watermark;
  ro.min_served_id =
      range.max_events > 0 ? std::max<int64_t>(0, range.watermark - range.max_events + 1) : 0;
  ro.max_rows = range.page_rows;
  while (range.watermark > 0) {
    ASSIGN_OR_RETURN(std::vector<EventLog::JoinedRow> rows, log.ReadJoined(ro));
    if (rows.empty()) break;
    if (snapshot->log.dim_context == 0)
      snapshot->log.dim_context = static_cast<int64_t>(rows[0].context.size());
    if (snapshot->log.dim_context == 0)
      return absl::FailedPreconditionError("the first logged context is empty (0 features)");
    RETURN_IF_ERROR(AppendToSnapshot(rows, catalog, options, now, snapshot));
    if (static_cast<int64_t>(rows.size()) < ro.max_rows) break;
    ro.min_served_id = rows.back().served_id + 1;
    if (between_pages) RETURN_IF_ERROR(between_pages());
  }
  return absl::OkStatus();
}

std::string SnapshotCountsText(const SnapshotCounts& counts, int64_t watermark,
                               const SnapshotOptions& options) {
  return absl::StrFormat(
      "%d rows up to served_id %d: %d with feedback, %d past the attribution window with the "
      "default reward %g; left out: %d awaiting feedback within the window, %d for items no "
      "longer in the catalog, %d with another context size, %d with a reward outside [%g, %g]",
      counts.rows_read, watermark, counts.with_feedback, counts.default_reward,
      options.default_reward, counts.pending_excluded, counts.unknown_item, counts.bad_context,
      counts.bad_reward, options.reward_min, options.reward_max);
}

int64_t HoldoutStart(const TrainingSnapshot& snapshot, double fraction) {
  const int64_t n = snapshot.log.size();
  if (!(fraction > 0) || n == 0) return n;
  const int64_t k = std::min<int64_t>(n, std::llround(static_cast<double>(n) * fraction));
  if (k <= 0) return n;
  int64_t s = n - k;
  while (s > 0 && static_cast<size_t>(s) < snapshot.starts_request.size() &&
         !snapshot.starts_request[s])
    --s;
  return s;
}

BanditLog SliceLog(const BanditLog& log, int64_t begin, int64_t end) {
  BanditLog out;
  out.dim_context = log.dim_context;
  begin = std::clamp<int64_t>(begin, 0, log.size());
  end = std::clamp<int64_t>(end, begin, log.size());
  // BanditLog::AppendFrom is the one place that knows the per-sample fields (slates included).
  out.contexts.reserve(static_cast<size_t>((end - begin) * log.dim_context));
  for (int64_t i = begin; i < end; ++i) out.AppendFrom(log, i);
  return out;
}

HoldoutSplit SplitHoldout(TrainingSnapshot* snapshot, double fraction) {
  const int64_t cut = HoldoutStart(*snapshot, fraction);
  HoldoutSplit split;
  split.train = SliceLog(snapshot->log, 0, cut);
  split.holdout = SliceLog(snapshot->log, cut, snapshot->log.size());
  snapshot->log = BanditLog();  // free the copy early
  return split;
}

absl::Status CheckHoldoutSplit(const HoldoutSplit& split, double fraction, int64_t min_holdout,
                               int64_t min_train) {
  const int64_t n = split.train.size() + split.holdout.size();
  if (fraction > 0 && split.holdout.size() < min_holdout)
    return absl::FailedPreconditionError(absl::StrFormat(
        "too few events for the promotion gate's holdout: %d < min_holdout=%d "
        "(holdout_fraction=%g of %d events)",
        split.holdout.size(), min_holdout, fraction, n));
  if (split.train.size() < min_train)
    return absl::FailedPreconditionError(absl::StrFormat(
        "too few events to train after the holdout split: %d < %d", split.train.size(),
        min_train));
  return absl::OkStatus();
}

}  // namespace optower
