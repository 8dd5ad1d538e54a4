// Security (docs/SECURITY.md): bearer tokens (server/auth.h) — unit checks and every RPC of a real
// in-process OptowerServer (127.0.0.1, ephemeral port) without / with a wrong / with the right
// token — and TLS (server/tls.h, client/tls_credentials.h) with a CA made at test time by the
// `openssl` CLI: a TLS client succeeds, a plaintext one is refused, and the client-certificate
// check.
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/string_ref.h>

#include "absl/strings/str_cat.h"
#include "client/optower_client.h"
#include "client/tls_credentials.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth.h"
#include "server/optower_server.h"
#include "server/tls.h"
#include "tests/testing/serving_fixture.h"
#include "tests/testing/subprocess.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using client::CallOptions;
using client::OptowerClient;
using server::OptowerServer;

// ---- BearerToken / CheckBearer / AuthPolicy (no server) ----

using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

constexpr char kAdminToken[] = "admin-0123456789abcdef-token";
constexpr char kRetrieveToken[] = "retrieve-0123456789abcdef-token";

server::BearerToken Token(const std::string& text) {
  absl::StatusOr<server::BearerToken> t = server::BearerToken::Create(text, "test");
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

TEST(BearerTokenTest, MatchesOnlyTheExactToken) {
  const server::BearerToken token = Token(kAdminToken);
  EXPECT_TRUE(token.Matches(kAdminToken));
  EXPECT_FALSE(token.Matches(""));
  EXPECT_FALSE(token.Matches("admin-0123456789abcdef-toke"));    // prefix
  EXPECT_FALSE(token.Matches("admin-0123456789abcdef-tokenX"));  // longer
  EXPECT_FALSE(token.Matches("Admin-0123456789abcdef-token"));   // one byte differs
  EXPECT_FALSE(token.Matches(std::string("admin-0123456789abcdef-token\0", 29)));
  EXPECT_FALSE(token.Matches(std::string(5000, 'a')));  // longer than kMaxBytes
}

TEST(BearerTokenTest, RejectsWeakOrMalformedTokensWithoutEchoingThem) {
  struct Case {
    std::string token;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", "src: the token is empty"},
      {"short-token", "src: the token has 11 bytes: must have 16 to 1024"},
      {std::string(1025, 'x'), "src: the token has 1025 bytes: must have 16 to 1024"},
      {"has a space 0123456789", "offset 3: must be one line of printable ASCII without spaces"},
      {"line\nbreak0123456789ab", "offset 4"},
      {"REPLACE-ME-with-a-long-random-token", "placeholder of deploy/k8s/secret.yaml"},
  };
  for (const Case& c : cases) {
    const absl::StatusOr<server::BearerToken> t = server::BearerToken::Create(c.token, "src");
    ASSERT_FALSE(t.ok()) << c.token;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.expected));
    if (!c.token.empty()) {
      EXPECT_THAT(std::string(t.status().message()), Not(HasSubstr(c.token)));
    }
  }
}

TEST(BearerTokenTest, FileIsTrimmedOfTrailingWhitespace) {
  testutil::TempDir dir("auth");
  const std::string path = dir.File("token");
  {
    std::ofstream(path) << kAdminToken << "\r\n\n";
  }
  absl::StatusOr<server::BearerToken> t = server::BearerToken::FromFile(path, "admin_token_file");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->Matches(kAdminToken));

  const absl::StatusOr<server::BearerToken> missing =
      server::BearerToken::FromFile(dir.File("nope"), "admin_token_file");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("admin_token_file=" + dir.File("nope") + ": cannot read it"));
  {
    std::ofstream(dir.File("empty")) << "\n";
  }
  const absl::StatusOr<server::BearerToken> empty =
      server::BearerToken::FromFile(dir.File("empty"), "admin_token_file");
  EXPECT_THAT(std::string(empty.status().message()),
              HasSubstr("admin_token_file=" + dir.File("empty") + ": the token is empty"));
}

TEST(BearerTokenTest, LoadPrefersTheFileOverTheEnvironment) {
  testutil::TempDir dir("auth");
  {
    std::ofstream(dir.File("token")) << kAdminToken << "\n";
  }
  auto from_file = server::LoadBearerToken(dir.File("token"), "admin_token_file", kRetrieveToken,
                                           "OPTOWER_ADMIN_TOKEN");
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  ASSERT_TRUE(from_file->has_value());
  EXPECT_TRUE((*from_file)->Matches(kAdminToken));
  auto from_env =
      server::LoadBearerToken("", "admin_token_file", kRetrieveToken, "OPTOWER_ADMIN_TOKEN");
  ASSERT_TRUE(from_env.ok() && from_env->has_value());
  EXPECT_TRUE((*from_env)->Matches(kRetrieveToken));
  auto none = server::LoadBearerToken("", "admin_token_file", "", "OPTOWER_ADMIN_TOKEN");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto bad = server::LoadBearerToken("", "admin_token_file", "short", "OPTOWER_ADMIN_TOKEN");
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("OPTOWER_ADMIN_TOKEN: the token"));
}

TEST(CheckBearerTest, NeedsTheBearerSchemeAndTheRightToken) {
  const server::BearerToken token = Token(kAdminToken);
  const std::string right = absl::StrCat("Bearer ", kAdminToken);
  const std::string lower = absl::StrCat("bearer ", kAdminToken);
  const std::string wrong = "Bearer wrong-0123456789abcdef-token";
  const std::string basic = absl::StrCat("Basic ", kAdminToken);
  const std::string bare = kAdminToken;
  auto check = [&](const std::string* value) {
    Metadata md;
    md.emplace("user-agent", "test");
    if (value != nullptr) md.emplace("authorization", *value);
    return server::CheckBearer(md, token);
  };
  EXPECT_TRUE(check(&right).ok());
  EXPECT_TRUE(check(&lower).ok());
  for (const std::string* v : {static_cast<const std::string*>(nullptr), &wrong, &basic, &bare}) {
    const absl::Status s = check(v);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(s.message(), "missing or invalid bearer token");
  }
}

TEST(AuthPolicyTest, RetrieveAcceptsItsOwnTokenOrTheAdminToken) {
  const server::AuthPolicy policy(Token(kAdminToken), Token(kRetrieveToken));
  const std::string admin = absl::StrCat("Bearer ", kAdminToken);
  const std::string retrieve = absl::StrCat("Bearer ", kRetrieveToken);
  Metadata with_admin{{"authorization", admin}};
  Metadata with_retrieve{{"authorization", retrieve}};
  Metadata none;
  EXPECT_TRUE(policy.CheckAdmin(with_admin).ok());
  EXPECT_EQ(policy.CheckAdmin(with_retrieve).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(policy.CheckAdmin(none).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(policy.CheckRetrieve(with_retrieve).ok());
  EXPECT_TRUE(policy.CheckRetrieve(with_admin).ok());
  EXPECT_EQ(policy.CheckRetrieve(none).code(), absl::StatusCode::kUnauthenticated);

  const server::AuthPolicy open;
  EXPECT_TRUE(open.CheckAdmin(none).ok());
  EXPECT_TRUE(open.CheckRetrieve(none).ok());
}

// ---- every RPC of a real server ----

constexpr int kDimContext = 3;
constexpr int kDimItem = 2;
constexpr char kWrongToken[] = "wrong-0123456789abcdef-token";

// One RPC called through the client: returns its status.
struct NamedCall {
  std::string name;
  std::function<absl::Status(const OptowerClient&, const CallOptions&)> call;
};

std::vector<NamedCall> AdminCalls() {
  return {
      {"UpsertItems",
       [](const OptowerClient& c, const CallOptions& o) {
         v1::UpsertItemsRequest r;
         v1::Item* item = r.add_items();
         item->set_item_id(900);
         item->add_features(0.5f);
         item->add_features(-0.5f);
         return c.UpsertItems(r, o).status();
       }},
      {"DeleteItems",
       [](const OptowerClient& c, const CallOptions& o) {
         v1::DeleteItemsRequest r;
         r.add_item_ids(4242);  // not in the catalog: INVALID_ARGUMENT when authenticated
         return c.DeleteItems(r, o).status();
       }},
      {"GetStats",
       [](const OptowerClient& c, const CallOptions& o) { return c.GetStats(o).status(); }},
      {"TriggerRetrain",
       [](const OptowerClient& c, const CallOptions& o) {
         return c.TriggerRetrain(/*force=*/false, o).status();
       }},
      {"WatchTraining",
       [](const OptowerClient& c, const CallOptions& o) {
         return c.WatchTraining("no-such-job", [](const v1::TrainingEvent&) {}, o);
       }},
      {"GetTrainingJob",
       [](const OptowerClient& c, const CallOptions& o) {
         return c.GetTrainingJob("no-such-job", o).status();
       }},
      {"ListTrainingJobs",
       [](const OptowerClient& c, const CallOptions& o) { return c.ListTrainingJobs(o).status(); }},
      {"ListModels",
       [](const OptowerClient& c, const CallOptions& o) { return c.ListModels(o).status(); }},
      {"Rollback",
       [](const OptowerClient& c, const CallOptions& o) { return c.Rollback("999999", o); }},
  };
}

std::vector<NamedCall> RetrieveCalls() {
  return {
      {"Retrieve",
       [](const OptowerClient& c, const CallOptions& o) {
         return c.Retrieve(std::vector<float>(kDimContext, 0.1f), 1, o).status();
       }},
      {"Feedback",
       [](const OptowerClient& c, const CallOptions& o) {
         return c.Feedback("no-such-request", 100, 1.0, o).status();  // UNKNOWN outcome, OK call
       }},
  };
}

CallOptions WithToken(const std::string& token) {
  CallOptions o;
  if (!token.empty()) o.metadata.push_back({"authorization", absl::StrCat("Bearer ", token)});
  return o;
}

class SecurityServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    items_path_ = testutil::WriteItems(dir_.path(), testutil::RandomCatalog(8, kDimItem, 3));
    std::ofstream(dir_.File("admin_token")) << kAdminToken << "\n";
    std::ofstream(dir_.File("retrieve_token")) << kRetrieveToken;
  }

  v1::ServerConfig Config() const {
    v1::ServerConfig c;
    c.set_port(0);
    c.set_data_dir(dir_.File("data"));
    c.set_items_path(items_path_);
    c.set_dim_context(kDimContext);
    c.add_init_hidden(8);
    c.set_init_embedding_dim(4);
    c.set_admin_token_file(dir_.File("admin_token"));
    return c;
  }

  void Start(const v1::ServerConfig& config, OptowerServer::StartOptions options = {}) {
    absl::StatusOr<std::unique_ptr<OptowerServer>> s = OptowerServer::Start(config, options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    client::ClientOptions o;
    o.address = server_->address();
    absl::StatusOr<std::unique_ptr<OptowerClient>> c = OptowerClient::Connect(o);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }

  // Every call in `calls`: each token in `refused` -> UNAUTHENTICATED with the fixed message and
  // no token in it; `accepted` -> anything but UNAUTHENTICATED.
  void ExpectGuarded(const std::vector<NamedCall>& calls, const std::vector<std::string>& refused,
                     const std::string& accepted) {
    for (const NamedCall& c : calls) {
      for (const std::string& token : refused) {
        const absl::Status s = c.call(*client_, WithToken(token));
        EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated)
            << c.name << " with token '" << token << "': " << s;
        EXPECT_EQ(s.message(), "missing or invalid bearer token") << c.name;
        for (const char* secret : {kAdminToken, kRetrieveToken}) {
          EXPECT_THAT(std::string(s.message()), Not(HasSubstr(secret))) << c.name;
        }
      }
      const absl::Status ok = c.call(*client_, WithToken(accepted));
      EXPECT_NE(ok.code(), absl::StatusCode::kUnauthenticated) << c.name << ": " << ok;
    }
  }

  testutil::TempDir dir_{"security_test"};
  std::string items_path_;
  std::unique_ptr<OptowerServer> server_;
  std::unique_ptr<OptowerClient> client_;
};

TEST_F(SecurityServerTest, EveryAdminRpcNeedsTheAdminToken) {
  v1::ServerConfig config = Config();
  config.set_retrieve_token_file(dir_.File("retrieve_token"));
  Start(config);
  ExpectGuarded(AdminCalls(), {"", kWrongToken, kRetrieveToken}, kAdminToken);
  // The normal answers with the right token.
  const CallOptions admin = WithToken(kAdminToken);
  EXPECT_TRUE(client_->GetStats(admin).ok());
  EXPECT_EQ(client_->GetTrainingJob("no-such-job", admin).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Rollback("999999", admin).code(), absl::StatusCode::kNotFound);
}

TEST_F(SecurityServerTest, RetrieveAndFeedbackNeedTheirTokenWhenConfigured) {
  v1::ServerConfig config = Config();
  config.set_retrieve_token_file(dir_.File("retrieve_token"));
  Start(config);
  ExpectGuarded(RetrieveCalls(), {"", kWrongToken}, kRetrieveToken);
  for (const NamedCall& c : RetrieveCalls()) {  // the admin token is accepted too
    EXPECT_TRUE(c.call(*client_, WithToken(kAdminToken)).ok()) << c.name;
  }
}

TEST_F(SecurityServerTest, RetrieveIsOpenWithoutARetrieveToken) {
  Start(Config());
  for (const NamedCall& c : RetrieveCalls()) {
    EXPECT_TRUE(c.call(*client_, CallOptions()).ok()) << c.name;
  }
  EXPECT_EQ(client_->GetStats().status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(SecurityServerTest, HealthNeedsNoToken) {
  Start(Config());
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> health =
      client_->CheckHealth();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(SecurityServerTest, TokensFromTheEnvironment) {
  v1::ServerConfig config = Config();
  config.clear_admin_token_file();
  OptowerServer::StartOptions options;
  options.admin_token_env = kAdminToken;
  options.retrieve_token_env = kRetrieveToken;
  Start(config, options);
  ExpectGuarded({AdminCalls()[2]}, {"", kRetrieveToken}, kAdminToken);
  ExpectGuarded(RetrieveCalls(), {""}, kRetrieveToken);
}

TEST_F(SecurityServerTest, BadTokenConfigurationStopsTheStart) {
  std::ofstream(dir_.File("weak")) << "short\n";
  v1::ServerConfig config = Config();
  config.set_admin_token_file(dir_.File("weak"));
  absl::StatusOr<std::unique_ptr<OptowerServer>> s = OptowerServer::Start(config);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("admin_token_file=" + dir_.File("weak") + ": the token has 5 bytes"));
  EXPECT_THAT(std::string(s.status().message()), Not(HasSubstr("short")));

  config.set_admin_token_file(dir_.File("missing"));
  s = OptowerServer::Start(config);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
}

// ---- TLS ----

// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with the
// openssl CLI in `dir`.
struct TestPki {
  std::string ca, server_cert, server_key, client_cert, client_key;
};

absl::StatusOr<TestPki> MakeTestPki(const testutil::TempDir& dir) {
  const std::string openssl = "/usr/bin/openssl";
  auto run = [&](std::vector<std::string> args) -> absl::Status {
    args.insert(args.begin(), openssl);
    testutil::SubprocessOptions options;
    options.working_dir = dir.path();
    options.timeout_seconds = 60;
    absl::StatusOr<testutil::SubprocessResult> r = testutil::RunSubprocess(args, options);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) return absl::InternalError(absl::StrCat(args[1], ": ", r->err));
    return absl::OkStatus();
  };
  std::ofstream(dir.File("san.cnf")) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  const std::vector<std::vector<std::string>> steps = {
      {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
       "-days", "1", "-subj", "/CN=optower test CA"},
      {"req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
       "-subj", "/CN=localhost"},
      {"x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
       "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.cnf"},
      {"req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
       "-subj", "/CN=optower test client"},
      {"x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
       "-CAcreateserial", "-out", "client.pem", "-days", "1"},
  };
  for (const std::vector<std::string>& step : steps) {
    if (absl::Status s = run(step); !s.ok()) return s;
  }
  return TestPki{dir.File("ca.pem"), dir.File("server.pem"), dir.File("server.key"),
                 dir.File("client.pem"), dir.File("client.key")};
}

client::ClientTlsOptions Tls(const std::string& ca, const std::string& cert = "",
                            const std::string& key = "") {
  client::ClientTlsOptions o;
  o.root_ca_path = ca;
  o.cert_path = cert;
  o.key_path = key;
  return o;
}

class TlsTest : public SecurityServerTest {
 protected:
  void SetUp() override {
    SecurityServerTest::SetUp();
    absl::StatusOr<TestPki> pki = MakeTestPki(pki_dir_);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
  }

  v1::ServerConfig TlsConfig() const {
    v1::ServerConfig c = Config();
    c.clear_admin_token_file();
    c.set_tls_cert(pki_.server_cert);
    c.set_tls_key(pki_.server_key);
    return c;
  }

  // A client of the running server with `tls`; returns the status of one Retrieve.
  absl::Status RetrieveWith(const client::ClientTlsOptions& tls) {
    client::ClientOptions o;
    o.address = server_->address();
    o.default_deadline = absl::Seconds(5);
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
        client::MakeChannelCredentials(tls);
    if (!creds.ok()) return creds.status();
    o.credentials = *creds;
    absl::StatusOr<std::unique_ptr<OptowerClient>> c = OptowerClient::Connect(o);
    if (!c.ok()) return c.status();
    return (*c)->Retrieve(std::vector<float>(kDimContext, 0.1f), 1).status();
  }

  testutil::TempDir pki_dir_{"security_pki"};
  TestPki pki_;
};

TEST_F(TlsTest, TlsClientSucceedsAndPlaintextClientIsRefused) {
  absl::StatusOr<std::unique_ptr<OptowerServer>> s = OptowerServer::Start(TlsConfig());
  ASSERT_TRUE(s.ok()) << s.status();
  server_ = std::move(*s);
  EXPECT_TRUE(RetrieveWith(Tls(pki_.ca)).ok());
  const absl::Status plaintext = RetrieveWith(client::ClientTlsOptions());
  EXPECT_EQ(plaintext.code(), absl::StatusCode::kUnavailable) << plaintext;
  // A TLS client that does not trust the test CA (it uses the system's roots) fails too.
  client::ClientTlsOptions system_roots;
  system_roots.enabled = true;
  EXPECT_EQ(RetrieveWith(system_roots).code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, RequiredClientCertificate) {
  v1::ServerConfig config = TlsConfig();
  config.set_tls_client_ca(pki_.ca);
  config.set_tls_require_client_cert(true);
  absl::StatusOr<std::unique_ptr<OptowerServer>> s = OptowerServer::Start(config);
  ASSERT_TRUE(s.ok()) << s.status();
  server_ = std::move(*s);
  const absl::Status without_cert = RetrieveWith(Tls(pki_.ca));
  EXPECT_EQ(without_cert.code(), absl::StatusCode::kUnavailable) << without_cert;
  EXPECT_TRUE(RetrieveWith(Tls(pki_.ca, pki_.client_cert, pki_.client_key)).ok());
}

TEST_F(TlsTest, InconsistentTlsSettingsNameTheSetting) {
  server::ServerTlsOptions o;
  o.cert_path = pki_.server_cert;
  EXPECT_THAT(std::string(server::MakeServerCredentials(o).status().message()),
              HasSubstr("tls_key: empty while tls_cert="));
  o.key_path = pki_.server_key;
  o.require_client_cert = true;
  EXPECT_THAT(std::string(server::MakeServerCredentials(o).status().message()),
              HasSubstr("tls_require_client_cert=true: needs tls_client_ca"));
  server::ServerTlsOptions missing;
  missing.cert_path = dir_.File("nope.pem");
  missing.key_path = pki_.server_key;
  EXPECT_EQ(server::MakeServerCredentials(missing).status().code(), absl::StatusCode::kNotFound);
  server::ServerTlsOptions not_pem;
  not_pem.cert_path = items_path_;
  not_pem.key_path = pki_.server_key;
  EXPECT_THAT(std::string(server::MakeServerCredentials(not_pem).status().message()),
              HasSubstr("tls_cert=" + items_path_ + ": not a PEM file"));
  EXPECT_THAT(std::string(client::MakeChannelCredentials(Tls("", pki_.client_cert, ""))
                              .status()
                              .message()),
              HasSubstr("--tls-key: empty while --tls-cert="));
}

}  // namespace
}  // namespace optower
