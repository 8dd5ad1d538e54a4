// `optower stats`: prints a running optower-server's statistics (GetStats).
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/online_client.h"
#include "core/base/json_writer.h"
#include "core/base/status_macros.h"

namespace optower::cli {
namespace {

struct StatsFlags {
  std::string server;
  ConnectionFlags connection;  // --token, --tls-ca, --tls-cert, --tls-key
  double timeout = 10;
  bool json = false;
};

absl::StatusOr<std::string> ToJson(const v1::GetStatsResponse& s) {
  JsonWriter w(JsonWriter::Options{/*indent=*/0});
  w.BeginObject();
  w.Field("model_version", s.model_version());
  w.Field("catalog_size", s.catalog_size());
  w.Field("catalog_version", s.catalog_version());
  w.Field("index_type", s.index_type());
  w.Field("index_recall_at_10", s.index_recall_at_10());
  w.Field("dim_context", s.dim_context());
  w.Field("dim_item", s.dim_item());
  w.Field("embedding_dim", s.embedding_dim());
  // The categorical schema as name:buckets:width:max_ids texts.
  for (const auto* fields : {&s.context_fields(), &s.item_fields()}) {
    w.Key(fields == &s.context_fields() ? "context_fields" : "item_fields").BeginArray();
    for (const v1::CategoricalFieldSpec& f : *fields) {
      w.Value(absl::StrCat(f.name(), ":", f.buckets(), ":", f.width(), ":", f.max_ids()));
    }
    w.EndArray();
  }
  w.Field("epsilon", s.epsilon());
  w.Field("temperature", s.temperature());
  w.Field("top_m", s.top_m());
  w.Field("max_k", s.max_k());
  w.Field("slate_exploration", s.slate_exploration());
  w.Field("retrieve_ok", s.retrieve_ok());
  w.Field("retrieve_errors", s.retrieve_errors());
  w.Field("items_served", s.items_served());
  w.Field("feedback_accepted", s.feedback_accepted());
  w.Field("feedback_duplicate", s.feedback_duplicate());
  w.Field("feedback_unknown", s.feedback_unknown());
  w.Field("feedback_errors", s.feedback_errors());
  w.Field("uptime_seconds", s.uptime_seconds());
  w.Field("model_trained", s.model_trained());
  w.Field("model_swaps", s.model_swaps());
  if (s.has_training()) {
    const v1::TrainingState& t = s.training();
    w.Key("training").BeginObject();
    w.Field("enabled", t.enabled()).Field("running_job_id", t.running_job_id());
    w.Field("last_job_id", t.last_job_id())
        .Field("last_state", v1::TrainingJobState_Name(t.last_state()))
        .Field("last_reason", t.last_reason());
    w.Field("succeeded", t.succeeded()).Field("rejected", t.rejected());
    w.Field("failed", t.failed()).Field("cancelled", t.cancelled());
    if (t.has_last_ope()) {
      w.Field("last_ope_old_value", t.last_ope().old_value().value())
          .Field("last_ope_new_value", t.last_ope().new_value().value())
          .Field("last_ope_diff", t.last_ope().diff().value());
    }
    w.EndObject();
  }
  if (s.has_event_log()) {
    const v1::EventLogStats& e = s.event_log();
    w.Key("event_log").BeginObject();
    w.Field("path", e.path()).Field("durability", e.durability());
    w.Field("served_rows", e.served_rows()).Field("feedback_rows", e.feedback_rows());
    w.Field("queue_depth", e.queue_depth()).Field("commits", e.commits());
    w.Field("last_commit_ms", e.last_commit_ms()).Field("max_commit_ms", e.max_commit_ms());
    w.Field("errors", e.errors());
    w.EndObject();
  }
  w.Key("rpc_latency").BeginArray();
  for (const v1::RpcLatency& l : s.rpc_latency()) {
    w.BeginObject();
    w.Field("method", l.method()).Field("count", l.count()).Field("errors", l.errors());
    w.Field("mean_ms", l.mean_ms()).Field("p50_ms", l.p50_ms()).Field("p95_ms", l.p95_ms());
    w.Field("p99_ms", l.p99_ms()).Field("max_ms", l.max_ms());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.Finish();
}

void PrintText(const v1::GetStatsResponse& s) {
  std::printf("model %s; catalog %lld items (version %lld), %s index, recall@10 %.3f\n",
              s.model_version().c_str(), static_cast<long long>(s.catalog_size()),
              static_cast<long long>(s.catalog_version()), s.index_type().c_str(),
              s.index_recall_at_10());
  std::printf("policy: epsilon %g, temperature %g, top_m %d, max_k %d, %s slates; dims context %d "
              "item %d embedding %d\n",
              s.epsilon(), s.temperature(), s.top_m(), s.max_k(), s.slate_exploration().c_str(),
              s.dim_context(), s.dim_item(), s.embedding_dim());
  std::printf("retrieve: %lld ok, %lld errors, %lld items served\n",
              static_cast<long long>(s.retrieve_ok()), static_cast<long long>(s.retrieve_errors()),
              static_cast<long long>(s.items_served()));
  std::printf("feedback: %lld accepted, %lld duplicate, %lld unknown, %lld failed calls\n",
              static_cast<long long>(s.feedback_accepted()),
              static_cast<long long>(s.feedback_duplicate()),
              static_cast<long long>(s.feedback_unknown()),
              static_cast<long long>(s.feedback_errors()));
  if (s.has_event_log()) {
    const v1::EventLogStats& e = s.event_log();
    std::printf("event log %s (%s): %lld served rows, %lld feedback rows, queue %lld, %lld commits "
                "(last %.2f ms, max %.2f ms), %lld errors\n",
                e.path().c_str(), e.durability().c_str(), static_cast<long long>(e.served_rows()),
                static_cast<long long>(e.feedback_rows()), static_cast<long long>(e.queue_depth()),
                static_cast<long long>(e.commits()), e.last_commit_ms(), e.max_commit_ms(),
                static_cast<long long>(e.errors()));
  }
  std::printf("%-12s %10s %8s %9s %9s %9s %9s\n", "rpc", "calls", "errors", "mean_ms", "p50_ms",
              "p99_ms", "max_ms");
  for (const v1::RpcLatency& l : s.rpc_latency()) {
    std::printf("%-12s %10lld %8lld %9.3f %9.3f %9.3f %9.3f\n", l.method().c_str(),
                static_cast<long long>(l.count()), static_cast<long long>(l.errors()), l.mean_ms(),
                l.p50_ms(), l.p99_ms(), l.max_ms());
  }
  if (s.has_training()) {
    const v1::TrainingState& t = s.training();
    std::printf("training: %s; running %s; last %s %s%s%s; jobs %lld succeeded, %lld rejected, "
                "%lld failed, %lld cancelled; model swaps %lld\n",
                t.enabled() ? "enabled" : "disabled",
                t.running_job_id().empty() ? "-" : t.running_job_id().c_str(),
                t.last_job_id().empty() ? "-" : t.last_job_id().c_str(),
                t.last_job_id().empty() ? "" : v1::TrainingJobState_Name(t.last_state()).c_str(),
                t.last_reason().empty() ? "" : ": ", t.last_reason().c_str(),
                static_cast<long long>(t.succeeded()), static_cast<long long>(t.rejected()),
                static_cast<long long>(t.failed()), static_cast<long long>(t.cancelled()),
                static_cast<long long>(s.model_swaps()));
  }
  std::printf("uptime %.1f s\n", s.uptime_seconds());
}

absl::Status RunStats(const StatsFlags& f) {
  ASSIGN_OR_RETURN(auto client, ConnectToServer(f.server, f.timeout, f.connection));
  absl::StatusOr<v1::GetStatsResponse> stats = client->GetStats();
  if (!stats.ok()) return RpcError("GetStats", stats.status());
  if (f.json) {
    ASSIGN_OR_RETURN(const std::string json, ToJson(*stats));
    std::fputs(json.c_str(), stdout);
  } else {
    PrintText(*stats);
  }
  return absl::OkStatus();
}

int StatsMain(int argc, char** argv) {
  StatsFlags f;
  FlagParser parser("optower stats --server ADDR [--json]",
                    "Prints a running optower-server's model, catalog, traffic, event-log and "
                    "latency statistics.");
  parser.AddString("server", &f.server, "server address host:port");
  f.connection.Register(&parser);
  parser.AddDouble("timeout", &f.timeout, "call deadline in seconds");
  parser.AddBool("json", &f.json, "print one JSON object");
  parser.Require("server");
  if (auto done = ParseCommandLine(parser, argc, argv, 0)) return *done;
  const absl::Status s = RunStats(f);
  return s.ok() ? kExitOk : ReportError(s);
}

}  // namespace

OPTOWER_REGISTER_COMMAND(stats, "stats", "print a running optower-server's statistics", StatsMain);

}  // namespace optower::cli
