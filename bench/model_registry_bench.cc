// model_registry_bench: where model weights live in a multi-process deployment (issue 13 §1,
// docs/BENCHMARKS.md "Model registry: PostgreSQL vs files"). For each catalog size it saves one
// version — a policy and a reward model, both with an item-id embedding, plus the catalog — as the
// trainer does, and loads it back as a serving replica does:
//
//   file   FileModelStore on a local folder (what a shared volume would hold): Save, then Load
//          (from the page cache: the file was just written);
//   pg     PostgresModelStore: Save (local folder + upload in one transaction), the first Load of
//          a second store with an empty cache folder (download + fsyncs + rename + read), and a
//          second Load (cached).
//
//   model_registry_bench [--items=10000,1000000] [--dim=16] [--embedding=32] [--repeats=3]
//                        [--dir=/tmp/model_registry_bench] [--dsn_file=FILE]     (else OPTOWER_PG_DSN; scripts/pg_test_server.sh
//                                               start DIR writes DIR/dsn)
//
// Each size runs in a fresh PostgreSQL schema (dropped at the end) and a fresh folder; each repeat
// saves and loads one more version (000001, 000002, ...) in the same stores, one line per repeat.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "core/storage/file_model_store.h"
#include "core/storage/pg_connection.h"
#include "core/storage/postgres_model_store.h"

namespace {

using namespace optower;  // NOLINT: a benchmark's main file

struct Flags {
  std::vector<int64_t> items = {10000, 1000000};
  int64_t dim = 16, embedding = 32, repeats = 3;
  std::string dir = "/tmp/model_registry_bench", dsn_file;
};

bool Flag(const char* arg, const char* name, std::string* value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *value = arg + n + 1;
  return true;
}

std::string ParseFlags(int argc, char** argv, Flags& f) {
  for (int i = 1; i < argc; ++i) {
    std::string v;
    bool ok = true;
    if (Flag(argv[i], "--items", &v)) {
      f.items.clear();
      for (absl::string_view p : absl::StrSplit(v, ',')) {
        int64_t n = 0;
        ok = ok && absl::SimpleAtoi(p, &n) && n > 0;
        f.items.push_back(n);
      }
    } else if (Flag(argv[i], "--dim", &v)) {
      ok = absl::SimpleAtoi(v, &f.dim) && f.dim > 0;
    } else if (Flag(argv[i], "--embedding", &v)) {
      ok = absl::SimpleAtoi(v, &f.embedding) && f.embedding > 0;
    } else if (Flag(argv[i], "--repeats", &v)) {
      ok = absl::SimpleAtoi(v, &f.repeats) && f.repeats > 0;
    } else if (Flag(argv[i], "--dir", &v)) {
      f.dir = v;
    } else if (Flag(argv[i], "--dsn_file", &v)) {
      f.dsn_file = v;
    } else {
      ok = false;
    }
    if (!ok) return absl::StrCat("bad flag ", argv[i]);
  }
  return "";
}

struct Model {
  ItemCatalog items;
  std::unique_ptr<TwoTowerModel> policy, reward;
};

absl::StatusOr<Model> MakeModel(int64_t n, const Flags& f) {
  Model m;
  m.items.dim_features = f.dim;
  std::mt19937_64 rng(n);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int64_t i = 0; i < n; ++i) m.items.ids.push_back(1000 + i);
  m.items.features.resize(static_cast<size_t>(n * f.dim));
  for (float& x : m.items.features) x = normal(rng);
  TwoTowerConfig c = MakeTowerConfig(32, m.items, {64}, f.embedding, "relu",
                                     /*item_id_embedding=*/true, 1.0);
  absl::StatusOr<TwoTowerModel> p = TwoTowerModel::Create(c, m.items.ids, 1);
  if (!p.ok()) return p.status();
  c.reward_link = "sigmoid";
  absl::StatusOr<TwoTowerModel> q = TwoTowerModel::Create(c, m.items.ids, 2);
  if (!q.ok()) return q.status();
  m.policy = std::make_unique<TwoTowerModel>(std::move(*p));
  m.reward = std::make_unique<TwoTowerModel>(std::move(*q));
  return m;
}

double Seconds(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

int64_t FolderBytes(const std::string& dir) {
  int64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += static_cast<int64_t>(e.file_size());
  return total;
}

absl::Status Check(absl::Status s, const char* what) {
  if (!s.ok()) std::fprintf(stderr, "model_registry_bench: %s: %s\n", what, s.ToString().c_str());
  return s;
}

// file: Save, Load.
absl::Status RunFile(const Model& m, FileModelStore& store, const std::string& v) {
  absl::Time t = absl::Now();
  if (!Check(store.Save(v, *m.policy, m.reward.get(), m.items, {}), "file save").ok())
    return absl::InternalError("file save");
  const double save = Seconds(t);
  t = absl::Now();
  absl::StatusOr<ModelFolder> folder = store.Load(v);
  if (!folder.ok()) return folder.status();
  std::printf("file  items=%-8ld MB=%-7.1f save_s=%-7.2f load_s=%-7.2f\n",
              static_cast<long>(m.items.size()), FolderBytes(store.VersionDir(v)) / 1e6, save,
              Seconds(t));
  return absl::OkStatus();
}

// pg: Save by a trainer, first and second Load by a replica with an empty cache.
absl::Status RunPostgres(const Model& m, ModelStore& trainer, ModelStore& replica,
                         const std::string& v) {
  absl::Time t = absl::Now();
  if (!Check(trainer.Save(v, *m.policy, m.reward.get(), m.items, {}), "pg save").ok())
    return absl::InternalError("pg save");
  const double save = Seconds(t);
  t = absl::Now();
  absl::StatusOr<ModelFolder> first = replica.Load(v);
  if (!first.ok()) return first.status();
  const double load = Seconds(t);
  t = absl::Now();
  absl::StatusOr<ModelFolder> second = replica.Load(v);
  if (!second.ok()) return second.status();
  std::printf("pg    items=%-8ld MB=%-7.1f save_s=%-7.2f first_load_s=%-7.2f cached_load_s=%-7.2f\n",
              static_cast<long>(m.items.size()), FolderBytes(replica.VersionDir(v)) / 1e6, save,
              load, Seconds(t));
  return absl::OkStatus();
}

// One size: `repeats` versions through both stores, alternating file and pg.
absl::Status RunSize(const Model& m, const std::string& dsn, const std::string& dir, int64_t repeats) {
  std::filesystem::create_directories(dir + "/file");
  absl::StatusOr<std::unique_ptr<FileModelStore>> file = FileModelStore::Open(dir + "/file");
  if (!file.ok()) return file.status();
  absl::StatusOr<std::unique_ptr<ModelStore>> trainer =
      PostgresModelStore::Open(dsn, dir + "/trainer", ModelStore::Options());
  if (!trainer.ok()) return trainer.status();
  absl::StatusOr<std::unique_ptr<ModelStore>> replica =
      PostgresModelStore::Open(dsn, dir + "/replica", ModelStore::Options());
  if (!replica.ok()) return replica.status();
  for (int64_t r = 1; r <= repeats; ++r) {
    const std::string v = FormatModelVersion(static_cast<uint64_t>(r));
    if (absl::Status s = RunFile(m, **file, v); !s.ok()) return s;
    if (absl::Status s = RunPostgres(m, **trainer, **replica, v); !s.ok()) return s;
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

// A fresh schema for one run; returns the DSN that uses it.
absl::StatusOr<std::string> FreshSchema(PgConnection& admin, const std::string& dsn,
                                        const std::string& name) {
  absl::Status s = admin.Exec(absl::StrCat("DROP SCHEMA IF EXISTS ", name, " CASCADE; CREATE SCHEMA ",
                                           name),
                              "create schema");
  if (!s.ok()) return s;
  return absl::StrCat(dsn, " options='-c search_path=", name, " -c client_min_messages=warning'");
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (std::string e = ParseFlags(argc, argv, f); !e.empty()) {
    std::fprintf(stderr, "model_registry_bench: %s\n", e.c_str());
    return 2;
  }
  absl::StatusOr<std::string> dsn = LoadPgDsn(f.dsn_file);
  if (!dsn.ok()) return Check(dsn.status(), "dsn").ok() ? 0 : 1;
  absl::StatusOr<std::unique_ptr<PgConnection>> admin = PgConnection::Connect(*dsn, "bench");
  if (!admin.ok()) return Check(admin.status(), "connect").ok() ? 0 : 1;
  (*admin)->Exec("SET client_min_messages = warning", "set").IgnoreError();
  for (int64_t n : f.items) {
    absl::StatusOr<Model> m = MakeModel(n, f);
    if (!m.ok()) return Check(m.status(), "model").ok() ? 0 : 1;
    const std::string dir = absl::StrCat(f.dir, "/", n, "-", ::getpid());
    std::filesystem::remove_all(dir);
    const std::string schema = absl::StrCat("model_registry_bench_", ::getpid());
    absl::StatusOr<std::string> run_dsn = FreshSchema(**admin, *dsn, schema);
    if (!run_dsn.ok()) return Check(run_dsn.status(), "schema").ok() ? 0 : 1;
    absl::Status s = RunSize(*m, *run_dsn, dir, f.repeats);
    (*admin)->Exec(absl::StrCat("DROP SCHEMA ", schema, " CASCADE"), "drop schema").IgnoreError();
    std::filesystem::remove_all(dir);
    if (!Check(s, "run").ok()) return 1;
  }
  return 0;
}
