// SharedStateFollower: keeps this process's engine on the shared deployment's state
// (docs/SCALING.md "Following CURRENT and the catalog"): the CURRENT model version of the
// registry and the newest catalog version, both in PostgreSQL.
//
// A thread LISTENs on optower_current and optower_catalog (the stores NOTIFY in the transaction
// that changes them) and also polls every poll_interval — the fallback for a notification lost
// while the connection was down (it reconnects and re-LISTENs). Each wake-up runs SyncOnce:
//   catalog: a stored version newer than the served one is loaded and adopted
//            (RetrievalEngine::AdoptCatalog: re-embed, rebuild the index, swap);
//   model:   a CURRENT different from the served version is loaded (ModelStore::Load, which
//            materialises a complete version or fails: never half a model) and swapped in with
//            RetrievalEngine::ReplaceModel — the same load-then-swap path as a local promotion;
//            requests in flight finish on the snapshot they started with.
// A failed sync is counted, logged and retried at the next wake-up; serving continues on what it
// has. `active` (optional) pauses following while it returns false: the elected trainer writes
// CURRENT and the catalog itself and must not chase its own writes.
//
// Thread safety: SyncOnce may be called from any thread (serialised internally); stats() too.
#ifndef OPTOWER_SERVER_SHARED_STATE_FOLLOWER_H_
#define OPTOWER_SERVER_SHARED_STATE_FOLLOWER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "core/serving/retrieval_engine.h"
#include "core/storage/catalog_store.h"
#include "core/storage/model_store.h"

namespace optower::server {

class SharedStateFollower {
 public:
  struct Options {
    std::string dsn;
    absl::Duration poll_interval = absl::Seconds(2);
    std::function<bool()> active;  // null: always follow
  };
  struct Stats {
    int64_t model_swaps = 0;
    int64_t catalog_adoptions = 0;
    int64_t notifications = 0;
    int64_t syncs = 0;
    int64_t errors = 0;
    std::string last_error;
  };

  // Borrows store, catalogs and engine (they must outlive it). Starts the thread; the first sync
  // runs at once. A database that cannot be reached is not an error here: the thread retries.
  static std::unique_ptr<SharedStateFollower> Start(Options options, ModelStore* store,
                                                    CatalogStore* catalogs, RetrievalEngine* engine);
  ~SharedStateFollower();  // Stop()
  void Stop();             // joins the thread; idempotent

  // Brings the engine to the shared state now (catalog, then model). OK when nothing changed.
  absl::Status SyncOnce();
  Stats stats() const;

 private:
  SharedStateFollower(Options options, ModelStore* store, CatalogStore* catalogs,
                      RetrievalEngine* engine)
      : options_(std::move(options)), store_(store), catalogs_(catalogs), engine_(engine) {}
  void Loop();
  absl::Status SyncCatalog();
  absl::Status SyncModel();

  const Options options_;
  ModelStore* const store_;
  CatalogStore* const catalogs_;
  RetrievalEngine* const engine_;
  absl::Mutex sync_mu_;  // one SyncOnce at a time
  mutable absl::Mutex stats_mu_;
  Stats stats_ ABSL_GUARDED_BY(stats_mu_);
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_SHARED_STATE_FOLLOWER_H_
