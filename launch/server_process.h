// ServerProcess: an optower-server child process (the real binary), for `optower simulate`, the
// tests and the bench — the one place that forks/execs the server.
//
//   ServerProcess::Options o;
//   o.binary = server_binary;                       // e.g. from FindServerBinary
//   o.config = LoopbackServerConfig();              // optional: written to config_path, --config
//   o.config->set_data_dir(dir + "/data");
//   o.config_path = dir + "/server.textproto";
//   o.args = {"--epsilon=0.5"};                     // flags after --config (they override it)
//   o.stderr_path = dir + "/server.log";
//   ASSIGN_OR_RETURN(std::unique_ptr<ServerProcess> server, ServerProcess::Start(o));
//   ... talk to server->address() ("127.0.0.1:PORT") ...
//   RETURN_IF_ERROR(server->Stop(absl::Seconds(30)));  // SIGTERM, bounded wait, exit status 0
//
// Start() forks/execs the binary (stdout on a pipe, stderr appended to `stderr_path`, `extra_env`
// added to this process's environment) and returns once the child printed
// "optower-server listening on HOST:PORT" (with port 0 the OS picks the port, which is why the line
// is parsed). The child gets PR_SET_PDEATHSIG(SIGKILL), so it never outlives its parent even if the
// parent is killed. Destroying a ServerProcess that is still running kills the child (SIGKILL) and
// reaps it: every error path of a caller ends the server.
//
// Thread safety: one object belongs to one thread, the one that started it (PR_SET_PDEATHSIG is
// tied to the forking thread: the child is killed when that thread ends).
#ifndef OPTOWER_LAUNCH_SERVER_PROCESS_H_
#define OPTOWER_LAUNCH_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "optower/v1/optower.pb.h"

namespace optower::launch {

// `explicit_path` if non-empty (NotFound naming `flag`=path unless it is an executable file), else
// `<dir of /proc/self/exe>/../server/optower-server` (the build tree's layout), else
// `<dir of /proc/self/exe>/optower-server` (an installed layout). NotFound naming the paths tried
// and `flag` otherwise.
absl::StatusOr<std::string> FindServerBinary(const std::string& explicit_path,
                                             const std::string& flag);

class ServerProcess {
 public:
  struct Options {
    std::string binary;  // path of optower-server (required; PATH is not searched)
    // If set: written to `config_path` (ServerConfigText, after `config_comment`) and passed as
    // `--config config_path` before `args`.
    std::optional<v1::ServerConfig> config;
    std::string config_path;
    std::string config_comment;
    std::vector<std::string> args;       // flags (after --config; flags override the file)
    std::string stderr_path;             // the child's stderr is appended here (required)
    std::vector<std::string> extra_env;  // "NAME=value", added to (overriding) the environment
    absl::Duration start_timeout = absl::Seconds(120);  // until the "listening on" line
  };

  // Unavailable (with the last line of the child's stderr) if the child exits or stays silent past
  // start_timeout (the child is then killed); the exec's errno status (NotFound, PermissionDenied)
  // if the binary cannot be executed; InvalidArgument for missing options.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const Options& options);

  ~ServerProcess();  // Kill() if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& address() const { return address_; }  // "HOST:PORT" as the server printed it
  pid_t pid() const { return pid_; }                       // -1 once reaped

  // Graceful stop: SIGTERM, then waits up to `timeout` (SIGKILL and reap after it). OK iff the
  // child exited with status 0 in time; DeadlineExceeded if it had to be killed; otherwise Internal
  // naming the exit status / signal and the last line of its stderr. FailedPrecondition if already
  // reaped.
  absl::Status Stop(absl::Duration timeout);
  // Stop() returning the raw wait status (as waitpid gives it; a SIGKILL after the timeout shows as
  // WIFSIGNALED with SIGKILL); -1 if the child was already reaped.
  int Terminate(absl::Duration timeout);
  // SIGKILL and reap (idempotent).
  void Kill();
  // Sends `sig` to the child (no-op once reaped).
  void Signal(int sig);
  // Blocks until the child ends; its raw wait status (the stored one if it was already reaped).
  int Wait();
  // Waits up to `timeout` for the child to end: true and `*status` set if it did (also when it had
  // already been reaped).
  bool WaitFor(absl::Duration timeout, int* status);
  // True while the child has not exited (non-blocking; reaps it if it has).
  bool Running();

  // The last non-empty line the child wrote to stderr ("" if none).
  std::string LastStderrLine() const;

 private:
  ServerProcess(pid_t pid, int stdout_fd, std::string stderr_path)
      : pid_(pid), stdout_fd_(stdout_fd), stderr_path_(std::move(stderr_path)) {}
  // Reads the child's stdout until "listening on HOST:PORT\n" (sets address_) or EOF / deadline.
  bool AwaitListening(absl::Time deadline);
  // waitpid(WNOHANG): true (and the status stored) if the child was reaped.
  bool TryReap();
  // SIGTERM, waits up to `timeout`, SIGKILL after it; sets *killed when it had to.
  int TerminateImpl(absl::Duration timeout, bool* killed);

  pid_t pid_ = -1;
  int status_ = 0;  // wait status, once reaped
  int stdout_fd_ = -1;
  std::string stderr_path_;
  std::string address_;
};

}  // namespace optower::launch

#endif  // OPTOWER_LAUNCH_SERVER_PROCESS_H_
