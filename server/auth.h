// Bearer-token authentication of gRPC calls (docs/SECURITY.md).
//
// A call authenticates with the metadata entry `authorization: Bearer <token>` (scheme
// case-insensitive, RFC 6750). The admin RPCs require the admin token when one is configured;
// Retrieve/Feedback require the retrieve token when one is configured (the admin token is accepted
// there too: an operator's tools may call everything). The health and reflection services are
// never checked (probes carry no token).
//
// A failed check is UNAUTHENTICATED "missing or invalid bearer token" whatever went wrong, so the
// answer says nothing about the configured token (not its length, not which prefix matched).
// The comparison runs in constant time with respect to the configured token: both are compared as
// zero-padded kMaxBytes buffers with an XOR-accumulate and no early exit, and the lengths are
// folded into the same accumulator; only the presented token's own length (which the caller
// knows) affects the time, through the copy into the buffer.
//
// Thread safety: BearerToken and AuthPolicy are immutable after construction; every const method
// may be called concurrently.
#ifndef OPTOWER_SERVER_AUTH_H_
#define OPTOWER_SERVER_AUTH_H_

#include <array>
#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include <grpcpp/support/string_ref.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace optower::server {

inline constexpr char kUnauthenticatedMessage[] = "missing or invalid bearer token";

class BearerToken {
 public:
  static constexpr size_t kMinBytes = 16;
  static constexpr size_t kMaxBytes = 1024;

  // `token`: kMinBytes..kMaxBytes of printable ASCII without spaces (0x21..0x7e; base64, hex and
  // URL-safe tokens qualify), not the placeholder of deploy/k8s/secret.yaml. InvalidArgument naming
  // `source` (e.g. "admin_token_file=/run/secrets/t" or "OPTOWER_ADMIN_TOKEN") and the rule broken;
  // the message never contains the token.
  static absl::StatusOr<BearerToken> Create(absl::string_view token, const std::string& source);

  // Reads the token from `path`: the whole file with trailing whitespace (the newline that `echo`
  // or `base64` write) removed, then Create. `field` names the setting in messages
  // ("admin_token_file"). NotFound/PermissionDenied/... when the file cannot be read.
  static absl::StatusOr<BearerToken> FromFile(const std::string& path, const std::string& field);

  // Constant-time comparison with `presented` (see the file comment).
  bool Matches(absl::string_view presented) const;

 private:
  BearerToken() = default;
  std::array<unsigned char, kMaxBytes> padded_{};
  size_t size_ = 0;
};

// The token from `file` when it is non-empty, else from `env_value` (the environment variable
// `env_name`'s value, or null when unset or empty), else none. Both set: the file wins (the caller
// may warn). Errors as in BearerToken::FromFile / Create.
absl::StatusOr<std::optional<BearerToken>> LoadBearerToken(const std::string& file,
                                                           const std::string& file_field,
                                                           const char* env_value,
                                                           const std::string& env_name);

// OK when `metadata` has an "authorization" entry "Bearer <token>" that matches `token` (the first
// such entry counts); else UNAUTHENTICATED kUnauthenticatedMessage.
absl::Status CheckBearer(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                         const BearerToken& token);

// Which token each group of RPCs requires.
class AuthPolicy {
 public:
  AuthPolicy() = default;  // nothing required
  AuthPolicy(std::optional<BearerToken> admin, std::optional<BearerToken> retrieve)
      : admin_(std::move(admin)), retrieve_(std::move(retrieve)) {}

  // Admin RPCs (catalog, stats, trainer, models, rollback). OK when no admin token is configured.
  absl::Status CheckAdmin(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const;
  // Retrieve/Feedback. OK when no retrieve token is configured; otherwise the retrieve token or the
  // admin token.
  absl::Status CheckRetrieve(
      const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const;

  bool admin_required() const { return admin_.has_value(); }
  bool retrieve_required() const { return retrieve_.has_value(); }

 private:
  std::optional<BearerToken> admin_;
  std::optional<BearerToken> retrieve_;
};

// True for a host that only the local machine can reach: "localhost", an IPv4 literal in
// 127.0.0.0/8, "::1" or "[::1]". Anything else (0.0.0.0, ::, a name, a routable address) is not.
bool IsLoopbackHost(absl::string_view host);

// The start-up rule for open admin RPCs (docs/SECURITY.md): OK when an admin token is configured,
// the host is loopback, or `insecure_open_admin` is set; otherwise InvalidArgument with one line
// saying what to do (set admin_token_file / OPTOWER_ADMIN_TOKEN, or listen on 127.0.0.1).
absl::Status CheckAdminExposure(absl::string_view host, bool admin_token_configured,
                                bool insecure_open_admin);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_AUTH_H_
