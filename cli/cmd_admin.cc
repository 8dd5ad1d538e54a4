// `optower admin retrain|jobs|models|rollback`: the trainer's admin RPCs of a running
// optower-server (docs/TRAINING.md).
//
//   optower admin retrain  --server ADDR [--force] [--watch] [--json]
//   optower admin jobs     --server ADDR [JOB_ID] [--json]
//   optower admin models   --server ADDR [--json]
//   optower admin rollback --server ADDR VERSION [--json]
//
// retrain --watch streams the job's progress to stderr (a live bar on a terminal, one plain line
// per event otherwise) and prints the outcome on stdout. Exit codes: 0 success — for retrain
// --watch, the job ended with a decision (promoted or rejected: both are the gate working); 1 the
// job failed or was cancelled, or the server is unreachable; 2 bad usage or a refused request
// (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION — e.g. a job already running).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/online_client.h"
#include "core/base/json_writer.h"
#include "core/base/status_macros.h"

namespace optower::cli {
namespace {

constexpr double kDefaultCallTimeout = 30;      // seconds, one unary call
constexpr double kDefaultWatchTimeout = 86400;  // seconds, a whole --watch stream

struct AdminFlags {
  std::string action;
  std::string argument;  // JOB_ID (jobs) or VERSION (rollback)
  std::string server;
  ConnectionFlags connection;  // --token, --tls-ca, --tls-cert, --tls-key
  double timeout = 0;  // 0 = kDefaultCallTimeout (kDefaultWatchTimeout for the --watch stream)
  bool force = false;
  bool watch = false;
  bool json = false;
};

// TRAINING_JOB_STATE_SUCCEEDED -> "succeeded".
std::string StateName(v1::TrainingJobState state) {
  std::string name = v1::TrainingJobState_Name(state);
  constexpr absl::string_view kPrefix = "TRAINING_JOB_STATE_";
  if (absl::string_view(name).substr(0, kPrefix.size()) == kPrefix) name = name.substr(kPrefix.size());
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

std::string FormatTime(int64_t unix_micros) {
  if (unix_micros == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(unix_micros),
                          absl::LocalTimeZone());
}

std::string EstimateText(const v1::OpeEstimate& e) {
  return absl::StrFormat("%.4f [%.4f, %.4f]", e.value(), e.ci_low(), e.ci_high());
}

std::string OpeText(const v1::OpeComparison& c) {
  return absl::StrFormat("DR old %s, new %s, diff %s", EstimateText(c.old_value()),
                         EstimateText(c.new_value()), EstimateText(c.diff()));
}

// ---- JSON ----

void WriteEstimate(JsonWriter& w, const v1::OpeEstimate& e) {
  w.BeginObject();
  w.Field("estimator", e.estimator()).Field("value", e.value()).Field("std_error", e.std_error());
  w.Field("ci_low", e.ci_low()).Field("ci_high", e.ci_high()).Field("n", e.n());
  w.Field("max_weight", e.max_weight()).Field("effective_sample_size", e.effective_sample_size());
  w.EndObject();
}

void WriteOpe(JsonWriter& w, bool present, const v1::OpeComparison& c) {
  w.Key("ope");
  if (!present) {
    w.Null();
    return;
  }
  w.BeginObject().Field("confidence", c.confidence()).Field("tolerance", c.tolerance());
  w.Key("old_value");
  WriteEstimate(w, c.old_value());
  w.Key("new_value");
  WriteEstimate(w, c.new_value());
  w.Key("diff");
  WriteEstimate(w, c.diff());
  w.EndObject();
}

void WriteMetrics(JsonWriter& w, bool present, const v1::TrainingMetrics& m) {
  w.Key("metrics");
  if (!present) {
    w.Null();
    return;
  }
  w.BeginObject().Field("objective", m.objective()).Field("epochs_run", m.epochs_run());
  w.Field("best_epoch", m.best_epoch()).Field("validation_dr_initial", m.validation_dr_initial());
  w.Field("validation_dr_best", m.validation_dr_best());
  w.Field("logging_policy_value", m.logging_policy_value());
  w.Field("total_seconds", m.total_seconds()).Field("threads", m.threads());
  w.EndObject();
}

void WriteJob(JsonWriter& w, const v1::TrainingJob& j) {
  w.BeginObject();
  w.Field("job_id", j.job_id()).Field("state", StateName(j.state())).Field("phase", j.phase());
  w.Field("trigger", j.trigger()).Field("force", j.force());
  w.Field("created_unix_micros", j.created_unix_micros());
  w.Field("started_unix_micros", j.started_unix_micros());
  w.Field("ended_unix_micros", j.ended_unix_micros());
  w.Field("parent_version", j.parent_version()).Field("version", j.version());
  w.Field("published", j.published()).Field("decision", j.decision()).Field("reason", j.reason());
  w.Field("error_code", j.error_code()).Field("watermark", j.watermark());
  const v1::TrainingDataCounts& c = j.counts();
  w.Key("counts").BeginObject();
  w.Field("rows_read", c.rows_read()).Field("with_feedback", c.with_feedback());
  w.Field("default_reward", c.default_reward()).Field("pending_excluded", c.pending_excluded());
  w.Field("unknown_item", c.unknown_item()).Field("bad_context", c.bad_context());
  w.EndObject();
  w.Field("n_train", j.n_train()).Field("n_holdout", j.n_holdout());
  WriteMetrics(w, j.has_metrics(), j.metrics());
  WriteOpe(w, j.has_ope(), j.ope());
  w.EndObject();
}

void WriteModel(JsonWriter& w, const v1::ModelVersion& m) {
  w.BeginObject();
  w.Field("version", m.version()).Field("created_unix_micros", m.created_unix_micros());
  w.Field("parent_version", m.parent_version()).Field("job_id", m.job_id());
  w.Field("promoted", m.promoted()).Field("serving", m.serving()).Field("current", m.current());
  w.Field("decision", m.decision()).Field("reason", m.reason()).Field("objective", m.objective());
  w.Field("data_watermark", m.data_watermark()).Field("n_events", m.n_events());
  w.Field("n_train", m.n_train()).Field("n_holdout", m.n_holdout());
  w.Key("index_recall");
  if (m.has_index_recall()) {
    w.Double(m.index_recall());
  } else {
    w.Null();
  }
  WriteMetrics(w, m.has_metrics(), m.metrics());
  WriteOpe(w, m.has_ope(), m.ope());
  w.EndObject();
}

absl::Status PrintJson(const JsonWriter& w) {
  ASSIGN_OR_RETURN(const std::string json, w.Finish());
  std::fputs(json.c_str(), stdout);
  return absl::OkStatus();
}

// ---- Text ----

void PrintJobDetail(const v1::TrainingJob& j) {
  std::printf("job %s: %s (phase %s, trigger %s%s)\n", j.job_id().c_str(),
              StateName(j.state()).c_str(), j.phase().c_str(), j.trigger().c_str(),
              j.force() ? ", forced" : "");
  std::printf("  created %s, started %s, ended %s\n", FormatTime(j.created_unix_micros()).c_str(),
              FormatTime(j.started_unix_micros()).c_str(), FormatTime(j.ended_unix_micros()).c_str());
  std::printf("  parent %s -> version %s%s\n",
              j.parent_version().empty() ? "(none)" : j.parent_version().c_str(),
              j.version().empty() ? "(none)" : j.version().c_str(),
              j.published() ? " (published)" : "");
  const v1::TrainingDataCounts& c = j.counts();
  std::printf("  data: %lld rows up to served_id %lld: %lld with feedback, %lld default reward; "
              "left out %lld pending, %lld unknown items, %lld bad contexts; train %lld, holdout "
              "%lld\n",
              static_cast<long long>(c.rows_read()), static_cast<long long>(j.watermark()),
              static_cast<long long>(c.with_feedback()), static_cast<long long>(c.default_reward()),
              static_cast<long long>(c.pending_excluded()), static_cast<long long>(c.unknown_item()),
              static_cast<long long>(c.bad_context()), static_cast<long long>(j.n_train()),
              static_cast<long long>(j.n_holdout()));
  if (j.has_ope()) std::printf("  ope: %s\n", OpeText(j.ope()).c_str());
  if (!j.decision().empty()) std::printf("  decision: %s\n", j.decision().c_str());
  if (!j.reason().empty()) {
    std::printf("  reason: %s%s\n", j.error_code().empty() ? "" : (j.error_code() + ": ").c_str(),
                j.reason().c_str());
  }
}

// The line that ends `retrain --watch` (stdout).
void PrintOutcome(const v1::TrainingJob& j) {
  if (j.state() == v1::TRAINING_JOB_STATE_SUCCEEDED) {
    std::printf("job %s: promoted: version %s is served (parent %s)\n", j.job_id().c_str(),
                j.version().c_str(), j.parent_version().empty() ? "none" : j.parent_version().c_str());
  } else if (j.state() == v1::TRAINING_JOB_STATE_REJECTED) {
    std::printf("job %s: rejected: version %s saved, not served; %s still served\n",
                j.job_id().c_str(), j.version().c_str(),
                j.parent_version().empty() ? "the previous model" : j.parent_version().c_str());
  } else {
    std::printf("job %s: %s\n", j.job_id().c_str(), StateName(j.state()).c_str());
  }
  if (j.has_ope()) std::printf("  %s\n", OpeText(j.ope()).c_str());
  std::printf("  reason: %s\n", j.reason().c_str());
}

// Renders WatchTraining events on stderr: a bar redrawn in place on a terminal, lines otherwise.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool tty) : tty_(tty) {}

  void operator()(const v1::TrainingEvent& e) {
    const bool epoch_event = e.epoch() > 0 && (e.phase() == "reward_model" || e.phase() == "policy");
    if (tty_ && epoch_event) {
      if (in_bar_ && bar_phase_ != e.phase()) std::fprintf(stderr, "\n");  // keep the last bar
      bar_phase_ = e.phase();
      constexpr int kWidth = 30;
      const int filled = e.epochs() > 0 ? std::min(kWidth, kWidth * e.epoch() / e.epochs()) : kWidth;
      std::string bar(filled, '#');
      bar.resize(kWidth, '.');
      std::fprintf(stderr, "\r%-12s [%s] epoch %3d/%-3d loss %.4f  %s %.4f%s", e.phase().c_str(),
                   bar.c_str(), e.epoch(), e.epochs(), e.loss(),
                   e.phase() == "reward_model" ? "val-loss" : "val-DR", e.validation_value(),
                   e.improved() ? " *" : "  ");
      in_bar_ = true;
    } else if (epoch_event) {
      std::fprintf(stderr, "%s epoch %d/%d loss %.5f %s %.5f%s\n", e.phase().c_str(), e.epoch(),
                   e.epochs(), e.loss(), e.phase() == "reward_model" ? "val_loss" : "val_dr",
                   e.validation_value(), e.improved() ? " (best)" : "");
    } else {
      if (in_bar_) std::fprintf(stderr, "\n");
      in_bar_ = false;
      std::fprintf(stderr, "%s: %s\n", e.phase().c_str(), e.message().c_str());
    }
    std::fflush(stderr);
  }

 private:
  const bool tty_;
  bool in_bar_ = false;     // the cursor is at the end of a bar line
  std::string bar_phase_;   // the phase of that bar
};

// ---- Actions ----

client::CallOptions Deadline(double seconds) {
  client::CallOptions call;
  call.deadline = absl::Seconds(seconds);
  return call;
}

absl::Status RunRetrain(const client::OptowerClient& client, const AdminFlags& f, int* exit_code) {
  const double call_timeout = f.timeout > 0 ? f.timeout : kDefaultCallTimeout;
  absl::StatusOr<std::string> job_id = client.TriggerRetrain(f.force, Deadline(call_timeout));
  if (!job_id.ok()) return RpcError("TriggerRetrain", job_id.status());
  if (!f.watch) {
    if (f.json) {
      JsonWriter w(JsonWriter::Options{/*indent=*/0});
      w.BeginObject().Field("job_id", *job_id).Field("force", f.force).EndObject();
      return PrintJson(w);
    }
    std::printf("job %s started (optower admin jobs --server %s %s)\n", job_id->c_str(),
                f.server.c_str(), job_id->c_str());
    return absl::OkStatus();
  }
  std::fprintf(stderr, "job %s started\n", job_id->c_str());
  ProgressPrinter printer(::isatty(STDERR_FILENO) == 1);
  const absl::Status watched = client.WatchTraining(
      *job_id, [&printer](const v1::TrainingEvent& e) { printer(e); },
      Deadline(f.timeout > 0 ? f.timeout : kDefaultWatchTimeout));
  if (!watched.ok()) return RpcError("WatchTraining", watched);
  absl::StatusOr<v1::TrainingJob> job = client.GetTrainingJob(*job_id, Deadline(call_timeout));
  if (!job.ok()) return RpcError("GetTrainingJob", job.status());
  const bool decided = job->state() == v1::TRAINING_JOB_STATE_SUCCEEDED ||
                       job->state() == v1::TRAINING_JOB_STATE_REJECTED;
  *exit_code = decided ? kExitOk : kExitFailure;
  if (f.json) {
    JsonWriter w(JsonWriter::Options{/*indent=*/0});
    WriteJob(w, *job);
    return PrintJson(w);
  }
  PrintOutcome(*job);
  return absl::OkStatus();
}

absl::Status RunJobs(const client::OptowerClient& client, const AdminFlags& f) {
  const client::CallOptions call = Deadline(f.timeout > 0 ? f.timeout : kDefaultCallTimeout);
  if (!f.argument.empty()) {
    absl::StatusOr<v1::TrainingJob> job = client.GetTrainingJob(f.argument, call);
    if (!job.ok()) return RpcError("GetTrainingJob", job.status());
    if (f.json) {
      JsonWriter w(JsonWriter::Options{/*indent=*/0});
      WriteJob(w, *job);
      return PrintJson(w);
    }
    PrintJobDetail(*job);
    return absl::OkStatus();
  }
  absl::StatusOr<v1::ListTrainingJobsResponse> jobs = client.ListTrainingJobs(call);
  if (!jobs.ok()) return RpcError("ListTrainingJobs", jobs.status());
  if (f.json) {
    JsonWriter w(JsonWriter::Options{/*indent=*/0});
    w.BeginObject().Key("jobs").BeginArray();
    for (const v1::TrainingJob& j : jobs->jobs()) WriteJob(w, j);
    w.EndArray().EndObject();
    return PrintJson(w);
  }
  if (jobs->jobs().empty()) {
    std::printf("no training jobs since the server started\n");
    return absl::OkStatus();
  }
  std::printf("%-30s %-10s %-12s %-8s %-8s %-19s %s\n", "job", "state", "phase", "parent", "version",
              "created", "decision / reason");
  for (const v1::TrainingJob& j : jobs->jobs()) {
    std::printf("%-30s %-10s %-12s %-8s %-8s %-19s %s%s%s\n", j.job_id().c_str(),
                StateName(j.state()).c_str(), j.phase().c_str(),
                j.parent_version().empty() ? "-" : j.parent_version().c_str(),
                j.version().empty() ? "-" : j.version().c_str(),
                FormatTime(j.created_unix_micros()).c_str(), j.decision().c_str(),
                j.decision().empty() ? "" : ": ", j.reason().c_str());
  }
  return absl::OkStatus();
}

absl::Status RunModels(const client::OptowerClient& client, const AdminFlags& f) {
  absl::StatusOr<v1::ListModelsResponse> models =
      client.ListModels(Deadline(f.timeout > 0 ? f.timeout : kDefaultCallTimeout));
  if (!models.ok()) return RpcError("ListModels", models.status());
  if (f.json) {
    JsonWriter w(JsonWriter::Options{/*indent=*/0});
    w.BeginObject().Field("serving_version", models->serving_version()).Key("models").BeginArray();
    for (const v1::ModelVersion& m : models->models()) WriteModel(w, m);
    w.EndArray().EndObject();
    return PrintJson(w);
  }
  std::printf("serving %s\n", models->serving_version().c_str());
  if (models->models().empty()) {
    std::printf("no stored model versions yet\n");
    return absl::OkStatus();
  }
  std::printf("%-8s %-7s %-19s %-8s %-9s %-9s %-7s %-28s %s\n", "version", "serving", "created",
              "parent", "decision", "objective", "recall", "DR diff [CI]", "events");
  for (const v1::ModelVersion& m : models->models()) {
    const std::string diff =
        m.has_ope() ? absl::StrFormat("%+.4f [%+.4f, %+.4f]", m.ope().diff().value(),
                                      m.ope().diff().ci_low(), m.ope().diff().ci_high())
                    : "-";
    const std::string recall = m.has_index_recall() ? absl::StrFormat("%.3f", m.index_recall()) : "-";
    std::printf("%-8s %-7s %-19s %-8s %-9s %-9s %-7s %-28s %lld\n", m.version().c_str(),
                m.serving() ? (m.current() ? "yes" : "yes*") : (m.current() ? "current" : ""),
                FormatTime(m.created_unix_micros()).c_str(),
                m.parent_version().empty() ? "-" : m.parent_version().c_str(),
                m.decision().c_str(), m.objective().empty() ? "-" : m.objective().c_str(),
                recall.c_str(), diff.c_str(), static_cast<long long>(m.n_events()));
  }
  return absl::OkStatus();
}

absl::Status RunRollback(const client::OptowerClient& client, const AdminFlags& f) {
  const client::CallOptions call = Deadline(f.timeout > 0 ? f.timeout : kDefaultCallTimeout * 20);
  const absl::Status s = client.Rollback(f.argument, call);
  if (!s.ok()) return RpcError("Rollback", s);
  if (f.json) {
    JsonWriter w(JsonWriter::Options{/*indent=*/0});
    w.BeginObject().Field("version", f.argument).Field("serving", true).EndObject();
    return PrintJson(w);
  }
  std::printf("rolled back: version %s is served\n", f.argument.c_str());
  return absl::OkStatus();
}

int AdminMain(int argc, char** argv) {
  AdminFlags f;
  FlagParser parser(
      "optower admin retrain|jobs|models|rollback --server ADDR [flags] [JOB_ID|VERSION]",
      "The trainer of a running optower-server:\n"
      "  retrain [--force] [--watch]  start a retraining job (--watch: follow it to its decision)\n"
      "  jobs [JOB_ID]                list the jobs, or show one\n"
      "  models                       list the stored model versions\n"
      "  rollback VERSION             serve a stored version again");
  parser.AddString("server", &f.server, "server address host:port");
  f.connection.Register(&parser);
  parser.AddDouble("timeout", &f.timeout,
                   "deadline in seconds (0 = 30 s per call, 24 h for the --watch stream; "
                   "rollback 600 s)");
  parser.AddBool("force", &f.force, "retrain: promote even if the OPE gate rejects");
  parser.AddBool("watch", &f.watch, "retrain: stream the job's progress until its decision");
  parser.AddBool("json", &f.json, "print one JSON object");
  parser.Require("server");
  if (auto done = ParseCommandLine(parser, argc, argv, kAnyPositional)) return *done;
  const std::vector<std::string>& args = parser.positional();
  if (args.empty()) return UsageError("want an action: optower admin retrain|jobs|models|rollback");
  f.action = args[0];
  const size_t max_args = f.action == "jobs" || f.action == "rollback" ? 2 : 1;
  if (f.action != "retrain" && f.action != "jobs" && f.action != "models" && f.action != "rollback") {
    return UsageError(absl::StrCat("action '", f.action, "': must be retrain, jobs, models or rollback"));
  }
  if (args.size() > max_args) return UsageError(absl::StrCat("unexpected argument '", args[max_args], "'"));
  if (f.action == "rollback" && args.size() < 2) {
    return UsageError("rollback: want a VERSION (optower admin models lists them)");
  }
  if (args.size() == 2) f.argument = args[1];
  if ((f.force || f.watch) && f.action != "retrain") {
    return UsageError("--force and --watch apply to retrain only");
  }
  if (!(f.timeout >= 0)) return UsageError(absl::StrCat("--timeout=", f.timeout, ": must be >= 0"));

  absl::StatusOr<std::unique_ptr<client::OptowerClient>> client =
      ConnectToServer(f.server, kDefaultWatchTimeout, f.connection);
  if (!client.ok()) return ReportError(client.status());
  int exit_code = kExitOk;
  absl::Status s;
  if (f.action == "retrain") {
    s = RunRetrain(**client, f, &exit_code);
  } else if (f.action == "jobs") {
    s = RunJobs(**client, f);
  } else if (f.action == "models") {
    s = RunModels(**client, f);
  } else {
    s = RunRollback(**client, f);
  }
  return s.ok() ? exit_code : ReportError(s);
}

}  // namespace

OPTOWER_REGISTER_COMMAND(admin, "admin",
                         "the trainer of a running server: retrain, jobs, models, rollback",
                         AdminMain);

}  // namespace optower::cli
