// Fuzzes the RetrieveRequest path up to core: any bytes parsed as a v1::RetrieveRequest (the wire
// format a client sends), then FromProto (server/proto_convert.h). Property: the core request
// carries exactly what the message held (no field lost, truncated or reordered).
#include <cstdint>

#include "fuzz/fuzz_file.h"
#include "server/proto_convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  optower::v1::RetrieveRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const optower::RetrieveRequest r = optower::server::FromProto(request);
  using optower::fuzz::Check;
  Check(r.request_id == request.request_id(), "request_id copied");
  Check(r.k == request.k(), "k copied");
  Check(r.context.size() == static_cast<size_t>(request.context().dense_size()), "dense copied");
  Check(r.categorical.size() == static_cast<size_t>(request.context().categorical_size()),
        "categorical copied");
  for (size_t i = 0; i < r.categorical.size(); ++i) {
    const optower::v1::CategoricalFeature& f = request.context().categorical(static_cast<int>(i));
    Check(r.categorical[i].name == f.name(), "categorical name copied");
    Check(r.categorical[i].ids.size() == static_cast<size_t>(f.ids_size()), "categorical ids copied");
  }
  Check(r.exclude.size() == static_cast<size_t>(request.exclude_item_ids_size()), "exclude copied");
  Check(r.seed.has_value() == request.has_seed(), "seed presence copied");
  return 0;
}
