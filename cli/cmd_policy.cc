// optower policy: the learned distribution pi(a|x) (or its top K) for each context of a CSV.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "core/base/atomic_file.h"
#include "core/base/csv_io.h"
#include "core/model/model_folder.h"

namespace optower::cli {
namespace {

int RunPolicy(int argc, char** argv) {
  std::string model_dir, contexts_path, out, items_path;
  int64_t top_k = 0;
  FlagParser p("optower policy --model MODEL_DIR --contexts contexts.csv --out pi.csv [--top-k K]",
               "Writes, for each context row (header x0..), the policy's full distribution pi(a|x)\n"
               "over the catalog as one row (header a0..a{N-1}, columns in items.csv order), or with\n"
               "--top-k K the K most probable items (header item0,prob0,...).");
  p.AddString("model", &model_dir, "model folder written by optower train");
  p.AddString("contexts", &contexts_path,
              "contexts CSV: x0..x{D-1}[,c:<field>...] (categorical columns: docs/FEATURES.md)");
  p.AddString("out", &out, "output CSV (written atomically)");
  p.AddString("items", &items_path, "catalog to score (default: the model's items.csv)");
  p.AddInt("top-k", &top_k, "write the top K items and probabilities instead (0 = full)");
  p.Require("model");
  p.Require("contexts");
  p.Require("out");
  if (auto done = ParseCommandLine(p, argc, argv, 0)) return *done;
  if (top_k < 0) return UsageError(absl::StrFormat("--top-k=%d: must be >= 0", top_k));
  auto model = LoadModelFolder(model_dir);
  if (!model.ok()) return ReportError(model.status());
  auto catalog = CatalogForModel(*model, model_dir, items_path);
  if (!catalog.ok()) return ReportError(catalog.status());
  const ItemCatalog& items = *catalog;
  auto table = ReadContextTableCsv(contexts_path);
  if (!table.ok()) return ReportError(table.status());
  if (table->dim != model->policy.config().dim_context)
    return UsageError(absl::StrFormat("%s:1: %d context columns but the model takes %d",
                                      contexts_path, table->dim,
                                      model->policy.config().dim_context));
  const int64_t n = table->rows;
  auto inputs = model->policy.EncodeContexts(table->dense.data(), n, table->categorical, 0);
  if (!inputs.ok())
    return UsageError(absl::StrCat(contexts_path, ": ", inputs.status().message()));
  auto pi = model->policy.ActionProbabilities(inputs->data(), n, items);
  if (!pi.ok()) return ReportError(pi.status());
  absl::Status written;
  if (top_k == 0) {
    written = WriteMatrixCsv(out, "a", *pi);
  } else {
    const int64_t k = std::min<int64_t>(top_k, items.size());
    std::string text;
    for (int64_t j = 0; j < k; ++j) absl::StrAppend(&text, j ? "," : "", "item", j, ",prob", j);
    text += "\n";
    std::vector<int64_t> order(items.size());
    for (int64_t i = 0; i < n; ++i) {
      std::iota(order.begin(), order.end(), 0);
      const double* row = pi->row(i);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [row](int64_t a, int64_t b) { return row[a] > row[b]; });
      for (int64_t j = 0; j < k; ++j)
        absl::StrAppend(&text, j ? "," : "", items.ids[order[j]], ",",
                        absl::StrFormat("%.9g", row[order[j]]));
      text += "\n";
    }
    written = WriteFileAtomically(out, text);
  }
  if (!written.ok()) return ReportError(written);
  std::printf("wrote %s (%lld contexts x %s)\n", out.c_str(), static_cast<long long>(n),
              top_k ? absl::StrCat("top ", top_k).c_str()
                    : absl::StrCat(items.size(), " items").c_str());
  return kExitOk;
}

}  // namespace

OPTOWER_REGISTER_COMMAND(policy, "policy", "write pi(a|x) (or the top K) for contexts from a CSV",
                         RunPolicy);

}  // namespace optower::cli
