#include "server/scale_out.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"

namespace optower::server {

std::unique_ptr<ScaleOut> ScaleOut::Start(Options options, TrainerElection* election,
                                          ModelStore* store, CatalogStore* catalogs,
                                          RetrievalEngine* engine) {
  std::unique_ptr<ScaleOut> s(new ScaleOut(std::move(options), election));
  s->leader_.store(election != nullptr && s->options_.elected_at_start);
  SharedStateFollower::Options f;
  f.dsn = s->options_.dsn;
  f.poll_interval = s->options_.poll_interval;
  f.active = [p = s.get()] { return !p->leader_.load(); };
  s->follower_ = SharedStateFollower::Start(std::move(f), store, catalogs, engine);
  if (election != nullptr) s->election_thread_ = std::thread([p = s.get()] { p->ElectionLoop(); });
  return s;
}

ScaleOut::~ScaleOut() {
  Stop();
  ReleaseElection();
}

void ScaleOut::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (election_thread_.joinable()) election_thread_.join();
  if (follower_ != nullptr) follower_->Stop();
}

void ScaleOut::ReleaseElection() {
  if (election_ != nullptr && election_->elected()) {
    leader_.store(false);
    election_->Release();
  }
}

void ScaleOut::ElectionLoop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.election_interval)) {
    if (leader_.load()) {
      if (!election_->StillHeld()) {
        leader_.store(false);
        std::fprintf(stderr, "optower-server: lost the trainer election (database session ended); "
                             "standing by\n");
      }
      continue;
    }
    absl::StatusOr<bool> won = election_->TryAcquire();
    if (!won.ok() || !*won) continue;
    // Serve what the replicas serve before training against it.
    absl::Status synced = follower_->SyncOnce();
    if (!synced.ok()) {
      std::fprintf(stderr, "optower-server: warning: elected, but syncing the shared state failed: %s\n",
                   synced.ToString().c_str());
    }
    leader_.store(true);
    std::fprintf(stderr, "optower-server: elected trainer (epoch %lld)\n",
                 static_cast<long long>(election_->epoch()));
  }
}

absl::Status ScaleOut::leadership() const {
  if (election_ == nullptr) {
    return absl::FailedPreconditionError("this process does not train (role=serve)");
  }
  if (leader_.load()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "standby trainer: another trainer holds the election; this process takes over when that "
      "one stops (see GetStats.scale_out on the trainers)");
}

void ScaleOut::FillStats(v1::ScaleOutStats* out) const {
  out->set_elected_trainer(leader_.load());
  out->set_trainer_epoch(leader_.load() && election_ != nullptr ? election_->epoch() : 0);
  const SharedStateFollower::Stats f = follower_->stats();
  out->set_follower_model_swaps(f.model_swaps);
  out->set_follower_catalog_adoptions(f.catalog_adoptions);
  out->set_follower_notifications(f.notifications);
  out->set_follower_errors(f.errors);
  out->set_follower_last_error(f.last_error);
}

}  // namespace optower::server
