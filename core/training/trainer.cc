#include "core/training/trainer.h"

#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include <ATen/Parallel.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"

namespace optower {

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
  if (hooks_.leadership) RETURN_IF_ERROR(hooks_.leadership());
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
  if (hooks_.leadership && !hooks_.leadership().ok()) return;  // a standby trainer waits
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

absl::Status Trainer::Rollback(const std::string& version) {
  if (!IsModelVersion(version))
    return absl::InvalidArgumentError(
        absl::StrFormat("version=\"%s\": not a model version (e.g. \"000001\")", version));
  if (hooks_.leadership) RETURN_IF_ERROR(hooks_.leadership());
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
