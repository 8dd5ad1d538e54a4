#include "core/learning/policy_learner.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

#include "absl/strings/str_format.h"
#include "core/model/log_tensors.h"
#include "core/learning/item_proposal.h"
#include "core/learning/policy_gradient.h"
#include "core/learning/sampled_gradient.h"
#include "core/base/status_macros.h"
#include "core/model/two_tower_net.h"

namespace optower {
namespace {

using Clock = std::chrono::steady_clock;
double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

BanditLog SubsetLog(const BanditLog& log, const torch::Tensor& index) {
  BanditLog out;
  out.dim_context = log.dim_context;
  const int64_t* idx = index.data_ptr<int64_t>();
  const int64_t m = index.size(0);
  out.contexts.reserve(m * log.dim_context);
  for (int64_t j = 0; j < m; ++j) out.AppendFrom(log, idx[j]);
  return out;
}

// Frozen q̂ evaluated through its towers: q̂(x, a) = link(<h(x), k(a)>).
struct FrozenRewardModel {
  torch::Tensor item_t;  // [d, N] (exact path)
  torch::Tensor item;    // [N, d] (sampled path: gathered by candidate row)
  bool sigmoid = true;
  TwoTowerModel::Impl* impl = nullptr;

  torch::Tensor UserEmbed(const torch::Tensor& x) const {
    torch::NoGradGuard ng;
    return impl->net->User(x);
  }
  torch::Tensor FromUser(const torch::Tensor& h) const {  // [B, d] -> [B, N]
    return Link(h.matmul(item_t));
  }
  torch::Tensor Link(const torch::Tensor& score) const {
    return sigmoid ? torch::sigmoid(score) : score;
  }
};

// DR estimate of the policy's value on `val` (q̂ frozen), computed in chunks without autograd:
//   V_DR = 1/n sum_i [ sum_a pi(a|x_i) q̂(x_i,a) + w_i (r_i - q̂(x_i,a_i)) ],
// with pi restricted to the items sample i's draw could pick (slates: ExcludeEarlierItems).
double ValidationDr(TwoTowerModel::Impl& policy, const torch::Tensor& features,
                    const torch::Tensor& id_rows, const LogTensors& val,
                    const torch::Tensor& qhat_user_val, const FrozenRewardModel& qhat) {
  torch::NoGradGuard ng;
  const torch::Tensor v = policy.ItemEmbeddings(features, id_rows);
  double total = 0;
  constexpr int64_t kChunk = 1024;
  for (int64_t s = 0; s < val.size(); s += kChunk) {
    const int64_t e = std::min(val.size(), s + kChunk);
    const torch::Tensor pi = torch::softmax(
        ExcludeEarlierItems(
            policy.net->User(val.x.slice(0, s, e)).matmul(v.t()) / policy.config.temperature,
            val.prefix.defined() ? val.prefix.slice(0, s, e) : val.prefix),
        1);
    const torch::Tensor q = qhat.FromUser(qhat_user_val.slice(0, s, e));
    const torch::Tensor a = val.a.slice(0, s, e).unsqueeze(1);
    const torch::Tensor w = pi.gather(1, a).squeeze(1) / val.p.slice(0, s, e);
    const torch::Tensor term =
        (pi * q).sum(1) + w * (val.r.slice(0, s, e) - q.gather(1, a).squeeze(1));
    total += term.sum().item<double>();
  }
  return total / static_cast<double>(std::max<int64_t>(val.size(), 1));
}


// What the sampled path adds to an epoch: the proposal index over the policy's item embeddings
// (rebuilt after every epoch) and the fixed tail of the validation estimates (the same draws for
// every epoch, so epochs are compared on common random numbers).
struct SampledState {
  SampledGradientOptions options;
  int64_t head = 0;  // min(options.head_items, N)
  std::unique_ptr<ItemProposal> proposal;
  torch::Tensor validation_tail;
  double proposal_seconds = 0;
};

absl::Status RebuildProposal(TwoTowerModel::Impl& pol, const torch::Tensor& features,
                             const torch::Tensor& id_rows, uint64_t seed, SampledState& st) {
  const auto t0 = Clock::now();
  const torch::Tensor v = pol.ItemEmbeddings(features, id_rows);
  ItemProposalOptions po = st.options.proposal;
  po.seed = seed;
  st.proposal.reset();  // free the old index before building the next one
  auto built = ItemProposal::Build(v.data_ptr<float>(), v.size(0), v.size(1), po);
  if (!built.ok()) return built.status();
  st.proposal = std::move(*built);
  st.proposal_seconds += SecondsSince(t0);
  return absl::OkStatus();
}

// The sampled estimates for rows with user embeddings `u` (policy) and `qu` (q̂): the candidate
// logits (log-counts added), the logged actions' logits, and q̂ of both.
struct SampledTerms {
  torch::Tensor cand_logits, logged_logit, qhat_cand, qhat_logged;
};

SampledTerms ComputeSampledTerms(TwoTowerModel::Impl& pol, const torch::Tensor& features,
                                 const torch::Tensor& id_rows, const torch::Tensor& u,
                                 const torch::Tensor& qu, const torch::Tensor& actions,
                                 const torch::Tensor& prefix, const torch::Tensor& tail,
                                 const FrozenRewardModel* q, const SampledState& st) {
  const int64_t b = u.size(0);
  std::vector<int64_t> head_rows;
  const torch::Tensor uq = u.detach().contiguous();
  absl::Status s = st.proposal->TopRows(uq.data_ptr<float>(), b, st.head, &head_rows);
  if (!s.ok()) throw std::runtime_error(std::string(s.message()));
  const CandidateSet c =
      MakeCandidateSet(head_rows, b, st.head, actions, tail, features.size(0), prefix);
  const CandidateEmbeddings e = EmbedCandidates(
      c, actions,
      [&](const torch::Tensor& rows) {
        return pol.net->Item(features.index_select(0, rows), id_rows.index_select(0, rows));
      },
      /*dedup=*/true);
  const double inv_tau = 1.0 / pol.config.temperature;
  SampledTerms t;
  t.cand_logits = CandidateInnerProducts(u, e) * inv_tau + c.log_count;
  t.logged_logit = LoggedInnerProducts(u, e) * inv_tau;
  if (q != nullptr) {
    torch::NoGradGuard ng;
    const CandidateEmbeddings qe = EmbedCandidates(
        c, actions, [&](const torch::Tensor& rows) { return q->item.index_select(0, rows); },
        /*dedup=*/false);
    t.qhat_cand = q->Link(CandidateInnerProducts(qu, qe));
    t.qhat_logged = q->Link(LoggedInnerProducts(qu, qe));
  }
  return t;
}

// ValidationDr with the sampled estimates of pi (and of sum_a pi q̂).
double SampledValidationDr(TwoTowerModel::Impl& policy, const torch::Tensor& features,
                           const torch::Tensor& id_rows, const LogTensors& val,
                           const torch::Tensor& qhat_user_val, const FrozenRewardModel& qhat,
                           const SampledState& st) {
  torch::NoGradGuard ng;
  double total = 0;
  constexpr int64_t kChunk = 1024;
  for (int64_t s = 0; s < val.size(); s += kChunk) {
    const int64_t e = std::min(val.size(), s + kChunk);
    const SampledTerms t = ComputeSampledTerms(
        policy, features, id_rows, policy.net->User(val.x.slice(0, s, e)),
        qhat_user_val.slice(0, s, e), val.a.slice(0, s, e),
        val.prefix.defined() ? val.prefix.slice(0, s, e) : val.prefix, st.validation_tail, &qhat,
        st);
    const torch::Tensor log_z = torch::logsumexp(t.cand_logits, 1);
    const torch::Tensor w = (t.logged_logit - log_z).exp() / val.p.slice(0, s, e);
    const torch::Tensor term = (torch::softmax(t.cand_logits, 1) * t.qhat_cand).sum(1) +
                               w * (val.r.slice(0, s, e) - t.qhat_logged);
    total += term.sum().item<double>();
  }
  return total / static_cast<double>(std::max<int64_t>(val.size(), 1));
}

}  // namespace

absl::Status ValidateLogForLearning(const BanditLog& log, const ItemCatalog& items) {
  constexpr int64_t kMinRows = 10;
  if (log.size() < kMinRows)
    return absl::FailedPreconditionError(absl::StrFormat(
        "too few logged events (%d): at least %d are needed to train", log.size(), kMinRows));
  if (static_cast<int64_t>(log.contexts.size()) != log.size() * log.dim_context ||
      log.rewards.size() != log.actions.size() || log.pscores.size() != log.actions.size())
    return absl::InvalidArgumentError("log columns have inconsistent lengths");
  if (items.size() < 2)
    return absl::FailedPreconditionError(
        absl::StrFormat("catalog has %d items: a policy needs at least 2", items.size()));
  if (log.has_slates()) {
    if (static_cast<int64_t>(log.positions.size()) != log.size() ||
        static_cast<int64_t>(log.prefix_offsets.size()) != log.size() + 1 ||
        log.prefix_offsets.front() != 0 ||
        log.prefix_offsets.back() != static_cast<int64_t>(log.prefix_rows.size()))
      return absl::InvalidArgumentError("log slate columns have inconsistent lengths");
    for (int64_t i = 0; i < log.size(); ++i) {
      const int64_t prefix_len = log.prefix_end(i) - log.prefix_begin(i);
      if (prefix_len < 0 || prefix_len >= items.size())
        return absl::InvalidArgumentError(
            absl::StrFormat("event %d: its slate prefix leaves no item to draw", i));
      for (const int64_t* r = log.prefix_begin(i); r < log.prefix_end(i); ++r) {
        if (*r < 0 || *r >= items.size() || *r == log.actions[i])
          return absl::InvalidArgumentError(absl::StrFormat(
              "event %d: earlier slate item row %d is outside the catalog or the event's own "
              "action",
              i, *r));
      }
    }
  }
  bool any_stochastic = false;
  for (int64_t i = 0; i < log.size(); ++i) {
    if (log.actions[i] < 0 || log.actions[i] >= items.size())
      return absl::InvalidArgumentError(
          absl::StrFormat("action row %d of event %d is outside the catalog", log.actions[i], i));
    if (!(log.pscores[i] > 0.0f && log.pscores[i] <= 1.0f))
      return absl::InvalidArgumentError(
          absl::StrFormat("pscore=%g of event %d: must be in (0, 1]", log.pscores[i], i));
    if (!std::isfinite(log.rewards[i]))
      return absl::InvalidArgumentError(absl::StrFormat("reward of event %d is not finite", i));
    if (log.pscores[i] < 1.0f) any_stochastic = true;
  }
  if (!any_stochastic)
    return absl::FailedPreconditionError(
        "deterministic logging policy: every logged propensity is 1, so no other action was "
        "ever possible and off-policy learning has nothing to compare against");
  bool varied = false;
  for (float r : log.rewards) varied |= (r != log.rewards[0]);
  if (!varied)
    return absl::FailedPreconditionError(absl::StrFormat(
        "every logged reward equals %g: there is no signal to learn from", log.rewards[0]));
  return absl::OkStatus();
}

namespace {

// The policy before any gradient step: the given `init`, q̂'s towers (warm start; always for DM),
// or fresh random towers.
absl::StatusOr<TwoTowerModel> InitialPolicy(const BanditLog& log, const ItemCatalog& items,
                                            const PolicyLearnerOptions& options,
                                            const TwoTowerModel& qhat, bool warm_start) {
  std::optional<TwoTowerModel> policy;
  if (options.init != nullptr) {
    policy = options.init->Clone();
  } else if (warm_start || options.objective == Objective::kDm) {
    policy = qhat.Clone();
    policy->impl().config.temperature = options.temperature;
  } else {
    TwoTowerConfig config =
        MakeTowerConfig(log.dim_context, items, options.hidden, options.embedding_dim,
                        options.activation, options.item_id_embedding, options.temperature);
    config.context_fields = qhat.config().context_fields;
    config.item_fields = qhat.config().item_fields;
    ASSIGN_OR_RETURN(TwoTowerModel fresh, TwoTowerModel::Create(config, items.ids, options.seed));
    policy = std::move(fresh);
  }
  // A policy's "reward_link" is meaningless; keep configs clean.
  policy->impl().config.reward_link = "sigmoid";
  return std::move(*policy);
}

// Fresh random towers: standardise contexts with the train split's statistics, and scale the user
// tower's output layer by tau. Random towers give logits of order 1 before the division by tau, so
// without the scaling a small tau starts from a near-deterministic random policy whose
// pi(a_i|x_i) ~ 0 makes every importance weight, and so every IPS gradient, vanish.
void SoftenRandomInit(TwoTowerModel::Impl& pol, const LogTensors& train) {
  torch::NoGradGuard ng;
  const torch::Tensor dense = train.x.slice(1, 0, pol.config.dim_context);
  pol.net->ctx_mean.copy_(dense.mean(0));
  pol.net->ctx_std.copy_(dense.std(0, /*unbiased=*/false).clamp_min(1e-6));
  auto params = pol.net->user->parameters();
  params[params.size() - 2].mul_(pol.config.temperature);  // last Linear weight
  params[params.size() - 1].mul_(pol.config.temperature);  // and bias
}

// What every epoch of the policy loop reads: the catalog's tensors and the frozen q̂.
struct PolicyLoopInputs {
  torch::Tensor features;         // [N, dim_item]
  torch::Tensor id_rows;          // [N]
  FrozenRewardModel q;
  torch::Tensor qhat_user_train;  // q̂'s user embeddings of the train contexts
  torch::Tensor qhat_user_val;    // and of the validation contexts
};

// One pass over the train split in a random order (minibatch Adam steps); the mean loss.
double RunPolicyEpoch(TwoTowerModel::Impl& pol, const LogTensors& train,
                      const PolicyLoopInputs& in, const PolicyLearnerOptions& options,
                      const SurrogateOptions& so, torch::optim::Adam& opt, torch::Generator& gen,
                      const SampledState* sampled, PolicyTrainMetrics& metrics) {
  const auto t0 = Clock::now();
  pol.net->train();
  const int64_t n = train.size();
  const torch::Tensor perm = torch::randperm(n, gen, torch::kInt64);
  double total = 0;
  int64_t batches = 0;
  for (int64_t s = 0; s < n; s += options.batch_size) {
    const torch::Tensor bi = perm.slice(0, s, std::min(n, s + options.batch_size));
    const LogTensors b = train.Select(bi);
    torch::Tensor qb;
    if (options.objective == Objective::kDr && sampled == nullptr) {
      qb = in.q.FromUser(in.qhat_user_train.index_select(0, bi));
    }
    opt.zero_grad();
    torch::Tensor loss;
    if (sampled != nullptr) {
      const torch::Tensor tail =
          DrawTail(in.features.size(0), sampled->options.tail_items, gen);
      const bool dr = options.objective == Objective::kDr;
      const SampledTerms t = ComputeSampledTerms(
          pol, in.features, in.id_rows, pol.net->User(b.x),
          dr ? in.qhat_user_train.index_select(0, bi) : torch::Tensor(), b.a, b.prefix, tail,
          dr ? &in.q : nullptr, *sampled);
      loss = SurrogateOverCandidates(t.logged_logit, t.cand_logits, b.r, b.p, t.qhat_logged,
                                     t.qhat_cand, so);
    } else {
      const torch::Tensor v = pol.net->Item(in.features, in.id_rows);
      const torch::Tensor logits = ExcludeEarlierItems(
          pol.net->User(b.x).matmul(v.t()) / pol.config.temperature, b.prefix);
      loss = PolicySurrogateLoss(logits, b.a, b.r, b.p, qb, so);
    }
    loss.backward();
    opt.step();
    total += loss.item<double>();
    ++batches;
  }
  pol.net->eval();
  metrics.train_steps += batches;
  metrics.step_seconds += SecondsSince(t0);
  return total / std::max<int64_t>(batches, 1);
}

// The catalog's tensors and the frozen q̂ (its item embeddings as the path needs them: [d, N] for
// the exact products, [N, d] for the sampled gathers).
PolicyLoopInputs MakeLoopInputs(TwoTowerModel::Impl& pol, const ItemCatalog& items,
                                TwoTowerModel& qhat, const LogTensors& train, const LogTensors& val,
                                bool use_sampled) {
  PolicyLoopInputs in;
  in.q.impl = &qhat.impl();
  in.q.sigmoid = qhat.config().reward_link == "sigmoid";
  {
    torch::NoGradGuard ng;
    TwoTowerModel::Impl& q = qhat.impl();
    const torch::Tensor q_item = q.ItemEmbeddings(items);
    if (use_sampled) {
      in.q.item = q_item.contiguous();
    } else {
      in.q.item_t = q_item.t().contiguous();
    }
    in.qhat_user_train = in.q.UserEmbed(train.x);
    in.qhat_user_val = in.q.UserEmbed(val.x);
  }
  in.features = pol.ItemFeatures(items);
  in.id_rows = pol.ItemIdRows(items);
  return in;
}

// The sampled path's state before the first epoch: the validation tail (fixed for the whole run)
// and the first proposal index.
void StartSampled(TwoTowerModel::Impl& pol, const PolicyLoopInputs& in, int64_t n_items,
                  const PolicyLearnerOptions& options, SampledState& st) {
  st.options = options.sampled;
  st.head = std::min<int64_t>(options.sampled.head_items, n_items);
  torch::Generator val_gen = at::detail::createCPUGenerator(options.seed + 5);
  st.validation_tail = DrawTail(n_items, options.sampled.tail_items, val_gen);
  absl::Status s = RebuildProposal(pol, in.features, in.id_rows, options.seed, st);
  if (!s.ok()) throw std::runtime_error(std::string(s.message()));
}

// The policy-gradient loop with model selection: after every epoch the validation DR estimate;
// the best epoch's weights (or the initial ones) are kept; stops after `patience` epochs without
// improvement. DM takes no step. Throws torch errors (the caller wraps it in TorchStatus).
void OptimisePolicy(TwoTowerModel::Impl& pol, const BanditLog& log, const ItemCatalog& items,
                    const torch::Tensor& train_idx, const torch::Tensor& val_idx,
                    TwoTowerModel& qhat, const PolicyLearnerOptions& options, bool fresh_init,
                    const ProgressCallback& progress, PolicyTrainMetrics& metrics) {
  LogTensors all = MakeLogTensors(log, pol);
  LogTensors train = all.Select(train_idx);
  LogTensors val = all.Select(val_idx);
  if (fresh_init) SoftenRandomInit(pol, train);
  const bool use_sampled = options.sampled.UseSampled(items.size());
  metrics.gradient = use_sampled ? "sampled" : "exact";
  const PolicyLoopInputs in = MakeLoopInputs(pol, items, qhat, train, val, use_sampled);
  pol.net->eval();

  SampledState st;
  torch::Generator gen = at::detail::createCPUGenerator(options.seed + 3);
  if (use_sampled) StartSampled(pol, in, items.size(), options, st);
  auto validate = [&]() {
    return use_sampled
               ? SampledValidationDr(pol, in.features, in.id_rows, val, in.qhat_user_val, in.q, st)
               : ValidationDr(pol, in.features, in.id_rows, val, in.qhat_user_val, in.q);
  };

  // Mean observed reward on the validation split = on-policy value of the logger.
  metrics.logging_policy_value = val.size() > 0 ? val.r.mean().item<double>() : 0.0;
  double best = val.size() > 0 ? validate() : -std::numeric_limits<double>::infinity();
  metrics.validation_dr_initial = best;
  metrics.validation_dr_best = best;
  std::stringstream best_state;
  torch::save(pol.net, best_state);
  metrics.proposal_seconds = st.proposal_seconds;
  if (options.objective == Objective::kDm) return;

  SurrogateOptions so;
  so.objective = options.objective;
  so.weight_clip = options.weight_clip;
  so.self_normalize = options.self_normalize;
  so.top_k = options.top_k;
  torch::optim::Adam opt(pol.net->parameters(),
                         torch::optim::AdamOptions(options.learning_rate).weight_decay(options.l2));
  int since_best = 0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    EpochRecord rec;
    rec.epoch = epoch;
    rec.train_loss =
        RunPolicyEpoch(pol, train, in, options, so, opt, gen, use_sampled ? &st : nullptr, metrics);
    if (use_sampled) {  // the next epoch's proposal, and this epoch's validation candidates
      absl::Status s = RebuildProposal(pol, in.features, in.id_rows, options.seed + epoch, st);
      if (!s.ok()) throw std::runtime_error(std::string(s.message()));
      metrics.proposal_seconds = st.proposal_seconds;
    }
    rec.validation_dr = val.size() > 0 ? validate() : -rec.train_loss;
    metrics.history.push_back(rec);
    metrics.epochs_run = epoch;
    const bool improved = rec.validation_dr > best;
    if (improved) {
      best = rec.validation_dr;
      metrics.best_epoch = epoch;
      metrics.validation_dr_best = best;
      best_state.str("");
      torch::save(pol.net, best_state);
      since_best = 0;
    } else {
      ++since_best;
    }
    if (progress)
      progress({"policy", epoch, options.epochs, rec.train_loss, rec.validation_dr, improved});
    if (since_best >= options.patience) break;
  }
  torch::load(pol.net, best_state);
  pol.net->eval();
}

}  // namespace

absl::StatusOr<PolicyTrainResult> TrainPolicy(const BanditLog& log, const ItemCatalog& items,
                                              const PolicyLearnerOptions& options,
                                              const ProgressCallback& progress) {
  RETURN_IF_ERROR(ValidateLogForLearning(log, items));
  if (options.epochs < 0 || options.batch_size < 1 || !(options.learning_rate > 0) ||
      !(options.temperature > 0))
    return absl::InvalidArgumentError(absl::StrFormat(
        "epochs=%d batch_size=%d learning_rate=%g temperature=%g: epochs >= 0, the others > 0",
        options.epochs, options.batch_size, options.learning_rate, options.temperature));
  if (options.init != nullptr) RETURN_IF_ERROR(CheckCatalogSchema(options.init->config(), items));
  if (options.init != nullptr && (options.init->config().dim_context != log.dim_context ||
                                  options.init->config().dim_item != items.dim_features))
    return absl::InvalidArgumentError(absl::StrFormat(
        "init model takes %d context / %d item features but the data has %d / %d",
        options.init->config().dim_context, options.init->config().dim_item, log.dim_context,
        items.dim_features));
  const auto t_start = Clock::now();
  PolicyTrainMetrics metrics;
  metrics.objective = ObjectiveName(options.objective);
  metrics.n_items = items.size();
  metrics.threads = ConfigureTorchForTraining(options.threads);

  torch::Tensor train_idx, val_idx;
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        std::tie(train_idx, val_idx) =
            SplitTrainValidation(log.size(), options.validation_fraction, options.seed);
      },
      "splitting the log"));
  const BanditLog train_log = SubsetLog(log, train_idx);
  metrics.n_train = train_log.size();
  metrics.n_validation = val_idx.size(0);

  // q̂ on the train split only, so that the validation DR estimates stay honest.
  RewardModelOptions rm = options.reward_model;
  if (options.init != nullptr) {
    rm.context_fields = options.init->config().context_fields;
    rm.item_fields = options.init->config().item_fields;
  } else {
    rm.context_fields = DeriveCategoricalFields(log.context_categorical, options.context_fields);
    rm.item_fields = DeriveCategoricalFields(items.categorical, options.item_fields);
  }
  rm.seed = options.seed * 7919 + 17;
  rm.threads = options.threads;
  ASSIGN_OR_RETURN(TwoTowerModel qhat, FitRewardModel(train_log, items, rm, progress));
  metrics.reward_model_seconds = SecondsSince(t_start);

  const bool warm_start = options.warm_start.value_or(options.objective != Objective::kIpw);
  ASSIGN_OR_RETURN(TwoTowerModel policy, InitialPolicy(log, items, options, qhat, warm_start));
  const bool fresh_init =
      options.init == nullptr && !warm_start && options.objective != Objective::kDm;
  const auto t_policy = Clock::now();
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        OptimisePolicy(policy.impl(), log, items, train_idx, val_idx, qhat, options, fresh_init,
                       progress, metrics);
      },
      "training the policy"));
  metrics.policy_seconds = SecondsSince(t_policy);
  metrics.total_seconds = SecondsSince(t_start);
  return PolicyTrainResult{std::move(policy), std::move(qhat), std::move(metrics)};
}

}  // namespace optower
