// Categorical features (docs/FEATURES.md): raw values as the data carries them, the schema a model
// declares for them, and the hashing that turns the one into the other's model input.
//
//   raw value  a field name and a list of int64 ids per row ("user" -> [1234], "tags" -> [3, 9]);
//              text values that are not integers become ids by FNV-1a-64 (CategoricalIdFromText).
//   schema     per field: buckets (rows of its hashed embedding table), width (embedding width) and
//              max_ids (ids per row at most). Part of a model's config (core/model).
//   slots      the model input: per field max_ids floats holding bucket indices
//              HashBucket(field, id) in [0, buckets), -1 = no id. Bucket indices travel as floats
//              so that encoded rows fit the float row-major tensors the learner slices; buckets
//              <= 2^24 keeps them exact. An id the model never saw hashes like any other.
//
// Thread safety: values only; functions are reentrant.
#ifndef OPTOWER_CORE_BASE_CATEGORICAL_H_
#define OPTOWER_CORE_BASE_CATEGORICAL_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace optower {

inline constexpr int64_t kMaxCategoricalBuckets = int64_t{1} << 24;  // exact as floats
inline constexpr int64_t kMaxCategoricalIdsPerField = 64;
inline constexpr int64_t kMaxCategoricalWidth = 1024;
inline constexpr int64_t kMaxCategoricalFields = 64;
inline constexpr size_t kMaxCategoricalNameBytes = 64;

// One field of a model's categorical schema.
struct CategoricalField {
  std::string name;
  int64_t buckets = 4096;
  int64_t width = 16;
  int64_t max_ids = 1;
};

bool operator==(const CategoricalField& a, const CategoricalField& b);
inline bool operator!=(const CategoricalField& a, const CategoricalField& b) { return !(a == b); }

// A field name: 1..64 bytes of [A-Za-z0-9_.-] (names appear in CSV headers, config lines and the
// event log's text form). InvalidArgument "<what>='<name>': ..." otherwise.
absl::Status ValidateCategoricalName(absl::string_view name, absl::string_view what);
// Names valid and unique, buckets in [1, 2^24], width in [1, 1024], max_ids in [1, 64], at most
// 64 fields. `what` prefixes messages
// ("context_field[1] 'user': buckets=0: must be in [1, 16777216]").
absl::Status ValidateCategoricalFields(const std::vector<CategoricalField>& fields,
                                       absl::string_view what);

// "name:buckets:width:max_ids" (config.txt, CLI flags); FromText also takes "name:buckets:width"
// (max_ids 1) and "name" (defaults). InvalidArgument naming the text on malformed input.
std::string CategoricalFieldToText(const CategoricalField& field);
absl::StatusOr<CategoricalField> CategoricalFieldFromText(absl::string_view text);

// Σ max_ids: the slots a schema adds to a model input row.
int64_t CategoricalSlotCount(const std::vector<CategoricalField>& fields);

// Integer text ("-12", "49") is that id; any other non-empty text is its FNV-1a-64 hash. So the
// hashed strings of the Open Bandit Dataset and integer ids both work, and equal text gives equal
// ids.
int64_t CategoricalIdFromText(absl::string_view text);
// The bucket of `id` in field `name`'s table: SplitMix64(id ^ FNV-1a-64(name)) mod buckets. Stable
// across processes, versions and platforms (fixed arithmetic, no std::hash).
int64_t HashBucket(absl::string_view field_name, int64_t id, int64_t buckets);

class CategoricalColumns;

// Buckets for a field of `distinct_ids` ids: the next power of two >= 4 x distinct_ids, in
// [16, 2^20] (few collisions; tables stay small).
int64_t DefaultCategoricalBuckets(int64_t distinct_ids);

// The names of `fields` joined by ", " ("none" when empty), for messages.
std::string CategoricalFieldNames(const std::vector<CategoricalField>& fields);

// The schema for data with categorical columns `cols`: the `given` fields (kept as they are), then
// one field per column of `cols` not among them, sized from the data: buckets =
// DefaultCategoricalBuckets(the column's distinct ids), width `width`, max_ids = the most ids any
// row has (>= 1). So a user of `optower train` gets a working schema without writing one.
std::vector<CategoricalField> DeriveCategoricalFields(const CategoricalColumns& cols,
                                                      const std::vector<CategoricalField>& given,
                                                      int64_t width = 16);

// A categorical feature as an RPC carries it.
struct CategoricalFeature {
  std::string name;
  std::vector<int64_t> ids;
};

// Raw categorical values of a table: a fixed list of fields, and per row per field a list of ids
// (possibly empty = the row has no value for that field).
class CategoricalColumns {
 public:
  CategoricalColumns() = default;
  explicit CategoricalColumns(std::vector<std::string> fields) : fields_(std::move(fields)) {}

  const std::vector<std::string>& fields() const { return fields_; }
  int64_t num_fields() const { return static_cast<int64_t>(fields_.size()); }
  bool empty() const { return fields_.empty(); }
  int64_t rows() const {
    return fields_.empty() ? 0 : static_cast<int64_t>(offsets_.size() - 1) / num_fields();
  }
  // The column of `name`, or -1.
  int64_t FieldIndex(absl::string_view name) const;
  absl::Span<const int64_t> ids(int64_t row, int64_t field) const {
    const size_t c = static_cast<size_t>(row * num_fields() + field);
    return absl::MakeConstSpan(values_.data() + offsets_[c], values_.data() + offsets_[c + 1]);
  }

  // Appends one cell (the next field of the row being built; a row is complete after
  // num_fields() cells).
  void AddCell(absl::Span<const int64_t> ids) {
    values_.insert(values_.end(), ids.begin(), ids.end());
    offsets_.push_back(static_cast<int64_t>(values_.size()));
  }
  // Appends row `row` of `from`, whose fields must equal fields().
  void AppendRow(const CategoricalColumns& from, int64_t row);
  // Appends a row given as features (any order, any subset of fields()); InvalidArgument naming
  // the feature for an unknown or repeated name. Nothing is appended on error.
  absl::Status AppendFeatures(absl::Span<const CategoricalFeature> features);
  // Row `row` as features (every field, empty ones included).
  std::vector<CategoricalFeature> RowFeatures(int64_t row) const;
  // Keeps rows [0, n).
  void Truncate(int64_t n);
  void Reserve(int64_t rows, int64_t values);

 private:
  std::vector<std::string> fields_;
  std::vector<int64_t> offsets_{0};  // [rows * num_fields + 1]
  std::vector<int64_t> values_;
};

bool operator==(const CategoricalColumns& a, const CategoricalColumns& b);

// The event log's and text form of one row's features: "user=12;tags=3|9" (fields with no ids are
// left out; "" = no features). Parse is the inverse; InvalidArgument on malformed text.
std::string CategoricalFeaturesToText(absl::Span<const CategoricalFeature> features);
absl::StatusOr<std::vector<CategoricalFeature>> CategoricalFeaturesFromText(absl::string_view text);

// Checks features against a schema before any work: known, unique names; at most max_ids ids each.
// InvalidArgument "<what>[i].name='x': not a field of the model's schema (fields: a, b)" or
// "<what>[i] 'tags': 3 ids, the model's schema takes at most 2".
absl::Status CheckFeaturesAgainstSchema(absl::Span<const CategoricalFeature> features,
                                        const std::vector<CategoricalField>& schema,
                                        absl::string_view what);

// Writes CategoricalSlotCount(schema) floats (bucket indices, -1 = none) for one row given as
// features, after CheckFeaturesAgainstSchema(features, schema, what) (nothing written on error).
absl::Status EncodeFeatures(absl::Span<const CategoricalFeature> features,
                            const std::vector<CategoricalField>& schema, float* slots,
                            absl::string_view what = "categorical");

// Model input rows [n, dense_dim + CategoricalSlotCount(schema)]: dense row i (dense_dim floats
// from `dense`), then the slots of row first_row + i of `cols`. Schema fields absent from `cols`
// get empty slots; a field of `cols` not in the schema, or a row with more ids than max_ids, is
// InvalidArgument naming the field (and the row, counted from 0). `cols` may be empty (no
// categorical data: every slot empty) but must otherwise hold rows [first_row, first_row + n).
absl::StatusOr<std::vector<float>> EncodeRows(const float* dense, int64_t dense_dim, int64_t n,
                                              const CategoricalColumns& cols, int64_t first_row,
                                              const std::vector<CategoricalField>& schema);

}  // namespace optower

#endif  // OPTOWER_CORE_BASE_CATEGORICAL_H_
