// `optower import obd` end to end through the real binary: exactness on known rows of the Open Bandit
// Dataset sample (shared/obd/men; skipped without it), a synthetic campaign with another item count
// and campaign name, and bad input (exit 2, one `file:line: ...` line, nothing written).
#include <sys/stat.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/base/categorical.h"
#include "core/base/csv_io.h"
#include "tests/testing/paths.h"
#include "tests/testing/subprocess.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using testutil::RunOptower;

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> Split(const std::string& line) { return absl::StrSplit(line, ','); }

float ParseFloat(const std::string& s) {
  float v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

class CliImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/optower_cli_import_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  void Write(const std::string& rel, const std::string& text) {
    std::system(("mkdir -p \"$(dirname " + dir_ + "/" + rel + ")\"").c_str());
    std::ofstream(dir_ + "/" + rel) << text;
  }

  // A campaign "shoes" of 5 items (ids 100..104) and 2 positions: policy folder a/ with
  // shoes.csv and item_context.csv, policy folder b/ with other.csv only, and empty/ (skipped).
  // Columns in another order than OBD's, with the row index and timestamp among them.
  void WriteShoes(const std::string& bad_a_row = "") {
    Write("shoes/a/item_context.csv",
          ",item_id,item_feature_0,item_feature_1,item_feature_2\n"
          "0,100,0.5,red,x\n1,101,-1,blue,x\n2,102,0,red,y\n3,103,2,green,\n4,104,1e-3,red,y\n");
    const std::string head =
        "user-item_affinity_0,user-item_affinity_1,item_id,,click,propensity_score,position,"
        "timestamp,user_feature_0,user-item_affinity_2,user-item_affinity_3,user-item_affinity_4,"
        "user_feature_1\n";
    Write("shoes/a/shoes.csv", head + "0.5,0,104,0,0,0.2,2,t,u1,0,0,1,k\n" +
                                   (bad_a_row.empty() ? "0,1,100,1,1,0.2,1,t,u2,0,0,0,\n"
                                                      : bad_a_row + "\n"));
    Write("shoes/b/other.csv", head + "1,1,102,0,0,1,1,t,u1,1,1,1,k\n");
    Write("shoes/empty/notes.txt", "no csv here\n");
  }

  // Runs import and expects exit 2 with one stderr line holding every `mentions`, and no `out`.
  void ExpectBadInput(const std::string& campaign, const std::vector<std::string>& mentions) {
    const std::string out = dir_ + "/out_bad";
    auto r = RunOptower({"import", "obd", "--dir", campaign, "--out", out});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 2) << r->err;
    EXPECT_EQ(r->ErrLineCount(), 1) << r->err;
    for (const std::string& m : mentions) EXPECT_THAT(r->err, HasSubstr(m));
    EXPECT_FALSE(Exists(out)) << "a failed import must not leave " << out;
  }

  std::string dir_;
};

TEST_F(CliImportTest, ObdMenRowsAreImportedExactly) {
  const std::string men = testutil::SharedDir() + "/obd/men";
  if (!Exists(men + "/random/men.csv")) GTEST_SKIP() << "no Open Bandit Dataset at " << men;
  const std::string out = dir_ + "/men";
  auto r = RunOptower({"import", "obd", "--dir", men, "--out", out});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, HasSubstr("bts: 10000 rows, 34 items, 3 positions, 69 clicks"));
  EXPECT_THAT(r->out, HasSubstr("random: 10000 rows, 34 items, 3 positions, 46 clicks"));
  auto items = ReadItemsCsv(out + "/items.csv");
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_EQ(items->size(), 34);
  EXPECT_EQ(items->dim_features, 1);
  EXPECT_EQ(items->categorical.num_fields(), 3);
  for (const std::string policy : {"bts", "random"}) {
    const auto src = Lines(men + "/" + policy + "/men.csv");
    const auto dst = Lines(out + "/logs_" + policy + ".csv");
    ASSERT_EQ(src.size(), 10001u);
    ASSERT_EQ(dst.size(), src.size());  // same rows, same order
    const auto dst_head = Split(dst[0]);
    ASSERT_EQ(dst_head.size(), 34u + 4 + 4);
    EXPECT_EQ(dst_head[34], "c:user_feature_0");
    EXPECT_EQ(absl::StrJoin(dst_head.end() - 4, dst_head.end(), ","),
              "action,reward,pscore,position");
    for (size_t line : {1ul, 2ul, 191ul, 5000ul, 10000ul}) {
      // source: ,timestamp,item_id,position,click,propensity_score,user_feature_0..3,affinity_0..33
      const auto s = Split(src[line]);
      const auto d = Split(dst[line]);
      ASSERT_EQ(s.size(), 44u);
      ASSERT_EQ(d.size(), 42u);
      for (int j = 0; j < 34; ++j) EXPECT_EQ(ParseFloat(d[j]), ParseFloat(s[10 + j])) << line;
      for (int j = 0; j < 4; ++j)
        EXPECT_EQ(d[34 + j], std::to_string(CategoricalIdFromText(s[6 + j]))) << line;
      EXPECT_EQ(d[38], s[2]);                                     // action = item_id
      EXPECT_EQ(d[39], s[4]);                                     // reward = click
      EXPECT_EQ(d[40], s[5]);                                     // pscore verbatim
      EXPECT_EQ(d[41], std::to_string(std::stoi(s[3]) - 1));      // 0-based position
    }
  }
  // A known click of the BTS log (file line 192): item 13 at position 1, propensity 0.36308.
  EXPECT_THAT(Lines(out + "/logs_bts.csv")[191], ::testing::EndsWith(",13,1,0.36308,0"));
  // The reader takes each verbatim propensity to its nearest float.
  auto log = ReadLogsCsv(out + "/logs_random.csv", *items);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->pscores[0], ParseFloat("0.029411764705882353"));
  EXPECT_EQ(log->pscores[0], static_cast<float>(1.0 / 34));
  EXPECT_EQ(log->positions.size(), 10000u);
  EXPECT_FALSE(log->has_slates());
  std::ifstream json(out + "/import.json");
  std::stringstream ss;
  ss << json.rdbuf();
  EXPECT_EQ(testutil::PyJson(ss.str(), "[(p['policy'], p['rows'], p['clicks']) for p in d['policies']]"),
            "[('bts', 10000, 69), ('random', 10000, 46)]");
}

// A tiny model trained through the CLI on the imported BTS log uses the categorical columns (its
// config lists the user and item fields) and evaluates on the random log.
TEST_F(CliImportTest, TrainsOnImportedObdLogsWithCategoricalFields) {
  const std::string men = testutil::SharedDir() + "/obd/men";
  if (!Exists(men + "/bts/men.csv")) GTEST_SKIP() << "no Open Bandit Dataset at " << men;
  const std::string data = dir_ + "/men";
  auto r = RunOptower({"import", "obd", "--dir", men, "--out", data});
  ASSERT_EQ(r->exit_code, 0) << r->err;
  testutil::SubprocessOptions passive;
  passive.extra_env = {"OMP_WAIT_POLICY=PASSIVE"};
  const std::string model = dir_ + "/model";
  r = RunOptower({"train", "--logs", data + "/logs_bts.csv", "--items", data + "/items.csv",
                  "--objective", "dr", "--epochs", "1", "--qhat-epochs", "1", "--hidden=",
                  "--threads", "1", "--seed", "0", "--out", model, "--quiet"},
                 passive);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  const auto config = Lines(model + "/policy/config.txt");
  const std::string text = absl::StrJoin(config, "\n");
  for (const char* field : {"context_field=user_feature_0:", "context_field=user_feature_3:",
                            "item_field=item_feature_1:", "item_field=item_feature_3:"})
    EXPECT_THAT(text, HasSubstr(field));
  EXPECT_THAT(text, HasSubstr("dim_context=34"));
  r = RunOptower({"evaluate", "--model", model, "--logs", data + "/logs_random.csv", "--json"},
                 passive);
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(testutil::PyJson(r->out, "[e['estimator'] for e in d['estimates']]"),
            "['ips', 'snips', 'dr']");
  EXPECT_EQ(testutil::PyJson(r->out, "d['n']"), "10000");
}

TEST_F(CliImportTest, SyntheticCampaignWithOtherNamesAndSizes) {
  WriteShoes();
  const std::string out = dir_ + "/out";
  auto r = RunOptower({"import", "obd", "--dir", dir_ + "/shoes/", "--out", out});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, HasSubstr("a: 2 rows, 5 items, 2 positions, 1 clicks"));
  EXPECT_THAT(r->out, HasSubstr("b: 1 rows, 5 items, 1 positions, 0 clicks"));
  EXPECT_FALSE(Exists(out + "/logs_empty.csv"));
  const auto items = Lines(out + "/items.csv");
  ASSERT_EQ(items.size(), 6u);
  EXPECT_EQ(items[0], "item,f0,c:item_feature_1,c:item_feature_2");
  EXPECT_EQ(items[4], "103,2," + std::to_string(CategoricalIdFromText("green")) + ",");
  const auto a = Lines(out + "/logs_a.csv");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], "x0,x1,x2,x3,x4,c:user_feature_0,c:user_feature_1,action,reward,pscore,position");
  EXPECT_EQ(a[1], "0.5,0,0,0,1," + std::to_string(CategoricalIdFromText("u1")) + "," +
                      std::to_string(CategoricalIdFromText("k")) + ",104,0,0.2,1");
  EXPECT_EQ(a[2], "0,1,0,0,0," + std::to_string(CategoricalIdFromText("u2")) + ",,100,1,0.2,0");
  auto catalog = ReadItemsCsv(out + "/items.csv");
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  auto log = ReadLogsCsv(out + "/logs_b.csv", *catalog);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->actions, std::vector<int64_t>{2});
  EXPECT_EQ(log->pscores, std::vector<float>{1.f});
  // An existing output folder needs --overwrite.
  r = RunOptower({"import", "obd", "--dir", dir_ + "/shoes", "--out", out});
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_THAT(r->err, HasSubstr("--overwrite"));
}

// evaluate --uniform on an imported log whose propensities are uniform (0.2 = 1/5 items): every
// importance weight is 1 (up to the float pscore: 0.2f = 0.2 + 3e-9), so IPS and SNIPS equal the
// observed CTR; DR (q̂ fitted on the same 2 rows) is reported too.
TEST_F(CliImportTest, EvaluateUniformOnImportedLogs) {
  WriteShoes();
  const std::string out = dir_ + "/out";
  auto r = RunOptower({"import", "obd", "--dir", dir_ + "/shoes", "--out", out});
  ASSERT_EQ(r->exit_code, 0) << r->err;
  testutil::SubprocessOptions passive;
  passive.extra_env = {"OMP_WAIT_POLICY=PASSIVE"};
  r = RunOptower({"evaluate", "--uniform", "--logs", out + "/logs_a.csv", "--items",
                  out + "/items.csv", "--qhat-epochs", "2", "--threads", "1", "--json"},
                 passive);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(testutil::PyJson(r->out, "d['target']"), "uniform random over 5 items");
  EXPECT_EQ(testutil::PyJson(r->out, "[round(e['value'], 6) for e in d['estimates'][:2]]"),
            "[0.5, 0.5]");
  EXPECT_EQ(testutil::PyJson(r->out, "d['estimates'][2]['estimator']"), "dr");
  // Usage errors: one line, exit 2.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"evaluate", "--uniform", "--logs", out + "/logs_a.csv"},
        std::vector<std::string>{"evaluate", "--uniform", "--model", out, "--items",
                                 out + "/items.csv", "--logs", out + "/logs_a.csv"},
        std::vector<std::string>{"evaluate", "--logs", out + "/logs_a.csv"}}) {
    r = RunOptower(args);
    EXPECT_EQ(r->exit_code, 2) << r->err;
    EXPECT_EQ(r->ErrLineCount(), 1) << r->err;
  }
}

TEST_F(CliImportTest, BadInputExitsTwoWithFileLineAndWritesNothing) {
  const std::string shoes = dir_ + "/shoes";
  const std::string a = shoes + "/a/shoes.csv";
  struct Case {
    std::string row;
    std::vector<std::string> mentions;
  };
  for (const Case& c : std::vector<Case>{
           {"0,abc,100,1,0,0.2,1,t,u2,0,0,0,", {a + ":3: user-item_affinity_1=abc: not a number"}},
           {"0,1,100,1,0,0,1,t,u2,0,0,0,", {a + ":3: propensity_score=0: must be in (0, 1]"}},
           {"0,1,100,1,0,1.5,1,t,u2,0,0,0,", {a + ":3: propensity_score=1.5: must be in (0, 1]"}},
           {"0,1,100,1,0,0.2,0,t,u2,0,0,0,", {a + ":3: position=0: positions are 1-based"}},
           {"0,1,100,1,2,0.2,1,t,u2,0,0,0,", {a + ":3: click=2: must be 0 or 1"}},
           {"0,1,999,1,0,0.2,1,t,u2,0,0,0,", {a + ":3: item_id=999 is not an item of"}},
           {"0,1,100,1,0,0.2,1,t,u2,0,0", {a + ":3: expected 13 columns"}}}) {
    std::system(("rm -rf " + shoes).c_str());
    WriteShoes(c.row);
    ExpectBadInput(shoes, c.mentions);
  }
  std::system(("rm -rf " + shoes).c_str());
  WriteShoes();
  Write("shoes/b/other.csv", "item_id,position,click,user_feature_0\n100,1,0,u\n");
  ExpectBadInput(shoes, {shoes + "/b/other.csv:1: column 'propensity_score' is missing"});
  std::system(("rm " + shoes + "/a/item_context.csv").c_str());
  ExpectBadInput(shoes, {"no policy subfolder holds item_context.csv"});
  ExpectBadInput(dir_ + "/nothing", {"not a folder"});
  auto r = RunOptower({"import", "csv", "--dir", shoes, "--out", dir_ + "/x"});
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->err, HasSubstr("unknown format 'csv'"));
}

}  // namespace
}  // namespace optower
