#include "core/storage/postgres_model_files.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {
namespace pmf {  // named: the storage library is a unity build

constexpr size_t kDefaultChunkBytes = size_t{32} << 20;
std::atomic<size_t> chunk_bytes_for_testing{0};

// A FILE* that closes itself.
struct FileCloser {
  void operator()(FILE* f) const {
    if (f != nullptr) std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

absl::Status FileError(const std::string& what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " ", path));
}

absl::Status UploadOne(PgConnection& conn, const std::string& version, const std::string& path,
                       const std::string& rel, int64_t* bytes) {
  File f(std::fopen(path.c_str(), "rb"));
  if (f == nullptr) return FileError("open", path);
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("stat ", path, ": ", ec.message()));
  const uint64_t chunk_bytes = PgModelChunkBytes();
  std::string buf;  // sized to the chunk, not to the chunk limit (most files are small)
  uint64_t done = 0;
  for (int64_t chunk = 0; chunk == 0 || done < size; ++chunk) {
    buf.resize(static_cast<size_t>(std::min(chunk_bytes, size - done)));
    if (!buf.empty() && std::fread(buf.data(), 1, buf.size(), f.get()) != buf.size())
      return std::ferror(f.get()) ? FileError("read", path)
                                  : absl::DataLossError(absl::StrCat(path, " shrank while read"));
    RETURN_IF_ERROR(conn.Query("INSERT INTO model_files (version, path, chunk, data) "
                               "VALUES ($1, $2, $3, $4)",
                               {PgParam::Text(version), PgParam::Text(rel), PgParam::Int(chunk),
                                PgParam::Bytes(buf)},
                               absl::StrCat("postgres: storing ", rel, " of model version ",
                                            version))
                        .status());
    done += buf.size();
    *bytes += static_cast<int64_t>(buf.size());
  }
  return absl::OkStatus();
}

}  // namespace pmf
}  // namespace

size_t PgModelChunkBytes() {
  const size_t t = pmf::chunk_bytes_for_testing.load();
  return t > 0 ? t : pmf::kDefaultChunkBytes;
}

void SetPgModelChunkBytesForTesting(size_t bytes) { pmf::chunk_bytes_for_testing.store(bytes); }

absl::Status UploadModelFiles(PgConnection& conn, const std::string& version,
                              const std::string& dir, int64_t* bytes) {
  std::vector<std::string> rels;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) rels.push_back(std::filesystem::relative(it->path(), dir).string());
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", dir, ": ", ec.message()));
  std::sort(rels.begin(), rels.end());
  int64_t total = 0;
  for (const std::string& rel : rels) {
    RETURN_IF_ERROR(pmf::UploadOne(conn, version, absl::StrCat(dir, "/", rel), rel, &total));
  }
  if (bytes != nullptr) *bytes = total;
  return absl::OkStatus();
}

absl::Status DownloadModelFiles(PgConnection& conn, const std::string& version,
                                const std::string& dir) {
  const std::string what = absl::StrCat("postgres: reading model version ", version);
  ASSIGN_OR_RETURN(PgResult files,
                   conn.Query("SELECT path, count(*) FROM model_files WHERE version = $1 "
                              "GROUP BY path ORDER BY path",
                              {PgParam::Text(version)}, what));
  if (files.rows() == 0)
    return absl::NotFoundError(absl::StrCat("model version ", version, " has no files stored"));
  for (int i = 0; i < files.rows(); ++i) {
    const std::string rel = files.Get(i, 0);
    if (rel.empty() || rel.front() == '/' || rel.find("..") != std::string::npos)
      return absl::DataLossError(absl::StrFormat("%s: file path \"%s\" is not relative", what, rel));
    const std::filesystem::path path = std::filesystem::path(dir) / rel;
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return absl::InternalError(absl::StrCat("mkdir ", path.parent_path().string(), ": ", ec.message()));
    pmf::File f(std::fopen(path.c_str(), "wb"));
    if (f == nullptr) return pmf::FileError("create", path.string());
    const int64_t chunks = files.GetInt(i, 1);
    for (int64_t c = 0; c < chunks; ++c) {
      ASSIGN_OR_RETURN(PgResult data,
                       conn.Query("SELECT data FROM model_files WHERE version = $1 AND path = $2 "
                                  "AND chunk = $3",
                                  {PgParam::Text(version), PgParam::Text(rel), PgParam::Int(c)},
                                  what, /*binary_results=*/true));
      if (data.rows() != 1)
        return absl::DataLossError(absl::StrFormat("%s: %s lacks chunk %d", what, rel, c));
      const std::string bytes = data.Get(0, 0);
      if (std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size())
        return pmf::FileError("write", path.string());
    }
    if (std::fclose(f.release()) != 0) return pmf::FileError("close", path.string());
  }
  return absl::OkStatus();
}

}  // namespace optower
