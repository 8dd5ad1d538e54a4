#include "server/metrics_http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

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

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // error or timeout (SO_SNDTIMEO)
    sent += static_cast<size_t>(n);
  }
  return true;
}

void SetTimeouts(int fd, absl::Duration timeout) {
  const timeval tv = absl::ToTimeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
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
  server->thread_ = std::thread([s = server.get()] { s->Loop(); });
  return server;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (thread_.joinable()) {
    const char byte = 1;
    while (::write(wake_fds_[1], &byte, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &wake_fds_[0], &wake_fds_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void MetricsHttpServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    const int n = ::poll(fds, 2, /*timeout=*/-1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;  // Stop()
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // e.g. the client gave up already (ECONNABORTED)
    Serve(fd);
    ::close(fd);
  }
}

void MetricsHttpServer::Serve(int fd) {
  SetTimeouts(fd, options_.io_timeout);
  std::string request;
  char buf[2048];
  bool too_large = false;
  while (request.find("\r\n\r\n") == std::string::npos) {
    if (request.size() > options_.max_request_bytes) {
      too_large = true;
      break;
    }
    // Wait for input or Stop(): a client that sends nothing never holds up a shutdown.
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    const int ready =
        ::poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(options_.io_timeout)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0 || fds[1].revents != 0) return;  // error, io_timeout, or Stop()
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed or error before a complete request
    request.append(buf, static_cast<size_t>(n));
  }
  too_large = too_large || request.find("\r\n\r\n") > options_.max_request_bytes;
  SendAll(fd, too_large ? PlainError(431, "Request Header Fields Too Large")
                        : MetricsHttpResponse(request, render_));
  // Half-close, then read what the client still sends (briefly): closing with unread input would
  // reset the connection and could discard the response before the client read it.
  ::shutdown(fd, SHUT_WR);
  SetTimeouts(fd, absl::Milliseconds(100));
  for (size_t drained = 0; drained < 4 * options_.max_request_bytes + 65536;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
}

}  // namespace optower::server
