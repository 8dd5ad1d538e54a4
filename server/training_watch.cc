#include "server/training_watch.h"

#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/proto_convert.h"
#include "server/status_util.h"

namespace optower::server {

void WatchRegistry::Add() {
  absl::MutexLock lock(&mu_);
  ++active_;
}

void WatchRegistry::Remove() {
  absl::MutexLock lock(&mu_);
  --active_;
}

bool WatchRegistry::TryStartStream() {
  absl::MutexLock lock(&mu_);
  if (streams_ >= max_streams_) return false;
  ++streams_;
  return true;
}

void WatchRegistry::EndStream() {
  absl::MutexLock lock(&mu_);
  --streams_;
}

bool WatchRegistry::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

bool WatchRegistry::StopAndWait(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

TrainingWatchReactor::TrainingWatchReactor(const Trainer* trainer, std::string job_id,
                                           int64_t after_seq, WatchRegistry* registry,
                                           absl::Status refusal,
                                           std::function<void(const absl::Status&)> on_finish)
    : trainer_(trainer),
      job_id_(std::move(job_id)),
      after_seq_(after_seq),
      registry_(registry),
      on_finish_(std::move(on_finish)) {
  registry_->Add();
  if (refusal.ok() && !registry_->TryStartStream()) {
    refusal = absl::ResourceExhaustedError(
        absl::StrCat("WatchTraining: ", registry_->max_streams(),
                     " streams are already open (max_watchers); retry later"));
  }
  if (!refusal.ok()) {
    FinishWith(refusal);
    return;
  }
  streaming_ = true;
  // Operations started before the handler returns this reactor are held by gRPC until it is bound.
  // std::thread throws when the OS refuses a thread (EAGAIN): that must fail this call, not abort
  // the process (the one place this file turns an exception into a status).
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    FinishWith(absl::UnavailableError(
        absl::StrCat("WatchTraining: cannot start a thread for the stream (", e.what(),
                     "); retry later")));
  }
}

void TrainingWatchReactor::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  write_pending_ = false;
  write_ok_ = ok;
}

void TrainingWatchReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

void TrainingWatchReactor::OnDone() {
  if (thread_.joinable()) {
    // The thread's last action is Finish; it touches nothing of this object afterwards.
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
  WatchRegistry* registry = registry_;
  const bool streaming = streaming_;
  delete this;
  if (streaming) registry->EndStream();
  registry->Remove();
}

bool TrainingWatchReactor::WriteAndWait() {
  {
    absl::MutexLock lock(&mu_);
    write_pending_ = true;
  }
  StartWrite(&event_);
  absl::MutexLock lock(&mu_);
  // OnWriteDone always comes, with ok = false when the call was cancelled.
  mu_.Await(absl::Condition(
      +[](bool* pending) { return !*pending; }, &write_pending_));
  return write_ok_;
}

void TrainingWatchReactor::FinishWith(const absl::Status& status) {
  if (on_finish_) on_finish_(status);
  Finish(ToGrpcStatus(status));
}

void TrainingWatchReactor::Run() {
  int64_t after = after_seq_;
  bool drained = false;  // an empty read after the job ended
  absl::Status status;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) {
        status = absl::CancelledError("WatchTraining: the call was cancelled");
        break;
      }
    }
    if (registry_->stopping()) {
      status = absl::UnavailableError("WatchTraining: the server is shutting down");
      break;
    }
    absl::StatusOr<std::vector<JobEvent>> events = trainer_->WaitForEvents(job_id_, after, kWatchPoll);
    if (!events.ok()) {
      status = events.status();
      break;
    }
    if (events->empty()) {
      // A timeout, or nothing left after `after` in a finished job (a resume past its final
      // event): the latter ends the stream, OK, instead of polling forever.
      absl::StatusOr<JobInfo> job = trainer_->GetJob(job_id_);
      if (!job.ok()) {
        status = job.status();
        break;
      }
      if (IsFinished(job->state)) {
        // The job may have ended between the two calls: read once more, now that its event list
        // can no longer change; if that is empty too, everything was sent.
        if (drained) break;
        drained = true;
      }
      continue;
    }
    bool ended = false;
    for (const JobEvent& e : *events) {
      std::optional<JobInfo> job;
      if (e.final || !e.decision.empty()) {
        absl::StatusOr<JobInfo> info = trainer_->GetJob(job_id_);
        if (info.ok()) job = std::move(*info);
      }
      event_.Clear();
      ToProto(e, job_id_, job.has_value() ? &*job : nullptr, &event_);
      after = e.seq;
      if (!WriteAndWait()) {
        status = absl::CancelledError("WatchTraining: the call was cancelled during a write");
        ended = true;
        break;
      }
      if (e.final) {
        ended = true;
        break;
      }
    }
    if (ended) break;
  }
  FinishWith(status);  // last action: OnDone may delete this object from here on
}

}  // namespace optower::server
