#include "server/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/setting_file.h"

namespace optower::server {
namespace {

// The placeholder shipped in deploy/k8s/secret.yaml: refuse it so a forgotten replacement fails the
// start instead of guarding the admin RPCs with a published token.
constexpr absl::string_view kPlaceholderPrefix = "REPLACE-ME";

absl::string_view StripTrailingWhitespace(absl::string_view s) {
  while (!s.empty() && absl::ascii_isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

absl::StatusOr<BearerToken> BearerToken::Create(absl::string_view token,
                                                const std::string& source) {
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": the token is empty"));
  }
  if (token.size() < kMinBytes || token.size() > kMaxBytes) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": the token has ", token.size(),
                                                   " bytes: must have ", kMinBytes, " to ",
                                                   kMaxBytes));
  }
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": the token has a space, a line break or a non-ASCII byte at offset ", i,
          ": must be one line of printable ASCII without spaces"));
    }
  }
  if (absl::StartsWith(token, kPlaceholderPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": the token is the placeholder of deploy/k8s/secret.yaml: replace it"));
  }
  BearerToken t;
  std::copy(token.begin(), token.end(), t.padded_.begin());
  t.size_ = token.size();
  return t;
}

absl::StatusOr<BearerToken> BearerToken::FromFile(const std::string& path,
                                                  const std::string& field) {
  absl::StatusOr<std::string> text = ReadSettingFile(path, field);
  if (!text.ok()) return text.status();
  absl::StatusOr<BearerToken> token =
      Create(StripTrailingWhitespace(*text), absl::StrCat(field, "=", path));
  std::fill(text->begin(), text->end(), '\0');  // do not leave a copy in freed memory
  return token;
}

bool BearerToken::Matches(absl::string_view presented) const {
  std::array<unsigned char, kMaxBytes> buf{};
  const size_t n = std::min(presented.size(), kMaxBytes);
  std::memcpy(buf.data(), presented.data(), n);
  // XOR-accumulate over the whole fixed-size buffer: no early exit, and the time does not depend
  // on the configured token's length or content.
  unsigned int diff = 0;
  for (size_t i = 0; i < kMaxBytes; ++i) diff |= static_cast<unsigned int>(buf[i] ^ padded_[i]);
  const size_t length_diff = presented.size() ^ size_;
  diff |= static_cast<unsigned int>(length_diff) | static_cast<unsigned int>(length_diff >> 32);
  std::fill(buf.begin(), buf.end(), 0);
  return diff == 0;
}

absl::StatusOr<std::optional<BearerToken>> LoadBearerToken(const std::string& file,
                                                           const std::string& file_field,
                                                           const char* env_value,
                                                           const std::string& env_name) {
  if (!file.empty()) {
    absl::StatusOr<BearerToken> token = BearerToken::FromFile(file, file_field);
    if (!token.ok()) return token.status();
    return std::optional<BearerToken>(*std::move(token));
  }
  if (env_value != nullptr && env_value[0] != '\0') {
    absl::StatusOr<BearerToken> token =
        BearerToken::Create(StripTrailingWhitespace(env_value), env_name);
    if (!token.ok()) return token.status();
    return std::optional<BearerToken>(*std::move(token));
  }
  return std::optional<BearerToken>();
}

absl::Status CheckBearer(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                         const BearerToken& token) {
  const absl::Status denied = absl::UnauthenticatedError(kUnauthenticatedMessage);
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) return denied;
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme) ||
      value[kScheme.size()] != ' ') {
    return denied;
  }
  value.remove_prefix(kScheme.size());
  value = absl::StripAsciiWhitespace(value);
  return token.Matches(value) ? absl::OkStatus() : denied;
}

absl::Status AuthPolicy::CheckAdmin(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const {
  if (!admin_.has_value()) return absl::OkStatus();
  return CheckBearer(metadata, *admin_);
}

absl::Status AuthPolicy::CheckRetrieve(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const {
  if (!retrieve_.has_value()) return absl::OkStatus();
  // Both comparisons always run, so the time does not tell which token matched.
  const bool retrieve_ok = CheckBearer(metadata, *retrieve_).ok();
  const bool admin_ok = admin_.has_value() && CheckBearer(metadata, *admin_).ok();
  return retrieve_ok || admin_ok ? absl::OkStatus()
                                 : absl::UnauthenticatedError(kUnauthenticatedMessage);
}

bool IsLoopbackHost(absl::string_view host) {
  const std::string h = absl::AsciiStrToLower(host);
  if (h == "localhost" || h == "::1" || h == "[::1]") return true;
  in_addr v4{};
  return ::inet_pton(AF_INET, h.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

absl::Status CheckAdminExposure(absl::string_view host, bool admin_token_configured,
                                bool insecure_open_admin) {
  if (admin_token_configured || insecure_open_admin || IsLoopbackHost(host)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "host=", host,
      " is not a loopback address and no admin token is configured, so anyone who reaches the "
      "port could retrain, roll back and change the catalog: set admin_token_file (or "
      "OPTOWER_ADMIN_TOKEN), or listen on 127.0.0.1 (--insecure_open_admin starts anyway; "
      "docs/SECURITY.md)"));
}

}  // namespace optower::server
