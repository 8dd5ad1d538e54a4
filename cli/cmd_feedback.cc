// `optower feedback`: sends one reward for one served item to a running optower-server.
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/online_client.h"
#include "core/base/json_writer.h"
#include "core/base/status_macros.h"

namespace optower::cli {
namespace {

struct FeedbackFlags {
  std::string server;
  ConnectionFlags connection;  // --token, --tls-ca, --tls-cert, --tls-key
  std::string request_id;
  int64_t item = 0;
  double reward = 0;
  double timeout = 10;
  bool json = false;
};

const char* OutcomeName(int outcome) {
  switch (outcome) {
    case v1::FEEDBACK_OUTCOME_ACCEPTED:
      return "accepted";
    case v1::FEEDBACK_OUTCOME_DUPLICATE:
      return "duplicate";
    case v1::FEEDBACK_OUTCOME_UNKNOWN:
      return "unknown";
    default:
      return "unspecified";
  }
}

absl::Status RunFeedback(const FeedbackFlags& f) {
  ASSIGN_OR_RETURN(auto client, ConnectToServer(f.server, f.timeout, f.connection));
  absl::StatusOr<v1::FeedbackResponse> response = client->Feedback(f.request_id, f.item, f.reward);
  if (!response.ok()) return RpcError("Feedback", response.status());
  const char* outcome = response->outcomes_size() > 0 ? OutcomeName(response->outcomes(0)) : "none";
  if (f.json) {
    JsonWriter w(JsonWriter::Options{/*indent=*/0});
    w.BeginObject()
        .Field("request_id", f.request_id)
        .Field("item_id", f.item)
        .Field("reward", f.reward)
        .Field("outcome", outcome)
        .Field("accepted", response->accepted())
        .Field("duplicate", response->duplicate())
        .Field("unknown", response->unknown())
        .EndObject();
    ASSIGN_OR_RETURN(const std::string json, w.Finish());
    std::fputs(json.c_str(), stdout);
    return absl::OkStatus();
  }
  std::printf("feedback %s: request %s item %lld reward %g\n", outcome, f.request_id.c_str(),
              static_cast<long long>(f.item), f.reward);
  return absl::OkStatus();
}

int FeedbackMain(int argc, char** argv) {
  FeedbackFlags f;
  FlagParser parser(
      "optower feedback --server ADDR --request-id ID --item ITEM --reward R [--json]",
      "Records the reward of one served item. The outcome is accepted, duplicate (a reward was\n"
      "already recorded; the first one stays) or unknown (that item was not served in that\n"
      "request; nothing is recorded).");
  parser.AddString("server", &f.server, "server address host:port");
  f.connection.Register(&parser);
  parser.AddString("request-id", &f.request_id, "request id returned by retrieve");
  parser.AddInt("item", &f.item, "served item id");
  parser.AddDouble("reward", &f.reward, "reward (finite)");
  parser.AddDouble("timeout", &f.timeout, "call deadline in seconds");
  parser.AddBool("json", &f.json, "print one JSON object");
  for (const char* required : {"server", "request-id", "item", "reward"}) parser.Require(required);
  if (auto done = ParseCommandLine(parser, argc, argv, 0)) return *done;
  const absl::Status s = RunFeedback(f);
  return s.ok() ? kExitOk : ReportError(s);
}

}  // namespace

OPTOWER_REGISTER_COMMAND(feedback, "feedback", "send the reward of one served item", FeedbackMain);

}  // namespace optower::cli
