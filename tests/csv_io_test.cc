// Tests of the CSV readers/writers (core/base/csv_io.h) and of the two small output helpers they and the
// CLI rely on: atomic file/folder writes (core/base/atomic_file.h) and the JSON writer
// (core/base/json_writer.h).
#include "core/base/csv_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/atomic_file.h"
#include "core/base/json_writer.h"

namespace optower {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string MakeTempDir() {
  std::string tmpl = ::testing::TempDir() + "/csv_io_test.XXXXXX";
  char* made = ::mkdtemp(tmpl.data());
  EXPECT_NE(made, nullptr) << tmpl;
  return tmpl;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class CsvIoTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `text` verbatim and returns the path.
  std::string Raw(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // A catalog with ids 10, 20, 30 and 2 features each, as items.csv.
  ItemCatalog ThreeItems() {
    ItemCatalog items;
    items.dim_features = 2;
    items.ids = {10, 20, 30};
    items.features = {0.f, 1.f, 2.f, 3.f, 4.f, 5.f};
    return items;
  }

  // Reads a logs.csv whose body (after a D=2 header) is `rows`.
  absl::Status ReadLogsBody(const std::string& rows, std::string* path) {
    *path = Raw("logs.csv", "x0,x1,action,reward,pscore\n" + rows);
    return ReadLogsCsv(*path, ThreeItems(), "items.csv").status();
  }

  std::string dir_;
};

// Every reader error is one line "<path>:<line>: ..." that names the column and the value.
void ExpectDataError(const absl::Status& status, const std::string& path, int line,
                     const std::vector<std::string>& mentions) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  const std::string msg(status.message());
  EXPECT_THAT(msg, StartsWith(path + ":" + std::to_string(line) + ": "));
  EXPECT_THAT(msg, Not(HasSubstr("\n")));
  for (const std::string& m : mentions) EXPECT_THAT(msg, HasSubstr(m));
}

// ---------------------------------------------------------------- round trips

TEST_F(CsvIoTest, ItemsRoundTripExactlyWithNegativeAndSparseIds) {
  ItemCatalog items;
  items.dim_features = 3;
  items.ids = {-5, 0, 1000000007};
  items.features = {0.1f, -1e-7f, 3.4e38f, 1.f / 3.f, -0.f, 7.f, 1e-38f, 2.5f, -123456.789f};
  const std::string path = dir_ + "/items.csv";
  ASSERT_TRUE(WriteItemsCsv(path, items).ok());
  EXPECT_THAT(ReadText(path), StartsWith("item,f0,f1,f2\n-5,0.1,"));
  auto back = ReadItemsCsv(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->dim_features, 3);
  EXPECT_EQ(back->ids, items.ids);
  EXPECT_EQ(back->features, items.features);  // bit-exact: shortest round-trip formatting
}

TEST_F(CsvIoTest, ItemsWithoutFeatureColumnsAreAccepted) {
  const std::string path = Raw("items.csv", "item\n3\n1\n2\n");
  auto items = ReadItemsCsv(path);
  ASSERT_TRUE(items.ok()) << items.status();
  EXPECT_EQ(items->dim_features, 0);
  EXPECT_EQ(items->ids, (std::vector<int64_t>{3, 1, 2}));
  EXPECT_TRUE(items->features.empty());
}

TEST_F(CsvIoTest, LogsRoundTripWritesItemIdsAndReadsBackRowIndices) {
  const ItemCatalog items = ThreeItems();
  BanditLog log;
  log.dim_context = 2;
  log.contexts = {0.5f, -1.25f, 1e-3f, 2.f, -0.1f, 0.3f};
  log.actions = {2, 0, 1};  // rows -> ids 30, 10, 20
  log.rewards = {1.f, 0.f, 0.25f};
  log.pscores = {0.5f, 1.f, 1e-6f};
  const std::string path = dir_ + "/logs.csv";
  ASSERT_TRUE(WriteLogsCsv(path, log, items).ok());
  EXPECT_EQ(ReadText(path),
            "x0,x1,action,reward,pscore\n"
            "0.5,-1.25,30,1,0.5\n"
            "0.001,2,10,0,1\n"
            "-0.1,0.3,20,0.25,1e-06\n");
  auto back = ReadLogsCsv(path, items);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->dim_context, 2);
  EXPECT_EQ(back->contexts, log.contexts);
  EXPECT_EQ(back->actions, log.actions);
  EXPECT_EQ(back->rewards, log.rewards);
  EXPECT_EQ(back->pscores, log.pscores);
}

TEST_F(CsvIoTest, ContextsRoundTrip) {
  const std::vector<float> contexts = {1.f, 2.f, 3.f, -4.5f, 0.1f, 6e-20f};
  const std::string path = dir_ + "/ctx.csv";
  ASSERT_TRUE(WriteContextsCsv(path, contexts, 3).ok());
  EXPECT_THAT(ReadText(path), StartsWith("x0,x1,x2\n1,2,3\n"));
  int64_t dim = 0;
  auto back = ReadContextsCsv(path, &dim);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(dim, 3);
  EXPECT_EQ(*back, contexts);
}

TEST_F(CsvIoTest, MatrixRoundTripIsBitExactForDoubles) {
  DenseMatrix m(2, 3);
  m.data = {0.1, 1.0 / 3.0, 1e-300, -2.5e300, 0.0, 0.7499999999999999};
  const std::string path = dir_ + "/q.csv";
  ASSERT_TRUE(WriteMatrixCsv(path, "a", m).ok());
  EXPECT_THAT(ReadText(path), StartsWith("a0,a1,a2\n0.1,0.3333333333333333,1e-300\n"));
  auto back = ReadMatrixCsv(path, "a");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->rows, 2);
  EXPECT_EQ(back->cols, 3);
  EXPECT_EQ(back->data, m.data);
}

TEST_F(CsvIoTest, ReadersAcceptCrlfBomSpacesAndTrailingBlankLines) {
  const std::string path =
      Raw("logs.csv",
          "\xEF\xBB\xBFx0,x1,action,reward,pscore\r\n1, 2 ,10,1,0.5\r\n3,4,30,0,1\r\n\r\n\n");
  auto log = ReadLogsCsv(path, ThreeItems());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->size(), 2);
  EXPECT_EQ(log->contexts, (std::vector<float>{1.f, 2.f, 3.f, 4.f}));
  EXPECT_EQ(log->actions, (std::vector<int64_t>{0, 2}));
}

TEST_F(CsvIoTest, ValuesBelowTheFloatRangeRoundToZeroInsteadOfFailing) {
  const std::string path = Raw("ctx.csv", "x0,x1,x2\n1e-50,-1e-400,1e-40\n");
  int64_t dim = 0;
  auto ctx = ReadContextsCsv(path, &dim);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ((*ctx)[0], 0.0f);
  EXPECT_EQ((*ctx)[1], 0.0f);
  EXPECT_TRUE(std::signbit((*ctx)[1]));
  EXPECT_EQ((*ctx)[2], 1e-40f);  // a float subnormal is kept
}

TEST_F(CsvIoTest, LastLineWithoutNewlineIsRead) {
  const std::string path = Raw("ctx.csv", "x0\n1\n2");
  int64_t dim = 0;
  auto ctx = ReadContextsCsv(path, &dim);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ(*ctx, (std::vector<float>{1.f, 2.f}));
}

// ---------------------------------------------------------------- bad data

TEST_F(CsvIoTest, WrongColumnCountNamesExpectedAndFound) {
  std::string path;
  absl::Status s = ReadLogsBody("1,2,10,1,0.5\n1,2,10,1\n", &path);
  ExpectDataError(s, path, 3, {"expected 5 columns", "found 4"});
  s = ReadLogsBody("1,2,10,1,0.5,9\n", &path);
  ExpectDataError(s, path, 2, {"expected 5 columns", "found 6"});
}

TEST_F(CsvIoTest, NonNumericValueNamesColumnAndValue) {
  std::string path;
  ExpectDataError(ReadLogsBody("1,abc,10,1,0.5\n", &path), path, 2, {"x1=abc", "not a number"});
  ExpectDataError(ReadLogsBody("1,2,10,1,0.5\n1,2,10,,0.5\n", &path), path, 3,
                  {"reward=(empty)", "not a number"});
  ExpectDataError(ReadLogsBody("1,2.5x,10,1,0.5\n", &path), path, 2, {"x1=2.5x"});
}

TEST_F(CsvIoTest, NanAndInfAreRejected) {
  std::string path;
  ExpectDataError(ReadLogsBody("1,2,10,nan,0.5\n", &path), path, 2, {"reward=nan", "finite"});
  ExpectDataError(ReadLogsBody("inf,2,10,1,0.5\n", &path), path, 2, {"x0=inf", "finite"});
  ExpectDataError(ReadLogsBody("1,-Infinity,10,1,0.5\n", &path), path, 2, {"x1=-Infinity"});
  ExpectDataError(ReadLogsBody("1,1e39,10,1,0.5\n", &path), path, 2,
                  {"x1=1e39", "outside the float range"});
  const std::string q = Raw("q.csv", "a0\n1e400\n");
  ExpectDataError(ReadMatrixCsv(q, "a").status(), q, 2, {"a0=1e400", "outside the double range"});
}

TEST_F(CsvIoTest, PscoreMustBeInZeroOne) {
  std::string path;
  ExpectDataError(ReadLogsBody("1,2,10,1,0\n", &path), path, 2, {"pscore=0", "(0, 1]"});
  ExpectDataError(ReadLogsBody("1,2,10,1,0.5\n1,2,10,1,-0.2\n", &path), path, 3,
                  {"pscore=-0.2", "(0, 1]"});
  ExpectDataError(ReadLogsBody("1,2,10,1,1.0001\n", &path), path, 2, {"pscore=1.0001", "(0, 1]"});
  EXPECT_TRUE(ReadLogsBody("1,2,10,1,1\n", &path).ok());  // 1 itself is a valid propensity
}

TEST_F(CsvIoTest, ActionMustBeAnItemIdOfTheCatalog) {
  std::string path;
  ExpectDataError(ReadLogsBody("1,2,10,1,0.5\n1,2,17,1,0.5\n", &path), path, 3,
                  {"action=17 is not an item in items.csv"});
  // A row index (1) is not an id: the file holds ids.
  ExpectDataError(ReadLogsBody("1,2,1,1,0.5\n", &path), path, 2, {"action=1"});
  ExpectDataError(ReadLogsBody("1,2,10.5,1,0.5\n", &path), path, 2,
                  {"action=10.5", "not an integer"});
}

TEST_F(CsvIoTest, DuplicateItemIdNamesTheIdAndFirstLine) {
  const std::string path = Raw("items.csv", "item,f0\n7,0.5\n8,1\n7,2\n");
  ExpectDataError(ReadItemsCsv(path).status(), path, 4, {"item=7", "duplicate", "first on line 2"});
}

TEST_F(CsvIoTest, EmptyFileIsAnErrorAtLineOne) {
  const std::string path = Raw("items.csv", "");
  ExpectDataError(ReadItemsCsv(path).status(), path, 1, {"empty file", "item,f0"});
  const std::string blank = Raw("ctx.csv", "\n\r\n");
  int64_t dim;
  ExpectDataError(ReadContextsCsv(blank, &dim).status(), blank, 1, {"empty file"});
}

TEST_F(CsvIoTest, MissingHeaderIsAnErrorAtLineOne) {
  const std::string path = Raw("logs.csv", "1,2,10,1,0.5\n");
  ExpectDataError(ReadLogsCsv(path, ThreeItems()).status(), path, 1,
                  {"missing header", "x0,...,x{D-1},action,reward,pscore"});
}

TEST_F(CsvIoTest, MalformedHeaderNamesTheBadColumn) {
  std::string path = Raw("logs.csv", "x0,x1,act,reward,pscore\n1,2,10,1,0.5\n");
  ExpectDataError(ReadLogsCsv(path, ThreeItems()).status(), path, 1,
                  {"column 3 is 'act'", "'x2' or 'action'"});
  path = Raw("logs2.csv", "x0,x1,action,reward\n1,2,10,1\n");
  ExpectDataError(ReadLogsCsv(path, ThreeItems()).status(), path, 1, {"'pscore' is missing"});
  path = Raw("logs3.csv", "action,reward,pscore\n10,1,0.5\n");
  ExpectDataError(ReadLogsCsv(path, ThreeItems()).status(), path, 1, {"'action'", "'x0'"});
  path = Raw("items.csv", "id,f0\n1,2\n");
  ExpectDataError(ReadItemsCsv(path).status(), path, 1, {"column 1 is 'id'", "'item'"});
  path = Raw("q.csv", "a0,a2\n1,2\n");
  ExpectDataError(ReadMatrixCsv(path, "a").status(), path, 1, {"extra column 2 'a2'"});
}

TEST_F(CsvIoTest, HeaderWithoutRowsIsAnError) {
  std::string path = Raw("logs.csv", "x0,x1,action,reward,pscore\n");
  ExpectDataError(ReadLogsCsv(path, ThreeItems()).status(), path, 2, {"no data rows"});
  path = Raw("q.csv", "a0,a1\r\n\r\n");
  ExpectDataError(ReadMatrixCsv(path, "a").status(), path, 2, {"no data rows"});
}

TEST_F(CsvIoTest, BlankLineBetweenRowsIsRejected) {
  const std::string path = Raw("ctx.csv", "x0,x1\n1,2\n\n3,4\n");
  int64_t dim;
  ExpectDataError(ReadContextsCsv(path, &dim).status(), path, 3, {"blank line"});
}

TEST_F(CsvIoTest, MissingFileIsNotFound) {
  auto items = ReadItemsCsv(dir_ + "/nope.csv");
  EXPECT_EQ(items.status().code(), absl::StatusCode::kNotFound) << items.status();
  EXPECT_THAT(std::string(items.status().message()), HasSubstr("nope.csv"));
}

TEST_F(CsvIoTest, WritersRejectInconsistentDataAndLeaveNoFile) {
  const ItemCatalog items = ThreeItems();
  BanditLog log;
  log.dim_context = 1;
  log.contexts = {0.f};
  log.actions = {3};  // only rows 0..2 exist
  log.rewards = {1.f};
  log.pscores = {0.5f};
  const std::string path = dir_ + "/logs.csv";
  absl::Status s = WriteLogsCsv(path, log, items);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("actions[0]=3"));
  log.actions = {0};
  log.pscores = {0.f};
  s = WriteLogsCsv(path, log, items);
  EXPECT_THAT(std::string(s.message()), HasSubstr("pscores[0]=0"));
  ItemCatalog dup = items;
  dup.ids = {1, 2, 1};
  s = WriteItemsCsv(dir_ + "/items.csv", dup);
  EXPECT_THAT(std::string(s.message()), HasSubstr("item=1: duplicate"));
  s = WriteContextsCsv(dir_ + "/ctx.csv", {1.f, 2.f, 3.f}, 2);
  EXPECT_THAT(std::string(s.message()), HasSubstr("not a multiple of dim=2"));
  DenseMatrix m(1, 2);
  m.data = {0.5, std::nan("")};
  s = WriteMatrixCsv(dir_ + "/q.csv", "a", m);
  EXPECT_THAT(std::string(s.message()), HasSubstr("must be finite"));
  EXPECT_TRUE(Listing(dir_).empty());
}

// ---------------------------------------------------------------- atomic files

TEST_F(CsvIoTest, WriteFileAtomicallyReplacesContentsAndLeavesNoTemporaries) {
  const std::string path = dir_ + "/f.txt";
  ASSERT_TRUE(WriteFileAtomically(path, "old contents").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "new").ok());
  EXPECT_EQ(ReadText(path), "new");
  EXPECT_EQ(Listing(dir_), std::vector<std::string>{"f.txt"});
}

TEST_F(CsvIoTest, WriteFileAtomicallyIntoMissingFolderIsNotFound) {
  absl::Status s = WriteFileAtomically(dir_ + "/no/such/f.txt", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
}

TEST_F(CsvIoTest, AtomicDirectoryAppearsOnlyOnCommit) {
  const std::string final_path = dir_ + "/out";
  auto d = AtomicDirectory::Create(final_path, {});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(WriteFileAtomically((*d)->FilePath("a.csv"), "a").ok());
  EXPECT_FALSE(fs::exists(final_path));
  EXPECT_THAT((*d)->path(), StartsWith(final_path + ".tmp-"));
  ASSERT_TRUE((*d)->Commit().ok());
  EXPECT_EQ(ReadText(final_path + "/a.csv"), "a");
  EXPECT_EQ(Listing(dir_), std::vector<std::string>{"out"});
  EXPECT_EQ((*d)->Commit().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CsvIoTest, AtomicDirectoryRemovesItsTemporaryWhenNotCommitted) {
  {
    auto d = AtomicDirectory::Create(dir_ + "/out", {});
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(WriteFileAtomically((*d)->FilePath("a.csv"), "a").ok());
    EXPECT_EQ(Listing(dir_).size(), 1u);
  }
  EXPECT_TRUE(Listing(dir_).empty());
}

TEST_F(CsvIoTest, AtomicDirectoryRefusesNonEmptyFolderUnlessOverwrite) {
  const std::string final_path = dir_ + "/out";
  fs::create_directory(final_path);
  {  // An empty existing folder is fine (e.g. made by the caller's script).
    auto d = AtomicDirectory::Create(final_path, {});
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(WriteFileAtomically((*d)->FilePath("old.csv"), "old").ok());
    ASSERT_TRUE((*d)->Commit().ok());
  }
  auto refused = AtomicDirectory::Create(final_path, {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("not empty"));

  AtomicDirectory::Options overwrite;
  overwrite.overwrite = true;
  auto d = AtomicDirectory::Create(final_path + "/", overwrite);  // trailing slash tolerated
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(WriteFileAtomically((*d)->FilePath("new.csv"), "new").ok());
  ASSERT_TRUE((*d)->Commit().ok());
  EXPECT_EQ(Listing(final_path), std::vector<std::string>{"new.csv"});
  EXPECT_EQ(Listing(dir_), std::vector<std::string>{"out"});  // the old folder is gone too
}

TEST_F(CsvIoTest, AtomicDirectoryCreatesMissingParentsAndRemovesThemWhenNotCommitted) {
  {  // Not committed: the parents it made go away with the temporary folder.
    auto d = AtomicDirectory::Create(dir_ + "/a/b/out", {});
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(WriteFileAtomically((*d)->FilePath("x.csv"), "x").ok());
    EXPECT_TRUE(fs::is_directory(dir_ + "/a/b"));
  }
  EXPECT_TRUE(Listing(dir_).empty());
  // A parent that existed before is kept.
  fs::create_directory(dir_ + "/a");
  {
    auto d = AtomicDirectory::Create(dir_ + "/a/b/out", {});
    ASSERT_TRUE(d.ok()) << d.status();
  }
  EXPECT_EQ(Listing(dir_), std::vector<std::string>{"a"});
  EXPECT_TRUE(Listing(dir_ + "/a").empty());
  // Committed: the whole path stays.
  auto d = AtomicDirectory::Create(dir_ + "/a/b/c/out", {});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(WriteFileAtomically((*d)->FilePath("x.csv"), "x").ok());
  ASSERT_TRUE((*d)->Commit().ok());
  d->reset();
  EXPECT_EQ(ReadText(dir_ + "/a/b/c/out/x.csv"), "x");
  EXPECT_EQ(Listing(dir_ + "/a/b/c"), std::vector<std::string>{"out"});
}

TEST_F(CsvIoTest, AtomicDirectoryRefusesAFileInItsPathOrAtItsName) {
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/file", "x").ok());
  auto under_file = AtomicDirectory::Create(dir_ + "/file/a/out", {});
  EXPECT_EQ(under_file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(under_file.status().message()), HasSubstr("is not a folder"));
  AtomicDirectory::Options overwrite;
  overwrite.overwrite = true;
  EXPECT_EQ(AtomicDirectory::Create(dir_ + "/file", overwrite).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Listing(dir_), std::vector<std::string>{"file"});
}

// ---------------------------------------------------------------- JSON

TEST(JsonWriterTest, WritesNestedObjectsAndArraysPretty) {
  JsonWriter w;
  w.BeginObject().Field("n", 3).Field("v", 0.25).Field("ok", true).Field("name", "lin");
  w.Key("list").BeginArray().Value(1).Value(2.5).BeginObject().EndObject().EndArray();
  w.Key("empty").BeginArray().EndArray();
  w.Key("none").Null();
  w.EndObject();
  auto text = w.Finish();
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "{\n"
            "  \"n\": 3,\n"
            "  \"v\": 0.25,\n"
            "  \"ok\": true,\n"
            "  \"name\": \"lin\",\n"
            "  \"list\": [\n"
            "    1,\n"
            "    2.5,\n"
            "    {}\n"
            "  ],\n"
            "  \"empty\": [],\n"
            "  \"none\": null\n"
            "}\n");
}

TEST(JsonWriterTest, CompactModeEscapesStringsAndWritesNonFiniteAsNull) {
  JsonWriter::Options compact;
  compact.indent = 0;
  JsonWriter w(compact);
  w.BeginArray()
      .String("a\"b\\c\nd\te\x01")
      .Double(0.1)
      .Double(1e300)
      .Double(std::numeric_limits<double>::quiet_NaN())
      .Double(-std::numeric_limits<double>::infinity())
      .Int(-9007199254740993)
      .EndArray();
  auto text = w.Finish();
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "[\"a\\\"b\\\\c\\nd\\te\\u0001\",0.1,1e+300,null,null,-9007199254740993]\n");
}

TEST(JsonWriterTest, MisuseIsReportedByFinish) {
  JsonWriter no_key;
  no_key.BeginObject().Int(1).EndObject();
  EXPECT_THAT(std::string(no_key.Finish().status().message()), HasSubstr("without a Key()"));
  JsonWriter unbalanced;
  unbalanced.BeginObject().Key("a").BeginArray();
  EXPECT_THAT(std::string(unbalanced.Finish().status().message()), HasSubstr("incomplete"));
  JsonWriter two_values;
  two_values.Int(1).Int(2);
  EXPECT_EQ(two_values.Finish().status().code(), absl::StatusCode::kFailedPrecondition);
  JsonWriter wrong_close;
  wrong_close.BeginArray().EndObject();
  EXPECT_THAT(std::string(wrong_close.Finish().status().message()), HasSubstr("EndObject()"));
}

}  // namespace
}  // namespace optower
