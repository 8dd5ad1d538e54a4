#include "server/metrics_registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace optower::server {
namespace {

bool IsNameChar(char c, bool first, bool allow_colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  const bool colon = allow_colon && c == ':';
  return alpha || colon || (!first && c >= '0' && c <= '9');
}

bool IsValidName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

// `{a="x",b="y"}` (or "" without labels); `extra` is appended as one more pair (the histogram's
// le) when non-empty.
void AppendLabels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                  const std::string& extra_name, const std::string& extra_value,
                  std::string* out) {
  if (names.empty() && extra_name.empty()) return;
  out->push_back('{');
  bool first = true;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!first) out->push_back(',');
    first = false;
    absl::StrAppend(out, names[i], "=\"", EscapeMetricText(values[i], /*help=*/false), "\"");
  }
  if (!extra_name.empty()) {
    if (!first) out->push_back(',');
    absl::StrAppend(out, extra_name, "=\"", extra_value, "\"");
  }
  out->push_back('}');
}

void AppendSample(const std::string& name, const std::vector<std::string>& label_names,
                  const std::vector<std::string>& label_values, double value, std::string* out) {
  out->append(name);
  AppendLabels(label_names, label_values, "", "", out);
  absl::StrAppend(out, " ", FormatMetricValue(value), "\n");
}

void AtomicAdd(std::atomic<double>* target, double delta) {
  double current = target->load(std::memory_order_relaxed);
  while (!target->compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
  }
}

}  // namespace

std::string EscapeMetricText(const std::string& text, bool help) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        if (help) {
          out.push_back(c);
        } else {
          out += "\\\"";
        }
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Whole numbers (counts) as integers: 1000000, not 1e+06.
  if (std::fabs(value) < 1e15 && value == std::trunc(value)) {
    const std::to_chars_result r =
        std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(value));
    return std::string(buf, r.ptr);
  }
  // Shortest round-trip digits, in fixed notation unless the exponent is below -4 or large
  // (0.0001, not 1e-04: what Prometheus's own clients write for bucket bounds).
  const std::to_chars_result r =
      std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::general);
  return std::string(buf, r.ptr);
}

// ---- children ----

void Gauge::Add(double delta) { AtomicAdd(&value_, delta); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<int64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // First bound >= v; NaN goes to the overflow bucket.
  const size_t bucket =
      std::isnan(v) ? bounds_.size()
                    : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                          bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  if (!std::isnan(v)) AtomicAdd(&sum_, v);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  int64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  if (!(start > 0) || !(factor > 1) || count < 1) return out;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
}

// ---- families ----

template <typename T>
absl::StatusOr<T*> MetricFamily<T>::WithLabels(absl::Span<const std::string> label_values) {
  if (label_values.size() != label_names_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name_, ": ", label_values.size(), " label values for the ",
                     label_names_.size(), " labels (", absl::StrJoin(label_names_, ","), ")"));
  }
  std::vector<std::string> key(label_values.begin(), label_values.end());
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = children_.find(key);
    if (it != children_.end()) return it->second.get();
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<T>& slot = children_[std::move(key)];
  if (slot == nullptr) slot = make_();
  return slot.get();
}

template <typename T>
std::vector<std::pair<std::vector<std::string>, const T*>> MetricFamily<T>::Children() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::pair<std::vector<std::string>, const T*>> out;
  out.reserve(children_.size());
  for (const auto& [labels, child] : children_) out.emplace_back(labels, child.get());
  return out;
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

// ---- registry ----

struct MetricsRegistry::Entry {
  std::string name;
  std::string help;
  std::string type;  // "counter" | "gauge" | "histogram"
  std::vector<std::string> label_names;
  std::unique_ptr<CounterFamily> counter;
  std::unique_ptr<GaugeFamily> gauge;
  std::unique_ptr<HistogramFamily> histogram;
  std::function<std::vector<MetricSample>()> collect;
};

MetricsRegistry::Entry* MetricsRegistry::AppendEntry(const std::string& name,
                                                     const std::string& help, const char* type,
                                                     const std::vector<std::string>& label_names) {
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->help = help;
  e->type = type;
  e->label_names = label_names;
  entries_.push_back(std::move(e));
  return entries_.back().get();
}

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

absl::Status MetricsRegistry::CheckNew(const std::string& name,
                                       const std::vector<std::string>& label_names,
                                       bool histogram) const {
  if (!IsValidName(name, /*allow_colon=*/true)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric name '", name, "': must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& label : label_names) {
    if (!IsValidName(label, /*allow_colon=*/false) || label.rfind("__", 0) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": label name '", label,
                                                     "': must match [a-zA-Z_][a-zA-Z0-9_]* "
                                                     "without a leading __"));
    }
    if (histogram && label == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": label name 'le' is reserved for histogram buckets"));
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": label name '", label, "' appears twice"));
    }
  }
  for (const auto& e : entries_) {
    if (e->name == name) {
      return absl::AlreadyExistsError(absl::StrCat("metric '", name, "' is already registered"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CounterFamily*> MetricsRegistry::AddCounter(const std::string& name,
                                                           const std::string& help,
                                                           std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckNew(name, label_names, false); !s.ok()) return s;
  Entry* e = AppendEntry(name, help, "counter", label_names);
  e->counter.reset(new CounterFamily(name, std::move(label_names),
                                     [] { return std::make_unique<Counter>(); }));
  return e->counter.get();
}

absl::StatusOr<GaugeFamily*> MetricsRegistry::AddGauge(const std::string& name,
                                                       const std::string& help,
                                                       std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckNew(name, label_names, false); !s.ok()) return s;
  Entry* e = AppendEntry(name, help, "gauge", label_names);
  e->gauge.reset(
      new GaugeFamily(name, std::move(label_names), [] { return std::make_unique<Gauge>(); }));
  return e->gauge.get();
}

absl::StatusOr<HistogramFamily*> MetricsRegistry::AddHistogram(
    const std::string& name, const std::string& help, std::vector<std::string> label_names,
    std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckNew(name, label_names, true); !s.ok()) return s;
  if (bounds.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no bucket bounds"));
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": bounds[", i, "]=",
                                                     FormatMetricValue(bounds[i]),
                                                     ": must be finite (+Inf is implicit)"));
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": bounds[", i, "]=",
                                                     FormatMetricValue(bounds[i]),
                                                     ": must be above bounds[", i - 1,
                                                     "]=", FormatMetricValue(bounds[i - 1])));
    }
  }
  Entry* e = AppendEntry(name, help, "histogram", label_names);
  e->histogram.reset(new HistogramFamily(name, std::move(label_names), [bounds] {
    return std::make_unique<Histogram>(bounds);
  }));
  return e->histogram.get();
}

absl::Status MetricsRegistry::AddCallback(const std::string& name, const std::string& help,
                                          MetricType type, std::vector<std::string> label_names,
                                          std::function<std::vector<MetricSample>()> collect) {
  if (!collect) return absl::InvalidArgumentError(absl::StrCat(name, ": no collect function"));
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckNew(name, label_names, false); !s.ok()) return s;
  Entry* e =
      AppendEntry(name, help, type == MetricType::kCounter ? "counter" : "gauge", label_names);
  e->collect = std::move(collect);
  return absl::OkStatus();
}

std::string MetricsRegistry::Render() const {
  std::vector<const Entry*> entries;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& e : entries_) entries.push_back(e.get());  // entries are never removed
  }
  std::string out;
  for (const Entry* e : entries) {
    absl::StrAppend(&out, "# HELP ", e->name, " ", EscapeMetricText(e->help, /*help=*/true), "\n",
                    "# TYPE ", e->name, " ", e->type, "\n");
    if (e->counter != nullptr) {
      for (const auto& [labels, c] : e->counter->Children()) {
        AppendSample(e->name, e->label_names, labels, static_cast<double>(c->value()), &out);
      }
    } else if (e->gauge != nullptr) {
      for (const auto& [labels, g] : e->gauge->Children()) {
        AppendSample(e->name, e->label_names, labels, g->value(), &out);
      }
    } else if (e->histogram != nullptr) {
      const std::string bucket_name = absl::StrCat(e->name, "_bucket");
      for (const auto& [labels, h] : e->histogram->Children()) {
        const Histogram::Snapshot s = h->Read();
        for (size_t i = 0; i < s.cumulative.size(); ++i) {
          out.append(bucket_name);
          AppendLabels(e->label_names, labels, "le",
                       i < s.bounds.size() ? FormatMetricValue(s.bounds[i]) : "+Inf", &out);
          absl::StrAppend(&out, " ", s.cumulative[i], "\n");
        }
        AppendSample(absl::StrCat(e->name, "_sum"), e->label_names, labels, s.sum, &out);
        AppendSample(absl::StrCat(e->name, "_count"), e->label_names, labels,
                     static_cast<double>(s.count()), &out);
      }
    } else {
      std::vector<MetricSample> samples = e->collect();
      for (const MetricSample& sample : samples) {
        if (sample.label_values.size() != e->label_names.size()) continue;
        AppendSample(e->name, e->label_names, sample.label_values, sample.value, &out);
      }
    }
  }
  return out;
}

}  // namespace optower::server
