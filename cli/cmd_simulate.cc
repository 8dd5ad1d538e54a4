// optower simulate: the closed loop, end to end (issue 4 §3; docs/SIMULATION.md). Starts a real
// optower-server child process on loopback in a fresh data folder, plays users from OBP's synthetic
// environment in streaming mode (item features = the environment's action contexts, rewards ~
// Bernoulli(q(x, a))), sends feedback for every served item, retrains through the admin RPCs after
// every round but the last, and reports per round the TRUE value of what the server served beside
// the optimal value and the first round's. Writes rounds.csv, summary.json, server.textproto and
// learning_curve.png (scripts/plot_simulation.py) into --out, atomically.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/script_path.h"
#include "cli/flag_parser.h"
#include "cli/online_client.h"
#include "cli/server_process.h"
#include "client/optower_client.h"
#include "core/atomic_file.h"
#include "core/csv_io.h"
#include "core/json_writer.h"
#include "core/status_macros.h"
#include "core/synthetic_env.h"

namespace optower::cli {
namespace {

namespace v1 = ::optower::v1;

// ---- Flags ----

struct SimFlags {
  // Defaults: the README's main job (docs/SIMULATION.md has its measured run).
  int64_t items = 10000;
  int64_t rounds = 10;
  int64_t requests_per_round = 500;
  int64_t k = 1;
  int64_t dim_context = 10;
  int64_t dim_item_features = 10;  // 0 = one-hot item features
  std::string reward = "logistic";
  int64_t seed = 0;
  int64_t reference_rounds = 100000;
  // Server.
  double epsilon = 0.1;
  double temperature = 0.0;  // 0 = the served model's
  int64_t top_m = 100;
  // Trainer.
  std::string objective = "dr";
  bool force = false;
  int64_t train_threads = 2;
  int64_t epochs = 0;  // 0 = the server's default
  // Plumbing.
  std::string out = "simulate-out";
  bool overwrite = false;
  std::string data_dir;
  bool keep_data = false;
  std::string server_binary;
  int64_t feedback_batch = 1000;
  double timeout = 30;           // per RPC
  double retrain_timeout = 900;  // per job
  bool no_plot = false;
  bool quiet = false;
};

absl::Status Validate(const SimFlags& f) {
  auto bad = [](const std::string& flag, auto value, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": ", why));
  };
  if (f.items < 2) return bad("items", f.items, "must be >= 2");
  if (f.rounds < 1) return bad("rounds", f.rounds, "must be >= 1");
  if (f.requests_per_round < 1) return bad("requests-per-round", f.requests_per_round, "must be >= 1");
  if (f.k < 1 || f.k > 100) return bad("k", f.k, "must be in [1, 100]");
  if (f.k > f.items) return bad("k", f.k, absl::StrCat("must be <= --items=", f.items));
  if (f.dim_context < 1) return bad("dim-context", f.dim_context, "must be >= 1");
  if (f.dim_item_features < 0) {
    return bad("dim-item-features", f.dim_item_features, "must be >= 0 (0 = one-hot)");
  }
  if (!ParseRewardType(f.reward).ok()) {
    return bad("reward", f.reward, "must be one of logistic, logistic-polynomial, logistic-sparse");
  }
  if (f.seed < 0) return bad("seed", f.seed, "must be >= 0");
  if (f.reference_rounds < 1000) return bad("reference-rounds", f.reference_rounds, "must be >= 1000");
  if (!(f.epsilon >= 0 && f.epsilon <= 1)) return bad("epsilon", f.epsilon, "must be in [0, 1]");
  if (!(f.temperature >= 0) || !std::isfinite(f.temperature)) {
    return bad("temperature", f.temperature, "must be >= 0 (0 = the model's)");
  }
  if (f.top_m < 1) return bad("top-m", f.top_m, "must be >= 1");
  if (f.objective != "dr" && f.objective != "ipw" && f.objective != "dm") {
    return bad("objective", f.objective, "must be one of dr, ipw, dm");
  }
  if (f.train_threads < 1) return bad("train-threads", f.train_threads, "must be >= 1");
  if (f.epochs < 0) return bad("epochs", f.epochs, "must be >= 0 (0 = the server's default)");
  if (f.out.empty()) return absl::InvalidArgumentError("--out: empty");
  if (f.feedback_batch < 1 || f.feedback_batch > 1000) {
    return bad("feedback-batch", f.feedback_batch, "must be in [1, 1000]");
  }
  if (!(f.timeout > 0) || !std::isfinite(f.timeout)) return bad("timeout", f.timeout, "must be > 0");
  if (!(f.retrain_timeout > 0) || !std::isfinite(f.retrain_timeout)) {
    return bad("retrain-timeout", f.retrain_timeout, "must be > 0");
  }
  return absl::OkStatus();
}

// RpcError, with the code's name when the server sent no message (e.g. UNIMPLEMENTED).
absl::Status Rpc(const std::string& rpc, const absl::Status& status) {
  if (!status.message().empty()) return RpcError(rpc, status);
  return absl::Status(status.code(), absl::StrCat(rpc, ": ", absl::StatusCodeToString(status.code())));
}

std::string PlotScript() { return ScriptPath("plot_simulation.py"); }

// ---- Interruption (Ctrl-C / SIGTERM): stop between calls, clean up, exit non-zero. ----

std::atomic<int> g_signal{0};

extern "C" void OnSignal(int sig) { g_signal.store(sig); }

absl::Status CheckInterrupted() {
  const int sig = g_signal.load();
  if (sig == 0) return absl::OkStatus();
  return absl::CancelledError(absl::StrCat("interrupted by ", strsignal(sig)));
}

// ---- Data folder ----

// A fresh data folder: --data-dir (created; must not exist or be empty) or a temporary one, which is
// removed at the end unless --keep-data.
class DataDir {
 public:
  static absl::StatusOr<std::unique_ptr<DataDir>> Create(const std::string& requested, bool keep) {
    std::error_code ec;
    if (!requested.empty()) {
      if (std::filesystem::exists(requested, ec)) {
        if (!std::filesystem::is_directory(requested, ec) ||
            !std::filesystem::is_empty(requested, ec)) {
          return absl::AlreadyExistsError(
              absl::StrCat("--data-dir=", requested, ": exists and is not an empty folder"));
        }
      } else if (!std::filesystem::create_directories(requested, ec) || ec) {  // mkdir -p
        return absl::NotFoundError(absl::StrCat("--data-dir=", requested,
                                                ": cannot create: ", ec.message()));
      }
      // Absolute, so that the server's config does not depend on its working folder.
      const std::string absolute = std::filesystem::absolute(requested, ec).lexically_normal();
      return std::unique_ptr<DataDir>(
          new DataDir(absolute.empty() ? requested : absolute, /*remove=*/false));
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                                       "/optower-simulate-XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
    }
    return std::unique_ptr<DataDir>(new DataDir(pattern, /*remove=*/!keep));
  }
  ~DataDir() {
    if (remove_) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return absl::StrCat(path_, "/", name); }
  bool removed_at_end() const { return remove_; }

 private:
  DataDir(std::string path, bool remove) : path_(std::move(path)), remove_(remove) {}
  std::string path_;
  bool remove_;
};

// Shortest "%g" text that reads back as the same double (0.1 -> "0.1", not 0.10000000000000001).
std::string ShortDouble(double v) {
  for (int precision = 1; precision <= 17; ++precision) {
    std::string text = absl::StrFormat("%.*g", precision, v);
    if (std::strtod(text.c_str(), nullptr) == v) return text;
  }
  return absl::StrFormat("%.17g", v);
}

// A text-format string literal's contents (paths may hold quotes or backslashes).
std::string TextprotoEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// The server's configuration (text-format optower.v1.ServerConfig; written into the data folder
// and copied to --out). Trainer: the attribution window keeps its default (1 h): every served item
// gets feedback and the simulation waits until the feedback is committed before it triggers a job,
// so no row is ever pending or defaulted (the job counts in rounds.csv show it).
std::string ServerConfigText(const SimFlags& f, const DataDir& data) {
  std::string text = absl::StrFormat(
      "# written by `optower simulate`\n"
      "host: \"127.0.0.1\"\n"
      "port: 0\n"
      "data_dir: \"%s\"\n"
      "items_path: \"%s\"\n"
      "dim_context: %d\n"
      "epsilon: %s\n"
      "temperature: %s\n"
      "top_m: %d\n"
      "init_seed: %d\n"
      "event_log { durability: GROUP }\n"
      "trainer {\n"
      "  objective: %s\n"
      "  threads: %d\n"
      "  seed: %d\n",
      TextprotoEscape(data.path()), TextprotoEscape(data.File("items.csv")), f.dim_context, ShortDouble(f.epsilon),
      ShortDouble(f.temperature),
      std::max<int64_t>(f.top_m, f.k), f.seed, absl::AsciiStrToUpper(f.objective),
      f.train_threads, f.seed);
  if (f.epochs > 0) absl::StrAppend(&text, absl::StrFormat("  epochs: %d\n", f.epochs));
  absl::StrAppend(&text, "}\n");
  return text;
}

// ---- One round ----

struct RoundResult {
  int64_t round = 0;
  int64_t requests = 0;
  int64_t served_items = 0;
  double served_value = 0;       // mean true q(x, a) over all served items (all positions)
  double served_value_pos0 = 0;  // same, position 0 only
  double optimal_value = 0;      // mean over contexts of the best K-slate's average q
  double uniform_value = 0;      // mean over contexts and items of q (the uniform policy)
  // The best a server exploring with epsilon can serve: (1-eps) optimal + eps uniform (exact for
  // K = 1: pi_0 = (1-eps) softmax + eps/N; an approximation for K > 1).
  double ceiling_value = 0;
  double observed_reward = 0;    // mean Bernoulli reward sent as feedback
  std::string model_version;     // served during the round (the most frequent one)
  int64_t versions_seen = 0;     // distinct versions in the round's responses (1 normally)
  double play_seconds = 0;
  // The retrain after the round (empty job_id after the last round: nothing would serve it).
  std::string job_id;
  std::string job_state;  // succeeded | rejected | failed | cancelled
  std::string decision;   // promoted | rejected | "" (failed before the gate)
  std::string reason;
  std::string saved_version;
  std::string next_version;  // served after the job
  double job_seconds = 0;
  int64_t train_events = 0;      // samples the job used (train + holdout)
  int64_t pending_excluded = 0;  // should stay 0 (see ServerConfigText)
  double ope_old = NAN, ope_new = NAN, ope_diff = NAN, ope_diff_low = NAN, ope_diff_high = NAN;
};

double GapClosed(double value, double first, double optimal) {
  const double denom = optimal - first;
  if (!(std::fabs(denom) > 1e-12)) return NAN;
  return (value - first) / denom;
}

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

class Simulation {
 public:
  Simulation(const SimFlags& flags, SyntheticBandit* env, client::OptowerClient* client)
      : f_(flags), env_(env), client_(client) {}

  // Plays one round of requests_per_round users.
  absl::Status PlayRound(int64_t round, RoundResult* out) {
    const absl::Time start = absl::Now();
    const int64_t q_n = f_.requests_per_round, n = f_.items, k = f_.k;
    const std::vector<float> contexts = env_->SampleContexts(q_n);
    ASSIGN_OR_RETURN(const DenseMatrix q, env_->ExpectedReward(contexts));
    out->round = round;
    out->requests = q_n;
    // Ground truth of the round's contexts.
    double optimal = 0, uniform = 0;
    std::vector<double> row(static_cast<size_t>(n));
    for (int64_t i = 0; i < q_n; ++i) {
      std::copy(q.row(i), q.row(i) + n, row.begin());
      std::partial_sort(row.begin(), row.begin() + k, row.end(), std::greater<double>());
      double best = 0;
      for (int64_t j = 0; j < k; ++j) best += row[static_cast<size_t>(j)];
      optimal += best / static_cast<double>(k);
      double sum = 0;
      for (double v : row) sum += v;
      uniform += sum / static_cast<double>(n);
    }
    out->optimal_value = optimal / static_cast<double>(q_n);
    out->uniform_value = uniform / static_cast<double>(q_n);
    out->ceiling_value = (1 - f_.epsilon) * out->optimal_value + f_.epsilon * out->uniform_value;

    double served_sum = 0, pos0_sum = 0, reward_sum = 0;
    int64_t served = 0, pos0 = 0;
    std::map<std::string, int64_t> versions;
    v1::FeedbackRequest feedback;
    client::CallOptions call;
    call.deadline = absl::Seconds(f_.timeout);
    for (int64_t i = 0; i < q_n; ++i) {
      RETURN_IF_ERROR(CheckInterrupted());
      v1::RetrieveRequest request;
      request.mutable_context()->mutable_dense()->Add(contexts.begin() + i * f_.dim_context,
                                                      contexts.begin() + (i + 1) * f_.dim_context);
      request.set_k(static_cast<int32_t>(k));
      // Reproducible slates: the same flags give the same requests and sampling seeds.
      request.set_seed(MixSeed(static_cast<uint64_t>(f_.seed),
                               static_cast<uint64_t>(round) * 1000000007ULL + static_cast<uint64_t>(i)));
      absl::StatusOr<v1::RetrieveResponse> response = client_->Retrieve(request, call);
      if (!response.ok()) return Rpc("Retrieve", response.status());
      if (response->items_size() != k) {
        return absl::InternalError(absl::StrFormat("Retrieve returned %d items, asked for k=%d",
                                                   response->items_size(), k));
      }
      ++versions[response->model_version()];
      for (const v1::RetrievedItem& item : response->items()) {
        if (item.item_id() < 0 || item.item_id() >= n) {
          return absl::InternalError(absl::StrCat("Retrieve served unknown item ", item.item_id()));
        }
        const double qv = q.at(i, item.item_id());
        const float reward = env_->SampleReward(qv);
        served_sum += qv;
        reward_sum += reward;
        ++served;
        if (item.position() == 0) {
          pos0_sum += qv;
          ++pos0;
        }
        v1::FeedbackEvent* e = feedback.add_events();
        e->set_request_id(response->request_id());
        e->set_item_id(item.item_id());
        e->set_reward(reward);
        if (feedback.events_size() >= f_.feedback_batch) RETURN_IF_ERROR(Flush(&feedback));
      }
    }
    RETURN_IF_ERROR(Flush(&feedback));
    out->served_items = served;
    out->served_value = served_sum / static_cast<double>(served);
    out->served_value_pos0 = pos0 > 0 ? pos0_sum / static_cast<double>(pos0) : NAN;
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

  // Waits until every served row and every accepted feedback row is committed to the event log, so
  // that a job's snapshot sees the whole round with its rewards (nothing pending or defaulted).
  absl::Status WaitForCommit() {
    const absl::Time deadline = absl::Now() + absl::Seconds(std::max(30.0, f_.timeout));
    while (true) {
      RETURN_IF_ERROR(CheckInterrupted());
      absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats(Call());
      if (!stats.ok()) return Rpc("GetStats", stats.status());
      const v1::EventLogStats& log = stats->event_log();
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

  // TriggerRetrain, then WatchTraining to the final event; fills the job columns of `out`.
  absl::Status Retrain(RoundResult* out) {
    RETURN_IF_ERROR(WaitForCommit());
    const absl::Time start = absl::Now();
    absl::StatusOr<std::string> job_id = client_->TriggerRetrain(f_.force, Call());
    if (!job_id.ok()) return Rpc("TriggerRetrain", job_id.status());
    out->job_id = *job_id;
    if (!f_.quiet) std::printf("  retrain %s:", job_id->c_str());
    std::string last_phase;
    bool final_seen = false;
    client::CallOptions watch;
    watch.deadline = absl::Seconds(f_.retrain_timeout);
    const absl::Status watched = client_->WatchTraining(
        *job_id,
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
          absl::StrCat("WatchTraining: the stream of ", *job_id, " ended without a final event"));
    }
    absl::StatusOr<v1::TrainingJob> job = client_->GetTrainingJob(*job_id, Call());
    if (!job.ok()) return Rpc("GetTrainingJob", job.status());
    absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats(Call());
    if (!stats.ok()) return Rpc("GetStats", stats.status());
    out->job_state = StateName(job->state());
    out->decision = job->decision().empty() ? out->job_state : job->decision();
    out->reason = job->reason();
    out->saved_version = job->version();
    out->next_version = stats->model_version();
    out->train_events = job->counts().with_feedback() + job->counts().default_reward();
    out->pending_excluded = job->counts().pending_excluded();
    if (job->started_unix_micros() > 0 && job->ended_unix_micros() >= job->started_unix_micros()) {
      out->job_seconds = (job->ended_unix_micros() - job->started_unix_micros()) / 1e6;
    } else {
      out->job_seconds = absl::ToDoubleSeconds(absl::Now() - start);
    }
    if (job->has_ope()) {
      out->ope_old = job->ope().old_value().value();
      out->ope_new = job->ope().new_value().value();
      out->ope_diff = job->ope().diff().value();
      out->ope_diff_low = job->ope().diff().ci_low();
      out->ope_diff_high = job->ope().diff().ci_high();
    }
    if (job->state() == v1::TRAINING_JOB_STATE_CANCELLED) {
      return absl::AbortedError(absl::StrCat(*job_id, " was cancelled: ", job->reason()));
    }
    if (!f_.quiet) {
      std::printf(" -> %s%s, serving %s (%.1f s)\n", out->decision.c_str(),
                  out->saved_version.empty() ? ""
                                             : absl::StrCat(" ", out->saved_version).c_str(),
                  out->next_version.c_str(), out->job_seconds);
      if (out->job_state == "failed" || out->job_state == "rejected") {
        std::printf("    reason: %s\n", out->reason.c_str());
      }
      std::fflush(stdout);
    }
    return absl::OkStatus();
  }

 private:
  client::CallOptions Call() const {
    client::CallOptions call;
    call.deadline = absl::Seconds(f_.timeout);
    return call;
  }

  absl::Status Flush(v1::FeedbackRequest* feedback) {
    if (feedback->events_size() == 0) return absl::OkStatus();
    absl::StatusOr<v1::FeedbackResponse> r = client_->Feedback(*feedback, Call());
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

  const SimFlags& f_;
  SyntheticBandit* env_;
  client::OptowerClient* client_;
  int64_t total_served_ = 0;
  int64_t total_feedback_ = 0;
};

// ---- Output ----

std::string Num(double v) { return std::isfinite(v) ? absl::StrFormat("%.6f", v) : ""; }

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c == '\n' ? ' ' : c;
  }
  return q + "\"";
}

std::string RoundsCsv(const std::vector<RoundResult>& rounds, double first, double optimal) {
  std::string csv =
      "round,requests,served_items,served_value,served_value_pos0,optimal_value,uniform_value,"
      "ceiling_value,observed_reward,gap_closed,model_version,versions_seen,play_seconds,job_id,job_state,"
      "decision,saved_version,next_version,job_seconds,train_events,pending_excluded,ope_old,"
      "ope_new,ope_diff,ope_diff_low,ope_diff_high,reason\n";
  for (const RoundResult& r : rounds) {
    absl::StrAppend(
        &csv,
        absl::StrJoin({absl::StrCat(r.round), absl::StrCat(r.requests), absl::StrCat(r.served_items),
                       Num(r.served_value), Num(r.served_value_pos0), Num(r.optimal_value),
                       Num(r.uniform_value), Num(r.ceiling_value), Num(r.observed_reward),
                       Num(GapClosed(r.served_value, first, optimal)), CsvField(r.model_version),
                       absl::StrCat(r.versions_seen), absl::StrFormat("%.3f", r.play_seconds),
                       CsvField(r.job_id), r.job_state, r.decision, r.saved_version,
                       CsvField(r.next_version),
                       r.job_id.empty() ? "" : absl::StrFormat("%.3f", r.job_seconds),
                       r.job_id.empty() ? "" : absl::StrCat(r.train_events),
                       r.job_id.empty() ? "" : absl::StrCat(r.pending_excluded), Num(r.ope_old),
                       Num(r.ope_new), Num(r.ope_diff), Num(r.ope_diff_low), Num(r.ope_diff_high),
                       CsvField(r.reason)},
                      ","),
        "\n");
  }
  return csv;
}

void JsonNumber(JsonWriter& w, const char* key, double v) {
  w.Key(key);
  if (std::isfinite(v)) {
    w.Double(v);
  } else {
    w.Null();
  }
}

absl::StatusOr<std::string> SummaryJson(const SimFlags& f, const std::vector<RoundResult>& rounds,
                                        double first, double optimal, double uniform,
                                        double ceiling, double wall_seconds) {
  const double final_value = rounds.back().served_value;
  JsonWriter w;
  w.BeginObject();
  w.Key("setting").BeginObject()
      .Field("items", f.items).Field("rounds", f.rounds)
      .Field("requests_per_round", f.requests_per_round).Field("k", f.k)
      .Field("dim_context", f.dim_context).Field("dim_item_features", f.dim_item_features)
      .Field("item_features", f.dim_item_features > 0 ? "normal" : "one-hot")
      .Field("reward", f.reward).Field("seed", f.seed)
      .Field("reference_rounds", f.reference_rounds).Field("epsilon", f.epsilon)
      .Field("temperature", f.temperature).Field("top_m", std::max(f.top_m, f.k))
      .Field("objective", f.objective).Field("force", f.force)
      .Field("train_threads", f.train_threads).Field("epochs", f.epochs)
      .EndObject();
  w.Field("value_definition",
          "served_value: mean of the true q(x,a) over every served item of the round (all K "
          "positions); optimal_value: mean over the same contexts of the average q of the best "
          "K-slate (K=1: max_a q(x,a)); gap_closed = (v - first_value) / "
          "(optimal_value - first_value); ceiling_value = (1 - epsilon) optimal_value + epsilon "
          "uniform_value, the best value a server exploring with epsilon can serve (exact for K=1)");
  w.Key("rounds").BeginArray();
  for (const RoundResult& r : rounds) {
    w.BeginObject().Field("round", r.round).Field("requests", r.requests)
        .Field("served_items", r.served_items);
    JsonNumber(w, "served_value", r.served_value);
    JsonNumber(w, "served_value_pos0", r.served_value_pos0);
    JsonNumber(w, "optimal_value", r.optimal_value);
    JsonNumber(w, "uniform_value", r.uniform_value);
    JsonNumber(w, "ceiling_value", r.ceiling_value);
    JsonNumber(w, "observed_reward", r.observed_reward);
    JsonNumber(w, "gap_closed", GapClosed(r.served_value, first, optimal));
    w.Field("model_version", r.model_version).Field("versions_seen", r.versions_seen)
        .Field("play_seconds", r.play_seconds);
    if (r.job_id.empty()) {
      w.Key("retrain").Null();
    } else {
      w.Key("retrain").BeginObject().Field("job_id", r.job_id).Field("state", r.job_state)
          .Field("decision", r.decision).Field("saved_version", r.saved_version)
          .Field("next_version", r.next_version).Field("job_seconds", r.job_seconds)
          .Field("train_events", r.train_events).Field("pending_excluded", r.pending_excluded);
      JsonNumber(w, "ope_old", r.ope_old);
      JsonNumber(w, "ope_new", r.ope_new);
      JsonNumber(w, "ope_diff", r.ope_diff);
      JsonNumber(w, "ope_diff_low", r.ope_diff_low);
      JsonNumber(w, "ope_diff_high", r.ope_diff_high);
      w.Field("reason", r.reason).EndObject();
    }
    // Flat copies for simple consumers (issue 4 §3 names them per round).
    w.Field("decision", r.decision).Field("next_version", r.next_version);
    w.EndObject();
  }
  w.EndArray();
  JsonNumber(w, "optimal_value", optimal);
  JsonNumber(w, "uniform_value", uniform);
  JsonNumber(w, "ceiling_value", ceiling);
  JsonNumber(w, "ceiling_gap_closed", GapClosed(ceiling, first, optimal));
  JsonNumber(w, "first_value", first);
  JsonNumber(w, "final_value", final_value);
  JsonNumber(w, "gap_closed", GapClosed(final_value, first, optimal));
  w.Field("wall_seconds", wall_seconds);
  w.EndObject();
  return w.Finish();
}

// ---- The command ----

absl::Status Simulate(const SimFlags& f, const std::string& server_binary, AtomicDirectory* out,
                      const DataDir* data) {
  const absl::Time wall_start = absl::Now();

  // The environment in streaming mode; its action contexts are the catalog's item features.
  SyntheticOptions options;
  options.n_actions = f.items;
  options.dim_context = f.dim_context;
  options.dim_action_context = f.dim_item_features;
  ASSIGN_OR_RETURN(options.reward_type, ParseRewardType(f.reward));
  options.seed = static_cast<uint64_t>(f.seed);
  ASSIGN_OR_RETURN(std::unique_ptr<SyntheticBandit> env, SyntheticBandit::Create(options));
  env->FixStatistics(f.reference_rounds);
  RETURN_IF_ERROR(WriteItemsCsv(data->File("items.csv"), env->Items()));
  const std::string config = ServerConfigText(f, *data);
  RETURN_IF_ERROR(WriteFileAtomically(data->File("server.textproto"), config));
  RETURN_IF_ERROR(WriteFileAtomically(out->FilePath("server.textproto"), config));

  ServerProcess::Options so;
  so.binary = server_binary;
  so.args = {"--config", data->File("server.textproto")};
  so.stderr_path = data->File("server.log");
  ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> server, ServerProcess::Start(so));
  if (!f.quiet) {
    std::printf("simulate: %lld items (%s features), %lld rounds x %lld requests, k %lld, reward "
                "%s, epsilon %g, seed %lld\n",
                static_cast<long long>(f.items),
                f.dim_item_features > 0 ? absl::StrCat("N(0,1) x ", f.dim_item_features).c_str()
                                        : "one-hot",
                static_cast<long long>(f.rounds), static_cast<long long>(f.requests_per_round),
                static_cast<long long>(f.k), f.reward.c_str(), f.epsilon,
                static_cast<long long>(f.seed));
    std::printf("optower-server pid %d on %s, data %s%s\n", static_cast<int>(server->pid()),
                server->address().c_str(), data->path().c_str(),
                data->removed_at_end() ? " (temporary)" : "");
    std::fflush(stdout);
  }

  auto with_server_log = [&](absl::Status s) {
    if (s.ok() || server->Running()) return s;
    const std::string last = server->LastStderrLine();
    return absl::Status(s.code(), absl::StrCat(s.message(), " (optower-server died",
                                               last.empty() ? "" : ": ", last, ")"));
  };

  ASSIGN_OR_RETURN(std::unique_ptr<client::OptowerClient> client,
                   ConnectToServer(server->address(), f.timeout));
  {
    auto health = client->CheckHealth();
    if (!health.ok()) return with_server_log(Rpc("Health", health.status()));
    if (*health != grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::UnavailableError("optower-server is not SERVING");
    }
  }

  Simulation sim(f, env.get(), client.get());
  std::vector<RoundResult> rounds;
  for (int64_t round = 1; round <= f.rounds; ++round) {
    RoundResult r;
    if (absl::Status s = sim.PlayRound(round, &r); !s.ok()) return with_server_log(s);
    const double first = rounds.empty() ? r.served_value : rounds.front().served_value;
    if (!f.quiet) {
      std::printf("round %lld: served value %.4f (optimal %.4f, gap closed %s) model %s%s, %.1f s\n",
                  static_cast<long long>(round), r.served_value, r.optimal_value,
                  rounds.empty() ? "-" : absl::StrFormat("%.3f", GapClosed(r.served_value, first,
                                                                            r.optimal_value)).c_str(),
                  r.model_version.c_str(),
                  r.versions_seen > 1 ? absl::StrCat(" (", r.versions_seen, " versions)").c_str()
                                      : "",
                  r.play_seconds);
      std::fflush(stdout);
    }
    // The last round's retrain is skipped: no round would be served by its model.
    if (round < f.rounds) {
      if (absl::Status s = sim.Retrain(&r); !s.ok()) return with_server_log(s);
    }
    rounds.push_back(std::move(r));
  }
  RETURN_IF_ERROR(CheckInterrupted());
  RETURN_IF_ERROR(server->Stop(absl::Seconds(60)));

  // Summary numbers: the optimal and uniform values are averaged over every round's contexts.
  double optimal = 0, uniform = 0, ceiling = 0;
  for (const RoundResult& r : rounds) {
    optimal += r.optimal_value;
    uniform += r.uniform_value;
    ceiling += r.ceiling_value;
  }
  optimal /= static_cast<double>(rounds.size());
  uniform /= static_cast<double>(rounds.size());
  ceiling /= static_cast<double>(rounds.size());
  const double first = rounds.front().served_value;
  const double final_value = rounds.back().served_value;

  std::printf("\n%-5s %8s %8s %8s %10s %-10s %-10s %-10s %7s\n", "round", "requests", "served",
              "optimal", "gap_closed", "model", "decision", "next", "job_s");
  for (const RoundResult& r : rounds) {
    const double gap = GapClosed(r.served_value, first, optimal);
    std::printf("%-5lld %8lld %8.4f %8.4f %10s %-10s %-10s %-10s %7s\n",
                static_cast<long long>(r.round), static_cast<long long>(r.requests),
                r.served_value, r.optimal_value,
                std::isfinite(gap) ? absl::StrFormat("%.3f", gap).c_str() : "-",
                r.model_version.c_str(), r.job_id.empty() ? "-" : r.decision.c_str(),
                r.job_id.empty() ? "-" : r.next_version.c_str(),
                r.job_id.empty() ? "-" : absl::StrFormat("%.1f", r.job_seconds).c_str());
  }
  const double wall = absl::ToDoubleSeconds(absl::Now() - wall_start);
  std::printf("optimal %.4f  uniform %.4f  epsilon ceiling %.4f (gap %.3f)  first %.4f  final %.4f  "
              "gap closed %.3f  (%.0f s)\n",
              optimal, uniform, ceiling, GapClosed(ceiling, first, optimal), first, final_value,
              GapClosed(final_value, first, optimal), wall);

  RETURN_IF_ERROR(WriteFileAtomically(out->FilePath("rounds.csv"),
                                      RoundsCsv(rounds, first, optimal)));
  ASSIGN_OR_RETURN(const std::string json,
                   SummaryJson(f, rounds, first, optimal, uniform, ceiling, wall));
  RETURN_IF_ERROR(WriteFileAtomically(out->FilePath("summary.json"), json));
  if (!f.no_plot) {
    const std::string cmd = absl::StrFormat(
        "/usr/bin/python3 '%s' '%s' '%s' '%s' 2>&1", PlotScript(), out->FilePath("rounds.csv"),
        out->FilePath("summary.json"), out->FilePath("learning_curve.png"));
    if (std::system(cmd.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("plotting failed: ", cmd));
    }
  }
  RETURN_IF_ERROR(out->Commit());
  std::printf("wrote %s/{rounds.csv,summary.json,server.textproto%s}%s\n", f.out.c_str(),
              f.no_plot ? "" : ",learning_curve.png",
              data->removed_at_end() ? "" : absl::StrCat("; data kept in ", data->path()).c_str());
  return absl::OkStatus();
}

int RunSimulate(int argc, char** argv) {
  SimFlags f;
  FlagParser p("optower simulate [flags]",
               "The closed loop: starts optower-server (random towers, exploration) in a fresh data\n"
               "folder, plays users from OBP's synthetic environment (streaming mode; item features =\n"
               "action contexts; rewards ~ Bernoulli(q(x,a))), sends feedback for every served item,\n"
               "retrains through the admin RPCs after every round but the last, and reports the TRUE\n"
               "value of what the server served per round beside the optimal and first-round values.\n"
               "Writes rounds.csv, summary.json, server.textproto and learning_curve.png into --out.");
  p.AddInt("items", &f.items, "catalog size N");
  p.AddInt("rounds", &f.rounds, "rounds R (a retrain after each but the last)");
  p.AddInt("requests-per-round", &f.requests_per_round, "users (Retrieve calls) per round Q");
  p.AddInt("k", &f.k, "slate size K of every Retrieve");
  p.AddInt("dim-context", &f.dim_context, "context dimension D");
  p.AddInt("dim-item-features", &f.dim_item_features,
           "item feature dimension E (N(0,1) action contexts); 0 = one-hot");
  p.AddString("reward", &f.reward, "logistic | logistic-polynomial | logistic-sparse");
  p.AddInt("seed", &f.seed, "seed of the environment, the requests and the server");
  p.AddInt("reference-rounds", &f.reference_rounds,
           "contexts of the reference batch that fixes the environment's statistics");
  p.AddDouble("epsilon", &f.epsilon, "server: uniform-exploration share of the logging policy");
  p.AddDouble("temperature", &f.temperature, "server: softmax temperature (0 = the model's)");
  p.AddInt("top-m", &f.top_m, "server: index candidates per request");
  p.AddString("objective", &f.objective, "trainer objective: dr | ipw | dm");
  p.AddBool("force", &f.force, "promote every trained model even if the OPE gate rejects it");
  p.AddInt("train-threads", &f.train_threads, "trainer's LibTorch threads");
  p.AddInt("epochs", &f.epochs, "trainer's policy epochs (0 = the server's default)");
  p.AddString("out", &f.out, "output folder (written atomically)");
  p.AddBool("overwrite", &f.overwrite, "replace an existing --out");
  p.AddString("data-dir", &f.data_dir,
              "server data folder (created; kept); default: a temporary folder, removed at the end");
  p.AddBool("keep-data", &f.keep_data, "keep the temporary data folder (event log, models)");
  p.AddString("server-binary", &f.server_binary,
              "optower-server to start (default: ../server/optower-server beside this binary)");
  p.AddInt("feedback-batch", &f.feedback_batch, "feedback events per Feedback call");
  p.AddDouble("timeout", &f.timeout, "seconds per RPC");
  p.AddDouble("retrain-timeout", &f.retrain_timeout, "seconds per retraining job");
  p.AddBool("no-plot", &f.no_plot, "skip the PNG");
  p.AddBool("quiet", &f.quiet, "only the final table");
  if (auto done = ParseCommandLine(p, argc, argv, 0)) return *done;
  if (absl::Status s = Validate(f); !s.ok()) return UsageError(std::string(s.message()));
  absl::StatusOr<std::string> binary = FindServerBinary(f.server_binary);
  if (!binary.ok()) return UsageError(std::string(binary.status().message()));
  // Output and data folders first, so that a bad --out / --data-dir fails at once (exit 2).
  AtomicDirectory::Options dir_options;
  dir_options.overwrite = f.overwrite;
  absl::StatusOr<std::unique_ptr<AtomicDirectory>> out = AtomicDirectory::Create(f.out, dir_options);
  if (!out.ok()) return UsageError(absl::StrCat("--out=", f.out, ": ", out.status().message()));
  absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Create(f.data_dir, f.keep_data);
  if (!data.ok()) return UsageError(std::string(data.status().message()));

  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const absl::Status s = Simulate(f, *binary, out->get(), data->get());
  if (s.ok()) return kExitOk;
  // Everything after the flags is a runtime failure: exit 1 (ReportError would map e.g. a
  // FAILED_PRECONDITION from the server to 2). The server is already killed (ServerProcess's
  // destructor); the temporary data folder and the unfinished --out are removed on return.
  std::string message(s.message());
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::cerr << "optower: simulate: " << message << std::endl;
  return kExitFailure;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(simulate, "simulate",
                         "closed loop: optower-server learns from its own logs, true value per round",
                         RunSimulate);

}  // namespace optower::cli
