#include "server/admin_service.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
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

void AddLatency(const char* method, const RpcStat& stat, v1::GetStatsResponse* response) {
  const LatencyHistogram::Summary s = stat.latency_histogram.Summarize();
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

absl::Status RequireTrainer(const Trainer* trainer) {
  if (trainer != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "the trainer is disabled on this server (trainer { disabled: true } in its config)");
}

absl::Status DoTriggerRetrain(Trainer* trainer, const v1::TriggerRetrainRequest& request,
                              v1::TriggerRetrainResponse* response) {
  RETURN_IF_ERROR(RequireTrainer(trainer));
  ASSIGN_OR_RETURN(const std::string job_id, trainer->Trigger(request.force()));
  response->set_job_id(job_id);
  return absl::OkStatus();
}

absl::Status CheckJobId(const std::string& job_id) {
  if (!job_id.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "job_id: empty (TriggerRetrain returns one; ListTrainingJobs lists them)");
}

absl::Status DoGetTrainingJob(const Trainer* trainer, const v1::GetTrainingJobRequest& request,
                              v1::TrainingJob* response) {
  RETURN_IF_ERROR(RequireTrainer(trainer));
  RETURN_IF_ERROR(CheckJobId(request.job_id()));
  ASSIGN_OR_RETURN(const JobInfo job, trainer->GetJob(request.job_id()));
  ToProto(job, response);
  return absl::OkStatus();
}

absl::Status DoListTrainingJobs(const Trainer* trainer, v1::ListTrainingJobsResponse* response) {
  RETURN_IF_ERROR(RequireTrainer(trainer));
  for (const JobInfo& job : trainer->ListJobs()) ToProto(job, response->add_jobs());
  return absl::OkStatus();
}

absl::Status DoListModels(const ModelStore* store, const RetrievalEngine& engine,
                          v1::ListModelsResponse* response) {
  if (store == nullptr) return absl::FailedPreconditionError("this server has no model store");
  // Bounded: the newest trainer.list_models_limit versions (retention keeps fewer anyway).
  ASSIGN_OR_RETURN(const std::vector<ModelManifest> versions,
                   store->List(static_cast<size_t>(store->options().list_limit)));
  ASSIGN_OR_RETURN(const std::optional<std::string> current, store->Current());
  const std::string serving = engine.snapshot()->model_version();
  for (const ModelManifest& m : versions) {
    ToProto(m, m.version == serving, current.has_value() && *current == m.version,
            response->add_models());
  }
  response->set_serving_version(serving);
  return absl::OkStatus();
}

absl::Status DoRollback(Trainer* trainer, const RetrievalEngine& engine,
                        const v1::RollbackRequest& request, v1::RollbackResponse* response) {
  if (request.version().empty()) {
    return absl::InvalidArgumentError(
        "version: empty (want a stored version such as \"000001\"; ListModels lists them)");
  }
  RETURN_IF_ERROR(RequireTrainer(trainer));
  const std::string previous = engine.snapshot()->model_version();
  RETURN_IF_ERROR(trainer->Rollback(request.version()));
  response->set_version(request.version());
  response->set_previous_version(previous);
  return absl::OkStatus();
}

}  // namespace

AdminServiceImpl::AdminServiceImpl(Deps deps, Info info) : deps_(deps), info_(std::move(info)) {
  worker_ = std::thread([this] { WorkerLoop(); });
}

AdminServiceImpl::~AdminServiceImpl() { Stop(); }

void AdminServiceImpl::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
  // Streams end within one poll interval of the flag; the bound only guards against a stuck
  // client write (gRPC's own shutdown deadline cancels those).
  (void)watches_.StopAndWait(absl::Seconds(30));
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

absl::Status AdminServiceImpl::Authenticate(const grpc::CallbackServerContext* context) const {
  if (deps_.auth == nullptr) return absl::OkStatus();
  return deps_.auth->CheckAdmin(context->client_metadata());
}

grpc::ServerUnaryReactor* AdminServiceImpl::RunOnWorker(grpc::CallbackServerContext* context,
                                                        const char* method, RpcStat* stat,
                                                        std::function<absl::Status()> work) {
  const absl::Time start = absl::Now();
  if (absl::Status denied = Authenticate(context); !denied.ok()) {
    return FinishInline(context, stat, start, denied);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The request and response stay valid until Finish.
  const bool queued = Offload([reactor, stat, start, work = std::move(work)] {
    const absl::Status status = work();
    stat->Record(absl::Now() - start, status);
    reactor->Finish(ToGrpcStatus(status));
  });
  if (!queued) {
    const absl::Status status =
        absl::UnavailableError(absl::StrCat(method, ": the server is shutting down"));
    stat->Record(absl::Now() - start, status);
    reactor->Finish(ToGrpcStatus(status));
  }
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::FinishInline(grpc::CallbackServerContext* context,
                                                         RpcStat* stat, absl::Time start,
                                                         const absl::Status& status) {
  stat->Record(absl::Now() - start, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::UpsertItems(grpc::CallbackServerContext* context,
                                                        const v1::UpsertItemsRequest* request,
                                                        v1::UpsertItemsResponse* response) {
  return RunOnWorker(context, "UpsertItems", &deps_.metrics->upsert_items,
                     [this, request, response] { return DoUpsert(*deps_.engine, *request, response); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::DeleteItems(grpc::CallbackServerContext* context,
                                                        const v1::DeleteItemsRequest* request,
                                                        v1::DeleteItemsResponse* response) {
  return RunOnWorker(context, "DeleteItems", &deps_.metrics->delete_items,
                     [this, request, response] { return DoDelete(*deps_.engine, *request, response); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetStats(grpc::CallbackServerContext* context,
                                                     const v1::GetStatsRequest* request,
                                                     v1::GetStatsResponse* response) {
  const absl::Time start = absl::Now();
  const absl::Status status = Authenticate(context);
  if (status.ok()) FillStats(response);
  return FinishInline(context, &deps_.metrics->get_stats, start, status);
}

grpc::ServerUnaryReactor* AdminServiceImpl::TriggerRetrain(grpc::CallbackServerContext* context,
                                                           const v1::TriggerRetrainRequest* request,
                                                           v1::TriggerRetrainResponse* response) {
  const absl::Time start = absl::Now();
  absl::Status status = Authenticate(context);
  if (status.ok()) status = DoTriggerRetrain(deps_.trainer, *request, response);
  return FinishInline(context, &deps_.metrics->trigger_retrain, start, status);
}

grpc::ServerWriteReactor<v1::TrainingEvent>* AdminServiceImpl::WatchTraining(
    grpc::CallbackServerContext* context, const v1::WatchTrainingRequest* request) {
  const absl::Time start = absl::Now();
  absl::Status refusal = Authenticate(context);
  if (refusal.ok()) refusal = RequireTrainer(deps_.trainer);
  if (refusal.ok()) refusal = CheckJobId(request->job_id());
  if (refusal.ok() && request->after_seq() < 0) {
    refusal = absl::InvalidArgumentError(
        absl::StrCat("after_seq=", request->after_seq(), ": must be >= 0"));
  }
  if (refusal.ok()) refusal = deps_.trainer->GetJob(request->job_id()).status();
  if (refusal.ok() && watches_.stopping()) {
    refusal = absl::UnavailableError("WatchTraining: the server is shutting down");
  }
  RpcStat* stat = &deps_.metrics->watch_training;
  return new TrainingWatchReactor(
      deps_.trainer, request->job_id(), request->after_seq(), &watches_, std::move(refusal),
      [stat, start](const absl::Status& s) { stat->Record(absl::Now() - start, s); });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetTrainingJob(grpc::CallbackServerContext* context,
                                                           const v1::GetTrainingJobRequest* request,
                                                           v1::TrainingJob* response) {
  const absl::Time start = absl::Now();
  absl::Status status = Authenticate(context);
  if (status.ok()) status = DoGetTrainingJob(deps_.trainer, *request, response);
  return FinishInline(context, &deps_.metrics->get_training_job, start, status);
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTrainingJobs(
    grpc::CallbackServerContext* context, const v1::ListTrainingJobsRequest* request,
    v1::ListTrainingJobsResponse* response) {
  const absl::Time start = absl::Now();
  absl::Status status = Authenticate(context);
  if (status.ok()) status = DoListTrainingJobs(deps_.trainer, response);
  return FinishInline(context, &deps_.metrics->list_training_jobs, start, status);
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest* request,
                                                       v1::ListModelsResponse* response) {
  const absl::Time start = absl::Now();
  absl::Status status = Authenticate(context);
  if (status.ok()) status = DoListModels(deps_.store, *deps_.engine, response);
  return FinishInline(context, &deps_.metrics->list_models, start, status);
}

grpc::ServerUnaryReactor* AdminServiceImpl::Rollback(grpc::CallbackServerContext* context,
                                                     const v1::RollbackRequest* request,
                                                     v1::RollbackResponse* response) {
  return RunOnWorker(context, "Rollback", &deps_.metrics->rollback, [this, request, response] {
    return DoRollback(deps_.trainer, *deps_.engine, *request, response);
  });
}

void AdminServiceImpl::FillStats(v1::GetStatsResponse* r) const {
  const RetrievalEngine* engine = deps_.engine;
  const std::shared_ptr<const ModelSnapshot> snap = engine->snapshot();
  const RetrievalEngineOptions& o = engine->options();
  r->set_model_version(snap->model_version());
  r->set_catalog_size(snap->catalog().size());
  r->set_catalog_version(snap->catalog_version());
  r->set_index_type(snap->index().type_name());
  r->set_index_recall_at_10(snap->index().recall_at_10());
  r->set_dim_context(static_cast<int32_t>(snap->dim_context()));
  r->set_dim_item(static_cast<int32_t>(snap->catalog().dim_features));
  r->set_embedding_dim(static_cast<int32_t>(snap->embedding_dim()));
  r->set_epsilon(o.greedy ? 0.0 : o.epsilon);
  r->set_temperature(engine->ServedTemperature(*snap));
  r->set_top_m(static_cast<int32_t>(o.top_m));
  r->set_max_k(static_cast<int32_t>(o.max_k));
  const RetrievalEngine::Stats s = engine->stats();
  r->set_retrieve_ok(s.retrieve_ok);
  r->set_retrieve_errors(s.retrieve_errors);
  r->set_items_served(s.items_served);
  r->set_feedback_accepted(s.feedback_accepted);
  r->set_feedback_duplicate(s.feedback_duplicate);
  r->set_feedback_unknown(s.feedback_unknown);
  r->set_feedback_errors(s.feedback_errors);
  if (deps_.event_log != nullptr) {
    const EventLog::Stats ls = deps_.event_log->stats();
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
  if (deps_.publisher != nullptr) {
    r->set_model_trained(deps_.publisher->served_trained());
    r->set_model_swaps(deps_.publisher->publications());
  }
  if (deps_.trainer != nullptr) {
    ToProto(deps_.trainer->stats(), r->mutable_training());
  } else {
    r->mutable_training()->set_enabled(false);
  }
  const ServerMetrics& m = *deps_.metrics;
  AddLatency("Retrieve", m.retrieve, r);
  AddLatency("Feedback", m.feedback, r);
  AddLatency("UpsertItems", m.upsert_items, r);
  AddLatency("DeleteItems", m.delete_items, r);
  AddLatency("GetStats", m.get_stats, r);
  AddLatency("TriggerRetrain", m.trigger_retrain, r);
  AddLatency("WatchTraining", m.watch_training, r);
  AddLatency("GetTrainingJob", m.get_training_job, r);
  AddLatency("ListTrainingJobs", m.list_training_jobs, r);
  AddLatency("ListModels", m.list_models, r);
  AddLatency("Rollback", m.rollback, r);
}

}  // namespace optower::server
