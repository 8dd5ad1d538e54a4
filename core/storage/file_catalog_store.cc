#include "core/storage/file_catalog_store.h"

#include <errno.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/csv_io.h"
#include "core/base/status_macros.h"
#include "core/base/test_points.h"

namespace optower {
namespace {
namespace fcs {  // named: the storage library is a unity build

constexpr char kPrefix[] = "items-";
constexpr char kSuffix[] = ".csv";
constexpr int kVersionWidth = 12;

// "items-000000000007.csv" -> 7; anything else (temporaries ".items-...tmp-...") -> nullopt.
std::optional<int64_t> VersionOf(const std::string& name) {
  if (!absl::StartsWith(name, kPrefix) || !absl::EndsWith(name, kSuffix)) return std::nullopt;
  const std::string digits =
      name.substr(sizeof(kPrefix) - 1, name.size() - (sizeof(kPrefix) - 1) - (sizeof(kSuffix) - 1));
  if (digits.size() != static_cast<size_t>(kVersionWidth)) return std::nullopt;
  for (char c : digits)
    if (c < '0' || c > '9') return std::nullopt;
  int64_t v = 0;
  if (!absl::SimpleAtoi(digits, &v)) return std::nullopt;
  return v;
}

// Stored versions, ascending, and the names of leftover temporaries.
absl::Status Scan(const std::string& dir, std::vector<int64_t>* versions,
                  std::vector<std::string>* temporaries) {
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (std::optional<int64_t> v = VersionOf(name)) {
      versions->push_back(*v);
    } else if (temporaries != nullptr && absl::StartsWith(name, ".items-")) {
      temporaries->push_back(it->path().string());
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", dir, ": ", ec.message()));
  std::sort(versions->begin(), versions->end());
  return absl::OkStatus();
}

}  // namespace fcs
}  // namespace

absl::StatusOr<std::unique_ptr<FileCatalogStore>> FileCatalogStore::Open(const std::string& data_dir) {
  struct stat st;
  if (::stat(data_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return absl::NotFoundError(absl::StrFormat("data_dir=\"%s\": no such folder", data_dir));
  std::string dir = absl::StrCat(data_dir, "/catalog");
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdir ", dir));
  std::vector<int64_t> versions;
  std::vector<std::string> temporaries;
  RETURN_IF_ERROR(fcs::Scan(dir, &versions, &temporaries));
  for (const std::string& t : temporaries) ::unlink(t.c_str());  // never renamed: never acknowledged
  return std::unique_ptr<FileCatalogStore>(new FileCatalogStore(std::move(dir)));
}

std::string FileCatalogStore::FilePath(int64_t version) const {
  return absl::StrFormat("%s/%s%0*d%s", dir_, fcs::kPrefix, fcs::kVersionWidth, version, fcs::kSuffix);
}

absl::StatusOr<std::optional<StoredCatalog>> FileCatalogStore::Load() const {
  std::vector<int64_t> versions;
  RETURN_IF_ERROR(fcs::Scan(dir_, &versions, nullptr));
  if (versions.empty()) return std::optional<StoredCatalog>();
  StoredCatalog out;
  out.version = versions.back();
  out.path = FilePath(out.version);
  absl::StatusOr<ItemCatalog> items = ReadItemsCsv(out.path);
  if (!items.ok()) return UnreadableCatalogError(out.path, items.status());
  out.items = std::move(*items);
  return std::optional<StoredCatalog>(std::move(out));
}

absl::StatusOr<std::optional<int64_t>> FileCatalogStore::LatestVersion() const {
  std::vector<int64_t> versions;
  RETURN_IF_ERROR(fcs::Scan(dir_, &versions, nullptr));
  if (versions.empty()) return std::optional<int64_t>();
  return std::optional<int64_t>(versions.back());
}

absl::Status FileCatalogStore::Save(const ItemCatalog& items, int64_t version) {
  if (version < 0)
    return absl::InvalidArgumentError(absl::StrCat("catalog version=", version, ": must be >= 0"));
  const std::string path = FilePath(version);
  CrashPoint("catalog.before_write");
  RETURN_IF_ERROR(FaultPoint("catalog.write", absl::StrCat("write ", path)));
  RETURN_IF_ERROR(WriteItemsCsv(path, items));  // atomic, fsynced, folder fsynced
  CrashPoint("catalog.after_write");
  std::vector<int64_t> versions;
  RETURN_IF_ERROR(fcs::Scan(dir_, &versions, nullptr));
  for (int64_t v : versions) {
    // The new file is durable; older ones only cost disk. A failed unlink is retried next time.
    if (v != version) ::unlink(FilePath(v).c_str());
  }
  return absl::OkStatus();
}

}  // namespace optower
