#include "server/proto_convert.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/base/categorical.h"
#include "core/base/status_macros.h"
#include "absl/time/time.h"

namespace optower::server {
namespace {

// Unix micros; 0 for "not yet" (absl::InfinitePast).
int64_t Micros(absl::Time t) {
  return t == absl::InfinitePast() ? 0 : absl::ToUnixMicros(t);
}

std::vector<CategoricalFeature> FeaturesFromProto(
    const google::protobuf::RepeatedPtrField<v1::CategoricalFeature>& features) {
  std::vector<CategoricalFeature> out;
  out.reserve(static_cast<size_t>(features.size()));
  for (const v1::CategoricalFeature& f : features) {
    out.push_back({f.name(), std::vector<int64_t>(f.ids().begin(), f.ids().end())});
  }
  return out;
}

// The items' categorical features as columns: one per name any item uses, in order of first use
// (the engine checks the names against the model's item schema and reorders them). No column at
// all when no item has categorical features (the dense path).
absl::Status ItemCategoricalFromProto(const v1::UpsertItemsRequest& request,
                                      CategoricalColumns* cols) {
  std::vector<std::string> names;
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < request.items_size(); ++i) {
    const auto& features = request.items(i).categorical();
    if (features.size() > kMaxCategoricalFields) {
      return absl::InvalidArgumentError(absl::StrCat("items[", i, "].categorical has ",
                                                     features.size(), " features: at most ",
                                                     kMaxCategoricalFields));
    }
    for (const v1::CategoricalFeature& f : features) {
      if (seen.insert(f.name()).second) names.push_back(f.name());
    }
  }
  if (names.empty()) return absl::OkStatus();
  *cols = CategoricalColumns(std::move(names));
  for (int i = 0; i < request.items_size(); ++i) {
    const absl::Status s =
        cols->AppendFeatures(FeaturesFromProto(request.items(i).categorical()));
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("items[", i, "].categorical: ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

RetrieveRequest FromProto(const v1::RetrieveRequest& request) {
  RetrieveRequest r;
  r.request_id = request.request_id();
  r.context.assign(request.context().dense().begin(), request.context().dense().end());
  r.categorical = FeaturesFromProto(request.context().categorical());
  r.k = request.k();
  r.exclude.assign(request.exclude_item_ids().begin(), request.exclude_item_ids().end());
  if (request.has_seed()) r.seed = request.seed();
  return r;
}

void ToProto(const RetrieveResult& result, v1::RetrieveResponse* response) {
  response->set_request_id(result.request_id);
  response->set_model_version(result.model_version);
  response->mutable_items()->Reserve(static_cast<int>(result.items.size()));
  for (const SlateItem& item : result.items) {
    v1::RetrievedItem* out = response->add_items();
    out->set_item_id(item.item_id);
    out->set_position(static_cast<int32_t>(item.position));
    out->set_score(item.score);
    out->set_propensity(item.propensity);
    out->set_conditional_propensity(item.conditional_propensity);
  }
}

std::vector<FeedbackEvent> FromProto(const v1::FeedbackRequest& request) {
  std::vector<FeedbackEvent> events;
  events.reserve(static_cast<size_t>(request.events_size()));
  for (const v1::FeedbackEvent& e : request.events()) {
    FeedbackEvent out;
    out.request_id = e.request_id();
    out.item_id = e.item_id();
    out.reward = e.reward();
    events.push_back(std::move(out));
  }
  return events;
}

void ToProto(const FeedbackResult& result, v1::FeedbackResponse* response) {
  response->set_accepted(static_cast<int32_t>(result.accepted));
  response->set_duplicate(static_cast<int32_t>(result.duplicate));
  response->set_unknown(static_cast<int32_t>(result.unknown));
  for (FeedbackOutcome o : result.outcomes) {
    switch (o) {
      case FeedbackOutcome::kAccepted:
        response->add_outcomes(v1::FEEDBACK_OUTCOME_ACCEPTED);
        break;
      case FeedbackOutcome::kDuplicate:
        response->add_outcomes(v1::FEEDBACK_OUTCOME_DUPLICATE);
        break;
      case FeedbackOutcome::kUnknown:
        response->add_outcomes(v1::FEEDBACK_OUTCOME_UNKNOWN);
        break;
    }
  }
}

absl::StatusOr<ItemCatalog> FromProto(const v1::UpsertItemsRequest& request, int64_t dim_features) {
  ItemCatalog items;
  items.dim_features = dim_features;
  items.ids.reserve(static_cast<size_t>(request.items_size()));
  items.features.reserve(static_cast<size_t>(request.items_size() * dim_features));
  for (int i = 0; i < request.items_size(); ++i) {
    const v1::Item& item = request.items(i);
    if (item.features_size() != dim_features) {
      return absl::InvalidArgumentError(absl::StrCat("items[", i, "].features has ",
                                                     item.features_size(),
                                                     " values: the catalog has dim_features=",
                                                     dim_features));
    }
    items.ids.push_back(item.item_id());
    items.features.insert(items.features.end(), item.features().begin(), item.features().end());
  }
  RETURN_IF_ERROR(ItemCategoricalFromProto(request, &items.categorical));
  return items;
}

void ToProto(const CatalogChangeResult& result, v1::UpsertItemsResponse* response) {
  response->set_inserted(static_cast<int32_t>(result.inserted));
  response->set_updated(static_cast<int32_t>(result.updated));
  response->set_catalog_size(result.catalog_size);
  response->set_catalog_version(result.catalog_version);
  response->set_index_type(result.index_type);
  response->set_index_recall_at_10(result.index_recall_at_10);
  response->set_index_rebuilt(result.index_rebuilt);
}

void ToProto(const CatalogChangeResult& result, v1::DeleteItemsResponse* response) {
  response->set_deleted(static_cast<int32_t>(result.deleted));
  response->set_catalog_size(result.catalog_size);
  response->set_catalog_version(result.catalog_version);
  response->set_index_rebuilt(result.index_rebuilt);
}

// ---------------------------------------------------------------------------------------------
// The trainer

v1::TrainingJobState ToProto(JobState state) {
  switch (state) {
    case JobState::kQueued: return v1::TRAINING_JOB_STATE_QUEUED;
    case JobState::kRunning: return v1::TRAINING_JOB_STATE_RUNNING;
    case JobState::kSucceeded: return v1::TRAINING_JOB_STATE_SUCCEEDED;
    case JobState::kRejected: return v1::TRAINING_JOB_STATE_REJECTED;
    case JobState::kFailed: return v1::TRAINING_JOB_STATE_FAILED;
    case JobState::kCancelled: return v1::TRAINING_JOB_STATE_CANCELLED;
  }
  return v1::TRAINING_JOB_STATE_UNSPECIFIED;
}

void ToProto(const OpeEstimate& e, v1::OpeEstimate* out) {
  out->set_estimator(e.estimator);
  out->set_value(e.value);
  out->set_std_error(e.std_error);
  out->set_ci_low(e.ci_low);
  out->set_ci_high(e.ci_high);
  out->set_n(e.n);
  out->set_max_weight(e.max_weight);
  out->set_effective_sample_size(e.effective_sample_size);
}

void ToProto(const OpeComparison& c, v1::OpeComparison* out) {
  out->set_confidence(c.confidence);
  out->set_tolerance(c.tolerance);
  ToProto(c.old_policy, out->mutable_old_value());
  ToProto(c.new_policy, out->mutable_new_value());
  ToProto(c.difference, out->mutable_diff());
}

void ToProto(const PolicyTrainMetrics& m, v1::TrainingMetrics* out) {
  out->set_objective(m.objective);
  out->set_epochs_run(m.epochs_run);
  out->set_best_epoch(m.best_epoch);
  out->set_validation_dr_initial(m.validation_dr_initial);
  out->set_validation_dr_best(m.validation_dr_best);
  out->set_logging_policy_value(m.logging_policy_value);
  out->set_reward_model_seconds(m.reward_model_seconds);
  out->set_policy_seconds(m.policy_seconds);
  out->set_total_seconds(m.total_seconds);
  out->set_threads(m.threads);
}

void ToProto(const JobInfo& j, v1::TrainingJob* out) {
  out->set_job_id(j.id);
  out->set_state(ToProto(j.state));
  out->set_phase(j.phase);
  out->set_trigger(j.trigger);
  out->set_force(j.force);
  out->set_created_unix_micros(Micros(j.created_time));
  out->set_started_unix_micros(Micros(j.start_time));
  out->set_ended_unix_micros(Micros(j.end_time));
  out->set_parent_version(j.parent_version);
  out->set_version(j.version);
  out->set_published(j.published);
  out->set_decision(j.decision);
  out->set_reason(j.reason);
  if (j.error_code != absl::StatusCode::kOk) {
    out->set_error_code(absl::StatusCodeToString(j.error_code));
  }
  if (j.ope.has_value()) ToProto(*j.ope, out->mutable_ope());
  out->set_watermark(j.watermark);
  v1::TrainingDataCounts* c = out->mutable_counts();
  c->set_rows_read(j.counts.rows_read);
  c->set_with_feedback(j.counts.with_feedback);
  c->set_default_reward(j.counts.default_reward);
  c->set_pending_excluded(j.counts.pending_excluded);
  c->set_unknown_item(j.counts.unknown_item);
  c->set_bad_context(j.counts.bad_context);
  c->set_bad_reward(j.counts.bad_reward);
  out->set_n_train(j.n_train);
  out->set_n_holdout(j.n_holdout);
  if (!j.metrics.objective.empty()) ToProto(j.metrics, out->mutable_metrics());
}

void ToProto(const JobEvent& e, const std::string& job_id, const JobInfo* job,
             v1::TrainingEvent* out) {
  out->set_job_id(job_id);
  out->set_seq(e.seq);
  out->set_time_unix_micros(Micros(e.time));
  out->set_phase(e.phase);
  out->set_epoch(e.epoch);
  out->set_epochs(e.epochs);
  out->set_loss(e.loss);
  out->set_validation_value(e.validation);
  out->set_improved(e.improved);
  out->set_message(e.message);
  out->set_final(e.final);
  out->set_state(ToProto(e.state));
  out->set_decision(e.decision);
  if (job != nullptr && (e.final || !e.decision.empty())) {
    out->set_reason(job->reason);
    if (job->ope.has_value()) ToProto(*job->ope, out->mutable_ope());
    if (e.final) out->set_new_version(job->version);
  }
}

void ToProto(const TrainerStats& s, v1::TrainingState* out) {
  out->set_enabled(true);
  out->set_running_job_id(s.running_job_id);
  out->set_last_job_id(s.last_job_id);
  if (!s.last_job_id.empty()) out->set_last_state(ToProto(s.last_state));
  out->set_last_reason(s.last_reason);
  out->set_succeeded(s.succeeded);
  out->set_rejected(s.rejected);
  out->set_failed(s.failed);
  out->set_cancelled(s.cancelled);
  if (s.last_ope.has_value()) ToProto(*s.last_ope, out->mutable_last_ope());
}

void ToProto(const ModelManifest& m, bool serving, bool current, v1::ModelVersion* out) {
  out->set_version(m.version);
  out->set_created_unix_micros(m.created_time_us);
  out->set_parent_version(m.parent_version);
  out->set_job_id(m.job_id);
  out->set_promoted(m.promoted);
  out->set_serving(serving);
  out->set_current(current);
  out->set_decision(m.decision);
  out->set_reason(m.reason);
  out->set_objective(m.objective);
  out->set_data_watermark(m.data_watermark);
  out->set_n_events(m.n_events);
  out->set_n_train(m.n_train);
  out->set_n_holdout(m.n_holdout);
  if (m.ope.has_value()) ToProto(*m.ope, out->mutable_ope());
  if (m.index_recall.has_value()) out->set_index_recall(*m.index_recall);
  if (!m.metrics.objective.empty() || m.metrics.epochs_run > 0) {
    ToProto(m.metrics, out->mutable_metrics());
  }
}

}  // namespace optower::server
