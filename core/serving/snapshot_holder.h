// SnapshotHolder: the currently served ModelSnapshot, published and read atomically (the pattern of
// tensorflow/serving's util/fast_read_dynamic_ptr.h, reduced to what we need).
//
//   std::shared_ptr<const ModelSnapshot> s = holder.Get();   // a request pins its snapshot
//   holder.Publish(std::move(next));                         // later requests see `next`
//
// A reader copies the pointer under a reader lock held only for that copy (never during a build or a
// request), so readers never wait for a catalog change or a model swap; the previous snapshot is freed
// when the last request holding it finishes. Publish never fails and does not wait for readers.
//
// Thread safety: all methods may be called from any thread. Serialising *writers* (so that two
// catalog changes do not both start from the same snapshot) is the caller's job (RetrievalEngine).
#ifndef OPTOWER_CORE_SERVING_SNAPSHOT_HOLDER_H_
#define OPTOWER_CORE_SERVING_SNAPSHOT_HOLDER_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/serving/model_snapshot.h"

namespace optower {

class SnapshotHolder {
 public:
  explicit SnapshotHolder(std::shared_ptr<const ModelSnapshot> initial = nullptr);
  SnapshotHolder(const SnapshotHolder&) = delete;
  SnapshotHolder& operator=(const SnapshotHolder&) = delete;

  // The current snapshot (null only if none was ever published).
  std::shared_ptr<const ModelSnapshot> Get() const;
  // Makes `next` current and returns the previous one (so the caller decides where it is freed).
  std::shared_ptr<const ModelSnapshot> Publish(std::shared_ptr<const ModelSnapshot> next);
  // Number of Publish calls so far.
  int64_t publications() const;

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const ModelSnapshot> current_ ABSL_GUARDED_BY(mu_);
  int64_t publications_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_SNAPSHOT_HOLDER_H_
