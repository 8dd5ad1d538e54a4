// optower-server in-process (OptowerServer on 127.0.0.1, ephemeral port) through the real client
// library: round trip into the event log, every validation case as INVALID_ARGUMENT, concurrent
// Retrieve during catalog changes, health checking and graceful shutdown, model folders.
#include "server/optower_server.h"

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/optower_client.h"
#include "core/model/model_folder.h"
#include "core/storage/sqlite_event_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using client::CallOptions;
using client::OptowerClient;
using server::OptowerServer;
using testutil::RandomCatalog;
using testutil::TempDir;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

constexpr int kDimContext = 4;
constexpr int kDimItem = 3;

// Asks the server reflection service to list the services (one ServerReflectionInfo round trip over
// a generic stub: the reflection protos are compiled into libgrpc++_reflection but their headers
// are not installed). Returns the raw response bytes, or the call's status.
absl::StatusOr<std::string> ListServicesByReflection(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](intptr_t expected) {
    return cq.Next(&tag, &ok) && reinterpret_cast<intptr_t>(tag) == expected && ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  bool fine = step(1);
  // ServerReflectionRequest{list_services: ""}: field 7, wire type 2, length 0.
  const std::string request("\x3a\x00", 2);
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  if (fine) {
    call->Write(out, reinterpret_cast<void*>(2));
    fine = step(2);
  }
  grpc::ByteBuffer in;
  bool got_response = false;
  if (fine) {
    call->Read(&in, reinterpret_cast<void*>(3));
    got_response = step(3);
  }
  call->WritesDone(reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  while (cq.Next(&tag, &ok) && reinterpret_cast<intptr_t>(tag) != 5) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return client::FromGrpcStatus(status);
  if (!got_response) return absl::InternalError("no reflection response");
  std::vector<grpc::Slice> slices;
  if (!in.Dump(&slices).ok()) return absl::InternalError("bad byte buffer");
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

class ServerTest : public ::testing::Test {
 protected:
  v1::ServerConfig Config(int64_t n_items) {
    catalog_ = RandomCatalog(n_items, kDimItem, /*seed=*/3);
    v1::ServerConfig config;
    config.set_port(0);
    config.set_data_dir(dir_.File("data"));
    config.set_items_path(testutil::WriteItems(dir_.path(), catalog_));
    config.set_dim_context(kDimContext);
    config.set_max_k(10);
    config.set_top_m(8);
    config.set_max_feedback_batch(5);
    config.mutable_index()->set_type(v1::IndexConfig::EXACT);
    return config;
  }

  void Start(const v1::ServerConfig& config) {
    absl::StatusOr<std::unique_ptr<OptowerServer>> server = OptowerServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client::ClientOptions options;
    options.address = absl::StrCat("127.0.0.1:", server_->port());
    absl::StatusOr<std::unique_ptr<OptowerClient>> client = OptowerClient::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  v1::RetrieveRequest Request(int k) const {
    v1::RetrieveRequest r;
    for (float x : {0.3f, -0.2f, 1.0f, 0.0f}) r.mutable_context()->add_dense(x);
    r.set_k(k);
    return r;
  }

  TempDir dir_{"server_test"};
  ItemCatalog catalog_;
  std::unique_ptr<OptowerServer> server_;
  std::unique_ptr<OptowerClient> client_;
};

TEST_F(ServerTest, RetrieveThenFeedbackLeavesJoinedRowsInTheLog) {
  Start(Config(20));
  v1::RetrieveRequest request = Request(3);
  request.set_seed(7);
  absl::StatusOr<v1::RetrieveResponse> response = client_->Retrieve(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->items_size(), 3);
  EXPECT_EQ(response->model_version(), "init-0");
  EXPECT_FALSE(response->request_id().empty());

  const v1::RetrievedItem& rewarded = response->items(2);
  absl::StatusOr<v1::FeedbackResponse> feedback =
      client_->Feedback(response->request_id(), rewarded.item_id(), 1.0);
  ASSERT_TRUE(feedback.ok()) << feedback.status();
  EXPECT_EQ(feedback->accepted(), 1);
  ASSERT_EQ(feedback->outcomes_size(), 1);
  EXPECT_EQ(feedback->outcomes(0), v1::FEEDBACK_OUTCOME_ACCEPTED);
  absl::StatusOr<v1::FeedbackResponse> again =
      client_->Feedback(response->request_id(), rewarded.item_id(), 0.0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->duplicate(), 1);

  ASSERT_TRUE(server_->event_log().Flush().ok());
  absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = server_->event_log().ReadJoined({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 3u);
  for (const EventLog::JoinedRow& row : *rows) {
    const v1::RetrievedItem& item = response->items(row.position);
    EXPECT_EQ(row.request_id, response->request_id());
    EXPECT_EQ(row.item_id, item.item_id());
    EXPECT_EQ(row.propensity, item.propensity()) << "the logged number is the served number";
    EXPECT_EQ(row.conditional_propensity, item.conditional_propensity());
    if (row.position == 0) EXPECT_NEAR(item.conditional_propensity(), item.propensity(), 1e-15);
    EXPECT_EQ(row.m, 8);
    EXPECT_EQ(row.k, 3);
    EXPECT_EQ(row.has_feedback, row.item_id == rewarded.item_id());
    if (row.has_feedback) EXPECT_EQ(row.reward, 1.0) << "first write wins";
  }
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->retrieve_ok(), 1);
  EXPECT_EQ(stats->items_served(), 3);
  EXPECT_EQ(stats->feedback_accepted(), 1);
  EXPECT_EQ(stats->feedback_duplicate(), 1);
  EXPECT_EQ(stats->catalog_size(), 20);
  EXPECT_EQ(stats->event_log().durability(), "group");
  EXPECT_EQ(stats->slate_exploration(), "per_position") << "the default";
  ASSERT_GE(stats->rpc_latency_size(), 1);
  EXPECT_EQ(stats->rpc_latency(0).method(), "Retrieve");
  EXPECT_EQ(stats->rpc_latency(0).count(), 1);
}

TEST_F(ServerTest, InvalidRequestsAreInvalidArgumentNamingFieldAndValue) {
  Start(Config(6));
  struct Case {
    std::string name;
    std::function<absl::Status()> call;
    std::string message;
  };
  auto retrieve = [this](std::function<void(v1::RetrieveRequest&)> mutate) {
    return [this, mutate] {
      v1::RetrieveRequest r = Request(2);
      mutate(r);
      return client_->Retrieve(r).status();
    };
  };
  auto feedback = [this](int n, double reward) {
    return [this, n, reward] {
      v1::FeedbackRequest r;
      for (int i = 0; i < n; ++i) {
        v1::FeedbackEvent* e = r.add_events();
        e->set_request_id("r");
        e->set_item_id(100);
        e->set_reward(reward);
      }
      return client_->Feedback(r).status();
    };
  };
  auto del = [this](std::vector<int64_t> ids) {
    return [this, ids] {
      v1::DeleteItemsRequest r;
      r.mutable_item_ids()->Add(ids.begin(), ids.end());
      return client_->DeleteItems(r).status();
    };
  };
  auto upsert = [this](int n_features, float value) {
    return [this, n_features, value] {
      v1::UpsertItemsRequest r;
      v1::Item* item = r.add_items();
      item->set_item_id(900);
      for (int j = 0; j < n_features; ++j) item->add_features(value);
      return client_->UpsertItems(r).status();
    };
  };
  const std::vector<Case> cases = {
      {"wrong feature dim", retrieve([](auto& r) { r.mutable_context()->add_dense(1); }),
       "context.dense has 5 values: expected dim_context=4"},
      {"nan", retrieve([](auto& r) { r.mutable_context()->set_dense(1, std::nanf("")); }),
       "context.dense[1]=nan: must be finite"},
      {"inf", retrieve([](auto& r) { r.mutable_context()->set_dense(3, -INFINITY); }),
       "context.dense[3]=-inf: must be finite"},
      {"k=0", retrieve([](auto& r) { r.set_k(0); }), "k=0: k must be in [1, 10]"},
      {"k>max_k", retrieve([](auto& r) { r.set_k(11); }), "k=11: k must be in [1, 10]"},
      {"k>catalog", retrieve([](auto& r) { r.set_k(7); }), "k=7: above the 6 eligible items"},
      {"empty feedback", feedback(0, 1.0), "events: empty"},
      {"oversized feedback", feedback(6, 1.0), "events has 6 events: at most max_feedback_batch=5"},
      {"nan reward", feedback(1, std::nan("")), "events[0].reward=nan: must be finite"},
      {"unknown id in delete", del({101, 4242}), "item_ids[1]=4242: not in the catalog"},
      {"empty delete", del({}), "item_ids: empty"},
      {"upsert feature dim", upsert(2, 1.0f), "items[0].features has 2 values: the catalog has dim_features=3"},
      {"upsert inf feature", upsert(3, INFINITY), "items[0].features[0]=inf: must be finite"},
  };
  for (const Case& c : cases) {
    const absl::Status s = c.call();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.name << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.name;
  }
}

// Two clients retrieve continuously while the admin API upserts and deletes items. Every call must
// succeed, and no Retrieve that *starts* after a DeleteItems call returned may serve a deleted item.
TEST_F(ServerTest, ConcurrentRetrieveDuringUpsertAndDeleteHasNoErrors) {
  v1::ServerConfig config = Config(200);
  config.set_epsilon(1.0);  // uniform exploration: every item is drawn often
  config.set_top_m(20);
  Start(config);

  absl::Mutex mu;
  std::set<int64_t> deleted;     // ids whose DeleteItems call has returned
  std::atomic<bool> stop{false};
  std::atomic<int64_t> calls{0}, failures{0}, violations{0};
  auto reader = [&] {
    uint64_t seed = 0;
    while (!stop.load()) {
      std::set<int64_t> deleted_before;
      {
        absl::MutexLock lock(&mu);
        deleted_before = deleted;
      }
      v1::RetrieveRequest r = Request(10);
      r.set_seed(seed++);
      absl::StatusOr<v1::RetrieveResponse> response = client_->Retrieve(r);
      ++calls;
      if (!response.ok()) {
        ++failures;
        ADD_FAILURE() << response.status();
        continue;
      }
      for (const v1::RetrievedItem& item : response->items()) {
        if (deleted_before.count(item.item_id())) ++violations;
      }
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) readers.emplace_back(reader);

  for (int round = 0; round < 10; ++round) {
    v1::UpsertItemsRequest up;
    for (int i = 0; i < 20; ++i) {
      v1::Item* item = up.add_items();
      item->set_item_id(10000 + round * 100 + i);
      for (int j = 0; j < kDimItem; ++j) item->add_features(0.1f * (i + j));
    }
    absl::StatusOr<v1::UpsertItemsResponse> u = client_->UpsertItems(up);
    ASSERT_TRUE(u.ok()) << u.status();
    EXPECT_EQ(u->inserted(), 20);
    v1::DeleteItemsRequest del;
    std::vector<int64_t> ids;
    for (int i = 0; i < 15; ++i) ids.push_back(100 + round * 15 + i);
    del.mutable_item_ids()->Add(ids.begin(), ids.end());
    absl::StatusOr<v1::DeleteItemsResponse> d = client_->DeleteItems(del);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->deleted(), 15);
    absl::MutexLock lock(&mu);
    deleted.insert(ids.begin(), ids.end());
  }
  absl::SleepFor(absl::Milliseconds(100));
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_GT(calls.load(), 50);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(violations.load(), 0);
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->catalog_size(), 200 + 10 * 20 - 10 * 15);
  EXPECT_EQ(stats->catalog_version(), 20);
  std::printf("concurrent: %lld Retrieve calls during 10 upserts + 10 deletes, 0 errors\n",
              static_cast<long long>(calls.load()));
}

// GetStats.index: the tuned parameters and the probe of the served index, and the layers that
// catalog changes add to it (docs/SERVING.md "Index choice", "Catalog changes").
TEST_F(ServerTest, GetStatsReportsTheTunedIndexAndTheLayersOfCatalogChanges) {
  v1::ServerConfig config = Config(3000);
  config.mutable_index()->set_type(v1::IndexConfig::IVF);
  config.mutable_index()->set_ivf_nprobe(1);
  config.mutable_index()->set_recall_queries(100);
  config.mutable_index()->set_build_threads(1);
  Start(config);
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  const v1::IndexStats& index = stats->index();
  EXPECT_EQ(index.type(), "ivf");
  EXPECT_EQ(index.recall_at_10(), stats->index_recall_at_10());
  EXPECT_GT(index.ivf_nlist(), 0);
  EXPECT_GE(index.ivf_nprobe(), 1);
  if (index.ivf_nprobe() > 1) EXPECT_THAT(index.build_report(), HasSubstr("tuned nprobe 1:"));
  EXPECT_EQ(index.probe(), "user tower on 0 logged + 100 sampled contexts");
  EXPECT_EQ(index.probe_queries(), 100);
  EXPECT_EQ(index.base_items(), 3000);
  EXPECT_EQ(index.delta_items(), 0);

  v1::UpsertItemsRequest up;
  for (int i = 0; i < 5; ++i) {
    v1::Item* item = up.add_items();
    item->set_item_id(90000 + i);
    for (int j = 0; j < kDimItem; ++j) item->add_features(0.1f * (i + j));
  }
  absl::StatusOr<v1::UpsertItemsResponse> u = client_->UpsertItems(up);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_FALSE(u->index_rebuilt()) << "5 items are layered over the served index";
  v1::DeleteItemsRequest del;
  del.add_item_ids(100);
  absl::StatusOr<v1::DeleteItemsResponse> d = client_->DeleteItems(del);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->index_rebuilt());
  stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->index().delta_items(), 5);
  EXPECT_EQ(stats->index().tombstones(), 1);
  EXPECT_EQ(stats->index().base_items(), 3000);
  EXPECT_EQ(stats->index().incremental_updates(), 2);
  EXPECT_EQ(stats->index().rebuilds(), 0);
  EXPECT_EQ(stats->catalog_size(), 3004);
}

TEST_F(ServerTest, HealthIsServingThenNotServingOnShutdown) {
  v1::ServerConfig config = Config(10);
  config.set_shutdown_health_grace_ms(1500);
  Start(config);
  for (const std::string service : {"", "optower.v1.RetrievalService", "optower.v1.AdminService"}) {
    absl::StatusOr<HealthStatus::ServingStatus> health = client_->CheckHealth(service);
    ASSERT_TRUE(health.ok()) << health.status();
    EXPECT_EQ(*health, HealthStatus::SERVING) << service;
  }
  std::thread stopper([this] { EXPECT_TRUE(server_->Shutdown().ok()); });
  HealthStatus::ServingStatus seen = HealthStatus::SERVING;
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  while (seen == HealthStatus::SERVING && absl::Now() < deadline) {
    absl::StatusOr<HealthStatus::ServingStatus> health = client_->CheckHealth("");
    ASSERT_TRUE(health.ok()) << health.status();
    seen = *health;
  }
  EXPECT_EQ(seen, HealthStatus::NOT_SERVING);
  stopper.join();
  // After the drain the server refuses calls.
  CallOptions quick;
  quick.deadline = absl::Seconds(1);
  EXPECT_FALSE(client_->Retrieve(Request(1), quick).ok());
}

TEST_F(ServerTest, ShutdownFlushesEveryAcknowledgedEvent) {
  v1::ServerConfig config = Config(10);
  config.mutable_event_log()->set_max_commit_delay_ms(1000);  // nothing would commit on its own
  Start(config);
  int served = 0;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<v1::RetrieveResponse> r = client_->Retrieve(Request(2));
    ASSERT_TRUE(r.ok());
    served += r->items_size();
  }
  ASSERT_TRUE(server_->Shutdown().ok());
  EventLogOptions options;
  options.path = dir_.File("data/events.sqlite");
  absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(options);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->MaxServedId().value_or(-1), served);
}

TEST_F(ServerTest, ServesAModelFolderFromOptowerTrain) {
  v1::ServerConfig config = Config(12);
  std::shared_ptr<const TwoTowerModel> model =
      testutil::TinyModel(kDimContext, catalog_, /*temperature=*/0.7, /*seed=*/5);
  ASSERT_NE(model, nullptr);
  const std::string model_dir = dir_.File("model-17");
  ASSERT_TRUE(SaveModelFolder(model_dir, *model, nullptr, catalog_, "{}\n", false).ok());
  config.set_items_path("");  // the folder's items.csv
  config.set_dim_context(0);  // the model's
  config.set_model_dir(model_dir);
  Start(config);
  absl::StatusOr<v1::RetrieveResponse> r = client_->Retrieve(Request(2));
  ASSERT_TRUE(r.ok()) << r.status();
  // Imported into the model store (data_dir/models) as its first version (docs/TRAINING.md).
  EXPECT_EQ(r->model_version(), "000001");
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->embedding_dim(), 8);
  EXPECT_DOUBLE_EQ(stats->temperature(), 0.7);
  ASSERT_TRUE(server_->Shutdown().ok());

  // A fresh data_dir: in the old one the store's version 000001 would now be served instead.
  config.set_data_dir(dir_.File("data-bare"));
  config.set_model_dir(model_dir + "/policy");  // the bare policy folder needs items_path
  absl::StatusOr<std::unique_ptr<OptowerServer>> bare = OptowerServer::Start(config);
  EXPECT_TRUE(absl::IsInvalidArgument(bare.status())) << bare.status();
  EXPECT_THAT(std::string(bare.status().message()), HasSubstr("items_path: required"));
  config.set_items_path(dir_.File("items.csv"));
  config.set_dim_context(kDimContext + 1);
  bare = OptowerServer::Start(config);
  EXPECT_THAT(std::string(bare.status().message()), HasSubstr("dim_context=5"));
  config.set_dim_context(kDimContext);
  bare = OptowerServer::Start(config);
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ((*bare)->engine().snapshot()->model_version(), "000001");
}

TEST_F(ServerTest, ReflectionListsTheServicesUnlessDisabled) {
  Start(Config(5));
  absl::StatusOr<std::string> listed = ListServicesByReflection(client_->channel());
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(*listed, HasSubstr("optower.v1.RetrievalService"));
  EXPECT_THAT(*listed, HasSubstr("optower.v1.AdminService"));
  EXPECT_THAT(*listed, HasSubstr("grpc.health.v1.Health"));
  ASSERT_TRUE(server_->Shutdown().ok());

  v1::ServerConfig config = Config(5);
  config.set_disable_reflection(true);
  config.set_data_dir(dir_.File("data2"));
  Start(config);
  EXPECT_EQ(ListServicesByReflection(client_->channel()).status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST_F(ServerTest, StartRefusesABusyPort) {
  Start(Config(5));
  v1::ServerConfig config = Config(5);
  config.set_port(server_->port());
  config.set_data_dir(dir_.File("data2"));
  absl::StatusOr<std::unique_ptr<OptowerServer>> second = OptowerServer::Start(config);
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();
}

}  // namespace
}  // namespace optower
