#include "cli/flag_parser.h"

#include <gtest/gtest.h>

namespace optower::cli {
namespace {

std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  return out;
}

TEST(FlagParserTest, ParsesAllFormsAndPositionals) {
  std::string out = "x";
  int64_t k = 1;
  double beta = 0;
  bool json = false;
  FlagParser p("t", "d");
  p.AddString("out", &out, "");
  p.AddInt("k", &k, "");
  p.AddDouble("beta", &beta, "");
  p.AddBool("json", &json, "");
  std::vector<std::string> args = {"prog", "--out", "dir", "--k=5", "pos", "--beta", "-3", "--json"};
  auto argv = Argv(args);
  ASSERT_TRUE(p.Parse(argv.size(), argv.data()).ok());
  EXPECT_EQ(out, "dir");
  EXPECT_EQ(k, 5);
  EXPECT_DOUBLE_EQ(beta, -3);
  EXPECT_TRUE(json);
  ASSERT_EQ(p.positional().size(), 1u);
  EXPECT_EQ(p.positional()[0], "pos");
}

TEST(FlagParserTest, RejectsUnknownFlagBadNumberAndMissingRequired) {
  int64_t k = 1;
  {
    FlagParser p("t", "d");
    p.AddInt("k", &k, "");
    std::vector<std::string> args = {"prog", "--kk", "3"};
    auto argv = Argv(args);
    auto s = p.Parse(argv.size(), argv.data());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("--kk"), std::string::npos);
  }
  {
    FlagParser p("t", "d");
    p.AddInt("k", &k, "");
    std::vector<std::string> args = {"prog", "--k", "three"};
    auto argv = Argv(args);
    auto s = p.Parse(argv.size(), argv.data());
    EXPECT_NE(s.message().find("--k=three"), std::string::npos) << s;
  }
  {
    std::string model;
    FlagParser p("t", "d");
    p.AddString("model", &model, "");
    p.Require("model");
    std::vector<std::string> args = {"prog"};
    auto argv = Argv(args);
    auto s = p.Parse(argv.size(), argv.data());
    EXPECT_NE(s.message().find("--model"), std::string::npos) << s;
  }
}

TEST(FlagParserTest, HelpListsFlagsWithDefaults) {
  int64_t k = 7;
  FlagParser p("optower x [flags]", "does x");
  p.AddInt("k", &k, "slate size");
  std::vector<std::string> args = {"prog", "--help"};
  auto argv = Argv(args);
  ASSERT_TRUE(p.Parse(argv.size(), argv.data()).ok());
  EXPECT_TRUE(p.help_requested());
  EXPECT_NE(p.Help().find("--k VALUE"), std::string::npos);
  EXPECT_NE(p.Help().find("default: 7"), std::string::npos);
}

}  // namespace
}  // namespace optower::cli
