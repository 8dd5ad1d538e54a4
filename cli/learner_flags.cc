#include "cli/learner_flags.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <type_traits>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/base/json_writer.h"
#include "core/base/status_macros.h"

namespace optower::cli {
namespace {

// --context-fields / --item-fields: name[:buckets[:width[:max_ids]]],...
absl::Status ParseFieldsFlag(const char* flag, const std::string& text,
                             std::vector<CategoricalField>* out) {
  out->clear();
  for (absl::string_view spec : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    auto field = CategoricalFieldFromText(spec);
    if (!field.ok())
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", field.status().message()));
    out->push_back(*field);
  }
  return ValidateCategoricalFields(*out, absl::StrCat("--", flag));
}

// "1,2.5" -> {1, 2.5}; InvalidArgument naming the flag and the bad item.
template <typename T>
absl::Status ParseList(const char* flag, const std::string& text, std::vector<T>* out) {
  out->clear();
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    T v;
    bool ok;
    if constexpr (std::is_integral_v<T>) {
      ok = absl::SimpleAtoi(item, &v);
    } else {
      ok = absl::SimpleAtod(item, &v);
    }
    if (!ok)
      return absl::InvalidArgumentError(
          absl::StrFormat("--%s=%s: '%s' is not a number", flag, text, std::string(item)));
    out->push_back(v);
  }
  return absl::OkStatus();
}

// q̂ has the policy's tower shape (o.hidden, already parsed) and its own optimiser flags.
absl::Status ApplyQhatFlags(const LearnerFlags& f, PolicyLearnerOptions& o) {
  o.reward_model.hidden = o.hidden;
  o.reward_model.embedding_dim = f.embedding_dim;
  o.reward_model.activation = f.activation;
  o.reward_model.item_id_embedding = f.item_id_embedding;
  o.reward_model.epochs = static_cast<int>(f.qhat_epochs);
  o.reward_model.learning_rate = f.qhat_learning_rate;
  o.reward_model.l2 = f.qhat_l2;
  o.reward_model.batch_size = static_cast<int>(f.batch_size);
  o.qhat_search.linear_alternative = f.qhat_linear_alternative;
  RETURN_IF_ERROR(
      ParseList("qhat-context-degrees", f.qhat_context_degrees, &o.qhat_search.context_degrees));
  RETURN_IF_ERROR(ParseList("qhat-l2-per-row", f.qhat_l2_per_row, &o.qhat_search.l2_per_row));
  if (absl::Status s = o.qhat_search.Validate(); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("--qhat-context-degrees=", f.qhat_context_degrees,
                                                   " --qhat-l2-per-row=", f.qhat_l2_per_row, ": ",
                                                   s.message()));
  return absl::OkStatus();
}

}  // namespace

void LearnerFlags::Register(FlagParser& p) {
  p.AddString("objective", &objective, "dr | ipw | dm");
  p.AddString("hidden", &hidden, "hidden widths of each tower, comma-separated ('' = linear)");
  p.AddInt("embedding-dim", &embedding_dim, "tower output dimension d");
  p.AddString("activation", &activation, "relu | tanh | elu | gelu");
  p.AddBool("item-id-embedding", &item_id_embedding, "add a learned item-id embedding");
  p.AddString("context-fields", &context_fields,
              "categorical context schema: name[:buckets[:width[:max_ids]]],... (default: derived "
              "from the data's c: columns)");
  p.AddString("item-fields", &item_fields,
              "categorical item schema, same form (default: derived from the items' c: columns)");
  p.AddDouble("temperature", &temperature, "policy temperature tau");
  p.AddDouble("min-train-temperature", &min_train_temperature,
              "the gradient steps compute pi at max(--temperature, this) (0 = at --temperature)");
  p.AddInt("epochs", &epochs, "policy epochs (upper bound; early stopping)");
  p.AddInt("batch-size", &batch_size, "minibatch size");
  p.AddDouble("lr", &learning_rate, "Adam learning rate of the policy");
  p.AddDouble("l2", &l2, "Adam weight decay of the policy");
  p.AddDouble("weight-clip", &weight_clip,
              "clip importance weights at this value (0 = off, < 0 = the rule max(10, sqrt(n)))");
  p.AddDouble("selection-z", &selection_z,
              "keep a candidate only if its paired validation-DR gain over the initial policy "
              "minus this many standard errors is > 0 (0 = largest estimate)");
  p.AddBool("self-normalize", &self_normalize, "self-normalise importance weights per batch");
  p.AddInt("top-k", &top_k, "Chen et al. top-K correction with this K (0 = off)");
  p.AddString("gradient", &gradient,
              "auto | exact | sampled: sums over the catalog exactly, or over a head + tail sample "
              "(auto: sampled from --sampled-auto-min-items items)");
  p.AddInt("sampled-auto-min-items", &sampled_auto_min_items,
           "--gradient=auto: catalog size from which the sampled gradient is used");
  p.AddInt("sampled-head", &sampled_head, "sampled gradient: top rows of the proposal per context");
  p.AddInt("sampled-tail", &sampled_tail, "sampled gradient: uniform draws per minibatch");
  p.AddDouble("validation-fraction", &validation_fraction,
              "held-out share of the logs for early stopping (DR value estimate)");
  p.AddInt("patience", &patience, "epochs without validation improvement before stopping");
  p.AddString("init", &init, "auto | qhat | random: policy initialisation (auto: dr/dm qhat, ipw random)");
  p.AddBool("qhat-linear-alternative", &qhat_linear_alternative,
            "with --hidden set: also fit q̂ with linear towers, keep the lower held-out loss");
  p.AddString("qhat-context-degrees", &qhat_context_degrees,
              "feature-cross degrees of q̂'s user tower to try, comma-separated (1 = none, up to 3); "
              "the lowest held-out loss is kept");
  p.AddString("qhat-l2-per-row", &qhat_l2_per_row,
              "q̂ L2 strengths to try as c/n (n = rows), comma-separated; '' = --qhat-l2");
  p.AddInt("qhat-epochs", &qhat_epochs, "reward-model epochs (upper bound)");
  p.AddDouble("qhat-lr", &qhat_learning_rate, "reward-model learning rate");
  p.AddDouble("qhat-l2", &qhat_l2, "reward-model Adam weight decay (only with --qhat-l2-per-row='')");
  p.AddInt("seed", &seed, "random seed");
  p.AddInt("threads", &threads, "intra-op threads (0 = all cores)");
}

absl::Status LearnerFlags::Apply(PolicyLearnerOptions& o) const {
  auto obj = ParseObjective(objective);
  if (!obj.ok()) return obj.status();
  o.objective = *obj;
  o.hidden.clear();
  for (absl::string_view h : absl::StrSplit(hidden, ',', absl::SkipEmpty())) {
    int64_t w;
    if (!absl::SimpleAtoi(h, &w) || w < 1)
      return absl::InvalidArgumentError(
          absl::StrFormat("--hidden=%s: expected comma-separated positive integers", hidden));
    o.hidden.push_back(w);
  }
  auto positive = [](const char* name, double v) {
    return v > 0 ? absl::OkStatus()
                 : absl::InvalidArgumentError(absl::StrFormat("--%s=%g: must be > 0", name, v));
  };
  for (auto [name, v] : {std::pair<const char*, double>{"embedding-dim", double(embedding_dim)},
                         {"temperature", temperature},
                         {"batch-size", double(batch_size)},
                         {"lr", learning_rate},
                         {"qhat-lr", qhat_learning_rate},
                         {"qhat-epochs", double(qhat_epochs)}}) {
    if (absl::Status s = positive(name, v); !s.ok()) return s;
  }
  if (epochs < 0) return absl::InvalidArgumentError(absl::StrFormat("--epochs=%d: must be >= 0", epochs));
  if (!(validation_fraction >= 0 && validation_fraction < 1))
    return absl::InvalidArgumentError(
        absl::StrFormat("--validation-fraction=%g: must be in [0, 1)", validation_fraction));
  if (selection_z < 0 || min_train_temperature < 0 || l2 < 0 || qhat_l2 < 0 || top_k < 0 ||
      patience < 1 || threads < 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "--selection-z=%g --min-train-temperature=%g --l2=%g --top-k=%d --patience=%d "
        "--threads=%d: none may be negative (patience >= 1)",
        selection_z, min_train_temperature, l2, top_k, patience, threads));
  if (init != "auto" && init != "qhat" && init != "random")
    return absl::InvalidArgumentError(absl::StrFormat("--init=%s: must be auto, qhat or random", init));
  if (activation != "relu" && activation != "tanh" && activation != "elu" && activation != "gelu")
    return absl::InvalidArgumentError(
        absl::StrFormat("--activation=%s: must be relu, tanh, elu or gelu", activation));
  o.embedding_dim = embedding_dim;
  o.activation = activation;
  o.item_id_embedding = item_id_embedding;
  absl::Status fields = ParseFieldsFlag("context-fields", context_fields, &o.context_fields);
  if (fields.ok()) fields = ParseFieldsFlag("item-fields", item_fields, &o.item_fields);
  if (!fields.ok()) return fields;
  o.temperature = temperature;
  o.min_train_temperature = min_train_temperature;
  o.epochs = static_cast<int>(epochs);
  o.batch_size = static_cast<int>(batch_size);
  o.learning_rate = learning_rate;
  o.l2 = l2;
  o.weight_clip = weight_clip;
  o.selection_z = selection_z;
  o.self_normalize = self_normalize;
  o.top_k = static_cast<int>(top_k);
  auto mode = ParseGradientMode(gradient);
  if (!mode.ok()) return absl::InvalidArgumentError(absl::StrCat("--", mode.status().message()));
  o.sampled.mode = *mode;
  o.sampled.auto_min_items = sampled_auto_min_items;
  o.sampled.head_items = static_cast<int>(sampled_head);
  o.sampled.tail_items = static_cast<int>(sampled_tail);
  if (sampled_auto_min_items < 2 || sampled_head < 1 || sampled_tail < 0)
    return absl::InvalidArgumentError(absl::StrFormat(
        "--sampled-auto-min-items=%d --sampled-head=%d --sampled-tail=%d: need >= 2, >= 1 and "
        ">= 0",
        sampled_auto_min_items, sampled_head, sampled_tail));
  o.validation_fraction = validation_fraction;
  o.patience = static_cast<int>(patience);
  if (init != "auto") o.warm_start = init == "qhat";
  RETURN_IF_ERROR(ApplyQhatFlags(*this, o));
  o.seed = static_cast<uint64_t>(seed);
  o.threads = static_cast<int>(threads);
  return absl::OkStatus();
}

void LearnerFlags::WriteJson(JsonWriter& w) const {
  w.BeginObject()
      .Field("objective", objective)
      .Field("hidden", hidden)
      .Field("embedding_dim", embedding_dim)
      .Field("activation", activation)
      .Field("item_id_embedding", item_id_embedding)
      .Field("context_fields", context_fields)
      .Field("item_fields", item_fields)
      .Field("temperature", temperature)
      .Field("min_train_temperature", min_train_temperature)
      .Field("epochs", epochs)
      .Field("batch_size", batch_size)
      .Field("lr", learning_rate)
      .Field("l2", l2)
      .Field("weight_clip", weight_clip)
      .Field("selection_z", selection_z)
      .Field("self_normalize", self_normalize)
      .Field("top_k", top_k)
      .Field("gradient", gradient)
      .Field("sampled_auto_min_items", sampled_auto_min_items)
      .Field("sampled_head", sampled_head)
      .Field("sampled_tail", sampled_tail)
      .Field("validation_fraction", validation_fraction)
      .Field("patience", patience)
      .Field("init", init)
      .Field("qhat_linear_alternative", qhat_linear_alternative)
      .Field("qhat_context_degrees", qhat_context_degrees)
      .Field("qhat_l2_per_row", qhat_l2_per_row)
      .Field("qhat_epochs", qhat_epochs)
      .Field("qhat_lr", qhat_learning_rate)
      .Field("qhat_l2", qhat_l2)
      .Field("seed", seed)
      .Field("threads", threads)
      .EndObject();
}

ProgressCallback MakeProgressPrinter(bool quiet) {
  if (quiet) return nullptr;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  auto last_phase = std::make_shared<std::string>();
  return [tty, last_phase](const TrainProgress& p) {
    const bool reward = p.phase == "reward_model";
    if (tty) {
      if (!last_phase->empty() && *last_phase != p.phase) std::fprintf(stderr, "\n");
      constexpr int kWidth = 30;
      const int filled = p.epochs > 0 ? kWidth * p.epoch / p.epochs : kWidth;
      std::string bar(filled, '#');
      bar.resize(kWidth, '.');
      std::fprintf(stderr, "\r%-12s [%s] epoch %3d/%-3d loss %.4f  %s %.4f%s", p.phase.c_str(),
                   bar.c_str(), p.epoch, p.epochs, p.loss, reward ? "val-loss" : "val-DR",
                   p.validation, p.improved ? " *" : "  ");
      std::fflush(stderr);
    } else {
      std::fprintf(stderr, "%s epoch %d/%d loss %.5f %s %.5f%s\n", p.phase.c_str(), p.epoch,
                   p.epochs, p.loss, reward ? "val_loss" : "val_dr", p.validation,
                   p.improved ? " (best)" : "");
    }
    *last_phase = p.phase;
  };
}

}  // namespace optower::cli
