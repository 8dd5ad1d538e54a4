// The launch library (launch/): server configs written with protobuf's TextFormat read back by the
// server's own parser, and optower-server child processes started, found ready, and stopped (SIGTERM,
// then SIGKILL after the timeout), with the errors a caller sees when the binary is missing or the
// child never listens.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "client/optower_client.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "launch/server_config_text.h"
#include "launch/server_process.h"
#include "server/server_config.h"
#include "tests/testing/server_process.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using launch::ServerProcess;
using testutil::TempDir;

TEST(ServerConfigTextTest, RoundTripsThroughTheServersParserWithQuotesAndBackslashes) {
  v1::ServerConfig config = launch::LoopbackServerConfig();
  config.set_data_dir("/tmp/a \"quoted\" dir\\with\\backslashes");
  config.set_items_path("/tmp/it's/items.csv");
  config.set_epsilon(0.1);
  config.set_temperature(1.0 / 3.0);
  config.mutable_event_log()->set_durability(v1::EventLogConfig::SYNC);
  config.mutable_trainer()->set_objective(v1::TrainerConfig::IPW);
  config.mutable_trainer()->set_keep_rejected_versions(0);  // optional: presence must survive
  const std::string text = launch::ServerConfigText(config, "first line\nsecond line");
  EXPECT_THAT(text, StartsWith("# first line\n# second line\n"));
  absl::StatusOr<v1::ServerConfig> parsed = server::ParseServerConfig(text, "test");
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << text;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*parsed, config)) << text;
  EXPECT_TRUE(parsed->has_port());
  EXPECT_TRUE(parsed->trainer().has_keep_rejected_versions());
}

TEST(ServerConfigTextTest, WriteServerConfigNamesAnUnwritablePath) {
  const absl::Status s =
      launch::WriteServerConfig(launch::LoopbackServerConfig(), "/nonexistent/dir/server.textproto");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("/nonexistent/dir/server.textproto"));
}

TEST(ServerProcessTest, MissingBinaryIsNotFound) {
  TempDir dir("launch_missing");
  ServerProcess::Options o;
  o.binary = "/nonexistent/optower-server";
  o.stderr_path = dir.File("err");
  absl::StatusOr<std::unique_ptr<ServerProcess>> p = ServerProcess::Start(o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound) << p.status();
}

TEST(ServerProcessTest, ChildThatExitsWithoutListeningIsUnavailable) {
  TempDir dir("launch_false");
  ServerProcess::Options o;
  o.binary = "/bin/false";
  o.stderr_path = dir.File("err");
  absl::StatusOr<std::unique_ptr<ServerProcess>> p = ServerProcess::Start(o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnavailable) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("optower-server did not start"));
}

TEST(ServerProcessTest, FindServerBinaryNamesTheFlagForABadPath) {
  absl::StatusOr<std::string> b = launch::FindServerBinary("/nonexistent/x", "--server-binary");
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("--server-binary=/nonexistent/x"));
}

// A stand-in "server" that announces the address from its environment and ignores SIGTERM: the
// address is parsed from the line, extra_env reaches the child, and Stop kills it after the timeout.
TEST(ServerProcessTest, StopKillsAChildThatIgnoresSigtermAndExtraEnvReachesIt) {
  TempDir dir("launch_stubborn");
  const std::string script = dir.File("stubborn.sh");
  std::ofstream(script) << "#!/bin/sh\ntrap '' TERM\n"
                           "echo \"optower-server listening on $LAUNCH_TEST_ADDRESS\"\n"
                           "while true; do sleep 1; done\n";
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  ServerProcess::Options o;
  o.binary = script;
  o.stderr_path = dir.File("err");
  o.extra_env = {"LAUNCH_TEST_ADDRESS=127.0.0.1:4242"};
  absl::StatusOr<std::unique_ptr<ServerProcess>> p = ServerProcess::Start(o);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->address(), "127.0.0.1:4242");
  EXPECT_TRUE((*p)->Running());
  const absl::Status s = (*p)->Stop(absl::Milliseconds(300));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_FALSE((*p)->Running());
  EXPECT_EQ((*p)->pid(), -1);
  EXPECT_EQ((*p)->Stop(absl::Seconds(1)).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ServerProcessTest, StartsTheRealServerFromAConfigMessageAndStopsItCleanly) {
  TempDir dir("launch_real");
  v1::ServerConfig config = launch::LoopbackServerConfig();
  config.set_data_dir(dir.File("data"));
  config.set_items_path(testutil::WriteItems(dir.path(), testutil::RandomCatalog(20, 3, 1)));
  config.set_dim_context(4);
  config.set_epsilon(0.25);
  config.mutable_trainer()->set_disabled(true);
  ServerProcess::Options o;
  o.binary = testutil::ServerBinaryPath();
  o.config = config;
  o.config_path = dir.File("server.textproto");
  o.args = {"--epsilon=0.5"};  // flags after --config override the file
  o.stderr_path = dir.File("err");
  o.start_timeout = absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<ServerProcess>> p = ServerProcess::Start(o);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT((*p)->address(), StartsWith("127.0.0.1:"));
  EXPECT_FALSE(absl::EndsWith((*p)->address(), ":0"));
  std::unique_ptr<client::OptowerClient> c =
      testutil::ConnectClient((*p)->address(), absl::Seconds(10));
  ASSERT_NE(c, nullptr);
  absl::StatusOr<v1::GetStatsResponse> stats = c->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->dim_context(), 4);
  EXPECT_EQ(stats->epsilon(), 0.5);
  EXPECT_TRUE((*p)->Stop(absl::Seconds(30)).ok()) << (*p)->LastStderrLine();
  EXPECT_FALSE((*p)->Running());
}

}  // namespace
}  // namespace optower
