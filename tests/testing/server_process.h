// Header-only test helper: an optower-server child process (the real binary), started with flags and
// extra environment variables, ready once it printed its "listening on" line. For tests that kill,
// restart or run two servers (tests/store_crash_test.cc). Header-only like serving_fixture.h: it needs
// the server binary, which only the serving tests depend on.
#ifndef OPTOWER_TESTS_TESTING_SERVER_PROCESS_H_
#define OPTOWER_TESTS_TESTING_SERVER_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/optower_client.h"
#include "gtest/gtest.h"
#include "tests/testing/paths.h"

extern char** environ;

namespace optower::testutil {

inline std::string ServerBinaryPath() { return BinaryDir() + "/server/optower-server"; }

class ServerProcess {
 public:
  // Starts the server with `flags`; stderr is appended to `stderr_path`; `extra_env` entries
  // ("NAME=value") are added to this process's environment (overriding same-named ones).
  // Unavailable (with what it printed) if it exits or is not ready within `timeout`.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& flags, const std::string& stderr_path,
      const std::vector<std::string>& extra_env = {},
      absl::Duration timeout = absl::Seconds(60)) {
    std::vector<std::string> args = {ServerBinaryPath()};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings = extra_env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry(*e);
      const std::string name = entry.substr(0, entry.find('='));
      bool overridden = false;
      for (const std::string& x : extra_env) overridden |= absl::StartsWith(x, name + "=");
      if (!overridden) env_strings.push_back(entry);
    }
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe2");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      return absl::NotFoundError(absl::StrCat(argv[0], ": ", std::strerror(rc),
                                              " (build the optower-server target first)"));
    }
    std::unique_ptr<ServerProcess> p(new ServerProcess(pid, out[0]));
    const absl::Time deadline = absl::Now() + timeout;
    std::string text;
    while (absl::Now() < deadline) {
      struct pollfd fd = {out[0], POLLIN, 0};
      if (::poll(&fd, 1, 200) <= 0) continue;
      char buf[512];
      const ssize_t n = ::read(out[0], buf, sizeof(buf));
      if (n <= 0) break;  // the child exited
      text.append(buf, static_cast<size_t>(n));
      const size_t at = text.find("listening on ");
      const size_t eol = at == std::string::npos ? at : text.find('\n', at);
      if (eol != std::string::npos) {
        p->address_ = text.substr(at + 13, eol - at - 13);
        return p;
      }
    }
    return absl::UnavailableError(absl::StrCat("optower-server did not start; stdout: ", text));
  }

  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
    ::close(stdout_fd_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }
  void Signal(int sig) { ::kill(pid_, sig); }
  // Blocks until the child ends; the raw wait status.
  int Wait() {
    int status = 0;
    if (pid_ > 0) {
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
    }
    return status;
  }
  // Waits up to `timeout` for the child to end: true and `*status` set if it did.
  bool WaitFor(absl::Duration timeout, int* status) {
    const absl::Time deadline = absl::Now() + timeout;
    while (pid_ > 0) {
      const pid_t r = ::waitpid(pid_, status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return true;
      }
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

 private:
  ServerProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  pid_t pid_;
  int stdout_fd_;
  std::string address_;
};

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

}  // namespace optower::testutil

#endif  // OPTOWER_TESTS_TESTING_SERVER_PROCESS_H_
