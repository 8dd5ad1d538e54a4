#include "core/learning/policy_learner.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"
#include "core/model/flat_adam.h"
#include "core/model/log_tensors.h"
#include "core/learning/item_proposal.h"
#include "core/learning/policy_gradient.h"
#include "core/learning/policy_selection.h"
#include "core/learning/reward_model_choice.h"
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

// Per-sample DR terms of the policy's value on `val` (q̂ frozen), computed in chunks without
// autograd, the mean of which is the DR estimate:
//   t_i = sum_a pi(a|x_i) q̂(x_i,a) + min(w_i, clip) (r_i - q̂(x_i,a_i))   (clip 0 = none),
// with pi restricted to the items sample i's draw could pick (slates: ExcludeEarlierItems).
std::vector<double> ValidationTerms(TwoTowerModel::Impl& policy, const torch::Tensor& features,
                                    const torch::Tensor& id_rows, const LogTensors& val,
                                    const torch::Tensor& qhat_user_val,
                                    const FrozenRewardModel& qhat, double clip) {
  torch::NoGradGuard ng;
  const torch::Tensor v = policy.ItemEmbeddings(features, id_rows);
  std::vector<double> terms;
  terms.reserve(val.size());
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
    torch::Tensor w = pi.gather(1, a).squeeze(1) / val.p.slice(0, s, e);
    if (clip > 0) w = w.clamp_max(clip);
    const torch::Tensor term =
        ((pi * q).sum(1) + w * (val.r.slice(0, s, e) - q.gather(1, a).squeeze(1)))
            .to(torch::kDouble)
            .contiguous();
    terms.insert(terms.end(), term.data_ptr<double>(), term.data_ptr<double>() + term.size(0));
  }
  return terms;
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

// ValidationTerms with the sampled estimates of pi (and of sum_a pi q̂).
std::vector<double> SampledValidationTerms(TwoTowerModel::Impl& policy,
                                           const torch::Tensor& features,
                                           const torch::Tensor& id_rows, const LogTensors& val,
                                           const torch::Tensor& qhat_user_val,
                                           const FrozenRewardModel& qhat, const SampledState& st,
                                           double clip) {
  torch::NoGradGuard ng;
  std::vector<double> terms;
  terms.reserve(val.size());
  constexpr int64_t kChunk = 1024;
  for (int64_t s = 0; s < val.size(); s += kChunk) {
    const int64_t e = std::min(val.size(), s + kChunk);
    const SampledTerms t = ComputeSampledTerms(
        policy, features, id_rows, policy.net->User(val.x.slice(0, s, e)),
        qhat_user_val.slice(0, s, e), val.a.slice(0, s, e),
        val.prefix.defined() ? val.prefix.slice(0, s, e) : val.prefix, st.validation_tail, &qhat,
        st);
    const torch::Tensor log_z = torch::logsumexp(t.cand_logits, 1);
    torch::Tensor w = (t.logged_logit - log_z).exp() / val.p.slice(0, s, e);
    if (clip > 0) w = w.clamp_max(clip);
    const torch::Tensor term = ((torch::softmax(t.cand_logits, 1) * t.qhat_cand).sum(1) +
                                w * (val.r.slice(0, s, e) - t.qhat_logged))
                                   .to(torch::kDouble)
                                   .contiguous();
    terms.insert(terms.end(), term.data_ptr<double>(), term.data_ptr<double>() + term.size(0));
  }
  return terms;
}

// The DM policy softmax(q̂ logit / tau): q̂'s towers at the policy's temperature.
TwoTowerModel DmPolicy(const TwoTowerModel& qhat, double temperature) {
  TwoTowerModel dm = qhat.Clone();
  dm.impl().config.temperature = temperature;
  dm.impl().config.reward_link = "sigmoid";  // a policy's link is meaningless; keep configs clean
  return dm;
}

// The policy before any gradient step: the given `init`, q̂'s towers (warm start; always for DM),
// or fresh random towers.
absl::StatusOr<TwoTowerModel> InitialPolicy(const BanditLog& log, const ItemCatalog& items,
                                            const PolicyLearnerOptions& options,
                                            const TwoTowerModel& qhat, bool warm_start) {
  std::optional<TwoTowerModel> policy;
  if (options.init != nullptr) {
    policy = options.init->Clone();
  } else if (warm_start || options.objective == Objective::kDm) {
    policy = DmPolicy(qhat, options.temperature);
  } else {
    TwoTowerConfig config =
        MakeTowerConfig(log.dim_context, items, options.hidden, options.embedding_dim,
                        options.activation, options.item_id_embedding, options.temperature);
    config.context_fields = qhat.config().context_fields;
    config.item_fields = qhat.config().item_fields;
    config.context_degree = qhat.config().context_degree;  // the input q̂ was chosen with
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
  pol.net->StandardiseContexts(train.x);
  torch::NoGradGuard ng;
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

// One pass over the train split in a random order (minibatch Adam steps); the mean loss. The rows
// (and q̂'s user embeddings of them) are put in the epoch's order once, so a minibatch is a slice.
double RunPolicyEpoch(TwoTowerModel::Impl& pol, const LogTensors& train,
                      const PolicyLoopInputs& in, const PolicyLearnerOptions& options,
                      const SurrogateOptions& so, FlatAdam& opt, torch::Generator& gen,
                      const SampledState* sampled, PolicyTrainMetrics& metrics) {
  const auto t0 = Clock::now();
  pol.net->train();
  const int64_t n = train.size();
  const torch::Tensor perm = torch::randperm(n, gen, torch::kInt64);
  const LogTensors shuffled = train.Select(perm);
  const bool dr = options.objective == Objective::kDr;
  const torch::Tensor qhat_user = dr ? in.qhat_user_train.index_select(0, perm) : torch::Tensor();
  double total = 0;
  int64_t batches = 0;
  for (int64_t s = 0; s < n; s += options.batch_size) {
    const int64_t e = std::min(n, s + options.batch_size);
    const LogTensors b = shuffled.Slice(s, e);
    const torch::Tensor qu = dr ? qhat_user.slice(0, s, e) : torch::Tensor();
    opt.ZeroGrad();
    torch::Tensor loss;
    if (sampled != nullptr) {
      const torch::Tensor tail =
          DrawTail(in.features.size(0), sampled->options.tail_items, gen);
      const SampledTerms t =
          ComputeSampledTerms(pol, in.features, in.id_rows, pol.net->User(b.x), qu, b.a, b.prefix,
                              tail, dr ? &in.q : nullptr, *sampled);
      loss = SurrogateOverCandidates(t.logged_logit, t.cand_logits, b.r, b.p, t.qhat_logged,
                                     t.qhat_cand, so);
    } else {
      const torch::Tensor v = pol.net->Item(in.features, in.id_rows);
      const torch::Tensor logits = ExcludeEarlierItems(
          pol.net->User(b.x).matmul(v.t()) / pol.config.temperature, b.prefix);
      loss = PolicySurrogateLoss(logits, b.a, b.r, b.p, dr ? in.q.FromUser(qu) : torch::Tensor(),
                                 so);
    }
    loss.backward();
    opt.Step();
    total += *loss.data_ptr<float>();
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

// The validation side of the loop: the split, the clip of its terms, and a candidate's terms on it
// (exact, or sampled with the candidate's own proposal index and the run's fixed tail).
struct Validator {
  const LogTensors* val = nullptr;
  const PolicyLoopInputs* in = nullptr;
  const SampledState* sampled = nullptr;  // null: exact
  double clip = 0;

  std::vector<double> Terms(TwoTowerModel::Impl& cand, const torch::Tensor& features,
                            const torch::Tensor& id_rows, const SampledState* st) const {
    return st != nullptr ? SampledValidationTerms(cand, features, id_rows, *val,
                                                  in->qhat_user_val, in->q, *st, clip)
                         : ValidationTerms(cand, features, id_rows, *val, in->qhat_user_val,
                                           in->q, clip);
  }

  // The DM candidate (softmax(q̂/τ) at the policy's temperature, `dm`), with its own item rows.
  std::vector<double> DmTerms(TwoTowerModel& dm, const ItemCatalog& items, uint64_t seed) const {
    TwoTowerModel::Impl& d = dm.impl();
    d.net->eval();
    const torch::Tensor features = d.ItemFeatures(items);
    const torch::Tensor id_rows = d.ItemIdRows(items);
    if (sampled == nullptr) return Terms(d, features, id_rows, nullptr);
    SampledState own;
    own.options = sampled->options;
    own.head = sampled->head;
    own.validation_tail = sampled->validation_tail;
    absl::Status s = RebuildProposal(d, features, id_rows, seed, own);
    if (!s.ok()) throw std::runtime_error(std::string(s.message()));
    return Terms(d, features, id_rows, &own);
  }
};

// The epochs of the policy-gradient loop. After every epoch the candidate's validation terms are
// offered to `sel` (policy_selection.h: paired lower bound against the initial policy); the
// selected weights are kept in `best_state`. Without a validation split (`sel` empty) the epoch
// with the lowest train loss is kept. Stops after `patience` epochs without a new largest mean.
// Returns the selected epoch (0 = none, or what `sel` held before).
int RunEpochs(TwoTowerModel::Impl& pol, const LogTensors& train, const PolicyLoopInputs& in,
              const PolicyLearnerOptions& options, const Validator& validator, SampledState* st,
              std::optional<CandidateSelection>& sel, StateSnapshot& best_state,
              const ProgressCallback& progress, PolicyTrainMetrics& metrics) {
  SurrogateOptions so;
  so.objective = options.objective;
  so.weight_clip = ResolveWeightClip(options.weight_clip, train.size());
  so.self_normalize = options.self_normalize;
  so.top_k = options.top_k;
  FlatAdam opt(pol.net->parameters(), options.learning_rate, options.l2);
  // Exact path: the towers' weights plus the [B, N] products of the policy and q̂ per row.
  const ScopedIntraOpThreads threads(
      st != nullptr ? 0
                    : MinibatchThreads(options.threads, options.batch_size,
                                       opt.numel() + 2 * in.features.size(0) *
                                                         pol.config.embedding_dim));
  torch::Generator gen = at::detail::createCPUGenerator(options.seed + 3);
  double best_mean = sel ? sel->reference_mean() : -std::numeric_limits<double>::infinity();
  double best_no_val = -std::numeric_limits<double>::infinity();
  int selected = sel ? sel->selected() : 0, since_best = 0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    EpochRecord rec;
    rec.epoch = epoch;
    // DR steps run at a temperature no sharper than min_train_temperature (PolicyLearnerOptions).
    const double serve_tau = pol.config.temperature;
    if (options.objective == Objective::kDr)
      pol.config.temperature = std::max(serve_tau, options.min_train_temperature);
    rec.train_loss = RunPolicyEpoch(pol, train, in, options, so, opt, gen, st, metrics);
    pol.config.temperature = serve_tau;
    if (st != nullptr) {  // the next epoch's proposal, and this epoch's validation candidates
      absl::Status s = RebuildProposal(pol, in.features, in.id_rows, options.seed + epoch, *st);
      if (!s.ok()) throw std::runtime_error(std::string(s.message()));
      metrics.proposal_seconds = st->proposal_seconds;
    }
    bool improved = false;
    if (sel) {
      const std::vector<double> terms = validator.Terms(pol, in.features, in.id_rows, st);
      rec.validation_dr = MeanOfTerms(terms);
      improved = sel->Offer(epoch, terms);
    } else {
      rec.validation_dr = -rec.train_loss;
      improved = rec.validation_dr > best_no_val;
      if (improved) best_no_val = rec.validation_dr;
    }
    metrics.history.push_back(rec);
    metrics.epochs_run = epoch;
    if (improved) {
      selected = epoch;
      metrics.validation_dr_best = sel ? sel->selected_mean() : rec.validation_dr;
      best_state.Capture(*pol.net);
    }
    since_best = rec.validation_dr > best_mean ? 0 : since_best + 1;
    best_mean = std::max(best_mean, rec.validation_dr);
    if (progress)
      progress({"policy", epoch, options.epochs, rec.train_loss, rec.validation_dr, improved});
    if (since_best >= options.patience) break;
  }
  return selected;
}

// The policy-gradient loop with model selection (policy_selection.h): the initial policy is the
// reference; `dm` (the DM policy, when it is not the initial one; may be null) and every epoch are
// candidates. DM takes no step. Returns the selected candidate: 0 = the initial policy, an epoch,
// or kDmCandidate (then `pol` holds the initial weights and the caller takes `dm`). Throws torch
// errors (the caller wraps it in TorchStatus).
int OptimisePolicy(TwoTowerModel::Impl& pol, const BanditLog& log, const ItemCatalog& items,
                   const torch::Tensor& train_idx, const torch::Tensor& val_idx,
                   TwoTowerModel& qhat, TwoTowerModel* dm, const PolicyLearnerOptions& options,
                   bool fresh_init, const ProgressCallback& progress,
                   PolicyTrainMetrics& metrics) {
  LogTensors all = MakeLogTensors(log, pol);
  LogTensors train = all.Select(train_idx);
  LogTensors val = all.Select(val_idx);
  if (fresh_init) SoftenRandomInit(pol, train);
  const bool use_sampled = options.sampled.UseSampled(items.size());
  metrics.gradient = use_sampled ? "sampled" : "exact";
  const PolicyLoopInputs in = MakeLoopInputs(pol, items, qhat, train, val, use_sampled);
  pol.net->eval();

  SampledState st;
  if (use_sampled) StartSampled(pol, in, items.size(), options, st);
  const Validator validator{&val, &in, use_sampled ? &st : nullptr,
                            ResolveWeightClip(options.weight_clip, val.size())};
  // Mean observed reward on the validation split = on-policy value of the logger.
  metrics.logging_policy_value = val.size() > 0 ? val.r.mean().item<double>() : 0.0;
  std::optional<CandidateSelection> sel;
  if (val.size() > 0) {
    sel.emplace(validator.Terms(pol, in.features, in.id_rows, validator.sampled),
                options.selection_z);
  }
  metrics.validation_dr_initial =
      sel ? sel->reference_mean() : -std::numeric_limits<double>::infinity();
  metrics.validation_dr_best = metrics.validation_dr_initial;
  StateSnapshot best_state;
  best_state.Capture(*pol.net);
  metrics.proposal_seconds = st.proposal_seconds;
  if (dm != nullptr && sel && sel->Offer(kDmCandidate, validator.DmTerms(*dm, items, options.seed)))
    metrics.validation_dr_best = sel->selected_mean();
  if (options.objective == Objective::kDm) return sel ? sel->selected() : 0;

  const int selected = RunEpochs(pol, train, in, options, validator, use_sampled ? &st : nullptr,
                                 sel, best_state, progress, metrics);
  best_state.Restore(*pol.net);
  pol.net->eval();
  return selected;
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
  ASSIGN_OR_RETURN(TwoTowerModel qhat,
                   FitQhat(train_log, items, rm, options.qhat_search, progress));
  metrics.reward_model_seconds = SecondsSince(t_start);

  const bool warm_start = options.warm_start.value_or(options.objective != Objective::kIpw);
  ASSIGN_OR_RETURN(TwoTowerModel policy, InitialPolicy(log, items, options, qhat, warm_start));
  const bool fresh_init =
      options.init == nullptr && !warm_start && options.objective != Objective::kDm;
  // DR: the DM policy is always a candidate, so the DR steps can only add to it (by the
  // validation estimate). It is the initial policy already when the towers start from q̂.
  const bool initial_is_dm = options.init == nullptr && warm_start;
  std::optional<TwoTowerModel> dm;
  if (options.objective == Objective::kDr && !initial_is_dm)
    dm = DmPolicy(qhat, policy.config().temperature);
  const auto t_policy = Clock::now();
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        metrics.best_epoch =
            OptimisePolicy(policy.impl(), log, items, train_idx, val_idx, qhat,
                           dm ? &*dm : nullptr, options, fresh_init, progress, metrics);
      },
      "training the policy"));
  if (metrics.best_epoch == kDmCandidate) policy = std::move(*dm);
  metrics.policy_seconds = SecondsSince(t_policy);
  metrics.total_seconds = SecondsSince(t_start);
  return PolicyTrainResult{std::move(policy), std::move(qhat), std::move(metrics)};
}

}  // namespace optower
