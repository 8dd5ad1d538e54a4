#include "server/proto_convert.h"

#include "absl/strings/str_cat.h"

namespace optower::server {

RetrieveRequest FromProto(const v1::RetrieveRequest& request) {
  RetrieveRequest r;
  r.request_id = request.request_id();
  r.context.assign(request.context().dense().begin(), request.context().dense().end());
  r.categorical.reserve(static_cast<size_t>(request.context().categorical_size()));
  for (const v1::CategoricalFeature& f : request.context().categorical()) {
    r.categorical.push_back({f.name(), std::vector<int64_t>(f.ids().begin(), f.ids().end())});
  }
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
  return items;
}

void ToProto(const CatalogChangeResult& result, v1::UpsertItemsResponse* response) {
  response->set_inserted(static_cast<int32_t>(result.inserted));
  response->set_updated(static_cast<int32_t>(result.updated));
  response->set_catalog_size(result.catalog_size);
  response->set_catalog_version(result.catalog_version);
  response->set_index_type(result.index_type);
  response->set_index_recall_at_10(result.index_recall_at_10);
}

void ToProto(const CatalogChangeResult& result, v1::DeleteItemsResponse* response) {
  response->set_deleted(static_cast<int32_t>(result.deleted));
  response->set_catalog_size(result.catalog_size);
  response->set_catalog_version(result.catalog_version);
}

}  // namespace optower::server
