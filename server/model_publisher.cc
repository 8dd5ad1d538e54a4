#include "server/model_publisher.h"

#include <cstdio>
#include <memory>
#include <string>

#include "core/base/status_macros.h"
#include "core/base/test_points.h"

namespace optower::server {

bool ModelPublisher::served_trained() const {
  return untrained_version_.empty() || engine_->snapshot()->model_version() != untrained_version_;
}

absl::StatusOr<ServedModel> ModelPublisher::Current() const {
  const std::shared_ptr<const ModelSnapshot> snap = engine_->snapshot();
  ServedModel m;
  // Only stored versions are a manifest's parent; "init-0" (random towers) is none.
  m.version = IsModelVersion(snap->model_version()) ? snap->model_version() : "";
  m.model = snap->shared_model();
  m.trained = untrained_version_.empty() || snap->model_version() != untrained_version_;
  m.catalog = snap->catalog();
  return m;
}

absl::Status ModelPublisher::Publish(const std::string& version, const TwoTowerModel& policy) {
  // The trainer keeps its own copy; the snapshot shares this one with every request using it.
  auto model = std::make_shared<const TwoTowerModel>(policy.Clone());
  CrashPoint("publish.before_swap");
  RETURN_IF_ERROR(engine_->ReplaceModel(version, std::move(model)));
  CrashPoint("publish.after_swap");
  publications_.fetch_add(1, std::memory_order_relaxed);
  // The snapshot just published (a catalog change racing in would carry the same model, and its
  // recall is as valid for this version).
  const std::shared_ptr<const ModelSnapshot> snap = engine_->snapshot();
  if (snap->model_version() == version) {
    const double recall = snap->index().recall_at_10();
    const absl::Status recorded = store_->UpdateManifest(
        version, [recall](ModelManifest& m) { m.index_recall = recall; });
    // The version is served either way; the recall in the manifest is informational, so a failed
    // rewrite is reported, not turned into a failed publish (which would misstate what is served).
    if (!recorded.ok()) {
      std::fprintf(stderr,
                   "optower-server: warning: version %s is served but its manifest could not "
                   "record the index recall: %s\n",
                   version.c_str(), std::string(recorded.message()).c_str());
    }
  }
  return absl::OkStatus();
}

TrainerHooks ModelPublisher::Hooks() {
  TrainerHooks hooks;
  hooks.current_model = [this] { return Current(); };
  hooks.publish = [this](const std::string& version, const TwoTowerModel& policy) {
    return Publish(version, policy);
  };
  return hooks;
}

}  // namespace optower::server
