#include "server/server_config.h"
#include "server/server_role.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/base/background_priority.h"
#include "core/base/status_macros.h"

namespace optower::server {
namespace {

// Collects the parser's errors as "name:line:column: message" (protobuf's lines are 0-based).
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  explicit ErrorCollector(std::string name) : name_(std::move(name)) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors_.push_back(absl::StrCat(name_, ":", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {}
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string name_;
  std::vector<std::string> errors_;
};

// Upper bound of every millisecond duration in the config: one hour.
constexpr double kMaxDurationMs = 3600e3;

template <typename T>
void Default(T* field, T value) {
  if (*field == T{}) *field = value;
}

template <typename V>
absl::Status Bad(const std::string& field, V value, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, "=", value, ": ", why));
}

// A core Options::Validate error ("field=value: why", "field[i]=value: why") with the field named
// as in the config: `renames` maps core field names to config names (the rest keep theirs), then
// `prefix` ("index.", "trainer.") goes in front.
absl::Status ConfigNames(const absl::Status& s, const std::string& prefix,
                         const std::map<std::string, std::string>& renames) {
  if (s.ok()) return s;
  const std::string message(s.message());
  const size_t name_end = std::min(message.find('='), message.find('['));
  if (name_end == std::string::npos) return absl::Status(s.code(), prefix + message);
  std::string name = message.substr(0, name_end);
  if (auto it = renames.find(name); it != renames.end()) name = it->second;
  return absl::Status(s.code(), absl::StrCat(prefix, name, message.substr(name_end)));
}

// Core TrainerOptions field -> ServerConfig.trainer field, where the names differ.
const std::map<std::string, std::string>& TrainerRenames() {
  static const auto* renames = new std::map<std::string, std::string>{
      {"snapshot.default_reward", "default_reward"},
      {"snapshot.attribution_window", "attribution_window_seconds"},
      {"gate.confidence", "confidence"},
      {"gate.tolerance", "promotion_tolerance"},
      {"gate.weight_clip", "gate_weight_clip"},
      {"auto_every_feedback", "auto_retrain_every_feedback"},
      {"auto_every", "auto_retrain_every_minutes"},
      {"learner.hidden", "hidden"},
      {"learner.embedding_dim", "embedding_dim"},
      {"learner.temperature", "temperature"},
      {"learner.epochs", "epochs"},
      {"learner.batch_size", "batch_size"},
      {"learner.learning_rate", "learning_rate"},
      {"learner.patience", "patience"},
      {"learner.threads", "threads"},
      {"learner.reward_model.epochs", "reward_model_epochs"},
      {"learner.sampled.auto_min_items", "sampled_auto_min_items"},
      {"learner.sampled.head_items", "sampled_head_items"},
      {"learner.sampled.tail_items", "sampled_tail_items"},
  };
  return *renames;
}

// The fields that say what to serve and where.
absl::Status ValidateServerFields(const v1::ServerConfig& c) {
  if (c.host().empty()) return absl::InvalidArgumentError("host: empty");
  if (c.port() < 0 || c.port() > 65535) return Bad("port", c.port(), "must be in [0, 65535]");
  if (c.data_dir().empty()) {
    return absl::InvalidArgumentError("data_dir: required (the event log lives there)");
  }
  // With postgres the shared catalog is served; items_path only seeds it (server/start_checks.cc).
  if (c.model_dir().empty() && c.items_path().empty() && !c.postgres().enabled()) {
    return absl::InvalidArgumentError(
        "items_path: required when no model_dir is given (the catalog to serve)");
  }
  if (c.model_dir().empty() && c.dim_context() < 1) {
    return Bad("dim_context", c.dim_context(),
               "must be >= 1 when no model_dir is given (random towers need the context size)");
  }
  if (c.dim_context() < 0) return Bad("dim_context", c.dim_context(), "must be >= 0");
  for (int i = 0; i < c.init_hidden_size(); ++i) {
    if (c.init_hidden(i) < 1) {
      return Bad(absl::StrCat("init_hidden[", i, "]"), c.init_hidden(i), "must be >= 1");
    }
  }
  if (c.init_embedding_dim() < 1) {
    return Bad("init_embedding_dim", c.init_embedding_dim(), "must be >= 1");
  }
  RETURN_IF_ERROR(ValidateCategoricalFields(InitContextFieldsFromConfig(c), "init_context_fields"));
  RETURN_IF_ERROR(ValidateCategoricalFields(InitItemFieldsFromConfig(c), "init_item_fields"));
  if (c.intra_op_threads() < 1) return Bad("intra_op_threads", c.intra_op_threads(), "must be >= 1");
  if (!c.background_priority().empty()) {
    RETURN_IF_ERROR(ParseBackgroundPriority(c.background_priority()).status());
  }
  if (!c.slate_exploration().empty()) {
    RETURN_IF_ERROR(ParseSlateExploration(c.slate_exploration()).status());
  }
  if (c.metrics_host().empty()) return absl::InvalidArgumentError("metrics_host: empty");
  if (c.metrics_port() < -1 || c.metrics_port() > 65535) {
    return Bad("metrics_port", c.metrics_port(),
               "must be in [0, 65535] (0 = off) or -1 (any free port)");
  }
  if (c.metrics_port() > 0 && c.metrics_port() == c.port()) {
    return Bad("metrics_port", c.metrics_port(),
               "equals port: the metrics need a port of their own");
  }
  return absl::OkStatus();
}

// gRPC's message sizes, the per-RPC byte limits, the queues and the shutdown durations.
absl::Status ValidateServerLimits(const v1::ServerConfig& c) {
  if (c.max_receive_message_bytes() < 1024) {
    return Bad("max_receive_message_bytes", c.max_receive_message_bytes(), "must be >= 1024");
  }
  if (c.max_send_message_bytes() < 1024) {
    return Bad("max_send_message_bytes", c.max_send_message_bytes(), "must be >= 1024");
  }
  // Durations: finite and bounded (an hour), so that a typo cannot make a shutdown wait forever.
  if (!(c.shutdown_deadline_ms() > 0 && c.shutdown_deadline_ms() <= kMaxDurationMs)) {
    return Bad("shutdown_deadline_ms", c.shutdown_deadline_ms(), "must be in (0, 3600000]");
  }
  if (!(c.shutdown_health_grace_ms() >= 0 && c.shutdown_health_grace_ms() <= kMaxDurationMs)) {
    return Bad("shutdown_health_grace_ms", c.shutdown_health_grace_ms(), "must be in [0, 3600000]");
  }
  using Limit = std::pair<const char*, int32_t>;
  for (const auto& [field, value] : {Limit{"max_retrieve_bytes", c.max_retrieve_bytes()},
                                      Limit{"max_feedback_bytes", c.max_feedback_bytes()},
                                      Limit{"max_admin_bytes", c.max_admin_bytes()}}) {
    if (value < 1024 || value > c.max_receive_message_bytes()) {
      return Bad(field, value,
                 absl::StrCat("must be in [1024, max_receive_message_bytes=",
                              c.max_receive_message_bytes(), "]"));
    }
  }
  if (c.max_watchers() < 1) return Bad("max_watchers", c.max_watchers(), "must be >= 1");
  if (c.max_admin_queue() < 1) return Bad("max_admin_queue", c.max_admin_queue(), "must be >= 1");
  return absl::OkStatus();
}

// The config's durations are doubles in ms: checked finite and bounded here, before they are
// converted to absl::Duration (core then checks the Duration's own range).
absl::Status ValidateEventLogDurations(const v1::EventLogConfig& log) {
  if (!(log.max_commit_delay_ms() >= 0 && log.max_commit_delay_ms() <= kMaxDurationMs)) {
    return Bad("event_log.max_commit_delay_ms", log.max_commit_delay_ms(),
               "must be in [0, 3600000]");
  }
  if (log.has_write_failure_window_ms() &&
      !(log.write_failure_window_ms() > 0 && log.write_failure_window_ms() <= 86400e3)) {
    return Bad("event_log.write_failure_window_ms", log.write_failure_window_ms(),
               "must be in (0, 86400000]");
  }
  if (log.has_writer_stall_timeout_ms() &&
      !(log.writer_stall_timeout_ms() > 0 && log.writer_stall_timeout_ms() <= 86400e3)) {
    return Bad("event_log.writer_stall_timeout_ms", log.writer_stall_timeout_ms(),
               "must be in (0, 86400000]");
  }
  return absl::OkStatus();
}

// config.trainer: its durations (seconds, minutes) here, the rest by TrainerOptions::Validate and
// ModelStore::Options::Validate on the mapped options.
absl::Status ValidateTrainerFields(const v1::ServerConfig& c) {
  const v1::TrainerConfig& t = c.trainer();
  // Durations are bounded as well as finite: a year of seconds / minutes.
  constexpr double kYearSeconds = 365.0 * 24 * 3600;
  if (!(t.attribution_window_seconds() >= 0 && t.attribution_window_seconds() <= kYearSeconds)) {
    return Bad("trainer.attribution_window_seconds", t.attribution_window_seconds(),
               "must be in [0, 31536000] (a year)");
  }
  if (!(t.auto_retrain_every_minutes() >= 0 && t.auto_retrain_every_minutes() <= kYearSeconds / 60)) {
    return Bad("trainer.auto_retrain_every_minutes", t.auto_retrain_every_minutes(),
               "must be in [0, 525600] (0 = off; at most a year)");
  }
  RETURN_IF_ERROR(ConfigNames(TrainerOptionsFromConfig(c).Validate(), "trainer.", TrainerRenames()));
  return ConfigNames(ModelStoreOptionsFromConfig(c).Validate(), "trainer.", {});
}

void ApplyIndexDefaults(const ItemIndexOptions& d, v1::IndexConfig* ix) {
  if (ix->exact_max_items() == 0) ix->set_exact_max_items(d.exact_max_items);
  if (ix->min_recall_at_10() == 0) ix->set_min_recall_at_10(d.min_recall_at_10);
  if (ix->ivf_nprobe() == 0) ix->set_ivf_nprobe(d.ivf_nprobe);
  if (ix->hnsw_m() == 0) ix->set_hnsw_m(d.hnsw_m);
  if (ix->hnsw_ef_construction() == 0) ix->set_hnsw_ef_construction(d.hnsw_ef_construction);
  if (ix->hnsw_ef_search() == 0) ix->set_hnsw_ef_search(d.hnsw_ef_search);
  if (ix->ivf_max_nprobe() == 0) ix->set_ivf_max_nprobe(d.ivf_max_nprobe);
  if (ix->hnsw_max_ef_search() == 0) ix->set_hnsw_max_ef_search(d.hnsw_max_ef_search);
  if (ix->recall_queries() == 0) ix->set_recall_queries(d.recall_queries);
  if (ix->delta_max_items() == 0) ix->set_delta_max_items(d.delta_max_items);
  if (!ix->has_delta_max_fraction()) ix->set_delta_max_fraction(d.delta_max_fraction);
}

void ApplyEventLogDefaults(const EventLogOptions& d, v1::EventLogConfig* log) {
  if (!log->has_max_commit_delay_ms()) {
    log->set_max_commit_delay_ms(absl::ToDoubleMilliseconds(d.max_commit_delay));
  }
  if (log->max_batch_events() == 0) log->set_max_batch_events(d.max_batch_events);
  if (log->max_queue_events() == 0) log->set_max_queue_events(d.max_queue_events);
  if (log->max_queue_bytes() == 0) log->set_max_queue_bytes(d.max_queue_bytes);
  if (!log->has_write_failure_window_ms()) {
    log->set_write_failure_window_ms(absl::ToDoubleMilliseconds(d.write_failure_window));
  }
  if (!log->has_writer_stall_timeout_ms()) {
    log->set_writer_stall_timeout_ms(absl::ToDoubleMilliseconds(d.writer_stall_timeout));
  }
}

void ApplyTrainerDefaults(const TrainerOptions& d, const ModelStore::Options& store,
                          v1::TrainerConfig* t) {
  if (!t->has_attribution_window_seconds()) {
    t->set_attribution_window_seconds(absl::ToDoubleSeconds(d.snapshot.attribution_window));
  }
  if (t->min_events() == 0) t->set_min_events(d.min_events);
  if (!t->has_holdout_fraction()) t->set_holdout_fraction(d.holdout_fraction);
  if (t->min_holdout() == 0) t->set_min_holdout(d.min_holdout);
  if (t->confidence() == 0) t->set_confidence(d.gate.confidence);
  if (t->epochs() == 0) t->set_epochs(d.learner.epochs);
  if (t->learning_rate() == 0) t->set_learning_rate(d.learner.learning_rate);
  if (t->temperature() == 0) t->set_temperature(d.learner.temperature);
  if (t->hidden_size() == 0) {
    for (int64_t width : d.learner.hidden) t->add_hidden(static_cast<int32_t>(width));
  }
  if (t->embedding_dim() == 0) t->set_embedding_dim(d.learner.embedding_dim);
  if (t->threads() == 0) t->set_threads(d.learner.threads);
  if (t->batch_size() == 0) t->set_batch_size(d.learner.batch_size);
  if (t->patience() == 0) t->set_patience(d.learner.patience);
  if (t->reward_model_epochs() == 0) t->set_reward_model_epochs(d.learner.reward_model.epochs);
  if (t->sampled_auto_min_items() == 0)
    t->set_sampled_auto_min_items(d.learner.sampled.auto_min_items);
  if (t->sampled_head_items() == 0) t->set_sampled_head_items(d.learner.sampled.head_items);
  if (t->sampled_tail_items() == 0) t->set_sampled_tail_items(d.learner.sampled.tail_items);
  if (!t->has_warm_start_from_served()) t->set_warm_start_from_served(d.warm_start_from_served);
  if (t->max_jobs_kept() == 0) t->set_max_jobs_kept(d.max_jobs_kept);
  if (t->max_events() == 0) t->set_max_events(d.max_events);
  if (t->keep_promoted_versions() == 0) t->set_keep_promoted_versions(store.keep_promoted);
  if (!t->has_keep_rejected_versions()) t->set_keep_rejected_versions(store.keep_rejected);
  if (t->list_models_limit() == 0) t->set_list_models_limit(store.list_limit);
}

}  // namespace

absl::StatusOr<v1::ServerConfig> ParseServerConfig(const std::string& text,
                                                   const std::string& name) {
  v1::ServerConfig config;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors(name);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(errors.errors().empty()
                                          ? absl::StrCat(name, ": not a text-format ServerConfig")
                                          : errors.errors().front());
  }
  return config;
}

absl::StatusOr<v1::ServerConfig> LoadServerConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the config file"));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return ParseServerConfig(ss.str(), path);
}

void ApplyServerConfigDefaults(v1::ServerConfig* c) {
  // Server-only fields: their defaults live here (and in server_config.h for those flags name).
  Default<std::string>(c->mutable_host(), kDefaultHost);
  if (!c->has_port()) c->set_port(kDefaultPort);
  if (c->max_receive_message_bytes() == 0) c->set_max_receive_message_bytes(64 << 20);
  if (c->max_send_message_bytes() == 0) c->set_max_send_message_bytes(16 << 20);
  if (c->shutdown_deadline_ms() == 0) c->set_shutdown_deadline_ms(kDefaultShutdownDeadlineMs);
  if (c->intra_op_threads() == 0) c->set_intra_op_threads(1);
  if (c->init_hidden_size() == 0) c->add_init_hidden(64);
  if (c->init_embedding_dim() == 0) c->set_init_embedding_dim(32);
  if (c->max_retrieve_bytes() == 0) c->set_max_retrieve_bytes(64 << 10);
  if (c->max_feedback_bytes() == 0) c->set_max_feedback_bytes(1 << 20);
  if (c->max_admin_bytes() == 0) c->set_max_admin_bytes(64 << 10);
  if (c->max_watchers() == 0) c->set_max_watchers(16);
  if (c->max_admin_queue() == 0) c->set_max_admin_queue(16);
  Default<std::string>(c->mutable_metrics_host(), kDefaultMetricsHost);
  // Fields that map onto core options: the values are the core Options' defaults, read through
  // the same mapping as a config that sets nothing (config_options.cc).
  const v1::ServerConfig empty;
  const RetrievalEngineOptions engine = EngineOptionsFromConfig(empty);
  if (c->max_k() == 0) c->set_max_k(engine.max_k);
  if (c->top_m() == 0) c->set_top_m(engine.top_m);
  if (!c->has_epsilon()) c->set_epsilon(engine.epsilon);
  if (c->max_feedback_batch() == 0) c->set_max_feedback_batch(engine.max_feedback_batch);
  if (c->max_upsert_batch() == 0) c->set_max_upsert_batch(engine.max_upsert_batch);
  if (c->max_exclude() == 0) c->set_max_exclude(engine.max_exclude);
  if (c->max_categorical_features() == 0) {
    c->set_max_categorical_features(engine.max_categorical_features);
  }
  Default<std::string>(c->mutable_background_priority(),
                       BackgroundPriorityName(engine.build_priority));
  Default<std::string>(c->mutable_slate_exploration(),
                       SlateExplorationName(engine.slate_exploration));
  if (!c->has_reward_min()) c->set_reward_min(engine.reward_min);
  if (!c->has_reward_max()) c->set_reward_max(engine.reward_max);
  ApplyIndexDefaults(engine.snapshot.index, c->mutable_index());
  ApplyEventLogDefaults(EventLogOptionsFromConfig(empty), c->mutable_event_log());
  ApplyTrainerDefaults(TrainerOptionsFromConfig(empty), ModelStoreOptionsFromConfig(empty),
                       c->mutable_trainer());
  ApplyScaleOutDefaults(c);
}

absl::Status ValidateTrainerConfig(const v1::TrainerConfig& t) {
  // Alone, without the server's reward range: any default_reward within the widest range passes
  // here (ValidateServerConfig checks it against reward_min/reward_max).
  v1::ServerConfig c;
  *c.mutable_trainer() = t;
  c.set_reward_min(-kMaxRewardMagnitude);
  c.set_reward_max(kMaxRewardMagnitude);
  return ValidateTrainerFields(c);
}

absl::Status ValidateServerConfig(const v1::ServerConfig& c) {
  RETURN_IF_ERROR(ValidateServerFields(c));
  RETURN_IF_ERROR(ValidateServerLimits(c));
  // The fields that map onto core options: their ranges are the core Options' Validate, with the
  // field names turned into the config's.
  RETURN_IF_ERROR(EngineOptionsFromConfig(c).Validate());
  RETURN_IF_ERROR(ConfigNames(IndexOptionsFromConfig(c).Validate(), "index.",
                              {{"threads", "build_threads"}}));
  RETURN_IF_ERROR(ValidateEventLogDurations(c.event_log()));
  RETURN_IF_ERROR(ConfigNames(EventLogOptionsFromConfig(c).Validate(), "event_log.", {}));
  RETURN_IF_ERROR(ValidateScaleOut(c));
  return ValidateTrainerFields(c);
}

absl::StatusOr<v1::TrainerConfig::Objective> ParseObjectiveName(const std::string& name,
                                                                const std::string& field) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "dr") return v1::TrainerConfig::DR;
  if (lower == "ipw") return v1::TrainerConfig::IPW;
  if (lower == "dm") return v1::TrainerConfig::DM;
  return absl::InvalidArgumentError(absl::StrCat(field, "=", name, ": must be dr, ipw or dm"));
}

std::string DurabilityName(v1::EventLogConfig::Durability durability) {
  return durability == v1::EventLogConfig::SYNC ? "sync" : "group";
}

absl::StatusOr<v1::EventLogConfig::Durability> ParseDurability(const std::string& name,
                                                               const std::string& field) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "group") return v1::EventLogConfig::GROUP;
  if (lower == "sync") return v1::EventLogConfig::SYNC;
  return absl::InvalidArgumentError(absl::StrCat(field, "=", name, ": must be group or sync"));
}

absl::StatusOr<v1::IndexConfig::Type> ParseIndexType(const std::string& name,
                                                     const std::string& field) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "auto") return v1::IndexConfig::AUTO;
  if (lower == "exact") return v1::IndexConfig::EXACT;
  if (lower == "ivf") return v1::IndexConfig::IVF;
  if (lower == "hnsw") return v1::IndexConfig::HNSW;
  return absl::InvalidArgumentError(
      absl::StrCat(field, "=", name, ": must be one of auto, exact, ivf, hnsw"));
}

}  // namespace optower::server
