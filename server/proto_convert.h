// Conversions between the API messages (optower.v1) and core's request/result types. Pure data
// copies: validation is core's job (RetrievalEngine), except for what only the wire format can get
// wrong (items of unequal feature lengths), which is checked here with the API's field names.
// Thread safety: reentrant.
#ifndef OPTOWER_SERVER_PROTO_CONVERT_H_
#define OPTOWER_SERVER_PROTO_CONVERT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"
#include "core/storage/event_log.h"
#include "core/storage/model_store.h"
#include "core/serving/retrieval_engine.h"
#include "core/training/trainer.h"
#include "optower/v1/optower.pb.h"

namespace optower::server {

RetrieveRequest FromProto(const v1::RetrieveRequest& request);
void ToProto(const RetrieveResult& result, v1::RetrieveResponse* response);

std::vector<FeedbackEvent> FromProto(const v1::FeedbackRequest& request);
void ToProto(const FeedbackResult& result, v1::FeedbackResponse* response);

// The items as a catalog fragment. InvalidArgument when an item's feature count differs from
// `dim_features` (the served catalog's): "items[3].features has 4 values: the catalog has
// dim_features=5".
absl::StatusOr<ItemCatalog> FromProto(const v1::UpsertItemsRequest& request, int64_t dim_features);

void ToProto(const CatalogChangeResult& result, v1::UpsertItemsResponse* response);
void ToProto(const CatalogChangeResult& result, v1::DeleteItemsResponse* response);

// ---- The trainer ----
v1::TrainingJobState ToProto(JobState state);
void ToProto(const OpeEstimate& estimate, v1::OpeEstimate* out);
void ToProto(const OpeComparison& comparison, v1::OpeComparison* out);
void ToProto(const PolicyTrainMetrics& metrics, v1::TrainingMetrics* out);
void ToProto(const JobInfo& job, v1::TrainingJob* out);
// `job` (optional): the job's current info, used for what an event does not carry itself — on
// evaluate and final events the OPE numbers and reason, on the final event the saved version.
void ToProto(const JobEvent& event, const std::string& job_id, const JobInfo* job,
             v1::TrainingEvent* out);
void ToProto(const TrainerStats& stats, v1::TrainingState* out);
// `serving`: the version is served now; `current`: CURRENT names it.
void ToProto(const ModelManifest& manifest, bool serving, bool current, v1::ModelVersion* out);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_PROTO_CONVERT_H_
