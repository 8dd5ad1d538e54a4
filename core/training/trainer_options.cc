// TrainerOptions::Validate (core/training/trainer.h): the trainer's ranges in one place. Trainer::Create
// calls it; the server calls it on the options it maps from its config (server/server_config.cc)
// and renames the fields to the config's.
#include <cmath>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "core/training/trainer.h"

namespace optower {
namespace {

// The same status with `prefix` in front of its message (nested options name their parent).
absl::Status Prefixed(const absl::Status& s, const std::string& prefix) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

absl::Status ValidateGateOptions(const PromotionGateOptions& g) {
  if (!(g.confidence > 0 && g.confidence < 1))
    return absl::InvalidArgumentError(
        absl::StrFormat("gate.confidence=%g: must be in (0, 1)", g.confidence));
  if (!(g.tolerance >= 0) || !std::isfinite(g.tolerance))
    return absl::InvalidArgumentError(
        absl::StrFormat("gate.tolerance=%g: must be finite and >= 0", g.tolerance));
  if (!(g.weight_clip >= 0) || !std::isfinite(g.weight_clip))
    return absl::InvalidArgumentError(
        absl::StrFormat("gate.weight_clip=%g: must be finite and >= 0 (0 = none)", g.weight_clip));
  return absl::OkStatus();
}

// The job's sizes and the automatic-retraining schedule.
absl::Status ValidateJobOptions(const TrainerOptions& o) {
  if (o.min_events < kLearnerMinEvents)
    return absl::InvalidArgumentError(absl::StrFormat(
        "min_events=%d: must be >= %d (the learner's minimum)", o.min_events, kLearnerMinEvents));
  if (o.max_events == 0 || o.max_events < -1)
    return absl::InvalidArgumentError(absl::StrFormat(
        "max_events=%d: must be >= 1, or -1 for the whole log (explicitly unbounded)",
        o.max_events));
  if (o.read_page_rows < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("read_page_rows=%d: must be >= 1", o.read_page_rows));
  if (!(o.holdout_fraction >= 0 && o.holdout_fraction <= 0.9))
    return absl::InvalidArgumentError(absl::StrFormat(
        "holdout_fraction=%g: must be in [0, 0.9] (0 = gate off)", o.holdout_fraction));
  if (o.min_holdout < 2)
    return absl::InvalidArgumentError(
        absl::StrFormat("min_holdout=%d: must be >= 2 (an interval needs 2 samples)", o.min_holdout));
  if (o.auto_every_feedback < 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "auto_every_feedback=%d: must be >= 0 (0 = off)", o.auto_every_feedback));
  if (o.auto_every < absl::ZeroDuration())
    return absl::InvalidArgumentError(absl::StrCat(
        "auto_every=", absl::FormatDuration(o.auto_every), ": must be >= 0 (0 = off)"));
  if (!(o.auto_poll_interval > absl::ZeroDuration()))
    return absl::InvalidArgumentError(absl::StrCat(
        "auto_poll_interval=", absl::FormatDuration(o.auto_poll_interval), ": must be > 0"));
  if (o.max_jobs_kept < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("max_jobs_kept=%d: must be >= 1", o.max_jobs_kept));
  return absl::OkStatus();
}

}  // namespace

absl::Status TrainerOptions::Validate() const {
  if (absl::Status s = ValidateJobOptions(*this); !s.ok()) return s;
  if (absl::Status s = Prefixed(snapshot.Validate(), "snapshot."); !s.ok()) return s;
  if (absl::Status s = ValidateGateOptions(gate); !s.ok()) return s;
  return Prefixed(learner.Validate(), "learner.");
}

}  // namespace optower
