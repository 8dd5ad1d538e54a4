// MetricsHttpServer: a minimal HTTP/1.1 server for Prometheus scrapes, on its own port and thread.
//
//   GET /metrics (or HEAD; a query string is ignored) -> 200, Content-Type
//       "text/plain; version=0.0.4", the body from `render` (MetricsRegistry::Render);
//   another path -> 404; another method on /metrics -> 405; a malformed request line -> 400;
//   a request head larger than max_request_bytes -> 431.
// Every response carries Content-Length and "Connection: close", and the connection is closed after
// it (no keep-alive, no request bodies). It is meant for a scraper every few seconds, not for
// traffic: connections are served one at a time on the server's thread, and a client that sends
// nothing is dropped after io_timeout, which bounds how long it can delay the next scrape.
//
// No authentication: keep the port on an internal network (docs/METRICS.md); nothing secret is
// exported.
//
// Thread safety: Start and Stop may be called from any thread; `render` runs on the server's
// thread and must be thread-safe with respect to whatever it reads. Stop (also run by the
// destructor) wakes the thread, finishes the response in progress, and joins.
#ifndef OPTOWER_SERVER_METRICS_HTTP_SERVER_H_
#define OPTOWER_SERVER_METRICS_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace optower::server {

struct MetricsHttpServerOptions {
  std::string host = "127.0.0.1";  // an IPv4/IPv6 literal or a name; "0.0.0.0" = every interface
  int port = 0;                    // 0 = a free port (see port())
  size_t max_request_bytes = 8192; // the request line + headers
  absl::Duration io_timeout = absl::Seconds(5);  // per read / write on a connection
};

class MetricsHttpServer {
 public:
  // Binds, listens and starts the thread. InvalidArgument naming metrics_port for a port outside
  // [0, 65535] or an unresolvable host; Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const MetricsHttpServerOptions& options, std::function<std::string()> render);

  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }  // the bound port (the chosen one when options.port was 0)

  // Stops accepting, closes the socket, joins the thread. Idempotent.
  void Stop();

 private:
  MetricsHttpServer(MetricsHttpServerOptions options, std::function<std::string()> render)
      : options_(std::move(options)), render_(std::move(render)) {}
  void Loop();
  void Serve(int fd);

  const MetricsHttpServerOptions options_;
  const std::function<std::string()> render_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};  // a pipe: Stop writes, Loop polls the read end
  int port_ = 0;
  std::thread thread_;
};

// Exposed for tests: the response (status line, headers, body) to the request head `request`
// (everything up to and including the blank line).
std::string MetricsHttpResponse(const std::string& request,
                                const std::function<std::string()>& render);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_METRICS_HTTP_SERVER_H_
