// Issue 12 through the real gRPC server (OptowerServer on 127.0.0.1, ephemeral port, the C++
// client): random towers declared with a categorical schema (ServerConfig init_context_fields /
// init_item_fields) over an items CSV with a c:<name> column; Retrieve with categorical features
// is served and logged, an unknown field is INVALID_ARGUMENT naming it; UpsertItems with categorical
// item fields is served, persisted and still there after a restart.
#include <memory>
#include <string>
#include <vector>

#include "client/optower_client.h"
#include "core/base/categorical.h"
#include "core/storage/event_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/optower_server.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using client::OptowerClient;
using server::OptowerServer;
using testutil::RandomCatalog;
using testutil::TempDir;

constexpr int kDimContext = 2;
constexpr int kDimItem = 2;

void AddField(google::protobuf::RepeatedPtrField<v1::CategoricalFieldSpec>* fields,
              const std::string& name, int64_t buckets, int max_ids) {
  v1::CategoricalFieldSpec* f = fields->Add();
  f->set_name(name);
  f->set_buckets(buckets);
  f->set_width(4);
  f->set_max_ids(max_ids);
}

void AddFeature(google::protobuf::RepeatedPtrField<v1::CategoricalFeature>* features,
                const std::string& name, std::vector<int64_t> ids) {
  v1::CategoricalFeature* f = features->Add();
  f->set_name(name);
  f->mutable_ids()->Add(ids.begin(), ids.end());
}

class ServerCategoricalTest : public ::testing::Test {
 protected:
  v1::ServerConfig Config() {
    ItemCatalog catalog = RandomCatalog(8, kDimItem, /*seed=*/3);
    catalog.categorical = CategoricalColumns({"brand"});
    for (int64_t i = 0; i < catalog.size(); ++i) {
      EXPECT_TRUE(catalog.categorical.AppendFeatures({{"brand", {i % 3}}}).ok());
    }
    v1::ServerConfig config;
    config.set_port(0);
    config.set_data_dir(dir_.File("data"));
    config.set_items_path(testutil::WriteItems(dir_.path(), catalog));
    config.set_dim_context(kDimContext);
    config.set_max_k(10);
    config.set_top_m(8);
    config.mutable_index()->set_type(v1::IndexConfig::EXACT);
    config.mutable_trainer()->set_disabled(true);
    AddField(config.mutable_init_context_fields(), "user", 1024, 1);
    AddField(config.mutable_init_context_fields(), "country", 64, 1);
    AddField(config.mutable_init_item_fields(), "brand", 64, 2);
    return config;
  }

  void Start(const v1::ServerConfig& config) {
    client_.reset();
    server_.reset();
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
    r.mutable_context()->add_dense(0.3f);
    r.mutable_context()->add_dense(-0.2f);
    r.set_k(k);
    return r;
  }

  TempDir dir_{"server_categorical_test"};
  std::unique_ptr<OptowerServer> server_;
  std::unique_ptr<OptowerClient> client_;
};

TEST_F(ServerCategoricalTest, RetrieveWithCategoricalFeaturesIsServedLoggedAndValidated) {
  Start(Config());
  const TwoTowerConfig& mc = server_->engine().snapshot()->model().config();
  ASSERT_EQ(mc.context_fields.size(), 2u);
  EXPECT_EQ(mc.context_fields[0].name, "user");
  EXPECT_EQ(mc.context_fields[1].buckets, 64);
  ASSERT_EQ(mc.item_fields.size(), 1u);
  EXPECT_EQ(mc.item_fields[0].max_ids, 2);
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->context_fields_size(), 2);
  EXPECT_EQ(stats->context_fields(1).name(), "country");
  EXPECT_EQ(stats->context_fields(1).buckets(), 64);
  ASSERT_EQ(stats->item_fields_size(), 1);
  EXPECT_EQ(stats->item_fields(0).max_ids(), 2);

  v1::RetrieveRequest good = Request(3);
  AddFeature(good.mutable_context()->mutable_categorical(), "user", {12});
  AddFeature(good.mutable_context()->mutable_categorical(), "country", {49});
  absl::StatusOr<v1::RetrieveResponse> response = client_->Retrieve(good);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->items_size(), 3);

  v1::RetrieveRequest bad = Request(3);
  AddFeature(bad.mutable_context()->mutable_categorical(), "user", {12});
  AddFeature(bad.mutable_context()->mutable_categorical(), "foo", {1});
  absl::Status status = client_->Retrieve(bad).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("context.categorical[1].name='foo': not a field of the model's schema "
                        "(fields: user, country)"));

  ASSERT_TRUE(server_->event_log().Flush().ok());
  absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = server_->event_log().ReadJoined({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 3u) << "the refused request logged nothing";
  for (const EventLog::JoinedRow& row : *rows) {
    EXPECT_EQ(row.request_id, response->request_id());
    EXPECT_EQ(row.categorical, "user=12;country=49");
  }
}

TEST_F(ServerCategoricalTest, UpsertItemsWithCategoricalFieldsIsServedAndSurvivesARestart) {
  const v1::ServerConfig config = Config();
  Start(config);
  v1::UpsertItemsRequest upsert;
  v1::Item* item = upsert.add_items();
  item->set_item_id(900);
  item->add_features(0.5f);
  item->add_features(-0.5f);
  AddFeature(item->mutable_categorical(), "brand", {7, 8});
  absl::StatusOr<v1::UpsertItemsResponse> up = client_->UpsertItems(upsert);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->inserted(), 1);
  EXPECT_EQ(up->catalog_size(), 9);

  // Served: with every other item excluded, the new one is the slate.
  v1::RetrieveRequest only_new = Request(1);
  for (int64_t id = 100; id < 108; ++id) only_new.add_exclude_item_ids(id);
  absl::StatusOr<v1::RetrieveResponse> response = client_->Retrieve(only_new);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->items_size(), 1);
  EXPECT_EQ(response->items(0).item_id(), 900);

  v1::UpsertItemsRequest unknown;
  v1::Item* other = unknown.add_items();
  other->set_item_id(901);
  other->add_features(0.f);
  other->add_features(0.f);
  AddFeature(other->mutable_categorical(), "colour", {1});
  absl::Status status = client_->UpsertItems(unknown).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("items[0].categorical 'colour': not a field of the model's item schema "
                        "(fields: brand)"));

  // The catalog store kept the item's categorical row: a restart serves the same catalog.
  const CategoricalColumns before = server_->engine().snapshot()->catalog().categorical;
  ASSERT_TRUE(server_->Shutdown().ok());
  Start(config);
  const ItemCatalog& after = server_->engine().snapshot()->catalog();
  EXPECT_EQ(after.size(), 9);
  EXPECT_EQ(after.categorical, before);
  const int64_t row = server_->engine().snapshot()->index().RowOf(900);
  ASSERT_GE(row, 0);
  const absl::Span<const int64_t> brand = after.categorical.ids(row, 0);
  EXPECT_EQ(std::vector<int64_t>(brand.begin(), brand.end()), (std::vector<int64_t>{7, 8}));
}

TEST_F(ServerCategoricalTest, BadDeclaredSchemaIsRefusedAtStart) {
  v1::ServerConfig config = Config();
  config.mutable_init_context_fields(1)->set_buckets(-3);
  absl::StatusOr<std::unique_ptr<OptowerServer>> server = OptowerServer::Start(config);
  EXPECT_TRUE(absl::IsInvalidArgument(server.status())) << server.status();
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr("init_context_fields[1] 'country': buckets=-3"));
}

}  // namespace
}  // namespace optower
