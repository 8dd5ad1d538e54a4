// --index_scale N1,N2,...: what a fresh server's defaults choose at each catalog size, and what
// catalog changes cost at the largest (issue 11 §2; docs/BENCHMARKS.md §4 "Index choice and catalog
// updates at scale"). Per size: the snapshot a server would build at start-up with the default
// index config (AUTO, ivf_nprobe 16, min_recall_at_10 0.95), its probe being the user tower on
// --index_scale_logged logged contexts (the bench's request contexts, as an event log would hold
// them; 0 = sampled contexts only), then recall@10 of the chosen index on 300 OTHER request
// contexts' user-tower queries against exact search, the embed+build time and the process's peak
// RSS (VmHWM; sizes run in ascending order, so each peak is that size's). At the largest size:
// UpsertItems (new items) and DeleteItems of 1, 10 and 1,000 items through RetrievalEngine (no log,
// no persistence), and a full rebuild (ReplaceModel with the same towers: re-embed + build).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/bench_util.h"
#include "core/base/status_macros.h"
#include "bench/benchmarks.h"
#include "core/serving/model_snapshot.h"
#include "core/serving/retrieval_engine.h"
#include "server/server_config.h"

namespace optower::bench {
namespace {

double PeakRssMb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

// recall@10 of `index` against exact search over the same embeddings, on `queries` [nq, d].
absl::StatusOr<double> RecallAgainstExact(const ItemIndex& index, const float* queries, int64_t nq) {
  ItemIndexOptions o;
  o.type = ItemIndexOptions::Type::kExact;
  std::vector<float> x(static_cast<size_t>(index.size() * index.dim()));
  for (int64_t row = 0; row < index.size(); ++row) {
    std::copy_n(index.embedding(row), index.dim(), x.data() + row * index.dim());
  }
  ASSIGN_OR_RETURN(auto exact, ItemIndex::Build(x.data(), index.size(), index.dim(), index.ids(), o));
  int64_t found = 0;
  for (int64_t q = 0; q < nq; ++q) {
    ASSIGN_OR_RETURN(auto truth, exact->Search(queries + q * index.dim(), 10));
    ASSIGN_OR_RETURN(auto got, index.Search(queries + q * index.dim(), 10));
    for (const SearchHit& g : got) {
      for (const SearchHit& t : truth) found += g.item_id == t.item_id ? 1 : 0;
    }
  }
  return static_cast<double>(found) / static_cast<double>(nq * 10);
}

std::string Params(const ItemIndex& index) {
  if (index.ivf_nprobe() > 0) {
    return absl::StrFormat("nlist %d, nprobe %d", index.ivf_nlist(), index.ivf_nprobe());
  }
  if (index.hnsw_ef_search() > 0) return absl::StrFormat("efSearch %d", index.hnsw_ef_search());
  return "-";
}

int RunChanges(const Flags& f, const World& world, const Dataset& ds, std::shared_ptr<const ModelSnapshot> snap,
               const ModelSnapshot::Options& options) {
  RetrievalEngineOptions eo;
  eo.snapshot = options;
  eo.build_priority = BackgroundPriority::kNormal;
  auto engine = RetrievalEngine::Create(eo, std::move(snap), nullptr);
  if (!engine.ok()) return 1;
  Say("| change | items | wall ms | rebuilt | delta / tombstones after | others' CPU (cores) | load1 |");
  Say("|---|---|---|---|---|---|---|");
  int64_t next_id = 900000000;
  for (int64_t count : {1, 10, 1000}) {
    ItemCatalog items = MakeItems(world, count, 10, f.within_sd, next_id, 4242 + count);
    next_id += count;
    OthersCpu others;
    const auto t0 = Clock::now();
    auto up = (*engine)->UpsertItems(items);
    const double ms = SecondsSince(t0) * 1000;
    if (!up.ok()) {
      Say("upsert failed: " + std::string(up.status().message()));
      return 1;
    }
    Say(absl::StrFormat("| upsert (new) | %d | %.1f | %s | %d / %d | %.2f | %.2f |", count, ms,
                        up->index_rebuilt ? "yes" : "no", up->index_delta_items,
                        up->index_tombstones, others.Cores(), Load1()));
    OthersCpu others_del;
    const auto t1 = Clock::now();
    auto del = (*engine)->DeleteItems(items.ids);
    const double del_ms = SecondsSince(t1) * 1000;
    if (!del.ok()) return 1;
    Say(absl::StrFormat("| delete | %d | %.1f | %s | %d / %d | %.2f | %.2f |", count, del_ms,
                        del->index_rebuilt ? "yes" : "no", del->index_delta_items,
                        del->index_tombstones, others_del.Cores(), Load1()));
  }
  // Search cost with the layers of 1,000 base items deleted + 1,000 new ones (the largest step).
  OthersCpu others;
  const auto t0 = Clock::now();
  const absl::Status swap = (*engine)->ReplaceModel("bench-a", ds.model);
  if (!swap.ok()) return 1;
  const auto after = (*engine)->snapshot();
  Say(absl::StrFormat("full rebuild (ReplaceModel, same towers: re-embed %d items + build): %.1f s, "
                      "%s %s, recall@10 %.4f; others' CPU %.2f cores, load %s",
                      after->catalog().size(), SecondsSince(t0), after->index().type_name(),
                      Params(after->index()), after->index().recall_at_10(), others.Cores(),
                      LoadAvg()));
  Say("  " + after->index().build_report());
  return 0;
}

}  // namespace

int RunIndexScale(const Flags& f, const World& world, const Models& models) {
  std::vector<int64_t> sizes = ParseIntList(f.index_scale);
  std::sort(sizes.begin(), sizes.end());
  ModelSnapshot::Options options;
  options.index = server::IndexOptionsFromConfig(v1::ServerConfig());  // the server's defaults
  options.index.threads = static_cast<int>(f.threads);
  Say("\n### AUTO with the server's defaults (issue 11)\n");
  Say("| N | chosen | parameters | recall@10 probe | recall@10 other queries | probe | embed+build s "
      "| peak RSS MB | others' CPU (cores) | load1 |");
  Say("|---|---|---|---|---|---|---|---|---|---|");
  std::shared_ptr<const ModelSnapshot> last;
  Dataset last_ds;
  for (int64_t n : sizes) {
    absl::StatusOr<Dataset> ds = MakeDataset(n, world, models, f);
    if (!ds.ok()) return 1;
    // "Logged" contexts: the first ones of the bench's request stream; recall is then checked
    // on the last 300, which the probe never saw.
    const int64_t logged_n = std::min<int64_t>(f.index_scale_logged, f.n_contexts - 1000);
    const std::vector<float> logged(ds->contexts.begin(),
                                    ds->contexts.begin() + logged_n * world.dc);
    OthersCpu others;
    const auto t0 = Clock::now();
    auto snap = ModelSnapshot::Build("bench-a", ds->model, ds->catalog, 0, options, nullptr,
                                     &logged);
    const double seconds = SecondsSince(t0);
    const double cores = others.Cores();
    if (!snap.ok()) {
      Say("build failed: " + std::string(snap.status().message()));
      return 1;
    }
    const int64_t d = (*snap)->embedding_dim();
    auto recall = RecallAgainstExact((*snap)->index(),
                                     ds->queries.data() + (f.n_contexts - 300) * d, 300);
    if (!recall.ok()) return 1;
    Say(absl::StrFormat("| %d | %s | %s | %.4f | %.4f | %s | %.1f | %.0f | %.2f | %.2f |", n,
                        (*snap)->index().type_name(), Params((*snap)->index()),
                        (*snap)->index().recall_at_10(), *recall, (*snap)->probe_source(), seconds,
                        PeakRssMb(), cores, Load1()));
    Say("  " + (*snap)->index().build_report());
    last = *std::move(snap);
    last_ds = *std::move(ds);
  }
  if (last == nullptr) return 0;
  Say(absl::StrFormat("\n### Catalog changes at %d items\n", last->catalog().size()));
  return RunChanges(f, world, last_ds, std::move(last), options);
}

}  // namespace optower::bench
