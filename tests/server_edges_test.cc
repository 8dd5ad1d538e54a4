// The server's edges against bad clients (issue 9, docs/SECURITY.md "Limits"):
//   - open admin RPCs: a non-loopback host without an admin token refuses to start (the binary:
//     exit 2, one line) unless --insecure_open_admin (a loud warning); SIGHUP/SIGQUIT shut down
//     gracefully like SIGTERM;
//   - per-RPC wire-size limits checked after the token and before any parse (raw handlers), and
//     the memory a hostile message costs;
//   - the declared reward range at the RPC, and the trainer skipping (and counting) bad logged
//     rows instead of failing;
//   - the bounded WatchTraining streams and admin work queue, and queued calls whose deadline
//     passed are not run;
//   - the metrics endpoint against trickling clients (total deadline, concurrency, bounded stop);
//   - config limits: durations finite and bounded, the trainer's max_events bounded by default;
//   - error messages never echo an unbounded caller string.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/optower_client.h"
#include "core/storage/event_log.h"
#include "core/serving/model_snapshot.h"
#include "core/storage/file_model_store.h"
#include "core/serving/retrieval_engine.h"
#include "core/storage/sqlite_event_log.h"
#include "core/training/trainer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "optower/v1/optower.grpc.pb.h"
#include "server/admin_service.h"
#include "server/auth.h"
#include "server/metrics_http_server.h"
#include "server/optower_server.h"
#include "server/proto_convert.h"
#include "server/server_config.h"
#include "server/status_util.h"
#include "tests/testing/http_exchange.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using server::OptowerServer;
using testutil::TempDir;

constexpr int kDimContext = 3;
constexpr int kDimItem = 2;
constexpr char kAdminToken[] = "admin-0123456789abcdef-token";
constexpr char kRetrieveToken[] = "retrieve-0123456789abcdef-token";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ------------------------------------------------------------------------------------------------
// 1. Open admin RPCs on the network: refused unless --insecure_open_admin
// ------------------------------------------------------------------------------------------------

TEST(AdminExposureTest, LoopbackHostsAreRecognized) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]"}) {
    EXPECT_TRUE(server::IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "[::]", "10.0.0.1", "128.0.0.1", "example.com", ""}) {
    EXPECT_FALSE(server::IsLoopbackHost(host)) << host;
  }
  EXPECT_TRUE(server::CheckAdminExposure("0.0.0.0", /*admin_token_configured=*/true, false).ok());
  EXPECT_TRUE(server::CheckAdminExposure("127.0.0.1", false, false).ok());
  EXPECT_TRUE(server::CheckAdminExposure("0.0.0.0", false, /*insecure_open_admin=*/true).ok());
  const absl::Status refused = server::CheckAdminExposure("0.0.0.0", false, false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("admin_token_file"));
}

class ServerBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    items_ = testutil::WriteItems(dir_.path(), testutil::RandomCatalog(8, kDimItem, 3));
  }
  std::vector<std::string> Flags(const std::string& host) const {
    return {"--host=" + host, "--port=0", "--data_dir=" + dir_.File("data"), "--items=" + items_,
            absl::StrCat("--dim_context=", kDimContext), "--disable_trainer=true"};
  }
  TempDir dir_{"edges_bin"};
  std::string items_;
};

TEST_F(ServerBinaryTest, NonLoopbackHostWithoutAdminTokenRefusesToStart) {
  testutil::SubprocessOptions options;
  options.timeout_seconds = 120;
  std::vector<std::string> argv = {testutil::ServerBinaryPath()};
  for (const std::string& f : Flags("0.0.0.0")) argv.push_back(f);
  absl::StatusOr<testutil::SubprocessResult> r = testutil::RunSubprocess(argv, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_EQ(r->ErrLineCount(), 1) << r->err;
  EXPECT_THAT(r->err, HasSubstr("host=0.0.0.0 is not a loopback address"));
  EXPECT_THAT(r->err, HasSubstr("set admin_token_file (or OPTOWER_ADMIN_TOKEN), or listen on "
                                "127.0.0.1"));
  EXPECT_THAT(r->out, Not(HasSubstr("listening on")));
}

TEST_F(ServerBinaryTest, InsecureOpenAdminStartsWithALoudWarning) {
  std::vector<std::string> flags = Flags("0.0.0.0");
  flags.push_back("--insecure_open_admin");
  const std::string err = dir_.File("stderr");
  absl::StatusOr<std::unique_ptr<testutil::ServerProcess>> p =
      testutil::StartServerProcess(flags, err);
  ASSERT_TRUE(p.ok()) << p.status() << "\n" << ReadFile(err);
  EXPECT_THAT(ReadFile(err), HasSubstr("WARNING: --insecure_open_admin: the admin RPCs are OPEN"));
  (*p)->Signal(SIGTERM);
  const int status = (*p)->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(err);
}

// SIGHUP and SIGQUIT used to kill the process without flushing the event log (default actions).
TEST_F(ServerBinaryTest, SighupAndSigquitShutDownGracefully) {
  for (int sig : {SIGHUP, SIGQUIT}) {
    const std::string err = dir_.File(absl::StrCat("stderr", sig));
    absl::StatusOr<std::unique_ptr<testutil::ServerProcess>> p =
        testutil::StartServerProcess(Flags("127.0.0.1"), err);
    ASSERT_TRUE(p.ok()) << p.status() << "\n" << ReadFile(err);
    (*p)->Signal(sig);
    const int status = (*p)->Wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << sig << ": " << ReadFile(err);
    EXPECT_THAT(ReadFile(err), HasSubstr(sig == SIGHUP ? "SIGHUP received, shutting down"
                                                       : "SIGQUIT received, shutting down"));
    EXPECT_THAT(ReadFile(err), HasSubstr("event log closed"));
  }
}

// ------------------------------------------------------------------------------------------------
// In-process servers for the RPC tests
// ------------------------------------------------------------------------------------------------

class InProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    items_path_ = testutil::WriteItems(dir_.path(), testutil::RandomCatalog(8, kDimItem, 3));
    std::ofstream(dir_.File("admin_token")) << kAdminToken << "\n";
    std::ofstream(dir_.File("retrieve_token")) << kRetrieveToken << "\n";
  }
  v1::ServerConfig Config() const {
    v1::ServerConfig c;
    c.set_port(0);
    c.set_data_dir(dir_.File("data"));
    c.set_items_path(items_path_);
    c.set_dim_context(kDimContext);
    c.add_init_hidden(8);
    c.set_init_embedding_dim(4);
    c.mutable_trainer()->set_disabled(true);
    return c;
  }
  void Start(const v1::ServerConfig& config) {
    absl::StatusOr<std::unique_ptr<OptowerServer>> s = OptowerServer::Start(config);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  }
  // Sends `bytes` as the request of `method` ("/optower.v1.RetrievalService/Retrieve") through a
  // generic stub, so the client builds no message (the test measures the server's memory).
  grpc::Status RawCall(const std::string& method, const std::string& bytes,
                       const std::string& token = "") {
    grpc::GenericStub stub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    return status;
  }
  std::unique_ptr<client::OptowerClient> Client(const std::string& token = "") {
    client::ClientOptions o;
    o.address = server_->address();
    if (!token.empty()) o.metadata.push_back({"authorization", absl::StrCat("Bearer ", token)});
    absl::StatusOr<std::unique_ptr<client::OptowerClient>> c = client::OptowerClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  TempDir dir_{"edges"};
  std::string items_path_;
  std::unique_ptr<OptowerServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(InProcessTest, OptOutStartsOnEveryInterfaceAndTokenlessNonLoopbackDoesNot) {
  v1::ServerConfig c = Config();
  c.set_host("0.0.0.0");
  const absl::StatusOr<std::unique_ptr<OptowerServer>> refused = OptowerServer::Start(c);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  c.set_insecure_open_admin(true);
  Start(c);
  EXPECT_FALSE(server_->auth().admin_required());
}

// A RetrieveRequest whose context holds `n` empty `categorical` entries: 2 wire bytes each, ~65x
// that as parsed C++ objects.
std::string HostileRetrieve(int64_t n) {
  std::string categorical;
  categorical.reserve(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i) categorical.append("\x12\x00", 2);  // field 2, length 0
  // Context (field 2 of RetrieveRequest) = the categorical entries; written by hand so that the
  // test itself never holds the parsed form.
  std::string out = "\x12";  // field 2, wire type 2
  uint64_t len = categorical.size();
  while (len >= 0x80) {
    out.push_back(static_cast<char>((len & 0x7f) | 0x80));
    len >>= 7;
  }
  out.push_back(static_cast<char>(len));
  out += categorical;
  return out;
}

TEST_F(InProcessTest, OversizedRetrieveIsRejectedNamingTheLimit) {
  Start(Config());
  v1::RetrieveRequest big;
  for (int i = 0; i < kDimContext; ++i) big.mutable_context()->add_dense(0.5f);
  big.set_k(1);
  for (int i = 0; i < 30000; ++i) big.add_exclude_item_ids(1000000 + i);  // ~90 KB > 64 KiB
  std::unique_ptr<client::OptowerClient> c = Client();
  const absl::StatusOr<v1::RetrieveResponse> r = c->Retrieve(big);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr(absl::StrCat("request has ", big.ByteSizeLong(),
                                     " bytes: Retrieve accepts at most max_retrieve_bytes=65536")));
  // A normal request still works, and Feedback has its own limit.
  big.clear_exclude_item_ids();
  EXPECT_TRUE(c->Retrieve(big).ok());
  v1::FeedbackRequest feedback;
  for (int i = 0; i < 80000; ++i) {  // ~1.4 MB > 1 MiB
    v1::FeedbackEvent* e = feedback.add_events();
    e->set_request_id("r0123456789");
    e->set_item_id(100);
  }
  const absl::StatusOr<v1::FeedbackResponse> f = c->Feedback(feedback);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("max_feedback_bytes=1048576"));
  // Admin RPCs: max_admin_bytes (DeleteItems) and max_receive_message_bytes (UpsertItems).
  v1::DeleteItemsRequest del;
  for (int i = 0; i < 30000; ++i) del.add_item_ids(1000000 + i);  // ~90 KB
  EXPECT_THAT(std::string(c->DeleteItems(del).status().message()),
              HasSubstr("DeleteItems accepts at most max_admin_bytes=65536"));
}

TEST_F(InProcessTest, UnauthenticatedOversizedRequestIsUnauthenticated) {
  v1::ServerConfig config = Config();
  config.set_admin_token_file(dir_.File("admin_token"));
  config.set_retrieve_token_file(dir_.File("retrieve_token"));
  Start(config);
  const std::string hostile = HostileRetrieve(200000);  // 400 KB > max_retrieve_bytes
  const grpc::Status no_token = RawCall("/optower.v1.RetrievalService/Retrieve", hostile);
  EXPECT_EQ(no_token.error_code(), grpc::StatusCode::UNAUTHENTICATED) << no_token.error_message();
  EXPECT_EQ(no_token.error_message(), "missing or invalid bearer token");
  const grpc::Status admin = RawCall("/optower.v1.AdminService/DeleteItems", hostile);
  EXPECT_EQ(admin.error_code(), grpc::StatusCode::UNAUTHENTICATED) << admin.error_message();
  // With the token, the size check answers (still without parsing).
  const grpc::Status with_token =
      RawCall("/optower.v1.RetrievalService/Retrieve", hostile, kRetrieveToken);
  EXPECT_EQ(with_token.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(with_token.error_message(), HasSubstr("max_retrieve_bytes=65536"));
  // Bytes that are not a RetrieveRequest.
  const grpc::Status garbage =
      RawCall("/optower.v1.RetrievalService/Retrieve", "\xff\xff\xff", kRetrieveToken);
  EXPECT_EQ(garbage.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(garbage.error_message(), HasSubstr("not a valid optower.v1.RetrieveRequest"));
}

int64_t PeakRssBytes() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

// A 16 MB RetrieveRequest of 8M empty categorical entries. Parsed (what the typed handler did before
// any check) it takes ~65x its wire size — over 500 MB here; rejected on its size it costs about
// its bytes, held once by the transport and once by the client (both in this process). The bound
// of 128 MB leaves room for those 2-3 copies of 16 MB and for gRPC's buffers, and stays far below
// the parsed size. Each test runs in its own process (gtest_discover_tests), so the peak RSS
// before the call is this test's own.
TEST_F(InProcessTest, HostileRetrieveCostsAboutItsWireSize) {
  Start(Config());
  const std::string hostile = HostileRetrieve(8 << 20);
  ASSERT_GT(hostile.size(), 16u << 20);
  const int64_t before = PeakRssBytes();
  const grpc::Status s = RawCall("/optower.v1.RetrievalService/Retrieve", hostile);
  const int64_t grown = PeakRssBytes() - before;
  RecordProperty("peak_rss_growth_mib", static_cast<int>(grown >> 20));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_LT(grown, int64_t{128} << 20) << "peak RSS grew by " << (grown >> 20) << " MiB";
}

// ------------------------------------------------------------------------------------------------
// 3. Rewards: the declared range at the RPC; the trainer skips and counts bad logged rows
// ------------------------------------------------------------------------------------------------

TEST_F(InProcessTest, FeedbackOutsideTheRewardRangeIsInvalidArgument) {
  Start(Config());  // default range [0, 1]
  std::unique_ptr<client::OptowerClient> c = Client();
  const absl::StatusOr<v1::RetrieveResponse> r =
      c->Retrieve(std::vector<float>(kDimContext, 0.1f), 1);
  ASSERT_TRUE(r.ok()) << r.status();
  const int64_t item = r->items(0).item_id();
  for (double bad : {1e39, 2.0, -0.5}) {
    const absl::StatusOr<v1::FeedbackResponse> f = c->Feedback(r->request_id(), item, bad);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(f.status().message()),
                HasSubstr(absl::StrCat("events[0].reward=", bad,
                                       ": outside the declared reward range [0, 1]")));
  }
  EXPECT_TRUE(c->Feedback(r->request_id(), item, 1.0).ok());
}

TEST_F(InProcessTest, AWiderDeclaredRangeAcceptsItsRewards) {
  v1::ServerConfig config = Config();
  config.set_reward_min(-10);
  config.set_reward_max(1e30);
  Start(config);
  std::unique_ptr<client::OptowerClient> c = Client();
  const absl::StatusOr<v1::RetrieveResponse> r =
      c->Retrieve(std::vector<float>(kDimContext, 0.1f), 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(c->Feedback(r->request_id(), r->items(0).item_id(), 1e29).ok());
}

TEST(RewardRangeConfigTest, BoundsMustBeFloatSafeAndOrdered) {
  auto validate = [](double lo, double hi, double default_reward = 0) {
    v1::ServerConfig c;
    c.set_data_dir("/tmp/x");
    c.set_items_path("/tmp/items.csv");
    c.set_dim_context(2);
    c.set_reward_min(lo);
    c.set_reward_max(hi);
    c.mutable_trainer()->set_default_reward(default_reward);
    server::ApplyServerConfigDefaults(&c);
    return server::ValidateServerConfig(c);
  };
  EXPECT_TRUE(validate(0, 1).ok());
  EXPECT_TRUE(validate(-1e30, 1e30).ok());
  EXPECT_THAT(std::string(validate(0, 1e31).message()), HasSubstr("reward_max=1e+31"));
  EXPECT_THAT(std::string(validate(-std::numeric_limits<double>::infinity(), 1).message()),
              HasSubstr("reward_min=-inf"));
  EXPECT_THAT(std::string(validate(1, 0).message()), HasSubstr("must be >= reward_min=1"));
  EXPECT_THAT(std::string(validate(0, 1, /*default_reward=*/2).message()),
              HasSubstr("trainer.default_reward=2: must be in [reward_min, reward_max] = [0, 1]"));
  v1::ServerConfig defaults;
  server::ApplyServerConfigDefaults(&defaults);
  EXPECT_EQ(defaults.reward_min(), 0.0);
  EXPECT_EQ(defaults.reward_max(), 1.0);
}

EventLog::JoinedRow Row(int64_t id, int64_t item, bool has_feedback, double reward) {
  EventLog::JoinedRow r;
  r.served_id = id;
  r.request_id = absl::StrCat("req", id);
  r.item_id = item;
  r.propensity = 0.5;
  r.context = {0.1f, 0.2f};
  r.served_time_us = 1;
  r.has_feedback = has_feedback;
  r.reward = reward;
  return r;
}

// A reward of 1e39 (finite as a double, inf as a float) or one outside the range used to enter the
// training data (inf) and fail every later job; now the row is left out and counted.
TEST(TrainerRewardTest, BadLoggedRewardsAreSkippedAndCounted) {
  ItemCatalog catalog = testutil::RandomCatalog(3, 2, /*seed=*/1, /*first_id=*/10);
  SnapshotOptions options;
  options.attribution_window = absl::ZeroDuration();
  options.reward_min = 0;
  options.reward_max = 1;
  TrainingSnapshot snap;
  snap.log.dim_context = 2;
  const std::vector<EventLog::JoinedRow> rows = {
      Row(1, 10, true, 1.0),   Row(2, 11, true, 1e39),  Row(3, 12, true, -1e39),
      Row(4, 10, true, 0.0),   Row(5, 11, true, 1.5),   Row(6, 12, true, std::nan("")),
      Row(7, 10, false, 0.0),  // no feedback: the default reward
  };
  ASSERT_TRUE(AppendToSnapshot(rows, catalog, options, absl::Now(), &snap).ok());
  EXPECT_EQ(snap.counts.rows_read, 7);
  EXPECT_EQ(snap.counts.with_feedback, 2);
  EXPECT_EQ(snap.counts.default_reward, 1);
  EXPECT_EQ(snap.counts.bad_reward, 4);
  ASSERT_EQ(snap.log.size(), 3);
  for (float r : snap.log.rewards) EXPECT_TRUE(std::isfinite(r));
  // The count reaches the API's TrainingDataCounts.
  JobInfo job;
  job.counts = snap.counts;
  v1::TrainingJob out;
  server::ToProto(job, &out);
  EXPECT_EQ(out.counts().bad_reward(), 4);
}

// ------------------------------------------------------------------------------------------------
// 14. The trainer's max_events: bounded by default; unbounded only explicitly
// ------------------------------------------------------------------------------------------------

TEST(TrainerMaxEventsTest, BoundedByDefaultAndUnboundedOnlyExplicitly) {
  EXPECT_EQ(TrainerOptions().max_events, 1000000);
  v1::ServerConfig c;
  server::ApplyServerConfigDefaults(&c);
  EXPECT_EQ(c.trainer().max_events(), 1000000);
  EXPECT_EQ(server::TrainerOptionsFromConfig(c).max_events, 1000000);
  v1::TrainerConfig t = c.trainer();
  t.set_max_events(-1);  // the whole log, explicitly
  EXPECT_TRUE(server::ValidateTrainerConfig(t).ok());
  t.set_max_events(-2);
  EXPECT_THAT(std::string(server::ValidateTrainerConfig(t).message()),
              HasSubstr("trainer.max_events=-2: must be >= 1, or -1 for the whole log"));
}

// ------------------------------------------------------------------------------------------------
// Config: durations finite and bounded; echoed strings bounded
// ------------------------------------------------------------------------------------------------

TEST(ConfigLimitsTest, DurationsMustBeFiniteAndBounded) {
  auto validate = [](const std::function<void(v1::ServerConfig*)>& set) {
    v1::ServerConfig c;
    c.set_data_dir("/tmp/x");
    c.set_items_path("/tmp/items.csv");
    c.set_dim_context(2);
    set(&c);
    server::ApplyServerConfigDefaults(&c);
    return std::string(server::ValidateServerConfig(c).message());
  };
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_THAT(validate([&](v1::ServerConfig* c) { c->set_shutdown_health_grace_ms(inf); }),
              HasSubstr("shutdown_health_grace_ms=inf: must be in [0, 3600000]"));
  EXPECT_THAT(validate([&](v1::ServerConfig* c) { c->set_shutdown_deadline_ms(inf); }),
              HasSubstr("shutdown_deadline_ms=inf"));
  EXPECT_THAT(validate([&](v1::ServerConfig* c) {
                c->mutable_event_log()->set_max_commit_delay_ms(1e12);
              }),
              HasSubstr("event_log.max_commit_delay_ms=1e+12"));
  EXPECT_THAT(validate([&](v1::ServerConfig* c) {
                c->mutable_trainer()->set_attribution_window_seconds(1e300);
              }),
              HasSubstr("trainer.attribution_window_seconds=1e+300"));
  EXPECT_THAT(validate([&](v1::ServerConfig* c) { c->set_max_retrieve_bytes(100); }),
              HasSubstr("max_retrieve_bytes=100: must be in [1024, max_receive_message_bytes="));
  EXPECT_THAT(validate([&](v1::ServerConfig* c) { c->set_max_watchers(-1); }),
              HasSubstr("max_watchers=-1"));
  EXPECT_EQ(validate([](v1::ServerConfig* c) { c->set_shutdown_health_grace_ms(5000); }), "");
  v1::ServerConfig defaults;
  server::ApplyServerConfigDefaults(&defaults);
  EXPECT_EQ(defaults.metrics_host(), "127.0.0.1");  // loopback, whatever `host` is
}

TEST(EchoTest, LongValuesAreTruncatedWithTheirSize) {
  EXPECT_EQ(server::EchoValue("short"), "short");
  const std::string long_value(5000, 'x');
  EXPECT_EQ(server::EchoValue(long_value), std::string(64, 'x') + "\u2026(5000 bytes)");
  const grpc::Status s =
      server::ToGrpcStatus(absl::InvalidArgumentError("job_id=" + std::string(100000, 'j')));
  EXPECT_LE(s.error_message().size(), server::kMaxStatusMessageBytes + 32);
  EXPECT_THAT(s.error_message(), HasSubstr("(100007 bytes)"));
}

TEST_F(InProcessTest, LongIdsAreNotEchoedInFull) {
  Start(Config());
  std::unique_ptr<client::OptowerClient> c = Client();
  const std::string long_id(10000, 'v');  // under max_admin_bytes, so the handler sees it
  const absl::Status rollback = c->Rollback(long_id);
  EXPECT_EQ(rollback.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(rollback.message().size(), 200u);
  EXPECT_THAT(std::string(rollback.message()), HasSubstr("(10000 bytes): too long"));
}

// ------------------------------------------------------------------------------------------------
// 7 and 13: the WatchTraining bound and the admin work queue, on a hand-built admin service whose
// trainer job blocks in its first hook until the test releases it (deterministic: no timing).
// ------------------------------------------------------------------------------------------------

class AdminLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_ = testutil::RandomCatalog(8, kDimItem, 3);
    model_ = testutil::TinyModel(kDimContext, catalog_, /*temperature=*/1.0, /*seed=*/4);
    ASSERT_NE(model_, nullptr);
    absl::StatusOr<std::shared_ptr<const ModelSnapshot>> snap =
        ModelSnapshot::Build("init-0", model_, catalog_, 0, ModelSnapshot::Options());
    ASSERT_TRUE(snap.ok()) << snap.status();
    EventLogOptions log_options;
    log_options.path = dir_.File("events.sqlite");
    absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(log_options);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    absl::StatusOr<std::unique_ptr<RetrievalEngine>> engine =
        RetrievalEngine::Create(RetrievalEngineOptions(), *snap, log_.get());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    absl::StatusOr<std::unique_ptr<ModelStore>> store = FileModelStore::Open(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    TrainerHooks hooks;
    hooks.current_model = [this]() -> absl::StatusOr<ServedModel> {
      release_job_.WaitForNotification();
      return absl::FailedPreconditionError("released by the test");
    };
    hooks.publish = [](const std::string&, const TwoTowerModel&) { return absl::OkStatus(); };
    absl::StatusOr<std::unique_ptr<Trainer>> trainer =
        Trainer::Create(TrainerOptions(), log_.get(), store_.get(), hooks);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    trainer_ = std::move(*trainer);

    server::AdminServiceImpl::Deps deps;
    deps.engine = engine_.get();
    deps.event_log = log_.get();
    deps.metrics = &metrics_;
    deps.store = store_.get();
    deps.trainer = trainer_.get();
    server::AdminServiceImpl::Info info;
    info.started = absl::Now();
    info.max_watchers = 1;
    info.max_queue = 2;
    admin_ = std::make_unique<server::AdminServiceImpl>(deps, std::move(info));
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(admin_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::AdminService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                                          grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (!release_job_.HasBeenNotified()) release_job_.Notify();
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      server_->Wait();
    }
    if (trainer_ != nullptr) trainer_->Shutdown();
    if (admin_ != nullptr) admin_->Stop();
    if (log_ != nullptr) (void)log_->Close();
  }
  bool CatalogHas(int64_t id) const {
    const ItemCatalog& c = engine_->snapshot()->catalog();
    return std::find(c.ids.begin(), c.ids.end(), id) != c.ids.end();
  }

  TempDir dir_{"admin_limits"};
  ItemCatalog catalog_;
  std::shared_ptr<const TwoTowerModel> model_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<RetrievalEngine> engine_;
  std::unique_ptr<ModelStore> store_;
  std::unique_ptr<Trainer> trainer_;
  server::ServerMetrics metrics_;
  std::unique_ptr<server::AdminServiceImpl> admin_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<v1::AdminService::Stub> stub_;
  absl::Notification release_job_;
};

TEST_F(AdminLimitsTest, WatchersBeyondTheBoundAreResourceExhausted) {
  grpc::ClientContext trigger_context;
  v1::TriggerRetrainResponse triggered;
  ASSERT_TRUE(stub_->TriggerRetrain(&trigger_context, {}, &triggered).ok());
  v1::WatchTrainingRequest request;
  request.set_job_id(triggered.job_id());

  // The first stream holds the only slot: its first event proves the server streams it.
  grpc::ClientContext first_context;
  std::unique_ptr<grpc::ClientReader<v1::TrainingEvent>> first =
      stub_->WatchTraining(&first_context, request);
  v1::TrainingEvent event;
  ASSERT_TRUE(first->Read(&event));

  grpc::ClientContext second_context;
  std::unique_ptr<grpc::ClientReader<v1::TrainingEvent>> second =
      stub_->WatchTraining(&second_context, request);
  EXPECT_FALSE(second->Read(&event));
  const grpc::Status refused = second->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("1 streams are already open (max_watchers)"));

  // Ending the first stream frees its slot (once its reactor is done; retry until then).
  first_context.TryCancel();
  EXPECT_EQ(first->Finish().error_code(), grpc::StatusCode::CANCELLED);
  bool streamed = false;
  for (int attempt = 0; attempt < 100 && !streamed; ++attempt) {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::TrainingEvent>> again =
        stub_->WatchTraining(&context, request);
    if (again->Read(&event)) {
      streamed = true;
      release_job_.Notify();  // the job ends; the stream ends with OK after its final event
      while (again->Read(&event)) {
      }
      EXPECT_TRUE(again->Finish().ok());
    } else {
      EXPECT_EQ(again->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  EXPECT_TRUE(streamed);
}

TEST_F(AdminLimitsTest, QueueIsBoundedAndExpiredCallsAreNotRun) {
  // Occupy the worker until the test says so.
  absl::Notification worker_busy, release_worker;
  ASSERT_TRUE(admin_
                  ->QueueForTest([&] {
                    worker_busy.Notify();
                    release_worker.WaitForNotification();
                  })
                  .ok());
  worker_busy.WaitForNotification();

  // Two deletes wait behind it, each with a deadline that passes while it waits.
  const int64_t first_id = catalog_.ids[0], second_id = catalog_.ids[1];
  for (int64_t id : {first_id, second_id}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    v1::DeleteItemsRequest del;
    del.add_item_ids(id);
    v1::DeleteItemsResponse response;
    EXPECT_EQ(stub_->DeleteItems(&context, del, &response).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // Both are queued (max_queue = 2), so a third call is refused at once.
  EXPECT_EQ(admin_->QueueForTest([] {}).code(), absl::StatusCode::kResourceExhausted);
  grpc::ClientContext context;
  v1::DeleteItemsRequest del;
  del.add_item_ids(catalog_.ids[2]);
  v1::DeleteItemsResponse response;
  const grpc::Status full = stub_->DeleteItems(&context, del, &response);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(full.error_message(), HasSubstr("max_admin_queue=2"));

  // Let the worker go and wait until it drained the queue: the expired deletes were not run.
  release_worker.Notify();
  absl::Notification drained;
  absl::Status queued = admin_->QueueForTest([&] { drained.Notify(); });
  for (int i = 0; i < 200 && absl::IsResourceExhausted(queued); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    queued = admin_->QueueForTest([&] { drained.Notify(); });
  }
  ASSERT_TRUE(queued.ok()) << queued;
  drained.WaitForNotification();
  EXPECT_TRUE(CatalogHas(first_id));
  EXPECT_TRUE(CatalogHas(second_id));
  EXPECT_TRUE(CatalogHas(catalog_.ids[2]));
}

// ------------------------------------------------------------------------------------------------
// 10. The metrics endpoint against slow clients
// ------------------------------------------------------------------------------------------------

using testutil::ConnectLoopback;

// A client that sends one byte of a request head every `interval` until the server closes the
// connection or `give_up` passes. Returns how long the server kept it.
absl::Duration Trickle(int port, absl::Duration interval, absl::Duration give_up) {
  const int fd = ConnectLoopback(port);
  EXPECT_GE(fd, 0);
  const std::string head = "GET /metrics HTTP/1.1\r\nX-Slow: " + std::string(10000, 'a');
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < head.size() && absl::Now() - start < give_up; ++i) {
    if (::send(fd, &head[i], 1, MSG_NOSIGNAL) != 1) break;  // the server closed it
    absl::SleepFor(interval);
  }
  const absl::Duration kept = absl::Now() - start;
  ::close(fd);
  return kept;
}

// Before: every read reset a 5 s timeout, so a byte every 300 ms held the connection until the
// head limit (8 KB: 40 minutes). Now the exchange has one total deadline.
TEST(MetricsHttpEdgesTest, TricklingClientIsCutOffAtTheTotalDeadline) {
  server::MetricsHttpServerOptions options;
  options.request_deadline = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<server::MetricsHttpServer>> http =
      server::MetricsHttpServer::Start(options, [] { return std::string("x 1\n"); });
  ASSERT_TRUE(http.ok()) << http.status();
  // A send fails only after the server closed and the peer reset arrived: allow a few intervals
  // beyond the deadline, and give up (failing) at 30 s.
  const absl::Duration kept =
      Trickle((*http)->port(), absl::Milliseconds(300), /*give_up=*/absl::Seconds(30));
  EXPECT_LT(kept, absl::Seconds(10));
}

TEST(MetricsHttpEdgesTest, SlowClientsDoNotBlockAScrape) {
  server::MetricsHttpServerOptions options;
  options.request_deadline = absl::Seconds(30);  // long: the scrape must not wait for it
  options.max_connections = 2;
  absl::StatusOr<std::unique_ptr<server::MetricsHttpServer>> http =
      server::MetricsHttpServer::Start(options, [] { return std::string("x 1\n"); });
  ASSERT_TRUE(http.ok()) << http.status();
  const int port = (*http)->port();
  std::atomic<bool> stop{false};
  std::thread slow([&] {
    const int fd = ConnectLoopback(port);
    while (!stop.load()) {
      (void)::send(fd, "G", 1, MSG_NOSIGNAL);  // a connection that never completes its head
      absl::SleepFor(absl::Milliseconds(100));
    }
    ::close(fd);
  });
  absl::SleepFor(absl::Milliseconds(300));  // let the server take the slow connection
  absl::StatusOr<std::string> scrape = testutil::HttpExchange(port, "GET /metrics HTTP/1.1\r\n\r\n");
  stop = true;
  slow.join();
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_THAT(*scrape, StartsWith("HTTP/1.1 200 OK"));
}

TEST(MetricsHttpEdgesTest, ConnectionsBeyondThePoolAndQueueGet503AtOnce) {
  server::MetricsHttpServerOptions options;
  options.request_deadline = absl::Seconds(60);
  options.max_connections = 1;
  options.max_pending = 0;
  absl::StatusOr<std::unique_ptr<server::MetricsHttpServer>> http =
      server::MetricsHttpServer::Start(options, [] { return std::string("x 1\n"); });
  ASSERT_TRUE(http.ok()) << http.status();
  const int port = (*http)->port();
  const int slow = ConnectLoopback(port);  // takes the only thread and sends nothing
  ASSERT_GE(slow, 0);
  // Once the thread holds it, the next connection is answered 503 without waiting 60 s.
  std::string answer;
  for (int attempt = 0; attempt < 100; ++attempt) {
    absl::StatusOr<std::string> r = testutil::HttpExchange(port, "GET /metrics HTTP/1.1\r\n\r\n");
    ASSERT_TRUE(r.ok()) << r.status();
    answer = *r;
    if (absl::StartsWith(answer, "HTTP/1.1 503 ")) break;
    absl::SleepFor(absl::Milliseconds(20));  // the thread had not taken `slow` yet
  }
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 503 Service Unavailable"));
  ::close(slow);
}

TEST(MetricsHttpEdgesTest, StopIsBoundedWithTricklingClients) {
  server::MetricsHttpServerOptions options;
  options.request_deadline = absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<server::MetricsHttpServer>> http =
      server::MetricsHttpServer::Start(options, [] { return std::string("x 1\n"); });
  ASSERT_TRUE(http.ok()) << http.status();
  const int port = (*http)->port();
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i) {  // more than the pool: some wait in the queue
    clients.emplace_back([&] {
      const int fd = ConnectLoopback(port);
      while (!stop.load()) {
        if (::send(fd, "G", 1, MSG_NOSIGNAL) != 1) break;
        absl::SleepFor(absl::Milliseconds(50));
      }
      ::close(fd);
    });
  }
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time start = absl::Now();
  (*http)->Stop();
  const absl::Duration took = absl::Now() - start;
  stop = true;
  for (std::thread& t : clients) t.join();
  // Stop wakes every thread at once; 5 s is far above a wake-up and far below the 60 s deadline.
  EXPECT_LT(took, absl::Seconds(5));
}

}  // namespace
}  // namespace optower
