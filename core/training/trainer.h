// Trainer: the service's background retraining (DESIGN §3, §4, §6; issue 4). One worker thread runs
// one job at a time:
//
//   snapshot   current served model + catalog (hook), watermark = EventLog::MaxServedId(), read the
//              joined log up to it; served items without feedback get `default_reward` once older
//              than the attribution window and are left out of this job while younger; rows whose
//              item left the catalog are dropped. Each served item is one sample with its logged
//              single-draw propensity. Untrainable data (too few events, deterministic logging, all
//              rewards equal) ends the job here with FailedPrecondition and the reason.
//   (split)    time split: the newest `holdout_fraction` of the samples (by served_id, cut at a
//              request boundary) is the gate's holdout; the rest trains.
//   reward_model, policy
//              TrainPolicy on the train part, warm-started from the served towers (dr/ipw).
//   evaluate   DR of the served and the new policy on the holdout with the NEW q̂ (fitted on train
//              only, so the holdout is honest), and the paired per-sample difference with its
//              normal interval; DecidePromotion: promote unless that interval lies entirely below
//              -tolerance (`force` overrides).
//   save       ModelStore::Save, promoted or not, with the decision and every number.
//   publish    only if promoted: publish hook (the service re-embeds, builds the index, swaps), then
//              ModelStore::SetCurrent. A failed publish fails the job; serving and CURRENT are
//              untouched and the manifest is marked decision "failed".
//   done       final event with the decision.
// Any failure leaves serving untouched and records the reason on the job.
//
// The trainer never talks to gRPC or to the serving snapshot directly: the service supplies hooks.
//
// Thread safety: all public methods are safe to call concurrently from any thread (one mutex guards
// the job table). Hooks are called from the worker thread (and `publish` also from the Rollback
// caller's thread), never concurrently with each other for publish: job publishes and rollbacks are
// serialised, so CURRENT always names the last version published.
// Ownership: the EventLog and ModelStore are borrowed and must outlive the Trainer.
// Cancellation: Shutdown() stops a running job at its next phase boundary (the learner's epochs
// cannot be interrupted from outside: a job already inside TrainPolicy finishes that call first).
#ifndef OPTOWER_CORE_TRAINING_TRAINER_H_
#define OPTOWER_CORE_TRAINING_TRAINER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/base/background_priority.h"
#include "core/base/bandit_data.h"
#include "core/storage/event_log.h"
#include "core/storage/model_store.h"
#include "core/learning/ope.h"
#include "core/learning/policy_learner.h"
#include "core/training/promotion_gate.h"
#include "core/training/slate_learning.h"
#include "core/training/training_snapshot.h"
#include "core/model/two_tower_model.h"

namespace optower {

// The data step (log -> samples, holdout split) is core/training/training_snapshot.h; the gate's statistics
// and decision are core/training/promotion_gate.h.

// TrainerOptions::max_events by default: a job reads at most the newest million served rows.
inline constexpr int64_t kDefaultMaxEvents = 1000000;
// Fewest samples the learner trains on (ValidateLogForLearning's minimum); min_events >= this.
inline constexpr int64_t kLearnerMinEvents = 10;

// ---- The trainer ----

// What the service serves right now (the old policy of the gate and the warm start).
struct ServedModel {
  std::string version;  // "" when the served model is not a stored version
  std::shared_ptr<const TwoTowerModel> model;  // null: nothing to compare against / start from
  // True when the towers come from training (a trainer job, `optower train`); false for freshly
  // initialised towers, which are not worth warm-starting from (see warm_start_from_served).
  bool trained = false;
  ItemCatalog catalog;  // the current items (what the new policy will serve)
};

struct TrainerHooks {
  // Called once at the start of each job. An error fails the job.
  std::function<absl::StatusOr<ServedModel>()> current_model;
  // Make `policy` the served model as `version`: re-embed the catalog, build the index, swap the
  // snapshot. An error must leave serving untouched. May block (index build). The version is
  // already saved when this is called, so the hook may record the measured index recall with
  // store->UpdateManifest(version, ...).
  std::function<absl::Status(const std::string& version, const TwoTowerModel& policy)> publish;
  // Optional (null: always). OK while this process may train and publish — the elected trainer of
  // a shared deployment (docs/SCALING.md "Trainer election"). Otherwise its status (e.g.
  // FailedPrecondition "standby: another trainer is elected") answers Trigger and Rollback, and
  // automatic triggers are skipped. A job that started while elected is fenced by the store.
  std::function<absl::Status()> leadership;
};

struct TrainerOptions {
  // The learner; learner.objective selects dr (default) | ipw | dm. learner.init is set per job.
  PolicyLearnerOptions learner;
  // dr/ipw: start from the served towers (learner.init) when they are trained (ServedModel::trained);
  // otherwise, or with dm, the learner's own default applies (dr/dm: q̂'s towers, ipw: random). A
  // warm start keeps the served model's architecture and temperature (learner.hidden/temperature
  // are then unused). Why not from untrained towers: measured on a 500-item environment, a DR job
  // warm-started from random served towers (tau = 1) reached true value 0.88 and stalled at 0.92
  // over 3 more rounds, while starting from q̂ reached 0.985 in the first job (optimal 0.991).
  // When the learner keeps the served policy unchanged (no epoch improved its validation DR), the
  // candidate is rejected as "unchanged" (force still publishes it).
  bool warm_start_from_served = true;
  // K > 1 slates: the per-draw estimator (default) or Chen et al.'s top-K correction
  // (core/training/slate_learning.h; measured in docs/BENCHMARKS.md "Slates"). The gate's holdout
  // is per draw either way: it estimates what the server serves.
  SlateLearning slate_learning = SlateLearning::kPerDraw;
  SnapshotOptions snapshot;
  int64_t min_events = 100;        // usable samples needed (>= 10, the learner's minimum)
  // >= 1: only the newest max_events served ids (bounds the job's memory: about
  // (4 * dim_context + 20) bytes per row, held a few times over while the job converts and trains);
  // -1 = the whole log, explicitly. 0 and other negative values are rejected.
  int64_t max_events = kDefaultMaxEvents;
  int64_t read_page_rows = 100000; // rows per ReadJoined page (bounds the JoinedRow memory)
  // Newest share of the samples held out for the gate, in [0, 0.9]. 0 disables the gate (always
  // promote, the reason says so).
  double holdout_fraction = 0.2;
  int64_t min_holdout = 20;        // fewer holdout samples than this fails the job (gate enabled)
  PromotionGateOptions gate;
  // Automatic retraining (both 0 = off): a job when this many feedback rows arrived since the last
  // job started, and/or when this long passed since the last job started (or since Create).
  int64_t auto_every_feedback = 0;
  absl::Duration auto_every = absl::ZeroDuration();
  absl::Duration auto_poll_interval = absl::Seconds(2);  // how often the worker checks (> 0)
  int max_jobs_kept = 100;         // finished jobs kept in memory for GetJob/ListJobs (>= 1)
  // OS priority of a job's compute — reading the log into samples, fitting q̂ and the policy,
  // the OPE samples — each run on a thread of its own (core/base/background_priority.h); the publish's
  // index build gets the engine's build_priority. By default they only use CPU that serving leaves
  // idle. The worker thread itself stays at normal priority: it takes locks that serving shares
  // (the event log's queue, the snapshot holder when publishing). Under a serving load that keeps
  // every core busy an idle-priority job progresses slowly; "nice" gives it a small share.
  BackgroundPriority priority = BackgroundPriority::kIdle;

  // InvalidArgument naming the first field out of range and its value ("min_events=5: must be
  // >= 10 ..."; nested fields as "gate.confidence", "learner.epochs"). Trainer::Create calls it.
  // Implemented in core/training/trainer_options.cc.
  absl::Status Validate() const;
};

enum class JobState { kQueued, kRunning, kSucceeded, kRejected, kFailed, kCancelled };
// "queued" | "running" | "succeeded" | "rejected" | "failed" | "cancelled".
std::string JobStateName(JobState state);
inline bool IsFinished(JobState s) { return s != JobState::kQueued && s != JobState::kRunning; }

// One progress event of a job (the WatchTraining stream).
struct JobEvent {
  int64_t seq = 0;      // 1, 2, ... per job
  absl::Time time;
  // "snapshot" | "reward_model" | "policy" | "evaluate" | "save" | "publish" | "done"
  std::string phase;
  int epoch = 0;        // reward_model/policy: finished epoch (1-based), else 0
  int epochs = 0;       // planned epochs
  double loss = 0.0;
  double validation = 0.0;  // reward_model: held-out loss; policy: validation DR; evaluate: DR(new)
  bool improved = false;
  std::string message;  // human-readable summary of the phase
  bool final = false;   // last event of the job (phase "done")
  JobState state = JobState::kRunning;  // on the final event: the outcome
  std::string decision;  // on evaluate and final events: "promoted" | "rejected" | "" (failed early)
};

struct JobInfo {
  std::string id;
  std::string trigger;  // "manual" | "auto: <why>"
  bool force = false;
  JobState state = JobState::kQueued;
  std::string phase;    // current phase, or where it ended
  absl::Time created_time = absl::InfinitePast();
  absl::Time start_time = absl::InfinitePast();  // InfinitePast until it runs
  absl::Time end_time = absl::InfinitePast();    // InfinitePast until it ends
  std::string parent_version;  // served version at the job start
  std::string version;         // saved version ("" if it did not get that far)
  bool published = false;
  int64_t watermark = 0;
  SnapshotCounts counts;
  int64_t n_train = 0;
  int64_t n_holdout = 0;
  std::string decision;        // "promoted" | "rejected" | "" (failed before the gate)
  std::string reason;          // decision reason, or the error message
  absl::StatusCode error_code = absl::StatusCode::kOk;  // of a failed/cancelled job
  std::optional<OpeComparison> ope;
  PolicyTrainMetrics metrics;
};

struct TrainerStats {
  std::string running_job_id;  // queued or running; "" when idle
  std::string last_job_id;     // last finished job
  JobState last_state = JobState::kQueued;  // meaningful when last_job_id is set
  std::string last_reason;
  int64_t succeeded = 0, rejected = 0, failed = 0, cancelled = 0;
  std::optional<OpeComparison> last_ope;  // of the last job that reached the gate
};

class Trainer {
 public:
  // Validates options and hooks (InvalidArgument naming the field) and starts the worker thread.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const TrainerOptions& options,
                                                         EventLog* log, ModelStore* store,
                                                         TrainerHooks hooks);
  // Shutdown().
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Queues a job and returns its id at once. FailedPrecondition naming the job when one is queued or
  // running; FailedPrecondition after Shutdown. `force` promotes even if the gate rejects.
  absl::StatusOr<std::string> Trigger(bool force);

  absl::StatusOr<JobInfo> GetJob(const std::string& job_id) const;  // NotFound
  std::vector<JobInfo> ListJobs() const;                             // oldest first

  // Events of `job_id` with seq > after_seq. Blocks until there is at least one, the job has ended
  // (then returns what is left, possibly nothing) or `timeout` passes (returns empty). Every job
  // ends with a final event, also on Shutdown (cancelled).
  // NotFound for an unknown job. A streamer loops until it sees an event with final = true.
  absl::StatusOr<std::vector<JobEvent>> WaitForEvents(const std::string& job_id, int64_t after_seq,
                                                      absl::Duration timeout) const;

  // Serves a stored version again: store.Load(version) -> publish -> SetCurrent. Works for rejected
  // versions too (an explicit operator choice). Runs on the caller's thread; serialised with job
  // publishes. A job running meanwhile sees the served model change and will not publish its
  // candidate (unless forced). InvalidArgument / NotFound for bad or unknown versions.
  absl::Status Rollback(const std::string& version);

  TrainerStats stats() const;

  // Cancels a queued job, asks a running one to stop at its next phase boundary, joins the worker.
  // Idempotent. Trigger fails afterwards.
  void Shutdown();

 private:
  struct Job {
    JobInfo info;
    std::vector<JobEvent> events;
  };

  Trainer(const TrainerOptions& options, EventLog* log, ModelStore* store, TrainerHooks hooks);
  void WorkerLoop();
  void MaybeAutoTrigger();
  absl::StatusOr<std::string> Enqueue(bool force, std::string trigger)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunJob(const std::string& job_id);
  // The phases of one job, in order; returns the outcome (succeeded/rejected) or the error that
  // ends it.
  absl::StatusOr<JobState> ExecuteJob(const std::string& job_id, bool force, int64_t generation);
  // One job's state, handed from phase to phase (defined in trainer.cc). Each phase method below
  // runs one phase of the list at the top of this file: it reads what the earlier phases left in
  // `run` and adds its own results. All run on the worker thread.
  struct JobRun;
  absl::Status SnapshotPhase(JobRun& run);             // snapshot
  absl::Status SplitPhase(JobRun& run);                // (split)
  absl::Status TrainPhase(JobRun& run);                // reward_model, policy
  absl::Status EvaluatePhase(JobRun& run);             // evaluate
  absl::Status SavePhase(JobRun& run);                 // save
  absl::StatusOr<JobState> PublishPhase(JobRun& run);  // publish
  // Cancelled, naming run.phase, once Shutdown was called.
  absl::Status CheckCancel(const JobRun& run) const;
  void SetPhase(const std::string& job_id, const std::string& phase, std::string message);
  void AddEvent(const std::string& job_id, JobEvent event);
  void UpdateJob(const std::string& job_id, const std::function<void(JobInfo&)>& fn);
  void FinishJob(const std::string& job_id, JobState state, const absl::Status& status);
  bool cancel_requested() const;
  void PruneJobs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TrainerOptions options_;
  EventLog* const log_;
  ModelStore* const store_;
  const TrainerHooks hooks_;

  mutable absl::Mutex mu_;
  std::map<std::string, Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> job_order_ ABSL_GUARDED_BY(mu_);
  std::string active_job_ ABSL_GUARDED_BY(mu_);  // queued or running; "" when idle
  bool queued_ ABSL_GUARDED_BY(mu_) = false;     // active_job_ waits for the worker
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_job_number_ ABSL_GUARDED_BY(mu_) = 1;
  TrainerStats stats_ ABSL_GUARDED_BY(mu_);
  // Auto-retraining baselines: at the start of the last job (or Create).
  int64_t feedback_baseline_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_job_start_ ABSL_GUARDED_BY(mu_);

  // Serialises publish + SetCurrent (jobs and rollbacks); publish_generation_ counts publishes so
  // a job notices that the served model changed under it.
  absl::Mutex publish_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  int64_t publish_generation_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread worker_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_TRAINING_TRAINER_H_
