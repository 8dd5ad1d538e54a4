// Server configuration: reading the text-format ServerConfig file (proto/optower/v1/optower.proto),
// filling defaults, validating, and turning it into the options of core components. Flags are
// applied on top of the file by main.cc (flags override the file), before ValidateServerConfig.
//
//   ASSIGN_OR_RETURN(v1::ServerConfig config, LoadServerConfigFile(path));   // or an empty message
//   ... apply flag overrides ...
//   ApplyServerConfigDefaults(&config);
//   RETURN_IF_ERROR(ValidateServerConfig(config));
//
// One source of truth for defaults and ranges (docs/SERVING.md "Options: one source of truth"):
// the fields that configure a core component take their defaults and ranges from its Options
// struct (RetrievalEngineOptions, ItemIndexOptions, EventLogOptions, TrainerOptions,
// ModelStore::Options). The *FromConfig functions (server/config_options.cc) copy only the fields a
// config sets onto a default-constructed Options; ValidateServerConfig calls that Options'
// Validate and names the config's field. Only the server's own fields (host, port, byte limits,
// shutdown, metrics ...) and the few defaults where the server differs from core on purpose are
// defined here.
//
// Errors name the config field and its value ("top_m=0: must be >= 1"); a syntax error in the file is
// "<path>:<line>:<column>: <what protobuf's parser says>".
// Thread safety: all functions are reentrant.
#ifndef OPTOWER_SERVER_SERVER_CONFIG_H_
#define OPTOWER_SERVER_SERVER_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/categorical.h"
#include "core/storage/event_log.h"
#include "core/storage/model_store.h"
#include "core/serving/retrieval_engine.h"
#include "core/training/trainer.h"
#include "optower/v1/optower.pb.h"
#include "server/tls.h"

namespace optower::server {

inline constexpr int kDefaultPort = 50051;
inline constexpr char kDefaultHost[] = "127.0.0.1";
inline constexpr char kDefaultMetricsHost[] = "127.0.0.1";  // loopback only, whatever `host` is
inline constexpr double kDefaultShutdownDeadlineMs = 5000;
// Where the server's default differs from core's on purpose:
// - the declared reward range: [0, 1] (core's Options accept any range within +-kMaxRewardMagnitude
//   by default);
// - trainer threads: 1, not PolicyLearnerOptions' 0 = all cores, because LibTorch's thread count is
//   process-wide and more trainer threads starve serving (docs/TRAINING.md "Threads").
inline constexpr double kDefaultRewardMin = 0.0;
inline constexpr double kDefaultRewardMax = 1.0;
inline constexpr int kDefaultTrainerThreads = 1;

// Parses the file (text format). NotFound etc. when it cannot be read; InvalidArgument for syntax.
absl::StatusOr<v1::ServerConfig> LoadServerConfigFile(const std::string& path);
// Same for text held in memory; `name` is used in error messages in place of a path.
absl::StatusOr<v1::ServerConfig> ParseServerConfig(const std::string& text, const std::string& name);

// Replaces zero/unset fields by their defaults (idempotent); for the fields that map onto core
// options, the core Options' defaults. The *FromConfig functions give the same options with or
// without it; it makes the config say what is in effect (start-up lines, tests, the bench).
void ApplyServerConfigDefaults(v1::ServerConfig* config);

// Checks a config after ApplyServerConfigDefaults. InvalidArgument naming the field and value: the
// server's own fields here, the rest through the mapped core Options' Validate.
absl::Status ValidateServerConfig(const v1::ServerConfig& config);

RetrievalEngineOptions EngineOptionsFromConfig(const v1::ServerConfig& config);
// init_context_fields / init_item_fields as core schemas, zero fields taking CategoricalField's
// defaults (checked by ValidateServerConfig: core/base/categorical.h ValidateCategoricalFields).
std::vector<CategoricalField> InitContextFieldsFromConfig(const v1::ServerConfig& config);
std::vector<CategoricalField> InitItemFieldsFromConfig(const v1::ServerConfig& config);
ItemIndexOptions IndexOptionsFromConfig(const v1::ServerConfig& config);
BackgroundPriority BackgroundPriorityFromConfig(const v1::ServerConfig& config);
// The trainer's options from config.trainer (and the reward range and background priority).
TrainerOptions TrainerOptionsFromConfig(const v1::ServerConfig& config);
// Retention and the ListModels bound: trainer.keep_promoted_versions, keep_rejected_versions,
// list_models_limit.
ModelStore::Options ModelStoreOptionsFromConfig(const v1::ServerConfig& config);
// Checks config.trainer (part of ValidateServerConfig); errors name "trainer.<field>=<value>".
// Alone it does not check default_reward against the server's reward range.
absl::Status ValidateTrainerConfig(const v1::TrainerConfig& trainer);
// tls_cert, tls_key, tls_client_ca, tls_require_client_cert (checked by MakeServerCredentials).
ServerTlsOptions TlsOptionsFromConfig(const v1::ServerConfig& config);
// reward_min/reward_max, or kDefaultRewardMin/Max when absent.
double RewardMinFromConfig(const v1::ServerConfig& config);
double RewardMaxFromConfig(const v1::ServerConfig& config);
// The event log lives at `<data_dir>/events.sqlite`.
EventLogOptions EventLogOptionsFromConfig(const v1::ServerConfig& config);
std::string EventLogPath(const v1::ServerConfig& config);

// "group" | "sync".
std::string DurabilityName(v1::EventLogConfig::Durability durability);
// "group" | "sync" -> the enum; InvalidArgument otherwise (naming `field`).
absl::StatusOr<v1::EventLogConfig::Durability> ParseDurability(const std::string& name,
                                                               const std::string& field);
// "dr" | "ipw" | "dm" -> the enum; InvalidArgument otherwise (naming `field`).
absl::StatusOr<v1::TrainerConfig::Objective> ParseObjectiveName(const std::string& name,
                                                                const std::string& field);
// "auto" | "exact" | "ivf" | "hnsw" -> the enum; InvalidArgument otherwise (naming `field`).
absl::StatusOr<v1::IndexConfig::Type> ParseIndexType(const std::string& name,
                                                     const std::string& field);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_SERVER_CONFIG_H_
