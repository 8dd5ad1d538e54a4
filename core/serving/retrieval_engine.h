// RetrievalEngine: the serving logic of optower-server with no gRPC in it (the server's handlers only
// convert protos, call these methods and convert the status). Also usable in-process, e.g. by a
// benchmark that measures the engine without the RPC layer.
//
// Retrieve (DESIGN §2):
//   validate (categorical features against the model's context_fields too) -> encode x (dense
//   features, then the categorical slots: TwoTowerModel::EncodeContext) -> u = u_theta(x) -> C = index top-M (M = max(top_m, k), exclusions filtered)
//   -> SlateSampler: K draws without replacement, the first from
//        pi_0(a|x) = (1 - eps) softmax_{a in C}(s(x,a) / tau) + eps / N,
//      the later ones as options.slate_exploration says
//   -> EventLog::AppendSlate (request id, K, M, eps, tau, model version, context, categorical
//      features as text, time, and per item:
//      item, position, the sampler's own propensity and conditional propensity) -> result.
// A response is returned only after its served rows were accepted by the event log (queued in group
// commit mode, committed in synchronous mode); if logging fails the request fails. While the log
// cannot write (EventLog::WriteStatus: writes failed or stalled beyond write_failure_window) Retrieve
// and Feedback fail with Unavailable; when its queue is full, with ResourceExhausted (retryable).
// Waits on the log are bounded by the caller's deadline (DeadlineExceeded) and by the log's window.
//
// Catalog changes (UpsertItems/DeleteItems) and model swaps build a new ModelSnapshot off the
// request path, then publish it in one step: Retrieve calls never block on them and keep the
// snapshot they started with. Writers are serialised by a mutex. A catalog change layers the
// changed items over the served index (ModelSnapshot::WithCatalogChanges: no re-embedding of the
// catalog, no k-means) until the layers drift past ItemIndexOptions::delta_max_*; then, and on
// every model swap, the index is rebuilt. Index builds measure recall on the user tower's outputs
// of the most recent request contexts (a ContextSample fed by Retrieve; SeedProbeContexts at
// start-up), topped up with sampled contexts (core/serving/index_probe.h). Once DeleteItems returns, every
// Retrieve that starts afterwards uses a snapshot without the deleted items (a Retrieve already in
// flight may still serve them).
//
// Error messages name the request field as it is called in the API (proto/optower/v1/optower.proto)
// and its value, e.g. "k=0: k must be in [1, 100]".
//
// Thread safety: every method may be called concurrently from any number of threads.
#ifndef OPTOWER_CORE_SERVING_RETRIEVAL_ENGINE_H_
#define OPTOWER_CORE_SERVING_RETRIEVAL_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/base/background_priority.h"
#include "core/base/bandit_data.h"
#include "core/base/categorical.h"
#include "core/storage/event_log.h"
#include "core/serving/context_sample.h"
#include "core/serving/model_snapshot.h"
#include "core/serving/slate_sampler.h"
#include "core/serving/snapshot_holder.h"
#include "core/serving/snapshot_reaper.h"

namespace optower {

struct RetrievalEngineOptions {
  int64_t max_k = 100;  // K limit, >= 1
  int64_t top_m = 100;  // candidates from the index per request (M = max(top_m, k)), >= 1
  double epsilon = 0.1;      // uniform-exploration share, in [0, 1]
  double temperature = 0.0;  // softmax temperature; 0 = the served model's config().temperature
  // Deterministic top-K, logged with propensity 1 (such logs cannot train an off-policy learner).
  bool greedy = false;
  // How exploration acts on positions >= 1 (core/serving/slate_sampler.h, docs/SERVING.md).
  SlateExploration slate_exploration = SlateExploration::kPerPosition;
  int64_t max_exclude = 10000;              // exclude_item_ids per request
  int64_t max_categorical_features = 64;    // context.categorical entries per request
  int64_t max_request_id_bytes = 128;
  int64_t max_feedback_batch = 1000;        // events per Feedback call
  // The declared reward range: a Feedback reward outside [reward_min, reward_max] is rejected.
  // Both within +-kMaxRewardMagnitude (the server's config defaults them to [0, 1]).
  double reward_min = -kMaxRewardMagnitude;
  double reward_max = kMaxRewardMagnitude;
  int64_t max_upsert_batch = 100000;        // items per UpsertItems / DeleteItems call
  ModelSnapshot::Options snapshot;          // index options for rebuilt snapshots
  // OS priority of snapshot builds (ReplaceModel, UpsertItems, DeleteItems) and of freeing replaced
  // snapshots: builds run on a dedicated thread at this priority while the caller waits, replaced
  // snapshots are freed by a reaper thread at this priority (core/serving/snapshot_reaper.h) without
  // anyone waiting, so that a swap only uses CPU that serving leaves idle
  // (core/base/background_priority.h).
  BackgroundPriority build_priority = BackgroundPriority::kIdle;
  // Makes a catalog change durable before it is served and acknowledged (the server saves it to
  // its CatalogStore, core/storage/catalog_store.h): called by UpsertItems/DeleteItems with the new catalog
  // and its catalog_version, under the writer lock, after the build and before the publish. An
  // error fails the call and leaves the served snapshot unchanged. Empty = not persisted.
  std::function<absl::Status(const ItemCatalog& catalog, int64_t catalog_version)> persist_catalog;

  // InvalidArgument naming the first field out of range and its value ("top_m=0: must be >= 1").
  // Checks this struct's own fields; snapshot.index is checked by the index build.
  absl::Status Validate() const;
};

struct RetrieveRequest {
  std::string request_id;  // empty = generate one (32 hex characters)
  std::vector<float> context;  // [dim_context] dense features
  // Categorical context features (core/base/categorical.h), checked against the served model's
  // context_fields, encoded into the user tower's input and logged with the request.
  std::vector<CategoricalFeature> categorical;
  int64_t k = 0;
  std::vector<int64_t> exclude;  // ids never to serve; ids not in the catalog are ignored
  std::optional<uint64_t> seed;  // absent = a fresh random seed
};

struct RetrieveResult {
  std::string request_id;
  std::string model_version;
  // [k], position order; propensity = logged pi_0(a|x), conditional_propensity = logged p_j(a_j)
  std::vector<SlateItem> items;
  int64_t num_candidates = 0;    // |C \ E|
  int64_t num_eligible = 0;      // N = |catalog \ E|
};

struct FeedbackResult {
  int64_t accepted = 0;
  int64_t duplicate = 0;
  int64_t unknown = 0;
  std::vector<FeedbackOutcome> outcomes;  // one per event, in order
};

struct CatalogChangeResult {
  int64_t inserted = 0;
  int64_t updated = 0;
  int64_t deleted = 0;
  int64_t catalog_size = 0;
  int64_t catalog_version = 0;
  std::string index_type;
  double index_recall_at_10 = 1.0;
  double build_seconds = 0;
  bool index_rebuilt = false;      // false: the change was layered over the served index
  int64_t index_delta_items = 0;   // the new index's layers (ItemIndex::delta_size/tombstones)
  int64_t index_tombstones = 0;
};

class RetrievalEngine {
 public:
  // `initial`: the first snapshot to serve (non-null). `event_log`: not owned, must outlive the engine;
  // null serves without logging (for benchmarks) and makes Feedback fail with FailedPrecondition.
  // InvalidArgument for bad options (naming the option).
  static absl::StatusOr<std::unique_ptr<RetrievalEngine>> Create(
      const RetrievalEngineOptions& options, std::shared_ptr<const ModelSnapshot> initial,
      EventLog* event_log);

  RetrievalEngine(const RetrievalEngine&) = delete;
  RetrievalEngine& operator=(const RetrievalEngine&) = delete;

  // InvalidArgument: request_id too long; context.dense of the wrong size or not finite; more than
  // max_categorical_features categorical features, or one outside the served model's context schema
  // (unknown or repeated name, more ids than its max_ids; a dense-only model has no fields, so any
  // categorical feature is refused); k outside [1, max_k] or above the eligible
  // catalog; too many exclusions. AlreadyExists (synchronous logging) for a reused request_id;
  // ResourceExhausted when the event log's queue is full; Unavailable while the log cannot write.
  // Blocks on the tower forward, the index search and (synchronous durability) the log commit, the
  // latter at most until `deadline` (the RPC's; DeadlineExceeded, also when it passed on entry).
  absl::StatusOr<RetrieveResult> Retrieve(const RetrieveRequest& request,
                                          absl::Time deadline = absl::InfiniteFuture()) const;

  // Records rewards. InvalidArgument: no events, more than max_feedback_batch, an empty request_id or
  // a non-finite reward (nothing is recorded then). Blocks until the log decided every outcome, at
  // most until `deadline` (DeadlineExceeded) or the log's write_failure_window (Unavailable); the
  // outcomes are then unknown and sending the events again is safe (first write wins).
  absl::StatusOr<FeedbackResult> Feedback(std::vector<FeedbackEvent> events,
                                          absl::Time deadline = absl::InfiniteFuture()) const;

  // Adds new items and replaces the features of existing ones (matched by id); embeddings of the
  // upserted items come from the served model's item tower, the others are reused. items.categorical
  // (any subset of the model's item_fields, in any order; may be empty) replaces an item's categorical
  // features; the catalog keeps them in the model's item_fields order. InvalidArgument:
  // no items, more than max_upsert_batch, a wrong feature dimension, non-finite features, an id twice,
  // a categorical field outside the model's item schema or with more ids than its max_ids.
  // Blocks for the index build; serialised with other catalog changes.
  absl::StatusOr<CatalogChangeResult> UpsertItems(const ItemCatalog& items);

  // Removes items. InvalidArgument: no ids, more than max_upsert_batch, an id not in the catalog, an
  // id twice, or deleting every item. Blocks for the index build; serialised with other changes.
  absl::StatusOr<CatalogChangeResult> DeleteItems(const std::vector<int64_t>& item_ids);

  // Serves `model` (re-embedding the current catalog) from now on, under `model_version`. For the
  // trainer's swap and rollback. Serialised with catalog changes. InvalidArgument (nothing changes)
  // when the model's dim_context, context_fields or item_fields differ from the served model's:
  // clients send contexts of the served schema, and the catalog holds items of it.
  absl::Status ReplaceModel(std::string model_version, std::shared_ptr<const TwoTowerModel> model);

  // Serves `catalog` as catalog version `catalog_version`: a serving replica adopting the shared
  // catalog that another process (the trainer) changed and saved (docs/SCALING.md). The served
  // model re-embeds it and the index is rebuilt; persist_catalog is not called (the catalog is
  // already stored). A no-op (OK) when the served catalog_version is already >= catalog_version.
  // InvalidArgument (nothing changes) for an empty catalog or one that does not fit the served
  // model's item schema. Blocks for the index build; serialised with other snapshot writers.
  absl::Status AdoptCatalog(ItemCatalog catalog, int64_t catalog_version);

  // The snapshot a Retrieve starting now would use.
  std::shared_ptr<const ModelSnapshot> snapshot() const { return holder_.Get(); }
  const RetrievalEngineOptions& options() const { return options_; }
  // The temperature that `snapshot` is served with (options().temperature or the model's).
  double ServedTemperature(const ModelSnapshot& snapshot) const;
  EventLog* event_log() const { return event_log_; }
  // Adds logged request contexts, ENCODED ([n, dim] row-major, dim = ContextInputWidth of the served
  // model, oldest first; e.g. RecentLoggedContexts at start-up) to the sample the next index build
  // probes with.
  void SeedProbeContexts(const std::vector<float>& contexts, int64_t dim);

  // Counters since Create.
  struct Stats {
    int64_t retrieve_ok = 0;
    int64_t retrieve_errors = 0;  // failed Retrieve calls, invalid arguments included
    int64_t items_served = 0;
    int64_t feedback_accepted = 0;
    int64_t feedback_duplicate = 0;
    int64_t feedback_unknown = 0;
    int64_t feedback_errors = 0;  // failed Feedback calls
    int64_t catalog_changes = 0;
    int64_t index_rebuilds = 0;             // catalog changes that rebuilt the index (drift)
    int64_t index_incremental_updates = 0;  // catalog changes layered over the served index
  };
  Stats stats() const;

 private:
  RetrievalEngine(const RetrievalEngineOptions& options,
                  std::shared_ptr<const ModelSnapshot> initial, EventLog* event_log);
  absl::StatusOr<RetrieveResult> RetrieveImpl(const RetrieveRequest& request,
                                              absl::Time deadline) const;
  absl::StatusOr<FeedbackResult> FeedbackImpl(std::vector<FeedbackEvent> events,
                                              absl::Time deadline) const;
  // `old`: the caller's reference to the snapshot being replaced, released before the wait below.
  absl::StatusOr<CatalogChangeResult> Publish(std::shared_ptr<const ModelSnapshot> next,
                                              CatalogChangeResult result,
                                              std::shared_ptr<const ModelSnapshot> old)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // The snapshot after a catalog change of `old` (incremental or, after drift, rebuilt), built at
  // build priority.
  absl::StatusOr<std::shared_ptr<const ModelSnapshot>> ApplyCatalogChanges(
      const ModelSnapshot& old, ItemCatalog next, ItemIndex::Changes changes);
  // Publishes `next` and hands the replaced snapshot to reaper_ (no waiting).
  void PublishAndRetire(std::shared_ptr<const ModelSnapshot> next,
                        std::shared_ptr<const ModelSnapshot> old)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);

  const RetrievalEngineOptions options_;
  EventLog* const event_log_;
  SnapshotHolder holder_;
  SnapshotReaper reaper_;  // frees replaced snapshots; declared after holder_, destroyed before it
  absl::Mutex writer_mu_;  // serialises snapshot writers (catalog changes, model swaps)
  // Recent request contexts, encoded (rows of ContextInputWidth), for the index's recall probe.
  mutable ContextSample context_sample_;

  mutable std::atomic<int64_t> retrieve_ok_{0};
  mutable std::atomic<int64_t> retrieve_errors_{0};
  mutable std::atomic<int64_t> items_served_{0};
  mutable std::atomic<int64_t> feedback_accepted_{0};
  mutable std::atomic<int64_t> feedback_duplicate_{0};
  mutable std::atomic<int64_t> feedback_unknown_{0};
  mutable std::atomic<int64_t> feedback_errors_{0};
  std::atomic<int64_t> catalog_changes_{0};
  std::atomic<int64_t> index_rebuilds_{0};
  std::atomic<int64_t> index_incremental_updates_{0};
};

}  // namespace optower

#endif  // OPTOWER_CORE_SERVING_RETRIEVAL_ENGINE_H_
