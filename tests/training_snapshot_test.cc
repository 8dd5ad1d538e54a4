// The training snapshot (core/training/training_snapshot.h): joined log rows -> samples with the attribution
// window, the counts of what was left out, the paged read from a real EventLog, and the time split
// that holds out the newest samples (cut at a request boundary) for the promotion gate.
#include "core/training/training_snapshot.h"

#include "core/storage/sqlite_event_log.h"

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace optower {
namespace {

using ::testing::HasSubstr;

EventLog::JoinedRow Row(const std::string& request, int64_t item, bool feedback, double reward,
                        absl::Time served) {
  EventLog::JoinedRow r;
  r.request_id = request;
  r.item_id = item;
  r.propensity = 0.25;
  r.conditional_propensity = 0.25;
  r.context = {1.f, 2.f};
  r.served_time_us = absl::ToUnixMicros(served);
  r.has_feedback = feedback;
  r.reward = reward;
  return r;
}

TEST(SnapshotTest, AppliesTheAttributionWindowAndDropsUnknownItems) {
  ItemCatalog items;
  items.dim_features = 1;
  items.ids = {10, 11};
  items.features = {0.f, 1.f};
  const absl::Time now = absl::FromUnixSeconds(1'000'000);
  SnapshotOptions o;
  o.attribution_window = absl::Minutes(10);
  o.default_reward = 0.25;
  TrainingSnapshot snap;
  snap.log.dim_context = 2;
  std::vector<EventLog::JoinedRow> rows = {
      Row("r1", 11, true, 1.0, now - absl::Minutes(1)),      // young but rewarded: used as is
      Row("r1", 10, false, 0.0, now - absl::Minutes(11)),    // old, unrewarded: default reward
      Row("r2", 10, false, 0.0, now - absl::Minutes(9)),     // young, unrewarded: left out
      Row("r2", 99, true, 1.0, now - absl::Minutes(30)),     // item gone from the catalog
      Row("r3", 11, false, 0.0, now - absl::Minutes(10)),    // exactly at the window: old
  };
  rows.push_back(Row("r4", 10, true, 0.0, now));
  rows.back().context = {1.f};  // wrong dimension
  ASSERT_TRUE(AppendToSnapshot(rows, items, o, now, &snap).ok());
  EXPECT_EQ(snap.log.actions, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(snap.log.rewards, (std::vector<float>{1.f, 0.25f, 0.25f}));
  EXPECT_EQ(snap.log.pscores, (std::vector<float>{0.25f, 0.25f, 0.25f}));
  EXPECT_EQ(snap.starts_request, (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(snap.counts.rows_read, 6);
  EXPECT_EQ(snap.counts.with_feedback, 1);
  EXPECT_EQ(snap.counts.default_reward, 2);
  EXPECT_EQ(snap.counts.pending_excluded, 1);
  EXPECT_EQ(snap.counts.unknown_item, 1);
  EXPECT_EQ(snap.counts.bad_context, 1);
  // A second page continues the request bookkeeping.
  ASSERT_TRUE(AppendToSnapshot({Row("r3", 10, true, 1.0, now)}, items, o, now, &snap).ok());
  EXPECT_EQ(snap.starts_request.back(), 0);
}

// Issue 12: logged categorical features (schema 4) fill BanditLog::context_categorical under the
// served model's context schema; rows whose features do not fit it are left out as bad_context.
TEST(SnapshotTest, LoggedCategoricalFeaturesFillTheLogsColumnsUnderTheServedSchema) {
  ItemCatalog items;
  items.dim_features = 1;
  items.ids = {10, 11};
  items.features = {0.f, 1.f};
  const absl::Time now = absl::FromUnixSeconds(1'000'000);
  TrainingSnapshot snap;
  snap.log.dim_context = 2;
  snap.context_fields = {{"user", 64, 4, 1}, {"tags", 64, 4, 2}};
  auto row = [&](const std::string& request, const std::string& categorical) {
    EventLog::JoinedRow r = Row(request, 10, true, 1.0, now);
    r.categorical = categorical;
    return r;
  };
  ASSERT_TRUE(AppendToSnapshot({row("r1", "tags=3|9;user=12"), row("r2", ""),
                                row("r3", "country=49"),       // not in the schema
                                row("r4", "tags=1|2|3"),       // more ids than max_ids
                                row("r5", "user=abc"),         // unreadable
                                row("r6", "user=7")},
                               items, SnapshotOptions{}, now, &snap)
                  .ok());
  EXPECT_EQ(snap.counts.bad_context, 3);
  ASSERT_EQ(snap.log.size(), 3);
  const CategoricalColumns& cols = snap.log.context_categorical;
  EXPECT_EQ(cols.fields(), (std::vector<std::string>{"user", "tags"}));
  ASSERT_EQ(cols.rows(), 3);
  EXPECT_EQ(std::vector<int64_t>(cols.ids(0, 0).begin(), cols.ids(0, 0).end()),
            std::vector<int64_t>{12});
  EXPECT_EQ(std::vector<int64_t>(cols.ids(0, 1).begin(), cols.ids(0, 1).end()),
            (std::vector<int64_t>{3, 9}));
  EXPECT_TRUE(cols.ids(1, 0).empty());
  EXPECT_TRUE(cols.ids(1, 1).empty());
  EXPECT_EQ(std::vector<int64_t>(cols.ids(2, 0).begin(), cols.ids(2, 0).end()),
            std::vector<int64_t>{7});
  // The split keeps the columns with their rows.
  HoldoutSplit split = SplitHoldout(&snap, 0.34);
  EXPECT_EQ(split.train.context_categorical.rows(), split.train.size());
  EXPECT_EQ(split.holdout.context_categorical.rows(), split.holdout.size());

  // A dense-only model ignores logged features.
  TrainingSnapshot dense;
  dense.log.dim_context = 2;
  ASSERT_TRUE(AppendToSnapshot({row("r1", "user=12")}, items, SnapshotOptions{}, now, &dense).ok());
  EXPECT_EQ(dense.log.size(), 1);
  EXPECT_TRUE(dense.log.context_categorical.empty());
}

// Slates: each sample carries its draw's conditional propensity and the catalog rows of the earlier
// items of its request, including served items whose own row is not used (pending, bad reward) and
// excluding items that left the catalog; the bookkeeping continues across pages.
TEST(SnapshotTest, SamplesCarryTheirSlatePrefixAndConditionalPropensity) {
  ItemCatalog items;
  items.dim_features = 1;
  items.ids = {10, 11, 12, 13};
  items.features = {0.f, 1.f, 2.f, 3.f};
  const absl::Time now = absl::FromUnixSeconds(1'000'000);
  SnapshotOptions o;
  o.attribution_window = absl::Minutes(10);
  TrainingSnapshot snap;
  snap.log.dim_context = 2;
  auto slate_row = [&](const std::string& request, int64_t item, int32_t position, bool feedback,
                       absl::Time served) {
    EventLog::JoinedRow r = Row(request, item, feedback, 1.0, served);
    r.position = position;
    r.conditional_propensity = 0.5 + 0.1 * position;
    r.propensity = 0.01 * (position + 1);
    return r;
  };
  const absl::Time old = now - absl::Minutes(30);
  ASSERT_TRUE(AppendToSnapshot({slate_row("r1", 12, 0, true, old),
                                slate_row("r1", 11, 1, false, now),  // pending: not a sample
                                slate_row("r1", 99, 2, true, old),   // left the catalog
                                slate_row("r1", 10, 3, true, old)},
                               items, o, now, &snap)
                  .ok());
  // Page boundary inside request r2.
  ASSERT_TRUE(AppendToSnapshot({slate_row("r2", 13, 0, true, old)}, items, o, now, &snap).ok());
  ASSERT_TRUE(AppendToSnapshot({slate_row("r2", 12, 1, true, old)}, items, o, now, &snap).ok());
  const BanditLog& log = snap.log;
  ASSERT_EQ(log.size(), 4);
  ASSERT_TRUE(log.has_slates());
  EXPECT_EQ(log.actions, (std::vector<int64_t>{2, 0, 3, 2}));
  EXPECT_EQ(log.positions, (std::vector<int32_t>{0, 3, 0, 1}));
  EXPECT_EQ(log.pscores, (std::vector<float>{0.5f, 0.8f, 0.5f, 0.6f}));
  // pi_0 of each sample too (the top-K correction's weights).
  EXPECT_EQ(log.first_draw_pscores, (std::vector<float>{0.01f, 0.04f, 0.01f, 0.02f}));
  auto prefix = [&](int64_t i) { return std::vector<int64_t>(log.prefix_begin(i), log.prefix_end(i)); };
  EXPECT_EQ(prefix(0), (std::vector<int64_t>{}));
  EXPECT_EQ(prefix(1), (std::vector<int64_t>{2, 1}));  // 12 and the pending 11; 99 is gone
  EXPECT_EQ(prefix(2), (std::vector<int64_t>{}));
  EXPECT_EQ(prefix(3), (std::vector<int64_t>{3}));
  // The holdout slice keeps each sample's prefix.
  const BanditLog tail = SliceLog(log, 1, 4);
  ASSERT_EQ(tail.size(), 3);
  EXPECT_EQ(tail.positions, (std::vector<int32_t>{3, 0, 1}));
  EXPECT_EQ(tail.first_draw_pscores, (std::vector<float>{0.04f, 0.01f, 0.02f}));
  EXPECT_EQ(std::vector<int64_t>(tail.prefix_begin(0), tail.prefix_end(0)),
            (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(std::vector<int64_t>(tail.prefix_begin(2), tail.prefix_end(2)),
            (std::vector<int64_t>{3}));
}

TEST(SnapshotTest, HoldoutIsTheNewestSamplesCutAtARequestBoundary) {
  TrainingSnapshot snap;
  snap.log.dim_context = 1;
  // 10 samples in requests of sizes 3, 3, 2, 2: starts at 0, 3, 6, 8.
  snap.starts_request = {1, 0, 0, 1, 0, 0, 1, 0, 1, 0};
  for (int i = 0; i < 10; ++i) {
    snap.log.contexts.push_back(static_cast<float>(i));
    snap.log.actions.push_back(0);
    snap.log.rewards.push_back(0.f);
    snap.log.pscores.push_back(0.5f);
  }
  EXPECT_EQ(HoldoutStart(snap, 0.0), 10);
  EXPECT_EQ(HoldoutStart(snap, 0.2), 8);  // exactly at a boundary
  EXPECT_EQ(HoldoutStart(snap, 0.3), 6);  // 7 is inside request 3 -> moved back to its start
  EXPECT_EQ(HoldoutStart(snap, 0.5), 3);
  const BanditLog tail = SliceLog(snap.log, 6, 10);
  EXPECT_EQ(tail.size(), 4);
  EXPECT_EQ(tail.contexts.front(), 6.f);
}


TEST(SnapshotTest, RejectsBadOptionsAndDuplicateCatalogIds) {
  ItemCatalog items;
  items.dim_features = 1;
  items.ids = {10, 11};
  items.features = {0.f, 1.f};
  const absl::Time now = absl::Now();
  TrainingSnapshot no_dim;
  EXPECT_THAT(AppendToSnapshot({}, items, {}, now, &no_dim).message(),
              HasSubstr("snapshot.log.dim_context=0"));
  TrainingSnapshot snap;
  snap.log.dim_context = 2;
  SnapshotOptions o;
  o.attribution_window = absl::Seconds(-1);
  EXPECT_THAT(AppendToSnapshot({}, items, o, now, &snap).message(),
              HasSubstr("attribution_window=-1s"));
  o = SnapshotOptions();
  o.default_reward = std::nan("");
  EXPECT_THAT(AppendToSnapshot({}, items, o, now, &snap).message(), HasSubstr("default_reward=nan"));
  items.ids = {10, 10};
  absl::Status dup = AppendToSnapshot({}, items, {}, now, &snap);
  EXPECT_EQ(dup.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dup.message(), HasSubstr("catalog item id 10 appears twice"));
}

TEST(SnapshotTest, CountsTextSaysWhatWasUsedAndLeftOut) {
  SnapshotCounts c;
  c.rows_read = 10;
  c.with_feedback = 5;
  c.default_reward = 2;
  c.pending_excluded = 1;
  c.unknown_item = 1;
  c.bad_reward = 1;
  SnapshotOptions o;
  o.default_reward = 0.25;
  o.reward_min = 0;
  o.reward_max = 1;
  EXPECT_EQ(SnapshotCountsText(c, /*watermark=*/42, o),
            "10 rows up to served_id 42: 5 with feedback, 2 past the attribution window with the "
            "default reward 0.25; left out: 1 awaiting feedback within the window, 1 for items no "
            "longer in the catalog, 0 with another context size, 1 with a reward outside [0, 1]");
}

// 10 samples in requests of sizes 3, 3, 2, 2 (starts at 0, 3, 6, 8); context i for sample i.
TrainingSnapshot TenSamples() {
  TrainingSnapshot snap;
  snap.log.dim_context = 1;
  snap.starts_request = {1, 0, 0, 1, 0, 0, 1, 0, 1, 0};
  for (int i = 0; i < 10; ++i) {
    snap.log.contexts.push_back(static_cast<float>(i));
    snap.log.actions.push_back(i % 2);
    snap.log.rewards.push_back(0.f);
    snap.log.pscores.push_back(0.5f);
  }
  return snap;
}

TEST(SnapshotTest, SplitHoldoutKeepsTheOrderAndFreesTheSnapshot) {
  TrainingSnapshot snap = TenSamples();
  // fraction 0.3: 3 samples -> cut at 7, inside request 3 -> moved back to 6.
  const HoldoutSplit split = SplitHoldout(&snap, 0.3);
  EXPECT_EQ(snap.log.size(), 0);
  EXPECT_TRUE(snap.log.contexts.empty());
  ASSERT_EQ(split.train.size(), 6);
  ASSERT_EQ(split.holdout.size(), 4);
  EXPECT_EQ(split.train.dim_context, 1);
  EXPECT_EQ(split.holdout.dim_context, 1);
  EXPECT_EQ(split.train.contexts, (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(split.holdout.contexts, (std::vector<float>{6, 7, 8, 9}));
  EXPECT_EQ(split.holdout.actions, (std::vector<int64_t>{0, 1, 0, 1}));
  // fraction 0: no holdout (the gate is off).
  TrainingSnapshot all = TenSamples();
  const HoldoutSplit no_gate = SplitHoldout(&all, 0.0);
  EXPECT_EQ(no_gate.train.size(), 10);
  EXPECT_EQ(no_gate.holdout.size(), 0);
}

TEST(SnapshotTest, CheckHoldoutSplitNamesThePartThatIsTooSmall) {
  TrainingSnapshot snap = TenSamples();
  const HoldoutSplit split = SplitHoldout(&snap, 0.3);  // 6 train, 4 holdout
  EXPECT_TRUE(CheckHoldoutSplit(split, 0.3, /*min_holdout=*/4, /*min_train=*/6).ok());
  const absl::Status holdout = CheckHoldoutSplit(split, 0.3, 5, 6);
  EXPECT_EQ(holdout.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(holdout.message(),
            "too few events for the promotion gate's holdout: 4 < min_holdout=5 "
            "(holdout_fraction=0.3 of 10 events)");
  const absl::Status train = CheckHoldoutSplit(split, 0.3, 4, 7);
  EXPECT_EQ(train.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(train.message(), "too few events to train after the holdout split: 6 < 7");
  // With the gate off an empty holdout is fine; the train part is still checked.
  TrainingSnapshot all = TenSamples();
  const HoldoutSplit no_gate = SplitHoldout(&all, 0.0);
  EXPECT_TRUE(CheckHoldoutSplit(no_gate, 0.0, 20, 10).ok());
  EXPECT_FALSE(CheckHoldoutSplit(no_gate, 0.0, 20, 11).ok());
}

// ---- ReadTrainingSnapshot on a real EventLog ----

class ReadSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/training_snapshot_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    EventLogOptions lo;
    lo.path = dir_ + "/events.db";
    lo.max_commit_delay = absl::ZeroDuration();
    auto log = SqliteEventLog::Open(lo);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    items_.dim_features = 1;
    items_.ids = {10, 11};
    items_.features = {0.f, 1.f};
  }
  void TearDown() override {
    log_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Five requests q0..q4, served two hours ago, each with items 10 and 11 (context {i, -i}); item 10
  // gets reward 1, item 11 no feedback. Served ids follow this order: 10 rows.
  void Fill() {
    const absl::Time served = absl::Now() - absl::Hours(2);
    std::vector<FeedbackEvent> feedback;
    for (int i = 0; i < 5; ++i) {
      ServedSlate s;
      s.request_id = absl::StrCat("q", i);
      s.k = 2;
      s.m = 2;
      s.epsilon = 1.0;
      s.temperature = 1.0;
      s.model_version = "000001";
      s.context = {static_cast<float>(i), static_cast<float>(-i)};
      s.time_us = absl::ToUnixMicros(served);
      s.items = {{10, 0, 0.5, 0.5}, {11, 1, 0.25, 0.5}};
      ASSERT_TRUE(log_->AppendSlate(std::move(s)).ok());
      feedback.push_back({absl::StrCat("q", i), 10, 1.0, absl::ToUnixMicros(served) + 1000});
    }
    ASSERT_TRUE(log_->AppendFeedback(std::move(feedback)).ok());
    ASSERT_TRUE(log_->Flush().ok());
  }

  // Reads `range` into `snap` (a new one: the context size comes from the first row).
  absl::Status Read(const SnapshotReadRange& range, TrainingSnapshot* snap,
                    const std::function<absl::Status()>& between = nullptr) {
    SnapshotOptions o;
    o.default_reward = 0.5;
    return ReadTrainingSnapshot(*log_, range, items_, o, absl::Now(), between, snap);
  }

  std::string dir_;
  std::unique_ptr<EventLog> log_;
  ItemCatalog items_;
};

TEST_F(ReadSnapshotTest, PagesGiveTheSameSnapshotAsOneRead) {
  Fill();
  absl::StatusOr<int64_t> watermark = log_->MaxServedId();
  ASSERT_TRUE(watermark.ok()) << watermark.status();
  SnapshotReadRange range;
  range.watermark = *watermark;
  TrainingSnapshot whole;
  ASSERT_TRUE(Read(range, &whole).ok());
  EXPECT_EQ(whole.log.dim_context, 2);  // from the first row
  EXPECT_EQ(whole.counts.rows_read, 10);
  EXPECT_EQ(whole.counts.with_feedback, 5);
  EXPECT_EQ(whole.counts.default_reward, 5);
  EXPECT_EQ(whole.log.actions, (std::vector<int64_t>{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}));
  EXPECT_EQ(whole.log.rewards, (std::vector<float>{1, 0.5, 1, 0.5, 1, 0.5, 1, 0.5, 1, 0.5}));
  EXPECT_EQ(whole.starts_request, (std::vector<uint8_t>{1, 0, 1, 0, 1, 0, 1, 0, 1, 0}));
  // Pages of 3 split request q1 (rows 3 and 4) across pages: the request bookkeeping continues.
  // The check between pages runs after each full page: 3 + 3 + 3, then 1 row ends the read.
  range.page_rows = 3;
  int checks = 0;
  TrainingSnapshot paged;
  ASSERT_TRUE(Read(range, &paged, [&] {
                ++checks;
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(checks, 3);
  EXPECT_EQ(paged.counts.rows_read, 10);
  EXPECT_EQ(paged.log.actions, whole.log.actions);
  EXPECT_EQ(paged.log.contexts, whole.log.contexts);
  EXPECT_EQ(paged.starts_request, whole.starts_request);
}

TEST_F(ReadSnapshotTest, MaxEventsKeepsTheNewestServedIds) {
  Fill();
  absl::StatusOr<int64_t> watermark = log_->MaxServedId();
  ASSERT_TRUE(watermark.ok()) << watermark.status();
  SnapshotReadRange range;
  range.watermark = *watermark;
  range.max_events = 4;  // the last two requests, q3 and q4
  TrainingSnapshot newest;
  ASSERT_TRUE(Read(range, &newest).ok());
  EXPECT_EQ(newest.counts.rows_read, 4);
  EXPECT_EQ(newest.log.contexts, (std::vector<float>{3, -3, 3, -3, 4, -4, 4, -4}));
  // Up to a lower watermark: only what was served by then (q0, q1, q2).
  range.watermark = *watermark - 4;
  range.max_events = -1;
  TrainingSnapshot older;
  ASSERT_TRUE(Read(range, &older).ok());
  EXPECT_EQ(older.counts.rows_read, 6);
}

TEST_F(ReadSnapshotTest, AnErrorBetweenPagesEndsTheRead) {
  Fill();
  SnapshotReadRange range;
  range.watermark = *log_->MaxServedId();
  range.page_rows = 4;
  TrainingSnapshot snap;
  EXPECT_EQ(Read(range, &snap, [] { return absl::CancelledError("stop"); }).code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(snap.counts.rows_read, 4);  // the first page was read
  range.page_rows = 0;
  TrainingSnapshot bad;
  EXPECT_EQ(Read(range, &bad).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ReadSnapshotTest, WatermarkZeroReadsNothing) {
  SnapshotReadRange range;  // watermark 0: what MaxServedId gives for an empty log
  TrainingSnapshot empty;
  ASSERT_TRUE(Read(range, &empty).ok());
  EXPECT_EQ(empty.counts.rows_read, 0);
  EXPECT_EQ(empty.log.size(), 0);
  Fill();
  TrainingSnapshot still;  // rows in the log, but not up to watermark 0
  ASSERT_TRUE(Read(range, &still).ok());
  EXPECT_EQ(still.counts.rows_read, 0);
}

}  // namespace
}  // namespace optower
