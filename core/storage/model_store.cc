#include "core/storage/model_store.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/base/json_writer.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

constexpr char kTextHeader[] = "# optower model manifest v1";
constexpr int kVersionWidth = 6;

// ---- manifest.txt: `key=value` lines; values escape '\\', '\n' and '\r'. ----

std::string Escape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out;
}

std::string Unescape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char n = s[++i];
      out += n == 'n' ? '\n' : n == 'r' ? '\r' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Doubles round-trip exactly with %.17g; SimpleAtod reads inf/nan back.
std::string D(double v) { return absl::StrFormat("%.17g", v); }

class TextWriter {
 public:
  void Put(absl::string_view key, absl::string_view value) {
    absl::StrAppend(&out_, key, "=", Escape(value), "\n");
  }
  void Put(absl::string_view key, const std::string& value) { Put(key, absl::string_view(value)); }
  void Put(absl::string_view key, const char* value) { Put(key, absl::string_view(value)); }
  void Put(absl::string_view key, double value) { Put(key, D(value)); }
  void Put(absl::string_view key, int64_t value) { Put(key, absl::StrCat(value)); }
  void Put(absl::string_view key, int value) { Put(key, absl::StrCat(value)); }
  void Put(absl::string_view key, bool value) { Put(key, value ? "true" : "false"); }
  void Estimate(const std::string& prefix, const OpeEstimate& e) {
    Put(prefix + ".estimator", e.estimator);
    Put(prefix + ".value", e.value);
    Put(prefix + ".std_error", e.std_error);
    Put(prefix + ".ci_low", e.ci_low);
    Put(prefix + ".ci_high", e.ci_high);
    Put(prefix + ".n", e.n);
    Put(prefix + ".max_weight", e.max_weight);
    Put(prefix + ".effective_sample_size", e.effective_sample_size);
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class TextReader {
 public:
  explicit TextReader(std::map<std::string, std::string> kv) : kv_(std::move(kv)) {}
  bool Has(const std::string& key) const { return kv_.count(key) > 0; }
  absl::Status Get(const std::string& key, std::string* out) const {
    auto it = kv_.find(key);
    if (it != kv_.end()) *out = it->second;
    return absl::OkStatus();
  }
  absl::Status Get(const std::string& key, double* out) const {
    auto it = kv_.find(key);
    if (it == kv_.end()) return absl::OkStatus();
    if (!absl::SimpleAtod(it->second, out))
      return absl::DataLossError(absl::StrFormat("%s=\"%s\": not a number", key, it->second));
    return absl::OkStatus();
  }
  absl::Status Get(const std::string& key, int64_t* out) const {
    auto it = kv_.find(key);
    if (it == kv_.end()) return absl::OkStatus();
    if (!absl::SimpleAtoi(it->second, out))
      return absl::DataLossError(absl::StrFormat("%s=\"%s\": not an integer", key, it->second));
    return absl::OkStatus();
  }
  absl::Status Get(const std::string& key, int* out) const {
    int64_t v = *out;
    RETURN_IF_ERROR(Get(key, &v));
    *out = static_cast<int>(v);
    return absl::OkStatus();
  }
  absl::Status Get(const std::string& key, bool* out) const {
    auto it = kv_.find(key);
    if (it == kv_.end()) return absl::OkStatus();
    if (it->second != "true" && it->second != "false")
      return absl::DataLossError(absl::StrFormat("%s=\"%s\": not true/false", key, it->second));
    *out = it->second == "true";
    return absl::OkStatus();
  }
  absl::Status Estimate(const std::string& prefix, OpeEstimate* e) const {
    RETURN_IF_ERROR(Get(prefix + ".estimator", &e->estimator));
    RETURN_IF_ERROR(Get(prefix + ".value", &e->value));
    RETURN_IF_ERROR(Get(prefix + ".std_error", &e->std_error));
    RETURN_IF_ERROR(Get(prefix + ".ci_low", &e->ci_low));
    RETURN_IF_ERROR(Get(prefix + ".ci_high", &e->ci_high));
    RETURN_IF_ERROR(Get(prefix + ".n", &e->n));
    RETURN_IF_ERROR(Get(prefix + ".max_weight", &e->max_weight));
    return Get(prefix + ".effective_sample_size", &e->effective_sample_size);
  }

 private:
  std::map<std::string, std::string> kv_;
};

void JsonEstimate(JsonWriter& w, std::string_view key, const OpeEstimate& e) {
  w.Key(key).BeginObject();
  w.Field("estimator", e.estimator).Field("value", e.value).Field("std_error", e.std_error);
  w.Field("ci_low", e.ci_low).Field("ci_high", e.ci_high).Field("n", e.n);
  w.Field("max_weight", e.max_weight).Field("effective_sample_size", e.effective_sample_size);
  w.EndObject();
}

}  // namespace

bool IsModelVersion(const std::string& name) {
  if (name.size() < static_cast<size_t>(kVersionWidth) || name.size() > 18) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

absl::StatusOr<std::string> FormatManifestJson(const ModelManifest& m) {
  JsonWriter w;
  w.BeginObject();
  w.Field("version", m.version).Field("parent_version", m.parent_version);
  w.Field("created_time_us", m.created_time_us).Field("job_id", m.job_id);
  w.Field("data_watermark", m.data_watermark).Field("objective", m.objective);
  w.Field("promoted", m.promoted).Field("decision", m.decision).Field("reason", m.reason);
  w.Key("data").BeginObject();
  w.Field("n_events", m.n_events).Field("n_train", m.n_train).Field("n_holdout", m.n_holdout);
  w.EndObject();
  const PolicyTrainMetrics& t = m.metrics;
  w.Key("metrics").BeginObject();
  w.Field("objective", t.objective).Field("n_train", t.n_train);
  w.Field("n_validation", t.n_validation).Field("n_items", t.n_items);
  w.Field("epochs_run", t.epochs_run).Field("best_epoch", t.best_epoch);
  w.Field("reward_model_seconds", t.reward_model_seconds);
  w.Field("policy_seconds", t.policy_seconds).Field("total_seconds", t.total_seconds);
  w.Field("validation_dr_initial", t.validation_dr_initial);
  w.Field("validation_dr_best", t.validation_dr_best);
  w.Field("logging_policy_value", t.logging_policy_value).Field("threads", t.threads);
  w.Key("history").BeginArray();
  for (const EpochRecord& e : t.history) {
    w.BeginObject().Field("epoch", e.epoch).Field("train_loss", e.train_loss);
    w.Field("validation_dr", e.validation_dr).EndObject();
  }
  w.EndArray();
  w.EndObject();
  if (m.ope.has_value()) {
    w.Key("ope").BeginObject();
    w.Field("confidence", m.ope->confidence).Field("tolerance", m.ope->tolerance);
    JsonEstimate(w, "old_policy", m.ope->old_policy);
    JsonEstimate(w, "new_policy", m.ope->new_policy);
    JsonEstimate(w, "difference", m.ope->difference);
    w.EndObject();
  } else {
    w.Key("ope").Null();
  }
  if (m.index_recall.has_value()) {
    w.Field("index_recall", *m.index_recall);
  } else {
    w.Key("index_recall").Null();
  }
  w.EndObject();
  return w.Finish();
}

std::string FormatManifestText(const ModelManifest& m) {
  TextWriter w;
  w.out() = absl::StrCat(kTextHeader, "\n");
  w.Put("version", m.version);
  w.Put("parent_version", m.parent_version);
  w.Put("created_time_us", m.created_time_us);
  w.Put("job_id", m.job_id);
  w.Put("data_watermark", m.data_watermark);
  w.Put("objective", m.objective);
  w.Put("n_events", m.n_events);
  w.Put("n_train", m.n_train);
  w.Put("n_holdout", m.n_holdout);
  const PolicyTrainMetrics& t = m.metrics;
  w.Put("metrics.objective", t.objective);
  w.Put("metrics.n_train", t.n_train);
  w.Put("metrics.n_validation", t.n_validation);
  w.Put("metrics.n_items", t.n_items);
  w.Put("metrics.epochs_run", t.epochs_run);
  w.Put("metrics.best_epoch", t.best_epoch);
  w.Put("metrics.reward_model_seconds", t.reward_model_seconds);
  w.Put("metrics.policy_seconds", t.policy_seconds);
  w.Put("metrics.total_seconds", t.total_seconds);
  w.Put("metrics.validation_dr_initial", t.validation_dr_initial);
  w.Put("metrics.validation_dr_best", t.validation_dr_best);
  w.Put("metrics.logging_policy_value", t.logging_policy_value);
  w.Put("metrics.threads", t.threads);
  w.Put("ope", m.ope.has_value());
  if (m.ope.has_value()) {
    w.Put("ope.confidence", m.ope->confidence);
    w.Put("ope.tolerance", m.ope->tolerance);
    w.Estimate("ope.old", m.ope->old_policy);
    w.Estimate("ope.new", m.ope->new_policy);
    w.Estimate("ope.diff", m.ope->difference);
  }
  w.Put("promoted", m.promoted);
  w.Put("decision", m.decision);
  w.Put("reason", m.reason);
  if (m.index_recall.has_value()) w.Put("index_recall", *m.index_recall);
  return std::move(w.out());
}

absl::StatusOr<ModelManifest> ParseManifestText(const std::string& text) {
  std::map<std::string, std::string> kv;
  int line_no = 0;
  bool header = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line.front() == '#') {
      header |= line == kTextHeader;
      continue;
    }
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0)
      return absl::DataLossError(
          absl::StrFormat("line %d \"%s\": expected key=value", line_no, line));
    kv[std::string(line.substr(0, eq))] = Unescape(line.substr(eq + 1));
  }
  if (!header)
    return absl::DataLossError(absl::StrCat("missing header line \"", kTextHeader, "\""));
  if (kv.count("version") == 0) return absl::DataLossError("missing key \"version\"");
  const TextReader r(std::move(kv));
  ModelManifest m;
  RETURN_IF_ERROR(r.Get("version", &m.version));
  RETURN_IF_ERROR(r.Get("parent_version", &m.parent_version));
  RETURN_IF_ERROR(r.Get("created_time_us", &m.created_time_us));
  RETURN_IF_ERROR(r.Get("job_id", &m.job_id));
  RETURN_IF_ERROR(r.Get("data_watermark", &m.data_watermark));
  RETURN_IF_ERROR(r.Get("objective", &m.objective));
  RETURN_IF_ERROR(r.Get("n_events", &m.n_events));
  RETURN_IF_ERROR(r.Get("n_train", &m.n_train));
  RETURN_IF_ERROR(r.Get("n_holdout", &m.n_holdout));
  PolicyTrainMetrics& t = m.metrics;
  RETURN_IF_ERROR(r.Get("metrics.objective", &t.objective));
  RETURN_IF_ERROR(r.Get("metrics.n_train", &t.n_train));
  RETURN_IF_ERROR(r.Get("metrics.n_validation", &t.n_validation));
  RETURN_IF_ERROR(r.Get("metrics.n_items", &t.n_items));
  RETURN_IF_ERROR(r.Get("metrics.epochs_run", &t.epochs_run));
  RETURN_IF_ERROR(r.Get("metrics.best_epoch", &t.best_epoch));
  RETURN_IF_ERROR(r.Get("metrics.reward_model_seconds", &t.reward_model_seconds));
  RETURN_IF_ERROR(r.Get("metrics.policy_seconds", &t.policy_seconds));
  RETURN_IF_ERROR(r.Get("metrics.total_seconds", &t.total_seconds));
  RETURN_IF_ERROR(r.Get("metrics.validation_dr_initial", &t.validation_dr_initial));
  RETURN_IF_ERROR(r.Get("metrics.validation_dr_best", &t.validation_dr_best));
  RETURN_IF_ERROR(r.Get("metrics.logging_policy_value", &t.logging_policy_value));
  RETURN_IF_ERROR(r.Get("metrics.threads", &t.threads));
  bool has_ope = false;
  RETURN_IF_ERROR(r.Get("ope", &has_ope));
  if (has_ope) {
    OpeComparison c;
    RETURN_IF_ERROR(r.Get("ope.confidence", &c.confidence));
    RETURN_IF_ERROR(r.Get("ope.tolerance", &c.tolerance));
    RETURN_IF_ERROR(r.Estimate("ope.old", &c.old_policy));
    RETURN_IF_ERROR(r.Estimate("ope.new", &c.new_policy));
    RETURN_IF_ERROR(r.Estimate("ope.diff", &c.difference));
    m.ope = c;
  }
  RETURN_IF_ERROR(r.Get("promoted", &m.promoted));
  RETURN_IF_ERROR(r.Get("decision", &m.decision));
  RETURN_IF_ERROR(r.Get("reason", &m.reason));
  if (r.Has("index_recall")) {
    double recall = 0;
    RETURN_IF_ERROR(r.Get("index_recall", &recall));
    m.index_recall = recall;
  }
  return m;
}

// ---- ModelStore: what both backends share ----

absl::Status CheckModelVersion(const std::string& version) {
  if (!IsModelVersion(version))
    return absl::InvalidArgumentError(absl::StrFormat(
        "version=\"%s\": a version is >= %d decimal digits, e.g. \"000001\"", version,
        kVersionWidth));
  return absl::OkStatus();
}

// Leading zeros are always padded to 6, and longer names only appear past 999999.
bool ModelVersionLess(const std::string& a, const std::string& b) {
  absl::string_view x(a), y(b);
  while (x.size() > 1 && x.front() == '0') x.remove_prefix(1);
  while (y.size() > 1 && y.front() == '0') y.remove_prefix(1);
  if (x.size() != y.size()) return x.size() < y.size();
  return x < y;
}

std::string FormatModelVersion(uint64_t n) { return absl::StrFormat("%0*d", kVersionWidth, n); }

std::vector<std::string> VersionsToPrune(const std::vector<ModelManifest>& manifests,
                                         const std::string& newest,
                                         const std::optional<std::string>& current,
                                         const ModelStore::Options& options) {
  int promoted_kept = 0, others_kept = 0;
  std::vector<std::string> doomed;
  for (auto it = manifests.rbegin(); it != manifests.rend(); ++it) {  // newest first
    const std::string& v = it->version;
    if (v == newest || (current.has_value() && v == *current)) continue;
    int& kept = it->promoted ? promoted_kept : others_kept;
    const int limit = it->promoted ? options.keep_promoted : options.keep_rejected;
    if (kept < limit) {
      ++kept;
    } else {
      doomed.push_back(v);
    }
  }
  return doomed;
}

absl::StatusOr<std::optional<ModelManifest>> ModelStore::LatestPromoted() const {
  ASSIGN_OR_RETURN(std::vector<ModelManifest> all, List());
  for (auto it = all.rbegin(); it != all.rend(); ++it)
    if (it->promoted) return std::optional<ModelManifest>(std::move(*it));
  return std::optional<ModelManifest>();
}

absl::StatusOr<std::optional<std::string>> ModelStore::ServingVersion() const {
  ASSIGN_OR_RETURN(std::optional<std::string> current, Current());
  if (current.has_value()) return current;
  ASSIGN_OR_RETURN(std::optional<ModelManifest> latest, LatestPromoted());
  if (latest.has_value()) return std::optional<std::string>(latest->version);
  return std::optional<std::string>();
}

void ModelStore::PruneAndReport() {
  absl::StatusOr<std::vector<std::string>> pruned = Prune();
  if (!pruned.ok()) {
    std::fprintf(stderr, "optower: warning: model store retention: %s\n",
                 std::string(pruned.status().message()).c_str());
  }
}

}  // namespace optower
