// ModelPublisher: the server's side of the trainer's hooks (core/training/trainer.h, TrainerHooks) — what is
// served right now, and how a trained or stored version becomes the served one.
//
//   current_model -> the engine's snapshot: its version (when it is a stored version), model,
//                    catalog, and `trained` (false only for the random towers the server started
//                    with, which a job should not warm-start from);
//   publish       -> RetrievalEngine::ReplaceModel: re-embed the current catalog with the new item
//                    tower, build the index (recall@10 measured against exact search), swap the
//                    snapshot in one step; then record that recall in the version's manifest.
// Load, then swap: a failed build leaves the served snapshot untouched, and requests in flight
// keep the snapshot they started with.
//
// Thread safety: all methods may be called from any thread. Publish blocks for the index build;
// it is serialised with catalog changes by the engine, and with other publishes by the Trainer.
// Ownership: the engine and store are borrowed and must outlive this object.
#ifndef OPTOWER_SERVER_MODEL_PUBLISHER_H_
#define OPTOWER_SERVER_MODEL_PUBLISHER_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/storage/model_store.h"
#include "core/serving/retrieval_engine.h"
#include "core/training/trainer.h"

namespace optower::server {

class ModelPublisher {
 public:
  // `untrained_version`: the version name of the random towers the server started with ("" when
  // it started from a trained model).
  ModelPublisher(RetrievalEngine* engine, ModelStore* store, std::string untrained_version)
      : engine_(engine), store_(store), untrained_version_(std::move(untrained_version)) {}

  // The served snapshot as the trainer sees it (never fails today; StatusOr for the hook's type).
  absl::StatusOr<ServedModel> Current() const;
  // Serves a copy of `policy` as `version` (see the file comment).
  absl::Status Publish(const std::string& version, const TwoTowerModel& policy);
  // Hooks bound to this object (which must outlive the Trainer that holds them).
  TrainerHooks Hooks();

  // Whether the served towers came from training.
  bool served_trained() const;
  // Successful publishes since start (trainer promotions + rollbacks).
  int64_t publications() const { return publications_.load(std::memory_order_relaxed); }

 private:
  RetrievalEngine* const engine_;
  ModelStore* const store_;
  const std::string untrained_version_;
  std::atomic<int64_t> publications_{0};
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_MODEL_PUBLISHER_H_
