#include "server/admin_service.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"
#include "core/serving/slate_exploration.h"
#include "server/proto_convert.h"
#include "server/raw_rpc.h"
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

// Job ids and versions are short; a longer one is refused here, before core echoes it.
constexpr size_t kMaxIdBytes = 64;

absl::Status CheckJobId(const std::string& job_id) {
  if (job_id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("job_id=", EchoValue(job_id),
                                                   ": too long (at most ", kMaxIdBytes, " bytes)"));
  }
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
  if (request.version().size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "version=", EchoValue(request.version()), ": too long (at most ", kMaxIdBytes, " bytes)"));
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

absl::Status AdminServiceImpl::Offload(const char* method, std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::UnavailableError(absl::StrCat(method, ": the server is shutting down"));
  }
  if (static_cast<int64_t>(jobs_.size()) >= info_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat(method, ": ", jobs_.size(),
                     " catalog/rollback calls are already waiting (max_admin_queue=",
                     info_.max_queue, "); retry later"));
  }
  jobs_.push_back(std::move(job));
  return absl::OkStatus();
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

namespace {

// Why a queued call should not run any more: its deadline passed or its client cancelled.
absl::Status StillWanted(grpc::CallbackServerContext* context, const char* method) {
  if (context->IsCancelled()) {
    return absl::CancelledError(
        absl::StrCat(method, ": cancelled by the client while it waited; not run"));
  }
  if (context->deadline() <= std::chrono::system_clock::now()) {
    return absl::DeadlineExceededError(
        absl::StrCat(method, ": the deadline passed while it waited; not run"));
  }
  return absl::OkStatus();
}

// The RPCs a serving replica refuses (they change the shared registry or catalog).
bool IsAdminWrite(const char* method) {
  const std::string m(method);
  return m == "UpsertItems" || m == "DeleteItems" || m == "TriggerRetrain" || m == "Rollback";
}

}  // namespace

template <typename Request, typename Response>
grpc::ServerUnaryReactor* AdminServiceImpl::Serve(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* wire, grpc::ByteBuffer* out,
    const char* method, RpcStat* stat, bool on_worker,
    std::function<absl::Status(const Request&, Response*)> work) {
  const absl::Time start = absl::Now();
  const bool upsert = std::is_same_v<Request, v1::UpsertItemsRequest>;
  const WireLimit limit{method, upsert ? "max_receive_message_bytes" : "max_admin_bytes",
                        upsert ? info_.max_upsert_bytes : info_.max_admin_bytes};
  // Request and response live until the call finishes (on the worker: in the queued job).
  auto call = std::make_shared<std::pair<Request, Response>>();
  absl::Status status = AuthenticateAndParse(Authenticate(context), *wire, limit, &call->first);
  if (status.ok() && IsAdminWrite(method)) {
    status = RefuseAdminWrite(info_.role, info_.trainer_address, method);
  }
  auto run = [call, out, work = std::move(work)]() {
    absl::Status s = work(call->first, &call->second);
    if (s.ok()) s = SerializeToWire(call->second, out);
    return s;
  };
  if (status.ok() && !on_worker) status = run();
  if (!status.ok() || !on_worker) return FinishInline(context, stat, start, status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  status = Offload(method, [reactor, context, method, stat, start, run = std::move(run)] {
    absl::Status s = StillWanted(context, method);
    if (s.ok()) s = run();
    stat->Record(absl::Now() - start, s);
    reactor->Finish(ToGrpcStatus(s));
  });
  if (!status.ok()) {
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
                                                        const grpc::ByteBuffer* request,
                                                        grpc::ByteBuffer* response) {
  return Serve<v1::UpsertItemsRequest, v1::UpsertItemsResponse>(
      context, request, response, "UpsertItems", &deps_.metrics->upsert_items, /*on_worker=*/true,
      [this](const v1::UpsertItemsRequest& r, v1::UpsertItemsResponse* out) {
        return DoUpsert(*deps_.engine, r, out);
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::DeleteItems(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request,
                                                        grpc::ByteBuffer* response) {
  return Serve<v1::DeleteItemsRequest, v1::DeleteItemsResponse>(
      context, request, response, "DeleteItems", &deps_.metrics->delete_items, /*on_worker=*/true,
      [this](const v1::DeleteItemsRequest& r, v1::DeleteItemsResponse* out) {
        return DoDelete(*deps_.engine, r, out);
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetStats(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request,
                                                     grpc::ByteBuffer* response) {
  return Serve<v1::GetStatsRequest, v1::GetStatsResponse>(
      context, request, response, "GetStats", &deps_.metrics->get_stats, /*on_worker=*/false,
      [this](const v1::GetStatsRequest&, v1::GetStatsResponse* out) {
        FillStats(out);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::TriggerRetrain(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request,
                                                           grpc::ByteBuffer* response) {
  return Serve<v1::TriggerRetrainRequest, v1::TriggerRetrainResponse>(
      context, request, response, "TriggerRetrain", &deps_.metrics->trigger_retrain,
      /*on_worker=*/false,
      [this](const v1::TriggerRetrainRequest& r, v1::TriggerRetrainResponse* out) {
        return DoTriggerRetrain(deps_.trainer, r, out);
      });
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
                                                           const grpc::ByteBuffer* request,
                                                           grpc::ByteBuffer* response) {
  return Serve<v1::GetTrainingJobRequest, v1::TrainingJob>(
      context, request, response, "GetTrainingJob", &deps_.metrics->get_training_job,
      /*on_worker=*/false, [this](const v1::GetTrainingJobRequest& r, v1::TrainingJob* out) {
        return DoGetTrainingJob(deps_.trainer, r, out);
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTrainingJobs(grpc::CallbackServerContext* context,
                                                             const grpc::ByteBuffer* request,
                                                             grpc::ByteBuffer* response) {
  return Serve<v1::ListTrainingJobsRequest, v1::ListTrainingJobsResponse>(
      context, request, response, "ListTrainingJobs", &deps_.metrics->list_training_jobs,
      /*on_worker=*/false,
      [this](const v1::ListTrainingJobsRequest&, v1::ListTrainingJobsResponse* out) {
        return DoListTrainingJobs(deps_.trainer, out);
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request,
                                                       grpc::ByteBuffer* response) {
  return Serve<v1::ListModelsRequest, v1::ListModelsResponse>(
      context, request, response, "ListModels", &deps_.metrics->list_models, /*on_worker=*/false,
      [this](const v1::ListModelsRequest&, v1::ListModelsResponse* out) {
        return DoListModels(deps_.store, *deps_.engine, out);
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::Rollback(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request,
                                                     grpc::ByteBuffer* response) {
  return Serve<v1::RollbackRequest, v1::RollbackResponse>(
      context, request, response, "Rollback", &deps_.metrics->rollback, /*on_worker=*/true,
      [this](const v1::RollbackRequest& r, v1::RollbackResponse* out) {
        return DoRollback(deps_.trainer, *deps_.engine, r, out);
      });
}

namespace {

// GetStats.index: the served index's type, tuned parameters, probe and layers (not in
// proto_convert.cc, which the fuzz build links without the index code).
void FillIndexStats(const ModelSnapshot& snapshot, const RetrievalEngine::Stats& stats,
                    v1::IndexStats* out) {
  const ItemIndex& index = snapshot.index();
  out->set_type(index.type_name());
  out->set_recall_at_10(index.recall_at_10());
  out->set_ivf_nlist(index.ivf_nlist());
  out->set_ivf_nprobe(index.ivf_nprobe());
  out->set_hnsw_ef_search(index.hnsw_ef_search());
  out->set_probe(snapshot.probe_source());
  out->set_probe_queries(index.probe_queries());
  out->set_build_report(index.build_report());
  out->set_build_seconds(snapshot.build_seconds());
  out->set_base_items(index.base_size());
  out->set_delta_items(index.delta_size());
  out->set_tombstones(index.tombstones());
  out->set_rebuilds(stats.index_rebuilds);
  out->set_incremental_updates(stats.index_incremental_updates);
}

// The served model's categorical schema (what Retrieve and UpsertItems may carry).
void FillFields(const std::vector<CategoricalField>& fields,
                google::protobuf::RepeatedPtrField<v1::CategoricalFieldSpec>* out) {
  for (const CategoricalField& f : fields) {
    v1::CategoricalFieldSpec* spec = out->Add();
    spec->set_name(f.name);
    spec->set_buckets(f.buckets);
    spec->set_width(static_cast<int32_t>(f.width));
    spec->set_max_ids(static_cast<int32_t>(f.max_ids));
  }
}

}  // namespace

void AdminServiceImpl::FillStats(v1::GetStatsResponse* r) const {
  const RetrievalEngine* engine = deps_.engine;
  const std::shared_ptr<const ModelSnapshot> snap = engine->snapshot();
  const RetrievalEngineOptions& o = engine->options();
  r->set_model_version(snap->model_version());
  r->mutable_scale_out()->set_role(ServerRoleName(info_.role));
  if (info_.scale_out) info_.scale_out(r->mutable_scale_out());
  r->set_catalog_size(snap->catalog().size());
  r->set_catalog_version(snap->catalog_version());
  r->set_index_type(snap->index().type_name());
  r->set_index_recall_at_10(snap->index().recall_at_10());
  FillIndexStats(*snap, engine->stats(), r->mutable_index());
  r->set_dim_context(static_cast<int32_t>(snap->dim_context()));
  r->set_dim_item(static_cast<int32_t>(snap->catalog().dim_features));
  r->set_embedding_dim(static_cast<int32_t>(snap->embedding_dim()));
  FillFields(snap->model().config().context_fields, r->mutable_context_fields());
  FillFields(snap->model().config().item_fields, r->mutable_item_fields());
  r->set_epsilon(o.greedy ? 0.0 : o.epsilon);
  r->set_temperature(engine->ServedTemperature(*snap));
  r->set_top_m(static_cast<int32_t>(o.top_m));
  r->set_max_k(static_cast<int32_t>(o.max_k));
  r->set_slate_exploration(SlateExplorationName(o.slate_exploration));
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
