// MetricsHttpServer: a minimal HTTP/1.1 server for Prometheus scrapes, on its own port and thread.
//
//   GET /metrics (or HEAD; a query string is ignored) -> 200, Content-Type
//       "text/plain; version=0.0.4", the body from `render` (MetricsRegistry::Render);
//   another path -> 404; another method on /metrics -> 405; a malformed request line -> 400;
//   a request head larger than max_request_bytes -> 431.
// Every response carries Content-Length and "Connection: close", and the connection is closed after
// it (no keep-alive, no request bodies). It is meant for a scraper every few seconds, not for
// traffic, but a slow or hostile client must not stall it:
//   - each connection has one total deadline, request_deadline, for reading the request head and
//     writing the response (a client trickling a byte every few seconds is cut off when it
//     passes, not after every read);
//   - max_connections connections are served at once, each on a thread of a fixed pool; up to
//     max_pending more wait for a thread, and a connection beyond that gets "503 Service
//     Unavailable" at once and is closed;
//   - Stop wakes every thread (a connection in progress is abandoned) and joins them, so it is
//     bounded by the time one render or one send takes, never by a client.
//
// No authentication: keep the port on an internal network (docs/METRICS.md); nothing secret is
// exported. The server's default host is 127.0.0.1 (ServerConfig.metrics_host).
//
// Thread safety: Start and Stop may be called from any thread; `render` runs on the pool's threads
// (possibly concurrently) and must be thread-safe with respect to whatever it reads. Stop (also
// run by the destructor) is idempotent.
#ifndef OPTOWER_SERVER_METRICS_HTTP_SERVER_H_
#define OPTOWER_SERVER_METRICS_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace optower::server {

struct MetricsHttpServerOptions {
  std::string host = "127.0.0.1";  // an IPv4/IPv6 literal or a name; "0.0.0.0" = every interface
  int port = 0;                    // 0 = a free port (see port())
  size_t max_request_bytes = 8192; // the request line + headers
  // The whole exchange of one connection: reading the request head and writing the response.
  absl::Duration request_deadline = absl::Seconds(5);
  int max_connections = 4;  // served at once (the thread pool's size), >= 1
  int max_pending = 16;     // accepted connections waiting for a thread; 503 beyond
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

  // Stops accepting, abandons the connections in progress, closes the sockets, joins the threads.
  // Idempotent.
  void Stop();

 private:
  MetricsHttpServer(MetricsHttpServerOptions options, std::function<std::string()> render)
      : options_(std::move(options)), render_(std::move(render)) {}
  void AcceptLoop();
  void WorkerLoop();
  void Serve(int fd);
  // Waits until `fd` has `events` or the deadline passes or Stop is called; false for the latter
  // two (and for errors).
  bool WaitFor(int fd, short events, absl::Time deadline) const;

  const MetricsHttpServerOptions options_;
  const std::function<std::string()> render_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};  // a pipe: Stop writes (and never reads), every thread polls it
  int port_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;

  absl::Mutex mu_;
  std::deque<int> pending_ ABSL_GUARDED_BY(mu_);  // accepted fds waiting for a worker
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

// Exposed for tests: the response (status line, headers, body) to the request head `request`
// (everything up to and including the blank line).
std::string MetricsHttpResponse(const std::string& request,
                                const std::function<std::string()>& render);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_METRICS_HTTP_SERVER_H_
