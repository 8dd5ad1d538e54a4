// Issue 12 §4, "the same files served": the Open Bandit Dataset's men campaign (shared/obd/men)
// imported, a DR policy trained on its Bernoulli-TS log and saved as a bare policy folder, a real
// gRPC server (127.0.0.1, ephemeral port) started on the OBD items and that model, the random log's
// contexts (34 affinity features + 4 hashed user features) replayed through Retrieve, and the event
// log read back: every request holds exactly the categorical features that were sent.
// Skipped when the shared folder is absent (OPTOWER_SHARED_DIR).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/optower_client.h"
#include "core/base/csv_io.h"
#include "core/base/obd_campaign.h"
#include "core/learning/policy_learner.h"
#include "core/storage/event_log.h"
#include "gtest/gtest.h"
#include "server/optower_server.h"
#include "tests/testing/paths.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

constexpr int64_t kReplayed = 10000;  // the whole random log, every row through Retrieve

TEST(ServerObdTest, ImportedModelServesTheRandomLogsContextsAndLogsTheirCategoricalFeatures) {
  const std::string campaign = testutil::SharedDir() + "/obd/men";
  if (!std::filesystem::exists(campaign)) GTEST_SKIP() << campaign << " not found";
  absl::StatusOr<ObdCampaign> obd = ReadObdCampaign(campaign);
  ASSERT_TRUE(obd.ok()) << obd.status();
  const ObdPolicyLog* bts = nullptr;
  const ObdPolicyLog* random = nullptr;
  for (const ObdPolicyLog& p : obd->policies) {
    if (p.policy == "bts") bts = &p;
    if (p.policy == "random") random = &p;
  }
  ASSERT_NE(bts, nullptr);
  ASSERT_NE(random, nullptr);
  ASSERT_GE(random->log.size(), kReplayed);

  // A small DR policy on the BTS log (the schema is derived from its c: columns).
  PolicyLearnerOptions o;
  o.hidden = {};
  o.epochs = 2;
  o.reward_model.epochs = 3;
  o.threads = 1;
  absl::StatusOr<PolicyTrainResult> trained = TrainPolicy(bts->log, obd->items, o);
  ASSERT_TRUE(trained.ok()) << trained.status();
  ASSERT_EQ(trained->policy.config().context_fields.size(), 4u);
  testutil::TempDir dir("server_obd_test");
  ASSERT_TRUE(trained->policy.Save(dir.File("policy")).ok());
  ASSERT_TRUE(WriteItemsCsv(dir.File("items.csv"), obd->items).ok());

  v1::ServerConfig config;
  config.set_port(0);
  config.set_data_dir(dir.File("data"));
  config.set_items_path(dir.File("items.csv"));
  config.set_model_dir(dir.File("policy"));
  config.set_dim_context(static_cast<int32_t>(random->log.dim_context));
  config.mutable_index()->set_type(v1::IndexConfig::EXACT);
  config.mutable_trainer()->set_disabled(true);
  absl::StatusOr<std::unique_ptr<server::OptowerServer>> server =
      server::OptowerServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  client::ClientOptions options;
  options.address = absl::StrCat("127.0.0.1:", (*server)->port());
  absl::StatusOr<std::unique_ptr<client::OptowerClient>> client =
      client::OptowerClient::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();

  std::vector<std::string> sent;  // CategoricalFeaturesToText of each request, in order
  for (int64_t i = 0; i < kReplayed; ++i) {
    v1::RetrieveRequest request;
    const float* x = random->log.context(i);
    request.mutable_context()->mutable_dense()->Add(x, x + random->log.dim_context);
    const std::vector<CategoricalFeature> features =
        random->log.context_categorical.RowFeatures(i);
    for (const CategoricalFeature& f : features) {
      v1::CategoricalFeature* out = request.mutable_context()->add_categorical();
      out->set_name(f.name);
      out->mutable_ids()->Add(f.ids.begin(), f.ids.end());
    }
    request.set_k(3);  // the campaign's widget shows 3 items
    request.set_request_id(absl::StrCat("obd-", i));
    absl::StatusOr<v1::RetrieveResponse> response = (*client)->Retrieve(request);
    ASSERT_TRUE(response.ok()) << "row " << i << ": " << response.status();
    ASSERT_EQ(response->items_size(), 3);
    sent.push_back(CategoricalFeaturesToText(features));
  }

  ASSERT_TRUE((*server)->event_log().Flush().ok());
  absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = (*server)->event_log().ReadJoined({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), static_cast<size_t>(3 * kReplayed));
  int64_t with_features = 0;
  for (const EventLog::JoinedRow& row : *rows) {
    int64_t i = -1;
    ASSERT_TRUE(absl::SimpleAtoi(row.request_id.substr(4), &i)) << row.request_id;
    ASSERT_GE(i, 0);
    ASSERT_LT(i, kReplayed);
    EXPECT_EQ(row.categorical, sent[static_cast<size_t>(i)]) << row.request_id;
    if (!row.categorical.empty()) ++with_features;
  }
  EXPECT_EQ(with_features, 3 * kReplayed) << "every OBD row has its 4 user features";
}

}  // namespace
}  // namespace optower
