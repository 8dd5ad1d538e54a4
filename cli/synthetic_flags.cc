#include "cli/synthetic_flags.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace optower::cli {

void SyntheticFlags::Register(FlagParser& p) {
  p.AddInt("n-actions", &n_actions, "number of actions (items) N");
  p.AddInt("dim-context", &dim_context, "context dimension D");
  p.AddInt("dim-action-context", &dim_action_context,
           "action-context dimension E: contexts ~ N(0,1) (omit for one-hot)");
  p.AddBool("one-hot", &one_hot, "one-hot action contexts (the default)");
  p.AddDouble("beta", &beta, "inverse temperature of the behaviour policy");
  p.AddString("behavior", &behavior, "expected | linear | polynomial");
  p.AddString("reward", &reward, "logistic | logistic-polynomial | logistic-sparse");
}

absl::StatusOr<SyntheticOptions> SyntheticFlags::ToOptions(const FlagParser& p,
                                                           int64_t seed) const {
  auto bad = [](const std::string& flag, auto value, const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": ", why));
  };
  const bool action_dim_set = p.was_set("dim-action-context");
  if (n_actions < 2) return bad("n-actions", n_actions, "must be >= 2");
  if (dim_context < 1) return bad("dim-context", dim_context, "must be >= 1");
  if (seed < 0) return bad("seed", seed, "must be >= 0");
  if (action_dim_set && one_hot)
    return absl::InvalidArgumentError("--dim-action-context and --one-hot exclude each other");
  if (action_dim_set && dim_action_context < 1)
    return bad("dim-action-context", dim_action_context,
               "must be >= 1 (pass --one-hot, or omit it, for one-hot actions)");
  SyntheticOptions options;
  options.n_actions = n_actions;
  options.dim_context = dim_context;
  options.dim_action_context = action_dim_set ? dim_action_context : 0;
  auto b = ParseBehaviorType(behavior);
  if (!b.ok()) return bad("behavior", behavior, "must be one of expected, linear, polynomial");
  options.behavior = *b;
  auto r = ParseRewardType(reward);
  if (!r.ok())
    return bad("reward", reward, "must be one of logistic, logistic-polynomial, logistic-sparse");
  options.reward_type = *r;
  options.beta = beta;
  options.seed = static_cast<uint64_t>(seed);
  return options;
}

std::string SyntheticFlags::SettingName() const {
  return absl::StrFormat("A%d_%s_%s_b%g%s", n_actions,
                         dim_action_context > 0 ? absl::StrCat("normal", dim_action_context)
                                                : std::string("onehot"),
                         behavior, beta, reward == "logistic" ? "" : "_" + reward);
}

}  // namespace optower::cli
