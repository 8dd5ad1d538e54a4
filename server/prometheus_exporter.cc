#include "server/prometheus_exporter.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "server/model_publisher.h"

namespace optower::server {
namespace {

using Samples = std::vector<MetricSample>;

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

}  // namespace

void RpcMetrics::Record(absl::StatusCode code, absl::Duration latency) {
  int index = static_cast<int>(code);
  if (index < 0 || index >= kCodes) index = static_cast<int>(absl::StatusCode::kUnknown);
  Counter* counter = counters_[index].load(std::memory_order_acquire);
  Histogram* histogram = histograms_[index].load(std::memory_order_acquire);
  if (counter == nullptr || histogram == nullptr) {
    // First call with this code: look the children up (racing threads get the same ones).
    const std::vector<std::string> labels = {
        method_, absl::StatusCodeToString(static_cast<absl::StatusCode>(index))};
    absl::StatusOr<Counter*> c = requests_->WithLabels(labels);
    absl::StatusOr<Histogram*> h = durations_->WithLabels(labels);
    if (!c.ok() || !h.ok()) return;  // unreachable: the families have exactly these two labels
    counter = *c;
    histogram = *h;
    counters_[index].store(counter, std::memory_order_release);
    histograms_[index].store(histogram, std::memory_order_release);
  }
  counter->Increment();
  histogram->Observe(Seconds(latency));
}

const std::vector<std::string>& PrometheusExporter::Methods() {
  static const auto* const kMethods = new std::vector<std::string>{
      "Retrieve",         "Feedback",        "UpsertItems",    "DeleteItems",
      "GetStats",         "TriggerRetrain",  "WatchTraining",  "GetTrainingJob",
      "ListTrainingJobs", "ListModels",      "Rollback"};
  return *kMethods;
}

absl::StatusOr<std::unique_ptr<PrometheusExporter>> PrometheusExporter::Create() {
  std::unique_ptr<PrometheusExporter> e(new PrometheusExporter());
  ASSIGN_OR_RETURN(CounterFamily* requests,
                   e->registry_.AddCounter("optower_rpc_requests_total",
                                           "gRPC calls finished, by method and status code.",
                                           {"method", "code"}));
  ASSIGN_OR_RETURN(
      HistogramFamily* durations,
      e->registry_.AddHistogram("optower_rpc_duration_seconds",
                                "Server-side gRPC call latency (handler start to Finish; "
                                "WatchTraining: the whole stream), by method and status code.",
                                {"method", "code"}, DefaultLatencyBuckets()));
  for (const std::string& method : Methods()) {
    e->rpcs_[method] = std::make_unique<RpcMetrics>(method, requests, durations);
  }
  return e;
}

PrometheusExporter::~PrometheusExporter() { StopHttp(); }

RpcMetrics* PrometheusExporter::rpc(const std::string& method) const {
  auto it = rpcs_.find(method);
  return it == rpcs_.end() ? nullptr : it->second.get();
}

namespace {

// The served model, catalog and index; Retrieve and Feedback outcomes.
absl::Status AddEngineMetrics(MetricsRegistry& r, const RetrievalEngine* engine) {
  RETURN_IF_ERROR(r.AddCallback(
      "optower_items_served_total", "Items served by successful Retrieve calls.",
      MetricType::kCounter, {}, [engine] {
        return Samples{{{}, static_cast<double>(engine->stats().items_served)}};
      }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_feedback_events_total",
      "Feedback events by outcome: accepted (recorded), duplicate (a reward for that pair was "
      "already recorded), unknown (that item was not served in that request).",
      MetricType::kCounter, {"outcome"}, [engine] {
        const RetrievalEngine::Stats st = engine->stats();
        return Samples{{{"accepted"}, static_cast<double>(st.feedback_accepted)},
                       {{"duplicate"}, static_cast<double>(st.feedback_duplicate)},
                       {{"unknown"}, static_cast<double>(st.feedback_unknown)}};
      }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_model_info", "The served model version (value 1; the version is a label).",
      MetricType::kGauge, {"version"},
      [engine] { return Samples{{{engine->snapshot()->model_version()}, 1.0}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_catalog_items", "Items in the served catalog.", MetricType::kGauge, {},
      [engine] {
        return Samples{{{}, static_cast<double>(engine->snapshot()->catalog().size())}};
      }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_catalog_version", "Catalog changes (UpsertItems/DeleteItems) since start.",
      MetricType::kGauge, {}, [engine] {
        return Samples{{{}, static_cast<double>(engine->snapshot()->catalog_version())}};
      }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_index_recall_at_10",
      "Recall@10 of the served item index against exact search, measured when it was built "
      "(1 for an exact index); the index type is a label.",
      MetricType::kGauge, {"type"}, [engine] {
        const std::shared_ptr<const ModelSnapshot> snap = engine->snapshot();
        return Samples{{{snap->index().type_name()}, snap->index().recall_at_10()}};
      }));
  return absl::OkStatus();
}

// The event log's queue, commits and write health.
absl::Status AddEventLogMetrics(MetricsRegistry& r, const EventLog* log) {
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_queue_depth", "Events queued for the event log's writer.",
      MetricType::kGauge, {},
      [log] { return Samples{{{}, static_cast<double>(log->stats().queue_depth)}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_rows_total", "Rows committed to the event log, by table.",
      MetricType::kCounter, {"table"}, [log] {
        const EventLog::Stats st = log->stats();
        return Samples{{{"served"}, static_cast<double>(st.served_rows)},
                       {{"feedback"}, static_cast<double>(st.feedback_rows)}};
      }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_commits_total", "Successful event log commits.", MetricType::kCounter,
      {}, [log] { return Samples{{{}, static_cast<double>(log->stats().commits)}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_last_commit_seconds", "Wall time of the last event log COMMIT.",
      MetricType::kGauge, {},
      [log] { return Samples{{{}, log->stats().last_commit_ms / 1000.0}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_max_commit_seconds", "Longest event log COMMIT since start.",
      MetricType::kGauge, {},
      [log] { return Samples{{{}, log->stats().max_commit_ms / 1000.0}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_errors_total", "Failed event log operations and commits.",
      MetricType::kCounter, {},
      [log] { return Samples{{{}, static_cast<double>(log->stats().errors)}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_pending_bytes",
      "Estimated bytes of event log operations not yet committed (limit max_queue_bytes).",
      MetricType::kGauge, {},
      [log] { return Samples{{{}, static_cast<double>(log->stats().pending_bytes)}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_write_faults_total",
      "Failed writes of an event log batch (disk full, I/O error, lock timeout); retried.",
      MetricType::kCounter, {},
      [log] { return Samples{{{}, static_cast<double>(log->stats().write_faults)}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_duplicate_requests_total",
      "Group-commit slates skipped because their request_id was already logged.",
      MetricType::kCounter, {},
      [log] { return Samples{{{}, static_cast<double>(log->stats().duplicate_requests)}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_event_log_writable",
      "1 while the event log acknowledges appends, 0 while writes fail or stall beyond the window.",
      MetricType::kGauge, {}, [log] { return Samples{{{}, log->WriteStatus().ok() ? 1.0 : 0.0}}; }));
  return absl::OkStatus();
}

// Model swaps.
absl::Status AddPublisherMetrics(MetricsRegistry& r, const ModelPublisher* publisher) {
  RETURN_IF_ERROR(r.AddCallback(
      "optower_model_trained",
      "1 when the served towers come from training, 0 for the random towers of a fresh start.",
      MetricType::kGauge, {},
      [publisher] { return Samples{{{}, publisher->served_trained() ? 1.0 : 0.0}}; }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_model_swaps_total", "Models published since start (trainer promotions and "
      "rollbacks).",
      MetricType::kCounter, {},
      [publisher] { return Samples{{{}, static_cast<double>(publisher->publications())}}; }));
  return absl::OkStatus();
}

// Training jobs and the last promotion gate.
absl::Status AddTrainerMetrics(MetricsRegistry& r, const Trainer* trainer) {
  RETURN_IF_ERROR(r.AddCallback(
      "optower_training_jobs_total",
      "Finished training jobs by outcome: succeeded (promoted and served), rejected (saved, not "
      "promoted), failed, cancelled (by a shutdown).",
      MetricType::kCounter, {"outcome"}, [trainer] {
        const TrainerStats st = trainer->stats();
        return Samples{{{"succeeded"}, static_cast<double>(st.succeeded)},
                       {{"rejected"}, static_cast<double>(st.rejected)},
                       {{"failed"}, static_cast<double>(st.failed)},
                       {{"cancelled"}, static_cast<double>(st.cancelled)}};
      }));
  RETURN_IF_ERROR(r.AddCallback(
      "optower_training_job_active", "1 while a training job is queued or running.",
      MetricType::kGauge, {}, [trainer] {
        return Samples{{{}, trainer->stats().running_job_id.empty() ? 0.0 : 1.0}};
      }));
  // The last promotion gate: DR of the served (old) and candidate (new) policy and their paired
  // difference, on the job's holdout. Absent until a job reaches the gate.
  struct OpeField {
    const char* name;
    const char* help;
    double (*get)(const OpeEstimate&);
  };
  static constexpr OpeField kOpeFields[] = {
      {"optower_ope_last_value",
       "Last promotion gate: DR estimate of the policy value (policy = old | new | diff).",
       [](const OpeEstimate& e) { return e.value; }},
      {"optower_ope_last_ci_low", "Last promotion gate: lower end of the confidence interval.",
       [](const OpeEstimate& e) { return e.ci_low; }},
      {"optower_ope_last_ci_high", "Last promotion gate: upper end of the confidence interval.",
       [](const OpeEstimate& e) { return e.ci_high; }},
      {"optower_ope_last_std_error", "Last promotion gate: standard error of the estimate.",
       [](const OpeEstimate& e) { return e.std_error; }},
      {"optower_ope_last_effective_sample_size",
       "Last promotion gate: effective sample size of the importance weights.",
       [](const OpeEstimate& e) { return e.effective_sample_size; }},
      {"optower_ope_last_holdout_samples", "Last promotion gate: holdout samples used.",
       [](const OpeEstimate& e) { return static_cast<double>(e.n); }},
  };
  for (const OpeField& field : kOpeFields) {
    double (*get)(const OpeEstimate&) = field.get;
    RETURN_IF_ERROR(r.AddCallback(field.name, field.help, MetricType::kGauge, {"policy"},
                                  [trainer, get] {
                                    const TrainerStats st = trainer->stats();
                                    if (!st.last_ope.has_value()) return Samples{};
                                    return Samples{{{"old"}, get(st.last_ope->old_policy)},
                                                   {{"new"}, get(st.last_ope->new_policy)},
                                                   {{"diff"}, get(st.last_ope->difference)}};
                                  }));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PrometheusExporter::AttachSources(const Sources& s) {
  MetricsRegistry& r = registry_;
  const absl::Time started = s.started;
  RETURN_IF_ERROR(r.AddCallback("optower_start_time_seconds",
                                "Start time of the server, seconds since the Unix epoch.",
                                MetricType::kGauge, {}, [started] {
                                  return Samples{{{}, absl::ToDoubleSeconds(
                                                          started - absl::UnixEpoch())}};
                                }));
  if (s.engine != nullptr) RETURN_IF_ERROR(AddEngineMetrics(r, s.engine));
  if (s.event_log != nullptr) RETURN_IF_ERROR(AddEventLogMetrics(r, s.event_log));
  if (s.publisher != nullptr) RETURN_IF_ERROR(AddPublisherMetrics(r, s.publisher));
  if (s.trainer != nullptr) RETURN_IF_ERROR(AddTrainerMetrics(r, s.trainer));
  return absl::OkStatus();
}

absl::Status PrometheusExporter::StartHttp(const MetricsHttpServerOptions& options) {
  if (http_ != nullptr) return absl::FailedPreconditionError("metrics: HTTP server already runs");
  ASSIGN_OR_RETURN(http_, MetricsHttpServer::Start(options, [this] { return Render(); }));
  return absl::OkStatus();
}

void PrometheusExporter::StopHttp() {
  if (http_ != nullptr) http_->Stop();
}

}  // namespace optower::server
