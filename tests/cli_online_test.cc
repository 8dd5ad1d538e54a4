// The online subcommands of the real `optower` binary (retrieve, feedback, items, stats) against an
// in-process optower-server on 127.0.0.1 (ephemeral port). --json output is parsed by Python's json
// module (/usr/bin/python3), so "parses" means a real JSON parser accepted it.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
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

class CliOnlineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_ = testutil::RandomCatalog(30, 3, /*seed=*/2);
    v1::ServerConfig config;
    config.set_port(0);
    config.set_data_dir(dir_.File("data"));
    config.set_items_path(testutil::WriteItems(dir_.path(), catalog_));
    config.set_dim_context(3);
    config.set_max_k(20);
    absl::StatusOr<std::unique_ptr<server::OptowerServer>> s = server::OptowerServer::Start(config);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  SubprocessResult Optower(const std::vector<std::string>& args) {
    testutil::SubprocessOptions options;
    options.timeout_seconds = 60;
    absl::StatusOr<SubprocessResult> r = RunOptower(args, options);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : SubprocessResult{};
  }

  TempDir dir_{"cli_online_test"};
  ItemCatalog catalog_;
  std::unique_ptr<server::OptowerServer> server_;
  std::string address_;
};

TEST_F(CliOnlineTest, RetrieveFeedbackAndStatsPrintJson) {
  SubprocessResult r = Optower({"retrieve", "--server", address_, "--context", "0.5,-1,2", "--k",
                                "4", "--seed", "9", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one JSON object: " << r.out;
  EXPECT_EQ(PyJson(r.out, "len(d['items']), d['model_version'], d['items'][0]['position']"),
            "(4, 'init-0', 0)");
  const std::string request_id = PyJson(r.out, "d['request_id']");
  const std::string item = PyJson(r.out, "d['items'][2]['item_id']");
  EXPECT_EQ(PyJson(r.out, "all(0 < i['propensity'] <= 1 for i in d['items'])"), "True");
  EXPECT_EQ(PyJson(r.out, "all(0 < i['conditional_propensity'] <= 1 for i in d['items'])"), "True");

  SubprocessResult f = Optower({"feedback", "--server", address_, "--request-id", request_id,
                                "--item", item, "--reward", "1", "--json"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(PyJson(f.out, "d['outcome'], d['accepted']"), "('accepted', 1)");
  f = Optower({"feedback", "--server", address_, "--request-id", request_id, "--item", item,
               "--reward", "0"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_THAT(f.out, HasSubstr("feedback duplicate"));

  SubprocessResult s = Optower({"stats", "--server", address_, "--json"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(PyJson(s.out, "d['retrieve_ok'], d['items_served'], d['feedback_accepted'], "
                          "d['feedback_duplicate'], d['catalog_size'], d['event_log']['durability']"),
            "(1, 4, 1, 1, 30, 'group')");
  s = Optower({"stats", "--server", address_});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_THAT(s.out, HasSubstr("model init-0; catalog 30 items"));

  r = Optower({"retrieve", "--server", address_, "--context", "0.5,-1,2", "--k", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("position"));
}

TEST_F(CliOnlineTest, BadInputExitsTwoWithOneLine) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"retrieve", "--server", address_, "--context", "1,2", "--k", "3"},
       "Retrieve: context.dense has 2 values: expected dim_context=3"},
      {{"retrieve", "--server", address_, "--context", "1,nan,2", "--k", "3"},
       "context.dense[1]=nan: must be finite"},
      {{"retrieve", "--server", address_, "--context", "1,x,2", "--k", "3"},
       "--context: value 1 'x' is not a number"},
      {{"retrieve", "--server", address_, "--context", "1,2,3", "--k", "21"},
       "k=21: k must be in [1, 20]"},
      {{"retrieve", "--server", address_, "--context", "1,2,3"}, "--k"},
      {{"feedback", "--server", address_, "--request-id", "r", "--item", "1", "--reward", "inf"},
       "--reward=inf: expected a finite number"},
      {{"items", "delete", "--server", address_, "--items", dir_.File("nope.csv")}, "nope.csv"},
      {{"retrieve", "--server", address_, "--context", "1,2,3", "--k", "1", "--categorical",
        "user=12"},
       "context.categorical[0].name='user': not a field of the model's schema (fields: none)"},
      {{"retrieve", "--server", address_, "--context", "1,2,3", "--k", "1", "--categorical",
        "user=x"},
       "--categorical: "},
  };
  for (const Case& c : cases) {
    SubprocessResult r = Optower(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.message << ": " << r.err;
    EXPECT_EQ(r.ErrLineCount(), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message));
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST_F(CliOnlineTest, UnreachableServerExitsOne) {
  SubprocessResult r = Optower(
      {"retrieve", "--server", "127.0.0.1:1", "--context", "1,2,3", "--k", "1", "--timeout", "2"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.ErrLineCount(), 1) << r.err;
}

TEST_F(CliOnlineTest, ItemsUpsertAndDeleteChangeTheCatalog) {
  const ItemCatalog extra = testutil::RandomCatalog(5, 3, /*seed=*/8, /*first_id=*/700);
  const std::string path = testutil::WriteItems(dir_.path(), extra, "extra.csv");
  SubprocessResult up = Optower({"items", "upsert", "--server", address_, "--items", path, "--json"});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(PyJson(up.out, "d['inserted'], d['updated'], d['catalog_size'], d['index_type']"),
            "(5, 0, 35, 'exact')");
  SubprocessResult del = Optower({"items", "delete", "--server", address_, "--items", path});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_THAT(del.out, HasSubstr("5 deleted; catalog 30 items"));
  del = Optower({"items", "delete", "--server", address_, "--items", path});
  EXPECT_EQ(del.exit_code, 2);
  EXPECT_THAT(del.err, HasSubstr("item_ids[0]=700: not in the catalog"));
  SubprocessResult bad = Optower({"items", "rename", "--server", address_, "--items", path});
  EXPECT_EQ(bad.exit_code, 2);
}

// Issue 12: `retrieve --categorical` and the c:<name> columns of `items upsert` against a server
// whose random towers declare a categorical schema.
TEST_F(CliOnlineTest, CategoricalFeaturesAndItemColumnsReachTheServer) {
  v1::ServerConfig config;
  config.set_port(0);
  config.set_data_dir(dir_.File("data_categorical"));
  config.set_items_path(testutil::WriteItems(dir_.path(), catalog_, "dense.csv"));
  config.set_dim_context(3);
  for (const char* name : {"user", "country"}) config.add_init_context_fields()->set_name(name);
  config.add_init_item_fields()->set_name("brand");
  absl::StatusOr<std::unique_ptr<server::OptowerServer>> s = server::OptowerServer::Start(config);
  ASSERT_TRUE(s.ok()) << s.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*s)->port());

  SubprocessResult stats = Optower({"stats", "--server", address, "--json"});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_EQ(PyJson(stats.out, "d['context_fields'], d['item_fields']"),
            "(['user:4096:16:1', 'country:4096:16:1'], ['brand:4096:16:1'])");
  SubprocessResult r = Optower({"retrieve", "--server", address, "--context", "0.5,-1,2", "--k",
                                "2", "--categorical", "user=12;country=49", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE((*s)->event_log().Flush().ok());
  absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = (*s)->event_log().ReadJoined({});
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].categorical, "user=12;country=49");
  r = Optower({"retrieve", "--server", address, "--context", "0.5,-1,2", "--k", "2",
               "--categorical", "user=12;foo=1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("context.categorical[1].name='foo': not a field of the model's "
                               "schema (fields: user, country)"));

  ItemCatalog extra = testutil::RandomCatalog(2, 3, /*seed=*/8, /*first_id=*/700);
  extra.categorical = CategoricalColumns({"brand"});
  ASSERT_TRUE(extra.categorical.AppendFeatures({{"brand", {5}}}).ok());
  ASSERT_TRUE(extra.categorical.AppendFeatures({}).ok());
  const std::string path = testutil::WriteItems(dir_.path(), extra, "extra_categorical.csv");
  SubprocessResult up = Optower({"items", "upsert", "--server", address, "--items", path});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  const ItemCatalog& served = (*s)->engine().snapshot()->catalog();
  const int64_t row = (*s)->engine().snapshot()->index().RowOf(700);
  ASSERT_GE(row, 0);
  ASSERT_EQ(served.categorical.fields(), std::vector<std::string>{"brand"});
  EXPECT_EQ(served.categorical.ids(row, 0).size(), 1u);
  EXPECT_EQ(served.categorical.ids(row, 0)[0], 5);
  ASSERT_TRUE((*s)->Shutdown().ok());
}

}  // namespace
}  // namespace optower
