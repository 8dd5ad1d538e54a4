// One source of truth for options (issue 10): core's Options structs hold the defaults and a
// Validate naming the bad field; the server maps only what a ServerConfig sets onto them.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/storage/event_log.h"
#include "core/serving/item_index.h"
#include "core/storage/model_store.h"
#include "core/learning/policy_learner.h"
#include "core/serving/retrieval_engine.h"
#include "core/training/trainer.h"
#include "server/server_config.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

// The message of an InvalidArgument status ("" when it is OK, so that a test that expected an
// error fails on the substring).
template <typename Options>
std::string Error(const Options& options) {
  const absl::Status s = options.Validate();
  if (!s.ok()) EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  return std::string(s.message());
}

TEST(OptionsValidateTest, DefaultsAreValid) {
  EXPECT_TRUE(ItemIndexOptions().Validate().ok());
  EXPECT_TRUE(RetrievalEngineOptions().Validate().ok());
  EventLogOptions log;
  log.path = "/tmp/events.sqlite";  // the one field without a default
  EXPECT_TRUE(log.Validate().ok());
  EXPECT_TRUE(ModelStore::Options().Validate().ok());
  EXPECT_TRUE(PolicyLearnerOptions().Validate().ok());
  EXPECT_TRUE(TrainerOptions().Validate().ok());
}

TEST(OptionsValidateTest, ItemIndexNamesTheField) {
  ItemIndexOptions o;
  o.hnsw_m = 1;
  EXPECT_THAT(Error(o), HasSubstr("hnsw_m=1: must be in [2, 512]"));
  o = ItemIndexOptions();
  o.min_recall_at_10 = 1.5;
  EXPECT_THAT(Error(o), HasSubstr("min_recall_at_10=1.5"));
  o = ItemIndexOptions();
  o.ivf_nlist = -1;
  EXPECT_THAT(Error(o), HasSubstr("ivf_nlist=-1"));
}

TEST(OptionsValidateTest, RetrievalEngineNamesTheField) {
  RetrievalEngineOptions o;
  o.top_m = 0;
  EXPECT_THAT(Error(o), HasSubstr("top_m=0: must be >= 1"));
  o = RetrievalEngineOptions();
  o.epsilon = -0.5;
  EXPECT_THAT(Error(o), HasSubstr("epsilon=-0.5: must be in [0, 1]"));
  o = RetrievalEngineOptions();
  o.reward_min = 1;
  o.reward_max = 0;
  EXPECT_THAT(Error(o), HasSubstr("reward_max=0: must be >= reward_min=1"));
}

TEST(OptionsValidateTest, EventLogNamesTheField) {
  EventLogOptions o;
  o.path = "/tmp/events.sqlite";
  o.max_batch_events = 0;
  EXPECT_THAT(Error(o), HasSubstr("max_batch_events=0: must be >= 1"));
  o.max_batch_events = 1;
  o.max_queue_bytes = 100;
  EXPECT_THAT(Error(o), HasSubstr("max_queue_bytes=100: must be >= 1024"));
  o.max_queue_bytes = 1024;
  o.write_failure_window = absl::ZeroDuration();
  EXPECT_THAT(Error(o), HasSubstr("write_failure_window=0: must be in (0, 24h]"));
  EventLogOptions no_path;
  EXPECT_THAT(Error(no_path), HasSubstr("path=''"));
}

TEST(OptionsValidateTest, ModelStoreNamesTheField) {
  ModelStore::Options o;
  o.keep_promoted = 0;
  EXPECT_THAT(Error(o), HasSubstr("keep_promoted_versions=0: must be >= 1"));
  o = ModelStore::Options();
  o.list_limit = -1;
  EXPECT_THAT(Error(o), HasSubstr("list_models_limit=-1: must be >= 1"));
}

TEST(OptionsValidateTest, PolicyLearnerNamesTheField) {
  PolicyLearnerOptions o;
  o.batch_size = 0;
  EXPECT_THAT(Error(o), HasSubstr("batch_size=0: must be >= 1"));
  o = PolicyLearnerOptions();
  o.epochs = 0;  // allowed: the learner keeps its initial policy
  EXPECT_TRUE(o.Validate().ok());
  o.epochs = -1;
  EXPECT_THAT(Error(o), HasSubstr("epochs=-1: must be >= 0"));
  o = PolicyLearnerOptions();
  o.hidden = {64, 0};
  EXPECT_THAT(Error(o), HasSubstr("hidden[1]=0: must be >= 1"));
  o = PolicyLearnerOptions();
  o.learning_rate = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(Error(o), HasSubstr("learning_rate=nan"));
  o = PolicyLearnerOptions();
  o.reward_model.epochs = 0;
  EXPECT_THAT(Error(o), HasSubstr("reward_model.epochs=0: must be >= 1"));
  o = PolicyLearnerOptions();
  o.sampled.head_items = 0;
  EXPECT_THAT(Error(o), HasSubstr("sampled.head_items=0: must be >= 1"));
  o = PolicyLearnerOptions();
  o.sampled.tail_items = 0;  // allowed: a head-only candidate set
  EXPECT_TRUE(o.Validate().ok());
  o.sampled.tail_items = -1;
  EXPECT_THAT(Error(o), HasSubstr("sampled.tail_items=-1: must be >= 0"));
  o = PolicyLearnerOptions();
  o.sampled.auto_min_items = 1;
  EXPECT_THAT(Error(o), HasSubstr("sampled.auto_min_items=1: must be >= 2"));
  o = PolicyLearnerOptions();
  o.sampled.proposal.ivf_nprobe = 0;
  EXPECT_THAT(Error(o), HasSubstr("sampled.proposal.ivf_nprobe=0: must be >= 1"));
  o = PolicyLearnerOptions();
  o.sampled.proposal.exact_max_items = -1;
  EXPECT_THAT(Error(o), HasSubstr("sampled.proposal.exact_max_items=-1: must be >= 0"));
  o = PolicyLearnerOptions();
  o.sampled.proposal.ivf_nlist = -1;
  EXPECT_THAT(Error(o), HasSubstr("sampled.proposal.ivf_nlist=-1: must be >= 0"));
}

TEST(OptionsValidateTest, TrainerNamesTheField) {
  TrainerOptions o;
  o.min_events = 5;
  EXPECT_THAT(Error(o), HasSubstr("min_events=5: must be >= 10"));
  o = TrainerOptions();
  o.max_events = -2;
  EXPECT_THAT(Error(o), HasSubstr("max_events=-2: must be >= 1, or -1 for the whole log"));
  o = TrainerOptions();
  o.gate.confidence = 1.0;
  EXPECT_THAT(Error(o), HasSubstr("gate.confidence=1: must be in (0, 1)"));
  o = TrainerOptions();
  o.snapshot.reward_min = 0;
  o.snapshot.reward_max = 1;
  o.snapshot.default_reward = 2;
  EXPECT_THAT(Error(o),
              HasSubstr("snapshot.default_reward=2: must be in [reward_min, reward_max] = [0, 1]"));
  o = TrainerOptions();
  o.learner.patience = 0;
  EXPECT_THAT(Error(o), HasSubstr("learner.patience=0: must be >= 1"));
}

// ---- The server's mapping ----

void ExpectSameIndex(const ItemIndexOptions& a, const ItemIndexOptions& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.exact_max_items, b.exact_max_items);
  EXPECT_EQ(a.min_recall_at_10, b.min_recall_at_10);
  EXPECT_EQ(a.ivf_nlist, b.ivf_nlist);
  EXPECT_EQ(a.ivf_nprobe, b.ivf_nprobe);
  EXPECT_EQ(a.ivf_warm_start, b.ivf_warm_start);
  EXPECT_EQ(a.hnsw_m, b.hnsw_m);
  EXPECT_EQ(a.hnsw_ef_construction, b.hnsw_ef_construction);
  EXPECT_EQ(a.hnsw_ef_search, b.hnsw_ef_search);
  EXPECT_EQ(a.threads, b.threads);
}

void ExpectSameEngine(const RetrievalEngineOptions& a, const RetrievalEngineOptions& b) {
  EXPECT_EQ(a.max_k, b.max_k);
  EXPECT_EQ(a.top_m, b.top_m);
  EXPECT_EQ(a.epsilon, b.epsilon);
  EXPECT_EQ(a.temperature, b.temperature);
  EXPECT_EQ(a.greedy, b.greedy);
  EXPECT_EQ(a.max_exclude, b.max_exclude);
  EXPECT_EQ(a.max_categorical_features, b.max_categorical_features);
  EXPECT_EQ(a.max_feedback_batch, b.max_feedback_batch);
  EXPECT_EQ(a.max_upsert_batch, b.max_upsert_batch);
  EXPECT_EQ(a.reward_min, b.reward_min);
  EXPECT_EQ(a.reward_max, b.reward_max);
  EXPECT_EQ(a.build_priority, b.build_priority);
  ExpectSameIndex(a.snapshot.index, b.snapshot.index);
}

void ExpectSameEventLog(const EventLogOptions& a, const EventLogOptions& b) {
  EXPECT_EQ(a.durability, b.durability);
  EXPECT_EQ(a.max_commit_delay, b.max_commit_delay);
  EXPECT_EQ(a.max_batch_events, b.max_batch_events);
  EXPECT_EQ(a.max_queue_events, b.max_queue_events);
  EXPECT_EQ(a.max_queue_bytes, b.max_queue_bytes);
  EXPECT_EQ(a.write_failure_window, b.write_failure_window);
  EXPECT_EQ(a.writer_stall_timeout, b.writer_stall_timeout);
  EXPECT_EQ(a.busy_timeout, b.busy_timeout);
}

void ExpectSameLearner(const PolicyLearnerOptions& a, const PolicyLearnerOptions& b) {
  EXPECT_EQ(a.objective, b.objective);
  EXPECT_EQ(a.hidden, b.hidden);
  EXPECT_EQ(a.embedding_dim, b.embedding_dim);
  EXPECT_EQ(a.temperature, b.temperature);
  EXPECT_EQ(a.epochs, b.epochs);
  EXPECT_EQ(a.batch_size, b.batch_size);
  EXPECT_EQ(a.learning_rate, b.learning_rate);
  EXPECT_EQ(a.patience, b.patience);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.threads, b.threads);
  EXPECT_EQ(a.reward_model.hidden, b.reward_model.hidden);
  EXPECT_EQ(a.reward_model.embedding_dim, b.reward_model.embedding_dim);
  EXPECT_EQ(a.reward_model.epochs, b.reward_model.epochs);
  EXPECT_EQ(a.reward_model.batch_size, b.reward_model.batch_size);
  EXPECT_EQ(a.reward_model.learning_rate, b.reward_model.learning_rate);
  EXPECT_EQ(a.reward_model.threads, b.reward_model.threads);
  EXPECT_EQ(a.sampled.mode, b.sampled.mode);
  EXPECT_EQ(a.sampled.auto_min_items, b.sampled.auto_min_items);
  EXPECT_EQ(a.sampled.head_items, b.sampled.head_items);
  EXPECT_EQ(a.sampled.tail_items, b.sampled.tail_items);
}

void ExpectSameTrainer(const TrainerOptions& a, const TrainerOptions& b) {
  ExpectSameLearner(a.learner, b.learner);
  EXPECT_EQ(a.warm_start_from_served, b.warm_start_from_served);
  EXPECT_EQ(a.slate_learning, b.slate_learning);
  EXPECT_EQ(a.snapshot.attribution_window, b.snapshot.attribution_window);
  EXPECT_EQ(a.snapshot.default_reward, b.snapshot.default_reward);
  EXPECT_EQ(a.snapshot.reward_min, b.snapshot.reward_min);
  EXPECT_EQ(a.snapshot.reward_max, b.snapshot.reward_max);
  EXPECT_EQ(a.min_events, b.min_events);
  EXPECT_EQ(a.max_events, b.max_events);
  EXPECT_EQ(a.holdout_fraction, b.holdout_fraction);
  EXPECT_EQ(a.min_holdout, b.min_holdout);
  EXPECT_EQ(a.gate.confidence, b.gate.confidence);
  EXPECT_EQ(a.gate.tolerance, b.gate.tolerance);
  EXPECT_EQ(a.gate.weight_clip, b.gate.weight_clip);
  EXPECT_EQ(a.auto_every_feedback, b.auto_every_feedback);
  EXPECT_EQ(a.auto_every, b.auto_every);
  EXPECT_EQ(a.max_jobs_kept, b.max_jobs_kept);
  EXPECT_EQ(a.priority, b.priority);
}

// An empty ServerConfig gives exactly the core Options' defaults, except where the server's
// default differs on purpose (named in server_config.h): the reward range [0, 1] and one trainer
// thread.
TEST(ServerOptionsMappingTest, EmptyConfigGivesTheOptionsDefaults) {
  const v1::ServerConfig empty;
  ExpectSameIndex(server::IndexOptionsFromConfig(empty), ItemIndexOptions());

  RetrievalEngineOptions engine;
  engine.reward_min = server::kDefaultRewardMin;
  engine.reward_max = server::kDefaultRewardMax;
  ExpectSameEngine(server::EngineOptionsFromConfig(empty), engine);

  EventLogOptions log;
  const EventLogOptions mapped_log = server::EventLogOptionsFromConfig(empty);
  ExpectSameEventLog(mapped_log, log);
  EXPECT_EQ(mapped_log.path, "/events.sqlite");  // <data_dir>/events.sqlite, data_dir unset

  const ModelStore::Options store = server::ModelStoreOptionsFromConfig(empty);
  EXPECT_EQ(store.keep_promoted, ModelStore::Options().keep_promoted);
  EXPECT_EQ(store.keep_rejected, ModelStore::Options().keep_rejected);
  EXPECT_EQ(store.list_limit, ModelStore::Options().list_limit);

  TrainerOptions trainer;
  trainer.learner.threads = server::kDefaultTrainerThreads;
  trainer.learner.reward_model.threads = server::kDefaultTrainerThreads;
  trainer.snapshot.reward_min = server::kDefaultRewardMin;
  trainer.snapshot.reward_max = server::kDefaultRewardMax;
  ExpectSameTrainer(server::TrainerOptionsFromConfig(empty), trainer);
}

// ApplyServerConfigDefaults writes the Options' defaults into the config, so the mapping gives
// the same options with or without it.
TEST(ServerOptionsMappingTest, AppliedDefaultsMapToTheSameOptions) {
  const v1::ServerConfig empty;
  v1::ServerConfig applied;
  server::ApplyServerConfigDefaults(&applied);
  EXPECT_EQ(applied.max_k(), RetrievalEngineOptions().max_k);
  EXPECT_EQ(applied.event_log().max_commit_delay_ms(), 5);
  EXPECT_EQ(applied.trainer().epochs(), PolicyLearnerOptions().epochs);
  EXPECT_EQ(applied.trainer().threads(), server::kDefaultTrainerThreads);
  EXPECT_EQ(applied.trainer().sampled_head_items(), PolicyLearnerOptions().sampled.head_items);
  EXPECT_EQ(applied.trainer().sampled_auto_min_items(),
            PolicyLearnerOptions().sampled.auto_min_items);
  ExpectSameIndex(server::IndexOptionsFromConfig(applied), server::IndexOptionsFromConfig(empty));
  ExpectSameEngine(server::EngineOptionsFromConfig(applied), server::EngineOptionsFromConfig(empty));
  ExpectSameEventLog(server::EventLogOptionsFromConfig(applied),
                     server::EventLogOptionsFromConfig(empty));
  ExpectSameTrainer(server::TrainerOptionsFromConfig(applied),
                    server::TrainerOptionsFromConfig(empty));
}

// A set field reaches the options; ranges come from core's Validate with the config's field name.
TEST(ServerOptionsMappingTest, SetFieldsAreMappedAndCheckedByCoreNamingTheConfigField) {
  auto validate = [](const std::function<void(v1::ServerConfig*)>& set) {
    v1::ServerConfig c;
    c.set_data_dir("/tmp/x");
    c.set_items_path("/tmp/items.csv");
    c.set_dim_context(2);
    set(&c);
    server::ApplyServerConfigDefaults(&c);  // the server's own fields (host, byte limits ...)
    return std::string(server::ValidateServerConfig(c).message());
  };
  EXPECT_EQ(validate([](v1::ServerConfig*) {}), "");
  EXPECT_THAT(validate([](v1::ServerConfig* c) { c->mutable_trainer()->set_confidence(1.5); }),
              HasSubstr("trainer.confidence=1.5: must be in (0, 1)"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) { c->mutable_trainer()->add_hidden(0); }),
              HasSubstr("trainer.hidden[0]=0: must be >= 1"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) {
                c->mutable_trainer()->set_reward_model_epochs(-1);
              }),
              HasSubstr("trainer.reward_model_epochs=-1"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) {
                c->mutable_trainer()->set_promotion_tolerance(-1);
              }),
              HasSubstr("trainer.promotion_tolerance=-1"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) {
                c->mutable_trainer()->set_sampled_head_items(-1);
              }),
              HasSubstr("trainer.sampled_head_items=-1: must be >= 1"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) {
                c->mutable_trainer()->set_sampled_auto_min_items(1);
              }),
              HasSubstr("trainer.sampled_auto_min_items=1: must be >= 2"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) { c->mutable_index()->set_build_threads(-1); }),
              HasSubstr("index.build_threads=-1: must be >= 0"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) {
                c->mutable_event_log()->set_max_batch_events(-1);
              }),
              HasSubstr("event_log.max_batch_events=-1: must be >= 1"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) { c->set_max_exclude(-1); }),
              HasSubstr("max_exclude=-1: must be >= 0"));
  // Scale-out (server/server_role.h): roles other than all need the shared database.
  EXPECT_THAT(validate([](v1::ServerConfig* c) { c->set_role("leader"); }),
              HasSubstr("role='leader': must be all, serve or train"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) { c->set_role("serve"); }),
              HasSubstr("role='serve': needs postgres.enabled"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) {
                c->set_role("train");
                c->mutable_postgres()->set_enabled(true);
                c->mutable_trainer()->set_disabled(true);
              }),
              HasSubstr("role='train' with trainer.disabled=true"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) {
                c->mutable_postgres()->set_enabled(true);
                c->mutable_postgres()->set_poll_interval_ms(0);
              }),
              HasSubstr("postgres.poll_interval_ms=0: must be finite and > 0"));
  EXPECT_THAT(validate([](v1::ServerConfig* c) {
                c->mutable_postgres()->set_enabled(true);
                c->mutable_postgres()->set_election_interval_ms(-1);
              }),
              HasSubstr("postgres.election_interval_ms=-1: must be finite and > 0"));
  EXPECT_EQ(validate([](v1::ServerConfig* c) {
              c->set_role("serve");
              c->mutable_postgres()->set_enabled(true);
            }),
            "");

  v1::ServerConfig c;
  c.set_top_m(7);
  c.mutable_index()->set_hnsw_m(16);
  c.mutable_trainer()->set_epochs(3);
  c.mutable_trainer()->add_hidden(8);
  c.mutable_trainer()->set_keep_rejected_versions(0);  // optional: an explicit 0 is kept
  c.mutable_trainer()->set_slate_learning(v1::TrainerConfig::TOP_K_CORRECTION);
  c.mutable_trainer()->set_gradient(v1::TrainerConfig::GRADIENT_SAMPLED);
  c.mutable_trainer()->set_sampled_head_items(16);
  c.mutable_trainer()->set_sampled_tail_items(256);
  c.mutable_trainer()->set_sampled_auto_min_items(5000);
  EXPECT_EQ(server::EngineOptionsFromConfig(c).top_m, 7);
  EXPECT_EQ(server::EngineOptionsFromConfig(c).snapshot.index.hnsw_m, 16);
  const TrainerOptions t = server::TrainerOptionsFromConfig(c);
  EXPECT_EQ(t.learner.epochs, 3);
  EXPECT_EQ(t.learner.hidden, std::vector<int64_t>{8});
  EXPECT_EQ(t.learner.reward_model.hidden, std::vector<int64_t>{8}) << "q̂ gets the policy's towers";
  EXPECT_EQ(t.slate_learning, SlateLearning::kTopKCorrection);
  EXPECT_EQ(t.learner.sampled.mode, GradientMode::kSampled);
  EXPECT_EQ(t.learner.sampled.head_items, 16);
  EXPECT_EQ(t.learner.sampled.tail_items, 256);
  EXPECT_EQ(t.learner.sampled.auto_min_items, 5000);
  EXPECT_EQ(server::TrainerOptionsFromConfig(v1::ServerConfig()).learner.sampled.mode,
            GradientMode::kAuto);
  EXPECT_EQ(server::TrainerOptionsFromConfig(v1::ServerConfig()).slate_learning,
            SlateLearning::kPerDraw);
  EXPECT_EQ(server::ModelStoreOptionsFromConfig(c).keep_rejected, 0);
}

}  // namespace
}  // namespace optower
