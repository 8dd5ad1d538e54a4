// The trainer inside a real optower-server (127.0.0.1, ephemeral port) driven through the C++
// client: retraining under concurrent Retrieve traffic, refused jobs, rollback, restart, the
// WatchTraining stream and the one-job-at-a-time rule.
//
// Synthetic users: 20 items with 3 N(0,1) features, contexts x ~ N(0,1)^3, a fixed 3x3 N(0,1)
// matrix B, and reward r ~ Bernoulli(sigmoid(3 x^T B f_a)) — strongly context dependent, so a
// learned policy beats the random towers the server starts with by a wide margin (about 0.5 ->
// 0.85 in true value), and the OPE gate's decision is not a coin flip. Serving is stochastic
// (epsilon 0.1 plus a softmax at temperature 1) unless a test asks for greedy serving. Every
// Retrieve of the data-filling phase carries a fixed seed, so the logged data are reproducible;
// feedback is sent for every served item.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/optower_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optower_server.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using server::OptowerServer;

constexpr int kItems = 20;
constexpr int kDimItem = 3;
constexpr int kDimContext = 3;
constexpr int kSlate = 2;

struct Users {
  ItemCatalog items;
  std::vector<double> b;  // [kDimContext, kDimItem]

  Users() {
    items = testutil::RandomCatalog(kItems, kDimItem, /*seed=*/11);
    std::mt19937_64 rng(12);
    std::normal_distribution<double> normal;
    for (int i = 0; i < kDimContext * kDimItem; ++i) b.push_back(normal(rng));
  }
  double Q(const std::vector<float>& x, int64_t item_id) const {
    const int64_t row = item_id - items.ids[0];
    const float* f = items.feature(row);
    double s = 0;
    for (int i = 0; i < kDimContext; ++i)
      for (int j = 0; j < kDimItem; ++j) s += x[i] * b[i * kDimItem + j] * f[j];
    return 1.0 / (1.0 + std::exp(-3.0 * s));
  }
};

std::vector<float> RandomContext(std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> x(kDimContext);
  for (float& v : x) v = normal(rng);
  return x;
}

class TrainerServerTest : public ::testing::Test {
 protected:
  void SetUp() override { items_path_ = testutil::WriteItems(dir_.path(), users_.items); }

  v1::ServerConfig Config() const {
    v1::ServerConfig c;
    c.set_port(0);
    c.set_data_dir(dir_.File("data"));
    c.set_items_path(items_path_);
    c.set_dim_context(kDimContext);
    c.set_max_k(5);
    c.add_init_hidden(16);
    c.set_init_embedding_dim(8);
    c.mutable_event_log()->set_max_commit_delay_ms(1);
    v1::TrainerConfig* t = c.mutable_trainer();
    t->set_min_events(100);
    t->set_holdout_fraction(0.25);
    t->set_epochs(4);
    t->set_reward_model_epochs(10);
    t->set_learning_rate(0.01);
    t->add_hidden(16);
    t->set_embedding_dim(8);
    t->set_threads(1);
    t->set_seed(1);
    return c;
  }

  void Start(const v1::ServerConfig& config) {
    absl::StatusOr<std::unique_ptr<OptowerServer>> s = OptowerServer::Start(config);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    client::ClientOptions options;
    options.address = server_->address();
    absl::StatusOr<std::unique_ptr<client::OptowerClient>> c = client::OptowerClient::Connect(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }

  void Restart(const v1::ServerConfig& config) {
    client_.reset();
    ASSERT_TRUE(server_->Shutdown().ok());
    server_.reset();
    Start(config);
  }

  // Plays `n` seeded requests of kSlate items and sends feedback for every served item (reward 0
  // for all of them with `zero_rewards`); then waits until the log has committed it all.
  void Play(int n, uint64_t seed, bool zero_rewards = false) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> unif;
    v1::FeedbackRequest feedback;
    for (int i = 0; i < n; ++i) {
      v1::RetrieveRequest request;
      const std::vector<float> x = RandomContext(rng);
      request.mutable_context()->mutable_dense()->Add(x.begin(), x.end());
      request.set_k(kSlate);
      request.set_seed(seed * 1000003 + i);
      absl::StatusOr<v1::RetrieveResponse> r = client_->Retrieve(request);
      ASSERT_TRUE(r.ok()) << r.status();
      for (const v1::RetrievedItem& item : r->items()) {
        v1::FeedbackEvent* e = feedback.add_events();
        e->set_request_id(r->request_id());
        e->set_item_id(item.item_id());
        e->set_reward(zero_rewards ? 0.0 : (unif(rng) < users_.Q(x, item.item_id()) ? 1.0 : 0.0));
      }
      if (feedback.events_size() >= 500 || i + 1 == n) {
        absl::StatusOr<v1::FeedbackResponse> f = client_->Feedback(feedback);
        ASSERT_TRUE(f.ok()) << f.status();
        ASSERT_EQ(f->accepted(), feedback.events_size());
        feedback.Clear();
      }
    }
    ASSERT_TRUE(server_->event_log().Flush().ok());
  }

  // Watches `job_id` to its end; returns every event.
  std::vector<v1::TrainingEvent> Watch(const std::string& job_id) {
    std::vector<v1::TrainingEvent> events;
    client::CallOptions call;
    call.deadline = absl::Seconds(50);
    const absl::Status s = client_->WatchTraining(
        job_id, [&](const v1::TrainingEvent& e) { events.push_back(e); }, call);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_FALSE(events.empty());
    if (!events.empty()) EXPECT_TRUE(events.back().final());
    return events;
  }

  // Triggers a job, follows it to the end and returns its final state.
  v1::TrainingJob RunJob(bool force) {
    absl::StatusOr<std::string> id = client_->TriggerRetrain(force);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return {};
    Watch(*id);
    absl::StatusOr<v1::TrainingJob> job = client_->GetTrainingJob(*id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : v1::TrainingJob();
  }

  std::string ServedVersion() {
    absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? stats->model_version() : "";
  }

  std::string RetrieveVersion() {
    absl::StatusOr<v1::RetrieveResponse> r = client_->Retrieve({0.1f, -0.2f, 0.3f}, 1);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->model_version() : "";
  }

  testutil::TempDir dir_{"trainer_server_test"};
  Users users_;
  std::string items_path_;
  std::unique_ptr<OptowerServer> server_;
  std::unique_ptr<client::OptowerClient> client_;
};

// What one client thread saw while a job ran.
struct ClientRecord {
  int64_t calls = 0;
  int64_t failures = 0;
  std::string first_error;
  std::vector<std::string> versions;  // each change of response.model_version, in order
};

TEST_F(TrainerServerTest, RetrainsUnderConcurrentRetrievesAndSwitchesVersionWithoutFailures) {
  Start(Config());
  Play(/*n=*/1500, /*seed=*/1);
  ASSERT_EQ(ServedVersion(), "init-0");

  constexpr int kClients = 3;
  std::atomic<bool> stop{false};
  std::vector<ClientRecord> records(kClients);
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      ClientRecord& rec = records[t];
      while (!stop.load()) {
        absl::StatusOr<v1::RetrieveResponse> r = client_->Retrieve(RandomContext(rng), kSlate);
        ++rec.calls;
        if (!r.ok()) {
          if (rec.failures++ == 0) rec.first_error = r.status().ToString();
          continue;
        }
        if (rec.versions.empty() || rec.versions.back() != r->model_version()) {
          rec.versions.push_back(r->model_version());
        }
      }
    });
  }

  absl::StatusOr<std::string> job_id = client_->TriggerRetrain(/*force=*/false);
  ASSERT_TRUE(job_id.ok()) << job_id.status();
  // One job at a time: a second trigger names the running one.
  absl::StatusOr<std::string> second = client_->TriggerRetrain(/*force=*/true);
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(*job_id));

  const std::vector<v1::TrainingEvent> events = Watch(*job_id);
  absl::SleepFor(absl::Milliseconds(300));  // clients keep calling on the new snapshot
  stop = true;
  for (std::thread& t : clients) t.join();

  // The stream: seq 1, 2, ... through every phase to the final decision.
  ASSERT_FALSE(events.empty());
  std::vector<std::string> phases;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq(), static_cast<int64_t>(i) + 1);
    EXPECT_EQ(events[i].job_id(), *job_id);
    EXPECT_EQ(events[i].final(), i + 1 == events.size());
    if (phases.empty() || phases.back() != events[i].phase()) phases.push_back(events[i].phase());
  }
  EXPECT_EQ(phases, (std::vector<std::string>{"snapshot", "reward_model", "policy", "evaluate",
                                              "save", "publish", "done"}));
  const v1::TrainingEvent& last = events.back();
  std::fprintf(stderr, "final event: %s\n", last.message().c_str());
  EXPECT_EQ(last.state(), v1::TRAINING_JOB_STATE_SUCCEEDED) << last.reason();
  EXPECT_EQ(last.decision(), "promoted");
  EXPECT_EQ(last.new_version(), "000001");
  ASSERT_TRUE(last.has_ope());
  EXPECT_LE(last.ope().diff().ci_low(), last.ope().diff().value());
  EXPECT_GE(last.ope().diff().ci_high(), last.ope().diff().value());
  EXPECT_GT(last.ope().diff().value(), 0) << "the learned policy should beat random towers";
  EXPECT_NEAR(last.ope().diff().value(), last.ope().new_value().value() - last.ope().old_value().value(),
              1e-9);
  int epoch_events = 0;
  for (const v1::TrainingEvent& e : events) epoch_events += e.phase() == "policy" && e.epoch() > 0;
  EXPECT_GT(epoch_events, 0);

  // Zero failed calls; every client moved from the random towers to the new version, once.
  for (int t = 0; t < kClients; ++t) {
    SCOPED_TRACE(absl::StrCat("client ", t));
    EXPECT_EQ(records[t].failures, 0) << records[t].first_error;
    EXPECT_GT(records[t].calls, 0);
    EXPECT_EQ(records[t].versions, (std::vector<std::string>{"init-0", "000001"}));
  }
  std::fprintf(stderr, "concurrent Retrieve calls during the job: %lld, %lld, %lld\n",
               static_cast<long long>(records[0].calls), static_cast<long long>(records[1].calls),
               static_cast<long long>(records[2].calls));

  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->model_version(), "000001");
  EXPECT_TRUE(stats->model_trained());
  EXPECT_EQ(stats->model_swaps(), 1);
  EXPECT_TRUE(stats->training().enabled());
  EXPECT_EQ(stats->training().running_job_id(), "");
  EXPECT_EQ(stats->training().last_job_id(), *job_id);
  EXPECT_EQ(stats->training().last_state(), v1::TRAINING_JOB_STATE_SUCCEEDED);
  EXPECT_EQ(stats->training().succeeded(), 1);
  EXPECT_TRUE(stats->training().has_last_ope());

  absl::StatusOr<v1::ListModelsResponse> models = client_->ListModels();
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->models_size(), 1);
  const v1::ModelVersion& m = models->models(0);
  EXPECT_EQ(m.version(), "000001");
  EXPECT_TRUE(m.promoted());
  EXPECT_TRUE(m.serving());
  EXPECT_TRUE(m.current());
  EXPECT_EQ(m.parent_version(), "");  // random towers are not a stored version
  EXPECT_EQ(m.job_id(), *job_id);
  EXPECT_EQ(m.objective(), "dr");
  EXPECT_TRUE(m.has_ope());
  ASSERT_TRUE(m.has_index_recall());
  EXPECT_DOUBLE_EQ(m.index_recall(), 1.0);  // exact index
  EXPECT_EQ(models->serving_version(), "000001");
}

TEST_F(TrainerServerTest, AllZeroRewardsAreRefusedAndTheServedVersionStays) {
  Start(Config());
  Play(/*n=*/300, /*seed=*/2, /*zero_rewards=*/true);
  absl::StatusOr<std::string> id = client_->TriggerRetrain(/*force=*/true);
  ASSERT_TRUE(id.ok()) << id.status();
  const std::vector<v1::TrainingEvent> events = Watch(*id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state(), v1::TRAINING_JOB_STATE_FAILED);
  EXPECT_THAT(events.back().reason(), HasSubstr("every logged reward equals 0"));
  EXPECT_EQ(events.back().new_version(), "");

  absl::StatusOr<v1::TrainingJob> job = client_->GetTrainingJob(*id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::TRAINING_JOB_STATE_FAILED);
  EXPECT_EQ(job->error_code(), "FAILED_PRECONDITION");
  EXPECT_THAT(job->reason(), HasSubstr("no signal to learn from"));
  EXPECT_EQ(job->counts().with_feedback(), 300 * kSlate);
  EXPECT_EQ(job->version(), "");
  EXPECT_FALSE(job->published());

  EXPECT_EQ(ServedVersion(), "init-0");
  EXPECT_EQ(RetrieveVersion(), "init-0");
  absl::StatusOr<v1::ListModelsResponse> models = client_->ListModels();
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_EQ(models->models_size(), 0);
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->training().failed(), 1);
  EXPECT_THAT(stats->training().last_reason(), HasSubstr("every logged reward equals 0"));
}

TEST_F(TrainerServerTest, DeterministicServingLogsAreRefusedAndTheServedVersionStays) {
  v1::ServerConfig config = Config();
  config.set_greedy(true);  // top-K, logged with propensity 1
  Start(config);
  Play(/*n=*/300, /*seed=*/3);
  const v1::TrainingJob job = RunJob(/*force=*/true);
  EXPECT_EQ(job.state(), v1::TRAINING_JOB_STATE_FAILED);
  EXPECT_EQ(job.error_code(), "FAILED_PRECONDITION");
  EXPECT_THAT(job.reason(), HasSubstr("deterministic logging policy"));
  EXPECT_EQ(ServedVersion(), "init-0");
  EXPECT_EQ(RetrieveVersion(), "init-0");
}

TEST_F(TrainerServerTest, RollbackServesTheEarlierVersionAndARestartKeepsIt) {
  // Start from a trained model folder: imported as 000001, so a rollback can return to it.
  std::shared_ptr<const TwoTowerModel> model =
      testutil::TinyModel(kDimContext, users_.items, /*temperature=*/1.0, /*seed=*/4);
  ASSERT_NE(model, nullptr);
  const std::string model_dir = dir_.File("model-a");
  ASSERT_TRUE(SaveModelFolder(model_dir, *model, nullptr, users_.items, "{}\n", false).ok());
  v1::ServerConfig config = Config();
  config.set_model_dir(model_dir);
  Start(config);
  EXPECT_EQ(ServedVersion(), "000001");
  EXPECT_TRUE(client_->GetStats()->model_trained());

  Play(/*n=*/600, /*seed=*/5);
  const v1::TrainingJob job = RunJob(/*force=*/true);  // forced: publish whatever the gate says
  ASSERT_EQ(job.state(), v1::TRAINING_JOB_STATE_SUCCEEDED) << job.reason();
  EXPECT_EQ(job.parent_version(), "000001");
  EXPECT_EQ(job.version(), "000002");
  EXPECT_EQ(RetrieveVersion(), "000002");

  // Bad versions: named in the error, nothing changes.
  absl::Status s = client_->Rollback("000009");
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("000009"));
  s = client_->Rollback("../x");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("../x"));
  s = client_->Rollback("");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(RetrieveVersion(), "000002");

  ASSERT_TRUE(client_->Rollback("000001").ok());
  EXPECT_EQ(RetrieveVersion(), "000001");
  absl::StatusOr<v1::ListModelsResponse> models = client_->ListModels();
  ASSERT_TRUE(models.ok()) << models.status();
  ASSERT_EQ(models->models_size(), 2);
  EXPECT_EQ(models->models(0).decision(), "imported");
  EXPECT_TRUE(models->models(0).serving());
  EXPECT_TRUE(models->models(0).current());
  EXPECT_FALSE(models->models(1).serving());
  EXPECT_FALSE(models->models(1).current());
  EXPECT_TRUE(models->models(1).promoted());
  EXPECT_EQ(models->models(1).parent_version(), "000001");

  // CURRENT reflects the rollback: a restart serves 000001, not the newer promoted 000002 (and
  // model_dir is not imported again).
  Restart(config);
  EXPECT_EQ(RetrieveVersion(), "000001");
  EXPECT_EQ(client_->ListModels()->models_size(), 2);
}

TEST_F(TrainerServerTest, RestartServesTheLatestPromotedVersionAndAppendsToTheSameLog) {
  const v1::ServerConfig config = Config();
  Start(config);
  Play(/*n=*/600, /*seed=*/6);
  const v1::TrainingJob job = RunJob(/*force=*/true);
  ASSERT_EQ(job.state(), v1::TRAINING_JOB_STATE_SUCCEEDED) << job.reason();
  ASSERT_EQ(RetrieveVersion(), "000001");
  ASSERT_TRUE(server_->event_log().Flush().ok());
  const int64_t served_before = *server_->event_log().MaxServedId();
  ASSERT_GT(served_before, 600 * kSlate);

  Restart(config);
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->model_version(), "000001");
  EXPECT_TRUE(stats->model_trained());
  EXPECT_EQ(RetrieveVersion(), "000001");
  ASSERT_TRUE(server_->event_log().Flush().ok());
  // The same log, appended to: served ids continue after the ones before the restart.
  EXPECT_EQ(*server_->event_log().MaxServedId(), served_before + 1);

  // And the next job trains on both lives of the log, warm-started from the served 000001.
  Play(/*n=*/100, /*seed=*/7);
  const v1::TrainingJob next = RunJob(/*force=*/true);
  EXPECT_EQ(next.parent_version(), "000001");
  EXPECT_EQ(next.counts().with_feedback(), (600 + 100) * kSlate);
}

TEST_F(TrainerServerTest, TrainingRpcsRejectBadAndUnknownIds) {
  Start(Config());
  absl::StatusOr<v1::TrainingJob> job = client_->GetTrainingJob("job-nope");
  EXPECT_TRUE(absl::IsNotFound(job.status())) << job.status();
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("job-nope"));
  job = client_->GetTrainingJob("");
  EXPECT_TRUE(absl::IsInvalidArgument(job.status())) << job.status();
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("job_id"));
  int calls = 0;
  absl::Status s = client_->WatchTraining("job-nope", [&](const v1::TrainingEvent&) { ++calls; });
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("job-nope"));
  EXPECT_EQ(calls, 0);

  // Watching a job that already ended replays its events to the final one.
  const v1::TrainingJob failed = RunJob(/*force=*/false);  // empty log: too few events
  EXPECT_EQ(failed.state(), v1::TRAINING_JOB_STATE_FAILED);
  EXPECT_THAT(failed.reason(), HasSubstr("too few usable events"));
  const std::vector<v1::TrainingEvent> replay = Watch(failed.job_id());
  ASSERT_FALSE(replay.empty());
  EXPECT_EQ(replay.front().seq(), 1);
  EXPECT_EQ(replay.back().state(), v1::TRAINING_JOB_STATE_FAILED);
  // Resuming with after_seq (the raw stub: the C++ client always starts at 0).
  auto stub = v1::AdminService::NewStub(client_->channel());
  auto watch_from = [&](int64_t after_seq, std::vector<int64_t>* seqs) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::WatchTrainingRequest request;
    request.set_job_id(failed.job_id());
    request.set_after_seq(after_seq);
    auto reader = stub->WatchTraining(&context, request);
    v1::TrainingEvent e;
    while (reader->Read(&e)) seqs->push_back(e.seq());
    return reader->Finish();
  };
  std::vector<int64_t> seqs;
  grpc::Status g = watch_from(1, &seqs);
  EXPECT_TRUE(g.ok()) << g.error_message();
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(seqs.front(), 2);
  EXPECT_EQ(seqs.back(), replay.back().seq());
  seqs.clear();
  g = watch_from(1000, &seqs);  // past the final event: nothing left, the stream ends
  EXPECT_TRUE(g.ok()) << g.error_message();
  EXPECT_TRUE(seqs.empty());
  g = watch_from(-1, &seqs);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(g.error_message(), HasSubstr("after_seq=-1"));

  absl::StatusOr<v1::ListTrainingJobsResponse> jobs = client_->ListTrainingJobs();
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->jobs_size(), 1);
  EXPECT_EQ(jobs->jobs(0).job_id(), failed.job_id());
}

TEST_F(TrainerServerTest, WithoutATrainerTheTrainingRpcsAreRefused) {
  v1::ServerConfig config = Config();
  config.mutable_trainer()->set_disabled(true);
  Start(config);
  absl::StatusOr<std::string> id = client_->TriggerRetrain(false);
  EXPECT_TRUE(absl::IsFailedPrecondition(id.status())) << id.status();
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("disabled"));
  EXPECT_TRUE(absl::IsFailedPrecondition(client_->Rollback("000001")));
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_FALSE(stats->training().enabled());
  EXPECT_TRUE(client_->ListModels().ok());
}

TEST_F(TrainerServerTest, ShutdownDuringAJobEndsItsWatchersAndStopsCleanly) {
  Start(Config());
  Play(/*n=*/600, /*seed=*/8);
  absl::StatusOr<std::string> id = client_->TriggerRetrain(false);
  ASSERT_TRUE(id.ok()) << id.status();
  absl::Status watched;
  std::vector<v1::TrainingEvent> events;
  std::thread watcher([&] {
    watched = client_->WatchTraining(*id, [&](const v1::TrainingEvent& e) { events.push_back(e); });
  });
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time start = absl::Now();
  EXPECT_TRUE(server_->Shutdown().ok());
  watcher.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  // Either the job ended (cancelled at a phase boundary, or it finished first) and the stream ended
  // with its final event, or the stream was cut by the server's shutdown.
  if (watched.ok()) {
    ASSERT_FALSE(events.empty());
    EXPECT_TRUE(events.back().final());
  } else {
    EXPECT_TRUE(absl::IsUnavailable(watched) || absl::IsCancelled(watched)) << watched;
  }
}

// Not run by default: the numbers behind docs/TRAINING.md "Threads". Retrieve latency from two
// client threads while a training job runs, with trainer threads 1 and 2 (2 cores here):
//   ./tests/trainer_server_test --gtest_also_run_disabled_tests --gtest_filter='*Measure*'
TEST_F(TrainerServerTest, DISABLED_MeasureServingLatencyWhileTraining) {
  int run = 0;
  for (int threads : {1, 2, 1, 2}) {
    v1::ServerConfig config = Config();
    config.set_data_dir(dir_.File(absl::StrCat("data", run++)));
    v1::TrainerConfig* t = config.mutable_trainer();
    t->set_threads(threads);
    t->set_epochs(20);
    t->set_patience(100);  // run every epoch: a job of several seconds
    t->set_reward_model_epochs(20);
    t->clear_hidden();
    t->add_hidden(64);
    t->set_embedding_dim(32);
    client_.reset();
    server_.reset();
    Start(config);
    Play(/*n=*/20000, /*seed=*/9);
    auto measure = [&](absl::Duration d, bool train) {
      std::atomic<bool> stop{false};
      absl::Mutex mu;
      std::vector<double> ms;
      std::vector<std::thread> clients;
      for (int c = 0; c < 2; ++c) {
        clients.emplace_back([&, c] {
          std::mt19937_64 rng(c);
          std::vector<double> local;
          while (!stop.load()) {
            const absl::Time t0 = absl::Now();
            absl::StatusOr<v1::RetrieveResponse> r = client_->Retrieve(RandomContext(rng), kSlate);
            local.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
            EXPECT_TRUE(r.ok());
          }
          absl::MutexLock lock(&mu);
          ms.insert(ms.end(), local.begin(), local.end());
        });
      }
      std::string job;
      if (train) {
        job = *client_->TriggerRetrain(true);
        Watch(job);
      } else {
        absl::SleepFor(d);
      }
      stop = true;
      for (std::thread& th : clients) th.join();
      std::sort(ms.begin(), ms.end());
      auto q = [&](double p) { return ms[static_cast<size_t>(p * (ms.size() - 1))]; };
      double seconds = train ? client_->GetTrainingJob(job)->metrics().total_seconds() : 0;
      std::fprintf(stderr,
                   "trainer threads %d, %s: %zu calls, p50 %.3f ms, p99 %.3f ms, max %.3f ms%s\n",
                   threads, train ? "during training" : "idle", ms.size(), q(0.5), q(0.99),
                   ms.back(), train ? absl::StrCat(", learner ", seconds, " s").c_str() : "");
    };
    measure(absl::Seconds(3), false);
    measure(absl::ZeroDuration(), true);
  }
}

}  // namespace
}  // namespace optower
