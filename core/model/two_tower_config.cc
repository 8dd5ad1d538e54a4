#include "core/model/two_tower_config.h"

#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/status_macros.h"

namespace optower {

int64_t ContextCrossCount(int64_t dim, int64_t degree) {
  // Monomials of degree k in dim variables: C(dim + k − 1, k); sum over k = 2..degree.
  int64_t total = 0;
  for (int64_t k = 2; k <= degree; ++k) {
    int64_t c = 1;  // C(dim + k − 1, k), built up exactly: c_j = c_{j−1} (dim + j − 1) / j
    for (int64_t j = 1; j <= k; ++j) {
      c = c * (dim + j - 1) / j;
      if (c > kMaxCrossFeatures) return kMaxCrossFeatures + 1;
    }
    total += c;
    if (total > kMaxCrossFeatures) return kMaxCrossFeatures + 1;
  }
  return total;
}

absl::Status ValidateTwoTowerConfig(const TwoTowerConfig& c) {
  RETURN_IF_ERROR(ValidateCategoricalFields(c.context_fields, "context_field"));
  RETURN_IF_ERROR(ValidateCategoricalFields(c.item_fields, "item_field"));
  if (c.dim_context < 0 || (c.dim_context == 0 && c.context_fields.empty()))
    return absl::InvalidArgumentError(absl::StrFormat(
        "dim_context=%d: must be >= 1 (>= 0 with categorical context fields)", c.dim_context));
  if (c.dim_item < 0)
    return absl::InvalidArgumentError(absl::StrFormat("dim_item=%d: must be >= 0", c.dim_item));
  if (c.dim_item == 0 && !c.item_id_embedding && c.item_fields.empty())
    return absl::InvalidArgumentError(
        "dim_item=0 without item_id_embedding or item fields: the item tower would have no input");
  if (c.embedding_dim < 1)
    return absl::InvalidArgumentError(
        absl::StrFormat("embedding_dim=%d: must be >= 1", c.embedding_dim));
  if (c.context_degree < 1 || c.context_degree > 3)
    return absl::InvalidArgumentError(
        absl::StrFormat("context_degree=%d: must be 1, 2 or 3", c.context_degree));
  if (ContextCrossCount(c.dim_context, c.context_degree) > kMaxCrossFeatures)
    return absl::InvalidArgumentError(absl::StrFormat(
        "context_degree=%d: %d dense context features would make more than %d cross features",
        c.context_degree, c.dim_context, kMaxCrossFeatures));
  for (int64_t h : c.hidden)
    if (h < 1) return absl::InvalidArgumentError(absl::StrFormat("hidden width %d: must be >= 1", h));
  if (c.activation != "relu" && c.activation != "tanh" && c.activation != "elu" &&
      c.activation != "gelu")
    return absl::InvalidArgumentError(
        absl::StrFormat("activation=%s: must be relu, tanh, elu or gelu", c.activation));
  if (!(c.temperature > 0) || !std::isfinite(c.temperature))
    return absl::InvalidArgumentError(
        absl::StrFormat("temperature=%g: must be > 0", c.temperature));
  return absl::OkStatus();
}

namespace {

std::string FieldLines(const char* key, const std::vector<CategoricalField>& fields) {
  std::string out;
  for (const CategoricalField& f : fields) absl::StrAppend(&out, key, "=", CategoricalFieldToText(f), "\n");
  return out;
}

}  // namespace

std::string TwoTowerConfigToText(const TwoTowerConfig& c) {
  return absl::StrCat("format=optower-two-tower-v1\n", "dim_context=", c.dim_context, "\n",
                      "dim_item=", c.dim_item, "\n", "hidden=", absl::StrJoin(c.hidden, ","), "\n",
                      "embedding_dim=", c.embedding_dim, "\n",
                      // Written only when on, so that models without crosses stay readable by
                      // binaries that predate the key.
                      c.context_degree != 1 ? absl::StrCat("context_degree=", c.context_degree, "\n")
                                            : std::string(),
                      "activation=", c.activation, "\n",
                      "item_id_embedding=", c.item_id_embedding ? "true" : "false", "\n",
                      absl::StrFormat("temperature=%.17g\n", c.temperature),
                      "reward_link=", c.reward_link, "\n", FieldLines("context_field", c.context_fields),
                      FieldLines("item_field", c.item_fields));
}

absl::StatusOr<TwoTowerConfig> TwoTowerConfigFromText(const std::string& text, const std::string& path) {
  TwoTowerConfig c;
  bool format_seen = false;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    const std::string& key = kv.first;
    const std::string& value = kv.second;
    auto bad = [&](const char* what) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s:%d: %s=%s: %s", path, line_no, key, value, what));
    };
    bool ok = true;
    if (key == "format") {
      if (value != "optower-two-tower-v1") return bad("unsupported model format");
      format_seen = true;
    } else if (key == "dim_context") {
      ok = absl::SimpleAtoi(value, &c.dim_context);
    } else if (key == "dim_item") {
      ok = absl::SimpleAtoi(value, &c.dim_item);
    } else if (key == "hidden") {
      c.hidden.clear();
      for (absl::string_view h : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        int64_t w;
        if (!absl::SimpleAtoi(h, &w)) return bad("expected comma-separated integers");
        c.hidden.push_back(w);
      }
    } else if (key == "embedding_dim") {
      ok = absl::SimpleAtoi(value, &c.embedding_dim);
    } else if (key == "context_degree") {
      ok = absl::SimpleAtoi(value, &c.context_degree);
    } else if (key == "activation") {
      c.activation = value;
    } else if (key == "item_id_embedding") {
      ok = absl::SimpleAtob(value, &c.item_id_embedding);
    } else if (key == "reward_link") {
      if (value != "sigmoid" && value != "identity") return bad("must be sigmoid or identity");
      c.reward_link = value;
    } else if (key == "context_field" || key == "item_field") {
      absl::StatusOr<CategoricalField> f = CategoricalFieldFromText(value);
      if (!f.ok()) return bad(std::string(f.status().message()).c_str());
      (key == "context_field" ? c.context_fields : c.item_fields).push_back(*f);
    } else if (key == "temperature") {
      ok = absl::SimpleAtod(value, &c.temperature);
    } else {
      return bad("unknown key");
    }
    if (!ok) return bad("malformed value");
  }
  if (!format_seen)
    return absl::InvalidArgumentError(absl::StrFormat("%s: not an optower model config", path));
  RETURN_IF_ERROR(ValidateTwoTowerConfig(c));
  return c;
}

}  // namespace optower
