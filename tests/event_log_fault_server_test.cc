// A real optower-server (in-process, 127.0.0.1, ephemeral port) whose event log's disk fails or
// stalls (the test-only SQLite VFS shim, tests/testing/faulty_vfs.h): what gRPC clients see, what
// the health service says, that every acknowledged slate is in the log after recovery, and that the
// server recovers by itself (docs/EVENT_LOG.md "Write failures", docs/RELIABILITY.md).
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/optower_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optower_server.h"
#include "tests/testing/faulty_vfs.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using client::CallOptions;
using client::OptowerClient;
using server::OptowerServer;
using testutil::FaultyVfs;
using testutil::TempDir;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

constexpr int kDimContext = 4;
constexpr int kK = 3;
// Correctness bound for "eventually" (health flips, recovery): generous for a loaded 2-core machine.
constexpr absl::Duration kPatience = absl::Seconds(20);

class EventLogFaultServerTest : public ::testing::Test {
 protected:
  void SetUp() override { vfs_ = &FaultyVfs::Install(); }
  void TearDown() override {
    vfs_->Clear();  // a stalled writer would block the server's shutdown
    client_.reset();
    server_.reset();
  }

  void Start(double window_ms, double stall_ms = 500) {
    const ItemCatalog catalog = testutil::RandomCatalog(20, /*dim=*/3, /*seed=*/5);
    v1::ServerConfig config;
    config.set_port(0);
    config.set_data_dir(dir_.File("data"));
    config.set_items_path(testutil::WriteItems(dir_.path(), catalog));
    config.set_dim_context(kDimContext);
    config.set_max_k(10);
    config.set_top_m(8);
    config.mutable_index()->set_type(v1::IndexConfig::EXACT);
    config.mutable_trainer()->set_disabled(true);
    config.mutable_event_log()->set_write_failure_window_ms(window_ms);
    config.mutable_event_log()->set_writer_stall_timeout_ms(stall_ms);
    vfs_->SetPathFilter(dir_.File("data"));
    absl::StatusOr<std::unique_ptr<OptowerServer>> server = OptowerServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client::ClientOptions options;
    options.address = absl::StrCat("127.0.0.1:", server_->port());
    absl::StatusOr<std::unique_ptr<OptowerClient>> client = OptowerClient::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  absl::StatusOr<v1::RetrieveResponse> Retrieve() const {
    CallOptions call;
    call.deadline = absl::Seconds(5);
    return client_->Retrieve({0.3f, -0.2f, 1.0f, 0.0f}, kK, call);
  }
  // Health of `service`, or the call's error (e.g. DEADLINE_EXCEEDED if nobody answers).
  absl::StatusOr<HealthStatus::ServingStatus> Health(const std::string& service = "") const {
    CallOptions call;
    call.deadline = absl::Seconds(2);
    return client_->CheckHealth(service, call);
  }
  bool HealthBecomes(HealthStatus::ServingStatus want, const std::string& service = "") const {
    const absl::Time until = absl::Now() + kPatience;
    while (absl::Now() < until) {
      absl::StatusOr<HealthStatus::ServingStatus> h = Health(service);
      if (h.ok() && *h == want) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }
  int64_t LoggedRows() const {
    absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = server_->event_log().ReadJoined({});
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? static_cast<int64_t>(rows->size()) : -1;
  }

  FaultyVfs* vfs_ = nullptr;
  TempDir dir_{"event_log_fault_server_test"};
  std::unique_ptr<OptowerServer> server_;
  std::unique_ptr<OptowerClient> client_;
};

// Defect 4 through gRPC: a lasting disk-full in group-commit mode. Within the window Retrieve is
// still acknowledged (the slates are kept and retried); after it Retrieve and Feedback fail with
// UNAVAILABLE and health is NOT_SERVING; once the disk has room the server writes the kept slates,
// health is SERVING again and every acknowledged slate is in the log.
TEST_F(EventLogFaultServerTest, DiskFullTurnsRetrieveUnavailableAndHealthNotServingUntilItClears) {
  Start(/*window_ms=*/300);
  int64_t acked = 0;
  for (int i = 0; i < 5; ++i, ++acked) ASSERT_TRUE(Retrieve().ok());
  ASSERT_TRUE(Health().ok());
  EXPECT_EQ(*Health(), HealthStatus::SERVING);

  vfs_->FailAll(SQLITE_FULL);
  absl::Status refused;
  std::string last_request_id;
  const absl::Time until = absl::Now() + kPatience;
  while (absl::Now() < until) {
    absl::StatusOr<v1::RetrieveResponse> r = Retrieve();
    if (!r.ok()) {
      refused = r.status();
      break;
    }
    ++acked;
    last_request_id = r->request_id();
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_TRUE(HealthBecomes(HealthStatus::NOT_SERVING));
  EXPECT_TRUE(HealthBecomes(HealthStatus::NOT_SERVING, "optower.v1.RetrievalService"));
  absl::StatusOr<HealthStatus::ServingStatus> admin = Health("optower.v1.AdminService");
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_EQ(*admin, HealthStatus::SERVING);  // catalog changes do not need the log
  absl::StatusOr<v1::FeedbackResponse> feedback = client_->Feedback(last_request_id, 100, 1.0);
  EXPECT_EQ(feedback.status().code(), absl::StatusCode::kUnavailable) << feedback.status();

  vfs_->Clear();
  EXPECT_TRUE(HealthBecomes(HealthStatus::SERVING));
  ASSERT_TRUE(Retrieve().ok());
  ++acked;
  ASSERT_TRUE(server_->event_log().Flush().ok());
  EXPECT_EQ(LoggedRows(), kK * acked) << "acknowledged slates lost";
  EXPECT_GT(vfs_->injected_failures(), 0);
  std::fprintf(stderr, "figures: faults_injected=%lld acked_retrieves=%lld rows=%lld lost=%lld\n",
               static_cast<long long>(vfs_->injected_failures()), static_cast<long long>(acked),
               static_cast<long long>(LoggedRows()),
               static_cast<long long>(kK * acked - LoggedRows()));
  EXPECT_TRUE(server_->Shutdown().ok());
}

// Defect 5 through gRPC. Retrieve and Feedback run inline on gRPC's callback threads, and so does
// gRPC's default health service (a callback service in gRPC 1.51); this machine's server has 2 such
// threads, so 2 handlers blocked on a stalled disk used to leave health checks unanswered for as long
// as the disk stalled. Now a handler waits at most writer_stall_timeout (or its deadline) and later
// ones are refused at once: with the disk stalled and 8 Feedback calls with 30 s deadlines in
// flight, a health check with a 1 s deadline is answered; the window then turns health NOT_SERVING
// and it turns SERVING again once the disk answers.
TEST_F(EventLogFaultServerTest, StalledDiskKeepsHealthAnsweringAndReleasesBlockedFeedback) {
  Start(/*window_ms=*/1500, /*stall_ms=*/200);
  absl::StatusOr<v1::RetrieveResponse> served = Retrieve();
  ASSERT_TRUE(served.ok()) << served.status();
  ASSERT_TRUE(server_->event_log().Flush().ok());

  vfs_->Stall();
  ASSERT_TRUE(Retrieve().ok());  // group commit: queued; its commit stalls in the WAL write
  ASSERT_TRUE(vfs_->WaitUntilStalled(kPatience));
  constexpr int kCallers = 8;  // more than gRPC's callback threads
  std::vector<absl::Status> results(kCallers);
  std::vector<absl::Duration> took(kCallers);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      CallOptions call;
      call.deadline = absl::Seconds(30);
      const absl::Time t0 = absl::Now();
      results[c] =
          client_->Feedback(served->request_id(), served->items(0).item_id(), 1.0, call).status();
      took[c] = absl::Now() - t0;
    });
  }
  absl::SleepFor(absl::Milliseconds(50));
  CallOptions quick;
  quick.deadline = absl::Seconds(1);
  const absl::Time health_t0 = absl::Now();
  absl::StatusOr<HealthStatus::ServingStatus> during = client_->CheckHealth("", quick);
  EXPECT_TRUE(during.ok()) << "health starved: " << during.status();
  std::fprintf(stderr, "figures: health answered during the stall in %s\n",
               absl::FormatDuration(absl::Now() - health_t0).c_str());
  for (std::thread& t : callers) t.join();
  absl::Duration longest;
  for (int c = 0; c < kCallers; ++c) longest = std::max(longest, took[c]);
  std::fprintf(stderr, "figures: %d blocked Feedback calls, longest wait %s\n", kCallers,
               absl::FormatDuration(absl::Trunc(longest, absl::Milliseconds(1))).c_str());
  for (int c = 0; c < kCallers; ++c) {
    SCOPED_TRACE(absl::StrCat("caller ", c));
    EXPECT_EQ(results[c].code(), absl::StatusCode::kUnavailable) << results[c];
    EXPECT_LT(took[c], absl::Seconds(15));  // never the 30 s deadline
  }
  EXPECT_TRUE(HealthBecomes(HealthStatus::NOT_SERVING));  // after the window
  EXPECT_EQ(Retrieve().status().code(), absl::StatusCode::kUnavailable);

  vfs_->Clear();
  EXPECT_TRUE(HealthBecomes(HealthStatus::SERVING));
  absl::StatusOr<v1::FeedbackResponse> after =
      client_->Feedback(served->request_id(), served->items(0).item_id(), 1.0);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->accepted(), 1);  // the released calls were skipped, not written
  ASSERT_TRUE(server_->event_log().Flush().ok());
  EXPECT_EQ(LoggedRows(), 2 * kK);  // both acknowledged slates
  EXPECT_TRUE(server_->Shutdown().ok());
}

}  // namespace
}  // namespace optower
