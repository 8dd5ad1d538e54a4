#include "core/serving/retrieval_engine.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"
#include "core/serving/catalog_edit.h"

namespace optower {
namespace {

// A process-wide unique, unguessable-enough request id: 128 random bits as 32 hex characters.
std::string NewRequestId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

uint64_t NewSeed() {
  thread_local absl::BitGen gen;
  return absl::Uniform<uint64_t>(gen);
}

// Checks every field of a Retrieve request against the snapshot it will be served from.
absl::Status ValidateRetrieve(const RetrieveRequest& r, const ModelSnapshot& snap,
                              const RetrievalEngineOptions& o) {
  if (static_cast<int64_t>(r.request_id.size()) > o.max_request_id_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("request_id has ", r.request_id.size(),
                                                   " bytes: at most ", o.max_request_id_bytes));
  }
  const int64_t dim = snap.dim_context();
  if (static_cast<int64_t>(r.context.size()) != dim) {
    return absl::InvalidArgumentError(absl::StrCat("context.dense has ", r.context.size(),
                                                   " values: expected dim_context=", dim));
  }
  for (size_t i = 0; i < r.context.size(); ++i) {
    if (!std::isfinite(r.context[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("context.dense[", i, "]=", r.context[i], ": must be finite"));
    }
  }
  if (static_cast<int64_t>(r.categorical.size()) > o.max_categorical_features) {
    return absl::InvalidArgumentError(absl::StrCat("context.categorical has ", r.categorical.size(),
                                                   " features: at most max_categorical_features=",
                                                   o.max_categorical_features));
  }
  // Before any work: names in the served model's schema, at most max_ids ids each.
  RETURN_IF_ERROR(CheckFeaturesAgainstSchema(r.categorical, snap.model().config().context_fields,
                                             "context.categorical"));
  if (r.k < 1 || r.k > o.max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("k=", r.k, ": k must be in [1, ", o.max_k, "]"));
  }
  if (static_cast<int64_t>(r.exclude.size()) > o.max_exclude) {
    return absl::InvalidArgumentError(absl::StrCat("exclude_item_ids has ", r.exclude.size(),
                                                   " ids: at most max_exclude=", o.max_exclude));
  }
  const ItemIndex& index = snap.index();
  int64_t excluded = 0;
  if (!r.exclude.empty()) {
    absl::flat_hash_set<int64_t> distinct;
    for (int64_t id : r.exclude) {
      if (index.Contains(id)) distinct.insert(id);
    }
    excluded = static_cast<int64_t>(distinct.size());
  }
  const int64_t eligible = index.size() - excluded;
  if (r.k > eligible) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k=", r.k, ": above the ", eligible, " eligible items (catalog of ", index.size(),
        excluded > 0 ? absl::StrCat(" minus ", excluded, " excluded") : std::string(), ")"));
  }
  return absl::OkStatus();
}

std::string FieldsText(const std::vector<CategoricalField>& fields) {
  if (fields.empty()) return "[] (none)";
  return absl::StrCat("[", absl::StrJoin(fields, ", ", [](std::string* out, const CategoricalField& f) {
                        out->append(CategoricalFieldToText(f));
                      }),
                      "]");
}

// A swapped-in model must take the served model's categorical schema: clients send context
// features of it and the catalog holds item features of it.
absl::Status CheckSameSchema(const TwoTowerConfig& next, const TwoTowerConfig& served) {
  if (next.context_fields != served.context_fields) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.context_fields=", FieldsText(next.context_fields),
        ": differs from the served model's context_fields=", FieldsText(served.context_fields),
        " (clients send categorical features of the served schema)"));
  }
  if (next.item_fields != served.item_fields) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.item_fields=", FieldsText(next.item_fields),
        ": differs from the served model's item_fields=", FieldsText(served.item_fields),
        " (the catalog holds categorical item features of the served schema)"));
  }
  return absl::OkStatus();
}

absl::Status CheckFeatures(const std::string& field, const float* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    if (!std::isfinite(x[j])) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", j, "]=", x[j], ": must be finite"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RetrievalEngine>> RetrievalEngine::Create(
    const RetrievalEngineOptions& options, std::shared_ptr<const ModelSnapshot> initial,
    EventLog* event_log) {
  RETURN_IF_ERROR(options.Validate());
  if (initial == nullptr) return absl::InvalidArgumentError("initial snapshot=null");
  // Fails early on an unusable temperature (e.g. a model saved with tau <= 0).
  SlateSamplerOptions sampler;
  sampler.epsilon = options.epsilon;
  sampler.temperature =
      options.temperature > 0 ? options.temperature : initial->model().config().temperature;
  sampler.greedy = options.greedy;
  sampler.exploration = options.slate_exploration;
  RETURN_IF_ERROR(SlateSampler::Create(sampler).status());
  return std::unique_ptr<RetrievalEngine>(
      new RetrievalEngine(options, std::move(initial), event_log));
}

RetrievalEngine::RetrievalEngine(const RetrievalEngineOptions& options,
                                 std::shared_ptr<const ModelSnapshot> initial, EventLog* event_log)
    : options_(options),
      event_log_(event_log),
      holder_(std::move(initial)),
      reaper_(SnapshotReaper::Options{options.build_priority}),
      context_sample_(options.snapshot.index.recall_queries) {}

void RetrievalEngine::SeedProbeContexts(const std::vector<float>& contexts, int64_t dim) {
  context_sample_.RecordAll(contexts, dim);
}

double RetrievalEngine::ServedTemperature(const ModelSnapshot& snapshot) const {
  return options_.temperature > 0 ? options_.temperature : snapshot.model().config().temperature;
}

absl::StatusOr<RetrieveResult> RetrievalEngine::Retrieve(const RetrieveRequest& request,
                                                         absl::Time deadline) const {
  absl::StatusOr<RetrieveResult> result = RetrieveImpl(request, deadline);
  if (result.ok()) {
    retrieve_ok_.fetch_add(1, std::memory_order_relaxed);
    items_served_.fetch_add(static_cast<int64_t>(result->items.size()), std::memory_order_relaxed);
  } else {
    retrieve_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  return result;
}

absl::StatusOr<RetrieveResult> RetrievalEngine::RetrieveImpl(const RetrieveRequest& request,
                                                             absl::Time deadline) const {
  if (deadline != absl::InfiniteFuture() && absl::Now() >= deadline) {
    return absl::DeadlineExceededError("retrieve: deadline already passed");
  }
  // Pin one snapshot for the whole request: model, catalog and index always agree.
  const std::shared_ptr<const ModelSnapshot> snap = holder_.Get();
  RETURN_IF_ERROR(ValidateRetrieve(request, *snap, options_));
  // The user tower's input row: the dense context itself for a dense-only model (no copy), else the
  // dense features followed by the categorical slots.
  const TwoTowerModel& model = snap->model();
  std::vector<float> encoded;
  const float* input = request.context.data();
  int64_t input_width = static_cast<int64_t>(request.context.size());
  if (!model.config().context_fields.empty()) {
    ASSIGN_OR_RETURN(encoded, model.EncodeContext(request.context.data(), request.categorical,
                                                  "context.categorical"));
    input = encoded.data();
    input_width = static_cast<int64_t>(encoded.size());
  }
  // For the recall probe of the next index build (never blocks: skipped when contended).
  context_sample_.Record(input, input_width);

  SlateSamplerOptions sampler_options;
  sampler_options.epsilon = options_.epsilon;
  sampler_options.temperature = ServedTemperature(*snap);
  sampler_options.greedy = options_.greedy;
  sampler_options.exploration = options_.slate_exploration;
  ASSIGN_OR_RETURN(const SlateSampler sampler, SlateSampler::Create(sampler_options));

  ASSIGN_OR_RETURN(const std::vector<float> u, model.EmbedContexts(input, 1));
  const int64_t m = std::max(options_.top_m, request.k);
  ASSIGN_OR_RETURN(const std::vector<SearchHit> candidates,
                   snap->index().Search(u.data(), m, request.exclude));
  const uint64_t seed = request.seed.has_value() ? *request.seed : NewSeed();
  ASSIGN_OR_RETURN(Slate slate,
                   sampler.Sample(u.data(), candidates, snap->index(), request.exclude, request.k, seed));

  RetrieveResult result;
  result.request_id = request.request_id.empty() ? NewRequestId() : request.request_id;
  result.model_version = snap->model_version();
  result.num_candidates = slate.num_candidates;
  result.num_eligible = slate.num_eligible;
  result.items = std::move(slate.items);

  if (event_log_ != nullptr) {
    // DESIGN §2 step 4: every served item with the sampler's own propensities. Greedy serving is
    // logged as what it is: propensities 1, epsilon 0, temperature 0. One ServedSlate per request:
    // the request-level fields (ids, K, M, eps, tau, version, context) are stored once, not per item.
    ServedSlate slate;
    slate.request_id = result.request_id;
    slate.k = static_cast<int32_t>(request.k);
    slate.m = static_cast<int32_t>(m);
    slate.epsilon = options_.greedy ? 0.0 : sampler_options.epsilon;
    slate.temperature = options_.greedy ? 0.0 : sampler_options.temperature;
    slate.model_version = result.model_version;
    slate.context = request.context;
    if (!request.categorical.empty()) slate.categorical = CategoricalFeaturesToText(request.categorical);
    slate.time_us = absl::ToUnixMicros(absl::Now());
    slate.items.reserve(result.items.size());
    for (const SlateItem& item : result.items) {
      slate.items.push_back({item.item_id, static_cast<int32_t>(item.position), item.propensity,
                             item.conditional_propensity});
    }
    RETURN_IF_ERROR(event_log_->AppendSlate(std::move(slate), deadline));
  }
  return result;
}

absl::StatusOr<FeedbackResult> RetrievalEngine::Feedback(std::vector<FeedbackEvent> events,
                                                         absl::Time deadline) const {
  absl::StatusOr<FeedbackResult> result = FeedbackImpl(std::move(events), deadline);
  if (result.ok()) {
    feedback_accepted_.fetch_add(result->accepted, std::memory_order_relaxed);
    feedback_duplicate_.fetch_add(result->duplicate, std::memory_order_relaxed);
    feedback_unknown_.fetch_add(result->unknown, std::memory_order_relaxed);
  } else {
    feedback_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  return result;
}

absl::StatusOr<FeedbackResult> RetrievalEngine::FeedbackImpl(std::vector<FeedbackEvent> events,
                                                             absl::Time deadline) const {
  if (events.empty()) return absl::InvalidArgumentError("events: empty (send at least one event)");
  if (static_cast<int64_t>(events.size()) > options_.max_feedback_batch) {
    return absl::InvalidArgumentError(absl::StrCat("events has ", events.size(),
                                                   " events: at most max_feedback_batch=",
                                                   options_.max_feedback_batch));
  }
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].request_id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("events[", i, "].request_id: empty"));
    }
    if (!std::isfinite(events[i].reward)) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].reward=", events[i].reward, ": must be finite"));
    }
    if (!(events[i].reward >= options_.reward_min && events[i].reward <= options_.reward_max)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", i, "].reward=", events[i].reward, ": outside the declared reward range [",
          options_.reward_min, ", ", options_.reward_max, "] (ServerConfig reward_min/reward_max)"));
    }
  }
  if (event_log_ == nullptr) {
    return absl::FailedPreconditionError("feedback: this engine runs without an event log");
  }
  const int64_t time_us = absl::ToUnixMicros(absl::Now());
  for (FeedbackEvent& e : events) {
    if (e.time_us == 0) e.time_us = time_us;
  }
  if (absl::Now() >= deadline) return absl::DeadlineExceededError("feedback: deadline already passed");
  FeedbackResult result;
  ASSIGN_OR_RETURN(result.outcomes, event_log_->AppendFeedback(std::move(events), deadline));
  for (FeedbackOutcome o : result.outcomes) {
    switch (o) {
      case FeedbackOutcome::kAccepted:
        ++result.accepted;
        break;
      case FeedbackOutcome::kDuplicate:
        ++result.duplicate;
        break;
      case FeedbackOutcome::kUnknown:
        ++result.unknown;
        break;
    }
  }
  return result;
}

absl::StatusOr<CatalogChangeResult> RetrievalEngine::UpsertItems(const ItemCatalog& items) {
  const int64_t n = items.size();
  if (n == 0) return absl::InvalidArgumentError("items: empty (send at least one item)");
  if (n > options_.max_upsert_batch) {
    return absl::InvalidArgumentError(absl::StrCat("items has ", n, " items: at most max_upsert_batch=",
                                                   options_.max_upsert_batch));
  }
  if (static_cast<int64_t>(items.features.size()) != n * items.dim_features) {
    return absl::InvalidArgumentError(absl::StrCat("items.features has ", items.features.size(),
                                                   " values: expected ", n, " x ",
                                                   items.dim_features));
  }

  absl::MutexLock lock(&writer_mu_);
  std::shared_ptr<const ModelSnapshot> old = holder_.Get();  // released by Publish*
  const ItemCatalog& cat = old->catalog();
  const int64_t dim = cat.dim_features;
  if (items.dim_features != dim) {
    return absl::InvalidArgumentError(absl::StrCat("items[0].features has ", items.dim_features,
                                                   " values: the catalog has dim_features=", dim));
  }
  absl::flat_hash_set<int64_t> seen;
  seen.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (!seen.insert(items.ids[i]).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("items[", i, "].item_id=", items.ids[i], ": appears twice in the request"));
    }
    RETURN_IF_ERROR(
        CheckFeatures(absl::StrCat("items[", i, "].features"), items.feature(i), dim));
  }
  // Categorical item features in the model's item_fields columns (checked before any work).
  const std::vector<CategoricalField>& schema = old->model().config().item_fields;
  ItemCatalog with_schema;
  const ItemCatalog* upserted = &items;
  if (!items.categorical.empty()) {
    with_schema.dim_features = items.dim_features;
    with_schema.ids = items.ids;
    with_schema.features = items.features;
    ASSIGN_OR_RETURN(with_schema.categorical,
                     ColumnsForSchema(items.categorical, n, schema, "items"));
    upserted = &with_schema;
  }

  // v(a) of the upserted items only; the other rows keep the embeddings the index already holds.
  // An id the model never saw gets the item tower of its features (the id part starts at zero).
  ASSIGN_OR_RETURN(std::vector<float> fresh, RunAtPriority(options_.build_priority, [&] {
                     return old->model().EmbedItems(*upserted);
                   }));
  CatalogChangeResult result;
  ASSIGN_OR_RETURN(ItemCatalog next,
                   CatalogWithUpserts(
                       cat, *upserted, [&](int64_t id) { return old->index().RowOf(id); }, schema,
                       &result.inserted, &result.updated));
  ItemIndex::Changes changes;
  changes.upserted = items.ids;
  changes.upserted_embeddings = std::move(fresh);
  ASSIGN_OR_RETURN(std::shared_ptr<const ModelSnapshot> snapshot,
                   ApplyCatalogChanges(*old, std::move(next), std::move(changes)));
  return Publish(std::move(snapshot), result, std::move(old));
}

absl::StatusOr<CatalogChangeResult> RetrievalEngine::DeleteItems(
    const std::vector<int64_t>& item_ids) {
  const int64_t n = static_cast<int64_t>(item_ids.size());
  if (n == 0) return absl::InvalidArgumentError("item_ids: empty (send at least one id)");
  if (n > options_.max_upsert_batch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "item_ids has ", n, " ids: at most max_upsert_batch=", options_.max_upsert_batch));
  }

  absl::MutexLock lock(&writer_mu_);
  std::shared_ptr<const ModelSnapshot> old = holder_.Get();  // released by Publish*
  const ItemIndex& index = old->index();
  absl::flat_hash_set<int64_t> doomed;
  doomed.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (!index.Contains(item_ids[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("item_ids[", i, "]=", item_ids[i], ": not in the catalog"));
    }
    if (!doomed.insert(item_ids[i]).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("item_ids[", i, "]=", item_ids[i], ": appears twice in the request"));
    }
  }
  const ItemCatalog& cat = old->catalog();
  if (n >= cat.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "item_ids: deleting all ", cat.size(), " items would leave the catalog empty"));
  }
  ItemCatalog next = CatalogWithout(cat, doomed);
  ItemIndex::Changes changes;
  changes.deleted = item_ids;
  ASSIGN_OR_RETURN(std::shared_ptr<const ModelSnapshot> snapshot,
                   ApplyCatalogChanges(*old, std::move(next), std::move(changes)));
  CatalogChangeResult result;
  result.deleted = n;
  return Publish(std::move(snapshot), result, std::move(old));
}

absl::Status RetrievalEngine::ReplaceModel(std::string model_version,
                                           std::shared_ptr<const TwoTowerModel> model) {
  if (model == nullptr) return absl::InvalidArgumentError("model=null");
  absl::MutexLock lock(&writer_mu_);
  std::shared_ptr<const ModelSnapshot> old = holder_.Get();  // released by Publish*
  if (model->config().dim_context != old->dim_context()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.dim_context=", model->config().dim_context,
        ": differs from the served dim_context=", old->dim_context(),
        " (clients send contexts of the served size)"));
  }
  RETURN_IF_ERROR(CheckSameSchema(model->config(), old->model().config()));
  RETURN_IF_ERROR(CheckCatalogSchema(model->config(), old->catalog()));
  const std::vector<float> contexts =
      context_sample_.Recent(ContextInputWidth(old->model().config()));
  ASSIGN_OR_RETURN(std::shared_ptr<const ModelSnapshot> snapshot, RunAtPriority(options_.build_priority, [&] {
                     return ModelSnapshot::Build(std::move(model_version), std::move(model),
                                                 old->catalog(), old->catalog_version(),
                                                 options_.snapshot, old.get(), &contexts);
                   }));
  SlateSamplerOptions sampler;
  sampler.epsilon = options_.epsilon;
  sampler.temperature = ServedTemperature(*snapshot);
  sampler.greedy = options_.greedy;
  sampler.exploration = options_.slate_exploration;
  RETURN_IF_ERROR(SlateSampler::Create(sampler).status());
  PublishAndRetire(std::move(snapshot), std::move(old));
  return absl::OkStatus();
}

absl::Status RetrievalEngine::AdoptCatalog(ItemCatalog catalog, int64_t catalog_version) {
  if (catalog.size() == 0) return absl::InvalidArgumentError("catalog: no items");
  absl::MutexLock lock(&writer_mu_);
  std::shared_ptr<const ModelSnapshot> old = holder_.Get();  // released by PublishAndRetire
  if (old->catalog_version() >= catalog_version) return absl::OkStatus();
  RETURN_IF_ERROR(CheckCatalogSchema(old->model().config(), catalog));
  const std::vector<float> contexts =
      context_sample_.Recent(ContextInputWidth(old->model().config()));
  ASSIGN_OR_RETURN(std::shared_ptr<const ModelSnapshot> snapshot, RunAtPriority(options_.build_priority, [&] {
                     return ModelSnapshot::Build(old->model_version(), old->shared_model(),
                                                 std::move(catalog), catalog_version,
                                                 options_.snapshot, old.get(), &contexts);
                   }));
  PublishAndRetire(std::move(snapshot), std::move(old));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const ModelSnapshot>> RetrievalEngine::ApplyCatalogChanges(
    const ModelSnapshot& old, ItemCatalog next, ItemIndex::Changes changes) {
  const std::vector<float> contexts =
      context_sample_.Recent(ContextInputWidth(old.model().config()));
  return RunAtPriority(options_.build_priority, [&] {
    return ModelSnapshot::WithCatalogChanges(old, std::move(next), old.catalog_version() + 1,
                                             std::move(changes), options_.snapshot, &contexts);
  });
}

absl::StatusOr<CatalogChangeResult> RetrievalEngine::Publish(
    std::shared_ptr<const ModelSnapshot> next, CatalogChangeResult result,
    std::shared_ptr<const ModelSnapshot> old) {
  result.catalog_size = next->catalog().size();
  result.catalog_version = next->catalog_version();
  result.index_type = next->index().type_name();
  result.index_recall_at_10 = next->index().recall_at_10();
  result.build_seconds = next->build_seconds();
  result.index_rebuilt = next->index_rebuilt();
  result.index_delta_items = next->index().delta_size();
  result.index_tombstones = next->index().tombstones();
  if (options_.persist_catalog) {
    // Durable before served: a change that is not saved is neither served nor acknowledged.
    RETURN_IF_ERROR(options_.persist_catalog(next->catalog(), next->catalog_version()));
  }
  (result.index_rebuilt ? index_rebuilds_ : index_incremental_updates_)
      .fetch_add(1, std::memory_order_relaxed);
  PublishAndRetire(std::move(next), std::move(old));
  catalog_changes_.fetch_add(1, std::memory_order_relaxed);
  return result;
}

void RetrievalEngine::PublishAndRetire(std::shared_ptr<const ModelSnapshot> next,
                                       std::shared_ptr<const ModelSnapshot> old) {
  std::shared_ptr<const ModelSnapshot> previous = holder_.Publish(std::move(next));
  old.reset();  // the caller's reference (the same snapshot: writers are serialised)
  // Requests that started before the publish still hold `previous`; the reaper frees it once they
  // let go, on its own thread at build priority, so that neither they nor this writer wait for it.
  reaper_.Retire(std::move(previous));
}

RetrievalEngine::Stats RetrievalEngine::stats() const {
  Stats s;
  s.retrieve_ok = retrieve_ok_.load(std::memory_order_relaxed);
  s.retrieve_errors = retrieve_errors_.load(std::memory_order_relaxed);
  s.items_served = items_served_.load(std::memory_order_relaxed);
  s.feedback_accepted = feedback_accepted_.load(std::memory_order_relaxed);
  s.feedback_duplicate = feedback_duplicate_.load(std::memory_order_relaxed);
  s.feedback_unknown = feedback_unknown_.load(std::memory_order_relaxed);
  s.feedback_errors = feedback_errors_.load(std::memory_order_relaxed);
  s.catalog_changes = catalog_changes_.load(std::memory_order_relaxed);
  s.index_rebuilds = index_rebuilds_.load(std::memory_order_relaxed);
  s.index_incremental_updates = index_incremental_updates_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace optower
