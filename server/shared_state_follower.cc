#include "server/shared_state_follower.h"

#include <cstdio>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/storage/pg_connection.h"

namespace optower::server {

std::unique_ptr<SharedStateFollower> SharedStateFollower::Start(Options options, ModelStore* store,
                                                                CatalogStore* catalogs,
                                                                RetrievalEngine* engine) {
  std::unique_ptr<SharedStateFollower> f(
      new SharedStateFollower(std::move(options), store, catalogs, engine));
  f->thread_ = std::thread([p = f.get()] { p->Loop(); });
  return f;
}

SharedStateFollower::~SharedStateFollower() { Stop(); }

void SharedStateFollower::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

SharedStateFollower::Stats SharedStateFollower::stats() const {
  absl::MutexLock lock(&stats_mu_);
  return stats_;
}

absl::Status SharedStateFollower::SyncCatalog() {
  ASSIGN_OR_RETURN(const std::optional<int64_t> latest, catalogs_->LatestVersion());
  if (!latest.has_value() || *latest <= engine_->snapshot()->catalog_version()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::optional<StoredCatalog> stored, catalogs_->Load());
  if (!stored.has_value()) return absl::OkStatus();
  RETURN_IF_ERROR(engine_->AdoptCatalog(std::move(stored->items), stored->version));
  absl::MutexLock lock(&stats_mu_);
  ++stats_.catalog_adoptions;
  return absl::OkStatus();
}

absl::Status SharedStateFollower::SyncModel() {
  ASSIGN_OR_RETURN(std::optional<std::string> current, store_->Current());
  if (!current.has_value() || *current == engine_->snapshot()->model_version()) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(ModelFolder folder, store_->Load(*current));
  auto model = std::make_shared<const TwoTowerModel>(std::move(folder.policy));
  RETURN_IF_ERROR(engine_->ReplaceModel(*current, std::move(model)));
  std::fprintf(stderr, "optower-server: now serving model version %s (CURRENT of the shared registry)\n",
               current->c_str());
  absl::MutexLock lock(&stats_mu_);
  ++stats_.model_swaps;
  return absl::OkStatus();
}

absl::Status SharedStateFollower::SyncOnce() {
  absl::MutexLock lock(&sync_mu_);
  absl::Status s = SyncCatalog();
  absl::Status m = SyncModel();
  if (s.ok()) s = m;
  absl::MutexLock stats_lock(&stats_mu_);
  ++stats_.syncs;
  if (!s.ok()) {
    ++stats_.errors;
    stats_.last_error = std::string(s.message());
  }
  return s;
}

void SharedStateFollower::Loop() {
  std::unique_ptr<PgConnection> conn;
  absl::Status last = absl::OkStatus();
  while (!stop_.HasBeenNotified()) {
    if (conn == nullptr || !conn->ok()) {
      conn.reset();
      absl::StatusOr<std::unique_ptr<PgConnection>> c =
          PgConnection::Connect(options_.dsn, "optower-follower");
      if (c.ok() && (*c)->Listen("optower_current").ok() && (*c)->Listen("optower_catalog").ok()) {
        conn = std::move(*c);
      }
    }
    if (!options_.active || options_.active()) {
      absl::Status s = SyncOnce();
      if (!s.ok() && s.ToString() != last.ToString()) {
        std::fprintf(stderr, "optower-server: warning: following the shared state: %s\n",
                     s.ToString().c_str());
      }
      last = s;
    }
    if (conn == nullptr) {
      stop_.WaitForNotificationWithTimeout(options_.poll_interval);
      continue;
    }
    // Wake at a notification, at the poll interval, or soon after Stop (checked every 100 ms).
    const absl::Time until = absl::Now() + options_.poll_interval;
    while (!stop_.HasBeenNotified() && absl::Now() < until) {
      absl::StatusOr<std::vector<PgConnection::Notification>> n =
          conn->WaitForNotifications(std::min(absl::Milliseconds(100), until - absl::Now()));
      if (!n.ok()) {
        conn.reset();  // reconnect (and LISTEN again) at the top
        break;
      }
      if (!n->empty()) {
        absl::MutexLock lock(&stats_mu_);
        stats_.notifications += static_cast<int64_t>(n->size());
        break;
      }
    }
  }
}

}  // namespace optower::server
