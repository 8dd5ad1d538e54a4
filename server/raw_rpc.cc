#include "server/raw_rpc.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include "absl/strings/str_cat.h"

namespace optower::server {

absl::Status CheckWireSize(size_t bytes, const WireLimit& limit) {
  if (static_cast<int64_t>(bytes) <= limit.max_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("request has ", bytes, " bytes: ", limit.method,
                                                 " accepts at most ", limit.field, "=",
                                                 limit.max_bytes, " (ServerConfig)"));
}

absl::Status AuthenticateAndParse(const absl::Status& auth, const grpc::ByteBuffer& wire,
                                  const WireLimit& limit, google::protobuf::MessageLite* out) {
  if (!auth.ok()) return auth;
  if (absl::Status size = CheckWireSize(wire.Length(), limit); !size.ok()) return size;
  grpc::ByteBuffer copy(wire);  // shares the slices (reference counted), no byte copy
  grpc::ProtoBufferReader reader(&copy);
  if (!reader.status().ok() || !out->ParseFromZeroCopyStream(&reader)) {
    return absl::InvalidArgumentError(
        absl::StrCat("request: not a valid ", out->GetTypeName(), " message"));
  }
  return absl::OkStatus();
}

absl::Status SerializeToWire(const google::protobuf::MessageLite& message, grpc::ByteBuffer* out) {
  bool own_buffer = false;
  const grpc::Status s =
      grpc::GenericSerialize<grpc::ProtoBufferWriter, google::protobuf::MessageLite>(
          message, out, &own_buffer);
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("response: cannot serialize ", message.GetTypeName(),
                                          ": ", s.error_message()));
}

}  // namespace optower::server
