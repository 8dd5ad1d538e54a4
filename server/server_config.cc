#include "server/server_config.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/background_priority.h"
#include "core/status_macros.h"

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
  Default<std::string>(c->mutable_host(), "127.0.0.1");
  if (!c->has_port()) c->set_port(kDefaultPort);
  if (c->max_k() == 0) c->set_max_k(100);
  if (c->top_m() == 0) c->set_top_m(100);
  if (!c->has_epsilon()) c->set_epsilon(0.1);
  if (c->max_feedback_batch() == 0) c->set_max_feedback_batch(1000);
  if (c->max_upsert_batch() == 0) c->set_max_upsert_batch(100000);
  if (c->max_exclude() == 0) c->set_max_exclude(10000);
  if (c->max_categorical_features() == 0) c->set_max_categorical_features(64);
  if (c->max_receive_message_bytes() == 0) c->set_max_receive_message_bytes(64 << 20);
  if (c->max_send_message_bytes() == 0) c->set_max_send_message_bytes(16 << 20);
  if (c->shutdown_deadline_ms() == 0) c->set_shutdown_deadline_ms(5000);
  if (c->intra_op_threads() == 0) c->set_intra_op_threads(1);
  Default<std::string>(c->mutable_background_priority(), "idle");
  if (c->init_hidden_size() == 0) c->add_init_hidden(64);
  if (c->init_embedding_dim() == 0) c->set_init_embedding_dim(32);
  if (!c->has_reward_min()) c->set_reward_min(0.0);
  if (!c->has_reward_max()) c->set_reward_max(1.0);
  if (c->max_retrieve_bytes() == 0) c->set_max_retrieve_bytes(64 << 10);
  if (c->max_feedback_bytes() == 0) c->set_max_feedback_bytes(1 << 20);
  if (c->max_admin_bytes() == 0) c->set_max_admin_bytes(64 << 10);
  if (c->max_watchers() == 0) c->set_max_watchers(16);
  if (c->max_admin_queue() == 0) c->set_max_admin_queue(16);
  Default<std::string>(c->mutable_metrics_host(), "127.0.0.1");

  v1::IndexConfig* ix = c->mutable_index();
  if (ix->exact_max_items() == 0) ix->set_exact_max_items(100000);
  if (ix->min_recall_at_10() == 0) ix->set_min_recall_at_10(0.95);
  if (ix->ivf_nprobe() == 0) ix->set_ivf_nprobe(16);
  if (ix->hnsw_m() == 0) ix->set_hnsw_m(32);
  if (ix->hnsw_ef_construction() == 0) ix->set_hnsw_ef_construction(80);
  if (ix->hnsw_ef_search() == 0) ix->set_hnsw_ef_search(128);

  v1::EventLogConfig* log = c->mutable_event_log();
  if (!log->has_max_commit_delay_ms()) log->set_max_commit_delay_ms(5);
  if (log->max_batch_events() == 0) log->set_max_batch_events(4096);
  if (log->max_queue_events() == 0) log->set_max_queue_events(int64_t{1} << 20);
  if (log->max_queue_bytes() == 0) log->set_max_queue_bytes(int64_t{64} << 20);
  if (!log->has_write_failure_window_ms()) log->set_write_failure_window_ms(2000);
  if (!log->has_writer_stall_timeout_ms()) log->set_writer_stall_timeout_ms(500);

  v1::TrainerConfig* t = c->mutable_trainer();
  if (!t->has_attribution_window_seconds()) t->set_attribution_window_seconds(3600);
  if (t->min_events() == 0) t->set_min_events(100);
  if (!t->has_holdout_fraction()) t->set_holdout_fraction(0.2);
  if (t->min_holdout() == 0) t->set_min_holdout(20);
  if (t->confidence() == 0) t->set_confidence(0.95);
  if (t->epochs() == 0) t->set_epochs(20);
  if (t->learning_rate() == 0) t->set_learning_rate(1e-3);
  if (t->temperature() == 0) t->set_temperature(0.1);
  if (t->hidden_size() == 0) t->add_hidden(64);
  if (t->embedding_dim() == 0) t->set_embedding_dim(32);
  if (t->threads() == 0) t->set_threads(1);
  if (t->batch_size() == 0) t->set_batch_size(256);
  if (t->patience() == 0) t->set_patience(5);
  if (t->reward_model_epochs() == 0) t->set_reward_model_epochs(30);
  if (!t->has_warm_start_from_served()) t->set_warm_start_from_served(true);
  if (t->max_jobs_kept() == 0) t->set_max_jobs_kept(100);
  if (t->max_events() == 0) t->set_max_events(kDefaultMaxEvents);
  if (t->keep_promoted_versions() == 0) t->set_keep_promoted_versions(5);
  if (!t->has_keep_rejected_versions()) t->set_keep_rejected_versions(3);
  if (t->list_models_limit() == 0) t->set_list_models_limit(100);
}

absl::Status ValidateTrainerConfig(const v1::TrainerConfig& t) {
  auto bad = [](const std::string& field, auto value, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("trainer.", field, "=", value, ": ", why));
  };
  auto finite = [](double v) { return std::isfinite(v); };
  // Durations are bounded as well as finite: a year of seconds / minutes.
  constexpr double kYearSeconds = 365.0 * 24 * 3600;
  if (!(t.attribution_window_seconds() >= 0 && t.attribution_window_seconds() <= kYearSeconds)) {
    return bad("attribution_window_seconds", t.attribution_window_seconds(),
               "must be in [0, 31536000] (a year)");
  }
  if (!finite(t.default_reward())) return bad("default_reward", t.default_reward(), "must be finite");
  if (t.min_events() < 10) return bad("min_events", t.min_events(), "must be >= 10");
  if (t.max_events() < -1 || t.max_events() == 0) {
    return bad("max_events", t.max_events(), "must be >= 1, or -1 for the whole log");
  }
  if (!(t.holdout_fraction() >= 0 && t.holdout_fraction() <= 0.9)) {
    return bad("holdout_fraction", t.holdout_fraction(), "must be in [0, 0.9] (0 = gate off)");
  }
  if (t.min_holdout() < 2) return bad("min_holdout", t.min_holdout(), "must be >= 2");
  if (!(t.confidence() > 0 && t.confidence() < 1)) {
    return bad("confidence", t.confidence(), "must be in (0, 1)");
  }
  if (!(t.promotion_tolerance() >= 0) || !finite(t.promotion_tolerance())) {
    return bad("promotion_tolerance", t.promotion_tolerance(), "must be finite and >= 0");
  }
  if (!(t.gate_weight_clip() >= 0) || !finite(t.gate_weight_clip())) {
    return bad("gate_weight_clip", t.gate_weight_clip(), "must be finite and >= 0 (0 = none)");
  }
  if (t.auto_retrain_every_feedback() < 0) {
    return bad("auto_retrain_every_feedback", t.auto_retrain_every_feedback(), "must be >= 0 (0 = off)");
  }
  if (!(t.auto_retrain_every_minutes() >= 0 && t.auto_retrain_every_minutes() <= kYearSeconds / 60)) {
    return bad("auto_retrain_every_minutes", t.auto_retrain_every_minutes(),
               "must be in [0, 525600] (0 = off; at most a year)");
  }
  if (t.epochs() < 1) return bad("epochs", t.epochs(), "must be >= 1");
  if (!(t.learning_rate() > 0) || !finite(t.learning_rate())) {
    return bad("learning_rate", t.learning_rate(), "must be finite and > 0");
  }
  if (!(t.temperature() > 0) || !finite(t.temperature())) {
    return bad("temperature", t.temperature(), "must be finite and > 0");
  }
  for (int i = 0; i < t.hidden_size(); ++i) {
    if (t.hidden(i) < 1) return bad(absl::StrCat("hidden[", i, "]"), t.hidden(i), "must be >= 1");
  }
  if (t.embedding_dim() < 1) return bad("embedding_dim", t.embedding_dim(), "must be >= 1");
  if (t.threads() < 1) return bad("threads", t.threads(), "must be >= 1");
  if (t.batch_size() < 1) return bad("batch_size", t.batch_size(), "must be >= 1");
  if (t.patience() < 1) return bad("patience", t.patience(), "must be >= 1");
  if (t.reward_model_epochs() < 1) {
    return bad("reward_model_epochs", t.reward_model_epochs(), "must be >= 1");
  }
  if (t.max_jobs_kept() < 1) return bad("max_jobs_kept", t.max_jobs_kept(), "must be >= 1");
  if (t.keep_promoted_versions() < 1)
    return bad("keep_promoted_versions", t.keep_promoted_versions(), "must be >= 1");
  if (t.keep_rejected_versions() < 0)
    return bad("keep_rejected_versions", t.keep_rejected_versions(), "must be >= 0");
  if (t.list_models_limit() < 1)
    return bad("list_models_limit", t.list_models_limit(), "must be >= 1");
  return absl::OkStatus();
}

absl::Status ValidateServerConfig(const v1::ServerConfig& c) {
  auto bad = [](const std::string& field, auto value, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(field, "=", value, ": ", why));
  };
  if (c.host().empty()) return absl::InvalidArgumentError("host: empty");
  if (c.port() < 0 || c.port() > 65535) return bad("port", c.port(), "must be in [0, 65535]");
  if (c.data_dir().empty()) {
    return absl::InvalidArgumentError("data_dir: required (the event log lives there)");
  }
  if (c.model_dir().empty() && c.items_path().empty()) {
    return absl::InvalidArgumentError(
        "items_path: required when no model_dir is given (the catalog to serve)");
  }
  if (c.model_dir().empty() && c.dim_context() < 1) {
    return bad("dim_context", c.dim_context(),
               "must be >= 1 when no model_dir is given (random towers need the context size)");
  }
  if (c.dim_context() < 0) return bad("dim_context", c.dim_context(), "must be >= 0");
  if (c.max_k() < 1) return bad("max_k", c.max_k(), "must be >= 1");
  if (c.top_m() < 1) return bad("top_m", c.top_m(), "must be >= 1");
  if (!(c.epsilon() >= 0 && c.epsilon() <= 1)) return bad("epsilon", c.epsilon(), "must be in [0, 1]");
  if (!(c.temperature() >= 0) || !std::isfinite(c.temperature())) {
    return bad("temperature", c.temperature(), "must be finite and >= 0 (0 = the model's)");
  }
  if (c.max_feedback_batch() < 1) return bad("max_feedback_batch", c.max_feedback_batch(), "must be >= 1");
  if (c.max_upsert_batch() < 1) return bad("max_upsert_batch", c.max_upsert_batch(), "must be >= 1");
  if (c.max_exclude() < 0) return bad("max_exclude", c.max_exclude(), "must be >= 0");
  if (c.max_categorical_features() < 0) {
    return bad("max_categorical_features", c.max_categorical_features(), "must be >= 0");
  }
  if (c.max_receive_message_bytes() < 1024) {
    return bad("max_receive_message_bytes", c.max_receive_message_bytes(), "must be >= 1024");
  }
  if (c.max_send_message_bytes() < 1024) {
    return bad("max_send_message_bytes", c.max_send_message_bytes(), "must be >= 1024");
  }
  // Durations: finite and bounded (an hour), so that a typo cannot make a shutdown wait forever.
  if (!(c.shutdown_deadline_ms() > 0 && c.shutdown_deadline_ms() <= kMaxDurationMs)) {
    return bad("shutdown_deadline_ms", c.shutdown_deadline_ms(), "must be in (0, 3600000]");
  }
  if (!(c.shutdown_health_grace_ms() >= 0 && c.shutdown_health_grace_ms() <= kMaxDurationMs)) {
    return bad("shutdown_health_grace_ms", c.shutdown_health_grace_ms(), "must be in [0, 3600000]");
  }
  if (!(std::abs(c.reward_min()) <= kMaxRewardMagnitude)) {
    return bad("reward_min", c.reward_min(), "must be finite, within +-1e30");
  }
  if (!(std::abs(c.reward_max()) <= kMaxRewardMagnitude) || !(c.reward_max() >= c.reward_min())) {
    return bad("reward_max", c.reward_max(),
               absl::StrCat("must be >= reward_min=", c.reward_min(), " and within +-1e30"));
  }
  if (!(c.trainer().default_reward() >= c.reward_min() &&
        c.trainer().default_reward() <= c.reward_max())) {
    return bad("trainer.default_reward", c.trainer().default_reward(),
               absl::StrCat("must be in [reward_min, reward_max] = [", c.reward_min(), ", ",
                            c.reward_max(), "]"));
  }
  using Limit = std::pair<const char*, int32_t>;
  for (const auto& [field, value] : {Limit{"max_retrieve_bytes", c.max_retrieve_bytes()},
                                      Limit{"max_feedback_bytes", c.max_feedback_bytes()},
                                      Limit{"max_admin_bytes", c.max_admin_bytes()}}) {
    if (value < 1024 || value > c.max_receive_message_bytes()) {
      return bad(field, value,
                 absl::StrCat("must be in [1024, max_receive_message_bytes=",
                              c.max_receive_message_bytes(), "]"));
    }
  }
  if (c.max_watchers() < 1) return bad("max_watchers", c.max_watchers(), "must be >= 1");
  if (c.max_admin_queue() < 1) return bad("max_admin_queue", c.max_admin_queue(), "must be >= 1");
  if (c.metrics_host().empty()) return absl::InvalidArgumentError("metrics_host: empty");
  if (c.intra_op_threads() < 1) return bad("intra_op_threads", c.intra_op_threads(), "must be >= 1");
  if (!c.background_priority().empty()) {
    RETURN_IF_ERROR(ParseBackgroundPriority(c.background_priority()).status());
  }
  for (int i = 0; i < c.init_hidden_size(); ++i) {
    if (c.init_hidden(i) < 1) {
      return bad(absl::StrCat("init_hidden[", i, "]"), c.init_hidden(i), "must be >= 1");
    }
  }
  if (c.init_embedding_dim() < 1) {
    return bad("init_embedding_dim", c.init_embedding_dim(), "must be >= 1");
  }
  const v1::IndexConfig& ix = c.index();
  if (ix.exact_max_items() < 0) return bad("index.exact_max_items", ix.exact_max_items(), "must be >= 0");
  if (!(ix.min_recall_at_10() >= 0 && ix.min_recall_at_10() <= 1)) {
    return bad("index.min_recall_at_10", ix.min_recall_at_10(), "must be in [0, 1]");
  }
  if (ix.ivf_nlist() < 0) return bad("index.ivf_nlist", ix.ivf_nlist(), "must be >= 0 (0 = automatic)");
  if (ix.ivf_nprobe() < 1) return bad("index.ivf_nprobe", ix.ivf_nprobe(), "must be >= 1");
  if (ix.hnsw_m() < 2 || ix.hnsw_m() > 512) return bad("index.hnsw_m", ix.hnsw_m(), "must be in [2, 512]");
  if (ix.hnsw_ef_construction() < 1) {
    return bad("index.hnsw_ef_construction", ix.hnsw_ef_construction(), "must be >= 1");
  }
  if (ix.hnsw_ef_search() < 1) return bad("index.hnsw_ef_search", ix.hnsw_ef_search(), "must be >= 1");
  if (ix.build_threads() < 0) return bad("index.build_threads", ix.build_threads(), "must be >= 0");
  const v1::EventLogConfig& log = c.event_log();
  if (!(log.max_commit_delay_ms() >= 0 && log.max_commit_delay_ms() <= kMaxDurationMs)) {
    return bad("event_log.max_commit_delay_ms", log.max_commit_delay_ms(),
               "must be in [0, 3600000]");
  }
  if (log.max_batch_events() < 1) {
    return bad("event_log.max_batch_events", log.max_batch_events(), "must be >= 1");
  }
  if (log.max_queue_events() < 1) {
    return bad("event_log.max_queue_events", log.max_queue_events(), "must be >= 1");
  }
  if (log.max_queue_bytes() < 1024) {
    return bad("event_log.max_queue_bytes", log.max_queue_bytes(), "must be >= 1024");
  }
  if (!(log.write_failure_window_ms() > 0 && log.write_failure_window_ms() <= 86400e3)) {
    return bad("event_log.write_failure_window_ms", log.write_failure_window_ms(),
               "must be in (0, 86400000]");
  }
  if (!(log.writer_stall_timeout_ms() > 0 && log.writer_stall_timeout_ms() <= 86400e3)) {
    return bad("event_log.writer_stall_timeout_ms", log.writer_stall_timeout_ms(),
               "must be in (0, 86400000]");
  }
  if (c.metrics_port() < -1 || c.metrics_port() > 65535) {
    return bad("metrics_port", c.metrics_port(),
               "must be in [0, 65535] (0 = off) or -1 (any free port)");
  }
  if (c.metrics_port() > 0 && c.metrics_port() == c.port()) {
    return bad("metrics_port", c.metrics_port(),
               "equals port: the metrics need a port of their own");
  }
  return ValidateTrainerConfig(c.trainer());
}

ItemIndexOptions IndexOptionsFromConfig(const v1::ServerConfig& c) {
  const v1::IndexConfig& ix = c.index();
  ItemIndexOptions o;
  switch (ix.type()) {
    case v1::IndexConfig::EXACT:
      o.type = ItemIndexOptions::Type::kExact;
      break;
    case v1::IndexConfig::IVF:
      o.type = ItemIndexOptions::Type::kIvf;
      break;
    case v1::IndexConfig::HNSW:
      o.type = ItemIndexOptions::Type::kHnsw;
      break;
    default:
      o.type = ItemIndexOptions::Type::kAuto;
      break;
  }
  o.exact_max_items = ix.exact_max_items();
  o.min_recall_at_10 = ix.min_recall_at_10();
  o.ivf_nlist = ix.ivf_nlist();
  o.ivf_nprobe = ix.ivf_nprobe();
  o.hnsw_m = ix.hnsw_m();
  o.hnsw_ef_construction = ix.hnsw_ef_construction();
  o.hnsw_ef_search = ix.hnsw_ef_search();
  o.threads = ix.build_threads();
  o.ivf_warm_start = !ix.ivf_cold_rebuild();
  return o;
}

// Validated by ValidateServerConfig; empty (defaults not applied) = idle.
BackgroundPriority BackgroundPriorityFromConfig(const v1::ServerConfig& c) {
  absl::StatusOr<BackgroundPriority> p = ParseBackgroundPriority(
      c.background_priority().empty() ? "idle" : c.background_priority());
  return p.ok() ? *p : BackgroundPriority::kIdle;
}

RetrievalEngineOptions EngineOptionsFromConfig(const v1::ServerConfig& c) {
  RetrievalEngineOptions o;
  o.max_k = c.max_k();
  o.top_m = c.top_m();
  o.epsilon = c.epsilon();
  o.temperature = c.temperature();
  o.greedy = c.greedy();
  o.max_exclude = c.max_exclude();
  o.max_categorical_features = c.max_categorical_features();
  o.max_feedback_batch = c.max_feedback_batch();
  o.max_upsert_batch = c.max_upsert_batch();
  o.reward_min = c.reward_min();
  o.reward_max = c.reward_max();
  o.snapshot.index = IndexOptionsFromConfig(c);
  o.build_priority = BackgroundPriorityFromConfig(c);
  return o;
}

std::string EventLogPath(const v1::ServerConfig& c) { return c.data_dir() + "/events.sqlite"; }

ModelStore::Options ModelStoreOptionsFromConfig(const v1::ServerConfig& c) {
  ModelStore::Options o;
  o.keep_promoted = c.trainer().keep_promoted_versions();
  o.keep_rejected = c.trainer().keep_rejected_versions();
  o.list_limit = c.trainer().list_models_limit();
  return o;
}

TrainerOptions TrainerOptionsFromConfig(const v1::ServerConfig& c) {
  const v1::TrainerConfig& t = c.trainer();
  TrainerOptions o;
  o.priority = BackgroundPriorityFromConfig(c);
  switch (t.objective()) {
    case v1::TrainerConfig::IPW:
      o.learner.objective = Objective::kIpw;
      break;
    case v1::TrainerConfig::DM:
      o.learner.objective = Objective::kDm;
      break;
    default:
      o.learner.objective = Objective::kDr;
      break;
  }
  o.learner.hidden.assign(t.hidden().begin(), t.hidden().end());
  o.learner.embedding_dim = t.embedding_dim();
  o.learner.temperature = t.temperature();
  o.learner.epochs = t.epochs();
  o.learner.batch_size = t.batch_size();
  o.learner.learning_rate = t.learning_rate();
  o.learner.patience = t.patience();
  o.learner.seed = t.seed();
  o.learner.threads = t.threads();
  // DR and DM start the policy from q̂'s towers, so q̂ gets the same architecture.
  o.learner.reward_model.hidden = o.learner.hidden;
  o.learner.reward_model.embedding_dim = t.embedding_dim();
  o.learner.reward_model.epochs = t.reward_model_epochs();
  o.learner.reward_model.batch_size = t.batch_size();
  o.learner.reward_model.threads = t.threads();
  o.warm_start_from_served = t.warm_start_from_served();
  o.snapshot.attribution_window = absl::Seconds(t.attribution_window_seconds());
  o.snapshot.default_reward = t.default_reward();
  o.snapshot.reward_min = c.reward_min();
  o.snapshot.reward_max = c.reward_max();
  o.min_events = t.min_events();
  o.max_events = t.max_events();
  o.holdout_fraction = t.holdout_fraction();
  o.min_holdout = t.min_holdout();
  o.gate.confidence = t.confidence();
  o.gate.tolerance = t.promotion_tolerance();
  o.gate.weight_clip = t.gate_weight_clip();
  o.auto_every_feedback = t.auto_retrain_every_feedback();
  o.auto_every = absl::Seconds(t.auto_retrain_every_minutes() * 60);
  o.max_jobs_kept = t.max_jobs_kept();
  return o;
}

absl::StatusOr<v1::TrainerConfig::Objective> ParseObjectiveName(const std::string& name,
                                                                const std::string& field) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "dr") return v1::TrainerConfig::DR;
  if (lower == "ipw") return v1::TrainerConfig::IPW;
  if (lower == "dm") return v1::TrainerConfig::DM;
  return absl::InvalidArgumentError(absl::StrCat(field, "=", name, ": must be dr, ipw or dm"));
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
  EventLogOptions o;
  o.path = EventLogPath(c);
  o.durability = c.event_log().durability() == v1::EventLogConfig::SYNC
                     ? EventLogOptions::Durability::kSynchronous
                     : EventLogOptions::Durability::kGroupCommit;
  o.max_commit_delay = absl::Microseconds(std::llround(c.event_log().max_commit_delay_ms() * 1000));
  o.max_batch_events = c.event_log().max_batch_events();
  o.max_queue_events = c.event_log().max_queue_events();
  o.max_queue_bytes = c.event_log().max_queue_bytes();
  o.write_failure_window =
      absl::Microseconds(std::llround(c.event_log().write_failure_window_ms() * 1000));
  o.writer_stall_timeout =
      absl::Microseconds(std::llround(c.event_log().writer_stall_timeout_ms() * 1000));
  return o;
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
