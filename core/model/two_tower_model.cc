#include "core/model/two_tower_model.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/base/status_macros.h"
#include "core/model/two_tower_config.h"
#include "core/model/two_tower_net.h"

namespace optower {
namespace {

torch::nn::Sequential MakeMlp(int64_t in, const std::vector<int64_t>& hidden, int64_t out,
                              const std::string& activation) {
  torch::nn::Sequential seq;
  int64_t width = in;
  for (int64_t h : hidden) {
    seq->push_back(torch::nn::Linear(width, h));
    if (activation == "tanh") {
      seq->push_back(torch::nn::Tanh());
    } else if (activation == "elu") {
      seq->push_back(torch::nn::ELU());
    } else if (activation == "gelu") {
      seq->push_back(torch::nn::GELU());
    } else {
      seq->push_back(torch::nn::ReLU());
    }
    width = h;
  }
  seq->push_back(torch::nn::Linear(width, out));
  return seq;
}

absl::Status MakeDirs(const std::string& dir) {
  std::string partial;
  for (absl::string_view part : absl::StrSplit(dir, '/')) {
    absl::StrAppend(&partial, part, "/");
    if (part.empty()) continue;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
      return absl::InternalError(absl::StrFormat("mkdir %s: %s", partial, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

int ConfigureTorchForTraining(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Only on a change: at::set_num_threads rebuilds LibTorch's pthreadpool on every call.
  if (at::get_num_threads() != threads) at::set_num_threads(threads);
  // Softmax policies over many actions produce subnormal floats; flushing them to zero keeps the
  // arithmetic on the fast path (OBP's learner ran 4x slower without it).
  at::globalContext().setFlushDenormal(true);
  return at::get_num_threads();
}

TwoTowerConfig MakeTowerConfig(int64_t dim_context, const ItemCatalog& items,
                               const std::vector<int64_t>& hidden, int64_t embedding_dim,
                               const std::string& activation, bool item_id_embedding,
                               double temperature) {
  TwoTowerConfig config;
  config.dim_context = dim_context;
  config.dim_item = items.dim_features;
  config.hidden = hidden;
  config.embedding_dim = embedding_dim;
  config.activation = activation;
  config.item_id_embedding =
      item_id_embedding || (items.dim_features == 0 && items.categorical.empty());
  config.temperature = temperature;
  return config;
}

int64_t ContextInputWidth(const TwoTowerConfig& c) {
  return c.dim_context + CategoricalSlotCount(c.context_fields);
}

int64_t ItemInputWidth(const TwoTowerConfig& c) {
  return c.dim_item + CategoricalSlotCount(c.item_fields);
}

absl::Status CheckCatalogSchema(const TwoTowerConfig& c, const ItemCatalog& items) {
  if (items.dim_features != c.dim_item)
    return absl::InvalidArgumentError(absl::StrFormat(
        "items have %d features but the model's item tower takes %d", items.dim_features,
        c.dim_item));
  for (const std::string& name : items.categorical.fields()) {
    bool known = false;
    for (const CategoricalField& f : c.item_fields) known = known || f.name == name;
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("the catalog's categorical field '", name,
                       "' is not in the model's item schema (fields: ",
                       CategoricalFieldNames(c.item_fields), ")"));
    }
  }
  if (!items.categorical.empty() && items.categorical.rows() != items.size())
    return absl::InvalidArgumentError(absl::StrCat("the catalog has ", items.size(),
                                                   " items but ", items.categorical.rows(),
                                                   " rows of categorical features"));
  return absl::OkStatus();
}

namespace {

// One embedding table per field; row `buckets` is the padding row (zeros, no gradient) that empty
// slots point at.
std::vector<torch::nn::Embedding> MakeBags(torch::nn::Module& owner, const char* prefix,
                                           const std::vector<CategoricalField>& fields) {
  std::vector<torch::nn::Embedding> bags;
  for (size_t j = 0; j < fields.size(); ++j) {
    auto bag = owner.register_module(
        absl::StrCat(prefix, j),
        torch::nn::Embedding(torch::nn::EmbeddingOptions(fields[j].buckets + 1, fields[j].width)
                                 .padding_idx(fields[j].buckets)));
    torch::NoGradGuard no_grad;
    bag->weight.normal_(0.0, 1.0);
    bag->weight[fields[j].buckets].zero_();
    bags.push_back(bag);
  }
  return bags;
}

int64_t BagWidth(const std::vector<CategoricalField>& fields) {
  int64_t w = 0;
  for (const CategoricalField& f : fields) w += f.width;
  return w;
}

// [dense, bag_1, ..., bag_F] for encoded rows x = [dense (dim), slots]. Slots outside [0, buckets)
// (-1 = none, or anything else) count as absent.
torch::Tensor WithBags(const torch::Tensor& dense, const torch::Tensor& x, int64_t dim,
                       const std::vector<CategoricalField>& fields,
                       std::vector<torch::nn::Embedding>& bags) {
  if (fields.empty()) return dense;
  std::vector<torch::Tensor> parts;
  if (dim > 0) parts.push_back(dense);
  int64_t base = dim;
  for (size_t j = 0; j < fields.size(); ++j) {
    const int64_t m = fields[j].max_ids, buckets = fields[j].buckets;
    torch::Tensor slots = x.slice(1, base, base + m).to(torch::kInt64);
    torch::Tensor valid = slots.ge(0).logical_and(slots.lt(buckets));
    torch::Tensor sum = bags[j]->forward(slots.masked_fill(valid.logical_not(), buckets)).sum(1);
    parts.push_back(sum / valid.sum(1, /*keepdim=*/true).clamp_min(1).to(torch::kFloat32));
    base += m;
  }
  return torch::cat(parts, 1);
}

// For each degree k in 2..degree, the index tuples i_1 <= ... <= i_k of the monomials of degree k
// in `dim` variables, as a [M_k, k] int64 tensor.
std::vector<torch::Tensor> CrossIndices(int64_t dim, int64_t degree) {
  std::vector<torch::Tensor> out;
  if (dim <= 0) return out;
  for (int64_t k = 2; k <= degree; ++k) {
    std::vector<int64_t> flat, tuple(static_cast<size_t>(k), 0);
    while (true) {
      flat.insert(flat.end(), tuple.begin(), tuple.end());
      int64_t j = k - 1;  // next non-decreasing tuple
      while (j >= 0 && tuple[j] == dim - 1) --j;
      if (j < 0) break;
      ++tuple[j];
      for (int64_t l = j + 1; l < k; ++l) tuple[l] = tuple[j];
    }
    out.push_back(torch::tensor(flat, torch::kInt64).view({-1, k}));
  }
  return out;
}

// [z, products of z's columns over each index tuple] for the cross indices of CrossIndices.
torch::Tensor WithCrosses(const torch::Tensor& z, const std::vector<torch::Tensor>& indices) {
  if (indices.empty()) return z;
  std::vector<torch::Tensor> parts{z};
  for (const torch::Tensor& idx : indices) {
    torch::Tensor prod = z.index_select(1, idx.select(1, 0));
    for (int64_t j = 1; j < idx.size(1); ++j) prod = prod * z.index_select(1, idx.select(1, j));
    parts.push_back(prod);
  }
  return torch::cat(parts, 1);
}

}  // namespace

TwoTowerNetImpl::TwoTowerNetImpl(const TwoTowerConfig& c, int64_t n_item_ids)
    : dim_context(c.dim_context),
      dim_item(c.dim_item),
      context_fields(c.context_fields),
      item_fields(c.item_fields) {
  cross_indices = CrossIndices(c.dim_context, c.context_degree);
  user = register_module("user", MakeMlp(c.dim_context + ContextCrossCount(c.dim_context, c.context_degree) +
                                             BagWidth(c.context_fields),
                                         c.hidden, c.embedding_dim, c.activation));
  const int64_t item_in = c.dim_item + BagWidth(c.item_fields);
  if (item_in > 0) {
    item = register_module("item", MakeMlp(item_in, c.hidden, c.embedding_dim, c.activation));
  }
  user_bags = MakeBags(*this, "user_bag_", c.context_fields);
  item_bags = MakeBags(*this, "item_bag_", c.item_fields);
  if (c.item_id_embedding) {
    id_embedding = register_module(
        "id_embedding", torch::nn::Embedding(std::max<int64_t>(n_item_ids, 1), c.embedding_dim));
    torch::NoGradGuard no_grad;
    id_embedding->weight.normal_(0.0, 0.01);
  }
  ctx_mean = register_buffer("ctx_mean", torch::zeros({c.dim_context}));
  ctx_std = register_buffer("ctx_std", torch::ones({c.dim_context}));
  item_ids = register_buffer("item_ids", torch::zeros({n_item_ids}, torch::kInt64));
}

torch::Tensor TwoTowerNetImpl::User(const torch::Tensor& contexts) {
  if (context_fields.empty())
    return user->forward(WithCrosses((contexts - ctx_mean) / ctx_std, cross_indices));
  const torch::Tensor dense =
      WithCrosses((contexts.slice(1, 0, dim_context) - ctx_mean) / ctx_std, cross_indices);
  return user->forward(WithBags(dense, contexts, dim_context, context_fields, user_bags));
}

void TwoTowerNetImpl::StandardiseContexts(const torch::Tensor& inputs) {
  torch::NoGradGuard ng;
  const torch::Tensor dense = inputs.slice(1, 0, dim_context);
  ctx_mean.copy_(dense.mean(0));
  ctx_std.copy_(dense.std(0, /*unbiased=*/false).clamp_min(1e-6));
}

torch::Tensor TwoTowerNetImpl::Item(const torch::Tensor& features, const torch::Tensor& id_rows) {
  torch::Tensor out;
  if (item) {
    out = item_fields.empty()
              ? item->forward(features)
              : item->forward(WithBags(features.slice(1, 0, dim_item), features, dim_item,
                                       item_fields, item_bags));
  }
  if (id_embedding) {
    torch::Tensor known = id_rows.ge(0);
    torch::Tensor emb = id_embedding->forward(id_rows.clamp_min(0)) *
                        known.unsqueeze(1).to(torch::kFloat32);
    out = out.defined() ? out + emb : emb;
  }
  return out;
}

void TwoTowerModel::Impl::RebuildIdMap() {
  id_to_row.clear();
  auto ids = net->item_ids.contiguous();
  const int64_t* p = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < ids.size(0); ++i) id_to_row[p[i]] = i;
}

namespace {

// Encoded input rows [n, width] as a new tensor; throws (for TorchStatus callers) on an error.
torch::Tensor EncodedTensor(const absl::StatusOr<std::vector<float>>& rows, int64_t n,
                            int64_t width) {
  TORCH_CHECK(rows.ok(), std::string(rows.status().message()));
  return torch::tensor(*rows, torch::kFloat32).view({n, width});
}

// Encoded item input rows [N, ItemInputWidth] as a new tensor (throws on schema errors).
torch::Tensor EncodedItems(const TwoTowerConfig& config, const ItemCatalog& items) {
  const absl::Status schema = CheckCatalogSchema(config, items);
  TORCH_CHECK(schema.ok(), std::string(schema.message()));
  return EncodedTensor(EncodeRows(items.features.data(), items.dim_features, items.size(),
                                  items.categorical, 0, config.item_fields),
                       items.size(), ItemInputWidth(config));
}

// The catalog's item-tower input: dense-only features as a [N, dim_features] tensor over the
// catalog's own memory (read only), or encoded rows when the model has item fields.
torch::Tensor FeatureView(const TwoTowerConfig& config, const ItemCatalog& items) {
  if (!config.item_fields.empty()) return EncodedItems(config, items);
  if (items.dim_features == 0) return torch::zeros({items.size(), 0});
  return torch::from_blob(const_cast<float*>(items.features.data()),
                          {items.size(), items.dim_features}, torch::kFloat32);
}

}  // namespace

torch::Tensor TwoTowerModel::Impl::ItemFeatures(const ItemCatalog& items) const {
  torch::Tensor view = FeatureView(config, items);
  return config.item_fields.empty() ? view.clone() : view;  // encoded rows are already a copy
}

bool TwoTowerModel::Impl::ContextsAreInputs(const BanditLog& log) const {
  return config.context_fields.empty() && log.context_categorical.empty();
}

torch::Tensor TwoTowerModel::Impl::ContextInputs(const BanditLog& log, int64_t first,
                                                 int64_t n) const {
  TORCH_CHECK(log.dim_context == config.dim_context, "logs have ", log.dim_context,
              " context features but the model takes ", config.dim_context);
  if (ContextsAreInputs(log)) {
    return torch::from_blob(const_cast<float*>(log.context(first)), {n, log.dim_context},
                            torch::kFloat32);
  }
  return EncodedTensor(EncodeRows(log.context(first), log.dim_context, n, log.context_categorical,
                                  first, config.context_fields),
                       n, ContextInputWidth(config));
}

torch::Tensor TwoTowerModel::Impl::ContextInputs(const BanditLog& log) const {
  torch::Tensor x = ContextInputs(log, 0, log.size());
  return ContextsAreInputs(log) ? x.clone() : x;  // encoded rows are already a copy
}

torch::Tensor TwoTowerModel::Impl::ItemIdRows(const ItemCatalog& items) const {
  torch::Tensor rows = torch::full({items.size()}, -1, torch::kInt64);
  if (config.item_id_embedding) {
    int64_t* p = rows.data_ptr<int64_t>();
    for (int64_t i = 0; i < items.size(); ++i) {
      auto it = id_to_row.find(items.ids[i]);
      if (it != id_to_row.end()) p[i] = it->second;
    }
  }
  return rows;
}

void TwoTowerModel::Impl::EmbedItemsInto(const torch::Tensor& features,
                                          const torch::Tensor& id_rows, torch::Tensor out) {
  torch::NoGradGuard ng;
  const int64_t n = features.size(0);
  for (int64_t s = 0; s < n; s += kEmbedBatchItems) {
    const int64_t e = std::min(n, s + kEmbedBatchItems);
    out.slice(0, s, e).copy_(net->Item(features.slice(0, s, e), id_rows.slice(0, s, e)));
  }
}

torch::Tensor TwoTowerModel::Impl::ItemEmbeddings(const torch::Tensor& features,
                                                  const torch::Tensor& id_rows) {
  torch::Tensor out = torch::empty({features.size(0), config.embedding_dim});
  EmbedItemsInto(features, id_rows, out);
  return out;
}


torch::Tensor TwoTowerModel::Impl::ItemEmbeddings(const ItemCatalog& items) {
  return ItemEmbeddings(FeatureView(config, items), ItemIdRows(items));
}

TwoTowerModel::TwoTowerModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TwoTowerModel::~TwoTowerModel() = default;
TwoTowerModel::TwoTowerModel(TwoTowerModel&&) noexcept = default;
TwoTowerModel& TwoTowerModel::operator=(TwoTowerModel&&) noexcept = default;

const TwoTowerConfig& TwoTowerModel::config() const { return impl_->config; }

absl::StatusOr<TwoTowerModel> TwoTowerModel::Create(const TwoTowerConfig& config,
                                                    const std::vector<int64_t>& item_ids,
                                                    uint64_t seed) {
  RETURN_IF_ERROR(ValidateTwoTowerConfig(config));
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        torch::manual_seed(seed);
        impl->net = TwoTowerNet(config, static_cast<int64_t>(item_ids.size()));
        if (!item_ids.empty()) {
          impl->net->item_ids.copy_(torch::tensor(item_ids, torch::kInt64));
        }
      },
      "creating two-tower model"));
  impl->RebuildIdMap();
  return TwoTowerModel(std::move(impl));
}

TwoTowerModel TwoTowerModel::Clone() const {
  auto impl = std::make_unique<Impl>();
  impl->config = impl_->config;
  // Round trip through an in-memory archive: a deep copy of every parameter and buffer.
  std::stringstream buffer;
  torch::save(impl_->net, buffer);
  impl->net = TwoTowerNet(impl->config, impl_->net->item_ids.size(0));
  torch::load(impl->net, buffer);
  impl->id_to_row = impl_->id_to_row;
  return TwoTowerModel(std::move(impl));
}

absl::Status TwoTowerModel::Save(const std::string& dir) const {
  RETURN_IF_ERROR(MakeDirs(dir));
  {
    std::ofstream out(dir + "/config.txt", std::ios::trunc);
    out << TwoTowerConfigToText(impl_->config);
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("writing ", dir, "/config.txt failed"));
  }
  return TorchStatus([&] { torch::save(impl_->net, dir + "/weights.pt"); }, "saving weights");
}

absl::StatusOr<TwoTowerModel> TwoTowerModel::Load(const std::string& dir) {
  const std::string config_path = dir + "/config.txt";
  std::ifstream in(config_path);
  if (!in) return absl::NotFoundError(absl::StrFormat("%s: no model config (not a model folder?)", config_path));
  std::stringstream ss;
  ss << in.rdbuf();
  ASSIGN_OR_RETURN(TwoTowerConfig config, TwoTowerConfigFromText(ss.str(), config_path));
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        // The id table's size is only known from the weights; read the buffer first.
        torch::serialize::InputArchive archive;
        archive.load_from(dir + "/weights.pt");
        torch::Tensor ids;
        archive.read("item_ids", ids, /*is_buffer=*/true);
        impl->net = TwoTowerNet(config, ids.size(0));
        impl->net->load(archive);
      },
      "loading model weights"));
  impl->RebuildIdMap();
  return TwoTowerModel(std::move(impl));
}

absl::StatusOr<std::vector<float>> TwoTowerModel::EncodeContexts(
    const float* dense, int64_t n, const CategoricalColumns& categorical,
    int64_t first_row) const {
  return EncodeRows(dense, impl_->config.dim_context, n, categorical, first_row,
                    impl_->config.context_fields);
}

absl::StatusOr<std::vector<float>> TwoTowerModel::EncodeContext(
    const float* dense, absl::Span<const CategoricalFeature> features,
    absl::string_view what) const {
  const TwoTowerConfig& c = impl_->config;
  std::vector<float> row(static_cast<size_t>(ContextInputWidth(c)));
  std::copy(dense, dense + c.dim_context, row.begin());
  RETURN_IF_ERROR(EncodeFeatures(features, c.context_fields, row.data() + c.dim_context, what));
  return row;
}

absl::StatusOr<std::vector<float>> TwoTowerModel::EncodeLogContexts(const BanditLog& log) const {
  if (log.dim_context != impl_->config.dim_context)
    return absl::InvalidArgumentError(
        absl::StrFormat("logs have %d context features but the model takes %d", log.dim_context,
                        impl_->config.dim_context));
  if (impl_->config.context_fields.empty() && log.context_categorical.empty()) return log.contexts;
  return EncodeContexts(log.contexts.data(), log.size(), log.context_categorical, 0);
}

absl::StatusOr<std::vector<float>> TwoTowerModel::EmbedContexts(const float* contexts,
                                                                int64_t n) const {
  std::vector<float> out;
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        c10::InferenceMode guard;
        torch::Tensor x = torch::from_blob(const_cast<float*>(contexts),
                                           {n, ContextInputWidth(impl_->config)}, torch::kFloat32);
        torch::Tensor u = impl_->net->User(x).contiguous();
        out.assign(u.data_ptr<float>(), u.data_ptr<float>() + u.numel());
      },
      "user tower forward"));
  return out;
}

absl::StatusOr<std::vector<float>> TwoTowerModel::EmbedItems(const ItemCatalog& items) const {
  RETURN_IF_ERROR(CheckCatalogSchema(impl_->config, items));
  // The output [N, d] is the only allocation that grows with N: Impl::EmbedItemsInto writes it
  // batch by batch (one forward over a 1M-item catalog would hold every hidden layer's [N, width]
  // activations at once).
  std::vector<float> out(static_cast<size_t>(items.size() * impl_->config.embedding_dim));
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        c10::InferenceMode guard;
        impl_->EmbedItemsInto(
            FeatureView(impl_->config, items), impl_->ItemIdRows(items),
            torch::from_blob(out.data(), {items.size(), impl_->config.embedding_dim},
                             torch::kFloat32));
      },
      "item tower forward"));
  return out;
}

absl::Status TwoTowerModel::ContextMoments(std::vector<float>* mean, std::vector<float>* sd) const {
  return TorchStatus(
      [&] {
        c10::InferenceMode guard;
        torch::Tensor m = impl_->net->ctx_mean.contiguous();
        torch::Tensor s = impl_->net->ctx_std.contiguous();
        mean->assign(m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
        sd->assign(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
      },
      "context moments");
}

absl::StatusOr<DenseMatrix> TwoTowerModel::ActionProbabilities(const float* contexts, int64_t n,
                                                               const ItemCatalog& items) const {
  RETURN_IF_ERROR(CheckCatalogSchema(impl_->config, items));
  DenseMatrix pi(n, items.size());
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        c10::InferenceMode guard;
        torch::Tensor v = impl_->ItemEmbeddings(items);
        constexpr int64_t kChunk = 4096;
        for (int64_t start = 0; start < n; start += kChunk) {
          const int64_t len = std::min(kChunk, n - start);
          const int64_t width = ContextInputWidth(impl_->config);
          torch::Tensor x = torch::from_blob(const_cast<float*>(contexts + start * width),
                                             {len, width}, torch::kFloat32);
          torch::Tensor logits = (impl_->net->User(x).matmul(v.t()) / impl_->config.temperature)
                                     .to(torch::kFloat64)
                                     .contiguous();
          torch::Tensor p = torch::softmax(logits, 1).contiguous();
          std::memcpy(pi.row(start), p.data_ptr<double>(), sizeof(double) * p.numel());
        }
      },
      "policy forward"));
  return pi;
}

}  // namespace optower
