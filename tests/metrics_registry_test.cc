// MetricsRegistry (server/metrics_registry.h): the Prometheus text format byte for byte, escaping,
// histogram buckets, registration errors, exact counts under concurrency; and the HTTP response of
// MetricsHttpServer (server/metrics_http_server.h) without sockets.
#include "server/metrics_registry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics_http_server.h"
#include "tests/testing/http_exchange.h"

namespace optower::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(MetricsRegistryTest, RendersCountersAndGaugesInTheTextFormat) {
  MetricsRegistry registry;
  absl::StatusOr<CounterFamily*> requests =
      registry.AddCounter("rpc_requests_total", "RPCs by method.", {"method", "code"});
  ASSERT_TRUE(requests.ok()) << requests.status();
  (*(*requests)->WithLabels({"Retrieve", "OK"}))->Increment(3);
  (*(*requests)->WithLabels({"Feedback", "OK"}))->Increment();
  absl::StatusOr<GaugeFamily*> depth = registry.AddGauge("queue_depth", "Queued events.");
  ASSERT_TRUE(depth.ok()) << depth.status();
  (*(*depth)->Unlabelled())->Set(2.5);

  EXPECT_EQ(registry.Render(),
            "# HELP rpc_requests_total RPCs by method.\n"
            "# TYPE rpc_requests_total counter\n"
            "rpc_requests_total{method=\"Feedback\",code=\"OK\"} 1\n"
            "rpc_requests_total{method=\"Retrieve\",code=\"OK\"} 3\n"
            "# HELP queue_depth Queued events.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth 2.5\n");
}

TEST(MetricsRegistryTest, FamilyWithoutChildrenWritesOnlyHelpAndType) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.AddCounter("x_total", "Nothing yet.", {"a"}).ok());
  EXPECT_EQ(registry.Render(), "# HELP x_total Nothing yet.\n# TYPE x_total counter\n");
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  absl::StatusOr<GaugeFamily*> g =
      registry.AddGauge("model_version", "Help with \\ and\nnewline and \"quotes\".", {"version"});
  ASSERT_TRUE(g.ok());
  (*(*g)->WithLabels({"a\"b\\c\nd"}))->Set(1);
  EXPECT_EQ(registry.Render(),
            "# HELP model_version Help with \\\\ and\\nnewline and \"quotes\".\n"
            "# TYPE model_version gauge\n"
            "model_version{version=\"a\\\"b\\\\c\\nd\"} 1\n");
  EXPECT_EQ(EscapeMetricText("\"", /*help=*/false), "\\\"");
  EXPECT_EQ(EscapeMetricText("\"", /*help=*/true), "\"");
}

TEST(MetricsRegistryTest, FormatsSpecialValues) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(42), "42");
  EXPECT_EQ(FormatMetricValue(-0.125), "-0.125");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(1e-7), "1e-07");
  EXPECT_EQ(FormatMetricValue(0.0001), "0.0001");
  EXPECT_EQ(FormatMetricValue(0.00025), "0.00025");
  EXPECT_EQ(FormatMetricValue(1e21), "1e+21");
  EXPECT_EQ(FormatMetricValue(1000000), "1000000");
  EXPECT_EQ(FormatMetricValue(-0.0), "0");
  EXPECT_EQ(FormatMetricValue(123.25), "123.25");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry registry;
  absl::StatusOr<HistogramFamily*> h =
      registry.AddHistogram("latency_seconds", "Latency.", {"method"}, {0.1, 0.5, 1});
  ASSERT_TRUE(h.ok()) << h.status();
  Histogram* retrieve = *(*h)->WithLabels({"Retrieve"});
  for (double v : {0.05, 0.1, 0.3, 0.7, 2.0}) retrieve->Observe(v);  // 0.1 counts as le="0.1"
  EXPECT_EQ(registry.Render(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{method=\"Retrieve\",le=\"0.1\"} 2\n"
            "latency_seconds_bucket{method=\"Retrieve\",le=\"0.5\"} 3\n"
            "latency_seconds_bucket{method=\"Retrieve\",le=\"1\"} 4\n"
            "latency_seconds_bucket{method=\"Retrieve\",le=\"+Inf\"} 5\n"
            "latency_seconds_sum{method=\"Retrieve\"} 3.15\n"
            "latency_seconds_count{method=\"Retrieve\"} 5\n");
}

TEST(MetricsRegistryTest, UnlabelledHistogramHasOnlyLe) {
  MetricsRegistry registry;
  absl::StatusOr<HistogramFamily*> h = registry.AddHistogram("h", "H.", {}, {1});
  ASSERT_TRUE(h.ok());
  (*(*h)->Unlabelled())->Observe(std::nan(""));  // counted in +Inf only; not in the sum
  EXPECT_EQ(registry.Render(),
            "# HELP h H.\n# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n");
}

TEST(MetricsRegistryTest, CallbackFamiliesAreSampledAtRender) {
  MetricsRegistry registry;
  double depth = 7;
  ASSERT_TRUE(registry
                  .AddCallback("jobs_total", "Jobs by outcome.", MetricType::kCounter, {"outcome"},
                               [] {
                                 return std::vector<MetricSample>{{{"succeeded"}, 2},
                                                                  {{"failed"}, 1},
                                                                  {{"bad", "labels"}, 9}};
                               })
                  .ok());
  ASSERT_TRUE(registry
                  .AddCallback("depth", "Depth.", MetricType::kGauge, {},
                               [&depth] { return std::vector<MetricSample>{{{}, depth}}; })
                  .ok());
  depth = 8;
  EXPECT_EQ(registry.Render(),
            "# HELP jobs_total Jobs by outcome.\n# TYPE jobs_total counter\n"
            "jobs_total{outcome=\"succeeded\"} 2\njobs_total{outcome=\"failed\"} 1\n"
            "# HELP depth Depth.\n# TYPE depth gauge\ndepth 8\n");
}

TEST(MetricsRegistryTest, RejectsBadNamesLabelsBoundsAndDuplicates) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.AddCounter("1abc", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddCounter("a-b", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(registry.AddCounter("ok_total", "", {"__x"}).status().message()),
              HasSubstr("label name '__x'"));
  EXPECT_THAT(std::string(registry.AddGauge("g", "", {"a", "a"}).status().message()),
              HasSubstr("'a' appears twice"));
  EXPECT_THAT(std::string(registry.AddHistogram("h", "", {"le"}, {1}).status().message()),
              HasSubstr("'le' is reserved"));
  EXPECT_THAT(std::string(registry.AddHistogram("h", "", {}, {1, 1}).status().message()),
              HasSubstr("bounds[1]=1: must be above bounds[0]=1"));
  EXPECT_THAT(std::string(registry
                              .AddHistogram("h", "", {},
                                            {std::numeric_limits<double>::infinity()})
                              .status()
                              .message()),
              HasSubstr("bounds[0]=+Inf: must be finite"));
  ASSERT_TRUE(registry.AddCounter("ns:ok_total", "", {"a"}).ok());
  EXPECT_EQ(registry.AddGauge("ns:ok_total", "").status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(MetricsRegistryTest, WrongLabelCountIsAnError) {
  MetricsRegistry registry;
  CounterFamily* f = *registry.AddCounter("c_total", "", {"method", "code"});
  const absl::StatusOr<Counter*> child = f->WithLabels({"Retrieve"});
  EXPECT_EQ(child.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(child.status().message()),
              HasSubstr("c_total: 1 label values for the 2 labels (method,code)"));
}

TEST(MetricsRegistryTest, SameLabelsGiveTheSameChild) {
  MetricsRegistry registry;
  CounterFamily* f = *registry.AddCounter("c_total", "", {"m"});
  EXPECT_EQ(*f->WithLabels({"x"}), *f->WithLabels({"x"}));
  EXPECT_NE(*f->WithLabels({"x"}), *f->WithLabels({"y"}));
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreCountedExactly) {
  MetricsRegistry registry;
  CounterFamily* counters = *registry.AddCounter("c_total", "", {"t"});
  GaugeFamily* gauges = *registry.AddGauge("g", "");
  HistogramFamily* histograms = *registry.AddHistogram("h", "", {}, {0.5, 1.5});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Half the threads share one child; the lookup itself races with creation.
        (*counters->WithLabels({t % 2 == 0 ? "shared" : "odd"}))->Increment();
        (*gauges->Unlabelled())->Add(1);
        (*histograms->Unlabelled())->Observe(i % 2 == 0 ? 1.0 : 2.0);
        if (i % 1000 == 0) (void)registry.Render();  // rendering concurrently with updates
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ((*counters->WithLabels({"shared"}))->value(), kThreads / 2 * kPerThread);
  EXPECT_EQ((*counters->WithLabels({"odd"}))->value(), kThreads / 2 * kPerThread);
  EXPECT_EQ((*gauges->Unlabelled())->value(), kThreads * kPerThread);
  const Histogram::Snapshot s = (*histograms->Unlabelled())->Read();
  EXPECT_EQ(s.cumulative, (std::vector<int64_t>{0, kThreads * kPerThread / 2,
                                                kThreads * kPerThread}));
  // Sums of 1.0 and 2.0 are exact in a double at this size.
  EXPECT_EQ(s.sum, kThreads * kPerThread / 2 * 3.0);
}

TEST(MetricsRegistryTest, ExponentialBuckets) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_TRUE(ExponentialBuckets(0, 2, 4).empty());
  const std::vector<double> d = DefaultLatencyBuckets();
  for (size_t i = 1; i < d.size(); ++i) EXPECT_LT(d[i - 1], d[i]);
}

// ---- the HTTP layer, without sockets ----

std::string Render() { return "metric 1\n"; }

TEST(MetricsHttpResponseTest, ServesMetricsWithTheTextFormatContentType) {
  const std::string r = MetricsHttpResponse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", Render);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nContent-Type: text/plain; version=0.0.4\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nContent-Length: 9\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\nConnection: close\r\n"));
  EXPECT_TRUE(absl::EndsWith(r, "\r\n\r\nmetric 1\n"));
  EXPECT_THAT(MetricsHttpResponse("GET /metrics?name[]=x HTTP/1.0\r\n\r\n", Render),
              StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST(MetricsHttpResponseTest, HeadHasNoBody) {
  const std::string r = MetricsHttpResponse("HEAD /metrics HTTP/1.1\r\n\r\n", Render);
  EXPECT_THAT(r, HasSubstr("Content-Length: 9\r\n"));
  EXPECT_TRUE(absl::EndsWith(r, "\r\n\r\n"));
}

TEST(MetricsHttpResponseTest, OtherPathsMethodsAndGarbageAreRefused) {
  EXPECT_THAT(MetricsHttpResponse("GET / HTTP/1.1\r\n\r\n", Render),
              StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_THAT(MetricsHttpResponse("GET /metricsx HTTP/1.1\r\n\r\n", Render),
              StartsWith("HTTP/1.1 404 Not Found\r\n"));
  const std::string post = MetricsHttpResponse("POST /metrics HTTP/1.1\r\n\r\n", Render);
  EXPECT_THAT(post, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(post, HasSubstr("Allow: GET, HEAD\r\n"));
  EXPECT_THAT(MetricsHttpResponse("hello\r\n\r\n", Render), StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(MetricsHttpResponse("GET /metrics SMTP\r\n\r\n", Render),
              StartsWith("HTTP/1.1 400 "));
}

// ---- the HTTP server over a real socket (127.0.0.1, ephemeral port) ----

// Connects to 127.0.0.1:port, sends `request`, returns everything read until the server closes;
// "connect failed" if nothing listens.
std::string Exchange(int port, const std::string& request) {
  absl::StatusOr<std::string> response = testutil::HttpExchange(port, request);
  return response.ok() ? *response : "connect failed";
}

TEST(MetricsHttpServerTest, ServesTheRegistryOnAnEphemeralPort) {
  MetricsRegistry registry;
  Counter* scrapes = *(*registry.AddCounter("scrapes_total", "Scrapes."))->Unlabelled();
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start({}, [&] {
        scrapes->Increment();
        return registry.Render();
      });
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  const std::string first = Exchange((*server)->port(), "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_THAT(first, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(first, HasSubstr("Content-Type: text/plain; version=0.0.4\r\n"));
  EXPECT_THAT(first, HasSubstr("\r\n\r\n# HELP scrapes_total Scrapes.\n"));
  EXPECT_THAT(first, HasSubstr("scrapes_total 1\n"));
  EXPECT_THAT(Exchange((*server)->port(), "GET /metrics HTTP/1.1\r\n\r\n"),
              HasSubstr("scrapes_total 2\n"));
  EXPECT_THAT(Exchange((*server)->port(), "GET /other HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 404 Not Found\r\n"));
  (*server)->Stop();
  (*server)->Stop();  // idempotent
  EXPECT_EQ(Exchange((*server)->port(), "GET /metrics HTTP/1.1\r\n\r\n"), "connect failed");
}

TEST(MetricsHttpServerTest, RefusesOversizedRequests) {
  MetricsHttpServerOptions options;
  options.max_request_bytes = 256;
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start(options, [] { return std::string("x 1\n"); });
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string big =
      "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(4096, 'a') + "\r\n\r\n";
  EXPECT_THAT(Exchange((*server)->port(), big), StartsWith("HTTP/1.1 431 "));
  // The server still answers afterwards.
  EXPECT_THAT(Exchange((*server)->port(), "GET /metrics HTTP/1.1\r\n\r\n"),
              StartsWith("HTTP/1.1 200 OK"));
}

TEST(MetricsHttpServerTest, StopDoesNotWaitForASilentClient) {
  MetricsHttpServerOptions options;
  options.request_deadline = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start(options, [] { return std::string(); });
  ASSERT_TRUE(server.ok()) << server.status();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>((*server)->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::send(fd, "GET /met", 8, MSG_NOSIGNAL);  // an incomplete request, then silence
  absl::SleepFor(absl::Milliseconds(100));    // let the server start reading it
  const absl::Time start = absl::Now();
  (*server)->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ::close(fd);
}

TEST(MetricsHttpServerTest, BadPortIsAnErrorNamingIt) {
  MetricsHttpServerOptions options;
  options.port = 70000;
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start(options, [] { return std::string(); });
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("metrics_port=70000"));
}

TEST(MetricsHttpServerTest, BusyPortIsUnavailable) {
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> first =
      MetricsHttpServer::Start({}, [] { return std::string(); });
  ASSERT_TRUE(first.ok());
  MetricsHttpServerOptions options;
  options.port = (*first)->port();
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> second =
      MetricsHttpServer::Start(options, [] { return std::string(); });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace optower::server
