#include "cli/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

extern char** environ;

namespace optower::cli {
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

}  // namespace

absl::StatusOr<std::string> FindServerBinary(const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    if (!IsExecutableFile(explicit_path)) {
      return absl::NotFoundError(
          absl::StrCat("--server-binary=", explicit_path, ": not an executable file"));
    }
    return explicit_path;
  }
  const std::string dir = SelfDir();
  const std::string candidates[] = {dir + "/../server/optower-server", dir + "/optower-server"};
  for (const std::string& c : candidates) {
    if (IsExecutableFile(c)) return c;
  }
  return absl::NotFoundError(absl::StrCat("optower-server not found at ", candidates[0], " or ",
                                          candidates[1], " (build it, or pass --server-binary)"));
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const Options& options) {
  if (options.binary.empty()) return absl::InvalidArgumentError("ServerProcess: empty binary");
  if (options.stderr_path.empty()) {
    return absl::InvalidArgumentError("ServerProcess: empty stderr_path");
  }
  // Everything the child needs is prepared before fork(): between fork and exec it only makes
  // async-signal-safe calls (the parent may have other threads).
  std::vector<std::string> args = {options.binary};
  args.insert(args.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int err_fd = ::open(options.stderr_path.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (err_fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open ", options.stderr_path, ": ", std::strerror(errno)));
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(err_fd);
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(e)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(err_fd);
    ::close(out[0]);
    ::close(out[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(e)));
  }
  if (pid == 0) {
    // Child. Dies with the parent (thread) that started it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // Signals blocked in the parent stay blocked across exec; the server blocks what it needs.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(out[1], 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(127);
    ::execve(argv[0], argv.data(), environ);
    static const char kMsg[] = "optower-server: exec failed\n";
    (void)!::write(2, kMsg, sizeof(kMsg) - 1);
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err_fd);
  std::unique_ptr<ServerProcess> p(new ServerProcess(pid, out[0], options.stderr_path));
  const absl::Time deadline = absl::Now() + options.start_timeout;
  std::string text;
  while (absl::Now() < deadline) {
    struct pollfd fd = {out[0], POLLIN, 0};
    const int ready = ::poll(&fd, 1, 200);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    char buf[512];
    const ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the child closed stdout: it exited
    text.append(buf, static_cast<size_t>(n));
    const size_t at = text.find("listening on ");
    const size_t eol = at == std::string::npos ? at : text.find('\n', at);
    if (eol != std::string::npos) {
      p->address_ = std::string(
          absl::StripAsciiWhitespace(text.substr(at + 13, eol - at - 13)));
      return p;
    }
  }
  // Give a dying child a moment so that its last stderr line is there to report.
  for (int i = 0; i < 20 && p->Running(); ++i) absl::SleepFor(absl::Milliseconds(50));
  const std::string last = p->LastStderrLine();
  p->Kill();
  return absl::UnavailableError(absl::StrCat(
      "optower-server did not start",
      absl::Now() >= deadline ? absl::StrCat(" within ", absl::FormatDuration(options.start_timeout))
                              : std::string(),
      last.empty() ? std::string() : absl::StrCat(": ", last)));
}

ServerProcess::~ServerProcess() {
  Kill();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

bool ServerProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return r == 0;
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

absl::Status ServerProcess::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("optower-server is not running");
  ::kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      Kill();
      return absl::DeadlineExceededError(absl::StrCat(
          "optower-server did not stop within ", absl::FormatDuration(timeout),
          " of SIGTERM (killed)"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  pid_ = -1;
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

}  // namespace optower::cli
