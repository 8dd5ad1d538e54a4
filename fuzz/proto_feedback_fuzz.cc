// Fuzzes the FeedbackRequest path up to core: any bytes parsed as a v1::FeedbackRequest, then
// FromProto (server/proto_convert.h). Property: one core event per message event, fields copied.
#include <cstdint>
#include <cstring>

#include "fuzz/fuzz_file.h"
#include "server/proto_convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  optower::v1::FeedbackRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const std::vector<optower::FeedbackEvent> events = optower::server::FromProto(request);
  using optower::fuzz::Check;
  Check(events.size() == static_cast<size_t>(request.events_size()), "one event per event");
  for (size_t i = 0; i < events.size(); ++i) {
    const optower::v1::FeedbackEvent& e = request.events(static_cast<int>(i));
    Check(events[i].request_id == e.request_id(), "request_id copied");
    Check(events[i].item_id == e.item_id(), "item_id copied");
    // Compare bits: a NaN reward must arrive as the same NaN (core rejects it, not the copy).
    const auto reward = e.reward();
    Check(std::memcmp(&events[i].reward, &reward, sizeof(reward)) == 0, "reward copied bit for bit");
  }
  return 0;
}
