// optower import obd: converts an Open Bandit Dataset campaign folder (core/base/obd_campaign.h)
// into optower's CSV convention: DIR/items.csv, DIR/logs_<policy>.csv per logging policy and
// DIR/import.json. Everything is read and checked before DIR is written; DIR appears complete in
// one step (AtomicDirectory) or not at all.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "core/base/atomic_file.h"
#include "core/base/csv_io.h"
#include "core/base/json_writer.h"
#include "core/base/obd_campaign.h"
#include "core/base/status_macros.h"

namespace optower::cli {
namespace {

constexpr double kZ95 = 1.959963984540054;  // two-sided 95% normal quantile

struct ImportFlags {
  std::string dir, out;
  bool overwrite = false;
};

// Wilson score interval for a proportion k/n (better than the normal one when k is small).
void Wilson(int64_t k, int64_t n, double* lo, double* hi) {
  const double p = static_cast<double>(k) / static_cast<double>(n);
  const double z2n = kZ95 * kZ95 / static_cast<double>(n);
  const double centre = (p + z2n / 2) / (1 + z2n);
  const double half =
      kZ95 * std::sqrt(p * (1 - p) / static_cast<double>(n) + z2n / (4 * static_cast<double>(n))) /
      (1 + z2n);
  *lo = centre - half;
  *hi = centre + half;
}

absl::StatusOr<std::string> ImportJson(const ObdCampaign& c) {
  JsonWriter w;
  w.BeginObject().Field("source", c.dir).Field("items_source", c.items_source)
      .Field("items", c.items.size()).Field("dim_context", c.policies[0].log.dim_context)
      .Field("user_features", c.policies[0].log.context_categorical.num_fields());
  w.Key("policies").BeginArray();
  for (const ObdPolicyLog& p : c.policies) {
    const int64_t n = p.log.size();
    double lo, hi;
    Wilson(p.clicks, n, &lo, &hi);
    w.BeginObject().Field("policy", p.policy).Field("source", p.source)
        .Field("file", absl::StrCat("logs_", p.policy, ".csv")).Field("rows", n)
        .Field("positions", static_cast<int64_t>(p.max_position)).Field("clicks", p.clicks)
        .Field("ctr", static_cast<double>(p.clicks) / static_cast<double>(n))
        .Field("ctr_wilson95_low", lo).Field("ctr_wilson95_high", hi).EndObject();
  }
  w.EndArray().EndObject();
  return w.Finish();
}

// Reads a written logs file back with the CSV reader and checks it is the imported log exactly
// (pscores: the reader's nearest float of the verbatim propensity text).
absl::Status CheckReadBack(const std::string& path, const ObdPolicyLog& p, const ItemCatalog& items) {
  ASSIGN_OR_RETURN(const BanditLog back, ReadLogsCsv(path, items, "items.csv"));
  const BanditLog& log = p.log;
  if (back.contexts != log.contexts || back.actions != log.actions || back.rewards != log.rewards ||
      back.pscores != log.pscores || back.positions != log.positions ||
      !(back.context_categorical == log.context_categorical))
    return absl::InternalError(absl::StrCat(path, ": reading the written file back gave other "
                                            "values than were imported (a bug in optower)"));
  return absl::OkStatus();
}

absl::Status RunImport(const ImportFlags& f) {
  ASSIGN_OR_RETURN(const ObdCampaign campaign, ReadObdCampaign(f.dir));
  AtomicDirectory::Options dir_options;
  dir_options.overwrite = f.overwrite;
  ASSIGN_OR_RETURN(std::unique_ptr<AtomicDirectory> dir, AtomicDirectory::Create(f.out, dir_options));
  RETURN_IF_ERROR(WriteItemsCsv(dir->FilePath("items.csv"), campaign.items));
  for (const ObdPolicyLog& p : campaign.policies) {
    const std::string path = dir->FilePath(absl::StrCat("logs_", p.policy, ".csv"));
    RETURN_IF_ERROR(WriteFileAtomically(path, ObdLogsCsvText(p, campaign.items)));
    RETURN_IF_ERROR(CheckReadBack(path, p, campaign.items));
  }
  ASSIGN_OR_RETURN(const std::string json, ImportJson(campaign));
  RETURN_IF_ERROR(WriteFileAtomically(dir->FilePath("import.json"), json));
  RETURN_IF_ERROR(dir->Commit());
  for (const ObdPolicyLog& p : campaign.policies) {
    const int64_t n = p.log.size();
    double lo, hi;
    Wilson(p.clicks, n, &lo, &hi);
    std::printf("import obd: %s: %lld rows, %lld items, %d positions, %lld clicks, CTR %.5f "
                "(Wilson 95%% [%.5f, %.5f]) -> %s/logs_%s.csv\n",
                p.policy.c_str(), static_cast<long long>(n),
                static_cast<long long>(campaign.items.size()), p.max_position,
                static_cast<long long>(p.clicks),
                static_cast<double>(p.clicks) / static_cast<double>(n), lo, hi,
                dir->final_path().c_str(), p.policy.c_str());
  }
  return absl::OkStatus();
}

int RunImportCommand(int argc, char** argv) {
  ImportFlags f;
  FlagParser p("optower import obd --dir CAMPAIGN_DIR --out DIR",
               "Converts an Open Bandit Dataset campaign folder (policy subfolders such as random/\n"
               "and bts/, each with <campaign>.csv and item_context.csv) into DIR/items.csv,\n"
               "DIR/logs_<policy>.csv (x = user-item affinities, c:user_feature_*, action = item_id,\n"
               "reward = click, pscore = propensity_score verbatim, position = position - 1) and\n"
               "DIR/import.json. The catalog comes from the first policy folder (sorted) with an\n"
               "item_context.csv: the folders hash item categories differently.");
  p.AddString("dir", &f.dir, "the campaign folder, e.g. shared/obd/men");
  p.AddString("out", &f.out, "output folder (created; must not exist unless --overwrite)");
  p.AddBool("overwrite", &f.overwrite, "replace an existing output folder");
  p.Require("dir");
  p.Require("out");
  if (auto done = ParseCommandLine(p, argc, argv, kAnyPositional)) return *done;
  if (p.positional().size() != 1 || p.positional()[0] != "obd")
    return UsageError(p.positional().empty()
                          ? "import: say what to import: optower import obd --dir ... --out ..."
                          : absl::StrCat("import: unknown format '",
                                         p.positional()[p.positional()[0] == "obd" ? 1 : 0],
                                         "' (supported: obd)"));
  absl::Status s = RunImport(f);
  if (absl::IsAlreadyExists(s))
    return UsageError(absl::StrCat("--out: ", s.message(), " (pass --overwrite to replace it)"));
  if (!s.ok()) return ReportError(s);
  return kExitOk;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(import, "import",
                         "convert external logged bandit data (obd: Open Bandit Dataset) to CSV",
                         RunImportCommand);

}  // namespace optower::cli
