#include "core/base/obd_campaign.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/csv_categorical.h"
#include "core/base/csv_reader.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

namespace fs = std::filesystem;
using csv_internal::CsvReader;

constexpr char kItemContextFile[] = "item_context.csv";

// Columns of a foreign header looked up by name.
class Columns {
 public:
  Columns(const std::string& path, std::vector<std::string> header)
      : path_(path), header_(std::move(header)) {}

  // The index of `name`; InvalidArgument "<path>:1: column '<name>' is missing" otherwise.
  absl::StatusOr<size_t> Required(absl::string_view name) const {
    auto it = std::find(header_.begin(), header_.end(), name);
    if (it == header_.end())
      return absl::InvalidArgumentError(absl::StrCat(path_, ":1: column '", name, "' is missing"));
    return static_cast<size_t>(it - header_.begin());
  }
  // The columns `<prefix>0, <prefix>1, ...` in index order (they may stand anywhere). A column
  // `<prefix>k` without `<prefix>{k-1}` is an error (a gap would shift every later feature).
  absl::StatusOr<std::vector<size_t>> Numbered(absl::string_view prefix, int64_t first = 0) const {
    std::vector<size_t> cols;
    for (int64_t k = first;; ++k) {
      auto it = std::find(header_.begin(), header_.end(), absl::StrCat(prefix, k));
      if (it == header_.end()) break;
      cols.push_back(static_cast<size_t>(it - header_.begin()));
    }
    const int64_t next = first + static_cast<int64_t>(cols.size());
    for (const std::string& h : header_) {
      if (!absl::StartsWith(h, prefix) || h == absl::StrCat(prefix, next)) continue;
      int64_t k;
      if (absl::SimpleAtoi(absl::string_view(h).substr(prefix.size()), &k) && k > next)
        return absl::InvalidArgumentError(absl::StrCat(path_, ":1: column '", h, "' but no '",
                                                       prefix, next, "'"));
    }
    return cols;
  }

 private:
  const std::string& path_;
  std::vector<std::string> header_;
};

absl::Status CheckInteger(const CsvReader& csv, size_t col, int64_t lo, int64_t hi,
                          absl::string_view what, int64_t* out) {
  RETURN_IF_ERROR(csv.Integer(col, out, "not an integer"));
  if (*out < lo || *out > hi)
    return csv.Error(absl::StrCat(csv.header(col), "=", *out, ": ", what));
  return absl::OkStatus();
}

absl::StatusOr<ItemCatalog> ReadItemContext(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, csv_internal::ReadWholeFile(path));
  CsvReader csv(path, text);
  ASSIGN_OR_RETURN(std::vector<std::string> header, csv.ReadHeaderColumns());
  Columns columns(path, header);
  ASSIGN_OR_RETURN(const size_t id_col, columns.Required("item_id"));
  ASSIGN_OR_RETURN(const size_t dense_col, columns.Required("item_feature_0"));
  ASSIGN_OR_RETURN(const std::vector<size_t> cat_cols, columns.Numbered("item_feature_", 1));
  std::vector<std::string> names;
  for (size_t c : cat_cols) names.push_back(header[c]);
  ItemCatalog items;
  items.dim_features = 1;
  if (!names.empty()) items.categorical = CategoricalColumns(names);
  absl::flat_hash_map<int64_t, int64_t> line_of;
  while (true) {
    ASSIGN_OR_RETURN(const bool has_row, csv.NextRow());
    if (!has_row) break;
    int64_t id;
    RETURN_IF_ERROR(csv.Integer(id_col, &id));
    auto [it, inserted] = line_of.emplace(id, items.size() + 2);
    if (!inserted)
      return csv.Error(absl::StrCat("item_id=", id, ": duplicate (first on line ", it->second, ")"));
    float f0;
    RETURN_IF_ERROR(csv.Number(dense_col, &f0));
    items.ids.push_back(id);
    items.features.push_back(f0);
    for (size_t c : cat_cols) {
      const absl::string_view cell = csv.fields()[c];
      if (cell.empty()) items.categorical.AddCell({});
      else items.categorical.AddCell({CategoricalIdFromText(cell)});
    }
  }
  return items;
}

// The column indices of an OBD log CSV.
struct LogColumns {
  size_t item, position, click, pscore;
  std::vector<size_t> user, affinity;
};

absl::StatusOr<LogColumns> FindLogColumns(const std::string& path,
                                          const std::vector<std::string>& header) {
  Columns columns(path, header);
  LogColumns c;
  ASSIGN_OR_RETURN(c.item, columns.Required("item_id"));
  ASSIGN_OR_RETURN(c.position, columns.Required("position"));
  ASSIGN_OR_RETURN(c.click, columns.Required("click"));
  ASSIGN_OR_RETURN(c.pscore, columns.Required("propensity_score"));
  ASSIGN_OR_RETURN(c.user, columns.Numbered("user_feature_"));
  ASSIGN_OR_RETURN(c.affinity, columns.Numbered("user-item_affinity_"));
  if (c.user.empty() && c.affinity.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":1: no context columns: expected user_feature_0.. or user-item_affinity_0.."));
  return c;
}

// One data row of an OBD log appended to *out.
absl::Status ReadLogRow(const CsvReader& csv, const LogColumns& c,
                        const absl::flat_hash_map<int64_t, int64_t>& row_of,
                        const std::string& items_path, ObdPolicyLog* out) {
  BanditLog& log = out->log;
  for (size_t col : c.affinity) {
    float v;
    RETURN_IF_ERROR(csv.Number(col, &v));
    log.contexts.push_back(v);
  }
  for (size_t col : c.user) {
    const absl::string_view cell = csv.fields()[col];
    if (cell.empty()) log.context_categorical.AddCell({});
    else log.context_categorical.AddCell({CategoricalIdFromText(cell)});
  }
  int64_t item, position, click;
  RETURN_IF_ERROR(csv.Integer(c.item, &item));
  auto it = row_of.find(item);
  if (it == row_of.end())
    return csv.Error(absl::StrCat("item_id=", item, " is not an item of ", items_path));
  RETURN_IF_ERROR(CheckInteger(csv, c.position, 1, std::numeric_limits<int32_t>::max(),
                               "positions are 1-based (must be >= 1)", &position));
  RETURN_IF_ERROR(CheckInteger(csv, c.click, 0, 1, "must be 0 or 1", &click));
  float pscore;
  RETURN_IF_ERROR(csv.Number(c.pscore, &pscore));
  if (!(pscore > 0.0f && pscore <= 1.0f))
    return csv.Error(absl::StrCat("propensity_score=", csv_internal::Shown(csv.fields()[c.pscore]),
                                  ": must be in (0, 1]"));
  log.actions.push_back(it->second);
  log.rewards.push_back(static_cast<float>(click));
  log.pscores.push_back(pscore);
  log.positions.push_back(static_cast<int32_t>(position - 1));
  out->pscore_text.emplace_back(csv.fields()[c.pscore]);
  out->clicks += click;
  out->max_position = std::max(out->max_position, static_cast<int32_t>(position));
  return absl::OkStatus();
}

absl::StatusOr<ObdPolicyLog> ReadPolicyLog(const std::string& policy, const std::string& path,
                                           const ItemCatalog& items,
                                           const std::string& items_path) {
  absl::flat_hash_map<int64_t, int64_t> row_of;
  for (int64_t r = 0; r < items.size(); ++r) row_of.emplace(items.ids[r], r);
  ASSIGN_OR_RETURN(std::string text, csv_internal::ReadWholeFile(path));
  CsvReader csv(path, text);
  ASSIGN_OR_RETURN(std::vector<std::string> header, csv.ReadHeaderColumns());
  ASSIGN_OR_RETURN(const LogColumns columns, FindLogColumns(path, header));
  ObdPolicyLog out;
  out.policy = policy;
  out.source = path;
  out.log.dim_context = static_cast<int64_t>(columns.affinity.size());
  std::vector<std::string> user_names;
  for (size_t c : columns.user) user_names.push_back(header[c]);
  if (!user_names.empty()) out.log.context_categorical = CategoricalColumns(user_names);
  while (true) {
    ASSIGN_OR_RETURN(const bool has_row, csv.NextRow());
    if (!has_row) break;
    RETURN_IF_ERROR(ReadLogRow(csv, columns, row_of, items_path, &out));
  }
  return out;
}

// The log CSV of a policy folder ("" if it has none): <campaign>.csv, else the only *.csv that is
// not item_context.csv.
absl::StatusOr<std::string> FindLogCsv(const fs::path& folder, const std::string& campaign) {
  const fs::path named = folder / (campaign + ".csv");
  std::error_code ec;
  if (fs::is_regular_file(named, ec)) return named.string();
  std::vector<std::string> candidates;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file(ec) && absl::EndsWith(name, ".csv") && name != kItemContextFile)
      candidates.push_back(e.path().string());
  }
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("listing ", folder.string()));
  std::sort(candidates.begin(), candidates.end());
  if (candidates.size() > 1)
    return absl::InvalidArgumentError(absl::StrCat(
        folder.string(), ": several log CSVs (", absl::StrJoin(candidates, ", "), ") and none named ",
        campaign, ".csv"));
  return candidates.empty() ? std::string() : candidates[0];
}

// Sorted subfolders of `dir`.
absl::StatusOr<std::vector<fs::path>> Subfolders(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return absl::NotFoundError(absl::StrCat(dir, ": not a folder (expected an OBD campaign folder "
                                            "with policy subfolders such as random/ and bts/)"));
  std::vector<fs::path> folders;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec)) folders.push_back(e.path());
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("listing ", dir));
  std::sort(folders.begin(), folders.end());
  return folders;
}

}  // namespace

absl::StatusOr<ObdCampaign> ReadObdCampaign(const std::string& dir) {
  ASSIGN_OR_RETURN(const std::vector<fs::path> folders, Subfolders(dir));
  fs::path normal = fs::path(dir).lexically_normal();
  if (normal.filename().empty()) normal = normal.parent_path();  // "obd/men/" -> "obd/men"
  const std::string campaign = normal.filename().string();
  std::vector<std::pair<std::string, std::string>> logs;  // policy, path
  ObdCampaign out;
  out.dir = dir;
  for (const fs::path& folder : folders) {
    ASSIGN_OR_RETURN(const std::string log_csv, FindLogCsv(folder, campaign));
    if (log_csv.empty()) continue;
    logs.emplace_back(folder.filename().string(), log_csv);
    std::error_code ec;
    if (out.items_source.empty() && fs::is_regular_file(folder / kItemContextFile, ec))
      out.items_source = (folder / kItemContextFile).string();
  }
  if (logs.empty())
    return absl::NotFoundError(absl::StrCat(dir, ": no policy subfolder holds a log CSV (expected "
                                            "e.g. random/", campaign, ".csv)"));
  if (out.items_source.empty())
    return absl::NotFoundError(
        absl::StrCat(dir, ": no policy subfolder holds ", kItemContextFile));
  ASSIGN_OR_RETURN(out.items, ReadItemContext(out.items_source));
  for (const auto& [policy, path] : logs) {
    ASSIGN_OR_RETURN(ObdPolicyLog log, ReadPolicyLog(policy, path, out.items, out.items_source));
    out.policies.push_back(std::move(log));
  }
  return out;
}

std::string ObdLogsCsvText(const ObdPolicyLog& policy, const ItemCatalog& items) {
  const BanditLog& log = policy.log;
  std::string out;
  out.reserve(static_cast<size_t>(log.size()) *
              static_cast<size_t>(log.dim_context * 4 + log.context_categorical.num_fields() * 21 +
                                  32));
  csv_internal::AppendHeader(&out, "x", log.dim_context);
  AppendCategoricalHeader(&out, log.context_categorical);
  if (log.dim_context == 0) out.erase(0, 1);  // the leading comma of the first c: column
  out += ",action,reward,pscore,position\n";
  for (int64_t i = 0; i < log.size(); ++i) {
    const float* x = log.context(i);
    for (int64_t j = 0; j < log.dim_context; ++j) {
      if (j > 0) out.push_back(',');
      csv_internal::AppendNumber(&out, x[j]);
    }
    const size_t before = out.size();
    AppendCategoricalCells(&out, log.context_categorical, i);
    if (log.dim_context == 0 && out.size() > before) out.erase(before, 1);
    absl::StrAppend(&out, ",", items.ids[log.actions[i]], ",", log.rewards[i] > 0 ? "1" : "0", ",",
                    policy.pscore_text[i], ",", log.positions[i], "\n");
  }
  return out;
}

}  // namespace optower
