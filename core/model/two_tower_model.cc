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
  at::set_num_threads(threads);
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
  config.item_id_embedding = item_id_embedding || items.dim_features == 0;
  config.temperature = temperature;
  return config;
}

TwoTowerNetImpl::TwoTowerNetImpl(const TwoTowerConfig& c, int64_t n_item_ids) {
  user = register_module("user", MakeMlp(c.dim_context, c.hidden, c.embedding_dim, c.activation));
  if (c.dim_item > 0) {
    item = register_module("item", MakeMlp(c.dim_item, c.hidden, c.embedding_dim, c.activation));
  }
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
  return user->forward((contexts - ctx_mean) / ctx_std);
}

torch::Tensor TwoTowerNetImpl::Item(const torch::Tensor& features, const torch::Tensor& id_rows) {
  torch::Tensor out;
  if (item) out = item->forward(features);
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

torch::Tensor TwoTowerModel::Impl::ItemFeatures(const ItemCatalog& items) const {
  if (items.dim_features == 0) return torch::zeros({items.size(), 0});
  return torch::from_blob(const_cast<float*>(items.features.data()),
                          {items.size(), items.dim_features}, torch::kFloat32)
      .clone();
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

namespace {

// The catalog's features as a [N, dim_features] tensor over its own memory (read only).
torch::Tensor FeatureView(const ItemCatalog& items) {
  if (items.dim_features == 0) return torch::zeros({items.size(), 0});
  return torch::from_blob(const_cast<float*>(items.features.data()),
                          {items.size(), items.dim_features}, torch::kFloat32);
}

}  // namespace

torch::Tensor TwoTowerModel::Impl::ItemEmbeddings(const ItemCatalog& items) {
  return ItemEmbeddings(FeatureView(items), ItemIdRows(items));
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

absl::StatusOr<std::vector<float>> TwoTowerModel::EmbedContexts(const float* contexts,
                                                                int64_t n) const {
  std::vector<float> out;
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        c10::InferenceMode guard;
        torch::Tensor x = torch::from_blob(const_cast<float*>(contexts),
                                           {n, impl_->config.dim_context}, torch::kFloat32);
        torch::Tensor u = impl_->net->User(x).contiguous();
        out.assign(u.data_ptr<float>(), u.data_ptr<float>() + u.numel());
      },
      "user tower forward"));
  return out;
}

absl::StatusOr<std::vector<float>> TwoTowerModel::EmbedItems(const ItemCatalog& items) const {
  if (items.dim_features != impl_->config.dim_item)
    return absl::InvalidArgumentError(absl::StrFormat(
        "items have %d features but the model's item tower takes %d", items.dim_features,
        impl_->config.dim_item));
  // The output [N, d] is the only allocation that grows with N: Impl::EmbedItemsInto writes it
  // batch by batch (one forward over a 1M-item catalog would hold every hidden layer's [N, width]
  // activations at once).
  std::vector<float> out(static_cast<size_t>(items.size() * impl_->config.embedding_dim));
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        c10::InferenceMode guard;
        impl_->EmbedItemsInto(
            FeatureView(items), impl_->ItemIdRows(items),
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
  if (items.dim_features != impl_->config.dim_item)
    return absl::InvalidArgumentError(absl::StrFormat(
        "items have %d features but the model's item tower takes %d", items.dim_features,
        impl_->config.dim_item));
  DenseMatrix pi(n, items.size());
  RETURN_IF_ERROR(TorchStatus(
      [&] {
        c10::InferenceMode guard;
        torch::Tensor v = impl_->ItemEmbeddings(items);
        constexpr int64_t kChunk = 4096;
        for (int64_t start = 0; start < n; start += kChunk) {
          const int64_t len = std::min(kChunk, n - start);
          torch::Tensor x =
              torch::from_blob(const_cast<float*>(contexts + start * impl_->config.dim_context),
                               {len, impl_->config.dim_context}, torch::kFloat32);
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
