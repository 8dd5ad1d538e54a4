// The Prometheus endpoint of a real in-process optower-server (127.0.0.1, ephemeral gRPC and
// metrics ports): after some Retrieve/Feedback/admin traffic, GET /metrics over a socket and check
// every family's name and type (docs/METRICS.md) and the counts the traffic implies.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/optower_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optower_server.h"
#include "tests/testing/http_exchange.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using server::OptowerServer;

constexpr int kDimContext = 3;
constexpr int kItems = 10;
constexpr int kSlate = 2;

// GET `path` from 127.0.0.1:port; the whole response (status line, headers, body), "" if nothing
// listens.
std::string HttpGet(int port, const std::string& path) {
  absl::StatusOr<std::string> response = testutil::HttpExchange(
      port, absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: test\r\n\r\n"));
  return response.ok() ? *response : "";
}

// A parsed exposition: "# TYPE" per family, and every sample line "name{labels}" -> value.
struct Exposition {
  std::map<std::string, std::string> types;
  std::map<std::string, double> samples;
  std::vector<std::string> problems;  // lines that do not parse

  double at(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? -1 : it->second;
  }
};

Exposition Parse(const std::string& body) {
  Exposition e;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "# TYPE ")) {
      std::vector<std::string> parts = absl::StrSplit(line.substr(7), ' ');
      if (parts.size() == 2) e.types[parts[0]] = parts[1];
      continue;
    }
    if (absl::StartsWith(line, "# HELP ")) continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos ||
        !(absl::SimpleAtod(line.substr(space + 1), &value) || line.substr(space + 1) == "+Inf")) {
      e.problems.emplace_back(line);
      continue;
    }
    e.samples[std::string(line.substr(0, space))] = value;
  }
  return e;
}

class MetricsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::ServerConfig c;
    c.set_port(0);
    c.set_metrics_port(-1);  // any free port
    c.set_data_dir(dir_.File("data"));
    c.set_items_path(
        testutil::WriteItems(dir_.path(), testutil::RandomCatalog(kItems, /*dim=*/2, /*seed=*/5)));
    c.set_dim_context(kDimContext);
    c.add_init_hidden(8);
    c.set_init_embedding_dim(4);
    c.mutable_event_log()->set_max_commit_delay_ms(1);
    absl::StatusOr<std::unique_ptr<OptowerServer>> s = OptowerServer::Start(c);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    client::ClientOptions o;
    o.address = server_->address();
    absl::StatusOr<std::unique_ptr<client::OptowerClient>> cl = client::OptowerClient::Connect(o);
    ASSERT_TRUE(cl.ok()) << cl.status();
    client_ = std::move(*cl);
  }

  testutil::TempDir dir_{"metrics_http_test"};
  std::unique_ptr<OptowerServer> server_;
  std::unique_ptr<client::OptowerClient> client_;
};

TEST_F(MetricsHttpTest, ScrapeAfterTrafficHasEveryFamilyAndTheCounts) {
  ASSERT_GT(server_->metrics_port(), 0);
  // Traffic: 5 good Retrieves, 1 bad (k=0); feedback 1 accepted + 1 duplicate + 1 unknown; a stats
  // call and an unknown job.
  std::vector<v1::RetrieveResponse> slates;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<v1::RetrieveResponse> r =
        client_->Retrieve(std::vector<float>(kDimContext, 0.1f * i), kSlate);
    ASSERT_TRUE(r.ok()) << r.status();
    slates.push_back(*r);
  }
  EXPECT_EQ(client_->Retrieve(std::vector<float>(kDimContext, 0.f), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  const v1::RetrieveResponse& first = slates[0];
  v1::FeedbackRequest feedback;
  for (int64_t item : {first.items(0).item_id(), first.items(0).item_id(), int64_t{-1}}) {
    v1::FeedbackEvent* e = feedback.add_events();
    e->set_request_id(first.request_id());
    e->set_item_id(item);
    e->set_reward(1.0);
  }
  absl::StatusOr<v1::FeedbackResponse> f = client_->Feedback(feedback);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->accepted(), 1);
  ASSERT_EQ(f->duplicate(), 1);
  ASSERT_EQ(f->unknown(), 1);
  ASSERT_TRUE(client_->GetStats().ok());
  EXPECT_EQ(client_->GetTrainingJob("no-such-job").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(server_->event_log().Flush().ok());

  const std::string response = HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(response, HasSubstr("Content-Type: text/plain; version=0.0.4\r\n"));
  const size_t body_start = response.find("\r\n\r\n");
  ASSERT_NE(body_start, std::string::npos);
  const Exposition e = Parse(response.substr(body_start + 4));
  EXPECT_TRUE(e.problems.empty()) << e.problems.front();

  const std::map<std::string, std::string> expected_types = {
      {"optower_rpc_requests_total", "counter"},
      {"optower_rpc_duration_seconds", "histogram"},
      {"optower_start_time_seconds", "gauge"},
      {"optower_items_served_total", "counter"},
      {"optower_feedback_events_total", "counter"},
      {"optower_model_info", "gauge"},
      {"optower_catalog_items", "gauge"},
      {"optower_catalog_version", "gauge"},
      {"optower_index_recall_at_10", "gauge"},
      {"optower_event_log_queue_depth", "gauge"},
      {"optower_event_log_rows_total", "counter"},
      {"optower_event_log_commits_total", "counter"},
      {"optower_event_log_last_commit_seconds", "gauge"},
      {"optower_event_log_max_commit_seconds", "gauge"},
      {"optower_event_log_errors_total", "counter"},
      {"optower_event_log_pending_bytes", "gauge"},
      {"optower_event_log_write_faults_total", "counter"},
      {"optower_event_log_duplicate_requests_total", "counter"},
      {"optower_event_log_writable", "gauge"},
      {"optower_model_trained", "gauge"},
      {"optower_model_swaps_total", "counter"},
      {"optower_training_jobs_total", "counter"},
      {"optower_training_job_active", "gauge"},
      {"optower_ope_last_value", "gauge"},
      {"optower_ope_last_ci_low", "gauge"},
      {"optower_ope_last_ci_high", "gauge"},
      {"optower_ope_last_std_error", "gauge"},
      {"optower_ope_last_effective_sample_size", "gauge"},
      {"optower_ope_last_holdout_samples", "gauge"},
  };
  EXPECT_EQ(e.types, expected_types);

  EXPECT_EQ(e.at(R"(optower_rpc_requests_total{method="Retrieve",code="OK"})"), 5);
  EXPECT_EQ(e.at(R"(optower_rpc_requests_total{method="Retrieve",code="INVALID_ARGUMENT"})"), 1);
  EXPECT_EQ(e.at(R"(optower_rpc_requests_total{method="Feedback",code="OK"})"), 1);
  EXPECT_EQ(e.at(R"(optower_rpc_requests_total{method="GetStats",code="OK"})"), 1);
  EXPECT_EQ(e.at(R"(optower_rpc_requests_total{method="GetTrainingJob",code="NOT_FOUND"})"), 1);
  // The histogram agrees with the counter, and its buckets are cumulative.
  const std::string retrieve_ok = R"(method="Retrieve",code="OK")";
  EXPECT_EQ(e.at(absl::StrCat("optower_rpc_duration_seconds_count{", retrieve_ok, "}")), 5);
  EXPECT_EQ(
      e.at(absl::StrCat("optower_rpc_duration_seconds_bucket{", retrieve_ok, R"(,le="+Inf"})")), 5);
  EXPECT_GT(e.at(absl::StrCat("optower_rpc_duration_seconds_sum{", retrieve_ok, "}")), 0);
  double previous = 0;
  for (const char* le : {"0.0001", "0.001", "0.01", "0.1", "1", "10", "+Inf"}) {
    const double v = e.at(absl::StrCat("optower_rpc_duration_seconds_bucket{", retrieve_ok,
                                       ",le=\"", le, "\"}"));
    EXPECT_GE(v, previous) << le;
    previous = v;
  }

  EXPECT_EQ(e.at("optower_items_served_total"), 5 * kSlate);
  EXPECT_EQ(e.at(R"(optower_feedback_events_total{outcome="accepted"})"), 1);
  EXPECT_EQ(e.at(R"(optower_feedback_events_total{outcome="duplicate"})"), 1);
  EXPECT_EQ(e.at(R"(optower_feedback_events_total{outcome="unknown"})"), 1);
  EXPECT_EQ(e.at(R"(optower_model_info{version="init-0"})"), 1);
  EXPECT_EQ(e.at("optower_model_trained"), 0);
  EXPECT_EQ(e.at("optower_catalog_items"), kItems);
  EXPECT_EQ(e.at(R"(optower_index_recall_at_10{type="exact"})"), 1);
  EXPECT_EQ(e.at(R"(optower_event_log_rows_total{table="served"})"), 5 * kSlate);
  EXPECT_EQ(e.at(R"(optower_event_log_rows_total{table="feedback"})"), 1);
  EXPECT_EQ(e.at("optower_event_log_queue_depth"), 0);
  EXPECT_GE(e.at("optower_event_log_commits_total"), 1);
  EXPECT_EQ(e.at("optower_event_log_errors_total"), 0);
  EXPECT_EQ(e.at("optower_event_log_write_faults_total"), 0);
  EXPECT_EQ(e.at("optower_event_log_writable"), 1);
  for (const char* outcome : {"succeeded", "rejected", "failed", "cancelled"}) {
    EXPECT_EQ(e.at(absl::StrCat(R"(optower_training_jobs_total{outcome=")", outcome, "\"}")), 0);
  }
  EXPECT_EQ(e.at("optower_training_job_active"), 0);
  EXPECT_EQ(e.samples.count(R"(optower_ope_last_value{policy="diff"})"), 0u);  // no gate yet
  EXPECT_GT(e.at("optower_start_time_seconds"), 1.6e9);

  // The endpoint serves nothing else.
  EXPECT_THAT(HttpGet(server_->metrics_port(), "/"), StartsWith("HTTP/1.1 404 "));
  // The text does not depend on the endpoint being on.
  EXPECT_THAT(server_->MetricsText(), HasSubstr("# TYPE optower_rpc_requests_total counter\n"));
}

TEST_F(MetricsHttpTest, EndpointStopsWithTheServer) {
  const int port = server_->metrics_port();
  ASSERT_THAT(HttpGet(port, "/metrics"), StartsWith("HTTP/1.1 200 OK"));
  ASSERT_TRUE(server_->Shutdown().ok());
  EXPECT_EQ(HttpGet(port, "/metrics"), "");
}

TEST(MetricsPortConfigTest, OffByDefaultAndValidated) {
  testutil::TempDir dir("metrics_port_test");
  v1::ServerConfig c;
  c.set_port(0);
  c.set_data_dir(dir.File("data"));
  c.set_items_path(testutil::WriteItems(dir.path(), testutil::RandomCatalog(4, 2, 1)));
  c.set_dim_context(kDimContext);
  c.add_init_hidden(4);
  c.set_init_embedding_dim(4);
  c.set_metrics_port(-2);
  absl::StatusOr<std::unique_ptr<OptowerServer>> bad = OptowerServer::Start(c);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("metrics_port=-2"));
  c.clear_metrics_port();
  absl::StatusOr<std::unique_ptr<OptowerServer>> off = OptowerServer::Start(c);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ((*off)->metrics_port(), 0);
}

}  // namespace
}  // namespace optower
