// The optower-server processes `optower simulate` runs (docs/SIMULATION.md, docs/SCALING.md):
//   --backend=sqlite (default): one server (role all) in the data folder;
//   --backend=postgres: a PostgreSQL database (--pg-dsn-file's, or a throwaway server started with
//     scripts/pg_test_server.sh in <data>/pg and stopped at the end), one trainer (role=train) and
//     --replicas serving replicas (role=serve), each in its own subfolder <data>/<name>, all on
//     loopback and sharing the database.
// Thread safety: one thread.
#ifndef OPTOWER_CLI_SIMULATE_CLUSTER_H_
#define OPTOWER_CLI_SIMULATE_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/simulate_flags.h"
#include "launch/server_process.h"
#include "optower/v1/optower.pb.h"

namespace optower::cli::sim {

class SimCluster {
 public:
  // `config`: the server configuration (data_dir and items_path set to the data folder's).
  static absl::StatusOr<std::unique_ptr<SimCluster>> Start(const SimFlags& f,
                                                           const std::string& server_binary,
                                                           const v1::ServerConfig& config,
                                                           const std::string& data_dir,
                                                           absl::Duration start_timeout);
  ~SimCluster();  // kills what still runs; stops the throwaway PostgreSQL

  // The processes that take Retrieve/Feedback, and the one that trains.
  std::vector<launch::ServerProcess*> serving() const;
  launch::ServerProcess* admin() const { return processes_.front().get(); }
  // Graceful stop of every process (replicas first, the trainer last), then the throwaway database.
  absl::Status Stop();
  // Empty while all run; else "<name> died: <its last stderr line>".
  std::string Died();
  // "optower-server pid P on ADDR" per process, for the start-up line.
  std::string Describe() const;

 private:
  SimCluster() = default;
  absl::Status StartProcess(const std::string& name, v1::ServerConfig config,
                            const std::string& server_binary, absl::Duration start_timeout);
  absl::Status StopDatabase();

  std::string data_dir_;
  std::string pg_dir_;  // the throwaway PostgreSQL's folder; "" when none
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<launch::ServerProcess>> processes_;  // [0] = trainer (or the one)
};

}  // namespace optower::cli::sim

#endif  // OPTOWER_CLI_SIMULATE_CLUSTER_H_
