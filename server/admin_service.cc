#include "server/admin_service.h"

#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "core/status_macros.h"
#include "server/proto_convert.h"
#include "server/status_util.h"

namespace optower::server {
namespace {

absl::Status DoUpsert(RetrievalEngine& engine, const v1::UpsertItemsRequest& request,
                      v1::UpsertItemsResponse* response) {
  ASSIGN_OR_RETURN(const ItemCatalog items,
                   FromProto(request, engine.snapshot()->catalog().dim_features));
  ASSIGN_OR_RETURN(const CatalogChangeResult result, engine.UpsertItems(items));
  ToProto(result, response);
  return absl::OkStatus();
}

absl::Status DoDelete(RetrievalEngine& engine, const v1::DeleteItemsRequest& request,
                      v1::DeleteItemsResponse* response) {
  const std::vector<int64_t> ids(request.item_ids().begin(), request.item_ids().end());
  ASSIGN_OR_RETURN(const CatalogChangeResult result, engine.DeleteItems(ids));
  ToProto(result, response);
  return absl::OkStatus();
}

void AddLatency(const char* method, const LatencyHistogram& histogram,
                v1::GetStatsResponse* response) {
  const LatencyHistogram::Summary s = histogram.Summarize();
  v1::RpcLatency* out = response->add_rpc_latency();
  out->set_method(method);
  out->set_count(s.count);
  out->set_errors(s.errors);
  out->set_mean_ms(s.mean_ms);
  out->set_p50_ms(s.p50_ms);
  out->set_p95_ms(s.p95_ms);
  out->set_p99_ms(s.p99_ms);
  out->set_max_ms(s.max_ms);
}

}  // namespace

AdminServiceImpl::AdminServiceImpl(RetrievalEngine* engine, const EventLog* event_log,
                                   ServerMetrics* metrics, Info info)
    : engine_(engine), event_log_(event_log), metrics_(metrics), info_(std::move(info)) {
  worker_ = std::thread([this] { WorkerLoop(); });
}

AdminServiceImpl::~AdminServiceImpl() { Stop(); }

void AdminServiceImpl::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

bool AdminServiceImpl::Offload(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  jobs_.push_back(std::move(job));
  return true;
}

void AdminServiceImpl::WorkerLoop() {
  for (;;) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](AdminServiceImpl* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->jobs_.empty();
          },
          this));
      if (jobs_.empty()) return;  // stopping, and everything queued has run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

grpc::ServerUnaryReactor* AdminServiceImpl::UpsertItems(grpc::CallbackServerContext* context,
                                                        const v1::UpsertItemsRequest* request,
                                                        v1::UpsertItemsResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // request/response stay valid until Finish.
  const bool queued = Offload([this, reactor, request, response, start] {
    const absl::Status status = DoUpsert(*engine_, *request, response);
    metrics_->upsert_items.Record(absl::Now() - start, status.ok());
    reactor->Finish(ToGrpcStatus(status));
  });
  if (!queued) {
    const absl::Status status = absl::UnavailableError("UpsertItems: the server is shutting down");
    metrics_->upsert_items.Record(absl::Now() - start, false);
    reactor->Finish(ToGrpcStatus(status));
  }
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::DeleteItems(grpc::CallbackServerContext* context,
                                                        const v1::DeleteItemsRequest* request,
                                                        v1::DeleteItemsResponse* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool queued = Offload([this, reactor, request, response, start] {
    const absl::Status status = DoDelete(*engine_, *request, response);
    metrics_->delete_items.Record(absl::Now() - start, status.ok());
    reactor->Finish(ToGrpcStatus(status));
  });
  if (!queued) {
    const absl::Status status = absl::UnavailableError("DeleteItems: the server is shutting down");
    metrics_->delete_items.Record(absl::Now() - start, false);
    reactor->Finish(ToGrpcStatus(status));
  }
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetStats(grpc::CallbackServerContext* context,
                                                     const v1::GetStatsRequest* request,
                                                     v1::GetStatsResponse* response) {
  const absl::Time start = absl::Now();
  FillStats(response);
  metrics_->get_stats.Record(absl::Now() - start, true);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

void AdminServiceImpl::FillStats(v1::GetStatsResponse* r) const {
  const std::shared_ptr<const ModelSnapshot> snap = engine_->snapshot();
  const RetrievalEngineOptions& o = engine_->options();
  r->set_model_version(snap->model_version());
  r->set_catalog_size(snap->catalog().size());
  r->set_catalog_version(snap->catalog_version());
  r->set_index_type(snap->index().type_name());
  r->set_index_recall_at_10(snap->index().recall_at_10());
  r->set_dim_context(static_cast<int32_t>(snap->dim_context()));
  r->set_dim_item(static_cast<int32_t>(snap->catalog().dim_features));
  r->set_embedding_dim(static_cast<int32_t>(snap->embedding_dim()));
  r->set_epsilon(o.greedy ? 0.0 : o.epsilon);
  r->set_temperature(engine_->ServedTemperature(*snap));
  r->set_top_m(static_cast<int32_t>(o.top_m));
  r->set_max_k(static_cast<int32_t>(o.max_k));
  const RetrievalEngine::Stats s = engine_->stats();
  r->set_retrieve_ok(s.retrieve_ok);
  r->set_retrieve_errors(s.retrieve_errors);
  r->set_items_served(s.items_served);
  r->set_feedback_accepted(s.feedback_accepted);
  r->set_feedback_duplicate(s.feedback_duplicate);
  r->set_feedback_unknown(s.feedback_unknown);
  r->set_feedback_errors(s.feedback_errors);
  if (event_log_ != nullptr) {
    const EventLog::Stats ls = event_log_->stats();
    v1::EventLogStats* out = r->mutable_event_log();
    out->set_path(info_.event_log_path);
    out->set_durability(info_.durability);
    out->set_served_rows(ls.served_rows);
    out->set_feedback_rows(ls.feedback_rows);
    out->set_queue_depth(ls.queue_depth);
    out->set_commits(ls.commits);
    out->set_last_commit_ms(ls.last_commit_ms);
    out->set_max_commit_ms(ls.max_commit_ms);
    out->set_errors(ls.errors);
  }
  r->set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - info_.started));
  AddLatency("Retrieve", metrics_->retrieve, r);
  AddLatency("Feedback", metrics_->feedback, r);
  AddLatency("UpsertItems", metrics_->upsert_items, r);
  AddLatency("DeleteItems", metrics_->delete_items, r);
  AddLatency("GetStats", metrics_->get_stats, r);
}

}  // namespace optower::server
