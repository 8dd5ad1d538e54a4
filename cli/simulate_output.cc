#include "cli/simulate_output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/base/json_writer.h"

namespace optower::cli::sim {
namespace {

std::string Num(double v) { return std::isfinite(v) ? absl::StrFormat("%.6f", v) : ""; }

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c == '\n' ? ' ' : c;
  }
  return q + "\"";
}

void JsonNumber(JsonWriter& w, const char* key, double v) {
  w.Key(key);
  if (std::isfinite(v)) {
    w.Double(v);
  } else {
    w.Null();
  }
}

void JsonSetting(const SimFlags& f, JsonWriter& w) {
  w.Key("setting").BeginObject()
      .Field("items", f.items).Field("rounds", f.rounds)
      .Field("requests_per_round", f.requests_per_round).Field("k", f.k)
      .Field("dim_context", f.dim_context).Field("dim_item_features", f.dim_item_features)
      .Field("item_features", f.dim_item_features > 0 ? "normal" : "one-hot")
      .Field("setting", f.setting).Field("warm_start", f.warm_start).Field("reward", f.reward).Field("seed", f.seed)
      .Field("reference_rounds", f.reference_rounds).Field("epsilon", f.epsilon)
      .Field("temperature", f.temperature).Field("top_m", std::max(f.top_m, f.k))
      .Field("slate_exploration", f.slate_exploration)
      .Field("slate_learning", f.slate_learning).Field("gradient", f.gradient)
      .Field("objective", f.objective).Field("force", f.force)
      .Field("train_threads", f.train_threads).Field("epochs", f.epochs)
      .EndObject();
}

void JsonRound(const RoundResult& r, const Summary& s, JsonWriter& w) {
  w.BeginObject().Field("round", r.round).Field("requests", r.requests)
      .Field("served_items", r.served_items);
  JsonNumber(w, "served_value", r.served_value);
  JsonNumber(w, "served_value_pos0", r.served_value_pos0);
  w.Key("position_values").BeginArray();
  for (double v : r.position_values) std::isfinite(v) ? w.Double(v) : w.Null();
  w.EndArray();
  JsonNumber(w, "optimal_value", r.optimal_value);
  w.Key("position_optimal").BeginArray();
  for (double v : r.position_optimal) w.Double(v);
  w.EndArray();
  JsonNumber(w, "uniform_value", r.uniform_value);
  JsonNumber(w, "ceiling_value", r.ceiling_value);
  JsonNumber(w, "observed_reward", r.observed_reward);
  JsonNumber(w, "gap_closed", GapClosed(r.served_value, s.first, s.optimal));
  w.Field("model_version", r.model_version).Field("versions_seen", r.versions_seen)
      .Field("play_seconds", r.play_seconds);
  JsonNumber(w, "retrieve_p99_ms", r.retrieve_p99_ms);
  if (r.swap_probe_requests > 0) {
    w.Field("swap_probe_requests", r.swap_probe_requests);
    JsonNumber(w, "swap_p99_ms", r.swap_p99_ms);
  }
  if (r.job_id.empty()) {
    w.Key("retrain").Null();
  } else {
    w.Key("retrain").BeginObject().Field("job_id", r.job_id).Field("state", r.job_state)
        .Field("decision", r.decision).Field("saved_version", r.saved_version)
        .Field("next_version", r.next_version).Field("job_seconds", r.job_seconds)
        .Field("train_events", r.train_events).Field("pending_excluded", r.pending_excluded);
    JsonNumber(w, "ope_old", r.ope_old);
    JsonNumber(w, "ope_new", r.ope_new);
    JsonNumber(w, "ope_diff", r.ope_diff);
    JsonNumber(w, "ope_diff_low", r.ope_diff_low);
    JsonNumber(w, "ope_diff_high", r.ope_diff_high);
    w.Field("reason", r.reason).EndObject();
  }
  // Flat copies for simple consumers (issue 4 §3 names them per round).
  w.Field("decision", r.decision).Field("next_version", r.next_version);
  w.EndObject();
}

}  // namespace

Summary Summarize(const std::vector<RoundResult>& rounds) {
  Summary s;
  for (const RoundResult& r : rounds) {
    s.optimal += r.optimal_value;
    s.uniform += r.uniform_value;
    s.ceiling += r.ceiling_value;
  }
  s.optimal /= static_cast<double>(rounds.size());
  s.uniform /= static_cast<double>(rounds.size());
  s.ceiling /= static_cast<double>(rounds.size());
  s.first = rounds.front().served_value;
  s.final_value = rounds.back().served_value;
  return s;
}

// The jobs' wall times and, with the swap probe, the worst ratio of the probe's p99 during a job
// to the p99 of the round before it.
struct RetrainCosts {
  int64_t jobs = 0;
  double median_seconds = NAN, max_seconds = NAN, max_swap_p99_ratio = NAN;
};

RetrainCosts Costs(const std::vector<RoundResult>& rounds) {
  RetrainCosts c;
  std::vector<double> seconds;
  for (const RoundResult& r : rounds) {
    if (r.job_id.empty()) continue;
    seconds.push_back(r.job_seconds);
    if (r.swap_probe_requests > 0 && r.retrieve_p99_ms > 0 && std::isfinite(r.swap_p99_ms)) {
      const double ratio = r.swap_p99_ms / r.retrieve_p99_ms;
      if (!(c.max_swap_p99_ratio >= ratio)) c.max_swap_p99_ratio = ratio;
    }
  }
  c.jobs = static_cast<int64_t>(seconds.size());
  if (seconds.empty()) return c;
  std::sort(seconds.begin(), seconds.end());
  c.median_seconds = seconds[seconds.size() / 2];
  c.max_seconds = seconds.back();
  return c;
}

void PrintResults(const std::vector<RoundResult>& rounds, const Summary& s, double wall_seconds) {
  std::printf("\n%-5s %8s %8s %8s %10s %-10s %-10s %-10s %7s\n", "round", "requests", "served",
              "optimal", "gap_closed", "model", "decision", "next", "job_s");
  for (const RoundResult& r : rounds) {
    const double gap = GapClosed(r.served_value, s.first, s.optimal);
    std::printf("%-5lld %8lld %8.4f %8.4f %10s %-10s %-10s %-10s %7s\n",
                static_cast<long long>(r.round), static_cast<long long>(r.requests),
                r.served_value, r.optimal_value,
                std::isfinite(gap) ? absl::StrFormat("%.3f", gap).c_str() : "-",
                r.model_version.c_str(), r.job_id.empty() ? "-" : r.decision.c_str(),
                r.job_id.empty() ? "-" : r.next_version.c_str(),
                r.job_id.empty() ? "-" : absl::StrFormat("%.1f", r.job_seconds).c_str());
  }
  const RoundResult& last = rounds.back();
  if (last.position_values.size() > 1) {
    std::printf("last round per position (served / best K-slate):");
    for (size_t j = 0; j < last.position_values.size(); ++j) {
      std::printf(" %zu: %.3f/%.3f", j, last.position_values[j],
                  j < last.position_optimal.size() ? last.position_optimal[j] : NAN);
    }
    std::printf("\n");
  }
  const RetrainCosts costs = Costs(rounds);
  if (costs.jobs > 0) {
    std::printf("retrain: median %.1f s, max %.1f s over %lld jobs", costs.median_seconds,
                costs.max_seconds, static_cast<long long>(costs.jobs));
    if (std::isfinite(costs.max_swap_p99_ratio))
      std::printf("; Retrieve p99 during retrain+swap / the round's p99: max %.2f",
                  costs.max_swap_p99_ratio);
    std::printf("\n");
  }
  std::printf("optimal %.4f  uniform %.4f  epsilon ceiling %.4f (gap %.3f)  first %.4f  final %.4f  "
              "gap closed %.3f  (%.0f s)\n",
              s.optimal, s.uniform, s.ceiling, GapClosed(s.ceiling, s.first, s.optimal), s.first,
              s.final_value, GapClosed(s.final_value, s.first, s.optimal), wall_seconds);
}

std::string RoundsCsv(const std::vector<RoundResult>& rounds, const Summary& s) {
  std::string csv =
      "round,requests,served_items,served_value,served_value_pos0,optimal_value,uniform_value,"
      "ceiling_value,observed_reward,gap_closed,model_version,versions_seen,play_seconds,"
      "retrieve_p99_ms,swap_probe_requests,swap_p99_ms,job_id,job_state,"
      "decision,saved_version,next_version,job_seconds,train_events,pending_excluded,ope_old,"
      "ope_new,ope_diff,ope_diff_low,ope_diff_high,reason";
  // Per position (slates): the served value and the best K-slate's value at each position.
  const size_t k = rounds.empty() ? 0 : rounds.front().position_values.size();
  for (size_t j = 0; j < k; ++j) absl::StrAppend(&csv, ",value_pos", j, ",optimal_pos", j);
  csv += "\n";
  for (const RoundResult& r : rounds) {
    std::string positions;
    for (size_t j = 0; j < k; ++j) {
      absl::StrAppend(&positions, ",", Num(j < r.position_values.size() ? r.position_values[j] : NAN),
                      ",", Num(j < r.position_optimal.size() ? r.position_optimal[j] : NAN));
    }
    absl::StrAppend(
        &csv,
        absl::StrJoin({absl::StrCat(r.round), absl::StrCat(r.requests), absl::StrCat(r.served_items),
                       Num(r.served_value), Num(r.served_value_pos0), Num(r.optimal_value),
                       Num(r.uniform_value), Num(r.ceiling_value), Num(r.observed_reward),
                       Num(GapClosed(r.served_value, s.first, s.optimal)),
                       CsvField(r.model_version), absl::StrCat(r.versions_seen),
                       absl::StrFormat("%.3f", r.play_seconds), Num(r.retrieve_p99_ms),
                       r.job_id.empty() ? "" : absl::StrCat(r.swap_probe_requests),
                       Num(r.swap_p99_ms), CsvField(r.job_id), r.job_state,
                       r.decision, r.saved_version, CsvField(r.next_version),
                       r.job_id.empty() ? "" : absl::StrFormat("%.3f", r.job_seconds),
                       r.job_id.empty() ? "" : absl::StrCat(r.train_events),
                       r.job_id.empty() ? "" : absl::StrCat(r.pending_excluded), Num(r.ope_old),
                       Num(r.ope_new), Num(r.ope_diff), Num(r.ope_diff_low), Num(r.ope_diff_high),
                       CsvField(r.reason)},
                      ","),
        positions, "\n");
  }
  return csv;
}

absl::StatusOr<std::string> SummaryJson(const SimFlags& f, const std::vector<RoundResult>& rounds,
                                        const Summary& s, double wall_seconds) {
  JsonWriter w;
  w.BeginObject();
  JsonSetting(f, w);
  w.Field("value_definition",
          "served_value: mean of the true q(x,a) over every served item of the round (all K "
          "positions); optimal_value: mean over the same contexts of the average q of the best "
          "K-slate (K=1: max_a q(x,a)); gap_closed = (v - first_value) / "
          "(optimal_value - first_value); ceiling_value = (1 - epsilon) optimal_value + epsilon "
          "uniform_value, the best value a server exploring with epsilon can serve (exact for K=1)");
  w.Key("rounds").BeginArray();
  for (const RoundResult& r : rounds) JsonRound(r, s, w);
  w.EndArray();
  JsonNumber(w, "optimal_value", s.optimal);
  JsonNumber(w, "uniform_value", s.uniform);
  JsonNumber(w, "ceiling_value", s.ceiling);
  JsonNumber(w, "ceiling_gap_closed", GapClosed(s.ceiling, s.first, s.optimal));
  JsonNumber(w, "first_value", s.first);
  JsonNumber(w, "final_value", s.final_value);
  JsonNumber(w, "gap_closed", GapClosed(s.final_value, s.first, s.optimal));
  const RetrainCosts costs = Costs(rounds);
  JsonNumber(w, "retrain_seconds_median", costs.median_seconds);
  JsonNumber(w, "retrain_seconds_max", costs.max_seconds);
  JsonNumber(w, "swap_p99_ratio_max", costs.max_swap_p99_ratio);
  w.Field("wall_seconds", wall_seconds);
  w.EndObject();
  return w.Finish();
}

}  // namespace optower::cli::sim
