// PostgresModelStore: the model store (core/storage/model_store.h) in PostgreSQL, shared by several
// serving replicas and one trainer (docs/SCALING.md). Weights are stored in the database, not on a
// shared volume (measured in docs/BENCHMARKS.md "Model registry: PostgreSQL vs files"): one system
// to run, and a publish is one transaction with CURRENT.
//
// Tables (component "models" of ApplyPgMigrations, in the connection's schema):
//   models(version TEXT PRIMARY KEY, manifest_txt TEXT, manifest_json TEXT, promoted BOOL,
//          created_us BIGINT)                    one row per complete version
//   model_files(version, path TEXT, chunk INT, data BYTEA, PRIMARY KEY(version, path, chunk))
//                                                the version folder's files in chunks of <= 32 MiB
//                                                (core/storage/postgres_model_files.h), deleted with
//                                                their models row
//   model_current(id INT PRIMARY KEY CHECK (id = 1), version TEXT, updated_us BIGINT)  CURRENT
//
// Save writes the version folder into a temporary folder under cache_dir (the file store's writer,
// core/storage/model_version_folder.h), then inserts the models row and every file chunk in ONE
// transaction: a replica sees the complete version or none of it. After the commit the folder is
// renamed into the cache, so the trainer never downloads what it just wrote.
// Load(version) materialises the files into <cache_dir>/<version> (temporary folder, fsyncs, rename:
// core/base/atomic_file.h) unless they are there, then reads it with LoadModelFolder; a cached
// folder is used as is (versions are never reused: NextVersion only grows, the newest version is
// never pruned). Cached folders of versions the database no longer holds are removed by Load.
// SetCurrent updates model_current and sends NOTIFY optower_current (payload: the version) in the
// same transaction. Every write transaction (Save, SetCurrent, UpdateManifest, Prune) holds the
// advisory lock "models" and runs the WriteGuard last, before COMMIT (core/storage/pg_write_transaction.h).
//
// Thread safety: all methods are safe to call concurrently; they share one connection and take
// turns (a Load that downloads a model holds it for the download). `cache_dir` belongs to this
// process (Open removes temporaries left in it).
#ifndef OPTOWER_CORE_STORAGE_POSTGRES_MODEL_STORE_H_
#define OPTOWER_CORE_STORAGE_POSTGRES_MODEL_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/storage/model_store.h"
#include "core/storage/pg_connection.h"
#include "core/storage/pg_write_transaction.h"

namespace optower {

// The NOTIFY channel of SetCurrent.
inline constexpr char kPgCurrentChannel[] = "optower_current";

class PostgresModelStore : public ModelStore {
 public:
  using WriteGuard = PgWriteGuard;

  // Connects, applies the "models" migrations (FailedPrecondition when the database's schema is
  // newer than this build), creates `cache_dir` if missing and removes temporaries left in it.
  // InvalidArgument for bad options or an empty cache_dir; Unavailable when the server is down.
  static absl::StatusOr<std::unique_ptr<ModelStore>> Open(const std::string& dsn,
                                                          const std::string& cache_dir,
                                                          const ModelStore::Options& options,
                                                          WriteGuard guard = nullptr);

  absl::StatusOr<std::string> NextVersion() const override;
  absl::Status Save(const std::string& version, const TwoTowerModel& policy,
                    const TwoTowerModel* reward_model, const ItemCatalog& items,
                    ModelManifest manifest) override;
  absl::StatusOr<std::vector<ModelManifest>> List(
      size_t max_entries = 0, std::vector<absl::Status>* skipped = nullptr) const override;
  absl::StatusOr<ModelManifest> GetManifest(const std::string& version) const override;
  absl::StatusOr<ModelFolder> Load(const std::string& version) const override;
  absl::Status UpdateManifest(const std::string& version,
                              const std::function<void(ModelManifest&)>& edit) override;
  absl::StatusOr<std::optional<std::string>> Current() const override;
  absl::Status SetCurrent(const std::string& version) override;
  absl::StatusOr<std::vector<std::string>> Prune() override;

  std::string VersionDir(const std::string& version) const override;
  std::string Location() const override;
  const Options& options() const override { return options_; }

 private:
  PostgresModelStore(std::unique_ptr<PgConnection> conn, std::string cache_dir, Options options,
                     WriteGuard guard);
  absl::StatusOr<ModelManifest> GetManifestLocked(const std::string& version) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Upload(const std::string& version, const ModelManifest& manifest,
                      const std::string& folder) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Materialise(const std::string& version) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveStaleCacheFolders() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  const std::unique_ptr<PgConnection> conn_ ABSL_PT_GUARDED_BY(mu_);
  const std::string cache_dir_;
  const Options options_;
  const WriteGuard guard_;
};

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_POSTGRES_MODEL_STORE_H_
