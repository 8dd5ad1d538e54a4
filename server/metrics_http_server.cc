#include "server/metrics_http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace optower::server {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4";

std::string Response(int code, absl::string_view reason, absl::string_view content_type,
                     const std::string& body, bool head_only) {
  std::string out = absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", content_type,
                                 "\r\nContent-Length: ", body.size(),
                                 "\r\nConnection: close\r\n");
  if (code == 405) out += "Allow: GET, HEAD\r\n";
  out += "\r\n";
  if (!head_only) out += body;
  return out;
}

std::string PlainError(int code, absl::string_view reason) {
  return Response(code, reason, "text/plain; charset=utf-8", absl::StrCat(code, " ", reason, "\n"),
                  /*head_only=*/false);
}

}  // namespace

std::string MetricsHttpResponse(const std::string& request,
                                const std::function<std::string()>& render) {
  const absl::string_view head(request);
  const size_t eol = head.find("\r\n");
  const absl::string_view line = head.substr(0, eol);
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() ||
      !absl::StartsWith(parts[2], "HTTP/1.")) {
    return PlainError(400, "Bad Request");
  }
  absl::string_view path = parts[1];
  if (const size_t q = path.find('?'); q != absl::string_view::npos) path = path.substr(0, q);
  if (path != "/metrics") return PlainError(404, "Not Found");
  const bool head_only = parts[0] == "HEAD";
  if (parts[0] != "GET" && !head_only) return PlainError(405, "Method Not Allowed");
  return Response(200, "OK", kContentType, render(), head_only);
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const MetricsHttpServerOptions& options, std::function<std::string()> render) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_port=", options.port, ": must be in [0, 65535]"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(options.port);
  const int gai = ::getaddrinfo(options.host.empty() ? nullptr : options.host.c_str(),
                                port_text.c_str(), &hints, &found);
  if (gai != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics host '", options.host, "': cannot resolve it (", gai_strerror(gai), ")"));
  }
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(options, std::move(render)));
  int err = 0;
  for (addrinfo* a = found; a != nullptr && server->listen_fd_ < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // restart while in TIME_WAIT
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, /*backlog=*/16) != 0) {
      err = errno;
      ::close(fd);
      continue;
    }
    server->listen_fd_ = fd;
  }
  ::freeaddrinfo(found);
  if (server->listen_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("metrics_port=", options.port,
                                               ": cannot listen on ", options.host, " (",
                                               std::strerror(err), ")"));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(server->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  server->port_ = bound.ss_family == AF_INET6
                      ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (::pipe2(server->wake_fds_, O_CLOEXEC) != 0) {
    const int pipe_err = errno;
    ::close(server->listen_fd_);
    server->listen_fd_ = -1;
    return absl::InternalError(absl::StrCat("metrics server: pipe: ", std::strerror(pipe_err)));
  }
  if (options.max_connections < 1 || options.max_pending < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics server: max_connections=", options.max_connections, " (>= 1), max_pending=",
        options.max_pending, " (>= 0)"));
  }
  MetricsHttpServer* raw = server.get();
  raw->acceptor_ = std::thread([raw] { raw->AcceptLoop(); });
  for (int i = 0; i < options.max_connections; ++i) {
    raw->workers_.emplace_back([raw] { raw->WorkerLoop(); });
  }
  return server;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (acceptor_.joinable()) {
    // The byte stays in the pipe: every thread's poll sees it until the end.
    const char byte = 1;
    while (::write(wake_fds_[1], &byte, 1) < 0 && errno == EINTR) {
    }
    acceptor_.join();
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  {
    absl::MutexLock lock(&mu_);
    for (int fd : pending_) ::close(fd);
    pending_.clear();
  }
  for (int* fd : {&listen_fd_, &wake_fds_[0], &wake_fds_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

bool MetricsHttpServer::WaitFor(int fd, short events, absl::Time deadline) const {
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd fds[2] = {{fd, events, 0}, {wake_fds_[0], POLLIN, 0}};
    // Round up so that a sub-millisecond remainder does not spin.
    const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    const int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || fds[1].revents != 0) return false;  // error, or Stop()
    if (ready > 0) return true;  // readable/writable, or hung up (the next call says which)
  }
}

void MetricsHttpServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    const int n = ::poll(fds, 2, /*timeout=*/-1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;  // Stop()
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;  // e.g. the client gave up already (ECONNABORTED)
    {
      absl::MutexLock lock(&mu_);
      if (static_cast<int>(pending_.size()) < options_.max_pending) {
        pending_.push_back(fd);
        continue;
      }
    }
    // Every thread busy and the queue full: answer at once (the socket is non-blocking, so a
    // client that does not read cannot hold this thread) and close.
    const std::string busy = PlainError(503, "Service Unavailable");
    (void)::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
    ::close(fd);
  }
}

void MetricsHttpServer::WorkerLoop() {
  for (;;) {
    int fd = -1;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](MetricsHttpServer* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->pending_.empty();
          },
          this));
      if (stopping_) return;  // Stop closes what is still queued
      fd = pending_.front();
      pending_.pop_front();
    }
    Serve(fd);
    ::close(fd);
  }
}

void MetricsHttpServer::Serve(int fd) {
  // One deadline for the whole exchange, from the moment a thread takes the connection.
  const absl::Time deadline = absl::Now() + options_.request_deadline;
  std::string request;
  char buf[2048];
  bool too_large = false;
  while (request.find("\r\n\r\n") == std::string::npos) {
    if (request.size() > options_.max_request_bytes) {
      too_large = true;
      break;
    }
    if (!WaitFor(fd, POLLIN, deadline)) return;  // the deadline passed, or Stop()
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) return;  // closed or error before a complete request
    request.append(buf, static_cast<size_t>(n));
  }
  too_large = too_large || request.find("\r\n\r\n") > options_.max_request_bytes;
  const std::string response = too_large ? PlainError(431, "Request Header Fields Too Large")
                                         : MetricsHttpResponse(request, render_);
  for (size_t sent = 0; sent < response.size();) {
    const ssize_t n = ::send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!WaitFor(fd, POLLOUT, deadline)) return;  // a client that does not read
      continue;
    }
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
  // Half-close, then read what the client still sends, briefly and within a fixed total time:
  // closing with unread input would reset the connection and could discard the response before
  // the client read it.
  ::shutdown(fd, SHUT_WR);
  const absl::Time drain_deadline = std::min(deadline, absl::Now() + absl::Milliseconds(200));
  for (size_t drained = 0; drained < 4 * options_.max_request_bytes + 65536;) {
    if (!WaitFor(fd, POLLIN, drain_deadline)) break;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
}

}  // namespace optower::server
