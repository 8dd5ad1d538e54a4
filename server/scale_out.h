// ScaleOut: a process's runtime part in a shared (PostgreSQL) deployment (docs/SCALING.md) —
// the trainer election loop and the follower of the shared CURRENT and catalog.
//
// Election loop (roles all/train): every election_interval a standby tries the election; on a win
// it first brings the engine to the shared state (SyncOnce: the trainer's gate compares against,
// and warm-starts from, what the replicas serve), then becomes the leader (leadership() OK). The
// leader checks every interval that its session (and with it the lock) is alive; when it is not,
// it steps down at once. Its jobs' writes are fenced by the store anyway.
// Follower: every role; paused while this process is the leader (it writes the state itself).
//
// Thread safety: leadership() and FillStats from any thread.
#ifndef OPTOWER_SERVER_SCALE_OUT_H_
#define OPTOWER_SERVER_SCALE_OUT_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "core/storage/trainer_election.h"
#include "optower/v1/optower.pb.h"
#include "server/shared_state_follower.h"

namespace optower::server {

class ScaleOut {
 public:
  struct Options {
    std::string dsn;
    absl::Duration poll_interval = absl::Seconds(2);
    absl::Duration election_interval = absl::Seconds(1);
    bool elected_at_start = false;  // the election was won before the engine was built
  };
  // `election` may be null (role serve): then only the follower runs. Everything is borrowed.
  static std::unique_ptr<ScaleOut> Start(Options options, TrainerElection* election,
                                         ModelStore* store, CatalogStore* catalogs,
                                         RetrievalEngine* engine);
  ~ScaleOut();
  // Stops the follower and the election loop (the lock is kept until ReleaseElection).
  void Stop();
  // Gives the trainer lock up (after the trainer stopped), so a standby takes over at once.
  void ReleaseElection();

  // OK while this process is the elected trainer; FailedPrecondition naming the holder otherwise.
  absl::Status leadership() const;
  bool leader() const { return leader_.load(); }
  void FillStats(v1::ScaleOutStats* out) const;

 private:
  ScaleOut(Options options, TrainerElection* election) : options_(std::move(options)), election_(election) {}
  void ElectionLoop();

  const Options options_;
  TrainerElection* const election_;
  std::unique_ptr<SharedStateFollower> follower_;
  std::atomic<bool> leader_{false};
  absl::Notification stop_;
  std::thread election_thread_;
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_SCALE_OUT_H_
