#include "cli/simulate_cluster.h"

#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cli/script_path.h"
#include "core/base/status_macros.h"

namespace optower::cli::sim {

constexpr char kConfigComment[] = "written by `optower simulate`";

absl::StatusOr<std::unique_ptr<SimCluster>> SimCluster::Start(const SimFlags& f,
                                                              const std::string& server_binary,
                                                              const v1::ServerConfig& config,
                                                              const std::string& data_dir,
                                                              absl::Duration start_timeout) {
  std::unique_ptr<SimCluster> c(new SimCluster());
  c->data_dir_ = data_dir;
  if (f.backend != "postgres") {
    RETURN_IF_ERROR(c->StartProcess("server", config, server_binary, start_timeout));
    return c;
  }
  std::string dsn_file = f.pg_dsn_file;
  if (dsn_file.empty()) {
    c->pg_dir_ = data_dir + "/pg";
    const std::string cmd = absl::StrCat("'", ScriptPath("pg_test_server.sh"), "' start '", c->pg_dir_,
                                         "' >'", data_dir, "/pg.log' 2>&1");
    if (std::system(cmd.c_str()) != 0) {
      return absl::UnavailableError(absl::StrCat("could not start a PostgreSQL server (", cmd,
                                                 "; see ", data_dir, "/pg.log)"));
    }
    dsn_file = c->pg_dir_ + "/dsn";
  }
  v1::ServerConfig shared = config;
  shared.mutable_postgres()->set_enabled(true);
  shared.mutable_postgres()->set_dsn_file(std::filesystem::absolute(dsn_file).string());
  shared.mutable_postgres()->set_poll_interval_ms(1000);
  v1::ServerConfig trainer = shared;
  trainer.set_role("train");
  RETURN_IF_ERROR(c->StartProcess("trainer", trainer, server_binary, start_timeout));
  for (int64_t r = 0; r < f.replicas; ++r) {
    v1::ServerConfig replica = shared;
    replica.set_role("serve");
    replica.set_trainer_address(c->admin()->address());
    RETURN_IF_ERROR(c->StartProcess(absl::StrCat("replica", r + 1), replica, server_binary,
                                    start_timeout));
  }
  return c;
}

absl::Status SimCluster::StartProcess(const std::string& name, v1::ServerConfig config,
                                      const std::string& server_binary, absl::Duration start_timeout) {
  // One server keeps today's layout (the data folder itself); a cluster a subfolder each.
  const std::string dir = name == "server" ? data_dir_ : absl::StrCat(data_dir_, "/", name);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  config.set_data_dir(dir);
  launch::ServerProcess::Options so;
  so.binary = server_binary;
  so.config = std::move(config);
  so.config_path = absl::StrCat(dir, "/server.textproto");
  so.config_comment = kConfigComment;
  so.stderr_path = absl::StrCat(dir, "/server.log");
  so.start_timeout = start_timeout;
  absl::StatusOr<std::unique_ptr<launch::ServerProcess>> p = launch::ServerProcess::Start(so);
  if (!p.ok()) return absl::Status(p.status().code(), absl::StrCat(name, ": ", p.status().message()));
  names_.push_back(name);
  processes_.push_back(std::move(*p));
  return absl::OkStatus();
}

std::vector<launch::ServerProcess*> SimCluster::serving() const {
  std::vector<launch::ServerProcess*> out;
  for (size_t i = processes_.size() == 1 ? 0 : 1; i < processes_.size(); ++i) {
    out.push_back(processes_[i].get());
  }
  return out;
}

std::string SimCluster::Died() {
  for (size_t i = 0; i < processes_.size(); ++i) {
    if (!processes_[i]->Running()) {
      const std::string last = processes_[i]->LastStderrLine();
      return absl::StrCat(names_[i], " died", last.empty() ? "" : ": ", last);
    }
  }
  return "";
}

std::string SimCluster::Describe() const {
  std::string out;
  for (size_t i = 0; i < processes_.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : "; ", processes_.size() == 1 ? "optower-server" : names_[i],
                    " pid ", processes_[i]->pid(), " on ", processes_[i]->address());
  }
  if (!pg_dir_.empty()) absl::StrAppend(&out, "; PostgreSQL in ", pg_dir_);
  return out;
}

absl::Status SimCluster::Stop() {
  absl::Status first;
  for (size_t i = processes_.size(); i-- > 0;) {
    absl::Status s = processes_[i]->Stop(absl::Seconds(60));
    if (first.ok() && !s.ok()) first = absl::Status(s.code(), absl::StrCat(names_[i], ": ", s.message()));
  }
  processes_.clear();
  absl::Status db = StopDatabase();
  return first.ok() ? db : first;
}

absl::Status SimCluster::StopDatabase() {
  if (pg_dir_.empty()) return absl::OkStatus();
  const std::string cmd = absl::StrCat("'", ScriptPath("pg_test_server.sh"), "' stop '", pg_dir_,
                                       "' >/dev/null 2>&1");
  pg_dir_.clear();
  if (std::system(cmd.c_str()) != 0) return absl::InternalError(absl::StrCat("failed: ", cmd));
  return absl::OkStatus();
}

SimCluster::~SimCluster() {
  processes_.clear();  // ServerProcess's destructor kills
  StopDatabase().IgnoreError();
}

}  // namespace optower::cli::sim
