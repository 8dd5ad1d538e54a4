#include "core/base/categorical.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/base/status_macros.h"

namespace optower {
namespace {

uint64_t Fnv1a64(absl::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

}  // namespace

std::string CategoricalFieldNames(const std::vector<CategoricalField>& fields) {
  if (fields.empty()) return "none";
  return absl::StrJoin(fields, ", ", [](std::string* out, const CategoricalField& f) {
    out->append(f.name);
  });
}

int64_t DefaultCategoricalBuckets(int64_t distinct_ids) {
  int64_t buckets = 16;
  while (buckets < 4 * distinct_ids && buckets < (int64_t{1} << 20)) buckets *= 2;
  return buckets;
}

bool operator==(const CategoricalField& a, const CategoricalField& b) {
  return a.name == b.name && a.buckets == b.buckets && a.width == b.width &&
         a.max_ids == b.max_ids;
}

absl::Status ValidateCategoricalName(absl::string_view name, absl::string_view what) {
  if (name.empty() || name.size() > kMaxCategoricalNameBytes ||
      !std::all_of(name.begin(), name.end(), NameChar)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "='", name.substr(0, 80), "': a field name is 1..", kMaxCategoricalNameBytes,
        " characters of [A-Za-z0-9_.-]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCategoricalFields(const std::vector<CategoricalField>& fields,
                                       absl::string_view what) {
  if (static_cast<int64_t>(fields.size()) > kMaxCategoricalFields)
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", fields.size(),
                                                   " fields, at most ", kMaxCategoricalFields));
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < fields.size(); ++i) {
    const CategoricalField& f = fields[i];
    const std::string at = absl::StrCat(what, "[", i, "]");
    RETURN_IF_ERROR(ValidateCategoricalName(f.name, absl::StrCat(at, ".name")));
    if (!seen.insert(f.name).second)
      return absl::InvalidArgumentError(absl::StrCat(at, ".name='", f.name, "': repeated"));
    auto range = [&](const char* key, int64_t v, int64_t hi) -> absl::Status {
      if (v >= 1 && v <= hi) return absl::OkStatus();
      return absl::InvalidArgumentError(absl::StrCat(at, " '", f.name, "': ", key, "=", v,
                                                     ": must be in [1, ", hi, "]"));
    };
    RETURN_IF_ERROR(range("buckets", f.buckets, kMaxCategoricalBuckets));
    RETURN_IF_ERROR(range("width", f.width, kMaxCategoricalWidth));
    RETURN_IF_ERROR(range("max_ids", f.max_ids, kMaxCategoricalIdsPerField));
  }
  return absl::OkStatus();
}

std::string CategoricalFieldToText(const CategoricalField& f) {
  return absl::StrCat(f.name, ":", f.buckets, ":", f.width, ":", f.max_ids);
}

absl::StatusOr<CategoricalField> CategoricalFieldFromText(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  CategoricalField f;
  auto bad = [&](const char* what) {
    return absl::InvalidArgumentError(absl::StrCat(
        "categorical field '", text.substr(0, 120), "': ", what,
        " (expected name[:buckets[:width[:max_ids]]])"));
  };
  if (parts.size() > 4) return bad("too many ':'");
  f.name = std::string(parts[0]);
  int64_t* numbers[] = {&f.buckets, &f.width, &f.max_ids};
  for (size_t i = 1; i < parts.size(); ++i) {
    if (!absl::SimpleAtoi(parts[i], numbers[i - 1])) return bad("not an integer");
  }
  RETURN_IF_ERROR(ValidateCategoricalFields({f}, "categorical field"));
  return f;
}

int64_t CategoricalSlotCount(const std::vector<CategoricalField>& fields) {
  int64_t n = 0;
  for (const CategoricalField& f : fields) n += f.max_ids;
  return n;
}

std::vector<CategoricalField> DeriveCategoricalFields(const CategoricalColumns& cols,
                                                      const std::vector<CategoricalField>& given,
                                                      int64_t width) {
  std::vector<CategoricalField> out = given;
  for (int64_t c = 0; c < cols.num_fields(); ++c) {
    const std::string& name = cols.fields()[c];
    if (std::any_of(given.begin(), given.end(),
                    [&](const CategoricalField& f) { return f.name == name; }))
      continue;
    absl::flat_hash_set<int64_t> distinct;
    int64_t most = 1;
    for (int64_t r = 0; r < cols.rows(); ++r) {
      absl::Span<const int64_t> ids = cols.ids(r, c);
      distinct.insert(ids.begin(), ids.end());
      most = std::max<int64_t>(most, static_cast<int64_t>(ids.size()));
    }
    CategoricalField f;
    f.name = name;
    f.buckets = DefaultCategoricalBuckets(static_cast<int64_t>(distinct.size()));
    f.width = width;
    f.max_ids = std::min(most, kMaxCategoricalIdsPerField);
    out.push_back(f);
  }
  return out;
}

int64_t CategoricalIdFromText(absl::string_view text) {
  int64_t id;
  if (absl::SimpleAtoi(text, &id)) return id;
  return static_cast<int64_t>(Fnv1a64(text));
}

int64_t HashBucket(absl::string_view field_name, int64_t id, int64_t buckets) {
  const uint64_t h = SplitMix64(static_cast<uint64_t>(id) ^ Fnv1a64(field_name));
  return static_cast<int64_t>(h % static_cast<uint64_t>(buckets));
}

int64_t CategoricalColumns::FieldIndex(absl::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i)
    if (fields_[i] == name) return static_cast<int64_t>(i);
  return -1;
}

void CategoricalColumns::AppendRow(const CategoricalColumns& from, int64_t row) {
  for (int64_t f = 0; f < from.num_fields(); ++f) AddCell(from.ids(row, f));
}

absl::Status CategoricalColumns::AppendFeatures(absl::Span<const CategoricalFeature> features) {
  std::vector<int64_t> cell_of(fields_.size(), -1);
  for (size_t i = 0; i < features.size(); ++i) {
    const int64_t f = FieldIndex(features[i].name);
    if (f < 0)
      return absl::InvalidArgumentError(absl::StrCat(
          "categorical[", i, "].name='", features[i].name.substr(0, 80),
          "': not one of the fields (", absl::StrJoin(fields_, ", "), ")"));
    if (cell_of[f] >= 0)
      return absl::InvalidArgumentError(absl::StrCat("categorical[", i, "].name='",
                                                     features[i].name, "': repeated"));
    cell_of[f] = static_cast<int64_t>(i);
  }
  for (size_t f = 0; f < fields_.size(); ++f) {
    if (cell_of[f] < 0) {
      AddCell({});
    } else {
      AddCell(features[cell_of[f]].ids);
    }
  }
  return absl::OkStatus();
}

std::vector<CategoricalFeature> CategoricalColumns::RowFeatures(int64_t row) const {
  std::vector<CategoricalFeature> out(fields_.size());
  for (int64_t f = 0; f < num_fields(); ++f) {
    out[f].name = fields_[f];
    absl::Span<const int64_t> v = ids(row, f);
    out[f].ids.assign(v.begin(), v.end());
  }
  return out;
}

void CategoricalColumns::Truncate(int64_t n) {
  if (n >= rows()) return;
  offsets_.resize(static_cast<size_t>(n * num_fields() + 1));
  values_.resize(static_cast<size_t>(offsets_.back()));
}

void CategoricalColumns::Reserve(int64_t rows, int64_t values) {
  offsets_.reserve(static_cast<size_t>(rows * num_fields() + 1));
  values_.reserve(static_cast<size_t>(values));
}

bool operator==(const CategoricalColumns& a, const CategoricalColumns& b) {
  if (a.fields() != b.fields() || a.rows() != b.rows()) return false;
  for (int64_t r = 0; r < a.rows(); ++r)
    for (int64_t f = 0; f < a.num_fields(); ++f) {
      absl::Span<const int64_t> x = a.ids(r, f), y = b.ids(r, f);
      if (!std::equal(x.begin(), x.end(), y.begin(), y.end())) return false;
    }
  return true;
}

std::string CategoricalFeaturesToText(absl::Span<const CategoricalFeature> features) {
  std::string out;
  for (const CategoricalFeature& f : features) {
    if (f.ids.empty()) continue;
    if (!out.empty()) out.push_back(';');
    absl::StrAppend(&out, f.name, "=", absl::StrJoin(f.ids, "|"));
  }
  return out;
}

absl::StatusOr<std::vector<CategoricalFeature>> CategoricalFeaturesFromText(
    absl::string_view text) {
  std::vector<CategoricalFeature> out;
  if (text.empty()) return out;
  for (absl::string_view part : absl::StrSplit(text, ';')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    CategoricalFeature f;
    f.name = std::string(kv.first);
    RETURN_IF_ERROR(ValidateCategoricalName(f.name, "categorical feature name"));
    for (absl::string_view id : absl::StrSplit(kv.second, '|')) {
      int64_t v;
      if (!absl::SimpleAtoi(id, &v))
        return absl::InvalidArgumentError(absl::StrCat(
            "categorical features '", text.substr(0, 120), "': '", f.name, "' has id '",
            id.substr(0, 40), "', not an integer"));
      f.ids.push_back(v);
    }
    out.push_back(std::move(f));
  }
  return out;
}

absl::Status CheckFeaturesAgainstSchema(absl::Span<const CategoricalFeature> features,
                                        const std::vector<CategoricalField>& schema,
                                        absl::string_view what) {
  absl::flat_hash_set<absl::string_view> seen;
  for (size_t i = 0; i < features.size(); ++i) {
    const CategoricalFeature& f = features[i];
    auto it = std::find_if(schema.begin(), schema.end(),
                           [&](const CategoricalField& s) { return s.name == f.name; });
    if (it == schema.end())
      return absl::InvalidArgumentError(absl::StrCat(
          what, "[", i, "].name='", f.name.substr(0, 80),
          "': not a field of the model's schema (fields: ", CategoricalFieldNames(schema), ")"));
    if (!seen.insert(f.name).second)
      return absl::InvalidArgumentError(
          absl::StrCat(what, "[", i, "].name='", f.name, "': repeated"));
    if (static_cast<int64_t>(f.ids.size()) > it->max_ids)
      return absl::InvalidArgumentError(
          absl::StrCat(what, "[", i, "] '", f.name, "': ", f.ids.size(),
                       " ids, the model's schema takes at most max_ids=", it->max_ids));
  }
  return absl::OkStatus();
}

absl::Status EncodeFeatures(absl::Span<const CategoricalFeature> features,
                            const std::vector<CategoricalField>& schema, float* slots,
                            absl::string_view what) {
  RETURN_IF_ERROR(CheckFeaturesAgainstSchema(features, schema, what));
  std::fill(slots, slots + CategoricalSlotCount(schema), -1.0f);
  int64_t base = 0;
  for (const CategoricalField& s : schema) {
    for (const CategoricalFeature& f : features) {
      if (f.name != s.name) continue;
      for (size_t j = 0; j < f.ids.size(); ++j)
        slots[base + static_cast<int64_t>(j)] =
            static_cast<float>(HashBucket(s.name, f.ids[j], s.buckets));
    }
    base += s.max_ids;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> EncodeRows(const float* dense, int64_t dense_dim, int64_t n,
                                              const CategoricalColumns& cols, int64_t first_row,
                                              const std::vector<CategoricalField>& schema) {
  const int64_t slots = CategoricalSlotCount(schema);
  const int64_t width = dense_dim + slots;
  // Column of `cols` feeding each schema field (-1 = absent: empty slots).
  std::vector<int64_t> col_of(schema.size(), -1);
  for (int64_t c = 0; c < cols.num_fields(); ++c) {
    auto it = std::find_if(schema.begin(), schema.end(),
                           [&](const CategoricalField& s) { return s.name == cols.fields()[c]; });
    if (it == schema.end())
      return absl::InvalidArgumentError(absl::StrCat(
          "categorical field '", cols.fields()[c],
          "' is not in the model's schema (fields: ", CategoricalFieldNames(schema), ")"));
    col_of[it - schema.begin()] = c;
  }
  if (!cols.empty() && first_row + n > cols.rows())
    return absl::InvalidArgumentError(absl::StrCat("categorical columns have ", cols.rows(),
                                                   " rows, rows up to ", first_row + n,
                                                   " were asked for"));
  std::vector<float> out(static_cast<size_t>(n * width), -1.0f);
  for (int64_t i = 0; i < n; ++i) {
    float* row = out.data() + i * width;
    std::copy(dense + i * dense_dim, dense + (i + 1) * dense_dim, row);
    int64_t base = dense_dim;
    for (size_t s = 0; s < schema.size(); ++s) {
      if (col_of[s] >= 0) {
        absl::Span<const int64_t> ids = cols.ids(first_row + i, col_of[s]);
        if (static_cast<int64_t>(ids.size()) > schema[s].max_ids)
          return absl::InvalidArgumentError(absl::StrCat(
              "row ", first_row + i, ": categorical field '", schema[s].name, "' has ",
              ids.size(), " ids, the model's schema takes at most max_ids=", schema[s].max_ids));
        for (size_t j = 0; j < ids.size(); ++j)
          row[base + static_cast<int64_t>(j)] =
              static_cast<float>(HashBucket(schema[s].name, ids[j], schema[s].buckets));
      }
      base += schema[s].max_ids;
    }
  }
  return out;
}

}  // namespace optower
