// Flags shared by `optower train` and `optower experiment`: the learner's hyper-parameters, and
// the progress printer (a bar on a terminal, plain lines otherwise).
#ifndef OPTOWER_CLI_LEARNER_FLAGS_H_
#define OPTOWER_CLI_LEARNER_FLAGS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "cli/flag_parser.h"
#include "core/base/json_writer.h"
#include "core/learning/objective.h"
#include "core/learning/policy_learner.h"
#include "core/base/train_progress.h"

namespace optower::cli {

// Holds flag values until Apply() turns them into PolicyLearnerOptions.
class LearnerFlags {
 public:
  void Register(FlagParser& parser);
  // Validates and fills `options` (objective included).
  absl::Status Apply(PolicyLearnerOptions& options) const;
  // Writes the values as one JSON object (for manifests and experiment summaries).
  void WriteJson(JsonWriter& w) const;

  // Defaults: the core's (PolicyLearnerOptions, RewardModelOptions), except qhat_learning_rate.
  std::string objective = ObjectiveName(Defaults().objective);
  std::string hidden = absl::StrJoin(Defaults().hidden, ",");
  int64_t embedding_dim = Defaults().embedding_dim;
  std::string activation = Defaults().activation;
  bool item_id_embedding = Defaults().item_id_embedding;
  // Comma-separated name[:buckets[:width[:max_ids]]] (core/base/categorical.h); columns of the data
  // not listed get a schema derived from the data.
  std::string context_fields;
  std::string item_fields;
  double temperature = Defaults().temperature;
  double min_train_temperature = Defaults().min_train_temperature;
  int64_t epochs = Defaults().epochs;
  int64_t batch_size = Defaults().batch_size;
  double learning_rate = Defaults().learning_rate;
  double l2 = Defaults().l2;
  double weight_clip = Defaults().weight_clip;
  double selection_z = Defaults().selection_z;
  bool self_normalize = Defaults().self_normalize;
  int64_t top_k = Defaults().top_k;
  std::string gradient = GradientModeName(Defaults().sampled.mode);
  int64_t sampled_auto_min_items = Defaults().sampled.auto_min_items;
  int64_t sampled_head = Defaults().sampled.head_items;
  int64_t sampled_tail = Defaults().sampled.tail_items;
  double validation_fraction = Defaults().validation_fraction;
  int64_t patience = Defaults().patience;
  std::string init = "auto";  // auto | qhat | random (auto = PolicyLearnerOptions::warm_start unset)
  int64_t qhat_epochs = Defaults().reward_model.epochs;
  // The CLI fits the linear q̂ alternative (QhatSearch::linear_alternative) by default.
  bool qhat_linear_alternative = true;
  // QhatSearch::context_degrees / l2_per_row, comma-separated ('' = the fixed values). The CLI
  // tries feature crosses up to degree 3 (kept by held-out loss) and puts a prior of weight 10/n on
  // q̂'s weights (docs/LEARNING.md "Choosing q̂").
  std::string qhat_context_degrees = "1,2,3";
  std::string qhat_l2_per_row = "10";
  // The CLI's q̂ learning rate is lower than RewardModelOptions' 5e-3 (kept as it was).
  double qhat_learning_rate = kQhatLearningRate;
  double qhat_l2 = Defaults().reward_model.l2;
  int64_t seed = static_cast<int64_t>(Defaults().seed);
  int64_t threads = Defaults().threads;

  static constexpr double kQhatLearningRate = 2e-3;

 private:
  static const PolicyLearnerOptions& Defaults() {
    static const PolicyLearnerOptions* defaults = new PolicyLearnerOptions();
    return *defaults;
  }
};

// Progress printer: on a terminal, one self-overwriting bar line per phase; otherwise one plain line
// per epoch (so logs stay readable). Writes to stderr.
ProgressCallback MakeProgressPrinter(bool quiet);

}  // namespace optower::cli

#endif  // OPTOWER_CLI_LEARNER_FLAGS_H_
