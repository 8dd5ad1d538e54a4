#include "core/trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <ATen/Parallel.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/objective.h"
#include "core/policy_evaluation.h"
#include "core/status_macros.h"

namespace optower {
namespace {

// Per-sample DR terms DR_i = qhat_under_target_i + w_i (r_i - qhat_logged_i), w clipped as in ope.cc.
double DrTerm(const OpeSamples& s, size_t i, double clip, double* weight) {
  double w = s.target_prob[i] / s.pscore[i];
  if (clip > 0) w = std::min(w, clip);
  *weight = w;
  return s.qhat_under_target[i] + w * (s.reward[i] - s.qhat_logged[i]);
}

std::string EstimateText(const OpeEstimate& e) {
  return absl::StrFormat("%.4f [%.4f, %.4f]", e.value, e.ci_low, e.ci_high);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Pure pieces

absl::Status AppendToSnapshot(const std::vector<EventLog::JoinedRow>& rows,
                              const ItemCatalog& catalog, const SnapshotOptions& options,
                              absl::Time now, TrainingSnapshot* snapshot) {
  if (snapshot == nullptr) return absl::InvalidArgumentError("snapshot is null");
  BanditLog& log = snapshot->log;
  if (log.dim_context <= 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "snapshot.log.dim_context=%d: set it to the model's context dimension (> 0)",
        log.dim_context));
  if (options.attribution_window < absl::ZeroDuration())
    return absl::InvalidArgumentError(
        absl::StrCat("attribution_window=", absl::FormatDuration(options.attribution_window),
                     ": must be >= 0"));
  if (!std::isfinite(options.default_reward))
    return absl::InvalidArgumentError(
        absl::StrFormat("default_reward=%g: must be finite", options.default_reward));
  if (snapshot->item_rows.empty()) {
    snapshot->item_rows.reserve(catalog.ids.size());
    for (int64_t r = 0; r < catalog.size(); ++r) {
      if (!snapshot->item_rows.emplace(catalog.ids[r], r).second)
        return absl::InvalidArgumentError(
            absl::StrFormat("catalog item id %d appears twice", catalog.ids[r]));
    }
  }
  SnapshotCounts& c = snapshot->counts;
  // A served item is "old" once served_time + window <= now.
  const absl::Time cutoff = now - options.attribution_window;
  for (const EventLog::JoinedRow& row : rows) {
    ++c.rows_read;
    const auto it = snapshot->item_rows.find(row.item_id);
    if (it == snapshot->item_rows.end()) {
      ++c.unknown_item;
      continue;
    }
    if (static_cast<int64_t>(row.context.size()) != log.dim_context) {
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
    log.actions.push_back(it->second);
    log.rewards.push_back(reward);
    log.pscores.push_back(static_cast<float>(row.propensity));
    if (row.has_feedback) {
      ++c.with_feedback;
    } else {
      ++c.default_reward;
    }
  }
  return absl::OkStatus();
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
  out.contexts.assign(log.contexts.begin() + begin * log.dim_context,
                      log.contexts.begin() + end * log.dim_context);
  out.actions.assign(log.actions.begin() + begin, log.actions.begin() + end);
  out.rewards.assign(log.rewards.begin() + begin, log.rewards.begin() + end);
  out.pscores.assign(log.pscores.begin() + begin, log.pscores.begin() + end);
  return out;
}

absl::StatusOr<OpeEstimate> PairedDrDifference(const OpeSamples& old_policy,
                                               const OpeSamples& new_policy,
                                               const OpeOptions& options) {
  // EstimateDr validates every vector (lengths, ranges, finiteness) and the options.
  ASSIGN_OR_RETURN(OpeEstimate old_dr, EstimateDr(old_policy, options));
  ASSIGN_OR_RETURN(OpeEstimate new_dr, EstimateDr(new_policy, options));
  const size_t n = old_policy.pscore.size();
  if (new_policy.pscore.size() != n)
    return absl::InvalidArgumentError(absl::StrFormat(
        "old policy has %d samples, new policy %d: a paired difference needs the same log", n,
        new_policy.pscore.size()));
  for (size_t i = 0; i < n; ++i) {
    if (old_policy.pscore[i] != new_policy.pscore[i] ||
        old_policy.reward[i] != new_policy.reward[i] ||
        old_policy.qhat_logged[i] != new_policy.qhat_logged[i])
      return absl::InvalidArgumentError(absl::StrFormat(
          "sample %d differs between old and new (pscore %g/%g, reward %g/%g, qhat_logged %g/%g): "
          "a paired difference needs the same log and the same q̂",
          i, old_policy.pscore[i], new_policy.pscore[i], old_policy.reward[i],
          new_policy.reward[i], old_policy.qhat_logged[i], new_policy.qhat_logged[i]));
  }
  ASSIGN_OR_RETURN(double z, NormalQuantile(0.5 + options.confidence / 2));
  std::vector<double> d(n);
  double sum = 0, max_w = 0;
  for (size_t i = 0; i < n; ++i) {
    double w_old, w_new;
    const double t_old = DrTerm(old_policy, i, options.weight_clip, &w_old);
    const double t_new = DrTerm(new_policy, i, options.weight_clip, &w_new);
    d[i] = t_new - t_old;
    sum += d[i];
    max_w = std::max({max_w, w_old, w_new});
  }
  const double mean = sum / static_cast<double>(n);
  double ss = 0;
  for (double v : d) ss += (v - mean) * (v - mean);
  OpeEstimate e;
  e.estimator = "dr_diff";
  e.value = mean;
  e.n = static_cast<int64_t>(n);
  e.std_error = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1) / static_cast<double>(n))
                      : std::numeric_limits<double>::infinity();
  e.ci_low = mean - z * e.std_error;
  e.ci_high = mean + z * e.std_error;
  e.max_weight = max_w;
  e.effective_sample_size = std::min(old_dr.effective_sample_size, new_dr.effective_sample_size);
  return e;
}

PromotionDecision DecidePromotion(const std::optional<OpeEstimate>& difference,
                                  const PromotionGateOptions& gate, bool force,
                                  const std::string& no_comparison_reason) {
  PromotionDecision out;
  if (!difference.has_value()) {
    out.promote = true;
    out.decision = "promoted";
    out.reason = absl::StrCat(
        "no OPE comparison (",
        no_comparison_reason.empty() ? "none available" : no_comparison_reason, ")");
    return out;
  }
  const OpeEstimate& d = *difference;
  const bool finite = std::isfinite(d.value) && !std::isnan(d.ci_high);
  const bool worse = !finite || d.ci_high < -gate.tolerance;
  const std::string numbers = absl::StrFormat(
      "DR(new) - DR(old) = %.4f, %g%% CI [%.4f, %.4f] on %d holdout samples, tolerance %g",
      d.value, gate.confidence * 100, d.ci_low, d.ci_high, d.n, gate.tolerance);
  if (!worse) {
    out.promote = true;
    out.decision = "promoted";
    out.reason = numbers + ": not worse beyond the interval";
  } else {
    const std::string why =
        finite ? numbers + ": the new policy is worse (the whole interval is below -tolerance)"
               : numbers + ": the difference is not finite";
    if (force) {
      out.promote = true;
      out.forced = true;
      out.decision = "promoted";
      out.reason = "forced despite the gate: " + why;
    } else {
      out.decision = "rejected";
      out.reason = why;
    }
  }
  return out;
}

std::string JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kRejected: return "rejected";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Trainer

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainerOptions& o, EventLog* log,
                                                         ModelStore* store, TrainerHooks hooks) {
  if (log == nullptr) return absl::InvalidArgumentError("log is null");
  if (store == nullptr) return absl::InvalidArgumentError("store is null");
  if (!hooks.current_model) return absl::InvalidArgumentError("hooks.current_model is empty");
  if (!hooks.publish) return absl::InvalidArgumentError("hooks.publish is empty");
  RETURN_IF_ERROR(o.Validate());
  int64_t feedback = 0;
  if (o.auto_every_feedback > 0) {
    ASSIGN_OR_RETURN(feedback, log->CountFeedback());
  }
  std::unique_ptr<Trainer> t(new Trainer(o, log, store, std::move(hooks)));
  {
    absl::MutexLock lock(&t->mu_);
    t->feedback_baseline_ = feedback;
    t->last_job_start_ = absl::Now();
  }
  t->worker_ = std::thread([p = t.get()] { p->WorkerLoop(); });
  return t;
}

Trainer::Trainer(const TrainerOptions& options, EventLog* log, ModelStore* store,
                 TrainerHooks hooks)
    : options_(options), log_(log), store_(store), hooks_(std::move(hooks)) {}

Trainer::~Trainer() { Shutdown(); }

void Trainer::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
  }
  if (worker_.joinable()) worker_.join();
  std::string leftover;
  {
    absl::MutexLock lock(&mu_);
    if (queued_) {
      queued_ = false;
      leftover = active_job_;
    }
  }
  if (!leftover.empty())
    FinishJob(leftover, JobState::kCancelled,
              absl::CancelledError("the trainer shut down before the job started"));
}

bool Trainer::cancel_requested() const {
  absl::MutexLock lock(&mu_);
  return shutdown_;
}

absl::StatusOr<std::string> Trainer::Trigger(bool force) {
  absl::MutexLock lock(&mu_);
  return Enqueue(force, "manual");
}

absl::StatusOr<std::string> Trainer::Enqueue(bool force, std::string trigger) {
  if (shutdown_) return absl::FailedPreconditionError("the trainer is shut down");
  if (!active_job_.empty())
    return absl::FailedPreconditionError(absl::StrFormat(
        "training job %s is %s; wait for it to finish", active_job_,
        JobStateName(jobs_.at(active_job_).info.state)));
  const absl::Time now = absl::Now();
  const std::string id = absl::StrFormat(
      "job-%s-%d", absl::FormatTime("%Y%m%dT%H%M%SZ", now, absl::UTCTimeZone()),
      next_job_number_++);
  Job job;
  job.info.id = id;
  job.info.trigger = std::move(trigger);
  job.info.force = force;
  job.info.state = JobState::kQueued;
  job.info.phase = "queued";
  job.info.created_time = now;
  jobs_.emplace(id, std::move(job));
  job_order_.push_back(id);
  active_job_ = id;
  queued_ = true;
  return id;
}

void Trainer::WorkerLoop() {
  const bool auto_on =
      options_.auto_every_feedback > 0 || options_.auto_every > absl::ZeroDuration();
  while (true) {
    std::string id;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_ || queued_; };
      if (auto_on) {
        mu_.AwaitWithTimeout(absl::Condition(&ready), options_.auto_poll_interval);
      } else {
        mu_.Await(absl::Condition(&ready));
      }
      if (shutdown_) return;
      if (queued_) {
        queued_ = false;
        id = active_job_;
      }
    }
    if (id.empty()) {
      MaybeAutoTrigger();
    } else {
      RunJob(id);
    }
  }
}

void Trainer::MaybeAutoTrigger() {
  std::optional<int64_t> feedback;
  if (options_.auto_every_feedback > 0) {
    absl::StatusOr<int64_t> count = log_->CountFeedback();
    if (count.ok()) feedback = *count;  // a failed count just skips this poll
  }
  absl::MutexLock lock(&mu_);
  if (shutdown_ || !active_job_.empty()) return;
  if (feedback.has_value() && *feedback - feedback_baseline_ >= options_.auto_every_feedback) {
    (void)Enqueue(false, absl::StrFormat("auto: %d new feedback events",
                                         *feedback - feedback_baseline_));
    return;
  }
  if (options_.auto_every > absl::ZeroDuration() &&
      absl::Now() - last_job_start_ >= options_.auto_every) {
    (void)Enqueue(false, absl::StrCat("auto: ", absl::FormatDuration(options_.auto_every),
                                      " since the last job"));
  }
}

void Trainer::AddEvent(const std::string& job_id, JobEvent event) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  event.seq = static_cast<int64_t>(it->second.events.size()) + 1;
  event.time = absl::Now();
  if (!event.final) event.state = it->second.info.state;
  it->second.events.push_back(std::move(event));
}

void Trainer::UpdateJob(const std::string& job_id, const std::function<void(JobInfo&)>& fn) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it != jobs_.end()) fn(it->second.info);
}

void Trainer::SetPhase(const std::string& job_id, const std::string& phase, std::string message) {
  UpdateJob(job_id, [&](JobInfo& j) { j.phase = phase; });
  JobEvent e;
  e.phase = phase;
  e.message = std::move(message);
  AddEvent(job_id, std::move(e));
}

void Trainer::FinishJob(const std::string& job_id, JobState state, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return;
  JobInfo& j = it->second.info;
  j.state = state;
  j.end_time = absl::Now();
  if (!status.ok()) {
    j.error_code = status.code();
    j.reason = std::string(status.message());
  }
  JobEvent e;
  e.seq = static_cast<int64_t>(it->second.events.size()) + 1;
  e.time = j.end_time;
  e.phase = "done";
  e.final = true;
  e.state = state;
  e.decision = j.decision;
  e.message = absl::StrCat(JobStateName(state), ": ", j.reason);
  it->second.events.push_back(std::move(e));
  switch (state) {
    case JobState::kSucceeded: ++stats_.succeeded; break;
    case JobState::kRejected: ++stats_.rejected; break;
    case JobState::kCancelled: ++stats_.cancelled; break;
    default: ++stats_.failed; break;
  }
  stats_.last_job_id = job_id;
  stats_.last_state = state;
  stats_.last_reason = j.reason;
  if (j.ope.has_value()) stats_.last_ope = j.ope;
  if (active_job_ == job_id) active_job_.clear();
  PruneJobs();
}

void Trainer::PruneJobs() {
  int64_t finished = 0;
  for (const std::string& id : job_order_) finished += IsFinished(jobs_.at(id).info.state);
  while (finished > options_.max_jobs_kept && !job_order_.empty()) {
    // job_order_ is oldest first and only the newest job can be unfinished.
    const std::string id = job_order_.front();
    if (!IsFinished(jobs_.at(id).info.state)) break;
    jobs_.erase(id);
    job_order_.pop_front();
    --finished;
  }
}

void Trainer::RunJob(const std::string& job_id) {
  bool force = false;
  int64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    JobInfo& j = jobs_.at(job_id).info;
    j.state = JobState::kRunning;
    j.start_time = absl::Now();
    force = j.force;
    generation = publish_generation_;
    last_job_start_ = j.start_time;
  }
  if (options_.auto_every_feedback > 0) {
    absl::StatusOr<int64_t> count = log_->CountFeedback();
    if (count.ok()) {
      absl::MutexLock lock(&mu_);
      feedback_baseline_ = *count;
    }
  }
  // The learner sets LibTorch's intra-op thread count to learner.threads, and that setting is
  // process-wide: threads that run their first parallel op later (e.g. new gRPC threads) inherit
  // it. Put the serving process's value back when the job ends (docs/TRAINING.md, "Threads").
  const int torch_threads = at::get_num_threads();
  absl::StatusOr<JobState> outcome = ExecuteJob(job_id, force, generation);
  at::set_num_threads(torch_threads);
  if (outcome.ok()) {
    FinishJob(job_id, *outcome, absl::OkStatus());
  } else {
    FinishJob(job_id,
              outcome.status().code() == absl::StatusCode::kCancelled ? JobState::kCancelled
                                                                       : JobState::kFailed,
              outcome.status());
  }
}

absl::StatusOr<JobState> Trainer::ExecuteJob(const std::string& job_id, bool force,
                                             int64_t generation) {
  std::string phase = "snapshot";
  auto check_cancel = [&]() -> absl::Status {
    if (cancel_requested())
      return absl::CancelledError(
          absl::StrCat("the trainer shut down; job stopped before phase ", phase));
    return absl::OkStatus();
  };

  // ---- snapshot ----
  SetPhase(job_id, phase, "reading the event log");
  ASSIGN_OR_RETURN(ServedModel served, hooks_.current_model());
  const ItemCatalog& catalog = served.catalog;
  if (catalog.size() < 2)
    return absl::FailedPreconditionError(absl::StrFormat(
        "the catalog has %d items: a policy needs at least 2", catalog.size()));
  if (served.model != nullptr && served.model->config().dim_item != catalog.dim_features)
    return absl::FailedPreconditionError(absl::StrFormat(
        "the served model takes %d item features but the catalog has %d",
        served.model->config().dim_item, catalog.dim_features));
  // Group commit acknowledges feedback before it is committed; make everything acknowledged so far
  // visible to this job's snapshot (a retrain right after feedback must see it).
  RETURN_IF_ERROR(log_->Flush());
  ASSIGN_OR_RETURN(const int64_t watermark, log_->MaxServedId());
  UpdateJob(job_id, [&](JobInfo& j) {
    j.parent_version = served.version;
    j.watermark = watermark;
  });
  TrainingSnapshot snap;
  snap.log.dim_context = served.model != nullptr ? served.model->config().dim_context : 0;
  const absl::Time now = absl::Now();
  EventLog::ReadOptions ro;
  ro.max_served_id = watermark;
  ro.min_served_id =
      options_.max_events > 0 ? std::max<int64_t>(0, watermark - options_.max_events + 1) : 0;
  ro.max_rows = options_.read_page_rows;
  // A job's compute (this read, the learner, the OPE samples) runs at options_.priority on threads of
  // its own; this worker thread stays at normal priority for everything that takes a lock shared with
  // serving — the event log's queue (Flush above), and above all the publish, whose SnapshotHolder
  // write lock every Retrieve reads through. A low-priority thread holding that lock would stall every
  // request until the scheduler gets back to it (measured: p99 41 ms during a publish from an
  // idle-priority trainer thread, docs/BENCHMARKS.md §5).
  RETURN_IF_ERROR(RunAtPriority(options_.priority, [&]() -> absl::Status {
    while (watermark > 0) {
      ASSIGN_OR_RETURN(std::vector<EventLog::JoinedRow> rows, log_->ReadJoined(ro));
      if (rows.empty()) break;
      if (snap.log.dim_context == 0)
        snap.log.dim_context = static_cast<int64_t>(rows[0].context.size());
      if (snap.log.dim_context == 0)
        return absl::FailedPreconditionError("the first logged context is empty (0 features)");
      RETURN_IF_ERROR(AppendToSnapshot(rows, catalog, options_.snapshot, now, &snap));
      if (static_cast<int64_t>(rows.size()) < ro.max_rows) break;
      ro.min_served_id = rows.back().served_id + 1;
      RETURN_IF_ERROR(check_cancel());
    }
    return absl::OkStatus();
  }));
  const SnapshotCounts counts = snap.counts;
  UpdateJob(job_id, [&](JobInfo& j) { j.counts = counts; });
  const std::string count_text = absl::StrFormat(
      "%d rows up to served_id %d: %d with feedback, %d past the attribution window with the "
      "default reward %g; left out: %d awaiting feedback within the window, %d for items no "
      "longer in the catalog, %d with another context size, %d with a reward outside [%g, %g]",
      counts.rows_read, watermark, counts.with_feedback, counts.default_reward,
      options_.snapshot.default_reward, counts.pending_excluded, counts.unknown_item,
      counts.bad_context, counts.bad_reward, options_.snapshot.reward_min,
      options_.snapshot.reward_max);
  {
    JobEvent e;
    e.phase = phase;
    e.message = count_text;
    AddEvent(job_id, std::move(e));
  }
  if (counts.used() < options_.min_events)
    return absl::FailedPreconditionError(absl::StrFormat(
        "too few usable events: %d, min_events=%d (%s)", counts.used(), options_.min_events,
        count_text));
  RETURN_IF_ERROR(ValidateLogForLearning(snap.log, catalog));

  // Time split: the newest samples are the gate's holdout.
  const int64_t cut = HoldoutStart(snap, options_.holdout_fraction);
  const BanditLog train = SliceLog(snap.log, 0, cut);
  const BanditLog holdout = SliceLog(snap.log, cut, snap.log.size());
  snap.log = BanditLog();  // free the copy early
  UpdateJob(job_id, [&](JobInfo& j) {
    j.n_train = train.size();
    j.n_holdout = holdout.size();
  });
  if (options_.holdout_fraction > 0 && holdout.size() < options_.min_holdout)
    return absl::FailedPreconditionError(absl::StrFormat(
        "too few events for the promotion gate's holdout: %d < min_holdout=%d "
        "(holdout_fraction=%g of %d events)",
        holdout.size(), options_.min_holdout, options_.holdout_fraction, counts.used()));
  if (train.size() < kLearnerMinEvents)
    return absl::FailedPreconditionError(absl::StrFormat(
        "too few events to train after the holdout split: %d < %d", train.size(),
        kLearnerMinEvents));

  // ---- reward_model, policy ----
  phase = "reward_model";
  RETURN_IF_ERROR(check_cancel());
  PolicyLearnerOptions lo = options_.learner;
  lo.init = nullptr;
  if (options_.warm_start_from_served && served.model != nullptr && served.trained &&
      lo.objective != Objective::kDm)
    lo.init = served.model.get();
  SetPhase(job_id, phase,
           absl::StrFormat("fitting q̂ on %d events (%d held out)", train.size(), holdout.size()));
  ProgressCallback progress = [this, &job_id, &phase](const TrainProgress& p) {
    if (p.phase != phase) {
      phase = p.phase;
      UpdateJob(job_id, [&](JobInfo& j) { j.phase = p.phase; });
    }
    JobEvent e;
    e.phase = p.phase;
    e.epoch = p.epoch;
    e.epochs = p.epochs;
    e.loss = p.loss;
    e.validation = p.validation;
    e.improved = p.improved;
    AddEvent(job_id, std::move(e));
  };
  ASSIGN_OR_RETURN(PolicyTrainResult trained, RunAtPriority(options_.priority, [&] {
                     return TrainPolicy(train, catalog, lo, progress);
                   }));
  UpdateJob(job_id, [&](JobInfo& j) { j.metrics = trained.metrics; });

  // ---- evaluate ----
  phase = "evaluate";
  RETURN_IF_ERROR(check_cancel());
  UpdateJob(job_id, [&](JobInfo& j) { j.phase = phase; });
  std::optional<OpeComparison> ope;
  std::string no_comparison;
  if (holdout.size() == 0) {
    no_comparison = "holdout_fraction=0: the gate is off";
  } else if (served.model == nullptr) {
    no_comparison = "no served model to compare against";
  } else {
    // Both policies with the NEW q̂: it was fitted on the train part only, so the holdout is
    // independent of it, and sharing it makes the paired difference tight.
    ASSIGN_OR_RETURN(OpeSamples old_s, RunAtPriority(options_.priority, [&] {
                       return MakeOpeSamples(*served.model, &trained.reward_model, holdout, catalog);
                     }));
    ASSIGN_OR_RETURN(OpeSamples new_s, RunAtPriority(options_.priority, [&] {
                       return MakeOpeSamples(trained.policy, &trained.reward_model, holdout,
                                             catalog);
                     }));
    OpeOptions oo;
    oo.confidence = options_.gate.confidence;
    oo.weight_clip = options_.gate.weight_clip;
    OpeComparison c;
    c.confidence = options_.gate.confidence;
    c.tolerance = options_.gate.tolerance;
    ASSIGN_OR_RETURN(c.old_policy, EstimateDr(old_s, oo));
    ASSIGN_OR_RETURN(c.new_policy, EstimateDr(new_s, oo));
    ASSIGN_OR_RETURN(c.difference, PairedDrDifference(old_s, new_s, oo));
    ope = c;
  }
  PromotionDecision decision =
      DecidePromotion(ope.has_value() ? std::optional<OpeEstimate>(ope->difference) : std::nullopt,
                      options_.gate, force, no_comparison);
  // Warm-started and no epoch improved: the candidate is the served policy itself; publishing it
  // would only churn versions and rebuild the index.
  if (lo.init != nullptr && trained.metrics.best_epoch == 0 && decision.promote &&
      !decision.forced) {
    const std::string unchanged = absl::StrFormat(
        "unchanged: no epoch improved the served policy's validation DR (%.4f), so the candidate "
        "is the served policy itself",
        trained.metrics.validation_dr_initial);
    if (force) {
      decision.forced = true;
      decision.reason = "forced despite the gate: " + unchanged;
    } else {
      decision.promote = false;
      decision.decision = "rejected";
      decision.reason = unchanged;
    }
  }
  UpdateJob(job_id, [&](JobInfo& j) {
    j.ope = ope;
    j.decision = decision.decision;
    j.reason = decision.reason;
  });
  {
    JobEvent e;
    e.phase = phase;
    e.decision = decision.decision;
    if (ope.has_value()) {
      e.validation = ope->new_policy.value;
      e.message = absl::StrFormat("DR old %s, new %s; %s: %s", EstimateText(ope->old_policy),
                                  EstimateText(ope->new_policy), decision.decision,
                                  decision.reason);
    } else {
      e.message = absl::StrCat(decision.decision, ": ", decision.reason);
    }
    AddEvent(job_id, std::move(e));
  }

  // ---- save ----
  phase = "save";
  RETURN_IF_ERROR(check_cancel());
  SetPhase(job_id, phase, "writing the model version");
  ASSIGN_OR_RETURN(const std::string version, store_->NextVersion());
  ModelManifest m;
  m.version = version;
  m.parent_version = served.version;
  m.created_time_us = absl::ToUnixMicros(absl::Now());
  m.job_id = job_id;
  m.data_watermark = watermark;
  m.objective = ObjectiveName(lo.objective);
  m.n_events = counts.used();
  m.n_train = train.size();
  m.n_holdout = holdout.size();
  m.metrics = trained.metrics;
  m.ope = ope;
  m.promoted = decision.promote;
  m.decision = decision.decision;
  m.reason = decision.reason;
  RETURN_IF_ERROR(store_->Save(version, trained.policy, &trained.reward_model, catalog, m));
  UpdateJob(job_id, [&](JobInfo& j) { j.version = version; });
  if (!decision.promote) return JobState::kRejected;

  // ---- publish ----
  phase = "publish";
  // Marks the saved manifest as not promoted when the job cannot publish it, so that
  // LatestPromoted never names a version that was never served.
  auto unpromote = [&](const absl::Status& why) {
    (void)store_->UpdateManifest(version, [&](ModelManifest& mm) {
      mm.promoted = false;
      mm.decision = "failed";
      mm.reason = absl::StrCat("passed the gate (", decision.reason, ") but was not published: ",
                               why.message());
    });
    return why;
  };
  if (absl::Status s = check_cancel(); !s.ok()) return unpromote(s);
  SetPhase(job_id, phase, absl::StrCat("publishing version ", version));
  absl::MutexLock publish_lock(&publish_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (publish_generation_ != generation && !force)
      return unpromote(absl::AbortedError(absl::StrFormat(
          "the served model changed while the job ran (a rollback); version %s was compared "
          "against the old one and is not published (trigger again, or force)",
          version)));
  }
  if (absl::Status s = hooks_.publish(version, trained.policy); !s.ok())
    return unpromote(
        absl::Status(s.code(), absl::StrCat("publishing version ", version, " failed: ",
                                            s.message())));
  {
    absl::MutexLock lock(&mu_);
    ++publish_generation_;
  }
  UpdateJob(job_id, [&](JobInfo& j) { j.published = true; });
  if (absl::Status s = store_->SetCurrent(version); !s.ok())
    return absl::Status(s.code(), absl::StrCat("version ", version,
                                               " is served but CURRENT could not be updated: ",
                                               s.message()));
  return JobState::kSucceeded;
}

absl::Status Trainer::Rollback(const std::string& version) {
  if (!IsModelVersion(version))
    return absl::InvalidArgumentError(
        absl::StrFormat("version=\"%s\": not a model version (e.g. \"000001\")", version));
  absl::MutexLock publish_lock(&publish_mu_);
  ASSIGN_OR_RETURN(ModelFolder folder, store_->Load(version));
  RETURN_IF_ERROR(hooks_.publish(version, folder.policy));
  {
    absl::MutexLock lock(&mu_);
    ++publish_generation_;
  }
  return store_->SetCurrent(version);
}

absl::StatusOr<JobInfo> Trainer::GetJob(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end())
    return absl::NotFoundError(absl::StrFormat("job_id=\"%s\": no such training job", job_id));
  return it->second.info;
}

std::vector<JobInfo> Trainer::ListJobs() const {
  absl::MutexLock lock(&mu_);
  std::vector<JobInfo> out;
  out.reserve(job_order_.size());
  for (const std::string& id : job_order_) out.push_back(jobs_.at(id).info);
  return out;
}

absl::StatusOr<std::vector<JobEvent>> Trainer::WaitForEvents(const std::string& job_id,
                                                             int64_t after_seq,
                                                             absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  if (jobs_.find(job_id) == jobs_.end())
    return absl::NotFoundError(absl::StrFormat("job_id=\"%s\": no such training job", job_id));
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = jobs_.find(job_id);
    return it == jobs_.end() || static_cast<int64_t>(it->second.events.size()) > after_seq ||
           IsFinished(it->second.info.state);
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end())
    return absl::NotFoundError(
        absl::StrFormat("job_id=\"%s\": the job was dropped from the history", job_id));
  std::vector<JobEvent> out;
  for (const JobEvent& e : it->second.events)
    if (e.seq > after_seq) out.push_back(e);
  return out;
}

TrainerStats Trainer::stats() const {
  absl::MutexLock lock(&mu_);
  TrainerStats s = stats_;
  s.running_job_id = active_job_;
  return s;
}

}  // namespace optower
