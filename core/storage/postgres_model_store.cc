#include "core/storage/postgres_model_store.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/base/atomic_file.h"
#include "core/base/status_macros.h"
#include "core/storage/model_version_folder.h"
#include "core/storage/postgres_model_files.h"

namespace optower {
namespace {
namespace pms {  // named: the storage library is a unity build

constexpr char kLock[] = "models";
constexpr char kUploadPrefix[] = ".upload.";

// Version 1 of the schema. model_files.data is stored uncompressed (EXTERNAL): weights do not
// compress, and compressing 32 MiB chunks would cost the publish more than it saves.
const std::vector<std::string>& Migrations() {
  static const std::vector<std::string>* m = new std::vector<std::string>{
      "CREATE TABLE models (version TEXT PRIMARY KEY, manifest_txt TEXT NOT NULL, "
      "manifest_json TEXT NOT NULL, promoted BOOLEAN NOT NULL, created_us BIGINT NOT NULL);"
      "CREATE TABLE model_files (version TEXT NOT NULL REFERENCES models (version) "
      "ON DELETE CASCADE, path TEXT NOT NULL, chunk INTEGER NOT NULL, data BYTEA NOT NULL, "
      "PRIMARY KEY (version, path, chunk));"
      "ALTER TABLE model_files ALTER COLUMN data SET STORAGE EXTERNAL;"
      "CREATE TABLE model_current (id INTEGER PRIMARY KEY CHECK (id = 1), "
      "version TEXT NOT NULL REFERENCES models (version), updated_us BIGINT NOT NULL);"};
  return *m;
}

// Numeric order of version names in SQL (ModelVersionLess).
constexpr char kNewestFirst[] = "ORDER BY length(version) DESC, version DESC";

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) std::fprintf(stderr, "optower: warning: cannot remove %s: %s\n", path.c_str(),
                       ec.message().c_str());
}

// A fresh private folder under cache_dir for Save's local copy.
absl::StatusOr<std::string> MakeUploadDir(const std::string& cache_dir) {
  std::string tmpl = absl::StrCat(cache_dir, "/", kUploadPrefix, "XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr)
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdtemp ", tmpl));
  return tmpl;
}

absl::Status Describe(absl::Status s, absl::string_view prefix) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, ": ", s.message()));
}

}  // namespace pms
}  // namespace

PostgresModelStore::PostgresModelStore(std::unique_ptr<PgConnection> conn, std::string cache_dir,
                                       Options options, WriteGuard guard)
    : conn_(std::move(conn)),
      cache_dir_(std::move(cache_dir)),
      options_(options),
      guard_(std::move(guard)) {}

absl::StatusOr<std::unique_ptr<ModelStore>> PostgresModelStore::Open(
    const std::string& dsn, const std::string& cache_dir, const ModelStore::Options& options,
    WriteGuard guard) {
  RETURN_IF_ERROR(options.Validate());
  if (cache_dir.empty())
    return absl::InvalidArgumentError("cache_dir=\"\": the PostgreSQL model store needs a folder");
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", cache_dir, ": ", ec.message()));
  // What a crash left in this process's cache: Save's local copies and half-materialised folders
  // (never renamed into place, so never used).
  for (auto it = std::filesystem::directory_iterator(cache_dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (absl::StartsWith(name, pms::kUploadPrefix) || absl::StrContains(name, ".tmp-"))
      pms::RemoveTree(it->path().string());
  }
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn,
                   PgConnection::Connect(dsn, "optower model store"));
  RETURN_IF_ERROR(ApplyPgMigrations(*conn, "models", pms::Migrations()));
  return std::unique_ptr<ModelStore>(
      new PostgresModelStore(std::move(conn), cache_dir, options, std::move(guard)));
}

std::string PostgresModelStore::VersionDir(const std::string& version) const {
  return absl::StrCat(cache_dir_, "/", version);
}

std::string PostgresModelStore::Location() const {
  absl::MutexLock lock(&mu_);
  return absl::StrCat("PostgreSQL schema \"", conn_->schema(), "\" (cache ", cache_dir_, ")");
}

absl::StatusOr<std::string> PostgresModelStore::NextVersion() const {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(EnsurePgConnected(*conn_));
  ASSIGN_OR_RETURN(PgResult r, conn_->Query(absl::StrCat("SELECT version FROM models ",
                                                         pms::kNewestFirst, " LIMIT 1"),
                                            {}, "postgres: newest model version"));
  uint64_t last = 0;
  if (r.rows() > 0 && !absl::SimpleAtoi(r.Get(0, 0), &last))
    return absl::InternalError(absl::StrCat("version name out of range: ", r.Get(0, 0)));
  return FormatModelVersion(last + 1);
}

absl::Status PostgresModelStore::Save(const std::string& version, const TwoTowerModel& policy,
                                      const TwoTowerModel* reward_model, const ItemCatalog& items,
                                      ModelManifest manifest) {
  RETURN_IF_ERROR(SetManifestVersion(version, &manifest));
  {
    absl::MutexLock lock(&mu_);
    if (GetManifestLocked(version).ok())
      return absl::AlreadyExistsError(absl::StrCat("model version ", version, " exists in ",
                                                   "PostgreSQL schema \"", conn_->schema(), "\""));
    ASSIGN_OR_RETURN(const std::string upload, pms::MakeUploadDir(cache_dir_));
    const std::string folder = absl::StrCat(upload, "/", version);
    absl::Status s = WriteModelVersionFolder(folder, policy, reward_model, items, manifest);
    if (s.ok()) s = Upload(version, manifest, folder);
    if (s.ok()) {
      // Committed: the local copy is the version's folder; keep it as the cache entry.
      // (Best effort: without it the first Load downloads the version.)
      std::error_code ec;
      if (!pms::IsDir(VersionDir(version))) std::filesystem::rename(folder, VersionDir(version), ec);
    }
    pms::RemoveTree(upload);
    RETURN_IF_ERROR(s);
  }
  PruneAndReport();
  return absl::OkStatus();
}

absl::Status PostgresModelStore::Upload(const std::string& version, const ModelManifest& manifest,
                                        const std::string& folder) {
  ASSIGN_OR_RETURN(const std::string json, FormatManifestJson(manifest));
  const std::string what = absl::StrCat("postgres: saving model version ", version);
  return RunPgWriteTransaction(
      *conn_, pms::kLock, what,
      [&](PgConnection& c) -> absl::Status {
        RETURN_IF_ERROR(c.Query("INSERT INTO models (version, manifest_txt, manifest_json, "
                                "promoted, created_us) VALUES ($1, $2, $3, $4, $5)",
                                {PgParam::Text(version), PgParam::Text(FormatManifestText(manifest)),
                                 PgParam::Text(json), PgParam::Bool(manifest.promoted),
                                 PgParam::Int(absl::ToUnixMicros(absl::Now()))},
                                what)
                            .status());
        return UploadModelFiles(c, version, folder);
      },
      guard_);
}

absl::StatusOr<ModelManifest> PostgresModelStore::GetManifestLocked(
    const std::string& version) const {
  RETURN_IF_ERROR(CheckModelVersion(version));
  RETURN_IF_ERROR(EnsurePgConnected(*conn_));
  ASSIGN_OR_RETURN(PgResult r, conn_->Query("SELECT manifest_txt FROM models WHERE version = $1",
                                            {PgParam::Text(version)},
                                            "postgres: reading a model manifest"));
  if (r.rows() == 0)
    return absl::NotFoundError(absl::StrFormat("version=%s: no such model version in %s", version,
                                               absl::StrCat("PostgreSQL schema \"",
                                                            conn_->schema(), "\"")));
  return ParseVersionManifest(r.Get(0, 0), version,
                              absl::StrCat("manifest of model version ", version, " in PostgreSQL"));
}

absl::StatusOr<ModelManifest> PostgresModelStore::GetManifest(const std::string& version) const {
  absl::MutexLock lock(&mu_);
  return GetManifestLocked(version);
}

absl::StatusOr<std::vector<ModelManifest>> PostgresModelStore::List(
    size_t max_entries, std::vector<absl::Status>* skipped) const {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(EnsurePgConnected(*conn_));
  std::string sql = absl::StrCat("SELECT version, manifest_txt FROM models ", pms::kNewestFirst);
  if (max_entries > 0) absl::StrAppend(&sql, " LIMIT ", max_entries);
  ASSIGN_OR_RETURN(PgResult r, conn_->Query(sql, {}, "postgres: listing model versions"));
  std::vector<ModelManifest> out;
  for (int i = r.rows() - 1; i >= 0; --i) {  // oldest first
    const std::string version = r.Get(i, 0);
    absl::StatusOr<ModelManifest> m = ParseVersionManifest(
        r.Get(i, 1), version, absl::StrCat("manifest of model version ", version, " in PostgreSQL"));
    if (!m.ok()) {
      // One bad manifest must not hide the others (nor stop a restart): skip and report it.
      if (skipped != nullptr) skipped->push_back(m.status());
      continue;
    }
    out.push_back(std::move(*m));
  }
  return out;
}

absl::StatusOr<ModelFolder> PostgresModelStore::Load(const std::string& version) const {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(GetManifestLocked(version).status());
  if (!pms::IsDir(VersionDir(version))) {
    RETURN_IF_ERROR(Materialise(version));
    RemoveStaleCacheFolders();
  }
  return LoadModelFolder(VersionDir(version));
}

absl::Status PostgresModelStore::Materialise(const std::string& version) const {
  const std::string what = absl::StrCat("postgres: reading model version ", version);
  ASSIGN_OR_RETURN(auto out, AtomicDirectory::Create(VersionDir(version), AtomicDirectory::Options()));
  // One snapshot for all chunks: a concurrent Prune cannot remove files half-way.
  RETURN_IF_ERROR(conn_->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", what));
  absl::Status s = DownloadModelFiles(*conn_, version, out->path());
  conn_->Exec(s.ok() ? "COMMIT" : "ROLLBACK", what).IgnoreError();
  RETURN_IF_ERROR(pms::Describe(s, absl::StrCat("materialising into ", VersionDir(version))));
  absl::Status commit = out->Commit();
  // Another process sharing the cache may have been first: its folder is as good as ours.
  if (absl::IsAlreadyExists(commit) && pms::IsDir(VersionDir(version))) return absl::OkStatus();
  return commit;
}

void PostgresModelStore::RemoveStaleCacheFolders() const {
  absl::StatusOr<PgResult> r = conn_->Query("SELECT version FROM models", {},
                                            "postgres: listing model versions");
  if (!r.ok()) return;  // the cache is cleaned next time
  std::set<std::string> stored;
  for (int i = 0; i < r->rows(); ++i) stored.insert(r->Get(i, 0));
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(cache_dir_, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (IsModelVersion(name) && stored.count(name) == 0) pms::RemoveTree(it->path().string());
  }
}

absl::Status PostgresModelStore::UpdateManifest(const std::string& version,
                                                const std::function<void(ModelManifest&)>& edit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckModelVersion(version));
  const std::string what = absl::StrCat("postgres: updating the manifest of model version ", version);
  return RunPgWriteTransaction(
      *conn_, pms::kLock, what,
      [&](PgConnection& c) -> absl::Status {
        ASSIGN_OR_RETURN(ModelManifest m, GetManifestLocked(version));
        edit(m);
        if (m.version != version)
          return absl::InvalidArgumentError(absl::StrFormat(
              "UpdateManifest changed version %s to \"%s\"", version, m.version));
        ASSIGN_OR_RETURN(const std::string json, FormatManifestJson(m));
        const std::string text = FormatManifestText(m);
        RETURN_IF_ERROR(c.Query("UPDATE models SET manifest_txt = $2, manifest_json = $3, "
                                "promoted = $4 WHERE version = $1",
                                {PgParam::Text(version), PgParam::Text(text), PgParam::Text(json),
                                 PgParam::Bool(m.promoted)},
                                what)
                            .status());
        // The stored folder's manifest files follow (one chunk each: manifests are small).
        for (const auto& [path, data] : {std::make_pair(kManifestJsonFile, json),
                                         std::make_pair(kManifestTextFile, text)}) {
          RETURN_IF_ERROR(c.Query("UPDATE model_files SET data = $3 WHERE version = $1 AND "
                                  "path = $2 AND chunk = 0",
                                  {PgParam::Text(version), PgParam::Text(path),
                                   PgParam::Bytes(data)},
                                  what)
                              .status());
        }
        return absl::OkStatus();
      },
      guard_);
}

absl::StatusOr<std::optional<std::string>> PostgresModelStore::Current() const {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(EnsurePgConnected(*conn_));
  ASSIGN_OR_RETURN(PgResult r, conn_->Query("SELECT version FROM model_current WHERE id = 1", {},
                                            "postgres: reading CURRENT"));
  if (r.rows() == 0) return std::optional<std::string>();
  return std::optional<std::string>(r.Get(0, 0));
}

absl::Status PostgresModelStore::SetCurrent(const std::string& version) {
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckModelVersion(version));
    const std::string what = absl::StrCat("postgres: setting CURRENT to model version ", version);
    RETURN_IF_ERROR(RunPgWriteTransaction(
        *conn_, pms::kLock, what,
        [&](PgConnection& c) -> absl::Status {
          RETURN_IF_ERROR(GetManifestLocked(version).status());
          RETURN_IF_ERROR(c.Query("INSERT INTO model_current (id, version, updated_us) "
                                  "VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET "
                                  "version = EXCLUDED.version, updated_us = EXCLUDED.updated_us",
                                  {PgParam::Text(version),
                                   PgParam::Int(absl::ToUnixMicros(absl::Now()))},
                                  what)
                              .status());
          return c.Notify(kPgCurrentChannel, version);
        },
        guard_));
  }
  PruneAndReport();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PostgresModelStore::Prune() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> doomed;
  const absl::Status s = RunPgWriteTransaction(
      *conn_, pms::kLock, "postgres: model store retention",
      [&](PgConnection& c) -> absl::Status {
        doomed.clear();
        ASSIGN_OR_RETURN(PgResult all, c.Query(absl::StrCat("SELECT version, manifest_txt FROM "
                                                            "models ", pms::kNewestFirst),
                                               {}, "postgres: model store retention"));
        if (all.rows() == 0) return absl::OkStatus();
        std::vector<ModelManifest> manifests;  // oldest first; unreadable ones are never deleted
        for (int i = all.rows() - 1; i >= 0; --i) {
          absl::StatusOr<ModelManifest> m = ParseVersionManifest(all.Get(i, 1), all.Get(i, 0), "");
          if (m.ok()) manifests.push_back(std::move(*m));
        }
        ASSIGN_OR_RETURN(PgResult cur, c.Query("SELECT version FROM model_current WHERE id = 1",
                                               {}, "postgres: reading CURRENT"));
        const std::optional<std::string> current =
            cur.rows() == 0 ? std::nullopt : std::optional<std::string>(cur.Get(0, 0));
        doomed = VersionsToPrune(manifests, all.Get(0, 0), current, options_);
        for (const std::string& v : doomed) {
          RETURN_IF_ERROR(c.Query("DELETE FROM models WHERE version = $1", {PgParam::Text(v)},
                                  absl::StrCat("postgres: retention: deleting model version ", v))
                              .status());
        }
        return absl::OkStatus();
      },
      guard_);
  if (!s.ok()) return s;
  for (const std::string& v : doomed) pms::RemoveTree(VersionDir(v));  // this process's cache
  return doomed;
}

}  // namespace optower
