// Learning objectives of the policy learner (DESIGN §3).
#ifndef OPTOWER_CORE_LEARNING_OBJECTIVE_H_
#define OPTOWER_CORE_LEARNING_OBJECTIVE_H_

#include <string>

#include "absl/status/statusor.h"

namespace optower {

enum class Objective {
  kDr,   // doubly robust policy gradient (q̂ baseline + importance-weighted correction)
  kIpw,  // inverse propensity (IPS) policy gradient
  kDm,   // direct method: act by softmax(q̂ logits / tau); a comparison row
};

absl::StatusOr<Objective> ParseObjective(const std::string& name);  // dr | ipw | dm
std::string ObjectiveName(Objective objective);

}  // namespace optower

#endif  // OPTOWER_CORE_LEARNING_OBJECTIVE_H_
