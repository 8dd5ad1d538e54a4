// RetrievalEngine in-process (no gRPC): logging, propensities, validation, catalog changes.
#include "core/serving/retrieval_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/storage/event_log.h"
#include "core/serving/model_snapshot.h"
#include "core/serving/slate_sampler.h"
#include "core/storage/sqlite_event_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/serving_fixture.h"

namespace optower {
namespace {

using ::testing::HasSubstr;
using testutil::RandomCatalog;
using testutil::TempDir;
using testutil::TinyModel;

constexpr int64_t kDimContext = 4;
constexpr int64_t kDimItem = 3;

class RetrievalEngineTest : public ::testing::Test {
 protected:
  // A catalog of n items, towers with temperature tau, and an engine logging to a fresh event log.
  void Init(int64_t n, RetrievalEngineOptions options, double temperature = 1.0,
            bool with_log = true) {
    catalog_ = RandomCatalog(n, kDimItem, /*seed=*/7);
    model_ = TinyModel(kDimContext, catalog_, temperature, /*seed=*/11);
    ASSERT_NE(model_, nullptr);
    ModelSnapshot::Options snapshot_options;
    snapshot_options.index.type = ItemIndexOptions::Type::kExact;
    options.snapshot = snapshot_options;
    absl::StatusOr<std::shared_ptr<const ModelSnapshot>> snap =
        ModelSnapshot::Build("v1", model_, catalog_, /*catalog_version=*/0, snapshot_options);
    ASSERT_TRUE(snap.ok()) << snap.status();
    if (with_log) {
      EventLogOptions log_options;
      log_options.path = dir_.File("events.sqlite");
      log_options.max_commit_delay = absl::Milliseconds(1);
      absl::StatusOr<std::unique_ptr<EventLog>> log = SqliteEventLog::Open(log_options);
      ASSERT_TRUE(log.ok()) << log.status();
      log_ = std::move(*log);
    }
    absl::StatusOr<std::unique_ptr<RetrievalEngine>> engine =
        RetrievalEngine::Create(options, *snap, log_.get());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }

  RetrieveRequest Request(int64_t k, std::optional<uint64_t> seed = std::nullopt) const {
    RetrieveRequest r;
    r.context = {0.5f, -1.0f, 0.25f, 2.0f};
    r.k = k;
    r.seed = seed;
    return r;
  }

  std::vector<EventLog::JoinedRow> ReadLog() {
    EXPECT_TRUE(log_->Flush().ok());
    absl::StatusOr<std::vector<EventLog::JoinedRow>> rows = log_->ReadJoined({});
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<EventLog::JoinedRow>{};
  }

  TempDir dir_{"retrieval_engine_test"};
  ItemCatalog catalog_;
  std::shared_ptr<const TwoTowerModel> model_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<RetrievalEngine> engine_;
};

// Defect 5: the RPC's deadline reaches the engine. A call whose deadline already passed does no work
// and logs nothing (DeadlineExceeded); a later deadline lets it through, and the engine passes it on
// to the event log's waits (bounded there; tests/event_log_fault_test.cc).
TEST_F(RetrievalEngineTest, CallDeadlineIsCheckedBeforeWorkAndPassedToTheLog) {
  RetrievalEngineOptions options;
  options.top_m = 10;
  Init(20, options);
  const absl::Time past = absl::Now() - absl::Milliseconds(1);
  EXPECT_EQ(engine_->Retrieve(Request(/*k=*/3), past).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<RetrieveResult> served =
      engine_->Retrieve(Request(/*k=*/3), absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(engine_->Feedback({{served->request_id, served->items[0].item_id, 1.0, 0}}, past)
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<FeedbackResult> fed = engine_->Feedback(
      {{served->request_id, served->items[0].item_id, 1.0, 0}}, absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(fed.ok()) << fed.status();
  EXPECT_EQ(fed->accepted, 1);
  EXPECT_EQ(ReadLog().size(), 3u);  // the refused Retrieve logged nothing
  EXPECT_EQ(engine_->stats().retrieve_errors, 1);
  EXPECT_EQ(engine_->stats().feedback_errors, 1);
}

// options.slate_exploration reaches the sampler: per_slate logs pi_0(a_j) / (1 - sum_{i<j} pi_0),
// per_position (the default) the fresh mixture, which differs from it after position 0.
TEST_F(RetrievalEngineTest, SlateExplorationOptionChoosesTheLoggedConditionals) {
  for (const SlateExploration mode : {SlateExploration::kPerSlate, SlateExploration::kPerPosition}) {
    RetrievalEngineOptions options;
    options.top_m = 10;
    options.epsilon = 0.2;
    options.slate_exploration = mode;
    Init(30, options, /*temperature=*/0.5, /*with_log=*/false);
    double max_gap = 0.0;  // largest |conditional - per-slate formula| after position 0
    for (uint64_t seed = 0; seed < 20; ++seed) {
      absl::StatusOr<RetrieveResult> r = engine_->Retrieve(Request(/*k=*/4, seed));
      ASSERT_TRUE(r.ok()) << r.status();
      double drawn = 0.0;
      for (const SlateItem& item : r->items) {
        const double formula = item.propensity / (1.0 - drawn);
        if (mode == SlateExploration::kPerSlate) {
          // 1 - (at most 3 terms) loses ~1e-16; the mass left is > 0.1 here.
          EXPECT_NEAR(item.conditional_propensity, formula, 1e-14);
        }
        max_gap = std::max(max_gap, std::abs(item.conditional_propensity - formula));
        drawn += item.propensity;
      }
    }
    if (mode == SlateExploration::kPerPosition) EXPECT_GT(max_gap, 1e-3);
  }
}

TEST_F(RetrievalEngineTest, RetrieveLogsEveryServedItemAndFeedbackJoinsIt) {
  RetrievalEngineOptions options;
  options.top_m = 10;
  options.epsilon = 0.2;
  Init(30, options, /*temperature=*/0.5);
  RetrieveRequest request = Request(/*k=*/4, /*seed=*/3);
  request.request_id = "req-1";
  absl::StatusOr<RetrieveResult> result = engine_->Retrieve(request);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->items.size(), 4u);
  EXPECT_EQ(result->request_id, "req-1");
  EXPECT_EQ(result->model_version, "v1");

  absl::StatusOr<FeedbackResult> feedback =
      engine_->Feedback({{"req-1", result->items[1].item_id, 1.0, 0}});
  ASSERT_TRUE(feedback.ok()) << feedback.status();
  EXPECT_EQ(feedback->accepted, 1);

  const std::vector<EventLog::JoinedRow> rows = ReadLog();
  ASSERT_EQ(rows.size(), 4u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const EventLog::JoinedRow& row = rows[i];
    const SlateItem& item = result->items[row.position];
    EXPECT_EQ(row.request_id, "req-1");
    EXPECT_EQ(row.item_id, item.item_id);
    // Bit-exact: the logged propensities are the sampler's own numbers.
    EXPECT_EQ(row.propensity, item.propensity);
    EXPECT_EQ(row.conditional_propensity, item.conditional_propensity);
    EXPECT_GT(item.conditional_propensity, 0.0);
    EXPECT_LE(item.conditional_propensity, 1.0);
    EXPECT_EQ(row.k, 4);
    EXPECT_EQ(row.m, 10);
    EXPECT_EQ(row.epsilon, 0.2);
    EXPECT_EQ(row.temperature, 0.5);
    EXPECT_EQ(row.model_version, "v1");
    EXPECT_EQ(row.context, request.context);
    EXPECT_GT(row.served_time_us, 0);
    EXPECT_EQ(row.has_feedback, row.position == 1);
    if (row.has_feedback) EXPECT_EQ(row.reward, 1.0);
  }
}

// K = 1, one fixed context, 20000 seeds: the served frequencies must follow the logged
// propensities. Chi-square over all 40 items (df = 39; every expected count >= 20000 * 0.3 / 40 =
// 150). The threshold 72.05 is the 0.999 quantile of chi2(39): a correct sampler fails with
// probability 0.001, and the seeds are fixed, so the outcome is deterministic. A sampler logging
// the wrong numbers (e.g. softmax without the eps/N share: a 0.0075 error on each of the 35 outside
// items, ~150 expected each) gives a statistic in the thousands.
TEST_F(RetrievalEngineTest, ServedFrequenciesMatchLoggedPropensities) {
  constexpr int64_t kItems = 40;
  constexpr int64_t kRequests = 20000;
  constexpr double kEpsilon = 0.3;
  RetrievalEngineOptions options;
  options.top_m = 5;
  options.epsilon = kEpsilon;
  Init(kItems, options, /*temperature=*/0.05);
  for (int64_t i = 0; i < kRequests; ++i) {
    absl::StatusOr<RetrieveResult> r = engine_->Retrieve(Request(/*k=*/1, /*seed=*/i));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  const std::vector<EventLog::JoinedRow> rows = ReadLog();
  ASSERT_EQ(static_cast<int64_t>(rows.size()), kRequests);
  std::map<int64_t, int64_t> count;
  std::map<int64_t, double> propensity;
  for (const EventLog::JoinedRow& row : rows) {
    ++count[row.item_id];
    auto [it, inserted] = propensity.emplace(row.item_id, row.propensity);
    // One context and one snapshot: an item's propensity never varies.
    if (!inserted) ASSERT_EQ(it->second, row.propensity) << "item " << row.item_id;
  }
  ASSERT_EQ(static_cast<int64_t>(count.size()), kItems) << "every item has probability >= eps/N";

  // The logged numbers are pi_0 itself: recompute it independently from the snapshot.
  const std::shared_ptr<const ModelSnapshot> snap = engine_->snapshot();
  const RetrieveRequest request = Request(1);
  absl::StatusOr<std::vector<float>> u = snap->model().EmbedContexts(request.context.data(), 1);
  ASSERT_TRUE(u.ok());
  absl::StatusOr<std::vector<SearchHit>> top = snap->index().Search(u->data(), 5);
  ASSERT_TRUE(top.ok());
  absl::StatusOr<SlateSampler> sampler = SlateSampler::Create({kEpsilon, 0.05, false});
  ASSERT_TRUE(sampler.ok());
  absl::StatusOr<std::vector<double>> pi = sampler->FirstDrawDistribution(*top, snap->index(), {});
  ASSERT_TRUE(pi.ok()) << pi.status();
  std::set<int64_t> top_ids;
  for (const SearchHit& h : *top) top_ids.insert(h.item_id);

  double total = 0;
  double chi2 = 0;
  for (const auto& [id, p] : propensity) {
    EXPECT_EQ(p, (*pi)[snap->index().RowOf(id)]) << "item " << id;
    if (top_ids.count(id) == 0) {
      // Outside the top-M: exactly the uniform share, and served at that rate (chi-square below).
      EXPECT_EQ(p, kEpsilon / kItems) << "item " << id;
    } else {
      EXPECT_GT(p, kEpsilon / kItems) << "item " << id;
    }
    total += p;
    const double expected = p * kRequests;
    chi2 += (count[id] - expected) * (count[id] - expected) / expected;
  }
  EXPECT_NEAR(total, 1.0, 1e-9);
  EXPECT_LT(chi2, 72.05) << "chi-square over " << kItems << " items";
  std::printf("chi-square %.2f (df 39, 0.999 quantile 72.05) over %lld draws\n", chi2,
              static_cast<long long>(kRequests));

  // Pooled: the items outside the top-M together get 35 * eps / N = 26.25% of the draws
  // (sd of the count = sqrt(n p (1-p)) = 62; 4 sd tolerance).
  int64_t outside = 0;
  for (const auto& [id, c] : count) outside += top_ids.count(id) ? 0 : c;
  EXPECT_NEAR(static_cast<double>(outside), kRequests * kEpsilon * 35 / kItems, 4 * 62.2);
}

TEST_F(RetrievalEngineTest, SameSeedGivesTheSameSlate) {
  Init(30, RetrievalEngineOptions{});
  absl::StatusOr<RetrieveResult> a = engine_->Retrieve(Request(5, /*seed=*/42));
  absl::StatusOr<RetrieveResult> b = engine_->Retrieve(Request(5, /*seed=*/42));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->items.size(), b->items.size());
  for (size_t i = 0; i < a->items.size(); ++i) {
    // Exact: the same request through the same path twice in one process.
    EXPECT_EQ(a->items[i].item_id, b->items[i].item_id);
    EXPECT_EQ(a->items[i].propensity, b->items[i].propensity);
  }
  EXPECT_NE(a->request_id, b->request_id);
  EXPECT_EQ(a->request_id.size(), 32u);
}

TEST_F(RetrievalEngineTest, ExcludedItemsAreNeverServed) {
  RetrievalEngineOptions options;
  options.epsilon = 0.5;
  Init(12, options);
  RetrieveRequest request = Request(/*k=*/9);
  request.exclude = {100, 101, 102, 999999};  // the unknown id is ignored
  for (uint64_t seed = 0; seed < 50; ++seed) {
    request.seed = seed;
    absl::StatusOr<RetrieveResult> r = engine_->Retrieve(request);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->num_eligible, 9);
    for (const SlateItem& item : r->items) EXPECT_GE(item.item_id, 103);
  }
}

TEST_F(RetrievalEngineTest, GreedyServingLogsPropensityOne) {
  RetrievalEngineOptions options;
  options.greedy = true;
  Init(20, options);
  absl::StatusOr<RetrieveResult> r = engine_->Retrieve(Request(3));
  ASSERT_TRUE(r.ok()) << r.status();
  for (const EventLog::JoinedRow& row : ReadLog()) {
    EXPECT_EQ(row.propensity, 1.0);
    EXPECT_EQ(row.epsilon, 0.0);
    EXPECT_EQ(row.temperature, 0.0);
  }
}

TEST_F(RetrievalEngineTest, FeedbackCountsAcceptedDuplicateAndUnknown) {
  Init(20, RetrievalEngineOptions{});
  RetrieveRequest request = Request(2, 1);
  request.request_id = "r";
  absl::StatusOr<RetrieveResult> r = engine_->Retrieve(request);
  ASSERT_TRUE(r.ok());
  const int64_t served = r->items[0].item_id;
  int64_t not_served = 100;
  while (not_served == r->items[0].item_id || not_served == r->items[1].item_id) ++not_served;
  absl::StatusOr<FeedbackResult> f = engine_->Feedback(
      {{"r", served, 1.0, 0}, {"r", served, 0.0, 0}, {"r", not_served, 1.0, 0}, {"x", served, 1, 0}});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->accepted, 1);
  EXPECT_EQ(f->duplicate, 1);
  EXPECT_EQ(f->unknown, 2);
  EXPECT_EQ(engine_->stats().feedback_accepted, 1);
  EXPECT_EQ(engine_->stats().feedback_unknown, 2);
}

TEST_F(RetrievalEngineTest, RejectsInvalidRequestsNamingFieldAndValue) {
  RetrievalEngineOptions options;
  options.max_k = 10;
  options.max_feedback_batch = 3;
  Init(8, options);
  struct Case {
    std::function<void(RetrieveRequest&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](RetrieveRequest& r) { r.context.pop_back(); },
       "context.dense has 3 values: expected dim_context=4"},
      {[](RetrieveRequest& r) { r.context[2] = std::nanf(""); }, "context.dense[2]=nan"},
      {[](RetrieveRequest& r) { r.context[0] = INFINITY; }, "context.dense[0]=inf"},
      {[](RetrieveRequest& r) { r.k = 0; }, "k=0: k must be in [1, 10]"},
      {[](RetrieveRequest& r) { r.k = 11; }, "k=11: k must be in [1, 10]"},
      {[](RetrieveRequest& r) { r.k = 9; }, "k=9: above the 8 eligible items"},
      {[](RetrieveRequest& r) {
         r.k = 7;
         r.exclude = {100, 101};
       },
       "k=7: above the 6 eligible items (catalog of 8 minus 2 excluded)"},
      {[](RetrieveRequest& r) { r.request_id = std::string(200, 'x'); },
       "request_id has 200 bytes"},
      {[](RetrieveRequest& r) { r.categorical = {{"", {1}}}; }, "context.categorical[0].name"},
  };
  for (const Case& c : cases) {
    RetrieveRequest request = Request(2);
    c.mutate(request);
    absl::StatusOr<RetrieveResult> r = engine_->Retrieve(request);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << c.message << ": " << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  }
  EXPECT_EQ(engine_->stats().retrieve_errors, static_cast<int64_t>(cases.size()));

  auto feedback_error = [&](std::vector<FeedbackEvent> events) {
    return std::string(engine_->Feedback(std::move(events)).status().message());
  };
  EXPECT_THAT(feedback_error({}), HasSubstr("events: empty"));
  EXPECT_THAT(feedback_error(std::vector<FeedbackEvent>(4, {"r", 1, 0, 0})),
              HasSubstr("events has 4 events: at most max_feedback_batch=3"));
  EXPECT_THAT(feedback_error({{"r", 1, 0, 0}, {"r", 2, std::nan(""), 0}}),
              HasSubstr("events[1].reward=nan: must be finite"));
  EXPECT_THAT(feedback_error({{"", 1, 0, 0}}), HasSubstr("events[0].request_id: empty"));

  EXPECT_THAT(std::string(engine_->DeleteItems({101, 555}).status().message()),
              HasSubstr("item_ids[1]=555: not in the catalog"));
  EXPECT_THAT(std::string(engine_->DeleteItems({101, 101}).status().message()),
              HasSubstr("item_ids[1]=101: appears twice"));
  EXPECT_THAT(std::string(engine_->DeleteItems({}).status().message()), HasSubstr("item_ids: empty"));
  EXPECT_THAT(std::string(engine_->DeleteItems(catalog_.ids).status().message()),
              HasSubstr("would leave the catalog empty"));
  ItemCatalog bad = RandomCatalog(2, kDimItem, 1, /*first_id=*/500);
  bad.features[4] = std::nanf("");
  EXPECT_THAT(std::string(engine_->UpsertItems(bad).status().message()),
              HasSubstr("items[1].features[1]=nan: must be finite"));
  ItemCatalog twice = RandomCatalog(2, kDimItem, 1, /*first_id=*/500);
  twice.ids[1] = 500;
  EXPECT_THAT(std::string(engine_->UpsertItems(twice).status().message()),
              HasSubstr("items[1].item_id=500: appears twice"));
  EXPECT_EQ(engine_->snapshot()->catalog_version(), 0) << "failed changes publish nothing";
}

TEST_F(RetrievalEngineTest, UpsertEmbedsNewItemsWithTheItemTowerAndDeleteRemovesThem) {
  RetrievalEngineOptions options;
  options.epsilon = 1.0;  // uniform: every item is equally likely, so a missing one shows up
  Init(10, options);
  const ItemCatalog fresh = RandomCatalog(3, kDimItem, /*seed=*/99, /*first_id=*/1000);
  ItemCatalog changed = RandomCatalog(1, kDimItem, /*seed=*/5, /*first_id=*/100);  // existing id
  ItemCatalog upsert = fresh;
  upsert.ids.push_back(changed.ids[0]);
  upsert.features.insert(upsert.features.end(), changed.features.begin(), changed.features.end());
  absl::StatusOr<CatalogChangeResult> up = engine_->UpsertItems(upsert);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->inserted, 3);
  EXPECT_EQ(up->updated, 1);
  EXPECT_EQ(up->catalog_size, 13);
  EXPECT_EQ(up->catalog_version, 1);

  const std::shared_ptr<const ModelSnapshot> snap = engine_->snapshot();
  absl::StatusOr<std::vector<float>> expected = model_->EmbedItems(upsert);
  ASSERT_TRUE(expected.ok());
  const int64_t d = snap->embedding_dim();
  for (int64_t i = 0; i < upsert.size(); ++i) {
    const int64_t row = snap->index().RowOf(upsert.ids[i]);
    ASSERT_GE(row, 0);
    // The engine embeds the same batch with the same towers, but on its build thread, where
    // LibTorch/OpenBLAS may split the work differently: equal up to float32 rounding of the tower's
    // dot products (length <= 16 here: <= 16·2^-24·Σ|terms| ≈ 1e-6·Σ|terms|, Σ|terms| = O(1)).
    // Another item's or a stale embedding differs by O(0.1).
    for (int64_t j = 0; j < d; ++j) {
      const float want = (*expected)[i * d + j];
      EXPECT_NEAR(snap->item_embedding(row)[j], want, 1e-5f * (1.0f + std::fabs(want)))
          << upsert.ids[i];
    }
  }

  absl::StatusOr<CatalogChangeResult> del = engine_->DeleteItems({1000, 100});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->deleted, 2);
  EXPECT_EQ(del->catalog_size, 11);
  std::set<int64_t> served;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    absl::StatusOr<RetrieveResult> r = engine_->Retrieve(Request(5, seed));
    ASSERT_TRUE(r.ok());
    for (const SlateItem& item : r->items) served.insert(item.item_id);
  }
  EXPECT_EQ(served.count(1000), 0u);
  EXPECT_EQ(served.count(100), 0u);
  EXPECT_EQ(served.count(1001), 1u) << "an upserted item is servable";
  EXPECT_EQ(served.size(), 11u);
}

TEST_F(RetrievalEngineTest, ReplaceModelServesTheNewVersion) {
  Init(10, RetrievalEngineOptions{});
  ASSERT_TRUE(engine_->ReplaceModel("v2", TinyModel(kDimContext, catalog_, 1.0, 12)).ok());
  absl::StatusOr<RetrieveResult> r = engine_->Retrieve(Request(2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->model_version, "v2");
  EXPECT_TRUE(absl::IsInvalidArgument(
      engine_->ReplaceModel("v3", TinyModel(kDimContext + 1, catalog_, 1.0, 12))));
}

// Replaced snapshots are freed by the engine's reaper thread (core/serving/snapshot_reaper.h), not by the
// writer: it polls every millisecond, so 10 s is a generous bound on a loaded machine.
bool ExpiresWithin(const std::weak_ptr<const ModelSnapshot>& s, absl::Duration bound) {
  const absl::Time deadline = absl::Now() + bound;
  while (!s.expired() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  return s.expired();
}

TEST_F(RetrievalEngineTest, ReplacedSnapshotIsFreedOnceNoRequestHoldsIt) {
  Init(10, RetrievalEngineOptions{});
  std::weak_ptr<const ModelSnapshot> v1 = engine_->snapshot();
  ASSERT_TRUE(engine_->ReplaceModel("v2", TinyModel(kDimContext, catalog_, 1.0, 12)).ok());
  EXPECT_TRUE(ExpiresWithin(v1, absl::Seconds(10))) << "no request held v1: the reaper frees it";

  // A request that still holds its snapshot keeps it alive, and the swap does not wait for it:
  // the reaper (or, past its 2 s bound, the last holder) frees it once it is let go.
  std::shared_ptr<const ModelSnapshot> pinned = engine_->snapshot();
  std::weak_ptr<const ModelSnapshot> v2 = pinned;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(engine_->ReplaceModel("v3", TinyModel(kDimContext, catalog_, 1.0, 13)).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
  EXPECT_EQ(engine_->snapshot()->model_version(), "v3");
  ASSERT_FALSE(v2.expired());
  EXPECT_EQ(pinned->model_version(), "v2");
  pinned.reset();
  EXPECT_TRUE(ExpiresWithin(v2, absl::Seconds(10)));

  // Catalog changes retire their predecessor the same way.
  std::weak_ptr<const ModelSnapshot> v3 = engine_->snapshot();
  ASSERT_TRUE(engine_->DeleteItems({catalog_.ids[0]}).ok());
  EXPECT_TRUE(ExpiresWithin(v3, absl::Seconds(10)));
}

TEST_F(RetrievalEngineTest, WithoutEventLogServesButRefusesFeedback) {
  Init(10, RetrievalEngineOptions{}, 1.0, /*with_log=*/false);
  EXPECT_TRUE(engine_->Retrieve(Request(3)).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(engine_->Feedback({{"r", 100, 1, 0}}).status()));
}

}  // namespace
}  // namespace optower
