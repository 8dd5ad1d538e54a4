// Flags shared by `optower train` and `optower experiment`: the learner's hyper-parameters, and
// the progress printer (a bar on a terminal, plain lines otherwise).
#ifndef OPTOWER_CLI_LEARNER_FLAGS_H_
#define OPTOWER_CLI_LEARNER_FLAGS_H_

#include <string>

#include "absl/status/status.h"
#include "cli/flag_parser.h"
#include "core/json_writer.h"
#include "core/policy_learner.h"
#include "core/train_progress.h"

namespace optower::cli {

// Holds flag values until Apply() turns them into PolicyLearnerOptions.
class LearnerFlags {
 public:
  void Register(FlagParser& parser);
  // Validates and fills `options` (objective included).
  absl::Status Apply(PolicyLearnerOptions& options) const;
  // Writes the values as one JSON object (for manifests and experiment summaries).
  void WriteJson(JsonWriter& w) const;

  std::string objective = "dr";
  std::string hidden = "64";
  int64_t embedding_dim = 32;
  std::string activation = "relu";
  bool item_id_embedding = false;
  double temperature = 0.1;
  int64_t epochs = 20;
  int64_t batch_size = 256;
  double learning_rate = 1e-3;
  double l2 = 0.0;
  double weight_clip = 0.0;
  bool self_normalize = false;
  int64_t top_k = 0;
  double validation_fraction = 0.2;
  int64_t patience = 5;
  std::string init = "auto";  // auto | qhat | random
  int64_t qhat_epochs = 30;
  double qhat_learning_rate = 2e-3;
  double qhat_l2 = 1e-5;
  int64_t seed = 0;
  int64_t threads = 0;
};

// Progress printer: on a terminal, one self-overwriting bar line per phase; otherwise one plain line
// per epoch (so logs stay readable). Writes to stderr.
ProgressCallback MakeProgressPrinter(bool quiet);

}  // namespace optower::cli

#endif  // OPTOWER_CLI_LEARNER_FLAGS_H_
