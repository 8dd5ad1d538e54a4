// `optower items upsert|delete`: changes the catalog of a running optower-server from an items.csv
// (item,f0,...). upsert adds new items and replaces the features of existing ones; delete removes
// the listed ids (only the item column is used). The server rebuilds its index and swaps it in.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/flag_parser.h"
#include "cli/online_client.h"
#include "core/base/bandit_data.h"
#include "core/base/csv_io.h"
#include "core/base/json_writer.h"
#include "core/base/status_macros.h"

namespace optower::cli {
namespace {

struct ItemsFlags {
  std::string action;
  std::string server;
  ConnectionFlags connection;  // --token, --tls-ca, --tls-cert, --tls-key
  std::string items;
  int64_t batch = 0;
  double timeout = 600;
  bool json = false;
};

struct Totals {
  int64_t inserted = 0, updated = 0, deleted = 0, catalog_size = 0, catalog_version = 0, calls = 0;
  std::string index_type;
  double recall = 1.0;
};

absl::Status Upsert(const client::OptowerClient& client, const ItemCatalog& items, int64_t batch,
                    Totals* t) {
  for (int64_t start = 0; start < items.size(); start += batch) {
    const int64_t end = std::min(items.size(), start + batch);
    v1::UpsertItemsRequest request;
    for (int64_t i = start; i < end; ++i) {
      v1::Item* item = request.add_items();
      item->set_item_id(items.ids[i]);
      item->mutable_features()->Add(items.feature(i), items.feature(i) + items.dim_features);
      // The row's categorical columns (c:<name>), empty cells left out.
      for (int64_t field = 0; field < items.categorical.num_fields(); ++field) {
        const absl::Span<const int64_t> ids = items.categorical.ids(i, field);
        if (ids.empty()) continue;
        v1::CategoricalFeature* feature = item->add_categorical();
        feature->set_name(items.categorical.fields()[static_cast<size_t>(field)]);
        feature->mutable_ids()->Add(ids.begin(), ids.end());
      }
    }
    absl::StatusOr<v1::UpsertItemsResponse> r = client.UpsertItems(request);
    if (!r.ok()) return RpcError("UpsertItems", r.status());
    t->inserted += r->inserted();
    t->updated += r->updated();
    t->catalog_size = r->catalog_size();
    t->catalog_version = r->catalog_version();
    t->index_type = r->index_type();
    t->recall = r->index_recall_at_10();
    ++t->calls;
  }
  return absl::OkStatus();
}

absl::Status Delete(const client::OptowerClient& client, const ItemCatalog& items, int64_t batch,
                    Totals* t) {
  for (int64_t start = 0; start < items.size(); start += batch) {
    const int64_t end = std::min(items.size(), start + batch);
    v1::DeleteItemsRequest request;
    request.mutable_item_ids()->Add(items.ids.begin() + start, items.ids.begin() + end);
    absl::StatusOr<v1::DeleteItemsResponse> r = client.DeleteItems(request);
    if (!r.ok()) return RpcError("DeleteItems", r.status());
    t->deleted += r->deleted();
    t->catalog_size = r->catalog_size();
    t->catalog_version = r->catalog_version();
    ++t->calls;
  }
  return absl::OkStatus();
}

absl::Status RunItems(const ItemsFlags& f) {
  if (f.action != "upsert" && f.action != "delete") {
    return absl::InvalidArgumentError(
        absl::StrCat("action '", f.action, "': must be upsert or delete"));
  }
  if (f.batch < 0) return absl::InvalidArgumentError(absl::StrCat("--batch=", f.batch, ": must be >= 0"));
  ASSIGN_OR_RETURN(const ItemCatalog items, ReadItemsCsv(f.items));
  const int64_t batch = f.batch > 0 ? f.batch : std::max<int64_t>(1, items.size());
  ASSIGN_OR_RETURN(auto client, ConnectToServer(f.server, f.timeout, f.connection));
  Totals t;
  if (f.action == "upsert") {
    RETURN_IF_ERROR(Upsert(*client, items, batch, &t));
  } else {
    RETURN_IF_ERROR(Delete(*client, items, batch, &t));
  }
  if (f.json) {
    JsonWriter w(JsonWriter::Options{/*indent=*/0});
    w.BeginObject().Field("action", f.action).Field("items", items.size()).Field("calls", t.calls);
    if (f.action == "upsert") {
      w.Field("inserted", t.inserted).Field("updated", t.updated);
      w.Field("index_type", t.index_type).Field("index_recall_at_10", t.recall);
    } else {
      w.Field("deleted", t.deleted);
    }
    w.Field("catalog_size", t.catalog_size).Field("catalog_version", t.catalog_version).EndObject();
    ASSIGN_OR_RETURN(const std::string json, w.Finish());
    std::fputs(json.c_str(), stdout);
    return absl::OkStatus();
  }
  if (f.action == "upsert") {
    std::printf("items upsert: %lld inserted, %lld updated; catalog %lld items (version %lld, %s "
                "index, recall@10 %.3f)\n",
                static_cast<long long>(t.inserted), static_cast<long long>(t.updated),
                static_cast<long long>(t.catalog_size), static_cast<long long>(t.catalog_version),
                t.index_type.c_str(), t.recall);
  } else {
    std::printf("items delete: %lld deleted; catalog %lld items (version %lld)\n",
                static_cast<long long>(t.deleted), static_cast<long long>(t.catalog_size),
                static_cast<long long>(t.catalog_version));
  }
  return absl::OkStatus();
}

int ItemsMain(int argc, char** argv) {
  ItemsFlags f;
  FlagParser parser(
      "optower items upsert|delete --server ADDR --items items.csv [flags]",
      "Changes the catalog of a running optower-server. upsert adds the items of items.csv and\n"
      "replaces the features of those that exist; delete removes the ids of its item column.\n"
      "Each call makes the server rebuild its index once: prefer one call (the default).");
  parser.AddString("server", &f.server, "server address host:port");
  f.connection.Register(&parser);
  parser.AddString("items", &f.items,
                   "items.csv (item,f0,...[,c:<name>...]; categorical columns become the items' "
                   "categorical fields)");
  parser.AddInt("batch", &f.batch, "items per call (0 = all in one call)");
  parser.AddDouble("timeout", &f.timeout, "deadline of each call in seconds (index builds)");
  parser.AddBool("json", &f.json, "print one JSON object");
  for (const char* required : {"server", "items"}) parser.Require(required);
  if (auto done = ParseCommandLine(parser, argc, argv, kAnyPositional)) return *done;
  if (parser.positional().size() != 1) {
    return UsageError("want exactly one action: optower items upsert|delete --server ADDR --items FILE");
  }
  f.action = parser.positional()[0];
  const absl::Status s = RunItems(f);
  return s.ok() ? kExitOk : ReportError(s);
}

}  // namespace

OPTOWER_REGISTER_COMMAND(items, "items", "upsert or delete catalog items on a running server",
                         ItemsMain);

}  // namespace optower::cli
