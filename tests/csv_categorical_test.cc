// Tests of the CSV convention for categorical columns (`c:<name>`, ids separated by '|') and the
// optional `position` column of logs.csv (core/base/csv_io.h, core/base/csv_categorical.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/csv_categorical.h"
#include "core/base/csv_io.h"

namespace optower {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<int64_t> Ids(const CategoricalColumns& cols, int64_t row, int64_t field) {
  auto ids = cols.ids(row, field);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

class CsvCategoricalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/csv_categorical_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Raw(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // Items 10, 20, 30 with one dense feature and no categorical columns.
  static ItemCatalog ThreeItems() {
    ItemCatalog items;
    items.dim_features = 1;
    items.ids = {10, 20, 30};
    items.features = {0.f, 1.f, 2.f};
    return items;
  }

  std::string dir_;
};

// Every reader error is one line "<path>:<line>: ..." naming the column and the value.
void ExpectDataError(const absl::Status& status, const std::string& path, int line,
                     const std::vector<std::string>& mentions) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  const std::string msg(status.message());
  EXPECT_THAT(msg, StartsWith(path + ":" + std::to_string(line) + ": "));
  EXPECT_THAT(msg, Not(HasSubstr("\n")));
  for (const std::string& m : mentions) EXPECT_THAT(msg, HasSubstr(m));
}

// ---------------------------------------------------------------- reading

TEST_F(CsvCategoricalTest, LogCellsHoldIntegerAndHashedIdsAndEmptyCells) {
  const std::string path =
      Raw("logs.csv",
          "x0,c:user,c:tags,action,reward,pscore,position\n"
          "0.5,49,3|red| -7 ,20,1,0.25,2\n"
          "1.5,,,10,0,1,0\n");
  auto log = ReadLogsCsv(path, ThreeItems());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->dim_context, 1);
  EXPECT_EQ(log->contexts, (std::vector<float>{0.5f, 1.5f}));
  EXPECT_EQ(log->actions, (std::vector<int64_t>{1, 0}));
  EXPECT_THAT(log->positions, ElementsAre(2, 0));
  EXPECT_FALSE(log->has_slates());  // position alone: every row stays a draw of its own
  ASSERT_THAT(log->context_categorical.fields(), ElementsAre("user", "tags"));
  ASSERT_EQ(log->context_categorical.rows(), 2);
  EXPECT_THAT(Ids(log->context_categorical, 0, 0), ElementsAre(49));
  EXPECT_THAT(Ids(log->context_categorical, 0, 1),
              ElementsAre(3, CategoricalIdFromText("red"), -7));
  EXPECT_TRUE(Ids(log->context_categorical, 1, 0).empty());
  EXPECT_TRUE(Ids(log->context_categorical, 1, 1).empty());
}

TEST_F(CsvCategoricalTest, LogsWithoutDenseContextNeedACategoricalColumn) {
  auto log = ReadLogsCsv(Raw("a.csv", "c:user,action,reward,pscore\nu1,30,0,0.5\n"), ThreeItems());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->dim_context, 0);
  EXPECT_TRUE(log->contexts.empty());
  EXPECT_THAT(Ids(log->context_categorical, 0, 0), ElementsAre(CategoricalIdFromText("u1")));
  EXPECT_TRUE(log->positions.empty());

  const std::string bad = Raw("b.csv", "action,reward,pscore\n30,0,0.5\n");
  ExpectDataError(ReadLogsCsv(bad, ThreeItems()).status(), bad, 1,
                  {"header column 1 is 'action' where 'x0' was expected"});
}

TEST_F(CsvCategoricalTest, DenseOnlyFilesReadAsBeforeWithEmptyCategoricalColumns) {
  auto log = ReadLogsCsv(Raw("logs.csv", "x0,action,reward,pscore\n1,10,1,1\n"), ThreeItems());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE(log->context_categorical.empty());
  EXPECT_TRUE(log->positions.empty());
  auto items = ReadItemsCsv(Raw("items.csv", "item,f0\n1,2\n"));
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_TRUE(items->categorical.empty());
}

TEST_F(CsvCategoricalTest, ItemsTakeCategoricalColumnsAfterTheDenseOnes) {
  auto items = ReadItemsCsv(Raw("items.csv", "item,c:brand,c:colour\n7,acme,1|2\n8,,3\n"));
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_EQ(items->dim_features, 0);
  ASSERT_THAT(items->categorical.fields(), ElementsAre("brand", "colour"));
  EXPECT_THAT(Ids(items->categorical, 0, 0), ElementsAre(CategoricalIdFromText("acme")));
  EXPECT_THAT(Ids(items->categorical, 0, 1), ElementsAre(1, 2));
  EXPECT_TRUE(Ids(items->categorical, 1, 0).empty());

  const std::string late = Raw("late.csv", "item,c:brand,f0\n7,a,1\n");
  ExpectDataError(ReadItemsCsv(late).status(), late, 1, {"extra column 3 'f0'"});
}

TEST_F(CsvCategoricalTest, ContextTableReadsCategoricalColumnsAndTheDenseReaderRefusesThem) {
  const std::string path = Raw("ctx.csv", "x0,x1,c:user\n1,2,5\n3,4,\n");
  auto table = ReadContextTableCsv(path);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->rows, 2);
  EXPECT_EQ(table->dim, 2);
  EXPECT_EQ(table->dense, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_THAT(Ids(table->categorical, 0, 0), ElementsAre(5));
  int64_t dim = 0;
  ExpectDataError(ReadContextsCsv(path, &dim).status(), path, 1,
                  {"column 'c:user'", "categorical columns are not taken here"});
}

// ---------------------------------------------------------------- errors

TEST_F(CsvCategoricalTest, BadCellsNameFileLineColumnAndValue) {
  const std::string head = "x0,c:user,action,reward,pscore\n";
  for (const std::string& cell : {"1||2", "|1", "1|", "|", " | "}) {
    const std::string path = Raw("logs.csv", head + "1,5,10,1,1\n1," + cell + ",10,1,1\n");
    ExpectDataError(ReadLogsCsv(path, ThreeItems()).status(), path, 3,
                    {"column 'c:user'", "empty id"});
  }
}

TEST_F(CsvCategoricalTest, BadHeaderNamesAreRejected) {
  struct Case {
    std::string header;
    std::string mention;
  };
  for (const Case& c : std::vector<Case>{
           {"x0,c:,action,reward,pscore", "header column 2: column 'c:'"},
           {"x0,c:a b,action,reward,pscore", "column 'c:a b': name='a b'"},
           {"x0,c:u,c:u,action,reward,pscore", "header column 3 'c:u' repeats"},
           {"x0,c:u,act,reward,pscore", "'act' where 'c:<name>' or 'action' was expected"},
           {"x0,c:" + std::string(65, 'n') + ",action,reward,pscore", "1..64 characters"}}) {
    const std::string path = Raw("logs.csv", c.header + "\n");
    ExpectDataError(ReadLogsCsv(path, ThreeItems()).status(), path, 1, {c.mention});
  }
}

TEST_F(CsvCategoricalTest, BadPositionsAreRejected) {
  const std::string head = "x0,action,reward,pscore,position\n";
  for (const std::string& p : {"-1", "1.5", "", "x", "3000000000"}) {
    const std::string path = Raw("logs.csv", head + "1,10,1,1," + p + "\n");
    ExpectDataError(ReadLogsCsv(path, ThreeItems()).status(), path, 2,
                    {"position=", "not a 0-based position (an integer >= 0)"});
  }
  const std::string extra = Raw("x.csv", "x0,action,reward,pscore,position,zz\n1,10,1,1,0,0\n");
  ExpectDataError(ReadLogsCsv(extra, ThreeItems()).status(), extra, 1, {"extra column 6 'zz'"});
  const std::string count = Raw("c.csv", head + "1,10,1,1\n");
  ExpectDataError(ReadLogsCsv(count, ThreeItems()).status(), count, 2,
                  {"expected 5 columns", "found 4"});
}

// ---------------------------------------------------------------- round trips

TEST_F(CsvCategoricalTest, LogsRoundTripExactlyWithCategoricalColumnsAndPositions) {
  const ItemCatalog items = ThreeItems();
  BanditLog log;
  log.dim_context = 1;
  log.contexts = {0.25f, -3.f, 1e-7f};
  log.actions = {2, 0, 1};
  log.rewards = {1.f, 0.f, 0.f};
  log.pscores = {0.5f, 1.f / 34.f, 1.65e-4f};
  log.positions = {0, 2, 1};
  log.context_categorical = CategoricalColumns({"user", "tags"});
  const std::vector<std::vector<int64_t>> cells = {
      {CategoricalIdFromText("ab12")}, {1, 2, 3}, {}, {-9}, {INT64_MIN}, {INT64_MAX, 0}};
  for (const auto& c : cells) log.context_categorical.AddCell(c);
  const std::string path = dir_ + "/logs.csv";
  ASSERT_TRUE(WriteLogsCsv(path, log, items).ok());
  EXPECT_THAT(ReadText(path), StartsWith("x0,c:user,c:tags,action,reward,pscore,position\n"
                                         "0.25," + std::to_string(cells[0][0]) + ",1|2|3,30,1,0.5,0\n"
                                         "-3,,-9,10,0,"));
  auto back = ReadLogsCsv(path, items);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->contexts, log.contexts);
  EXPECT_EQ(back->actions, log.actions);
  EXPECT_EQ(back->rewards, log.rewards);
  EXPECT_EQ(back->pscores, log.pscores);
  EXPECT_EQ(back->positions, log.positions);
  EXPECT_TRUE(back->context_categorical == log.context_categorical);
}

TEST_F(CsvCategoricalTest, CategoricalOnlyLogsAndItemsRoundTrip) {
  ItemCatalog items;
  items.ids = {4, 5};
  items.categorical = CategoricalColumns({"brand"});
  items.categorical.AddCell(std::vector<int64_t>{11});
  items.categorical.AddCell(std::vector<int64_t>{});
  const std::string items_path = dir_ + "/items.csv";
  ASSERT_TRUE(WriteItemsCsv(items_path, items).ok());
  EXPECT_EQ(ReadText(items_path), "item,c:brand\n4,11\n5,\n");
  auto items_back = ReadItemsCsv(items_path);
  ASSERT_TRUE(items_back.ok()) << items_back.status();
  EXPECT_TRUE(items_back->categorical == items.categorical);

  BanditLog log;
  log.actions = {1, 0};
  log.rewards = {0.f, 1.f};
  log.pscores = {0.5f, 0.5f};
  log.context_categorical = CategoricalColumns({"user"});
  log.context_categorical.AddCell(std::vector<int64_t>{});
  log.context_categorical.AddCell(std::vector<int64_t>{7, 8});
  const std::string path = dir_ + "/logs.csv";
  ASSERT_TRUE(WriteLogsCsv(path, log, items).ok());
  EXPECT_EQ(ReadText(path), "c:user,action,reward,pscore\n,5,0,0.5\n7|8,4,1,0.5\n");
  auto back = ReadLogsCsv(path, items);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->dim_context, 0);
  EXPECT_TRUE(back->context_categorical == log.context_categorical);
}

TEST_F(CsvCategoricalTest, ContextTableRoundTripsAndRefusesRowsThatWouldBeBlank) {
  ContextTable table;
  table.rows = 2;
  table.dim = 1;
  table.dense = {1.5f, -2.f};
  table.categorical = CategoricalColumns({"user"});
  table.categorical.AddCell(std::vector<int64_t>{3});
  table.categorical.AddCell(std::vector<int64_t>{});
  const std::string path = dir_ + "/ctx.csv";
  ASSERT_TRUE(WriteContextTableCsv(path, table).ok());
  EXPECT_EQ(ReadText(path), "x0,c:user\n1.5,3\n-2,\n");
  auto back = ReadContextTableCsv(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->rows, 2);
  EXPECT_EQ(back->dense, table.dense);
  EXPECT_TRUE(back->categorical == table.categorical);

  table.dim = 0;
  table.dense.clear();
  const absl::Status s = WriteContextTableCsv(dir_ + "/blank.csv", table);
  EXPECT_THAT(std::string(s.message()), HasSubstr("row 1 has no ids"));
  EXPECT_FALSE(fs::exists(dir_ + "/blank.csv"));
}

TEST_F(CsvCategoricalTest, WritersRejectMismatchedShapesWithoutWriting) {
  const ItemCatalog items = ThreeItems();
  BanditLog log;
  log.dim_context = 1;
  log.contexts = {1.f, 2.f};
  log.actions = {0, 1};
  log.rewards = {0.f, 0.f};
  log.pscores = {1.f, 1.f};
  log.context_categorical = CategoricalColumns({"user"});
  log.context_categorical.AddCell(std::vector<int64_t>{1});  // 1 row for 2 samples
  const std::string path = dir_ + "/logs.csv";
  EXPECT_THAT(std::string(WriteLogsCsv(path, log, items).message()),
              HasSubstr("context_categorical has 1 rows, expected 2"));
  log.context_categorical = CategoricalColumns();
  log.positions = {0};
  EXPECT_THAT(std::string(WriteLogsCsv(path, log, items).message()),
              HasSubstr("2 actions but 1 positions"));
  log.positions = {0, -1};
  EXPECT_THAT(std::string(WriteLogsCsv(path, log, items).message()),
              HasSubstr("positions[1]=-1"));
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace optower
