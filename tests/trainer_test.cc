// Trainer: background DR retraining from a real EventLog, the OPE gate, publish/CURRENT ordering,
// rollback, progress streaming and refusals. The environment is small and known:
//   20 items with 4 N(0,1) features, 3 N(0,1) context features, B a fixed 3x4 N(0,1) matrix,
//   q(x, a) = sigmoid(x^T B f_a)            (strongly context dependent: optimal ~0.9, uniform ~0.5)
//   logging policy pi_0(a) ∝ exp(0.5 c_a), c ~ N(0,1) fixed (stochastic, context-free; every
//   propensity in roughly [0.02, 0.12]), one item per request (K = 1), r ~ Bernoulli(q).
// The data step and the gate on their own: training_snapshot_test.cc, promotion_gate_test.cc.
#include "core/training/trainer.h"

#include "core/storage/file_model_store.h"
#include "core/storage/sqlite_event_log.h"

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

constexpr int kItems = 20;
constexpr int kDimItem = 4;
constexpr int kDimContext = 3;

struct Env {
  ItemCatalog items;
  std::vector<double> b;       // [3, 4]
  std::vector<double> pscore;  // [20] pi_0(a)

  explicit Env(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal;
    items.dim_features = kDimItem;
    for (int a = 0; a < kItems; ++a) {
      items.ids.push_back(100 + a);
      for (int j = 0; j < kDimItem; ++j) items.features.push_back(static_cast<float>(normal(rng)));
    }
    for (int i = 0; i < kDimContext * kDimItem; ++i) b.push_back(normal(rng));
    double z = 0;
    for (int a = 0; a < kItems; ++a) {
      pscore.push_back(std::exp(0.5 * normal(rng)));
      z += pscore.back();
    }
    for (double& p : pscore) p /= z;
  }
  double Q(const std::vector<float>& x, int a) const {
    double s = 0;
    for (int i = 0; i < kDimContext; ++i)
      for (int j = 0; j < kDimItem; ++j) s += x[i] * b[i * kDimItem + j] * items.feature(a)[j];
    return 1.0 / (1.0 + std::exp(-s));
  }
};

// How FillLog generates rows: Rows(n).Seed(2).NoFeedback()...
struct FillSpec {
  int n = 0;
  uint32_t seed = 1;
  bool zero_rewards = false;            // every reward 0
  bool deterministic = false;           // propensity 1 for every served item
  bool feedback = true;                 // send feedback for every served item
  absl::Duration age = absl::Hours(2);  // served this long ago
  std::string prefix = "r";             // request id prefix (unique per FillLog call)

  FillSpec& Seed(uint32_t s) { seed = s; return *this; }
  FillSpec& ZeroRewards() { zero_rewards = true; return *this; }
  FillSpec& Deterministic() { deterministic = true; return *this; }
  FillSpec& NoFeedback() { feedback = false; return *this; }
  FillSpec& Age(absl::Duration a) { age = a; return *this; }
  FillSpec& Prefix(std::string p) { prefix = std::move(p); return *this; }
};
FillSpec Rows(int n) {
  FillSpec s;
  s.n = n;
  return s;
}

TwoTowerModel InitialModel() {
  TwoTowerConfig c;
  c.dim_context = kDimContext;
  c.dim_item = kDimItem;
  c.hidden = {};
  c.embedding_dim = 8;
  c.temperature = 0.5;
  absl::StatusOr<TwoTowerModel> m = TwoTowerModel::Create(c, {}, /*seed=*/5);
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

// The service side of the hooks: what is served, and every publish call.
class FakeService {
 public:
  FakeService(std::string version, std::shared_ptr<const TwoTowerModel> model, ItemCatalog items)
      : version_(std::move(version)), model_(std::move(model)), items_(std::move(items)) {}

  TrainerHooks Hooks() {
    TrainerHooks h;
    h.current_model = [this]() -> absl::StatusOr<ServedModel> {
      if (block_ != nullptr) block_->WaitForNotification();
      absl::MutexLock lock(&mu_);
      ServedModel m;
      m.version = version_;
      m.model = model_;
      m.trained = trained_;
      m.catalog = items_;
      return m;
    };
    h.publish = [this](const std::string& version, const TwoTowerModel& policy) -> absl::Status {
      absl::MutexLock lock(&mu_);
      published_.push_back(version);
      if (!publish_status_.ok()) return publish_status_;
      if (recall_store_ != nullptr) {  // what the real service does after building the index
        absl::Status s = recall_store_->UpdateManifest(
            version, [](ModelManifest& m) { m.index_recall = 0.97; });
        if (!s.ok()) return s;
      }
      version_ = version;
      model_ = std::make_shared<const TwoTowerModel>(policy.Clone());
      trained_ = true;
      return absl::OkStatus();
    };
    return h;
  }
  std::vector<std::string> published() const {
    absl::MutexLock lock(&mu_);
    return published_;
  }
  std::string version() const {
    absl::MutexLock lock(&mu_);
    return version_;
  }
  void set_publish_status(absl::Status s) {
    absl::MutexLock lock(&mu_);
    publish_status_ = std::move(s);
  }
  void RecordRecallIn(ModelStore* store) { recall_store_ = store; }
  void set_trained(bool trained) {
    absl::MutexLock lock(&mu_);
    trained_ = trained;
  }
  // current_model blocks until `n` is notified (set before the trainer runs a job).
  void BlockCurrentModel(absl::Notification* n) { block_ = n; }

 private:
  mutable absl::Mutex mu_;
  std::string version_;
  std::shared_ptr<const TwoTowerModel> model_;
  ItemCatalog items_;
  bool trained_ = false;  // the initial towers are untrained; published ones are trained
  ModelStore* recall_store_ = nullptr;
  std::vector<std::string> published_;
  absl::Status publish_status_;
  absl::Notification* block_ = nullptr;
};

class TrainerTest : public ::testing::Test {
 protected:
  TrainerTest() : env_(/*seed=*/42) {}

  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/trainer_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    EventLogOptions lo;
    lo.path = dir_ + "/events.db";
    lo.max_commit_delay = absl::ZeroDuration();
    auto log = SqliteEventLog::Open(lo);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    auto store = FileModelStore::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    // Version 000001: the initial (untrained) towers, served.
    auto initial = std::make_shared<const TwoTowerModel>(InitialModel());
    ModelManifest m;
    m.promoted = true;
    m.decision = "promoted";
    m.reason = "initial towers";
    ASSERT_TRUE(store_->Save("000001", *initial, nullptr, env_.items, m).ok());
    ASSERT_TRUE(store_->SetCurrent("000001").ok());
    service_ = std::make_unique<FakeService>("000001", initial, env_.items);
  }
  void TearDown() override {
    trainer_.reset();
    log_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static TrainerOptions SmallOptions() {
    TrainerOptions o;
    o.learner.hidden = {};
    o.learner.embedding_dim = 8;
    o.learner.epochs = 3;
    o.learner.learning_rate = 0.02;
    o.learner.patience = 3;
    o.learner.reward_model.hidden = {};
    o.learner.reward_model.embedding_dim = 8;
    o.learner.reward_model.epochs = 5;
    o.learner.seed = 3;
    o.learner.threads = 1;
    o.min_events = 100;
    o.holdout_fraction = 0.25;
    return o;
  }

  void StartTrainer(const TrainerOptions& o) {
    auto t = Trainer::Create(o, log_.get(), store_.get(), service_->Hooks());
    ASSERT_TRUE(t.ok()) << t.status();
    trainer_ = std::move(*t);
  }

  void FillLog(const FillSpec& spec) {
    std::mt19937 rng(spec.seed);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> unif;
    std::discrete_distribution<int> pi0(env_.pscore.begin(), env_.pscore.end());
    const int64_t t = absl::ToUnixMicros(absl::Now() - spec.age);
    std::vector<FeedbackEvent> feedback;
    for (int i = 0; i < spec.n; ++i) {
      ServedSlate e;  // one item per request (k = 1)
      e.request_id = absl::StrCat(spec.prefix, i);
      for (int j = 0; j < kDimContext; ++j) e.context.push_back(static_cast<float>(normal(rng)));
      const int a = pi0(rng);
      const int64_t item_id = env_.items.ids[a];
      const double pscore = spec.deterministic ? 1.0 : env_.pscore[a];
      e.items.push_back({item_id, /*position=*/0, pscore, /*conditional_propensity=*/pscore});
      e.k = 1;
      e.m = kItems;
      e.epsilon = 1.0;
      e.temperature = 1.0;
      e.model_version = "000001";
      e.time_us = t;
      const double r = spec.zero_rewards ? 0.0 : (unif(rng) < env_.Q(e.context, a) ? 1.0 : 0.0);
      if (spec.feedback) feedback.push_back({e.request_id, item_id, r, t + 1000});
      ASSERT_TRUE(log_->AppendSlate(std::move(e)).ok()) << i;
    }
    if (!feedback.empty()) ASSERT_TRUE(log_->AppendFeedback(std::move(feedback)).ok());
    ASSERT_TRUE(log_->Flush().ok());
  }

  // Streams the job's events to its final one (fails the test after 60 s).
  std::vector<JobEvent> StreamToEnd(const std::string& job_id) {
    std::vector<JobEvent> all;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      absl::StatusOr<std::vector<JobEvent>> ev =
          trainer_->WaitForEvents(job_id, all.empty() ? 0 : all.back().seq, absl::Seconds(5));
      EXPECT_TRUE(ev.ok()) << ev.status();
      if (!ev.ok()) break;
      for (JobEvent& e : *ev) all.push_back(std::move(e));
      if (!all.empty() && all.back().final) return all;
    }
    ADD_FAILURE() << "job " << job_id << " did not finish";
    return all;
  }
  JobInfo RunToEnd(bool force) {
    absl::StatusOr<std::string> id = trainer_->Trigger(force);
    EXPECT_TRUE(id.ok()) << id.status();
    StreamToEnd(*id);
    absl::StatusOr<JobInfo> info = trainer_->GetJob(*id);
    EXPECT_TRUE(info.ok()) << info.status();
    return *info;
  }

  Env env_;
  std::string dir_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<ModelStore> store_;
  std::unique_ptr<FakeService> service_;
  std::unique_ptr<Trainer> trainer_;
};

TEST_F(TrainerTest, JobTrainsPromotesSavesPublishesAndMovesCurrent) {
  FillLog(Rows(1200));
  service_->RecordRecallIn(store_.get());
  StartTrainer(SmallOptions());
  const JobInfo job = RunToEnd(/*force=*/false);
  ASSERT_EQ(job.state, JobState::kSucceeded) << job.reason;
  EXPECT_EQ(job.decision, "promoted");
  EXPECT_EQ(job.version, "000002");
  EXPECT_EQ(job.parent_version, "000001");
  EXPECT_TRUE(job.published);
  EXPECT_EQ(job.counts.with_feedback, 1200);
  EXPECT_EQ(job.n_train + job.n_holdout, 1200);
  EXPECT_EQ(job.n_holdout, 300);
  EXPECT_EQ(service_->published(), std::vector<std::string>{"000002"});
  EXPECT_EQ(service_->version(), "000002");
  EXPECT_EQ(**store_->Current(), "000002");

  const ModelManifest m = *store_->GetManifest("000002");
  EXPECT_EQ(m.parent_version, "000001");
  EXPECT_EQ(m.data_watermark, *log_->MaxServedId());
  EXPECT_EQ(m.job_id, job.id);
  EXPECT_EQ(m.objective, "dr");
  EXPECT_TRUE(m.promoted);
  EXPECT_EQ(m.decision, "promoted");
  ASSERT_TRUE(m.ope.has_value());
  EXPECT_EQ(m.ope->difference.n, 300);
  EXPECT_LE(m.ope->difference.ci_low, m.ope->difference.value);
  EXPECT_GE(m.ope->difference.ci_high, m.ope->difference.value);
  // The paired difference is the difference of the two DR means (same samples, same q̂).
  EXPECT_NEAR(m.ope->difference.value, m.ope->new_policy.value - m.ope->old_policy.value, 1e-9);
  EXPECT_GT(m.metrics.epochs_run, 0);
  ASSERT_TRUE(m.index_recall.has_value());  // recorded by the publish hook
  EXPECT_EQ(*m.index_recall, 0.97);

  const TrainerStats s = trainer_->stats();
  EXPECT_EQ(s.succeeded, 1);
  EXPECT_EQ(s.last_job_id, job.id);
  EXPECT_TRUE(s.running_job_id.empty());
  ASSERT_TRUE(s.last_ope.has_value());
}

TEST_F(TrainerTest, AllZeroRewardsAreRefusedAndServingIsUntouched) {
  FillLog(Rows(300).ZeroRewards());
  StartTrainer(SmallOptions());
  const JobInfo job = RunToEnd(/*force=*/true);  // force cannot override untrainable data
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_EQ(job.error_code, absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(job.reason, HasSubstr("every logged reward equals 0"));
  EXPECT_TRUE(service_->published().empty());
  EXPECT_EQ(**store_->Current(), "000001");
  EXPECT_EQ(store_->List()->size(), 1u);  // nothing saved
}

TEST_F(TrainerTest, DeterministicLogsAreRefused) {
  FillLog(Rows(300).Deterministic());
  StartTrainer(SmallOptions());
  const JobInfo job = RunToEnd(/*force=*/false);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_THAT(job.reason, HasSubstr("deterministic"));
  EXPECT_TRUE(service_->published().empty());
  EXPECT_EQ(**store_->Current(), "000001");
}

TEST_F(TrainerTest, TooFewEventsAreRefused) {
  FillLog(Rows(60));
  StartTrainer(SmallOptions());  // min_events = 100
  const JobInfo job = RunToEnd(/*force=*/false);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_THAT(job.reason, HasSubstr("too few usable events: 60, min_events=100"));
  EXPECT_TRUE(service_->published().empty());
}

TEST_F(TrainerTest, SecondTriggerWhileRunningNamesTheRunningJob) {
  FillLog(Rows(300));
  absl::Notification release;
  service_->BlockCurrentModel(&release);
  StartTrainer(SmallOptions());
  const std::string first = *trainer_->Trigger(false);
  // Queued or running, a second trigger is refused either way.
  absl::StatusOr<std::string> second = trainer_->Trigger(true);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr(first));
  EXPECT_EQ(trainer_->stats().running_job_id, first);
  release.Notify();
  StreamToEnd(first);
  EXPECT_TRUE(trainer_->Trigger(false).ok());  // idle again
}

TEST_F(TrainerTest, WaitForEventsStreamsPhasesToTheFinalDecision) {
  FillLog(Rows(600));
  StartTrainer(SmallOptions());
  const std::string id = *trainer_->Trigger(false);
  const std::vector<JobEvent> events = StreamToEnd(id);
  ASSERT_FALSE(events.empty());
  std::vector<std::string> phases;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq, static_cast<int64_t>(i) + 1);
    if (phases.empty() || phases.back() != events[i].phase) phases.push_back(events[i].phase);
  }
  EXPECT_EQ(phases, (std::vector<std::string>{"snapshot", "reward_model", "policy", "evaluate",
                                              "save", "publish", "done"}));
  int policy_epochs = 0;
  for (const JobEvent& e : events) policy_epochs += e.phase == "policy" && e.epoch > 0;
  EXPECT_GE(policy_epochs, 1);
  const JobEvent& last = events.back();
  EXPECT_TRUE(last.final);
  EXPECT_EQ(last.state, JobState::kSucceeded);
  EXPECT_EQ(last.decision, "promoted");
  // After the end: nothing newer, returned at once rather than after the timeout.
  const absl::Time t0 = absl::Now();
  EXPECT_TRUE(trainer_->WaitForEvents(id, last.seq, absl::Seconds(10))->empty());
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  EXPECT_EQ(trainer_->WaitForEvents("job-nope", 0, absl::Seconds(1)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TrainerTest, FailedPublishFailsTheJobAndLeavesCurrent) {
  FillLog(Rows(600));
  service_->set_publish_status(absl::UnavailableError("index build failed"));
  StartTrainer(SmallOptions());
  const JobInfo job = RunToEnd(/*force=*/false);
  EXPECT_EQ(job.state, JobState::kFailed);
  EXPECT_THAT(job.reason, HasSubstr("index build failed"));
  EXPECT_FALSE(job.published);
  EXPECT_EQ(service_->published(), std::vector<std::string>{"000002"});
  EXPECT_EQ(service_->version(), "000001");
  EXPECT_EQ(**store_->Current(), "000001");
  // Kept for inspection, but no longer counted as promoted.
  const ModelManifest m = *store_->GetManifest("000002");
  EXPECT_FALSE(m.promoted);
  EXPECT_EQ(m.decision, "failed");
  EXPECT_EQ((*store_->LatestPromoted())->version, "000001");
}

TEST_F(TrainerTest, RollbackPublishesTheEarlierVersionAndSetsCurrent) {
  FillLog(Rows(600));
  StartTrainer(SmallOptions());
  ASSERT_EQ(RunToEnd(false).state, JobState::kSucceeded);
  ASSERT_EQ(**store_->Current(), "000002");
  ASSERT_TRUE(trainer_->Rollback("000001").ok());
  EXPECT_EQ(service_->published(), (std::vector<std::string>{"000002", "000001"}));
  EXPECT_EQ(service_->version(), "000001");
  EXPECT_EQ(**store_->Current(), "000001");
  EXPECT_EQ(trainer_->Rollback("000009").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(trainer_->Rollback("../000001").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->published().size(), 2u);
  // A failed publish leaves CURRENT where it was.
  service_->set_publish_status(absl::InternalError("boom"));
  EXPECT_EQ(trainer_->Rollback("000002").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(**store_->Current(), "000001");
}

// End to end gate: the served model is a strong policy (DM on q̂ fitted to this environment); the
// candidate is made bad on purpose (IPS from a random init with 0 epochs = an untrained, near-uniform
// policy). On 500 holdout samples DR puts the served policy at ~0.90 and the candidate at ~0.61
// (measured: difference -0.29, standard error 0.05, 95% CI [-0.39, -0.19]), so the interval's upper
// end sits ~3.8 standard errors below 0 and the gate must reject; `force` must then promote the
// same candidate.
TEST_F(TrainerTest, GateRejectsAWorseCandidateAndForceOverrides) {
  FillLog(Rows(2000));
  {
    // Strong served policy, trained directly on a separate sample of the same environment.
    BanditLog train;
    train.dim_context = kDimContext;
    std::mt19937 rng(9);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> unif;
    std::discrete_distribution<int> pi0(env_.pscore.begin(), env_.pscore.end());
    for (int i = 0; i < 3000; ++i) {
      std::vector<float> x;
      for (int j = 0; j < kDimContext; ++j) x.push_back(static_cast<float>(normal(rng)));
      const int a = pi0(rng);
      train.contexts.insert(train.contexts.end(), x.begin(), x.end());
      train.actions.push_back(a);
      train.rewards.push_back(unif(rng) < env_.Q(x, a) ? 1.f : 0.f);
      train.pscores.push_back(static_cast<float>(env_.pscore[a]));
    }
    PolicyLearnerOptions lo = SmallOptions().learner;
    lo.objective = Objective::kDm;
    lo.temperature = 0.05;
    lo.reward_model.epochs = 20;
    auto strong = TrainPolicy(train, env_.items, lo);
    ASSERT_TRUE(strong.ok()) << strong.status();
    service_ = std::make_unique<FakeService>(
        "000001", std::make_shared<const TwoTowerModel>(std::move(strong->policy)), env_.items);
  }
  TrainerOptions o = SmallOptions();
  o.learner.objective = Objective::kIpw;
  o.learner.warm_start = false;
  o.learner.epochs = 0;
  o.learner.reward_model.epochs = 10;
  o.warm_start_from_served = false;
  StartTrainer(o);

  const JobInfo rejected = RunToEnd(/*force=*/false);
  ASSERT_EQ(rejected.state, JobState::kRejected) << rejected.reason;
  EXPECT_EQ(rejected.decision, "rejected");
  EXPECT_THAT(rejected.reason, HasSubstr("worse"));
  ASSERT_TRUE(rejected.ope.has_value());
  EXPECT_LT(rejected.ope->difference.ci_high, 0.0);
  EXPECT_TRUE(service_->published().empty());
  EXPECT_EQ(**store_->Current(), "000001");
  const ModelManifest m = *store_->GetManifest(rejected.version);  // kept for inspection
  EXPECT_FALSE(m.promoted);
  EXPECT_EQ(m.decision, "rejected");

  const JobInfo forced = RunToEnd(/*force=*/true);
  ASSERT_EQ(forced.state, JobState::kSucceeded) << forced.reason;
  EXPECT_THAT(forced.reason, HasSubstr("forced despite the gate"));
  EXPECT_EQ(service_->published(), std::vector<std::string>{forced.version});
  EXPECT_EQ(**store_->Current(), forced.version);
  const TrainerStats s = trainer_->stats();
  EXPECT_EQ(s.rejected, 1);
  EXPECT_EQ(s.succeeded, 1);
}

// The initial towers have temperature 0.5 and embedding_dim 8; SmallOptions' learner uses
// temperature 0.1. A warm start from the served towers keeps their config, a start from q̂ takes
// the learner's temperature: the saved candidate's config tells which start was used.
TEST_F(TrainerTest, WarmStartsFromTrainedServedTowersOnly) {
  FillLog(Rows(600));
  StartTrainer(SmallOptions());
  const JobInfo untrained = RunToEnd(/*force=*/false);
  ASSERT_FALSE(untrained.version.empty()) << untrained.reason;
  EXPECT_DOUBLE_EQ(store_->Load(untrained.version)->policy.config().temperature, 0.1);

  // Same towers, now declared trained: the candidate starts from them.
  trainer_.reset();
  service_ = std::make_unique<FakeService>(
      "000001", std::make_shared<const TwoTowerModel>(InitialModel()), env_.items);
  service_->set_trained(true);
  StartTrainer(SmallOptions());
  const JobInfo warm = RunToEnd(/*force=*/false);
  ASSERT_FALSE(warm.version.empty()) << warm.reason;
  EXPECT_DOUBLE_EQ(store_->Load(warm.version)->policy.config().temperature, 0.5);
}

TEST_F(TrainerTest, UnchangedWarmStartedPolicyIsNotPublishedUnlessForced) {
  FillLog(Rows(600));
  service_->set_trained(true);
  TrainerOptions o = SmallOptions();
  o.learner.epochs = 0;  // the learner keeps its initial (= served) policy
  StartTrainer(o);
  const JobInfo job = RunToEnd(/*force=*/false);
  EXPECT_EQ(job.state, JobState::kRejected) << job.reason;
  EXPECT_THAT(job.reason, HasSubstr("unchanged"));
  ASSERT_TRUE(job.ope.has_value());
  // Exact: the candidate is a bit-for-bit copy of the served towers and both are scored by the same
  // MakeOpeSamples call on the same holdout, so every paired term is x - x = 0.
  EXPECT_EQ(job.ope->difference.value, 0.0);
  EXPECT_TRUE(service_->published().empty());
  const JobInfo forced = RunToEnd(/*force=*/true);
  EXPECT_EQ(forced.state, JobState::kSucceeded) << forced.reason;
  EXPECT_THAT(forced.reason, HasSubstr("forced despite the gate: unchanged"));
  EXPECT_EQ(service_->published().size(), 1u);
}

TEST_F(TrainerTest, AttributionWindowExcludesYoungAndDefaultsOldUnrewardedItems) {
  FillLog(Rows(200).Seed(1).Prefix("a"));                          // rewarded
  FillLog(Rows(40).Seed(2).NoFeedback().Prefix("old"));      // 2 h old, no feedback
  FillLog(Rows(30).Seed(3).NoFeedback().Age(absl::Minutes(1)).Prefix("young"));
  TrainerOptions o = SmallOptions();
  o.snapshot.attribution_window = absl::Hours(1);
  StartTrainer(o);
  const JobInfo job = RunToEnd(false);
  EXPECT_EQ(job.counts.rows_read, 270);
  EXPECT_EQ(job.counts.with_feedback, 200);
  EXPECT_EQ(job.counts.default_reward, 40);
  EXPECT_EQ(job.counts.pending_excluded, 30);
  EXPECT_EQ(job.n_train + job.n_holdout, 240);
}

TEST_F(TrainerTest, ShutdownCancelsARunningJobAtThePhaseBoundary) {
  FillLog(Rows(300));
  absl::Notification release;
  service_->BlockCurrentModel(&release);
  StartTrainer(SmallOptions());
  const std::string id = *trainer_->Trigger(false);
  std::thread stopper([this] { trainer_->Shutdown(); });
  // Shutdown has begun once Trigger reports it.
  while (trainer_->Trigger(false).status().message().find("shut down") == std::string::npos)
    absl::SleepFor(absl::Milliseconds(1));
  release.Notify();
  stopper.join();
  const JobInfo job = *trainer_->GetJob(id);
  EXPECT_EQ(job.state, JobState::kCancelled);
  EXPECT_TRUE(service_->published().empty());
  EXPECT_EQ(trainer_->stats().cancelled, 1);
}

TEST_F(TrainerTest, AutoRetrainsAfterEnoughNewFeedback) {
  FillLog(Rows(200).Prefix("a"));
  TrainerOptions o = SmallOptions();
  o.auto_every_feedback = 100;
  o.auto_poll_interval = absl::Milliseconds(20);
  StartTrainer(o);  // the 200 existing feedback rows are the baseline
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(trainer_->ListJobs().empty());
  FillLog(Rows(100).Seed(2).Prefix("b"));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (trainer_->ListJobs().empty() && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(10));
  const std::vector<JobInfo> jobs = trainer_->ListJobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_THAT(jobs[0].trigger, HasSubstr("auto: 100 new feedback events"));
  StreamToEnd(jobs[0].id);
  EXPECT_EQ(trainer_->GetJob(jobs[0].id)->state, JobState::kSucceeded);
}

TEST_F(TrainerTest, CreateRejectsBadOptionsNamingTheField) {
  TrainerOptions o;
  o.holdout_fraction = 0.95;
  auto t = Trainer::Create(o, log_.get(), store_.get(), service_->Hooks());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("holdout_fraction=0.95"));
  o = TrainerOptions();
  o.min_events = 5;
  EXPECT_THAT(Trainer::Create(o, log_.get(), store_.get(), service_->Hooks()).status().message(),
              HasSubstr("min_events=5"));
  TrainerHooks h = service_->Hooks();
  h.publish = nullptr;
  EXPECT_THAT(Trainer::Create(TrainerOptions(), log_.get(), store_.get(), h).status().message(),
              HasSubstr("hooks.publish"));
}

}  // namespace
}  // namespace optower
