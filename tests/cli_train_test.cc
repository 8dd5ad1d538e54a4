// `optower train / policy / evaluate` end to end through the real binary: a tiny synthetic data set
// trains, scores and evaluates; every bad-data case exits 2 with one `file:line: ...` line and leaves
// no output behind.
#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <string>
#include <tuple>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/subprocess.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testutil::RunOptower;

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

class CliTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/optower_cli_train_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto r = RunOptower({"synth", "--n-actions", "8", "--dim-context", "3", "--rounds", "1500",
                         "--test-rounds", "500", "--beta", "-1", "--behavior", "linear", "--seed",
                         "3", "--out", dir_ + "/data"});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << r->err;
    items_ = dir_ + "/data/items.csv";
    logs_ = dir_ + "/data/logs.csv";
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  // Runs train on `logs_file` and expects exit 2, exactly one stderr line starting with `prefix`
  // and containing `what`, and no model folder.
  void ExpectBadData(const std::string& logs_file, const std::string& items_file,
                     const std::string& prefix, const std::string& what) {
    const std::string out = dir_ + "/model_bad";
    auto r = RunOptower({"train", "--logs", logs_file, "--items", items_file, "--objective", "dr",
                         "--out", out, "--epochs", "1", "--quiet"});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 2) << r->err;
    EXPECT_EQ(r->ErrLineCount(), 1) << r->err;
    EXPECT_THAT(r->err, HasSubstr(prefix)) << r->err;
    EXPECT_THAT(r->err, HasSubstr(what)) << r->err;
    EXPECT_FALSE(Exists(out)) << "a failed train must not leave " << out;
  }

  std::string dir_, items_, logs_;
};

TEST_F(CliTrainTest, TrainPolicyEvaluateRoundTrip) {
  const std::string model = dir_ + "/model";
  auto r = RunOptower({"train", "--logs", logs_, "--items", items_, "--objective", "dr", "--out",
                       model, "--epochs", "3", "--hidden=", "--threads", "1"});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->exit_code, 0) << r->err;
  for (const char* f : {"/policy/config.txt", "/policy/weights.pt", "/reward_model/weights.pt",
                        "/items.csv", "/manifest.json"})
    EXPECT_TRUE(Exists(model + f)) << f;
  // Plain progress lines (stderr is not a terminal here).
  EXPECT_THAT(r->err, HasSubstr("policy epoch 1/3"));
  // The CLI's q̂ search defaults (docs/LEARNING.md "Choosing q̂") are the ones recorded.
  {
    std::ifstream in(model + "/manifest.json");
    const std::string manifest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_THAT(manifest, HasSubstr("\"qhat_context_degrees\": \"1,2,3\""));
    EXPECT_THAT(manifest, HasSubstr("\"qhat_l2_per_row\": \"10\""));
  }

  r = RunOptower({"policy", "--model", model, "--contexts", dir_ + "/data/test_contexts.csv", "--out",
                  dir_ + "/pi.csv"});
  ASSERT_EQ(r->exit_code, 0) << r->err;
  std::ifstream pi(dir_ + "/pi.csv");
  std::string header, row;
  std::getline(pi, header);
  EXPECT_EQ(header, "a0,a1,a2,a3,a4,a5,a6,a7");
  int rows = 0;
  while (std::getline(pi, row)) {
    double sum = 0;
    size_t pos = 0;
    while (pos < row.size()) {
      size_t next = row.find(',', pos);
      if (next == std::string::npos) next = row.size();
      sum += std::stod(row.substr(pos, next - pos));
      pos = next + 1;
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
    ++rows;
  }
  EXPECT_EQ(rows, 500);

  r = RunOptower({"policy", "--model", model, "--contexts", dir_ + "/data/test_contexts.csv", "--out",
                  dir_ + "/top.csv", "--top-k", "2"});
  ASSERT_EQ(r->exit_code, 0) << r->err;

  r = RunOptower({"evaluate", "--model", model, "--logs", logs_, "--json"});
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, HasSubstr("\"estimator\": \"dr\""));
  EXPECT_THAT(r->out, HasSubstr("\"estimator\": \"ips\""));
}

TEST_F(CliTrainTest, RefusesToOverwriteAnExistingModelFolder) {
  const std::string model = dir_ + "/model";
  ::mkdir(model.c_str(), 0755);
  WriteText(model + "/keep.txt", "x");
  auto r = RunOptower({"train", "--logs", logs_, "--items", items_, "--out", model, "--quiet"});
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->err, HasSubstr("--out"));
  EXPECT_TRUE(Exists(model + "/keep.txt"));
}

TEST_F(CliTrainTest, WrongColumnCountIsRejectedWithFileAndLine) {
  const std::string bad = dir_ + "/bad.csv";
  WriteText(bad, "x0,x1,x2,action,reward,pscore\n0.1,0.2,0.3,1,1,0.5\n0.1,0.2,1,1,0.5\n");
  ExpectBadData(bad, items_, bad + ":3:", "column");
}

TEST_F(CliTrainTest, NonNumericValueIsRejected) {
  const std::string bad = dir_ + "/bad.csv";
  WriteText(bad, "x0,x1,x2,action,reward,pscore\n0.1,abc,0.3,1,1,0.5\n");
  ExpectBadData(bad, items_, bad + ":2:", "abc");
}

TEST_F(CliTrainTest, NanAndInfAreRejected) {
  const std::string bad = dir_ + "/bad.csv";
  WriteText(bad, "x0,x1,x2,action,reward,pscore\n0.1,0.2,0.3,1,1,0.5\n0.1,nan,0.3,1,1,0.5\n");
  ExpectBadData(bad, items_, bad + ":3:", "x1");
  WriteText(bad, "x0,x1,x2,action,reward,pscore\n0.1,0.2,0.3,1,inf,0.5\n");
  ExpectBadData(bad, items_, bad + ":2:", "reward");
}

TEST_F(CliTrainTest, PscoreOutsideUnitIntervalIsRejected) {
  const std::string bad = dir_ + "/bad.csv";
  for (const char* p : {"0", "-0.2", "1.5"}) {
    WriteText(bad, std::string("x0,x1,x2,action,reward,pscore\n0.1,0.2,0.3,1,1,") + p + "\n");
    ExpectBadData(bad, items_, bad + ":2:", "pscore");
  }
}

TEST_F(CliTrainTest, ActionNotInItemsIsRejected) {
  const std::string bad = dir_ + "/bad.csv";
  WriteText(bad, "x0,x1,x2,action,reward,pscore\n0.1,0.2,0.3,17,1,0.5\n");
  ExpectBadData(bad, items_, bad + ":2:", "action=17");
}

TEST_F(CliTrainTest, EmptyFileAndMissingHeaderAreRejected) {
  const std::string bad = dir_ + "/bad.csv";
  WriteText(bad, "");
  ExpectBadData(bad, items_, bad + ":1:", "");
  WriteText(bad, "0.1,0.2,0.3,1,1,0.5\n");
  ExpectBadData(bad, items_, bad + ":1:", "header");
}

TEST_F(CliTrainTest, BadItemsFileIsRejected) {
  const std::string bad = dir_ + "/items_bad.csv";
  WriteText(bad, "item,f0\n1,0.5\n1,0.7\n");
  ExpectBadData(logs_, bad, bad + ":3:", "1");
}

TEST_F(CliTrainTest, UntrainableLogsAreRefusedWithAReason) {
  // Deterministic logging: every propensity is 1.
  const std::string bad = dir_ + "/det.csv";
  std::string text = "x0,x1,x2,action,reward,pscore\n";
  for (int i = 0; i < 50; ++i) text += "0.1,0.2,0.3," + std::to_string(i % 8) + "," + std::to_string(i % 2) + ",1\n";
  WriteText(bad, text);
  auto r = RunOptower({"train", "--logs", bad, "--items", items_, "--out", dir_ + "/m", "--quiet"});
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->err, HasSubstr("deterministic"));
  EXPECT_FALSE(Exists(dir_ + "/m"));
}

TEST_F(CliTrainTest, BadFlagsExitWithUsageError) {
  auto r = RunOptower({"train", "--logs", logs_, "--items", items_, "--out", dir_ + "/m",
                       "--objective", "magic"});
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_EQ(r->ErrLineCount(), 1);
  EXPECT_THAT(r->err, HasSubstr("objective=magic"));
  r = RunOptower({"train", "--logs", logs_, "--items", items_, "--out", dir_ + "/m", "--gradient",
                  "approximate"});
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_EQ(r->ErrLineCount(), 1);
  EXPECT_THAT(r->err, HasSubstr("--gradient=approximate: must be auto, exact or sampled"));
  r = RunOptower({"train", "--logs", logs_, "--items", items_, "--out", dir_ + "/m",
                  "--sampled-head", "0"});
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_EQ(r->ErrLineCount(), 1);
  EXPECT_THAT(r->err, HasSubstr("--sampled-head=0"));
  r = RunOptower({"train", "--logs", logs_, "--items", items_, "--out", dir_ + "/m",
                  "--context-fields", "user:0"});
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_EQ(r->ErrLineCount(), 1);
  EXPECT_THAT(r->err, HasSubstr("--context-fields: categorical field[0] 'user': buckets=0"));
  for (auto [flag, value, what] :
       {std::tuple<const char*, const char*, const char*>{"--qhat-context-degrees", "1,4",
                                                          "context_degrees: 4: must be 1, 2 or 3"},
        {"--qhat-context-degrees", "1,x", "'x' is not a number"},
        {"--qhat-l2-per-row", "-3", "l2_per_row: -3: must be >= 0"}}) {
    r = RunOptower({"train", "--logs", logs_, "--items", items_, "--out", dir_ + "/m", flag, value});
    EXPECT_EQ(r->exit_code, 2) << flag << "=" << value;
    EXPECT_EQ(r->ErrLineCount(), 1) << r->err;
    EXPECT_THAT(r->err, HasSubstr(std::string(flag) + "=" + value)) << r->err;
    EXPECT_THAT(r->err, HasSubstr(what)) << r->err;
    EXPECT_FALSE(Exists(dir_ + "/m"));
  }
  r = RunOptower({"feature-experiment", "--variants", "dense,tabular", "--seeds", "1"});
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_EQ(r->ErrLineCount(), 1);
  EXPECT_THAT(r->err, HasSubstr("--variants: unknown variant 'tabular'"));
  r = RunOptower({"train", "--help"});
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_THAT(r->out, HasSubstr("--objective"));
}

}  // namespace
}  // namespace optower
