// End-to-end tests of `optower synth`, run as a real process (the binary must be built:
// `cmake --build <dir> --target optower`).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/bandit_data.h"
#include "core/base/csv_io.h"
#include "tests/testing/subprocess.h"

namespace optower {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testutil::RunOptower;
using testutil::SubprocessResult;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string FirstLine(const std::string& path) {
  std::string text = ReadText(path);
  return text.substr(0, text.find('\n'));
}

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The number stored under "key" in a flat JSON object (summary.json is written one field a line).
std::optional<double> JsonNumber(const std::string& json, const std::string& key) {
  std::smatch m;
  const std::regex re("\"" + key + "\": (-?[0-9.eE+-]+)");
  if (!std::regex_search(json, m, re)) return std::nullopt;
  return std::stod(m[1]);
}

class CliSynthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/cli_synth_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    ASSERT_TRUE(fs::exists(testutil::OptowerBinaryPath()))
        << testutil::OptowerBinaryPath() << " is not built (build the `optower` target)";
  }
  void TearDown() override { fs::remove_all(root_); }

  SubprocessResult Run(const std::vector<std::string>& args) {
    testutil::SubprocessOptions options;
    options.working_dir = root_;  // a stray relative output would land here, where we look
    options.timeout_seconds = 120;
    auto r = RunOptower(args, options);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : SubprocessResult{};
  }

  std::string root_;
};

TEST_F(CliSynthTest, WritesAllFilesWithHeadersRowCountsAndGroundTruth) {
  const std::string out = root_ + "/data";
  SubprocessResult r =
      Run({"synth", "--n-actions", "4",        "--dim-context", "3",        "--dim-action-context",
           "2",     "--rounds",    "2000",     "--test-rounds", "50",       "--beta",
           "2",     "--behavior",  "expected", "--reward",      "logistic", "--seed",
           "7",     "--out",       out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_THAT(r.out, HasSubstr("2000 logged rounds"));
  EXPECT_THAT(Listing(root_), ElementsAre("data"));  // no temporary left beside it
  EXPECT_THAT(Listing(out),
              ElementsAre("items.csv", "logs.csv", "summary.json", "test_behavior_policy.csv",
                          "test_contexts.csv", "test_expected_reward.csv"));

  EXPECT_EQ(FirstLine(out + "/items.csv"), "item,f0,f1");
  EXPECT_EQ(FirstLine(out + "/logs.csv"), "x0,x1,x2,action,reward,pscore");
  EXPECT_EQ(FirstLine(out + "/test_contexts.csv"), "x0,x1,x2");
  EXPECT_EQ(FirstLine(out + "/test_expected_reward.csv"), "a0,a1,a2,a3");
  EXPECT_EQ(FirstLine(out + "/test_behavior_policy.csv"), "a0,a1,a2,a3");

  auto items = ReadItemsCsv(out + "/items.csv");
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_THAT(items->ids, ElementsAre(0, 1, 2, 3));
  auto log = ReadLogsCsv(out + "/logs.csv", *items);  // also validates actions and pscores
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->size(), 2000);
  int64_t dim = 0;
  auto contexts = ReadContextsCsv(out + "/test_contexts.csv", &dim);
  ASSERT_TRUE(contexts.ok()) << contexts.status();
  EXPECT_EQ(dim, 3);
  EXPECT_EQ(contexts->size(), 50u * 3u);
  auto q = ReadMatrixCsv(out + "/test_expected_reward.csv", "a");
  auto pi = ReadMatrixCsv(out + "/test_behavior_policy.csv", "a");
  ASSERT_TRUE(q.ok() && pi.ok()) << q.status() << pi.status();
  EXPECT_EQ(q->rows, 50);
  EXPECT_EQ(pi->rows, 50);
  for (int64_t i = 0; i < pi->rows; ++i) {
    double sum = 0;
    for (int64_t a = 0; a < pi->cols; ++a) {
      sum += pi->at(i, a);
      EXPECT_GE(q->at(i, a), 0.0);
      EXPECT_LE(q->at(i, a), 1.0);
    }
    EXPECT_NEAR(sum, 1.0, 1e-9) << "row " << i;
  }

  const std::string summary = ReadText(out + "/summary.json");
  for (const char* prefix : {"", "test_"}) {
    SCOPED_TRACE(prefix);
    auto behavior = JsonNumber(summary, std::string(prefix) + "behavior_value");
    auto optimal = JsonNumber(summary, std::string(prefix) + "optimal_value");
    auto uniform = JsonNumber(summary, std::string(prefix) + "uniform_value");
    ASSERT_TRUE(behavior && optimal && uniform) << summary;
    for (double v : {*behavior, *optimal, *uniform}) {
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
    }
    EXPECT_GE(*optimal, *behavior);
    EXPECT_GE(*optimal, *uniform);
    // beta = 2 on q leans toward good actions, so the logger beats uniform.
    EXPECT_GT(*behavior, *uniform);
  }
  EXPECT_EQ(JsonNumber(summary, "n_actions"), 4.0);
  EXPECT_EQ(JsonNumber(summary, "seed"), 7.0);
  EXPECT_THAT(summary, HasSubstr("\"behavior\": \"expected\""));
  EXPECT_THAT(summary, HasSubstr("\"action_context\": \"normal\""));

  // reward_rate is the mean logged reward, and the logged rewards are draws whose expectation is
  // the behaviour value of those rounds: each r_i ~ Bernoulli(q(x_i, a_i)) with a_i ~ pi_b, so
  // sd(mean) <= sqrt(0.25 / 2000) = 0.0112; 4 sd = 0.045 fails by chance with p < 1e-4.
  double reward_sum = 0;
  for (float v : log->rewards) reward_sum += v;
  auto rate = JsonNumber(summary, "reward_rate");
  ASSERT_TRUE(rate.has_value());
  EXPECT_NEAR(*rate, reward_sum / 2000.0, 1e-12);
  EXPECT_NEAR(*rate, *JsonNumber(summary, "behavior_value"), 0.045);
}

TEST_F(CliSynthTest, OneHotItemsAreTheIdentityWhetherAskedOrByDefault) {
  const std::string expected = "item,f0,f1,f2\n0,1,0,0\n1,0,1,0\n2,0,0,1\n";
  for (bool flag : {true, false}) {
    const std::string out = root_ + (flag ? "/onehot" : "/default");
    std::vector<std::string> args = {"synth", "--n-actions", "3",  "--dim-context",
                                     "2",     "--rounds",    "20", "--test-rounds",
                                     "5",     "--out",       out};
    if (flag) args.push_back("--one-hot");
    SubprocessResult r = Run(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ReadText(out + "/items.csv"), expected);
    EXPECT_THAT(ReadText(out + "/summary.json"), HasSubstr("\"action_context\": \"one-hot\""));
  }
}

TEST_F(CliSynthTest, SameSeedGivesIdenticalFilesAndAnotherSeedDoesNot) {
  auto synth = [&](const std::string& name, const std::string& seed) {
    SubprocessResult r =
        Run({"synth", "--n-actions", "5", "--dim-context", "2", "--rounds", "50", "--test-rounds",
             "10", "--behavior", "linear", "--seed", seed, "--out", root_ + "/" + name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ReadText(root_ + "/" + name + "/logs.csv") +
           ReadText(root_ + "/" + name + "/test_expected_reward.csv");
  };
  const std::string a = synth("a", "3");
  EXPECT_EQ(a, synth("b", "3"));
  EXPECT_NE(a, synth("c", "4"));
}

TEST_F(CliSynthTest, HelpPrintsFlagsAndExitsZero) {
  SubprocessResult r = Run({"synth", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("--n-actions"));
  EXPECT_THAT(r.out, HasSubstr("--behavior"));
  EXPECT_THAT(r.out, HasSubstr("--overwrite"));
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(Listing(root_).empty());
}

struct BadFlagsCase {
  std::string name;
  std::vector<std::string> extra;  // replaces/extends the valid base arguments
  std::string mention;             // the stderr line must name this
};

class CliSynthBadFlagsTest : public CliSynthTest,
                             public ::testing::WithParamInterface<BadFlagsCase> {};

TEST_P(CliSynthBadFlagsTest, ExitsTwoWithOneLineAndLeavesNoOutput) {
  const BadFlagsCase& c = GetParam();
  std::vector<std::string> args = {"synth", "--dim-context", "2", "--rounds",
                                   "10",    "--test-rounds", "5"};
  args.insert(args.end(), c.extra.begin(), c.extra.end());
  SubprocessResult r = Run(args);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.ErrLineCount(), 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(c.mention));
  EXPECT_TRUE(Listing(root_).empty()) << "something was written into " << root_;
}

INSTANTIATE_TEST_SUITE_P(
    Flags, CliSynthBadFlagsTest,
    ::testing::Values(
        BadFlagsCase{"OneAction", {"--n-actions", "1", "--out", "d"}, "--n-actions=1"},
        BadFlagsCase{"UnknownBehavior",
                     {"--n-actions", "3", "--behavior", "foo", "--out", "d"},
                     "--behavior=foo"},
        BadFlagsCase{
            "UnknownReward", {"--n-actions", "3", "--reward", "bar", "--out", "d"}, "--reward=bar"},
        BadFlagsCase{"MissingOut", {"--n-actions", "3"}, "--out"},
        BadFlagsCase{"OneHotAndDims",
                     {"--n-actions", "3", "--one-hot", "--dim-action-context", "2", "--out", "d"},
                     "--one-hot"},
        BadFlagsCase{
            "NonIntegerRounds", {"--n-actions", "3", "--rounds", "ten", "--out", "d"}, "--rounds"},
        BadFlagsCase{
            "UnknownFlag", {"--n-actions", "3", "--colour", "red", "--out", "d"}, "--colour"},
        // Missing parents are created; a parent that is a file is refused.
        BadFlagsCase{"ParentIsAFile", {"--n-actions", "3", "--out", "/dev/null/d"}, "/dev/null"}),
    [](const ::testing::TestParamInfo<BadFlagsCase>& info) { return info.param.name; });

TEST_F(CliSynthTest, RefusesANonEmptyOutUnlessOverwrite) {
  const std::string out = root_ + "/data";
  auto synth = [&](const std::string& seed, bool overwrite) {
    std::vector<std::string> args = {
        "synth", "--n-actions", "3",  "--dim-context", "2", "--rounds", "30", "--test-rounds",
        "5",     "--seed",      seed, "--out",         out};
    if (overwrite) args.push_back("--overwrite");
    return Run(args);
  };
  ASSERT_EQ(synth("1", false).exit_code, 0);
  const std::string first = ReadText(out + "/logs.csv");

  SubprocessResult refused = synth("2", false);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_EQ(refused.ErrLineCount(), 1) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("--overwrite"));
  EXPECT_EQ(ReadText(out + "/logs.csv"), first);

  SubprocessResult replaced = synth("2", true);
  ASSERT_EQ(replaced.exit_code, 0) << replaced.err;
  EXPECT_NE(ReadText(out + "/logs.csv"), first);
  EXPECT_THAT(Listing(root_), ElementsAre("data"));
}

TEST_F(CliSynthTest, CreatesMissingParentFoldersOfOut) {
  const std::string out = root_ + "/a/b/data";
  SubprocessResult r = Run({"synth", "--n-actions", "3", "--dim-context", "2", "--rounds", "20",
                            "--test-rounds", "5", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Listing(root_ + "/a/b"), ElementsAre("data"));
  EXPECT_FALSE(ReadText(out + "/logs.csv").empty());
  // A file in the way is a usage error naming it, and nothing is created.
  std::ofstream(root_ + "/file") << "x";
  SubprocessResult bad = Run({"synth", "--n-actions", "3", "--dim-context", "2", "--rounds", "20",
                              "--out", root_ + "/file/c/data"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_EQ(bad.ErrLineCount(), 1) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("is not a folder"));
  EXPECT_THAT(Listing(root_), ElementsAre("a", "file"));
}

}  // namespace
}  // namespace optower
