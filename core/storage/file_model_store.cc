#include "core/storage/file_model_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/atomic_file.h"
#include "core/base/status_macros.h"
#include "core/base/test_points.h"
#include "core/storage/model_version_folder.h"

namespace optower {
namespace {
namespace fms {  // named: the storage library is a unity build

constexpr char kCurrent[] = "CURRENT";
constexpr char kTrashPrefix[] = ".trash-";

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::Status ErrnoStatus(int err, const std::string& what, const std::string& path) {
  const std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT: return absl::NotFoundError(msg);
    case EACCES:
    case EPERM: return absl::PermissionDeniedError(msg);
    case EEXIST: return absl::AlreadyExistsError(msg);
    default: return absl::InternalError(msg);
  }
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus(errno, "open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("read ", path, " failed"));
  return ss.str();
}

}  // namespace fms
}  // namespace

absl::StatusOr<std::unique_ptr<FileModelStore>> FileModelStore::Open(const std::string& root,
                                                              const Options& options) {
  if (root.empty()) return absl::InvalidArgumentError("root=\"\": the model store needs a folder");
  RETURN_IF_ERROR(options.Validate());
  if (!fms::IsDir(root))
    return absl::NotFoundError(absl::StrFormat("root=\"%s\": no such folder", root));
  std::string models = absl::StrCat(root, "/models");
  if (!fms::IsDir(models) && ::mkdir(models.c_str(), 0777) != 0 && errno != EEXIST)
    return fms::ErrnoStatus(errno, "mkdir", models);
  // What a crash left: a version folder still under its temporary name (never renamed into place,
  // so never visible) and a pruned version renamed to its trash name. One process owns the root.
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(models, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const size_t tmp = name.find(".tmp-");
    const bool leftover = absl::StartsWith(name, fms::kTrashPrefix) ||
                          absl::StartsWith(name, absl::StrCat(".", fms::kCurrent, ".tmp-")) ||
                          (tmp != std::string::npos && IsModelVersion(name.substr(0, tmp)));
    if (!leftover) continue;
    std::error_code rm;
    std::filesystem::remove_all(it->path(), rm);
    if (rm) std::fprintf(stderr, "optower: warning: cannot remove leftover %s: %s\n",
                         it->path().c_str(), rm.message().c_str());
  }
  return std::unique_ptr<FileModelStore>(new FileModelStore(std::move(models), options));
}

std::string FileModelStore::VersionDir(const std::string& version) const {
  return absl::StrCat(models_dir_, "/", version);
}

absl::StatusOr<std::vector<std::string>> FileModelStore::VersionNames() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(models_dir_, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (IsModelVersion(name)) names.push_back(std::move(name));
  }
  if (ec)
    return absl::InternalError(absl::StrCat("listing ", models_dir_, ": ", ec.message()));
  std::sort(names.begin(), names.end(), ModelVersionLess);
  return names;
}

absl::StatusOr<std::string> FileModelStore::NextVersion() const {
  ASSIGN_OR_RETURN(std::vector<std::string> names, VersionNames());
  uint64_t last = 0;
  if (!names.empty() && !absl::SimpleAtoi(names.back(), &last))
    return absl::InternalError(absl::StrCat("version name out of range: ", names.back()));
  return FormatModelVersion(last + 1);
}

absl::Status FileModelStore::Save(const std::string& version, const TwoTowerModel& policy,
                              const TwoTowerModel* reward_model, const ItemCatalog& items,
                              ModelManifest manifest) {
  RETURN_IF_ERROR(SetManifestVersion(version, &manifest));
  RETURN_IF_ERROR(WriteModelVersionFolder(VersionDir(version), policy, reward_model, items, manifest));
  PruneAndReport();
  return absl::OkStatus();
}

absl::StatusOr<ModelManifest> FileModelStore::ReadManifest(const std::string& version) const {
  const std::string path = absl::StrCat(VersionDir(version), "/", kManifestTextFile);
  ASSIGN_OR_RETURN(std::string text, fms::ReadWholeFile(path));
  return ParseVersionManifest(text, version, path);
}

absl::StatusOr<std::vector<ModelManifest>> FileModelStore::List(
    size_t max_entries, std::vector<absl::Status>* skipped) const {
  ASSIGN_OR_RETURN(std::vector<std::string> names, VersionNames());
  if (max_entries > 0 && names.size() > max_entries)
    names.erase(names.begin(), names.end() - static_cast<ptrdiff_t>(max_entries));
  std::vector<ModelManifest> out;
  for (const std::string& v : names) {
    if (!fms::IsFile(absl::StrCat(VersionDir(v), "/", kManifestTextFile))) continue;  // not ours / partial
    absl::StatusOr<ModelManifest> m = ReadManifest(v);
    if (!m.ok()) {
      // One bad manifest must not hide the others (nor stop a restart): skip and report it.
      if (skipped != nullptr) skipped->push_back(m.status());
      continue;
    }
    out.push_back(std::move(*m));
  }
  return out;
}

absl::StatusOr<ModelManifest> FileModelStore::GetManifest(const std::string& version) const {
  RETURN_IF_ERROR(CheckModelVersion(version));
  if (!fms::IsFile(absl::StrCat(VersionDir(version), "/", kManifestTextFile)))
    return absl::NotFoundError(absl::StrFormat("version=%s: no such model version in %s",
                                               version, models_dir_));
  return ReadManifest(version);
}

absl::StatusOr<ModelFolder> FileModelStore::Load(const std::string& version) const {
  RETURN_IF_ERROR(GetManifest(version).status());
  return LoadModelFolder(VersionDir(version));
}

absl::Status FileModelStore::UpdateManifest(const std::string& version,
                                        const std::function<void(ModelManifest&)>& edit) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(ModelManifest m, GetManifest(version));
  edit(m);
  if (m.version != version)
    return absl::InvalidArgumentError(absl::StrFormat(
        "UpdateManifest changed version %s to \"%s\"", version, m.version));
  ASSIGN_OR_RETURN(std::string json, FormatManifestJson(m));
  const std::string dir = VersionDir(version);
  RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(dir, "/", kManifestJsonFile), json));
  return WriteFileAtomically(absl::StrCat(dir, "/", kManifestTextFile), FormatManifestText(m));
}

absl::StatusOr<std::optional<std::string>> FileModelStore::Current() const {
  absl::MutexLock lock(&mu_);
  return CurrentLocked();
}

absl::StatusOr<std::optional<std::string>> FileModelStore::CurrentLocked() const {
  const std::string path = absl::StrCat(models_dir_, "/", fms::kCurrent);
  if (!fms::IsFile(path)) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string text, fms::ReadWholeFile(path));
  std::string version(absl::StripAsciiWhitespace(text));
  if (!IsModelVersion(version) || !fms::IsFile(absl::StrCat(VersionDir(version), "/", kManifestTextFile)))
    return absl::DataLossError(absl::StrFormat(
        "%s names \"%s\", which is not a complete model version", path, version));
  return std::optional<std::string>(version);
}

absl::Status FileModelStore::SetCurrent(const std::string& version) {
  RETURN_IF_ERROR(GetManifest(version).status());
  {
    absl::MutexLock lock(&mu_);
    CrashPoint("current.before_write");
    RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(models_dir_, "/", fms::kCurrent), version + "\n"));
    CrashPoint("current.after_write");
  }
  PruneAndReport();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FileModelStore::Prune() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(const std::vector<std::string> names, VersionNames());
  if (names.empty()) return std::vector<std::string>();
  // A CURRENT that cannot be read protects nothing by name, but then nothing is deleted either:
  // the operator has to look first.
  ASSIGN_OR_RETURN(const std::optional<std::string> current, CurrentLocked());
  std::vector<ModelManifest> manifests;
  for (const std::string& v : names) {
    if (!fms::IsFile(absl::StrCat(VersionDir(v), "/", kManifestTextFile))) continue;  // not a version
    absl::StatusOr<ModelManifest> m = ReadManifest(v);
    if (m.ok()) manifests.push_back(std::move(*m));  // never delete what we cannot read
  }
  const std::vector<std::string> doomed =
      VersionsToPrune(manifests, names.back(), current, options_);
  std::vector<std::string> deleted;
  for (const std::string& v : doomed) {
    const std::string trash = absl::StrCat(models_dir_, "/", fms::kTrashPrefix, v);
    if (::rename(VersionDir(v).c_str(), trash.c_str()) != 0)
      return fms::ErrnoStatus(errno, absl::StrCat("retention: rename of version ", v, " to"), trash);
    // The version is gone from List() from here on; what remains is freeing the space.
    CrashPoint("prune.after_rename");
    std::error_code ec;
    std::filesystem::remove_all(trash, ec);
    if (ec)
      return absl::InternalError(
          absl::StrCat("retention: removing ", trash, " (version ", v, "): ", ec.message()));
    deleted.push_back(v);
  }
  return deleted;
}

}  // namespace optower
