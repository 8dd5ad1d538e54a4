#include "server/server_config.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

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
  if (c->init_hidden_size() == 0) c->add_init_hidden(64);
  if (c->init_embedding_dim() == 0) c->set_init_embedding_dim(32);

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
  if (!(c.shutdown_deadline_ms() > 0)) {
    return bad("shutdown_deadline_ms", c.shutdown_deadline_ms(), "must be > 0");
  }
  if (!(c.shutdown_health_grace_ms() >= 0)) {
    return bad("shutdown_health_grace_ms", c.shutdown_health_grace_ms(), "must be >= 0");
  }
  if (c.intra_op_threads() < 1) return bad("intra_op_threads", c.intra_op_threads(), "must be >= 1");
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
  if (!(log.max_commit_delay_ms() >= 0) || !std::isfinite(log.max_commit_delay_ms())) {
    return bad("event_log.max_commit_delay_ms", log.max_commit_delay_ms(), "must be >= 0");
  }
  if (log.max_batch_events() < 1) {
    return bad("event_log.max_batch_events", log.max_batch_events(), "must be >= 1");
  }
  if (log.max_queue_events() < 1) {
    return bad("event_log.max_queue_events", log.max_queue_events(), "must be >= 1");
  }
  return absl::OkStatus();
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
  return o;
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
  o.snapshot.index = IndexOptionsFromConfig(c);
  return o;
}

std::string EventLogPath(const v1::ServerConfig& c) { return c.data_dir() + "/events.sqlite"; }

EventLogOptions EventLogOptionsFromConfig(const v1::ServerConfig& c) {
  EventLogOptions o;
  o.path = EventLogPath(c);
  o.durability = c.event_log().durability() == v1::EventLogConfig::SYNC
                     ? EventLogOptions::Durability::kSynchronous
                     : EventLogOptions::Durability::kGroupCommit;
  o.max_commit_delay = absl::Microseconds(std::llround(c.event_log().max_commit_delay_ms() * 1000));
  o.max_batch_events = c.event_log().max_batch_events();
  o.max_queue_events = c.event_log().max_queue_events();
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
