// optower-server: serves Retrieve/Feedback and the admin RPCs over gRPC (docs/SERVING.md).
//
//   optower-server --config server.textproto [--port 0 ...]
//   optower-server --data_dir DATA --items items.csv --dim_context 8 --port 0
//   optower-server --data_dir DATA --model MODEL_DIR            (MODEL_DIR from `optower train`)
//
// Configuration: a text-format optower.v1.ServerConfig file; every flag given on the command line
// overrides the file's field. Prints "optower-server listening on HOST:PORT" on stdout once it
// accepts calls (with --port 0 the port is chosen by the OS). SIGTERM/SIGINT/SIGHUP/SIGQUIT shut it
// down gracefully (the event log is flushed).
// The background trainer (docs/TRAINING.md) is on unless --disable_trainer; its model store is
// data_dir/models, and a restart serves the store's CURRENT (else latest promoted) version.
// Exit codes: 0 after a clean shutdown, 1 on a runtime failure, 2 for a bad flag or config.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/base/status_macros.h"
#include "server/optower_server.h"
#include "server/server_config.h"
#include "server/start_checks.h"

ABSL_FLAG(std::string, config, "", "text-format optower.v1.ServerConfig file (flags override it)");
ABSL_FLAG(std::optional<std::string>, host, std::nullopt,
          absl::StrCat("listen address (default ", optower::server::kDefaultHost, ")"));
ABSL_FLAG(std::optional<int>, port, std::nullopt,
          absl::StrCat("listen port (default ", optower::server::kDefaultPort,
                       "; 0 = any free port)"));
ABSL_FLAG(std::optional<std::string>, data_dir, std::nullopt,
          "folder for events.sqlite (created if missing)");
ABSL_FLAG(std::optional<std::string>, items, std::nullopt, "items.csv (item,f0,...) to serve");
ABSL_FLAG(std::optional<std::string>, model, std::nullopt,
          "model folder from `optower train` (or its policy/ folder); none = random towers");
ABSL_FLAG(std::optional<int>, dim_context, std::nullopt,
          "context features (required without --model)");
ABSL_FLAG(std::optional<std::string>, durability, std::nullopt,
          "event log durability: group (default) | sync");
ABSL_FLAG(std::optional<double>, max_commit_delay_ms, std::nullopt,
          absl::StrCat("group commit: longest delay before an acknowledged event is committed "
                       "(default ",
                       absl::ToDoubleMilliseconds(optower::EventLogOptions{}.max_commit_delay),
                       ")"));
ABSL_FLAG(std::optional<double>, epsilon, std::nullopt,
          absl::StrCat("uniform exploration share (default ",
                       optower::RetrievalEngineOptions{}.epsilon, ")"));
ABSL_FLAG(std::optional<std::string>, slate_exploration, std::nullopt,
          absl::StrCat("exploration at positions >= 1: per_position | per_slate (default ",
                       optower::SlateExplorationName(
                           optower::RetrievalEngineOptions{}.slate_exploration),
                       ")"));
ABSL_FLAG(std::optional<double>, temperature, std::nullopt,
          absl::StrCat("softmax temperature (default ", optower::RetrievalEngineOptions{}.temperature,
                       " = the model's)"));
ABSL_FLAG(std::optional<int>, top_m, std::nullopt,
          absl::StrCat("index candidates per request (default ",
                       optower::RetrievalEngineOptions{}.top_m, ")"));
ABSL_FLAG(std::optional<int>, max_k, std::nullopt,
          absl::StrCat("largest slate size k (default ", optower::RetrievalEngineOptions{}.max_k,
                       ")"));
ABSL_FLAG(std::optional<std::string>, index, std::nullopt, "auto (default) | exact | ivf | hnsw");
ABSL_FLAG(std::optional<double>, shutdown_deadline_ms, std::nullopt,
          absl::StrCat("how long to drain in-flight calls on SIGTERM (default ",
                       optower::server::kDefaultShutdownDeadlineMs, ")"));
ABSL_FLAG(std::optional<double>, shutdown_health_grace_ms, std::nullopt,
          "NOT_SERVING this long before draining (default 0)");
ABSL_FLAG(std::optional<uint64_t>, init_seed, std::nullopt, "seed of random towers (default 0)");
ABSL_FLAG(std::optional<std::string>, background_priority, std::nullopt,
          absl::StrCat("OS priority of snapshot builds and training jobs: idle | nice | normal "
                       "(default ",
                       optower::BackgroundPriorityName(
                           optower::RetrievalEngineOptions{}.build_priority),
                       ")"));
// The trainer (trainer { ... } in the config; docs/TRAINING.md).
ABSL_FLAG(std::optional<bool>, disable_trainer, std::nullopt, "run without the background trainer");
ABSL_FLAG(std::optional<std::string>, objective, std::nullopt,
          absl::StrCat("trainer objective: dr | ipw | dm (default ",
                       optower::ObjectiveName(optower::TrainerOptions{}.learner.objective), ")"));
ABSL_FLAG(std::optional<std::string>, slate_learning, std::nullopt,
          absl::StrCat("how the trainer learns from K > 1 slates: per_draw | top_k (default ",
                       optower::SlateLearningName(optower::TrainerOptions{}.slate_learning), ")"));
ABSL_FLAG(std::optional<double>, attribution_window_seconds, std::nullopt,
          absl::StrCat("served items without feedback count as default_reward after this long "
                       "(default ",
                       absl::ToDoubleSeconds(optower::SnapshotOptions{}.attribution_window), ")"));
ABSL_FLAG(std::optional<double>, default_reward, std::nullopt,
          absl::StrCat("reward of unrewarded served items past the attribution window (default ",
                       optower::SnapshotOptions{}.default_reward, ")"));
ABSL_FLAG(std::optional<int64_t>, min_events, std::nullopt,
          absl::StrCat("usable logged samples a training job needs (default ",
                       optower::TrainerOptions{}.min_events, ")"));
ABSL_FLAG(std::optional<double>, holdout_fraction, std::nullopt,
          absl::StrCat("newest share of the samples held out for the promotion gate (default ",
                       optower::TrainerOptions{}.holdout_fraction, "; 0 = gate off)"));
ABSL_FLAG(std::optional<double>, promotion_tolerance, std::nullopt,
          absl::StrCat("promote unless DR(new) - DR(old) is below -tolerance beyond its interval "
                       "(default ",
                       optower::PromotionGateOptions{}.tolerance, ")"));
ABSL_FLAG(std::optional<int64_t>, auto_retrain_every_feedback, std::nullopt,
          absl::StrCat("retrain after this many new feedback rows (default ",
                       optower::TrainerOptions{}.auto_every_feedback, " = off)"));
ABSL_FLAG(std::optional<double>, auto_retrain_every_minutes, std::nullopt,
          absl::StrCat("retrain every this many minutes (default ",
                       absl::ToDoubleMinutes(optower::TrainerOptions{}.auto_every), " = off)"));
ABSL_FLAG(std::optional<int>, train_epochs, std::nullopt,
          absl::StrCat("policy epochs per job (default ", optower::TrainerOptions{}.learner.epochs,
                       ")"));
ABSL_FLAG(std::optional<int>, trainer_threads, std::nullopt,
          absl::StrCat("LibTorch intra-op threads of a training job (default ",
                       optower::server::kDefaultTrainerThreads, ")"));

// Scale-out (docs/SCALING.md): the shared PostgreSQL backend and this process's role.
ABSL_FLAG(std::optional<std::string>, role, std::nullopt,
          "all (default: one process) | serve (a serving replica) | train (the elected trainer); "
          "serve and train need --postgres_dsn_file or postgres.enabled");
ABSL_FLAG(std::optional<std::string>, postgres_dsn_file, std::nullopt,
          "file holding the libpq connection string (password included): keep the event log, "
          "catalog and model registry in PostgreSQL (else $OPTOWER_PG_DSN with postgres.enabled)");
ABSL_FLAG(std::optional<std::string>, trainer_address, std::nullopt,
          "where admin writes go (quoted in a serving replica's FAILED_PRECONDITION answers)");

// Security and metrics (docs/SECURITY.md, docs/METRICS.md).
ABSL_FLAG(std::optional<int>, metrics_port, std::nullopt,
          "Prometheus /metrics port (default 0 = off; -1 = any free port)");
ABSL_FLAG(std::optional<std::string>, admin_token_file, std::nullopt,
          "file holding the bearer token the admin RPCs require (else $OPTOWER_ADMIN_TOKEN; "
          "none = admin RPCs open)");
ABSL_FLAG(std::optional<std::string>, retrieve_token_file, std::nullopt,
          "file holding the bearer token Retrieve/Feedback require (else $OPTOWER_RETRIEVE_TOKEN; "
          "none = open)");
ABSL_FLAG(std::optional<std::string>, tls_cert, std::nullopt,
          "PEM certificate chain: serve TLS only (with --tls_key)");
ABSL_FLAG(std::optional<std::string>, tls_key, std::nullopt, "PEM private key of --tls_cert");
ABSL_FLAG(std::optional<std::string>, tls_client_ca, std::nullopt,
          "PEM CA bundle: ask for client certificates and verify them");
ABSL_FLAG(std::optional<bool>, tls_require_client_cert, std::nullopt,
          "refuse clients without a certificate from --tls_client_ca (mutual TLS)");
// A plain bool (not optional like the others), so that the bare `--insecure_open_admin` works.
ABSL_FLAG(bool, insecure_open_admin, false,
          "start on a non-loopback --host without an admin token (admin RPCs open to anyone who "
          "reaches the port; otherwise such a start is refused, exit 2)");
ABSL_FLAG(std::optional<std::string>, metrics_host, std::nullopt,
          absl::StrCat("interface of the /metrics endpoint (default ",
                       optower::server::kDefaultMetricsHost, "; 0.0.0.0 = every interface)"));
ABSL_FLAG(std::optional<double>, reward_min, std::nullopt,
          absl::StrCat("smallest reward Feedback accepts (default ", optower::server::kDefaultRewardMin,
                       "; at least -", optower::kMaxRewardMagnitude, ")"));
ABSL_FLAG(std::optional<double>, reward_max, std::nullopt,
          absl::StrCat("largest reward Feedback accepts (default ", optower::server::kDefaultRewardMax,
                       "; at most ", optower::kMaxRewardMagnitude, ")"));

namespace optower::server {
namespace {

absl::StatusOr<v1::ServerConfig> ConfigFromFlags() {
  v1::ServerConfig config;
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    ASSIGN_OR_RETURN(config, LoadServerConfigFile(path));
  }
  if (auto v = absl::GetFlag(FLAGS_host)) config.set_host(*v);
  if (auto v = absl::GetFlag(FLAGS_port)) config.set_port(*v);
  if (auto v = absl::GetFlag(FLAGS_data_dir)) config.set_data_dir(*v);
  if (auto v = absl::GetFlag(FLAGS_items)) config.set_items_path(*v);
  if (auto v = absl::GetFlag(FLAGS_model)) config.set_model_dir(*v);
  if (auto v = absl::GetFlag(FLAGS_dim_context)) config.set_dim_context(*v);
  if (auto v = absl::GetFlag(FLAGS_durability)) {
    ASSIGN_OR_RETURN(const v1::EventLogConfig::Durability d, ParseDurability(*v, "--durability"));
    config.mutable_event_log()->set_durability(d);
  }
  if (auto v = absl::GetFlag(FLAGS_max_commit_delay_ms)) {
    config.mutable_event_log()->set_max_commit_delay_ms(*v);
  }
  if (auto v = absl::GetFlag(FLAGS_epsilon)) config.set_epsilon(*v);
  if (auto v = absl::GetFlag(FLAGS_slate_exploration)) config.set_slate_exploration(*v);
  if (auto v = absl::GetFlag(FLAGS_temperature)) config.set_temperature(*v);
  if (auto v = absl::GetFlag(FLAGS_top_m)) config.set_top_m(*v);
  if (auto v = absl::GetFlag(FLAGS_max_k)) config.set_max_k(*v);
  if (auto v = absl::GetFlag(FLAGS_index)) {
    ASSIGN_OR_RETURN(const v1::IndexConfig::Type t, ParseIndexType(*v, "--index"));
    config.mutable_index()->set_type(t);
  }
  if (auto v = absl::GetFlag(FLAGS_shutdown_deadline_ms)) config.set_shutdown_deadline_ms(*v);
  if (auto v = absl::GetFlag(FLAGS_shutdown_health_grace_ms)) {
    config.set_shutdown_health_grace_ms(*v);
  }
  if (auto v = absl::GetFlag(FLAGS_init_seed)) config.set_init_seed(*v);
  if (auto v = absl::GetFlag(FLAGS_background_priority)) config.set_background_priority(*v);
  v1::TrainerConfig* t = config.mutable_trainer();
  if (auto v = absl::GetFlag(FLAGS_disable_trainer)) t->set_disabled(*v);
  if (auto v = absl::GetFlag(FLAGS_objective)) {
    ASSIGN_OR_RETURN(const v1::TrainerConfig::Objective o, ParseObjectiveName(*v, "--objective"));
    t->set_objective(o);
  }
  if (auto v = absl::GetFlag(FLAGS_slate_learning)) {
    ASSIGN_OR_RETURN(const SlateLearning s, ParseSlateLearning(*v));
    t->set_slate_learning(s == SlateLearning::kTopKCorrection ? v1::TrainerConfig::TOP_K_CORRECTION
                                                             : v1::TrainerConfig::PER_DRAW);
  }
  if (auto v = absl::GetFlag(FLAGS_attribution_window_seconds)) t->set_attribution_window_seconds(*v);
  if (auto v = absl::GetFlag(FLAGS_default_reward)) t->set_default_reward(*v);
  if (auto v = absl::GetFlag(FLAGS_min_events)) t->set_min_events(*v);
  if (auto v = absl::GetFlag(FLAGS_holdout_fraction)) t->set_holdout_fraction(*v);
  if (auto v = absl::GetFlag(FLAGS_promotion_tolerance)) t->set_promotion_tolerance(*v);
  if (auto v = absl::GetFlag(FLAGS_auto_retrain_every_feedback)) t->set_auto_retrain_every_feedback(*v);
  if (auto v = absl::GetFlag(FLAGS_auto_retrain_every_minutes)) t->set_auto_retrain_every_minutes(*v);
  if (auto v = absl::GetFlag(FLAGS_train_epochs)) t->set_epochs(*v);
  if (auto v = absl::GetFlag(FLAGS_trainer_threads)) t->set_threads(*v);
  if (auto v = absl::GetFlag(FLAGS_role)) config.set_role(*v);
  if (auto v = absl::GetFlag(FLAGS_postgres_dsn_file)) {
    config.mutable_postgres()->set_enabled(true);
    config.mutable_postgres()->set_dsn_file(*v);
  }
  if (auto v = absl::GetFlag(FLAGS_trainer_address)) config.set_trainer_address(*v);
  if (auto v = absl::GetFlag(FLAGS_metrics_port)) config.set_metrics_port(*v);
  if (auto v = absl::GetFlag(FLAGS_admin_token_file)) config.set_admin_token_file(*v);
  if (auto v = absl::GetFlag(FLAGS_retrieve_token_file)) config.set_retrieve_token_file(*v);
  if (auto v = absl::GetFlag(FLAGS_tls_cert)) config.set_tls_cert(*v);
  if (auto v = absl::GetFlag(FLAGS_tls_key)) config.set_tls_key(*v);
  if (auto v = absl::GetFlag(FLAGS_tls_client_ca)) config.set_tls_client_ca(*v);
  if (auto v = absl::GetFlag(FLAGS_tls_require_client_cert)) config.set_tls_require_client_cert(*v);
  if (absl::GetFlag(FLAGS_insecure_open_admin)) config.set_insecure_open_admin(true);
  if (auto v = absl::GetFlag(FLAGS_metrics_host)) config.set_metrics_host(*v);
  if (auto v = absl::GetFlag(FLAGS_reward_min)) config.set_reward_min(*v);
  if (auto v = absl::GetFlag(FLAGS_reward_max)) config.set_reward_max(*v);
  ApplyServerConfigDefaults(&config);
  RETURN_IF_ERROR(CheckFirstStart(config));  // the same checks, with what to do next
  RETURN_IF_ERROR(ValidateServerConfig(config));
  return config;
}

// ", nprobe 64 of 4000 lists" / ", efSearch 256" / "" (exact): the tuned search breadth.
std::string IndexParameters(const ItemIndex& index) {
  if (index.ivf_nprobe() > 0) {
    return absl::StrCat(", nprobe ", index.ivf_nprobe(), " of ", index.ivf_nlist(), " lists");
  }
  if (index.hnsw_ef_search() > 0) return absl::StrCat(", efSearch ", index.hnsw_ef_search());
  return "";
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// One line about tokens, TLS and metrics; a warning when the admin RPCs are open.
void PrintSecurityLine(const OptowerServer& server) {
  const v1::ServerConfig& c = server.config();
  const AuthPolicy& auth = server.auth();
  std::string tls = "off";
  if (server.tls()) {
    tls = c.tls_require_client_cert() ? "on, client certificates required"
          : c.tls_client_ca().empty() ? "on"
                                      : "on, client certificates verified";
  }
  std::fprintf(stderr, "optower-server: admin token %s, retrieve token %s, TLS %s, metrics %s\n",
               auth.admin_required() ? "required" : "NOT required",
               auth.retrieve_required() ? "required" : "not required", tls.c_str(),
               server.metrics_port() != 0
                   ? absl::StrCat("on http://", c.metrics_host(), ":", server.metrics_port(),
                                  "/metrics")
                         .c_str()
                   : "off");
  if (!auth.admin_required() && c.insecure_open_admin() && !IsLoopbackHost(c.host())) {
    std::fprintf(stderr,
                 "optower-server: WARNING: --insecure_open_admin: the admin RPCs are OPEN on the "
                 "non-loopback address %s: ANYONE who reaches it can delete the catalog, roll back "
                 "and retrain. Never do this outside a throwaway test (docs/SECURITY.md)\n",
                 server.address().c_str());
  } else if (!auth.admin_required()) {
    std::fprintf(stderr,
                 "optower-server: warning: admin RPCs are NOT authenticated (anyone who reaches "
                 "%s can retrain, roll back and change the catalog); set --admin_token_file or "
                 "OPTOWER_ADMIN_TOKEN (docs/SECURITY.md)\n",
                 server.address().c_str());
  }
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    default: return "a signal";
  }
}

int Fail(const absl::Status& status) {
  std::string message(status.message());
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "optower-server: %s\n", message.c_str());
  return absl::IsInvalidArgument(status) || absl::IsNotFound(status) ? 2 : 1;
}

// --help, -h, --helpshort: this binary's flags (the ones defined in this file), sorted, each with
// its default. Abseil's own --help lists only flags of a file named after the program
// (optower-server.cc) and so printed "No flags matched"; --helpfull still shows every flag.
bool IsHelpFlag(const char* arg) {
  const absl::string_view a(arg);
  return a == "--help" || a == "-help" || a == "-h" || a == "--helpshort" || a == "-helpshort";
}

void PrintHelp() {
  std::printf("optower-server: %s\n\n", std::string(absl::ProgramUsageMessage()).c_str());
  std::printf("Flags (each overrides the same field of the --config file; docs/SERVING.md):\n");
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), "server/main.cc")) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  for (const absl::CommandLineFlag* flag : flags) {
    std::string help = flag->Help();
    // Most help texts state their default (the config default); the others are unset by default.
    if (!absl::StrContains(help, "default") && !absl::StrContains(help, "required")) {
      const std::string d = flag->DefaultValue();
      absl::StrAppend(&help, " (default: ",
                      !d.empty() ? d
                      : flag->IsOfType<std::optional<bool>>() ? "false"
                                                              : "none",
                      ")");
    }
    std::printf("  --%s  %s\n", std::string(flag->Name()).c_str(), help.c_str());
  }
  std::printf("\n--helpfull lists the flags of the libraries too.\n");
}

// The start-up line: what is served, where it came from, the log, the role and the trainer.
void PrintStartLine(OptowerServer& server) {
  std::shared_ptr<const ModelSnapshot> snap = server.engine().snapshot();
  const char* trainer = server.trainer() == nullptr ? "off"
                        : server.scale_out() == nullptr || server.scale_out()->leader()
                            ? "on"
                            : "standby (another trainer is elected)";
  std::fprintf(stderr,
               "optower-server: model %s (%s), %lld items (%s index%s, recall@10 %.3f on %s), "
               "epsilon %g (%s slates), event log %s (%s), role %s, trainer %s\n",
               snap->model_version().c_str(), server.model_source().c_str(),
               static_cast<long long>(snap->catalog().size()),
               snap->index().type_name().c_str(), IndexParameters(snap->index()).c_str(),
               snap->index().recall_at_10(), snap->probe_source().c_str(),
               server.config().epsilon(), server.config().slate_exploration().c_str(),
               EventLogPath(server.config()).c_str(),
               DurabilityName(server.config().event_log().durability()).c_str(),
               server.config().role().c_str(), trainer);
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "serves optower's Retrieve/Feedback/admin RPCs.\n"
      "  optower-server --config FILE | --data_dir DIR --items items.csv "
      "(--model MODEL_DIR | --dim_context D) [--port P]");
  for (int i = 1; i < argc; ++i) {
    if (IsHelpFlag(argv[i])) {
      PrintHelp();
      return 0;
    }
  }
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("unexpected argument '", rest[1], "'")));
  }
  absl::StatusOr<v1::ServerConfig> config = ConfigFromFlags();
  if (!config.ok()) return Fail(config.status());

  // Block the shutdown signals in this thread before any other thread exists, so every thread
  // (gRPC's, LibTorch's, the event log's) inherits the mask and only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  // SIGHUP (terminal gone) and SIGQUIT would otherwise kill the process without flushing the
  // event log: they shut down gracefully too (there is no reload).
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGQUIT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Measured (docs/TRAINING.md "Threads"): with more than one trainer thread and OpenMP's default
  // (active) waiting, the idle OpenMP worker spins between parallel regions, on 2 cores that made
  // the job 3-6x slower and serving p99 several times worse.
  if (!config->trainer().disabled() && config->trainer().threads() > 1) {
    const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
    if (wait_policy == nullptr || !absl::EqualsIgnoreCase(wait_policy, "passive")) {
      std::fprintf(stderr,
                   "optower-server: warning: trainer.threads=%d with OMP_WAIT_POLICY=%s: idle "
                   "OpenMP threads spin and take CPU from serving; set OMP_WAIT_POLICY=PASSIVE "
                   "(docs/TRAINING.md)\n",
                   config->trainer().threads(), wait_policy == nullptr ? "(unset)" : wait_policy);
    }
  }
  OptowerServer::StartOptions start;
  start.admin_token_env = Env("OPTOWER_ADMIN_TOKEN");
  start.retrieve_token_env = Env("OPTOWER_RETRIEVE_TOKEN");
  absl::StatusOr<std::unique_ptr<OptowerServer>> server = OptowerServer::Start(*config, start);
  if (!server.ok()) return Fail(ExplainStartFailure(server.status(), *config));
  PrintStartLine(**server);
  PrintSecurityLine(**server);
  std::printf("optower-server listening on %s\n", (*server)->address().c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "optower-server: %s received, shutting down\n", SignalName(sig));
  const absl::Status closed = (*server)->Shutdown();
  const RetrievalEngine::Stats stats = (*server)->engine().stats();
  std::fprintf(stderr,
               "optower-server: stopped after %lld retrieves (%lld items served), %lld feedback "
               "accepted; event log %s\n",
               static_cast<long long>(stats.retrieve_ok), static_cast<long long>(stats.items_served),
               static_cast<long long>(stats.feedback_accepted),
               closed.ok() ? "closed" : std::string(closed.message()).c_str());
  return closed.ok() ? 0 : 1;
}

}  // namespace
}  // namespace optower::server

int main(int argc, char** argv) { return optower::server::Main(argc, argv); }
