// ServerConfig -> core options (declared in server/server_config.h). Each function starts from a
// default-constructed core Options struct, which holds the defaults, and copies only the fields the
// config sets: a proto3 `optional` field when present, a plain field when it is not zero/empty
// (zero means "the default" in ServerConfig). Where the server's default differs from core's on
// purpose, the constant is in server_config.h (kDefaultRewardMin/Max, kDefaultTrainerThreads).
// Works the same on a config before or after ApplyServerConfigDefaults.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "server/server_config.h"

namespace optower::server {
namespace {

template <typename T, typename V>
void SetIfNonZero(T* field, V value) {
  if (value != V{}) *field = static_cast<T>(value);
}

std::vector<CategoricalField> FieldsFromSpecs(
    const google::protobuf::RepeatedPtrField<v1::CategoricalFieldSpec>& specs) {
  std::vector<CategoricalField> out;
  out.reserve(static_cast<size_t>(specs.size()));
  for (const v1::CategoricalFieldSpec& spec : specs) {
    CategoricalField f;
    f.name = spec.name();
    SetIfNonZero(&f.buckets, spec.buckets());
    SetIfNonZero(&f.width, spec.width());
    SetIfNonZero(&f.max_ids, spec.max_ids());
    out.push_back(std::move(f));
  }
  return out;
}

absl::Duration Ms(double ms) { return absl::Microseconds(std::llround(ms * 1000)); }

ItemIndexOptions::Type IndexType(v1::IndexConfig::Type type) {
  switch (type) {
    case v1::IndexConfig::EXACT: return ItemIndexOptions::Type::kExact;
    case v1::IndexConfig::IVF: return ItemIndexOptions::Type::kIvf;
    case v1::IndexConfig::HNSW: return ItemIndexOptions::Type::kHnsw;
    default: return ItemIndexOptions::Type::kAuto;
  }
}

Objective TrainerObjective(v1::TrainerConfig::Objective objective) {
  switch (objective) {
    case v1::TrainerConfig::IPW: return Objective::kIpw;
    case v1::TrainerConfig::DM: return Objective::kDm;
    default: return Objective::kDr;
  }
}

// config.trainer's learner knobs onto o->learner; q̂ gets the policy's architecture (DR and DM start
// the policy from q̂'s towers), batch size and threads.
void MapLearner(const v1::TrainerConfig& t, TrainerOptions* o) {
  PolicyLearnerOptions& l = o->learner;
  l.objective = TrainerObjective(t.objective());
  o->slate_learning = t.slate_learning() == v1::TrainerConfig::TOP_K_CORRECTION
                          ? SlateLearning::kTopKCorrection
                          : SlateLearning::kPerDraw;
  if (t.hidden_size() > 0) l.hidden.assign(t.hidden().begin(), t.hidden().end());
  SetIfNonZero(&l.embedding_dim, t.embedding_dim());
  SetIfNonZero(&l.temperature, t.temperature());
  SetIfNonZero(&l.epochs, t.epochs());
  SetIfNonZero(&l.batch_size, t.batch_size());
  SetIfNonZero(&l.learning_rate, t.learning_rate());
  SetIfNonZero(&l.patience, t.patience());
  switch (t.gradient()) {
    case v1::TrainerConfig::GRADIENT_EXACT: l.sampled.mode = GradientMode::kExact; break;
    case v1::TrainerConfig::GRADIENT_SAMPLED: l.sampled.mode = GradientMode::kSampled; break;
    default: l.sampled.mode = GradientMode::kAuto; break;
  }
  SetIfNonZero(&l.sampled.auto_min_items, t.sampled_auto_min_items());
  SetIfNonZero(&l.sampled.head_items, t.sampled_head_items());
  SetIfNonZero(&l.sampled.tail_items, t.sampled_tail_items());
  l.seed = t.seed();
  l.threads = t.threads() != 0 ? t.threads() : kDefaultTrainerThreads;
  SetIfNonZero(&l.reward_model.epochs, t.reward_model_epochs());
  l.reward_model.hidden = l.hidden;
  l.reward_model.embedding_dim = l.embedding_dim;
  l.reward_model.batch_size = l.batch_size;
  l.reward_model.threads = l.threads;
}

}  // namespace

std::vector<CategoricalField> InitContextFieldsFromConfig(const v1::ServerConfig& config) {
  return FieldsFromSpecs(config.init_context_fields());
}

std::vector<CategoricalField> InitItemFieldsFromConfig(const v1::ServerConfig& config) {
  return FieldsFromSpecs(config.init_item_fields());
}

double RewardMinFromConfig(const v1::ServerConfig& c) {
  return c.has_reward_min() ? c.reward_min() : kDefaultRewardMin;
}

double RewardMaxFromConfig(const v1::ServerConfig& c) {
  return c.has_reward_max() ? c.reward_max() : kDefaultRewardMax;
}

ItemIndexOptions IndexOptionsFromConfig(const v1::ServerConfig& c) {
  const v1::IndexConfig& ix = c.index();
  ItemIndexOptions o;
  o.type = IndexType(ix.type());
  SetIfNonZero(&o.exact_max_items, ix.exact_max_items());
  SetIfNonZero(&o.min_recall_at_10, ix.min_recall_at_10());
  SetIfNonZero(&o.ivf_nlist, ix.ivf_nlist());
  SetIfNonZero(&o.ivf_nprobe, ix.ivf_nprobe());
  SetIfNonZero(&o.hnsw_m, ix.hnsw_m());
  SetIfNonZero(&o.hnsw_ef_construction, ix.hnsw_ef_construction());
  SetIfNonZero(&o.hnsw_ef_search, ix.hnsw_ef_search());
  SetIfNonZero(&o.threads, ix.build_threads());
  if (ix.ivf_cold_rebuild()) o.ivf_warm_start = false;
  SetIfNonZero(&o.ivf_max_nprobe, ix.ivf_max_nprobe());
  SetIfNonZero(&o.hnsw_max_ef_search, ix.hnsw_max_ef_search());
  SetIfNonZero(&o.recall_queries, ix.recall_queries());
  SetIfNonZero(&o.delta_max_items, ix.delta_max_items());
  if (ix.has_delta_max_fraction()) o.delta_max_fraction = ix.delta_max_fraction();
  return o;
}

// Validated by ValidateServerConfig; empty = the engine's default (idle).
BackgroundPriority BackgroundPriorityFromConfig(const v1::ServerConfig& c) {
  const BackgroundPriority fallback = RetrievalEngineOptions{}.build_priority;
  if (c.background_priority().empty()) return fallback;
  absl::StatusOr<BackgroundPriority> p = ParseBackgroundPriority(c.background_priority());
  return p.ok() ? *p : fallback;
}

RetrievalEngineOptions EngineOptionsFromConfig(const v1::ServerConfig& c) {
  RetrievalEngineOptions o;
  SetIfNonZero(&o.max_k, c.max_k());
  SetIfNonZero(&o.top_m, c.top_m());
  if (c.has_epsilon()) o.epsilon = c.epsilon();
  o.temperature = c.temperature();
  o.greedy = c.greedy();
  // Validated by ValidateServerConfig; empty = the engine's default (per_position).
  if (absl::StatusOr<SlateExploration> mode = ParseSlateExploration(c.slate_exploration());
      mode.ok()) {
    o.slate_exploration = *mode;
  }
  SetIfNonZero(&o.max_exclude, c.max_exclude());
  SetIfNonZero(&o.max_categorical_features, c.max_categorical_features());
  SetIfNonZero(&o.max_feedback_batch, c.max_feedback_batch());
  SetIfNonZero(&o.max_upsert_batch, c.max_upsert_batch());
  o.reward_min = RewardMinFromConfig(c);
  o.reward_max = RewardMaxFromConfig(c);
  o.snapshot.index = IndexOptionsFromConfig(c);
  o.build_priority = BackgroundPriorityFromConfig(c);
  return o;
}

std::string EventLogPath(const v1::ServerConfig& c) {
  // Never the DSN (it may hold a password): where it comes from.
  if (c.postgres().enabled()) {
    return c.postgres().dsn_file().empty() ? "postgres ($OPTOWER_PG_DSN)"
                                           : "postgres (" + c.postgres().dsn_file() + ")";
  }
  return c.data_dir() + "/events.sqlite";
}

ModelStore::Options ModelStoreOptionsFromConfig(const v1::ServerConfig& c) {
  const v1::TrainerConfig& t = c.trainer();
  ModelStore::Options o;
  SetIfNonZero(&o.keep_promoted, t.keep_promoted_versions());
  if (t.has_keep_rejected_versions()) o.keep_rejected = t.keep_rejected_versions();
  SetIfNonZero(&o.list_limit, t.list_models_limit());
  return o;
}

TrainerOptions TrainerOptionsFromConfig(const v1::ServerConfig& c) {
  const v1::TrainerConfig& t = c.trainer();
  TrainerOptions o;
  o.priority = BackgroundPriorityFromConfig(c);
  MapLearner(t, &o);
  if (t.has_warm_start_from_served()) o.warm_start_from_served = t.warm_start_from_served();
  if (t.has_attribution_window_seconds()) {
    o.snapshot.attribution_window = absl::Seconds(t.attribution_window_seconds());
  }
  o.snapshot.default_reward = t.default_reward();
  o.snapshot.reward_min = RewardMinFromConfig(c);
  o.snapshot.reward_max = RewardMaxFromConfig(c);
  SetIfNonZero(&o.min_events, t.min_events());
  SetIfNonZero(&o.max_events, t.max_events());
  if (t.has_holdout_fraction()) o.holdout_fraction = t.holdout_fraction();
  SetIfNonZero(&o.min_holdout, t.min_holdout());
  SetIfNonZero(&o.gate.confidence, t.confidence());
  o.gate.tolerance = t.promotion_tolerance();
  o.gate.weight_clip = t.gate_weight_clip();
  o.auto_every_feedback = t.auto_retrain_every_feedback();
  o.auto_every = absl::Seconds(t.auto_retrain_every_minutes() * 60);
  SetIfNonZero(&o.max_jobs_kept, t.max_jobs_kept());
  return o;
}

ServerTlsOptions TlsOptionsFromConfig(const v1::ServerConfig& c) {
  ServerTlsOptions o;
  o.cert_path = c.tls_cert();
  o.key_path = c.tls_key();
  o.client_ca_path = c.tls_client_ca();
  o.require_client_cert = c.tls_require_client_cert();
  return o;
}

EventLogOptions EventLogOptionsFromConfig(const v1::ServerConfig& c) {
  const v1::EventLogConfig& log = c.event_log();
  EventLogOptions o;
  o.path = EventLogPath(c);
  if (log.durability() == v1::EventLogConfig::SYNC) {
    o.durability = EventLogOptions::Durability::kSynchronous;
  }
  if (log.has_max_commit_delay_ms()) o.max_commit_delay = Ms(log.max_commit_delay_ms());
  SetIfNonZero(&o.max_batch_events, log.max_batch_events());
  SetIfNonZero(&o.max_queue_events, log.max_queue_events());
  SetIfNonZero(&o.max_queue_bytes, log.max_queue_bytes());
  if (log.has_write_failure_window_ms()) o.write_failure_window = Ms(log.write_failure_window_ms());
  if (log.has_writer_stall_timeout_ms()) o.writer_stall_timeout = Ms(log.writer_stall_timeout_ms());
  return o;
}

}  // namespace optower::server
