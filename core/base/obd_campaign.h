// The Open Bandit Dataset (Saito et al., NeurIPS 2021 Datasets and Benchmarks; shared/obd/README.md)
// read from one campaign folder and converted to optower's CSV convention (core/base/csv_io.h).
//
// A campaign folder (e.g. obd/men/) holds one subfolder per logging policy (random/, bts/, ...),
// each with the campaign's log CSV and item_context.csv. The log CSV of a policy folder is
// <basename of the campaign folder>.csv if it exists, else the only *.csv there that is not
// item_context.csv (several candidates are an error); subfolders with no log CSV are skipped.
// Columns are found by name, so other campaigns (other item and feature counts) work too:
//   log CSV:  item_id, position (1-based), click (0/1), propensity_score in (0, 1],
//             user_feature_* (categorical, hashed strings), user-item_affinity_0.. (numeric);
//             any other column (the unnamed row index, timestamp) is ignored.
//   item_context.csv: item_id, item_feature_0 (numeric), item_feature_1.. (categorical).
// The two policy folders of a campaign hash the item categories differently (same item, different
// strings), so the catalog comes from one folder: the first in sorted order with an
// item_context.csv. Every logged item_id must be an item of that catalog.
//
// Thread safety: reentrant functions, no shared state.
#ifndef OPTOWER_CORE_BASE_OBD_CAMPAIGN_H_
#define OPTOWER_CORE_BASE_OBD_CAMPAIGN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/bandit_data.h"

namespace optower {

// One logging policy's log. `log` is optower's form: contexts = the user-item_affinity_* columns
// in order (dim_context = their count), context_categorical = user_feature_* (ids by
// CategoricalIdFromText), actions = rows of ObdCampaign::items, rewards = click,
// pscores = propensity_score (as the CSV reader would read it: the nearest float), positions =
// position - 1 (no slate prefixes: each row is its own draw, as OBP evaluates it).
struct ObdPolicyLog {
  std::string policy;  // the subfolder's name
  std::string source;  // path of its log CSV
  BanditLog log;
  std::vector<std::string> pscore_text;  // propensity_score exactly as the source wrote it
  int64_t clicks = 0;
  int32_t max_position = 0;  // largest 1-based position seen
};

struct ObdCampaign {
  std::string dir;
  ItemCatalog items;  // ids = item_id; f0 = item_feature_0; c:item_feature_1.. (header order)
  std::string items_source;
  std::vector<ObdPolicyLog> policies;  // sorted by policy name
};

// Reads and checks a whole campaign folder. InvalidArgument "<file>:<line>: <column>=<value>:
// <what>" for bad data (missing column, malformed number, propensity outside (0, 1], position < 1,
// click not 0/1, unknown item); NotFound for a missing folder or a folder without any policy
// subfolder / item_context.csv.
absl::StatusOr<ObdCampaign> ReadObdCampaign(const std::string& dir);

// The text of logs_<policy>.csv in optower's convention:
//   x0..x{D-1},c:user_feature_0..,action,reward,pscore,position
// with ids written as integers, action = item_id, pscore = the source's propensity text verbatim
// (exact: no float formatting in between), position 0-based.
std::string ObdLogsCsvText(const ObdPolicyLog& policy, const ItemCatalog& items);

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_OBD_CAMPAIGN_H_
