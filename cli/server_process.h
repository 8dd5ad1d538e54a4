// ServerProcess: an `optower-server` child process owned by a CLI command (`optower simulate`).
//
//   ServerProcess::Options o;
//   o.binary = FindServerBinary("");                  // next to the optower binary
//   o.args = {"--data_dir", dir, "--items", items, "--dim_context", "5", "--port", "0"};
//   o.stderr_path = dir + "/server.log";
//   ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> server, ServerProcess::Start(o));
//   ... talk to server->address() ...
//   RETURN_IF_ERROR(server->Stop(absl::Seconds(30)));  // SIGTERM, wait, exit status 0 expected
//
// Start() forks/execs the binary (stdout on a pipe, stderr appended to `stderr_path`) and returns once
// the child printed "optower-server listening on HOST:PORT" (with `--port 0` the OS picks the port,
// which is why the line is parsed). The child gets PR_SET_PDEATHSIG(SIGKILL), so it never outlives
// the command even if the command itself is killed. Destroying a ServerProcess that was not stopped
// kills the child (SIGKILL) and reaps it: every error path of a command ends the server.
//
// Thread safety: one object belongs to one thread (the one that started it: PR_SET_PDEATHSIG is tied
// to the forking thread).
#ifndef OPTOWER_CLI_SERVER_PROCESS_H_
#define OPTOWER_CLI_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace optower::cli {

// `explicit_path` if non-empty (NotFound unless it is an executable file), else
// `<dir of /proc/self/exe>/../server/optower-server` (the build tree's layout), else
// `<dir of /proc/self/exe>/optower-server` (an installed layout). NotFound naming the paths tried.
absl::StatusOr<std::string> FindServerBinary(const std::string& explicit_path);

class ServerProcess {
 public:
  struct Options {
    std::string binary;             // path of optower-server
    std::vector<std::string> args;  // flags (argv[1..])
    std::string stderr_path;        // the child's stderr is appended here (required)
    absl::Duration start_timeout = absl::Seconds(120);  // until the "listening on" line
  };

  // Unavailable (with the last line of the child's stderr) if the child exits or stays silent
  // past start_timeout; the child is then killed.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const Options& options);

  ~ServerProcess();  // Kill() if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  pid_t pid() const { return pid_; }

  // Graceful stop: SIGTERM, then waits up to `timeout` (SIGKILL after it). OK iff the child exited
  // with status 0 in time; otherwise Internal naming the exit status / signal and the last line
  // of its stderr.
  absl::Status Stop(absl::Duration timeout);
  // SIGKILL and reap (idempotent).
  void Kill();
  // True while the child has not been reaped and has not exited (non-blocking check).
  bool Running();

  // The last non-empty line the child wrote to stderr ("" if none).
  std::string LastStderrLine() const;

 private:
  ServerProcess(pid_t pid, int stdout_fd, std::string stderr_path)
      : pid_(pid), stdout_fd_(stdout_fd), stderr_path_(std::move(stderr_path)) {}

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stderr_path_;
  std::string address_;
};

}  // namespace optower::cli

#endif  // OPTOWER_CLI_SERVER_PROCESS_H_
