// WatchTraining's server-streaming reactor (gRPC callback API). gRPC's callback threads must not
// block, but the trainer's events arrive over minutes, so each watch gets its own thread (at most
// WatchRegistry::max_streams at a time) that
// waits on Trainer::WaitForEvents (timed waits of kWatchPoll, so it notices a cancelled call or a
// stopping service promptly) and writes one event at a time (the next StartWrite only after
// OnWriteDone). The stream ends with OK after the job's final event, with the trainer's status for
// an unknown job (NOT_FOUND), CANCELLED when the client went away, UNAVAILABLE when the service
// stops.
//
// Lifetime: created by the handler; deletes itself in OnDone (after joining its thread). The
// WatchRegistry counts live reactors so that the service can stop them and wait for them before
// the Trainer is destroyed.
#ifndef OPTOWER_SERVER_TRAINING_WATCH_H_
#define OPTOWER_SERVER_TRAINING_WATCH_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include <grpcpp/support/server_callback.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/training/trainer.h"
#include "optower/v1/optower.pb.h"

namespace optower::server {

inline constexpr absl::Duration kWatchPoll = absl::Milliseconds(200);

// Live watches of one service, the flag that tells them to stop, and the bound on streaming ones
// (each holds a thread).
class WatchRegistry {
 public:
  explicit WatchRegistry(int max_streams = 16) : max_streams_(max_streams) {}
  void Add();
  void Remove();
  // Takes one of max_streams slots: false when all are taken. EndStream gives it back.
  bool TryStartStream();
  void EndStream();
  int max_streams() const { return max_streams_; }
  bool stopping() const;
  // Sets the stop flag and waits (at most `timeout`) until every watch is done; false on timeout.
  bool StopAndWait(absl::Duration timeout);

 private:
  mutable absl::Mutex mu_;
  const int max_streams_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

class TrainingWatchReactor final : public grpc::ServerWriteReactor<v1::TrainingEvent> {
 public:
  // Streams events of `job_id` with seq > after_seq. A non-OK `refusal` finishes the call at once
  // with that status (no thread); otherwise `trainer` must be non-null. When the registry's
  // max_streams streams are live the call finishes with RESOURCE_EXHAUSTED, and when the OS
  // refuses a thread with UNAVAILABLE (never an abort). `on_finish` (optional) is
  // called once with the final status, from the streaming thread (latency metrics).
  TrainingWatchReactor(const Trainer* trainer, std::string job_id, int64_t after_seq,
                       WatchRegistry* registry, absl::Status refusal,
                       std::function<void(const absl::Status&)> on_finish);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ~TrainingWatchReactor() override = default;
  void Run();
  // Writes `event_` and waits for OnWriteDone; false if the write failed (call cancelled).
  bool WriteAndWait();
  void FinishWith(const absl::Status& status);

  const Trainer* const trainer_;
  const std::string job_id_;
  const int64_t after_seq_;
  WatchRegistry* const registry_;
  std::function<void(const absl::Status&)> on_finish_;
  v1::TrainingEvent event_;  // the message being written (must live until OnWriteDone)

  absl::Mutex mu_;
  bool write_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = true;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool streaming_ = false;  // holds a registry stream slot (released in OnDone)
  std::thread thread_;
};

}  // namespace optower::server

#endif  // OPTOWER_SERVER_TRAINING_WATCH_H_
