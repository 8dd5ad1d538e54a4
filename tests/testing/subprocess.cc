#include "tests/testing/subprocess.h"

#include "tests/testing/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "launch/environment.h"

namespace optower::testutil {
namespace {

double NowSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Closes the fds it owns on scope exit, so every early return is clean.
struct Fds {
  int fd[8];
  Fds() { std::fill(fd, fd + 8, -1); }
  ~Fds() {
    for (int& f : fd) Close(f);
  }
  static void Close(int& f) {
    if (f >= 0) ::close(f);
    f = -1;
  }
};

}  // namespace

int SubprocessResult::ErrLineCount() const {
  int lines = static_cast<int>(std::count(err.begin(), err.end(), '\n'));
  if (!err.empty() && err.back() != '\n') ++lines;
  return lines;
}

absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                               const SubprocessOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("RunSubprocess: argv is empty");
  // A child that exits without reading its stdin must not kill the test with SIGPIPE.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { ::signal(SIGPIPE, SIG_IGN); });

  // Everything the child needs is built before fork(): between fork and exec only
  // async-signal-safe calls are allowed (the test process may have other threads).
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env = launch::MergedEnvironment(options.extra_env);
  std::vector<char*> cenv;
  for (std::string& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  const char* dir = options.working_dir.empty() ? nullptr : options.working_dir.c_str();

  Fds p;  // [0,1] stdin, [2,3] stdout, [4,5] stderr, [6,7] exec-error report
  for (int i = 0; i < 4; ++i)
    if (::pipe2(p.fd + 2 * i, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");

  const pid_t pid = ::fork();
  if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    ::dup2(p.fd[0], 0);
    ::dup2(p.fd[3], 1);
    ::dup2(p.fd[5], 2);
    int err = 0;
    if (dir != nullptr && ::chdir(dir) != 0) {
      err = errno;
    } else {
      ::execve(cargv[0], cargv.data(), cenv.data());
      err = errno;
    }
    ssize_t ignored = ::write(p.fd[7], &err, sizeof(err));
    (void)ignored;
    ::_exit(127);
  }

  Fds::Close(p.fd[0]);
  Fds::Close(p.fd[3]);
  Fds::Close(p.fd[5]);
  Fds::Close(p.fd[7]);
  // The report pipe closes on a successful exec (O_CLOEXEC) or carries errno on failure.
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(p.fd[6], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return absl::ErrnoToStatus(exec_errno, absl::StrCat("exec(", argv[0], ")"));
  }

  SubprocessResult result;
  size_t written = 0;
  if (options.stdin_data.empty()) {
    Fds::Close(p.fd[1]);
  } else {
    ::fcntl(p.fd[1], F_SETFL, ::fcntl(p.fd[1], F_GETFL) | O_NONBLOCK);
  }
  const double deadline = NowSeconds() + options.timeout_seconds;
  char buf[1 << 16];
  while (p.fd[2] >= 0 || p.fd[4] >= 0) {
    struct pollfd fds[3];
    int nfds = 0;
    int* owners[3];
    if (p.fd[1] >= 0) {
      fds[nfds] = {p.fd[1], POLLOUT, 0};
      owners[nfds++] = &p.fd[1];
    }
    for (int* f : {&p.fd[2], &p.fd[4]}) {
      if (*f < 0) continue;
      fds[nfds] = {*f, POLLIN, 0};
      owners[nfds++] = f;
    }
    const double left = deadline - NowSeconds();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    const int ready = ::poll(fds, nfds, static_cast<int>(std::min(left, 1.0) * 1000) + 1);
    if (ready < 0 && errno != EINTR) {
      ::kill(pid, SIGKILL);
      return absl::ErrnoToStatus(errno, "poll");
    }
    for (int i = 0; i < nfds && ready > 0; ++i) {
      if (fds[i].revents == 0) continue;
      int& fd = *owners[i];
      if (fd == p.fd[1]) {
        const std::string& data = options.stdin_data;
        ssize_t w = ::write(fd, data.data() + written, data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == data.size()) Fds::Close(fd);
        continue;
      }
      ssize_t r = ::read(fd, buf, sizeof(buf));
      if (r > 0) {
        (fd == p.fd[2] ? result.out : result.err).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        Fds::Close(fd);
      }
    }
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::ErrnoToStatus(errno, "waitpid");
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

std::string OptowerBinaryPath() { return BinaryDir() + "/cli/optower"; }

absl::StatusOr<SubprocessResult> RunOptower(const std::vector<std::string>& args,
                                            const SubprocessOptions& options) {
  std::vector<std::string> argv = {OptowerBinaryPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunSubprocess(argv, options);
}

std::string PyJson(const std::string& json, const std::string& expression) {
  SubprocessOptions options;
  options.stdin_data = json;
  options.timeout_seconds = 30;
  absl::StatusOr<SubprocessResult> r = RunSubprocess(
      {"/usr/bin/python3", "-c",
       absl::StrCat("import json,sys\nd=json.loads(sys.stdin.read())\nr=(", expression, ")\nprint(r)")},
      options);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << "not JSON: " << json << "\n" << r->err;
  return std::string(absl::StripTrailingAsciiWhitespace(r->out));
}

}  // namespace optower::testutil
