// The scale-out deployment for real (docs/SCALING.md): optower-server processes on 127.0.0.1 sharing
// one PostgreSQL schema — two serving replicas (role=serve) and two trainers (role=train, one
// elected, one standby):
//   - Retrieve through both replicas; feedback for each request sent to the OTHER replica is accepted;
//   - roles refuse what they do not take (admin writes on a replica name the trainer's address;
//     Retrieve on the trainer);
//   - a retrain on the elected trainer is promoted and both replicas serve the new version;
//   - SIGKILL of a replica: the other keeps serving; restarted, it serves the shared CURRENT;
//   - SIGKILL of the elected trainer: the standby is elected and its retrain reaches the replicas;
//   - sync durability: every acknowledged served row and accepted feedback is in the database.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/optower_client.h"
#include "core/storage/pg_connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "launch/server_config_text.h"
#include "tests/testing/pg_test_db.h"
#include "tests/testing/server_process.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using testutil::ServerProcess;

constexpr int kItems = 40;
constexpr int kDimItem = 3;
constexpr int kDimContext = 4;

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(schema_.ok()) << schema_.status();
    dsn_file_ = schema_.WriteDsnFile(dir_.path());
    items_ = testutil::WriteItems(dir_.path(), testutil::RandomCatalog(kItems, kDimItem, /*seed=*/3));
    config_ = dir_.File("server.textproto");
    v1::ServerConfig config;
    testutil::SetFastTrainer(config.mutable_trainer());
    config.mutable_postgres()->set_poll_interval_ms(500);
    config.mutable_postgres()->set_election_interval_ms(200);
    ASSERT_TRUE(launch::WriteServerConfig(config, config_).ok());
  }

  absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& name, const std::string& role,
                                                       const std::string& trainer_address = "") {
    // Replicas get no items_path, as in deploy/: they serve the catalog the trainer seeded.
    std::vector<std::string> flags = {
        "--config=" + config_, "--port=0", "--data_dir=" + dir_.File("data-" + name),
        absl::StrCat("--dim_context=", kDimContext), "--durability=sync",
        "--postgres_dsn_file=" + dsn_file_, "--role=" + role};
    if (role != "serve") flags.push_back("--items=" + items_);
    if (!trainer_address.empty()) flags.push_back("--trainer_address=" + trainer_address);
    return testutil::StartServerProcess(flags, dir_.File(name + ".err"));
  }

  static std::unique_ptr<client::OptowerClient> Connect(const ServerProcess& p) {
    return testutil::ConnectClient(p.address(), absl::Seconds(30));
  }

  // n Retrieve calls through `serve` (k = 2); their feedback goes through `feedback`. Adds the
  // acknowledged served rows and accepted feedback to the counters.
  void Play(client::OptowerClient& serve, client::OptowerClient& feedback, int n, const std::string& tag) {
    for (int i = 0; i < n; ++i) {
      v1::RetrieveRequest r;
      for (int j = 0; j < kDimContext; ++j) r.mutable_context()->add_dense(0.2f * ((i + j) % 5) - 0.4f);
      r.set_k(2);
      r.set_request_id(absl::StrCat(tag, "-", i));
      absl::StatusOr<v1::RetrieveResponse> response = serve.Retrieve(r);
      ASSERT_TRUE(response.ok()) << response.status();
      served_rows_ += response->items_size();
      v1::FeedbackRequest f;
      for (const v1::RetrievedItem& item : response->items()) {
        v1::FeedbackEvent* e = f.add_events();
        e->set_request_id(r.request_id());
        e->set_item_id(item.item_id());
        e->set_reward((item.item_id() + i) % 3 == 0 ? 1.0 : 0.0);
      }
      absl::StatusOr<v1::FeedbackResponse> fr = feedback.Feedback(f);
      ASSERT_TRUE(fr.ok()) << fr.status();
      ASSERT_EQ(fr->accepted(), response->items_size()) << "feedback to the other replica";
      accepted_ += fr->accepted();
    }
  }

  // Waits until `c` reports scale_out.elected_trainer (or the timeout); returns whether it did.
  static bool WaitElected(client::OptowerClient& c, absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    while (absl::Now() < until) {
      absl::StatusOr<v1::GetStatsResponse> s = c.GetStats();
      if (s.ok() && s->scale_out().elected_trainer()) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  // Forces a retrain on `trainer` and returns the promoted version ("" on failure).
  static std::string Retrain(client::OptowerClient& trainer) {
    absl::StatusOr<std::string> job = trainer.TriggerRetrain(/*force=*/true);
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return "";
    const absl::Time until = absl::Now() + absl::Seconds(120);
    while (absl::Now() < until) {
      absl::StatusOr<v1::TrainingJob> j = trainer.GetTrainingJob(*job);
      if (j.ok() && j->state() == v1::TRAINING_JOB_STATE_SUCCEEDED) return j->version();
      if (j.ok() && j->state() > v1::TRAINING_JOB_STATE_SUCCEEDED) {
        ADD_FAILURE() << "job " << *job << " ended: " << j->DebugString();
        return "";
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "job " << *job << " did not finish";
    return "";
  }

  // Waits until every client serves `version`; returns the time that took.
  static absl::Duration WaitServing(const std::vector<client::OptowerClient*>& clients,
                                    const std::string& version) {
    const absl::Time start = absl::Now();
    for (client::OptowerClient* c : clients) {
      while (absl::Now() - start < absl::Seconds(60)) {
        absl::StatusOr<v1::GetStatsResponse> s = c->GetStats();
        if (s.ok() && s->model_version() == version) break;
        absl::SleepFor(absl::Milliseconds(20));
      }
      absl::StatusOr<v1::GetStatsResponse> s = c->GetStats();
      EXPECT_TRUE(s.ok() && s->model_version() == version)
          << (s.ok() ? s->model_version() : s.status().ToString()) << " != " << version;
    }
    return absl::Now() - start;
  }

  int64_t CountRows(const std::string& table) {
    absl::StatusOr<std::unique_ptr<PgConnection>> c = PgConnection::Connect(schema_.dsn(), "test");
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return -1;
    absl::StatusOr<PgResult> r = (*c)->Query(absl::StrCat("SELECT count(*) FROM ", table), {}, table);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->GetInt(0, 0) : -1;
  }

  testing::PgTestSchema schema_;
  testutil::TempDir dir_{"scaleout_test"};
  std::string dsn_file_, items_, config_;
  int64_t served_rows_ = 0;
  int64_t accepted_ = 0;
};

TEST_F(ScaleOutTest, ReplicasAndTrainersShareOneDatabase) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> t1 = Start("t1", "train");
  ASSERT_TRUE(t1.ok()) << t1.status();
  const std::string trainer_address = (*t1)->address();
  absl::StatusOr<std::unique_ptr<ServerProcess>> r1 = Start("r1", "serve", trainer_address);
  ASSERT_TRUE(r1.ok()) << r1.status();
  absl::StatusOr<std::unique_ptr<ServerProcess>> r2 = Start("r2", "serve", trainer_address);
  ASSERT_TRUE(r2.ok()) << r2.status();
  absl::StatusOr<std::unique_ptr<ServerProcess>> t2 = Start("t2", "train");
  ASSERT_TRUE(t2.ok()) << t2.status();
  auto c1 = Connect(**r1), c2 = Connect(**r2), ct1 = Connect(**t1), ct2 = Connect(**t2);

  ASSERT_TRUE(WaitElected(*ct1, absl::Seconds(10)));
  absl::StatusOr<v1::GetStatsResponse> s2 = ct2->GetStats();
  ASSERT_TRUE(s2.ok());
  EXPECT_FALSE(s2->scale_out().elected_trainer());
  EXPECT_EQ(s2->scale_out().backend(), "postgres");

  // Roles refuse what they do not take, naming where to go.
  absl::StatusOr<std::string> refused = c1->TriggerRetrain(true);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr(trainer_address));
  absl::StatusOr<v1::RetrieveResponse> on_trainer =
      ct1->Retrieve(std::vector<float>(kDimContext, 0.1f), 2);
  EXPECT_EQ(on_trainer.status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<v1::FeedbackResponse> feedback_on_trainer = ct1->Feedback("r", 1, 1.0);
  EXPECT_EQ(feedback_on_trainer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(feedback_on_trainer.status().message(), HasSubstr("role=train"));
  absl::StatusOr<std::string> standby = ct2->TriggerRetrain(true);
  EXPECT_EQ(standby.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(standby.status().message(), HasSubstr("standby"));

  // Serve through both; feedback crosses over.
  Play(*c1, *c2, 60, "a");
  Play(*c2, *c1, 60, "b");
  const std::string v1 = Retrain(*ct1);
  ASSERT_FALSE(v1.empty());
  const absl::Duration follow = WaitServing({c1.get(), c2.get()}, v1);
  std::fprintf(stderr, "promotion of %s to both replicas serving it: %.0f ms\n", v1.c_str(),
               absl::ToDoubleMilliseconds(follow));

  // A replica dies; the other serves on; the restarted one serves the shared CURRENT.
  (*r1)->Kill();
  Play(*c2, *c2, 20, "c");
  r1 = Start("r1", "serve", trainer_address);
  ASSERT_TRUE(r1.ok()) << r1.status();
  c1 = Connect(**r1);
  WaitServing({c1.get()}, v1);
  Play(*c1, *c2, 20, "d");

  // The elected trainer dies; the standby takes over and its retrain reaches both replicas.
  const absl::Time killed = absl::Now();
  (*t1)->Kill();
  ASSERT_TRUE(WaitElected(*ct2, absl::Seconds(30)));
  std::fprintf(stderr, "trainer failover: %.0f ms\n", absl::ToDoubleMilliseconds(absl::Now() - killed));
  const std::string v2 = Retrain(*ct2);
  ASSERT_FALSE(v2.empty());
  EXPECT_NE(v2, v1);
  WaitServing({c1.get(), c2.get()}, v2);

  // Sync durability: everything acknowledged is in the database, the killed replica's too.
  EXPECT_EQ(CountRows("served"), served_rows_);
  EXPECT_EQ(CountRows("feedback"), accepted_);
  EXPECT_TRUE((*r2)->Stop(absl::Seconds(30)).ok());
  EXPECT_TRUE((*r1)->Stop(absl::Seconds(30)).ok());
  EXPECT_TRUE((*t2)->Stop(absl::Seconds(30)).ok());
}

// A replica with no items_path of its own cannot start on a database whose shared catalog was never
// seeded: it says to start the trainer first (and its supervisor restarts it later).
TEST_F(ScaleOutTest, AReplicaOnAnEmptySharedCatalogRefusesToStartNamingTheTrainer) {
  const std::vector<std::string> flags = {
      "--config=" + config_, "--port=0", "--data_dir=" + dir_.File("data-lonely"),
      absl::StrCat("--dim_context=", kDimContext), "--postgres_dsn_file=" + dsn_file_, "--role=serve"};
  absl::StatusOr<std::unique_ptr<ServerProcess>> p =
      testutil::StartServerProcess(flags, dir_.File("lonely.err"));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("the shared catalog is empty"));
}

}  // namespace
}  // namespace optower
