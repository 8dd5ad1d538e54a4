#include "core/learning/policy_evaluation.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "core/model/two_tower_net.h"

namespace optower {
namespace {

// The shapes and rows MakeOpeSamples relies on, checked before any work.
absl::Status CheckOpeInputs(const TwoTowerModel& policy, const TwoTowerModel* qhat,
                            const BanditLog& log, const ItemCatalog& items) {
  if (log.dim_context != policy.config().dim_context)
    return absl::InvalidArgumentError(absl::StrFormat(
        "logs have %d context features but the model takes %d", log.dim_context,
        policy.config().dim_context));
  for (const TwoTowerModel* m : {&policy, qhat}) {
    if (m == nullptr) continue;
    RETURN_IF_ERROR(CheckCatalogSchema(m->config(), items));
    // The log's categorical fields against the model's schema (zero rows: nothing is encoded).
    if (!log.context_categorical.empty())
      RETURN_IF_ERROR(
          m->EncodeContexts(log.contexts.data(), 0, log.context_categorical, 0).status());
  }
  const int64_t n = log.size();
  const int64_t N = items.size();
  for (int64_t i = 0; i < n; ++i) {
    if (log.actions[i] < 0 || log.actions[i] >= N)
      return absl::InvalidArgumentError(
          absl::StrFormat("action row %d of event %d is outside the catalog", log.actions[i], i));
    if (log.has_slates()) {
      if (log.prefix_end(i) - log.prefix_begin(i) >= N)
        return absl::InvalidArgumentError(absl::StrFormat(
            "row %d excludes %d of the %d catalog items: nothing is left to draw", i,
            log.prefix_end(i) - log.prefix_begin(i), N));
      for (const int64_t* r = log.prefix_begin(i); r < log.prefix_end(i); ++r) {
        if (*r < 0 || *r >= N)
          return absl::InvalidArgumentError(
              absl::StrFormat("excluded row %d of row %d is outside the catalog", *r, i));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpeSamples> MakeOpeSamples(const TwoTowerModel& policy, const TwoTowerModel* qhat,
                                          const BanditLog& log, const ItemCatalog& items) {
  RETURN_IF_ERROR(CheckOpeInputs(policy, qhat, log, items));
  const int64_t n = log.size();
  const int64_t N = items.size();
  OpeSamples out;
  out.target_prob.resize(n);
  out.pscore.assign(log.pscores.begin(), log.pscores.end());
  out.reward.assign(log.rewards.begin(), log.rewards.end());
  if (qhat != nullptr) {
    out.qhat_logged.resize(n);
    out.qhat_under_target.resize(n);
  }
  // The catalog's embeddings once; then rows in chunks whose [chunk, N] float64 matrices stay
  // near 128 MB whatever N is (1024 rows up to 16k items, 16 rows at 1M).
  const int64_t chunk = std::clamp<int64_t>((int64_t{1} << 24) / std::max<int64_t>(N, 1), 8, 1024);
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        c10::InferenceMode guard;
        TwoTowerModel::Impl& p = const_cast<TwoTowerModel&>(policy).impl();
        const torch::Tensor vt = p.ItemEmbeddings(items).t().contiguous();  // [d, N]
        torch::Tensor qvt;
        TwoTowerModel::Impl* q = nullptr;
        bool sigmoid = false;
        if (qhat != nullptr) {
          q = &const_cast<TwoTowerModel&>(*qhat).impl();
          qvt = q->ItemEmbeddings(items).t().contiguous();
          sigmoid = qhat->config().reward_link == "sigmoid";
        }
        for (int64_t s = 0; s < n; s += chunk) {
          const int64_t len = std::min(chunk, n - s);
          const torch::Tensor x = p.ContextInputs(log, s, len);
          torch::Tensor logits =
              (p.net->User(x).matmul(vt) / p.config.temperature).to(torch::kFloat64);
          // Slates: each draw is valued over the items it could still pick (its slate's earlier
          // items excluded), matching its logged conditional propensity (docs/LEARNING.md
          // "Slates").
          if (log.has_slates()) {
            double* l = logits.data_ptr<double>();
            for (int64_t j = 0; j < len; ++j)
              for (const int64_t* r = log.prefix_begin(s + j); r < log.prefix_end(s + j); ++r)
                l[j * N + *r] = -INFINITY;
          }
          const torch::Tensor pi = torch::softmax(logits, 1);
          const torch::Tensor a =
              torch::from_blob(const_cast<int64_t*>(log.actions.data() + s), {len, 1},
                               torch::kInt64);
          const torch::Tensor pa = pi.gather(1, a).squeeze(1).contiguous();
          std::copy(pa.data_ptr<double>(), pa.data_ptr<double>() + len,
                    out.target_prob.begin() + s);
          if (q != nullptr) {
            torch::Tensor qs = q->net->User(q->ContextInputs(log, s, len)).matmul(qvt);
            if (sigmoid) qs = torch::sigmoid(qs);
            qs = qs.to(torch::kFloat64);
            const torch::Tensor ql = qs.gather(1, a).squeeze(1).contiguous();
            const torch::Tensor qe = (pi * qs).sum(1).contiguous();
            std::copy(ql.data_ptr<double>(), ql.data_ptr<double>() + len,
                      out.qhat_logged.begin() + s);
            std::copy(qe.data_ptr<double>(), qe.data_ptr<double>() + len,
                      out.qhat_under_target.begin() + s);
          }
        }
      },
      "evaluating the policy"));
  return out;
}

}  // namespace optower
