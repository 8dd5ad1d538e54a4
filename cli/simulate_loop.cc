#include "cli/simulate_loop.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/online_client.h"
#include "core/base/status_macros.h"

namespace optower::cli::sim {
namespace {

std::atomic<int> g_signal{0};

extern "C" void OnSignal(int sig) { g_signal.store(sig); }

uint64_t MixSeed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B3E8CDULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::string StateName(v1::TrainingJobState s) {
  switch (s) {
    case v1::TRAINING_JOB_STATE_QUEUED: return "queued";
    case v1::TRAINING_JOB_STATE_RUNNING: return "running";
    case v1::TRAINING_JOB_STATE_SUCCEEDED: return "succeeded";
    case v1::TRAINING_JOB_STATE_REJECTED: return "rejected";
    case v1::TRAINING_JOB_STATE_FAILED: return "failed";
    case v1::TRAINING_JOB_STATE_CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

// The ground truth of a round's contexts, accumulated chunk by chunk (a [Q, N] matrix of a round
// would be 4 GB at 10^6 items): optimal, uniform and epsilon-ceiling values from q [rows, n]
// (K-slates: the best K items' average q).
struct TruthSums {
  double optimal = 0, uniform = 0;
  std::vector<double> position;  // sum over rows of the j-th best q
};

void AddTruth(const DenseMatrix& q, int64_t rows, int64_t n, int64_t k, TruthSums* t) {
  std::vector<double> row(static_cast<size_t>(n));
  t->position.resize(static_cast<size_t>(k), 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    std::copy(q.row(i), q.row(i) + n, row.begin());
    std::partial_sort(row.begin(), row.begin() + k, row.end(), std::greater<double>());
    double best = 0;
    for (int64_t j = 0; j < k; ++j) {
      best += row[static_cast<size_t>(j)];
      t->position[static_cast<size_t>(j)] += row[static_cast<size_t>(j)];
    }
    t->optimal += best / static_cast<double>(k);
    double sum = 0;
    for (double v : row) sum += v;
    t->uniform += sum / static_cast<double>(n);
  }
}

void FinishTruth(const TruthSums& t, int64_t q_n, int64_t k, double epsilon, RoundResult* out) {
  out->position_optimal.assign(static_cast<size_t>(k), 0.0);
  for (int64_t j = 0; j < k && j < static_cast<int64_t>(t.position.size()); ++j)
    out->position_optimal[static_cast<size_t>(j)] = t.position[static_cast<size_t>(j)] / q_n;
  out->optimal_value = t.optimal / static_cast<double>(q_n);
  out->uniform_value = t.uniform / static_cast<double>(q_n);
  out->ceiling_value = (1 - epsilon) * out->optimal_value + epsilon * out->uniform_value;
}

// The job's outcome in the job columns of `out`.
void FillJob(const v1::TrainingJob& job, const v1::GetStatsResponse& stats, absl::Time start,
             RoundResult* out) {
  out->job_state = StateName(job.state());
  out->decision = job.decision().empty() ? out->job_state : job.decision();
  out->reason = job.reason();
  out->saved_version = job.version();
  out->next_version = stats.model_version();
  out->train_events = job.counts().with_feedback() + job.counts().default_reward();
  out->pending_excluded = job.counts().pending_excluded();
  if (job.started_unix_micros() > 0 && job.ended_unix_micros() >= job.started_unix_micros()) {
    out->job_seconds = (job.ended_unix_micros() - job.started_unix_micros()) / 1e6;
  } else {
    out->job_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  }
  if (job.has_ope()) {
    out->ope_old = job.ope().old_value().value();
    out->ope_new = job.ope().new_value().value();
    out->ope_diff = job.ope().diff().value();
    out->ope_diff_low = job.ope().diff().ci_low();
    out->ope_diff_high = job.ope().diff().ci_high();
  }
}

// The q-quantile of latencies in ms (nearest rank); NAN when empty.
double QuantileMs(std::vector<double> ms, double q) {
  if (ms.empty()) return NAN;
  const size_t i = std::min(ms.size() - 1, static_cast<size_t>(std::ceil(q * ms.size())) - 1);
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(i), ms.end());
  return ms[i];
}

}  // namespace

double GapClosed(double value, double first, double optimal) {
  const double denom = optimal - first;
  if (!(std::fabs(denom) > 1e-12)) return NAN;
  return (value - first) / denom;
}

absl::Status Rpc(const std::string& rpc, const absl::Status& status) {
  if (!status.message().empty()) return RpcError(rpc, status);
  return absl::Status(status.code(), absl::StrCat(rpc, ": ", absl::StatusCodeToString(status.code())));
}

void InstallInterruptHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

absl::Status CheckInterrupted() {
  const int sig = g_signal.load();
  if (sig == 0) return absl::OkStatus();
  return absl::CancelledError(absl::StrCat("interrupted by ", strsignal(sig)));
}

absl::StatusOr<v1::RetrieveResponse> Simulation::RetrieveOne(int64_t round, int64_t i,
                                                             std::vector<double>* latencies_ms) {
  v1::RetrieveRequest request;
  const float* context = env_->Dense(i);
  request.mutable_context()->mutable_dense()->Add(context, context + f_.dim_context);
  for (const CategoricalFeature& c : env_->Categorical(i)) {
    v1::CategoricalFeature* out = request.mutable_context()->add_categorical();
    out->set_name(c.name);
    out->mutable_ids()->Add(c.ids.begin(), c.ids.end());
  }
  request.set_k(static_cast<int32_t>(f_.k));
  // Reproducible slates: the same flags give the same requests and sampling seeds.
  request.set_seed(MixSeed(static_cast<uint64_t>(f_.seed),
                           static_cast<uint64_t>(round) * 1000000007ULL + static_cast<uint64_t>(i)));
  const absl::Time sent = absl::Now();
  client::OptowerClient* server = serving_[static_cast<size_t>(i) % serving_.size()];
  absl::StatusOr<v1::RetrieveResponse> response = server->Retrieve(request, Call());
  latencies_ms->push_back(absl::ToDoubleMilliseconds(absl::Now() - sent));
  if (!response.ok()) return Rpc("Retrieve", response.status());
  if (response->items_size() != f_.k) {
    return absl::InternalError(absl::StrFormat("Retrieve returned %d items, asked for k=%d",
                                               response->items_size(), f_.k));
  }
  return response;
}

absl::Status Simulation::PlayRound(int64_t round, RoundResult* out) {
  const absl::Time start = absl::Now();
  const int64_t q_n = f_.requests_per_round, n = f_.items, k = f_.k;
  env_->SampleRound(q_n);
  out->round = round;
  out->requests = q_n;
  // The true expected rewards of the round's contexts, a chunk of rows at a time (<= 16M doubles).
  const int64_t chunk = std::clamp<int64_t>((int64_t{1} << 24) / std::max<int64_t>(n, 1), 1, q_n);
  TruthSums truth;
  DenseMatrix q;
  int64_t q_first = 0;  // q holds rows q_first .. q_first + chunk - 1 of the round

  double served_sum = 0, reward_sum = 0;
  int64_t served = 0;
  std::vector<double> position_sum(static_cast<size_t>(k), 0.0);
  std::vector<int64_t> position_count(static_cast<size_t>(k), 0);
  std::map<std::string, int64_t> versions;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(static_cast<size_t>(q_n));
  v1::FeedbackRequest feedback;
  for (int64_t i = 0; i < q_n; ++i) {
    RETURN_IF_ERROR(CheckInterrupted());
    if (i % chunk == 0) {
      q_first = i;
      const int64_t rows = std::min(chunk, q_n - i);
      ASSIGN_OR_RETURN(q, env_->ExpectedReward(i, rows));
      AddTruth(q, rows, n, k, &truth);
    }
    absl::StatusOr<v1::RetrieveResponse> response =
        RetrieveOne(round, i, &latencies_ms);
    if (!response.ok()) return response.status();
    ++versions[response->model_version()];
    for (const v1::RetrievedItem& item : response->items()) {
      if (item.item_id() < 0 || item.item_id() >= n) {
        return absl::InternalError(absl::StrCat("Retrieve served unknown item ", item.item_id()));
      }
      const double qv = q.at(i - q_first, item.item_id());
      const float reward = env_->SampleReward(qv);
      served_sum += qv;
      reward_sum += reward;
      ++served;
      if (item.position() >= 0 && item.position() < k) {
        position_sum[static_cast<size_t>(item.position())] += qv;
        ++position_count[static_cast<size_t>(item.position())];
      }
      v1::FeedbackEvent* e = feedback.add_events();
      e->set_request_id(response->request_id());
      e->set_item_id(item.item_id());
      e->set_reward(reward);
      if (feedback.events_size() >= f_.feedback_batch) RETURN_IF_ERROR(Flush(&feedback));
    }
  }
  RETURN_IF_ERROR(Flush(&feedback));
  FinishTruth(truth, q_n, k, f_.epsilon, out);
  out->retrieve_p99_ms = QuantileMs(std::move(latencies_ms), 0.99);
  out->served_items = served;
  out->served_value = served_sum / static_cast<double>(served);
  out->position_values.resize(static_cast<size_t>(k));
  for (size_t j = 0; j < position_sum.size(); ++j) {
    out->position_values[j] =
        position_count[j] > 0 ? position_sum[j] / static_cast<double>(position_count[j]) : NAN;
  }
  out->served_value_pos0 = out->position_values[0];  // k >= 1
  out->observed_reward = reward_sum / static_cast<double>(served);
  out->versions_seen = static_cast<int64_t>(versions.size());
  int64_t most = -1;
  for (const auto& [version, count] : versions) {
    if (count > most) {
      most = count;
      out->model_version = version;
    }
  }
  total_served_ += served;
  out->play_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return absl::OkStatus();
}

absl::Status Simulation::WaitForCommit() {
  const absl::Time deadline = absl::Now() + absl::Seconds(std::max(30.0, f_.timeout));
  while (true) {
    RETURN_IF_ERROR(CheckInterrupted());
    // Each serving process logs what it served and the feedback it took: add them up.
    v1::EventLogStats log;
    for (client::OptowerClient* server : serving_) {
      absl::StatusOr<v1::GetStatsResponse> stats = server->GetStats(Call());
      if (!stats.ok()) return Rpc("GetStats", stats.status());
      log.set_served_rows(log.served_rows() + stats->event_log().served_rows());
      log.set_feedback_rows(log.feedback_rows() + stats->event_log().feedback_rows());
      log.set_queue_depth(log.queue_depth() + stats->event_log().queue_depth());
      log.set_errors(log.errors() + stats->event_log().errors());
    }
    if (log.served_rows() >= total_served_ && log.feedback_rows() >= total_feedback_ &&
        log.queue_depth() == 0) {
      return absl::OkStatus();
    }
    if (log.errors() > 0) {
      return absl::InternalError(absl::StrCat("the server's event log reports ", log.errors(),
                                              " write errors"));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat(
          "event log did not commit the round: %d/%d served and %d/%d feedback rows",
          log.served_rows(), total_served_, log.feedback_rows(), total_feedback_));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::Status Simulation::Watch(const std::string& job_id) {
  std::string last_phase;
  bool final_seen = false;
  client::CallOptions watch;
  watch.deadline = absl::Seconds(f_.retrain_timeout);
  const absl::Status watched = client_->WatchTraining(
      job_id,
      [&](const v1::TrainingEvent& e) {
        if (e.final()) final_seen = true;
        if (f_.quiet || e.phase() == last_phase) return;
        last_phase = e.phase();
        if (e.phase() != "done") {
          std::printf(" %s", e.phase().c_str());
          std::fflush(stdout);
        }
      },
      watch);
  if (!watched.ok()) return Rpc("WatchTraining", watched);
  if (!final_seen) {
    return absl::InternalError(
        absl::StrCat("WatchTraining: the stream of ", job_id, " ended without a final event"));
  }
  return absl::OkStatus();
}

absl::Status Simulation::Retrain(RoundResult* out) {
  RETURN_IF_ERROR(WaitForCommit());
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> job_id = client_->TriggerRetrain(f_.force, Call());
  if (!job_id.ok()) return Rpc("TriggerRetrain", job_id.status());
  out->job_id = *job_id;
  if (!f_.quiet) std::printf("  retrain %s:", job_id->c_str());
  // The latency probe: a second client thread sending Retrieve calls at --swap-probe-qps while
  // the job trains, saves and swaps (its requests are logged but never get feedback).
  std::atomic<bool> stop_probe{false};
  std::vector<double> probe_ms;
  std::thread probe;
  if (f_.swap_probe_qps > 0) {
    probe = std::thread([&] {
      std::mt19937_64 rng(MixSeed(static_cast<uint64_t>(f_.seed), 0x70726f6265ULL + total_served_));
      std::normal_distribution<float> normal;
      const absl::Duration period = absl::Seconds(1.0 / f_.swap_probe_qps);
      absl::Time next = absl::Now();
      while (!stop_probe.load()) {
        v1::RetrieveRequest request;
        for (int64_t d = 0; d < f_.dim_context; ++d) request.mutable_context()->add_dense(normal(rng));
        request.set_k(static_cast<int32_t>(f_.k));
        const absl::Time sent = absl::Now();
        if (serving_[0]->Retrieve(request, Call()).ok())
          probe_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - sent));
        next += period;
        const absl::Time now = absl::Now();
        if (next > now) absl::SleepFor(next - now); else next = now;
      }
    });
  }
  const absl::Status watched = Watch(*job_id);
  if (probe.joinable()) {
    stop_probe.store(true);
    probe.join();
    out->swap_probe_requests = static_cast<int64_t>(probe_ms.size());
    out->swap_p99_ms = QuantileMs(std::move(probe_ms), 0.99);
  }
  RETURN_IF_ERROR(watched);
  absl::StatusOr<v1::TrainingJob> job = client_->GetTrainingJob(*job_id, Call());
  if (!job.ok()) return Rpc("GetTrainingJob", job.status());
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats(Call());
  if (!stats.ok()) return Rpc("GetStats", stats.status());
  FillJob(*job, *stats, start, out);
  if (serving_.size() > 1 || serving_[0] != client_) {
    const absl::Time synced = absl::Now();
    RETURN_IF_ERROR(WaitForReplicas(stats->model_version()));
    out->replica_sync_ms = absl::ToDoubleMilliseconds(absl::Now() - synced);
  }
  if (job->state() == v1::TRAINING_JOB_STATE_CANCELLED) {
    return absl::AbortedError(absl::StrCat(*job_id, " was cancelled: ", job->reason()));
  }
  if (!f_.quiet) {
    std::printf(" -> %s%s, serving %s (%.1f s%s)\n", out->decision.c_str(),
                out->saved_version.empty() ? "" : absl::StrCat(" ", out->saved_version).c_str(),
                out->next_version.c_str(), out->job_seconds,
                std::isnan(out->replica_sync_ms)
                    ? ""
                    : absl::StrFormat("; every replica serving it %.0f ms later",
                                      out->replica_sync_ms).c_str());
    if (out->job_state == "failed" || out->job_state == "rejected") {
      std::printf("    reason: %s\n", out->reason.c_str());
    }
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

client::CallOptions Simulation::Call() const {
  client::CallOptions call;
  call.deadline = absl::Seconds(f_.timeout);
  return call;
}

absl::Status Simulation::WaitForReplicas(const std::string& version) {
  const absl::Time deadline = absl::Now() + absl::Seconds(std::max(60.0, f_.timeout));
  for (client::OptowerClient* server : serving_) {
    while (true) {
      RETURN_IF_ERROR(CheckInterrupted());
      absl::StatusOr<v1::GetStatsResponse> stats = server->GetStats(Call());
      if (!stats.ok()) return Rpc("GetStats", stats.status());
      if (stats->model_version() == version) break;
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "a serving replica still serves ", stats->model_version(), ", not the trainer's ", version));
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  return absl::OkStatus();
}

absl::Status Simulation::Flush(v1::FeedbackRequest* feedback) {
  if (feedback->events_size() == 0) return absl::OkStatus();
  // Round robin over the replicas, so that feedback mostly reaches another replica than the one
  // that served it (the join is in the shared log, wherever feedback arrives).
  client::OptowerClient* server = serving_[static_cast<size_t>(++feedback_batches_) % serving_.size()];
  absl::StatusOr<v1::FeedbackResponse> r = server->Feedback(*feedback, Call());
  if (!r.ok()) return Rpc("Feedback", r.status());
  if (r->accepted() != feedback->events_size()) {
    return absl::InternalError(absl::StrFormat(
        "Feedback: %d of %d events accepted (%d duplicate, %d unknown)", r->accepted(),
        feedback->events_size(), r->duplicate(), r->unknown()));
  }
  total_feedback_ += r->accepted();
  feedback->clear_events();
  return absl::OkStatus();
}

absl::Status RunRounds(const SimFlags& f, Simulation& sim, std::vector<RoundResult>* rounds) {
  for (int64_t round = 1; round <= f.rounds; ++round) {
    RoundResult r;
    RETURN_IF_ERROR(sim.PlayRound(round, &r));
    const double first = rounds->empty() ? r.served_value : rounds->front().served_value;
    if (!f.quiet) {
      std::printf("round %lld: served value %.4f (optimal %.4f, gap closed %s) model %s%s, %.1f s\n",
                  static_cast<long long>(round), r.served_value, r.optimal_value,
                  rounds->empty() ? "-"
                                  : absl::StrFormat("%.3f", GapClosed(r.served_value, first,
                                                                      r.optimal_value)).c_str(),
                  r.model_version.c_str(),
                  r.versions_seen > 1 ? absl::StrCat(" (", r.versions_seen, " versions)").c_str()
                                      : "",
                  r.play_seconds);
      std::fflush(stdout);
    }
    // The last round's retrain is skipped: no round would be served by its model.
    if (round < f.rounds) RETURN_IF_ERROR(sim.Retrain(&r));
    rounds->push_back(std::move(r));
  }
  return absl::OkStatus();
}

}  // namespace optower::cli::sim
