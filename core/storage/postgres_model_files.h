// The files of one model version in PostgreSQL (table model_files, core/storage/postgres_model_store.h):
// each file of the version folder (policy/config.txt, policy/weights.pt, reward_model/...,
// items.csv, manifest.json, manifest.txt) as rows (version, path, chunk, data) of at most
// PgModelChunkBytes() bytes each, chunk 0, 1, ... in file order. An empty file is one empty chunk.
//
// Upload and download stream one chunk at a time, so memory stays at one chunk whatever the model's
// size. Both run on the caller's connection inside the caller's transaction.
#ifndef OPTOWER_CORE_STORAGE_POSTGRES_MODEL_FILES_H_
#define OPTOWER_CORE_STORAGE_POSTGRES_MODEL_FILES_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "core/storage/pg_connection.h"

namespace optower {

// 32 MiB unless a test set another size.
size_t PgModelChunkBytes();
// Test-only: the chunk size for uploads from now on (> 0); 0 restores 32 MiB.
void SetPgModelChunkBytesForTesting(size_t bytes);

// Inserts every regular file under `dir` (paths relative to it, '/'-separated) as `version`'s
// rows. Returns the bytes uploaded in *bytes when given.
absl::Status UploadModelFiles(PgConnection& conn, const std::string& version,
                              const std::string& dir, int64_t* bytes = nullptr);

// Writes `version`'s files into the existing empty folder `dir` (creating subfolders), chunk by
// chunk, without fsyncs (the caller commits the folder atomically). NotFound when the version has
// no files.
absl::Status DownloadModelFiles(PgConnection& conn, const std::string& version,
                                const std::string& dir);

}  // namespace optower

#endif  // OPTOWER_CORE_STORAGE_POSTGRES_MODEL_FILES_H_
