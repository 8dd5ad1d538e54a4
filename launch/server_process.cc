#include "launch/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "launch/environment.h"
#include "launch/server_config_text.h"

namespace optower::launch {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string SelfDir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string Describe(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status), " (", strsignal(WTERMSIG(status)),
                        ")");
  }
  return absl::StrCat("ended with wait status ", status);
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Everything the child needs, prepared before fork(): between fork and exec the child only makes
// async-signal-safe calls (the parent may have other threads).
struct ChildSetup {
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
  int err_fd = -1;
  int out[2] = {-1, -1};     // the child's stdout
  int report[2] = {-1, -1};  // the exec's errno, if it fails (closed by a successful exec)
  ~ChildSetup() {
    for (int* fd : {&err_fd, &out[0], &out[1], &report[0], &report[1]}) CloseFd(*fd);
  }
};

absl::Status Prepare(const ServerProcess::Options& options, ChildSetup* setup) {
  setup->args = {options.binary};
  if (options.config.has_value()) {
    setup->args.insert(setup->args.end(), {"--config", options.config_path});
  }
  setup->args.insert(setup->args.end(), options.args.begin(), options.args.end());
  setup->argv = CStrings(setup->args);
  setup->env = MergedEnvironment(options.extra_env);
  setup->envp = CStrings(setup->env);
  setup->err_fd =
      ::open(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (setup->err_fd < 0)
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", options.stderr_path));
  if (::pipe2(setup->out, O_CLOEXEC) != 0 || ::pipe2(setup->report, O_CLOEXEC) != 0) {
    return absl::ErrnoToStatus(errno, "pipe2");
  }
  return absl::OkStatus();
}

// In the child: never returns.
[[noreturn]] void ExecChild(const ChildSetup& setup, pid_t parent) {
  // Dies with the parent (thread) that started it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  // Signals blocked in the parent stay blocked across exec; the server blocks what it needs.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int err = 0;
  if (::dup2(setup.out[1], 1) < 0 || ::dup2(setup.err_fd, 2) < 0) {
    err = errno;
  } else {
    ::execve(setup.argv[0], setup.argv.data(), setup.envp.data());
    err = errno;
  }
  (void)!::write(setup.report[1], &err, sizeof(err));
  ::_exit(127);
}

// The errno the child reported if its exec failed, 0 if the exec succeeded (the pipe closed).
int ReadExecErrno(int fd) {
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(fd, &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof(exec_errno)) ? exec_errno : 0;
}

}  // namespace

absl::StatusOr<std::string> FindServerBinary(const std::string& explicit_path,
                                             const std::string& flag) {
  if (!explicit_path.empty()) {
    if (!IsExecutableFile(explicit_path)) {
      return absl::NotFoundError(
          absl::StrCat(flag, "=", explicit_path, ": not an executable file"));
    }
    return explicit_path;
  }
  const std::string dir = SelfDir();
  const std::string candidates[] = {dir + "/../server/optower-server", dir + "/optower-server"};
  for (const std::string& c : candidates) {
    if (IsExecutableFile(c)) return c;
  }
  return absl::NotFoundError(absl::StrCat("optower-server not found at ", candidates[0], " or ",
                                          candidates[1], " (build it, or pass ", flag, ")"));
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const Options& options) {
  if (options.binary.empty()) return absl::InvalidArgumentError("ServerProcess: empty binary");
  if (options.stderr_path.empty()) {
    return absl::InvalidArgumentError("ServerProcess: empty stderr_path");
  }
  if (options.config.has_value()) {
    if (options.config_path.empty()) {
      return absl::InvalidArgumentError("ServerProcess: a config needs a config_path");
    }
    absl::Status written =
        WriteServerConfig(*options.config, options.config_path, options.config_comment);
    if (!written.ok()) return written;
  }
  ChildSetup setup;
  if (absl::Status s = Prepare(options, &setup); !s.ok()) return s;
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
  if (pid == 0) ExecChild(setup, parent);
  CloseFd(setup.out[1]);
  CloseFd(setup.report[1]);
  CloseFd(setup.err_fd);
  std::unique_ptr<ServerProcess> p(new ServerProcess(pid, setup.out[0], options.stderr_path));
  setup.out[0] = -1;  // owned by p
  if (const int exec_errno = ReadExecErrno(setup.report[0]); exec_errno != 0) {
    p->Wait();
    return absl::ErrnoToStatus(exec_errno, absl::StrCat("exec ", options.binary));
  }
  const absl::Time deadline = absl::Now() + options.start_timeout;
  if (p->AwaitListening(deadline)) return p;
  // Give a dying child a moment so that its last stderr line is there to report.
  for (int i = 0; i < 20 && p->Running(); ++i) absl::SleepFor(absl::Milliseconds(50));
  const std::string last = p->LastStderrLine();
  p->Kill();
  return absl::UnavailableError(
      absl::StrCat("optower-server did not start",
                   absl::Now() >= deadline
                       ? absl::StrCat(" within ", absl::FormatDuration(options.start_timeout))
                       : std::string(),
                   last.empty() ? std::string() : absl::StrCat(": ", last)));
}

bool ServerProcess::AwaitListening(absl::Time deadline) {
  static constexpr char kKey[] = "listening on ";
  std::string text;
  while (absl::Now() < deadline) {
    struct pollfd fd = {stdout_fd_, POLLIN, 0};
    const int ready = ::poll(&fd, 1, 200);
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    char buf[512];
    const ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // the child closed stdout: it exited
    text.append(buf, static_cast<size_t>(n));
    const size_t at = text.find(kKey);
    const size_t eol = at == std::string::npos ? at : text.find('\n', at);
    if (eol != std::string::npos) {
      const size_t from = at + sizeof(kKey) - 1;
      address_ = std::string(absl::StripAsciiWhitespace(text.substr(from, eol - from)));
      return true;
    }
  }
  return false;
}

ServerProcess::~ServerProcess() {
  Kill();
  CloseFd(stdout_fd_);
}

bool ServerProcess::TryReap() {
  if (pid_ <= 0) return true;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r < 0 && errno == ECHILD) {
    status = -1;  // reaped elsewhere: the status is unknown
  } else if (r != pid_) {
    return false;
  }
  status_ = status;
  pid_ = -1;
  return true;
}

bool ServerProcess::Running() { return !TryReap(); }

void ServerProcess::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ServerProcess::Wait() {
  if (pid_ > 0) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = status;
    pid_ = -1;
  }
  return status_;
}

bool ServerProcess::WaitFor(absl::Duration timeout, int* status) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!TryReap()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  *status = status_;
  return true;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  Wait();
}

int ServerProcess::TerminateImpl(absl::Duration timeout, bool* killed) {
  *killed = false;
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (WaitFor(timeout, &status)) return status;
  *killed = true;
  Kill();
  return status_;
}

int ServerProcess::Terminate(absl::Duration timeout) {
  bool killed = false;
  return TerminateImpl(timeout, &killed);
}

absl::Status ServerProcess::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("optower-server is not running");
  bool killed = false;
  const int status = TerminateImpl(timeout, &killed);
  if (killed) {
    return absl::DeadlineExceededError(absl::StrCat("optower-server did not stop within ",
                                                    absl::FormatDuration(timeout),
                                                    " of SIGTERM (killed)"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  const std::string last = LastStderrLine();
  return absl::InternalError(absl::StrCat("optower-server ", Describe(status), " on SIGTERM",
                                          last.empty() ? "" : ": ", last));
}

std::string ServerProcess::LastStderrLine() const {
  std::ifstream in(stderr_path_);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!absl::StripAsciiWhitespace(line).empty()) last = line;
  }
  return last;
}

}  // namespace optower::launch
