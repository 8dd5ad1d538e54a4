// Trainer::ExecuteJob and its phase methods: one job, from the event log to a published version
// (the phase list is at the top of core/training/trainer.h). The job table, the worker thread and the public
// API are in core/training/trainer.cc.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/learning/objective.h"
#include "core/learning/policy_evaluation.h"
#include "core/training/promotion_gate.h"
#include "core/base/status_macros.h"
#include "core/training/trainer.h"
#include "core/training/training_snapshot.h"

namespace optower {

struct Trainer::JobRun {
  std::string job_id;
  bool force = false;
  int64_t generation = 0;  // publish_generation_ when the job started
  // The current phase: named by a cancellation; the learner's progress moves it to "policy".
  std::string phase;
  ServedModel served;                // snapshot: the old policy, the warm start and the catalog
  int64_t watermark = 0;             // snapshot
  SnapshotCounts counts;             // snapshot
  TrainingSnapshot snapshot;         // snapshot; the split empties its log
  HoldoutSplit data;                 // (split): train / holdout
  PolicyLearnerOptions learner;      // reward_model: options_.learner with the warm start
  std::optional<PolicyTrainResult> trained;  // reward_model, policy
  std::optional<OpeComparison> ope;  // evaluate; none when there is nothing to compare
  PromotionDecision decision;        // evaluate
  std::string version;               // save
};

absl::Status Trainer::CheckCancel(const JobRun& run) const {
  if (cancel_requested())
    return absl::CancelledError(
        absl::StrCat("the trainer shut down; job stopped before phase ", run.phase));
  return absl::OkStatus();
}

absl::StatusOr<JobState> Trainer::ExecuteJob(const std::string& job_id, bool force,
                                             int64_t generation) {
  JobRun run;
  run.job_id = job_id;
  run.force = force;
  run.generation = generation;
  RETURN_IF_ERROR(SnapshotPhase(run));
  RETURN_IF_ERROR(SplitPhase(run));
  RETURN_IF_ERROR(TrainPhase(run));
  RETURN_IF_ERROR(EvaluatePhase(run));
  RETURN_IF_ERROR(SavePhase(run));
  if (!run.decision.promote) return JobState::kRejected;
  return PublishPhase(run);
}

absl::Status Trainer::SnapshotPhase(JobRun& run) {
  run.phase = "snapshot";
  SetPhase(run.job_id, run.phase, "reading the event log");
  ASSIGN_OR_RETURN(run.served, hooks_.current_model());
  const ItemCatalog& catalog = run.served.catalog;
  const TwoTowerModel* served_model = run.served.model.get();
  if (catalog.size() < 2)
    return absl::FailedPreconditionError(absl::StrFormat(
        "the catalog has %d items: a policy needs at least 2", catalog.size()));
  if (served_model != nullptr && served_model->config().dim_item != catalog.dim_features)
    return absl::FailedPreconditionError(absl::StrFormat(
        "the served model takes %d item features but the catalog has %d",
        served_model->config().dim_item, catalog.dim_features));
  // Group commit acknowledges feedback before it is committed; make everything acknowledged so far
  // visible to this job's snapshot (a retrain right after feedback must see it).
  RETURN_IF_ERROR(log_->Flush());
  ASSIGN_OR_RETURN(run.watermark, log_->MaxServedId());
  UpdateJob(run.job_id, [&](JobInfo& j) {
    j.parent_version = run.served.version;
    j.watermark = run.watermark;
  });
  run.snapshot.log.dim_context =
      served_model != nullptr ? served_model->config().dim_context : 0;
  // Logged categorical features are read under the served model's context schema (the engine
  // refuses swaps to another schema, so every row of this schema's era fits it).
  if (served_model != nullptr) run.snapshot.context_fields = served_model->config().context_fields;
  const absl::Time now = absl::Now();
  SnapshotReadRange range;
  range.watermark = run.watermark;
  range.max_events = options_.max_events;
  range.page_rows = options_.read_page_rows;
  // A job's compute (this read, the learner, the OPE samples) runs at options_.priority on threads of
  // its own; this worker thread stays at normal priority for everything that takes a lock shared with
  // serving — the event log's queue (Flush above), and above all the publish, whose SnapshotHolder
  // write lock every Retrieve reads through. A low-priority thread holding that lock would stall every
  // request until the scheduler gets back to it (measured: p99 41 ms during a publish from an
  // idle-priority trainer thread, docs/BENCHMARKS.md §5).
  RETURN_IF_ERROR(RunAtPriority(options_.priority, [&] {
    return ReadTrainingSnapshot(*log_, range, catalog, options_.snapshot, now,
                                [&] { return CheckCancel(run); }, &run.snapshot);
  }));
  run.counts = run.snapshot.counts;
  UpdateJob(run.job_id, [&](JobInfo& j) { j.counts = run.counts; });
  const std::string count_text = SnapshotCountsText(run.counts, run.watermark, options_.snapshot);
  JobEvent e;
  e.phase = run.phase;
  e.message = count_text;
  AddEvent(run.job_id, std::move(e));
  if (run.counts.used() < options_.min_events)
    return absl::FailedPreconditionError(absl::StrFormat(
        "too few usable events: %d, min_events=%d (%s)", run.counts.used(), options_.min_events,
        count_text));
  return ValidateLogForLearning(run.snapshot.log, catalog);
}

absl::Status Trainer::SplitPhase(JobRun& run) {
  // Time split: the newest samples are the gate's holdout.
  run.data = SplitHoldout(&run.snapshot, options_.holdout_fraction);
  UpdateJob(run.job_id, [&](JobInfo& j) {
    j.n_train = run.data.train.size();
    j.n_holdout = run.data.holdout.size();
  });
  return CheckHoldoutSplit(run.data, options_.holdout_fraction, options_.min_holdout,
                           kLearnerMinEvents);
}

absl::Status Trainer::TrainPhase(JobRun& run) {
  run.phase = "reward_model";
  RETURN_IF_ERROR(CheckCancel(run));
  run.learner = options_.learner;
  run.learner.init = nullptr;
  if (run.served.model != nullptr) {
    // The new model keeps the served schema, so that the engine can swap it in (it refuses another
    // schema: clients send features of the served one, the catalog holds items of it).
    run.learner.context_fields = run.served.model->config().context_fields;
    run.learner.item_fields = run.served.model->config().item_fields;
  }
  if (options_.slate_learning == SlateLearning::kTopKCorrection) {
    ASSIGN_OR_RETURN(const int k, ToTopKCorrectionLog(&run.data.train));
    if (k > 1) run.learner.top_k = k;
  }
  if (options_.warm_start_from_served && run.served.model != nullptr && run.served.trained &&
      run.learner.objective != Objective::kDm)
    run.learner.init = run.served.model.get();
  SetPhase(run.job_id, run.phase,
           absl::StrFormat("fitting q̂ on %d events (%d held out)", run.data.train.size(),
                           run.data.holdout.size()));
  // Called on the learner's thread while this one waits for it.
  ProgressCallback progress = [this, &run](const TrainProgress& p) {
    if (p.phase != run.phase) {
      run.phase = p.phase;
      UpdateJob(run.job_id, [&](JobInfo& j) { j.phase = p.phase; });
    }
    JobEvent e;
    e.phase = p.phase;
    e.epoch = p.epoch;
    e.epochs = p.epochs;
    e.loss = p.loss;
    e.validation = p.validation;
    e.improved = p.improved;
    AddEvent(run.job_id, std::move(e));
  };
  ASSIGN_OR_RETURN(PolicyTrainResult trained, RunAtPriority(options_.priority, [&] {
                     return TrainPolicy(run.data.train, run.served.catalog, run.learner, progress);
                   }));
  UpdateJob(run.job_id, [&](JobInfo& j) { j.metrics = trained.metrics; });
  run.trained.emplace(std::move(trained));
  return absl::OkStatus();
}

absl::Status Trainer::EvaluatePhase(JobRun& run) {
  run.phase = "evaluate";
  RETURN_IF_ERROR(CheckCancel(run));
  UpdateJob(run.job_id, [&](JobInfo& j) { j.phase = run.phase; });
  const PolicyTrainResult& trained = *run.trained;
  const BanditLog& holdout = run.data.holdout;
  std::string no_comparison;
  if (holdout.size() == 0) {
    no_comparison = "holdout_fraction=0: the gate is off";
  } else if (run.served.model == nullptr) {
    no_comparison = "no served model to compare against";
  } else {
    // Both policies with the NEW q̂: it was fitted on the train part only, so the holdout is
    // independent of it, and sharing it makes the paired difference tight.
    ASSIGN_OR_RETURN(OpeSamples old_s, RunAtPriority(options_.priority, [&] {
                       return MakeOpeSamples(*run.served.model, &trained.reward_model, holdout,
                                             run.served.catalog);
                     }));
    ASSIGN_OR_RETURN(OpeSamples new_s, RunAtPriority(options_.priority, [&] {
                       return MakeOpeSamples(trained.policy, &trained.reward_model, holdout,
                                             run.served.catalog);
                     }));
    ASSIGN_OR_RETURN(run.ope, CompareOnHoldout(old_s, new_s, options_.gate));
    const bool slates = std::any_of(holdout.positions.begin(), holdout.positions.end(),
                                    [](int32_t p) { return p > 0; });
    if (slates) {
      ASSIGN_OR_RETURN(run.ope->positions,
                       CompareByPosition(old_s, new_s, holdout.positions, options_.gate));
    }
  }
  const PromotionDecision gate = DecidePromotion(
      run.ope.has_value() ? std::optional<OpeEstimate>(run.ope->difference) : std::nullopt,
      options_.gate, run.force, no_comparison);
  // Warm-started and no epoch improved: the candidate is the served policy itself.
  const bool unchanged = run.learner.init != nullptr && trained.metrics.best_epoch == 0;
  run.decision = RejectIfUnchanged(gate, unchanged, trained.metrics.validation_dr_initial,
                                   run.force);
  UpdateJob(run.job_id, [&](JobInfo& j) {
    j.ope = run.ope;
    j.decision = run.decision.decision;
    j.reason = run.decision.reason;
  });
  JobEvent e;
  e.phase = run.phase;
  e.decision = run.decision.decision;
  if (run.ope.has_value()) e.validation = run.ope->new_policy.value;
  e.message = GateSummary(run.ope, run.decision);
  AddEvent(run.job_id, std::move(e));
  return absl::OkStatus();
}

absl::Status Trainer::SavePhase(JobRun& run) {
  run.phase = "save";
  RETURN_IF_ERROR(CheckCancel(run));
  SetPhase(run.job_id, run.phase, "writing the model version");
  ASSIGN_OR_RETURN(run.version, store_->NextVersion());
  const PolicyTrainResult& trained = *run.trained;
  ModelManifest m;
  m.version = run.version;
  m.parent_version = run.served.version;
  m.created_time_us = absl::ToUnixMicros(absl::Now());
  m.job_id = run.job_id;
  m.data_watermark = run.watermark;
  m.objective = ObjectiveName(run.learner.objective);
  m.n_events = run.counts.used();
  m.n_train = run.data.train.size();
  m.n_holdout = run.data.holdout.size();
  m.metrics = trained.metrics;
  m.ope = run.ope;
  m.promoted = run.decision.promote;
  m.decision = run.decision.decision;
  m.reason = run.decision.reason;
  RETURN_IF_ERROR(
      store_->Save(run.version, trained.policy, &trained.reward_model, run.served.catalog, m));
  UpdateJob(run.job_id, [&](JobInfo& j) { j.version = run.version; });
  return absl::OkStatus();
}

absl::StatusOr<JobState> Trainer::PublishPhase(JobRun& run) {
  run.phase = "publish";
  const std::string& version = run.version;
  // Marks the saved manifest as not promoted when the job cannot publish it, so that
  // LatestPromoted never names a version that was never served.
  auto unpromote = [&](const absl::Status& why) {
    (void)store_->UpdateManifest(version, [&](ModelManifest& mm) {
      mm.promoted = false;
      mm.decision = "failed";
      mm.reason = absl::StrCat("passed the gate (", run.decision.reason,
                               ") but was not published: ", why.message());
    });
    return why;
  };
  if (absl::Status s = CheckCancel(run); !s.ok()) return unpromote(s);
  SetPhase(run.job_id, run.phase, absl::StrCat("publishing version ", version));
  absl::MutexLock publish_lock(&publish_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (publish_generation_ != run.generation && !run.force)
      return unpromote(absl::AbortedError(absl::StrFormat(
          "the served model changed while the job ran (a rollback); version %s was compared "
          "against the old one and is not published (trigger again, or force)",
          version)));
  }
  if (absl::Status s = hooks_.publish(version, run.trained->policy); !s.ok())
    return unpromote(
        absl::Status(s.code(), absl::StrCat("publishing version ", version, " failed: ",
                                            s.message())));
  {
    absl::MutexLock lock(&mu_);
    ++publish_generation_;
  }
  UpdateJob(run.job_id, [&](JobInfo& j) { j.published = true; });
  if (absl::Status s = store_->SetCurrent(version); !s.ok())
    return absl::Status(s.code(), absl::StrCat("version ", version,
                                               " is served but CURRENT could not be updated: ",
                                               s.message()));
  return JobState::kSucceeded;
}

}  // namespace optower
