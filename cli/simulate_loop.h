// `optower simulate`'s round loop against a running optower-server: per round, plays
// requests_per_round users (Retrieve with reproducible seeds, Bernoulli rewards from the synthetic
// environment's q(x, a) sent as Feedback), measures the TRUE value of what was served, then waits for
// the event log to commit the round and retrains through the admin RPCs (TriggerRetrain +
// WatchTraining). Also the command's Ctrl-C / SIGTERM handling: checked between calls.
//
// Thread safety: a Simulation belongs to one thread.
#ifndef OPTOWER_CLI_SIMULATE_LOOP_H_
#define OPTOWER_CLI_SIMULATE_LOOP_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/simulate_env.h"
#include "cli/simulate_flags.h"
#include "client/optower_client.h"

namespace optower::cli::sim {

struct RoundResult {
  int64_t round = 0;
  int64_t requests = 0;
  int64_t served_items = 0;
  double served_value = 0;       // mean true q(x, a) over all served items (all positions)
  double served_value_pos0 = 0;  // same, position 0 only
  std::vector<double> position_values;   // [K] same, per position
  double optimal_value = 0;      // mean over contexts of the best K-slate's average q
  std::vector<double> position_optimal;  // [K] mean over contexts of the j-th best item's q
  double uniform_value = 0;      // mean over contexts and items of q (the uniform policy)
  // The best a server exploring with epsilon can serve: (1-eps) optimal + eps uniform (exact for
  // K = 1: pi_0 = (1-eps) softmax + eps/N; an approximation for K > 1).
  double ceiling_value = 0;
  double observed_reward = 0;    // mean Bernoulli reward sent as feedback
  std::string model_version;     // served during the round (the most frequent one)
  int64_t versions_seen = 0;     // distinct versions in the round's responses (1 normally)
  double play_seconds = 0;
  double retrieve_p99_ms = 0;  // client-side latency of the round's Retrieve calls
  // --swap-probe-qps: Retrieve calls sent while the job after this round trained and swapped.
  int64_t swap_probe_requests = 0;
  double swap_p99_ms = NAN;
  // The retrain after the round (empty job_id after the last round: nothing would serve it).
  std::string job_id;
  std::string job_state;  // succeeded | rejected | failed | cancelled
  std::string decision;   // promoted | rejected | "" (failed before the gate)
  std::string reason;
  std::string saved_version;
  std::string next_version;  // served after the job
  double job_seconds = 0;
  int64_t train_events = 0;      // samples the job used (train + holdout)
  int64_t pending_excluded = 0;  // should stay 0 (see SimServerConfig)
  double ope_old = NAN, ope_new = NAN, ope_diff = NAN, ope_diff_low = NAN, ope_diff_high = NAN;
  // --replicas > 1: from the job's end to every replica serving the trainer's version.
  double replica_sync_ms = NAN;
};

// (value - first) / (optimal - first); NaN when optimal == first.
double GapClosed(double value, double first, double optimal);

// RpcError, with the code's name when the server sent no message (e.g. UNIMPLEMENTED).
absl::Status Rpc(const std::string& rpc, const absl::Status& status);

// SIGINT / SIGTERM set a flag (the handlers are installed once by the command); CheckInterrupted is
// Cancelled("interrupted by ...") once one arrived.
void InstallInterruptHandlers();
absl::Status CheckInterrupted();

class Simulation {
 public:
  // `env` and the clients must outlive the object. `serving`: the processes that take Retrieve
  // and Feedback (one, or the replicas of --backend postgres: request i goes to replica
  // i mod R, and each feedback batch to the replica after the one that got the previous batch,
  // so feedback usually reaches another replica than the one that served it); `admin`: the one
  // that trains (the same process for one server).
  Simulation(const SimFlags& flags, SimEnvironment* env, std::vector<client::OptowerClient*> serving,
             client::OptowerClient* admin)
      : f_(flags), env_(env), serving_(std::move(serving)), client_(admin) {}

  // Plays one round of requests_per_round users.
  absl::Status PlayRound(int64_t round, RoundResult* out);

  // Waits until every served row and every accepted feedback row is committed to the event log, so
  // that a job's snapshot sees the whole round with its rewards (nothing pending or defaulted).
  absl::Status WaitForCommit();

  // WaitForCommit, TriggerRetrain, then WatchTraining to the final event; fills the job columns of
  // `out`. With replicas, then waits until every replica serves what the trainer serves
  // (out->replica_sync_ms).
  absl::Status Retrain(RoundResult* out);

 private:
  client::CallOptions Call() const;
  // Request i of `round` for `context` ([dim_context]), timed into `latencies_ms`; checks that K
  // items came back.
  absl::StatusOr<v1::RetrieveResponse> RetrieveOne(int64_t round, int64_t i,
                                                   std::vector<double>* latencies_ms);
  absl::Status Flush(v1::FeedbackRequest* feedback);
  // Watches `job_id` to its final event, printing the phases unless --quiet.
  absl::Status Watch(const std::string& job_id);

  // Waits until every serving process serves `version`.
  absl::Status WaitForReplicas(const std::string& version);

  const SimFlags& f_;
  SimEnvironment* env_;
  std::vector<client::OptowerClient*> serving_;
  client::OptowerClient* client_;  // the admin (trainer) process
  int64_t feedback_batches_ = 0;
  int64_t total_served_ = 0;
  int64_t total_feedback_ = 0;
};

// Plays rounds 1..f.rounds with a retrain after each but the last (no round would be served by the
// last one's model), printing one line per round unless --quiet; appends to `rounds`.
absl::Status RunRounds(const SimFlags& f, Simulation& sim, std::vector<RoundResult>* rounds);

}  // namespace optower::cli::sim

#endif  // OPTOWER_CLI_SIMULATE_LOOP_H_
