#include "core/learning/uniform_evaluation.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

// Fills out->qhat_logged and out->qhat_under_target (target_prob must be set): q̂(x_i, a) =
// link(<u(x_i), v(a)>), one row at a time, so memory is O((n + N) d), not O(n N).
absl::Status FillQhat(const TwoTowerModel& qhat, const BanditLog& log, const ItemCatalog& items,
                      OpeSamples* out) {
  RETURN_IF_ERROR(CheckCatalogSchema(qhat.config(), items));
  ASSIGN_OR_RETURN(const std::vector<float> inputs, qhat.EncodeLogContexts(log));
  const int64_t n = log.size();
  const int64_t N = items.size();
  ASSIGN_OR_RETURN(const std::vector<float> u, qhat.EmbedContexts(inputs.data(), n));
  ASSIGN_OR_RETURN(const std::vector<float> v, qhat.EmbedItems(items));
  const int64_t d = static_cast<int64_t>(v.size()) / N;
  if (static_cast<int64_t>(u.size()) != n * d)
    return absl::InternalError(absl::StrFormat(
        "q̂ embeddings disagree: %d context values for %d rows, %d item values for %d items",
        u.size(), n, v.size(), N));
  const bool sigmoid = qhat.config().reward_link == "sigmoid";
  out->qhat_logged.resize(n);
  out->qhat_under_target.resize(n);
  std::vector<double> row(static_cast<size_t>(N));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t a = 0; a < N; ++a) {
      double s = 0;
      for (int64_t k = 0; k < d; ++k) s += static_cast<double>(u[i * d + k]) * v[a * d + k];
      row[a] = sigmoid ? 1.0 / (1.0 + std::exp(-s)) : s;
    }
    out->qhat_logged[i] = row[log.actions[i]];
    double sum = 0;
    for (int64_t a = 0; a < N; ++a) sum += row[a];
    for (const int64_t* r = log.prefix_begin(i); r != log.prefix_end(i); ++r) sum -= row[*r];
    out->qhat_under_target[i] = sum * out->target_prob[i];
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpeSamples> MakeUniformOpeSamples(const TwoTowerModel* qhat, const BanditLog& log,
                                                 const ItemCatalog& items) {
  const int64_t n = log.size();
  const int64_t N = items.size();
  if (N < 1) return absl::InvalidArgumentError("the catalog is empty");
  OpeSamples out;
  out.pscore.assign(log.pscores.begin(), log.pscores.end());
  out.reward.assign(log.rewards.begin(), log.rewards.end());
  out.target_prob.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    if (log.actions[i] < 0 || log.actions[i] >= N)
      return absl::InvalidArgumentError(
          absl::StrFormat("action row %d of event %d is outside the catalog", log.actions[i], i));
    const int64_t k = log.has_slates() ? log.prefix_end(i) - log.prefix_begin(i) : 0;
    if (k >= N)
      return absl::InvalidArgumentError(absl::StrFormat(
          "row %d excludes %d of the %d catalog items: nothing is left to draw", i, k, N));
    out.target_prob[i] = 1.0 / static_cast<double>(N - k);
  }
  if (qhat != nullptr) RETURN_IF_ERROR(FillQhat(*qhat, log, items, &out));
  return out;
}

}  // namespace optower
