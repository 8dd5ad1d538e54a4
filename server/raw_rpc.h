// The shared first step of the raw (grpc::ByteBuffer) handlers: authenticate, check the request's
// wire size against the RPC's limit, and only then parse (docs/SECURITY.md "Limits").
//
// Why raw: with typed handlers gRPC parses the request before the handler runs, so an
// unauthenticated caller could make the server build a message many times its wire size (a
// RetrieveRequest of millions of empty `categorical` entries costs ~65x its size as C++ objects)
// before the token or any per-field limit is checked. A raw handler receives the bytes (held once,
// at most max_receive_message_bytes, gRPC's transport limit) and decides before any parse.
//
// Order and codes: a failed token check is UNAUTHENTICATED (whatever the size); then a request
// over the limit is INVALID_ARGUMENT "request has N bytes: <Method> accepts at most
// <field>=<limit> (ServerConfig)" (not RESOURCE_EXHAUSTED: that code means "retry later" in this
// API, and a resent oversized request fails the same way); then bytes that are not the request
// message are INVALID_ARGUMENT.
//
// Thread safety: reentrant.
#ifndef OPTOWER_SERVER_RAW_RPC_H_
#define OPTOWER_SERVER_RAW_RPC_H_

#include <cstddef>
#include <cstdint>

#include <google/protobuf/message_lite.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"

namespace optower::server {

// The wire-size limit of one RPC: `field` names the config field in messages.
struct WireLimit {
  const char* method;  // "Retrieve"
  const char* field;   // "max_retrieve_bytes"
  int64_t max_bytes;
};

// InvalidArgument naming the limit when `bytes` > limit.max_bytes.
absl::Status CheckWireSize(size_t bytes, const WireLimit& limit);

// `auth` (the token check's result) first, then the size, then the parse into `out`.
absl::Status AuthenticateAndParse(const absl::Status& auth, const grpc::ByteBuffer& wire,
                                  const WireLimit& limit, google::protobuf::MessageLite* out);

// Serializes a response into `out` (INTERNAL on failure, which protobuf only reports for
// messages over 2 GiB).
absl::Status SerializeToWire(const google::protobuf::MessageLite& message, grpc::ByteBuffer* out);

}  // namespace optower::server

#endif  // OPTOWER_SERVER_RAW_RPC_H_
