// `optower admin retrain|jobs|models|rollback` and `optower health` (the real binary) against an
// in-process optower-server on 127.0.0.1 (ephemeral port). --json output is parsed by Python's json
// module (/usr/bin/python3). The log is filled through the C++ client with rewards that depend on
// context and item features (r = 1 when x . f_a > 0), so a job has something to learn.
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/optower_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optower_server.h"
#include "tests/testing/serving_fixture.h"
#include "tests/testing/subprocess.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using testutil::RunOptower;
using testutil::SubprocessResult;
using testutil::PyJson;
using testutil::TempDir;

constexpr int kDim = 3;  // context and item features

class CliAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_ = testutil::RandomCatalog(15, kDim, /*seed=*/3);
    v1::ServerConfig config;
    config.set_port(0);
    config.set_data_dir(dir_.File("data"));
    config.set_items_path(testutil::WriteItems(dir_.path(), catalog_));
    config.set_dim_context(kDim);
    config.add_init_hidden(8);
    config.set_init_embedding_dim(8);
    config.mutable_event_log()->set_max_commit_delay_ms(1);
    v1::TrainerConfig* t = config.mutable_trainer();
    t->set_min_events(100);
    t->set_epochs(3);
    t->set_reward_model_epochs(5);
    t->set_learning_rate(0.01);
    t->add_hidden(8);
    t->set_embedding_dim(8);
    absl::StatusOr<std::unique_ptr<server::OptowerServer>> s = server::OptowerServer::Start(config);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    address_ = server_->address();
    client::ClientOptions options;
    options.address = address_;
    auto c = client::OptowerClient::Connect(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }

  // `n` requests of 2 items, feedback for every served item.
  void Play(int n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal;
    v1::FeedbackRequest feedback;
    for (int i = 0; i < n; ++i) {
      std::vector<float> x(kDim);
      for (float& v : x) v = normal(rng);
      absl::StatusOr<v1::RetrieveResponse> r = client_->Retrieve(x, 2);
      ASSERT_TRUE(r.ok()) << r.status();
      for (const v1::RetrievedItem& item : r->items()) {
        const float* f = catalog_.feature(item.item_id() - catalog_.ids[0]);
        double dot = 0;
        for (int j = 0; j < kDim; ++j) dot += x[j] * f[j];
        v1::FeedbackEvent* e = feedback.add_events();
        e->set_request_id(r->request_id());
        e->set_item_id(item.item_id());
        e->set_reward(dot > 0 ? 1.0 : 0.0);
      }
    }
    ASSERT_TRUE(client_->Feedback(feedback).ok());
    ASSERT_TRUE(server_->event_log().Flush().ok());
  }

  SubprocessResult Optower(const std::vector<std::string>& args) {
    testutil::SubprocessOptions options;
    options.timeout_seconds = 60;
    absl::StatusOr<SubprocessResult> r = RunOptower(args, options);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : SubprocessResult{};
  }

  TempDir dir_{"cli_admin_test"};
  ItemCatalog catalog_;
  std::unique_ptr<server::OptowerServer> server_;
  std::unique_ptr<client::OptowerClient> client_;
  std::string address_;
};

TEST_F(CliAdminTest, RetrainWatchJobsModelsAndRollback) {
  // An empty log: the job fails, --watch says why and exits 1.
  SubprocessResult r = Optower({"admin", "retrain", "--server", address_, "--watch"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("failed"));
  EXPECT_THAT(r.out, HasSubstr("too few usable events"));
  EXPECT_THAT(r.err, HasSubstr("done: failed"));

  Play(/*n=*/400, /*seed=*/1);
  // Plain progress (stderr is not a terminal here), the outcome on stdout.
  r = Optower({"admin", "retrain", "--server", address_, "--watch", "--force"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("policy epoch 1/3"));
  EXPECT_THAT(r.err, HasSubstr("evaluate: DR old"));
  EXPECT_THAT(r.out, HasSubstr("promoted: version 000001 is served"));
  EXPECT_THAT(r.out, HasSubstr("reason: "));

  Play(/*n=*/200, /*seed=*/2);
  r = Optower({"admin", "retrain", "--server", address_, "--watch", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one JSON object: " << r.out;
  EXPECT_EQ(PyJson(r.out, "d['state'] in ('succeeded', 'rejected'), d['parent_version'], d['version']"),
            "(True, '000001', '000002')");
  EXPECT_EQ(PyJson(r.out, "d['ope']['diff']['ci_low'] <= d['ope']['diff']['value'] <= "
                          "d['ope']['diff']['ci_high']"),
            "True");
  const std::string job_id = PyJson(r.out, "d['job_id']");

  r = Optower({"admin", "jobs", "--server", address_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(PyJson(r.out, "[j['state'] for j in d['jobs']][0], len(d['jobs']), d['jobs'][-1]['job_id']"),
            absl::StrCat("('failed', 3, '", job_id, "')"));
  r = Optower({"admin", "jobs", "--server", address_, job_id, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(PyJson(r.out, "d['job_id'], d['counts']['with_feedback']"),
            absl::StrCat("('", job_id, "', 1200)"));
  r = Optower({"admin", "jobs", "--server", address_, job_id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("job ", job_id)));
  r = Optower({"admin", "jobs", "--server", address_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(job_id));
  r = Optower({"admin", "jobs", "--server", address_, "job-nope"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("job-nope"));

  r = Optower({"admin", "models", "--server", address_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(PyJson(r.out, "[m['version'] for m in d['models']], d['models'][0]['promoted'], "
                          "d['models'][0]['index_recall'] == 1.0"),
            "(['000001', '000002'], True, True)");
  r = Optower({"admin", "models", "--server", address_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("000002"));

  // Bad and unknown versions: exit 2, the message names them; nothing changes.
  r = Optower({"admin", "rollback", "--server", address_, "not-a-version"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("not-a-version"));
  r = Optower({"admin", "rollback", "--server", address_, "000042"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("000042"));
  r = Optower({"admin", "rollback", "--server", address_, "000001", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(PyJson(r.out, "d['version'], d['serving']"), "('000001', True)");
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->model_version(), "000001");
  r = Optower({"stats", "--server", address_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CliAdminTest, RetrainWithoutWatchPrintsTheJobId) {
  SubprocessResult r = Optower({"admin", "retrain", "--server", address_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string job_id = PyJson(r.out, "d['job_id']");
  EXPECT_THAT(job_id, HasSubstr("job-"));
  absl::StatusOr<v1::TrainingJob> job = client_->GetTrainingJob(job_id);
  EXPECT_TRUE(job.ok()) << job.status();
}

TEST_F(CliAdminTest, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"admin", "--server", address_},
           {"admin", "frobnicate", "--server", address_},
           {"admin", "rollback", "--server", address_},
           {"admin", "models", "--server", address_, "extra"},
           {"admin", "jobs", "--server", address_, "--watch"},
           {"admin", "models"},
           {"health"}}) {
    SubprocessResult r = Optower(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_EQ(r.ErrLineCount(), 1) << r.err;
  }
}

TEST_F(CliAdminTest, HealthExitsZeroOnlyWhenServing) {
  SubprocessResult r = Optower({"health", "--server", address_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  r = Optower({"health", "--server", address_, "--service", "optower.v1.RetrievalService", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(PyJson(r.out, "d['status'], d['serving']"), "('SERVING', True)");
  r = Optower({"health", "--server", address_, "--service", "no.such.Service"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const int port = server_->port();
  ASSERT_TRUE(server_->Shutdown().ok());
  r = Optower({"health", "--server", absl::StrCat("127.0.0.1:", port), "--timeout", "2"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "UNREACHABLE\n");
}

}  // namespace
}  // namespace optower
