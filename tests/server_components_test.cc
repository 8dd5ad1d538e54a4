// The server's small parts without a running server: config parsing/defaults/validation, the one
// status conversion, the latency histogram, and proto <-> core conversion.
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/optower_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/latency_histogram.h"
#include "server/proto_convert.h"
#include "server/server_config.h"
#include "server/status_util.h"

namespace optower::server {
namespace {

using ::testing::HasSubstr;

TEST(ServerConfigTest, ParsesTextFormatAndFillsDefaults) {
  absl::StatusOr<v1::ServerConfig> config = ParseServerConfig(
      "data_dir: \"/tmp/d\"\nitems_path: \"i.csv\"\ndim_context: 8\nepsilon: 0\n"
      "index { type: HNSW hnsw_ef_search: 64 }\nevent_log { durability: SYNC }\n",
      "server.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  ApplyServerConfigDefaults(&*config);
  EXPECT_TRUE(ValidateServerConfig(*config).ok());
  EXPECT_EQ(config->host(), "127.0.0.1");
  EXPECT_EQ(config->port(), kDefaultPort);
  EXPECT_EQ(config->epsilon(), 0.0) << "an explicit 0 is kept (optional field)";
  EXPECT_EQ(config->max_k(), 100);
  EXPECT_EQ(config->top_m(), 100);
  EXPECT_EQ(config->event_log().max_commit_delay_ms(), 5);

  const RetrievalEngineOptions engine = EngineOptionsFromConfig(*config);
  EXPECT_EQ(engine.epsilon, 0.0);
  EXPECT_EQ(engine.snapshot.index.type, ItemIndexOptions::Type::kHnsw);
  EXPECT_EQ(engine.snapshot.index.hnsw_ef_search, 64);
  EXPECT_EQ(engine.snapshot.index.hnsw_m, 32);
  const EventLogOptions log = EventLogOptionsFromConfig(*config);
  EXPECT_EQ(log.path, "/tmp/d/events.sqlite");
  EXPECT_EQ(log.durability, EventLogOptions::Durability::kSynchronous);

  v1::ServerConfig unset;
  ApplyServerConfigDefaults(&unset);
  EXPECT_EQ(unset.epsilon(), 0.1);
  EXPECT_EQ(unset.port(), kDefaultPort);
  v1::ServerConfig zero_port;
  zero_port.set_port(0);
  ApplyServerConfigDefaults(&zero_port);
  EXPECT_EQ(zero_port.port(), 0) << "port 0 (pick a free one) is kept";
}

TEST(ServerConfigTest, SyntaxErrorNamesFileLineAndColumn) {
  absl::StatusOr<v1::ServerConfig> config =
      ParseServerConfig("data_dir: \"x\"\nmax_k: many\n", "server.textproto");
  ASSERT_TRUE(absl::IsInvalidArgument(config.status()));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("server.textproto:2:"));
  config = ParseServerConfig("no_such_field: 1\n", "c.txt");
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("no_such_field"));
  EXPECT_TRUE(absl::IsNotFound(LoadServerConfigFile("/nonexistent/server.textproto").status()));
}

TEST(ServerConfigTest, ValidationNamesFieldAndValue) {
  auto valid = [] {
    v1::ServerConfig c;
    c.set_data_dir("/tmp/d");
    c.set_items_path("items.csv");
    c.set_dim_context(4);
    ApplyServerConfigDefaults(&c);
    return c;
  };
  ASSERT_TRUE(ValidateServerConfig(valid()).ok());
  struct Case {
    std::function<void(v1::ServerConfig&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto& c) { c.clear_data_dir(); }, "data_dir: required"},
      {[](auto& c) { c.clear_items_path(); }, "items_path: required"},
      {[](auto& c) { c.set_dim_context(0); }, "dim_context=0: must be >= 1"},
      {[](auto& c) { c.set_port(70000); }, "port=70000: must be in [0, 65535]"},
      {[](auto& c) { c.set_epsilon(1.5); }, "epsilon=1.5: must be in [0, 1]"},
      {[](auto& c) { c.set_temperature(-1); }, "temperature=-1"},
      {[](auto& c) { c.set_max_k(-3); }, "max_k=-3: must be >= 1"},
      {[](auto& c) { c.set_top_m(-1); }, "top_m=-1: must be >= 1"},
      {[](auto& c) { c.mutable_index()->set_hnsw_m(1); }, "index.hnsw_m=1: must be in [2, 512]"},
      {[](auto& c) { c.mutable_index()->set_min_recall_at_10(2); }, "index.min_recall_at_10=2"},
      {[](auto& c) { c.mutable_event_log()->set_max_commit_delay_ms(-1); },
       "event_log.max_commit_delay_ms=-1"},
      {[](auto& c) { c.set_max_receive_message_bytes(10); }, "max_receive_message_bytes=10"},
      {[](auto& c) { c.set_background_priority("low"); }, "background_priority='low'"},
      {[](auto& c) { c.set_slate_exploration("per_item"); },
       "slate_exploration='per_item': must be one of per_position, per_slate"},
  };
  for (const Case& c : cases) {
    v1::ServerConfig config = valid();
    c.mutate(config);
    const absl::Status s = ValidateServerConfig(config);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.message << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
  v1::ServerConfig with_model = valid();
  with_model.clear_items_path();
  with_model.set_dim_context(0);
  with_model.set_model_dir("runs/m1");
  EXPECT_TRUE(ValidateServerConfig(with_model).ok()) << "the model supplies dims and items";

  // Background work defaults to SCHED_IDLE, for the engine's builds and the trainer alike.
  EXPECT_EQ(valid().background_priority(), "idle");
  EXPECT_EQ(EngineOptionsFromConfig(valid()).build_priority, BackgroundPriority::kIdle);
  v1::ServerConfig nice = valid();
  nice.set_background_priority("nice");
  EXPECT_EQ(EngineOptionsFromConfig(nice).build_priority, BackgroundPriority::kNice);
  EXPECT_EQ(TrainerOptionsFromConfig(nice).priority, BackgroundPriority::kNice);

  // Exploration across the slate defaults to per_position; per_slate is today's draw-remove-
  // renormalise (issue 16).
  EXPECT_EQ(valid().slate_exploration(), "per_position");
  EXPECT_EQ(EngineOptionsFromConfig(valid()).slate_exploration, SlateExploration::kPerPosition);
  v1::ServerConfig per_slate = valid();
  per_slate.set_slate_exploration("per_slate");
  EXPECT_TRUE(ValidateServerConfig(per_slate).ok());
  EXPECT_EQ(EngineOptionsFromConfig(per_slate).slate_exploration, SlateExploration::kPerSlate);
}

TEST(ServerConfigTest, ParsesDurabilityAndIndexNames) {
  EXPECT_EQ(ParseDurability("SYNC", "--durability").value(), v1::EventLogConfig::SYNC);
  EXPECT_EQ(ParseDurability("group", "--durability").value(), v1::EventLogConfig::GROUP);
  EXPECT_THAT(std::string(ParseDurability("fast", "--durability").status().message()),
              HasSubstr("--durability=fast"));
  EXPECT_EQ(ParseIndexType("hnsw", "--index").value(), v1::IndexConfig::HNSW);
  EXPECT_FALSE(ParseIndexType("lsh", "--index").ok());
}

TEST(StatusUtilTest, ToGrpcStatusKeepsCodeAndMessage) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  const grpc::Status s = ToGrpcStatus(absl::InvalidArgumentError("k=0: k must be in [1, 100]"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "k=0: k must be in [1, 100]");
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("q")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(99), "?")).error_code(),
            grpc::StatusCode::UNKNOWN);
  // And back, as the client does.
  const absl::Status back = client::FromGrpcStatus(s);
  EXPECT_TRUE(absl::IsInvalidArgument(back));
  EXPECT_EQ(back.message(), "k=0: k must be in [1, 100]");
}

TEST(LatencyHistogramTest, QuantilesAreWithinTheBucketResolution) {
  LatencyHistogram h;
  // 1..1000 µs, uniform: p50 ≈ 500 µs, p99 ≈ 990 µs. Bucket width is 10% (±5% around the middle).
  for (int us = 1; us <= 1000; ++us) h.Record(absl::Microseconds(us), /*ok=*/us % 100 != 0);
  const LatencyHistogram::Summary s = h.Summarize();
  EXPECT_EQ(s.count, 1000);
  EXPECT_EQ(s.errors, 10);
  EXPECT_NEAR(s.mean_ms, 0.5005, 1e-9);
  EXPECT_NEAR(s.p50_ms, 0.500, 0.500 * 0.06);
  EXPECT_NEAR(s.p95_ms, 0.950, 0.950 * 0.06);
  EXPECT_NEAR(s.p99_ms, 0.990, 0.990 * 0.06);
  EXPECT_DOUBLE_EQ(s.max_ms, 1.0);
  EXPECT_EQ(LatencyHistogram().Summarize().count, 0);
}

TEST(ProtoConvertTest, ItemsOfTheWrongLengthNameTheItem) {
  v1::UpsertItemsRequest request;
  v1::Item* a = request.add_items();
  a->set_item_id(1);
  a->add_features(1);
  a->add_features(2);
  v1::Item* b = request.add_items();
  b->set_item_id(2);
  b->add_features(3);
  absl::StatusOr<ItemCatalog> items = FromProto(request, /*dim_features=*/2);
  ASSERT_TRUE(absl::IsInvalidArgument(items.status()));
  EXPECT_THAT(std::string(items.status().message()),
              HasSubstr("items[1].features has 1 values: the catalog has dim_features=2"));
  b->add_features(4);
  items = FromProto(request, 2);
  ASSERT_TRUE(items.ok());
  EXPECT_EQ(items->ids, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(items->features, (std::vector<float>{1, 2, 3, 4}));
}

TEST(ProtoConvertTest, RetrieveRequestKeepsSeedPresence) {
  v1::RetrieveRequest request;
  request.mutable_context()->add_dense(0.5f);
  v1::CategoricalFeature* cat = request.mutable_context()->add_categorical();
  cat->set_name("country");
  cat->add_ids(49);
  request.set_k(3);
  request.add_exclude_item_ids(7);
  RetrieveRequest r = FromProto(request);
  EXPECT_FALSE(r.seed.has_value());
  EXPECT_EQ(r.k, 3);
  EXPECT_EQ(r.exclude, std::vector<int64_t>{7});
  ASSERT_EQ(r.categorical.size(), 1u);
  EXPECT_EQ(r.categorical[0].name, "country");
  request.set_seed(0);
  EXPECT_EQ(FromProto(request).seed, std::optional<uint64_t>(0));
}

}  // namespace
}  // namespace optower::server
