// Header-only test helper: an optower-server child process (the real binary) started through the
// launch library (launch/server_process.h), with flags and extra environment variables, ready once
// it printed its "listening on" line. For tests that kill, restart or run two servers
// (tests/store_crash_test.cc). Header-only like serving_fixture.h: it needs the server binary, which
// only the serving tests depend on.
#ifndef OPTOWER_TESTS_TESTING_SERVER_PROCESS_H_
#define OPTOWER_TESTS_TESTING_SERVER_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/optower_client.h"
#include "gtest/gtest.h"
#include "launch/server_process.h"
#include "tests/testing/paths.h"

namespace optower::testutil {

inline std::string ServerBinaryPath() { return BinaryDir() + "/server/optower-server"; }

using ServerProcess = launch::ServerProcess;

// Starts ServerBinaryPath() with `flags`; stderr is appended to `stderr_path`; `extra_env` entries
// ("NAME=value") are added to this process's environment (overriding same-named ones).
// Unavailable (with the last line it printed on stderr) if it exits or is not ready within
// `timeout`; NotFound if the binary is missing (build the optower-server target first).
inline absl::StatusOr<std::unique_ptr<ServerProcess>> StartServerProcess(
    const std::vector<std::string>& flags, const std::string& stderr_path,
    const std::vector<std::string>& extra_env = {}, absl::Duration timeout = absl::Seconds(60)) {
  ServerProcess::Options options;
  options.binary = ServerBinaryPath();
  options.args = flags;
  options.stderr_path = stderr_path;
  options.extra_env = extra_env;
  options.start_timeout = timeout;
  return ServerProcess::Start(options);
}

// A client of the server at `address` whose calls default to `deadline`; nullptr (and a test
// failure) if the channel cannot be made.
inline std::unique_ptr<client::OptowerClient> ConnectClient(const std::string& address,
                                                            absl::Duration deadline) {
  client::ClientOptions options;
  options.address = address;
  options.default_deadline = deadline;
  absl::StatusOr<std::unique_ptr<client::OptowerClient>> c = client::OptowerClient::Connect(options);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

// A small, fast trainer, for tests where the point is the publish (or the failover), not the model.
inline void SetFastTrainer(v1::TrainerConfig* trainer) {
  trainer->set_min_events(50);
  trainer->set_min_holdout(10);
  trainer->set_epochs(2);
  trainer->set_reward_model_epochs(2);
  trainer->add_hidden(8);
  trainer->set_embedding_dim(4);
  trainer->set_threads(1);
}

}  // namespace optower::testutil

#endif  // OPTOWER_TESTS_TESTING_SERVER_PROCESS_H_
