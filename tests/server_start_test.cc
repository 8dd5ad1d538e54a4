// optower-server's front door, through the real binary: --help lists every flag with its default,
// and each error a newcomer can hit on a first start (no catalog, no --dim_context for random
// towers, a missing items file or model folder, a port in use) exits with one line that says what
// to do next.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/paths.h"
#include "tests/testing/serving_fixture.h"
#include "tests/testing/subprocess.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testutil::SubprocessResult;
using testutil::TempDir;

std::string ServerBinary() { return testutil::BinaryDir() + "/server/optower-server"; }

SubprocessResult RunServer(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ServerBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  testutil::SubprocessOptions options;
  options.timeout_seconds = 60;
  options.extra_env = {"OMP_WAIT_POLICY=PASSIVE", "OPTOWER_ADMIN_TOKEN="};
  absl::StatusOr<SubprocessResult> r = testutil::RunSubprocess(argv, options);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : SubprocessResult{};
}

// The flag names defined in server/main.cc (ABSL_FLAG(type, name, ...)).
std::set<std::string> FlagsDefinedInMain() {
  std::ifstream in(testutil::SourceDir() + "/server/main.cc");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::set<std::string> names;
  const std::regex re(R"(ABSL_FLAG\(\s*[^,]+,\s*([a-z0-9_]+)\s*,)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    names.insert((*it)[1]);
  }
  return names;
}

TEST(ServerStartTest, HelpListsEveryFlagWithItsDefault) {
  const std::set<std::string> defined = FlagsDefinedInMain();
  ASSERT_GT(defined.size(), 20u);
  for (const char* help : {"--help", "-h"}) {
    SubprocessResult r = RunServer({help});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("No flags matched")));
    EXPECT_THAT(r.out, HasSubstr("optower-server --config FILE"));
    std::set<std::string> listed;
    for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
      if (!absl::StartsWith(line, "  --")) continue;
      const std::string name(line.substr(4, line.find(' ', 4) - 4));
      listed.insert(name);
      EXPECT_TRUE(absl::StrContains(line, "default") || absl::StrContains(line, "required"))
          << "no default in: " << line;
    }
    EXPECT_EQ(listed, defined) << r.out;
  }
  SubprocessResult r = RunServer({"--help"});
  EXPECT_THAT(r.out, HasSubstr("--port  listen port (default 50051; 0 = any free port)"));
  EXPECT_THAT(r.out, HasSubstr("--disable_trainer  run without the background trainer (default: "
                               "false)"));
  EXPECT_THAT(r.out, HasSubstr("--config  text-format optower.v1.ServerConfig file (flags override "
                               "it) (default: none)"));
}

struct FirstStartCase {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> mentions;  // what the one line must say
};

TEST(ServerStartTest, FirstStartMistakesSayWhatToDoNext) {
  TempDir dir("server_start");
  const std::string items =
      testutil::WriteItems(dir.path(), testutil::RandomCatalog(5, 2, /*seed=*/1));
  const std::string data = "--data_dir=" + dir.File("data");
  const std::vector<FirstStartCase> cases = {
      {"no catalog, no model", {"--port=0", data},
       {"items_path: required", "--items=FILE", "optower synth", "--model=DIR"}},
      {"no model, no dim_context", {"--port=0", data, "--items=" + items},
       {"dim_context=0", "no --model", "--dim_context=N", "context length", "--model=DIR"}},
      {"missing items file", {"--port=0", data, "--dim_context=3", "--items=" + dir.File("no.csv")},
       {dir.File("no.csv"), "no such file", "--items", "item,f0,f1", "optower synth"}},
      {"missing model folder", {"--port=0", data, "--model=" + dir.File("nomodel")},
       {dir.File("nomodel"), "no such folder", "optower train", "--dim_context=N"}},
      {"no data_dir", {"--port=0", "--items=" + items, "--dim_context=3"},
       {"data_dir: required", "--data_dir=DIR"}},
  };
  for (const FirstStartCase& c : cases) {
    SCOPED_TRACE(c.name);
    SubprocessResult r = RunServer(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.ErrLineCount(), 1) << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith("optower-server: "));
    for (const std::string& m : c.mentions) EXPECT_THAT(r.err, HasSubstr(m));
  }
}

TEST(ServerStartTest, PortInUseNamesThePortAndTheWayOut) {
  // Another process's listener on an ephemeral port of 127.0.0.1.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  TempDir dir("server_port");
  const std::string items =
      testutil::WriteItems(dir.path(), testutil::RandomCatalog(5, 2, /*seed=*/1));
  SubprocessResult r = RunServer({"--host=127.0.0.1", absl::StrCat("--port=", port),
                                  "--data_dir=" + dir.File("data"), "--items=" + items,
                                  "--dim_context=3", "--disable_trainer=true"});
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // gRPC logs its own bind error first; ours is the last line.
  std::vector<std::string> lines = absl::StrSplit(r.err, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  const std::string& last = lines.back();
  EXPECT_THAT(last, HasSubstr(absl::StrCat("port ", port, " on 127.0.0.1 is already in use")));
  EXPECT_THAT(last, HasSubstr("--port=0"));
  EXPECT_THAT(last, HasSubstr("another --port=N"));
}

}  // namespace
}  // namespace optower
