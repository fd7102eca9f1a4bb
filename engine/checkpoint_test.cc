// Index checkpoints, recovery from damaged index files, compaction and
// snapshots.

#include <fstream>
#include <random>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "engine/database_fixture.h"
#include "engine/index_file.h"

namespace vecdb::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;
using ::vecdb::testing::StatusIs;

constexpr uint32_t kDimension = 8;

std::vector<float> VectorFor(int seed) {
  return RandomVector(seed, kDimension);
}

std::vector<v1::Point> PointsFor(int first, int count, int version = 0) {
  std::vector<v1::Point> points;
  for (int i = first; i < first + count; ++i) {
    points.push_back(MakePoint(absl::StrCat("p", i),
                               VectorFor(i + version * 1000003),
                               absl::StrCat("v", version)));
  }
  return points;
}

google::protobuf::RepeatedPtrField<std::string> IdField(int first, int count) {
  google::protobuf::RepeatedPtrField<std::string> ids;
  for (int i = first; i < first + count; ++i) *ids.Add() = absl::StrCat("p", i);
  return ids;
}

class CheckpointTest : public DatabaseTest {
 protected:
  // The ids every search with a top_k of all points returns, which must be
  // exactly the stored ids.
  std::vector<std::string> SearchedIds(Collection& collection) {
    return Ids(Search(collection, VectorFor(-1), 10000));
  }

  std::vector<std::string> StoredIds(Collection& collection, int upto) {
    absl::StatusOr<std::vector<v1::Point>> points =
        collection.Get(IdField(0, upto));
    EXPECT_OK(points);
    std::vector<std::string> ids;
    for (const v1::Point& point : *points) ids.push_back(point.id());
    return ids;
  }

  // Every stored point is its own nearest neighbour through the HNSW graph.
  void ExpectEachPointFindsItself(Collection& collection, int upto) {
    absl::StatusOr<std::vector<v1::Point>> points =
        collection.Get(IdField(0, upto));
    ASSERT_OK(points);
    for (const v1::Point& point : *points) {
      std::vector<float> vector(point.vector().begin(), point.vector().end());
      std::vector<v1::ScoredPoint> hits = Search(collection, vector, 1);
      ASSERT_EQ(hits.size(), 1u);
      EXPECT_EQ(hits[0].id(), point.id());
    }
  }

  // Copies the data dir as a crash would leave it: whatever is on disk now.
  // RocksDB may delete an obsolete file meanwhile; the copy does not need
  // it.
  std::string CopyDataDir(const std::string& suffix) {
    const std::filesystem::path from(options_.data_dir);
    const std::filesystem::path to(options_.data_dir + suffix);
    std::filesystem::remove_all(to);
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(from)) {
      const std::filesystem::path target =
          to / std::filesystem::relative(entry.path(), from);
      std::error_code error;
      if (entry.is_directory(error)) {
        std::filesystem::create_directories(target);
      } else {
        std::filesystem::create_directories(target.parent_path());
        std::filesystem::copy_file(entry.path(), target, error);
      }
    }
    return to.string();
  }

  std::unique_ptr<Database> OpenAt(const std::string& data_dir) {
    DatabaseOptions options = options_;
    options.data_dir = data_dir;
    absl::StatusOr<std::unique_ptr<Database>> database =
        Database::Open(options);
    EXPECT_OK(database);
    return database.ok() ? *std::move(database) : nullptr;
  }

  std::vector<std::filesystem::path> IndexFiles(const std::string& data_dir) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(
             std::filesystem::path(data_dir) / "indexes")) {
      files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  }
};

TEST_F(CheckpointTest, OpenLoadsIndexSavedAtClose) {
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::L2);
  ASSERT_OK(Upsert(*collection, PointsFor(0, 300)));
  ASSERT_OK(collection->Delete(IdField(0, 40)));
  ASSERT_OK(Upsert(*collection, PointsFor(40, 40, /*version=*/1)));
  const std::vector<std::string> before = SearchedIds(*collection);
  EXPECT_THAT(collection->CheckpointPath(), IsEmpty());
  collection.reset();
  Reopen();

  collection = Open("c");
  EXPECT_THAT(collection->CheckpointPath(), Not(IsEmpty()));
  EXPECT_EQ(collection->Describe().point_count(), 260u);
  EXPECT_THAT(SearchedIds(*collection), UnorderedElementsAreArray(before));
  EXPECT_THAT(SearchedIds(*collection),
              UnorderedElementsAreArray(StoredIds(*collection, 300)));
  ExpectEachPointFindsItself(*collection, 300);
}

TEST_F(CheckpointTest, OpenAfterACrashReplaysWritesAfterTheCheckpoint) {
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::COSINE);
  ASSERT_OK(Upsert(*collection, PointsFor(0, 200)));
  collection.reset();
  Reopen();  // Close saves the checkpoint.
  collection = Open("c");
  ASSERT_OK(Upsert(*collection, PointsFor(200, 50)));
  ASSERT_OK(Upsert(*collection, PointsFor(0, 30, /*version=*/2)));
  ASSERT_OK(collection->Delete(IdField(100, 20)));
  const std::vector<std::string> stored = StoredIds(*collection, 250);
  ASSERT_EQ(stored.size(), 230u);

  std::unique_ptr<Database> crashed = OpenAt(CopyDataDir("-crashed"));
  std::shared_ptr<Collection> recovered = *crashed->GetCollection("c");
  EXPECT_THAT(recovered->CheckpointPath(), Not(IsEmpty()));
  // The 50 new and 30 replaced points wait for the graph, and searches
  // find them meanwhile.
  EXPECT_EQ(recovered->Describe().unindexed_points(), 80u);
  EXPECT_THAT(SearchedIds(*recovered), UnorderedElementsAreArray(stored));
  ExpectEachPointFindsItself(*recovered, 250);
  ASSERT_OK(crashed->MaintainNow());
  EXPECT_EQ(recovered->Describe().unindexed_points(), 0u);
  EXPECT_THAT(SearchedIds(*recovered), UnorderedElementsAreArray(stored));
  ExpectEachPointFindsItself(*recovered, 250);
  absl::StatusOr<std::vector<v1::Point>> replaced =
      recovered->Get(IdField(0, 1));
  ASSERT_OK(replaced);
  EXPECT_EQ(replaced->at(0).metadata().fields().at("tag").string_value(), "v2");
}

// Each way an index file can be damaged makes the open rebuild from storage
// and set the file aside.
class DamagedIndexTest : public CheckpointTest,
                         public ::testing::WithParamInterface<std::string> {};

TEST_P(DamagedIndexTest, IsNeverServed) {
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::L2);
  ASSERT_OK(Upsert(*collection, PointsFor(0, 300)));
  ASSERT_OK(collection->Delete(IdField(0, 10)));
  const std::vector<std::string> stored = StoredIds(*collection, 300);
  collection.reset();
  database_->Close();
  const std::vector<std::filesystem::path> files =
      IndexFiles(options_.data_dir);
  ASSERT_EQ(files.size(), 1u);
  const std::filesystem::path file = files[0];
  const uintmax_t size = std::filesystem::file_size(file);

  if (GetParam() == "missing") {
    std::filesystem::remove(file);
  } else if (GetParam() == "truncated") {
    std::filesystem::resize_file(file, size / 2);
  } else if (GetParam() == "flipped byte") {
    std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
    stream.seekg(static_cast<std::streamoff>(size / 2));
    const char byte = static_cast<char>(stream.get());
    stream.seekp(static_cast<std::streamoff>(size / 2));
    stream.put(static_cast<char>(byte ^ 0x10));
  } else if (GetParam() == "empty") {
    std::filesystem::resize_file(file, 0);
  }
  Reopen();

  collection = Open("c");
  EXPECT_THAT(collection->CheckpointPath(), IsEmpty());
  EXPECT_THAT(SearchedIds(*collection), UnorderedElementsAreArray(stored));
  ExpectEachPointFindsItself(*collection, 300);
  if (GetParam() != "missing") {
    EXPECT_TRUE(std::filesystem::exists(file.string() + ".rejected"));
  }
}

INSTANTIATE_TEST_SUITE_P(Damage, DamagedIndexTest,
                         ::testing::Values("missing", "truncated",
                                           "flipped byte", "empty"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace(name.begin(), name.end(), ' ', '_');
                           return name;
                         });

TEST_F(CheckpointTest, DamagedNewestFileUsesOlderOne) {
  options_.maintenance.checkpoint_changes = 1;
  Reopen();
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::L2);
  ASSERT_OK(Upsert(*collection, PointsFor(0, 100)));
  ASSERT_OK(database_->MaintainNow());
  const std::string older = collection->CheckpointPath();
  ASSERT_OK(Upsert(*collection, PointsFor(100, 100)));
  ASSERT_OK(database_->MaintainNow());
  const std::string newer = collection->CheckpointPath();
  ASSERT_NE(older, newer);
  ASSERT_OK(collection->Delete(IdField(0, 5)));
  const std::vector<std::string> stored = StoredIds(*collection, 200);

  const std::string copy = CopyDataDir("-copy");
  const std::filesystem::path damaged = std::filesystem::path(copy) /
                                        "indexes" /
                                        std::filesystem::path(newer).filename();
  std::filesystem::resize_file(damaged,
                               std::filesystem::file_size(damaged) - 1);
  std::unique_ptr<Database> reopened = OpenAt(copy);
  std::shared_ptr<Collection> recovered = *reopened->GetCollection("c");
  EXPECT_EQ(std::filesystem::path(recovered->CheckpointPath()).filename(),
            std::filesystem::path(older).filename());
  EXPECT_THAT(SearchedIds(*recovered), UnorderedElementsAreArray(stored));
}

TEST_F(CheckpointTest, IndexFileNamesItsProblem) {
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::L2);
  ASSERT_OK(Upsert(*collection, PointsFor(0, 50)));
  collection.reset();
  database_->Close();
  const std::filesystem::path file = IndexFiles(options_.data_dir)[0];
  index::IndexSpec spec;
  spec.kind = index::IndexKind::kHnsw;
  spec.dimension = kDimension;
  spec.m = 16;
  spec.ef_construction = 100;

  EXPECT_OK(ReadIndexFile(file.string(), 1, spec));
  EXPECT_THAT(ReadIndexFile(file.string(), 2, spec),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("belongs to collection id 1")));
  spec.dimension = kDimension + 1;
  EXPECT_THAT(ReadIndexFile(file.string(), 1, spec),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("dimension")));
  spec.dimension = kDimension;
  EXPECT_THAT(ReadIndexFile(file.string() + "-none", 1, spec),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("-none")));

  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 3);
  EXPECT_THAT(ReadIndexFile(file.string(), 1, spec),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("end marker is missing")));
}

TEST_F(CheckpointTest, CompactionDropsDeletedLabelsAndKeepsAnswers) {
  options_.maintenance.compact_min_deleted = 100;
  options_.maintenance.compact_deleted_fraction = 0.2;
  Reopen();
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::L2);
  ASSERT_OK(Upsert(*collection, PointsFor(0, 2000)));
  ASSERT_OK(Upsert(*collection, PointsFor(0, 500, /*version=*/1)));
  ASSERT_OK(collection->Delete(IdField(1000, 600)));
  const uint64_t memory_before = collection->Describe().memory_bytes();
  const std::vector<std::string> stored = StoredIds(*collection, 2000);
  ASSERT_EQ(stored.size(), 1400u);

  EXPECT_EQ(collection->Describe().index_builds(), 0u);
  ASSERT_OK(database_->MaintainNow());
  EXPECT_EQ(collection->Describe().index_builds(), 1u);
  EXPECT_LT(collection->Describe().memory_bytes(), memory_before * 3 / 4);
  EXPECT_THAT(SearchedIds(*collection), UnorderedElementsAreArray(stored));
  ExpectEachPointFindsItself(*collection, 2000);

  collection.reset();
  Reopen();
  collection = Open("c");
  EXPECT_THAT(SearchedIds(*collection), UnorderedElementsAreArray(stored));
  ExpectEachPointFindsItself(*collection, 2000);
}

TEST_F(CheckpointTest, WritesDuringCompactionAreCarriedOver) {
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::L2);
  constexpr int kIds = 3000;
  ASSERT_OK(Upsert(*collection, PointsFor(0, kIds)));
  ASSERT_OK(collection->Delete(IdField(0, kIds / 2)));

  std::atomic<bool> done{false};
  std::thread writer([&] {
    std::mt19937 random(7);
    for (int round = 1; !done.load(); ++round) {
      const int first = static_cast<int>(random() % (kIds - 20));
      if (round % 3 == 0) {
        EXPECT_OK(collection->Delete(IdField(first, 10)));
      } else {
        EXPECT_OK(Upsert(*collection, PointsFor(first, 10, round)));
      }
    }
  });
  std::atomic<bool> cancel{false};
  for (int i = 0; i < 5; ++i) ASSERT_OK(collection->Compact(cancel));
  done = true;
  writer.join();

  EXPECT_THAT(SearchedIds(*collection),
              UnorderedElementsAreArray(StoredIds(*collection, kIds)));
  ExpectEachPointFindsItself(*collection, kIds);
}

TEST_F(CheckpointTest, CancelledCompactionChangesNothing) {
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::L2);
  ASSERT_OK(Upsert(*collection, PointsFor(0, 100)));
  ASSERT_OK(collection->Delete(IdField(0, 50)));
  const uint64_t memory = collection->Describe().memory_bytes();
  std::atomic<bool> cancel{true};
  EXPECT_THAT(collection->Compact(cancel),
              StatusIs(absl::StatusCode::kCancelled, ::testing::_));
  EXPECT_EQ(collection->Describe().memory_bytes(), memory);
  EXPECT_THAT(SearchedIds(*collection),
              UnorderedElementsAreArray(StoredIds(*collection, 100)));
}

TEST_F(CheckpointTest, SnapshotOpensAtItsOwnState) {
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::L2);
  ASSERT_OK(Upsert(*collection, PointsFor(0, 100)));
  ASSERT_OK(collection->Delete(IdField(0, 10)));
  const std::vector<std::string> at_snapshot = StoredIds(*collection, 200);
  absl::StatusOr<std::string> snapshot = database_->CreateSnapshot();
  ASSERT_OK(snapshot);
  EXPECT_TRUE(std::filesystem::path(*snapshot).is_absolute());

  ASSERT_OK(Upsert(*collection, PointsFor(100, 100)));
  ASSERT_OK(collection->Delete(IdField(10, 10)));
  Create("later", kDimension, v1::L2);

  const std::string copy = options_.data_dir + "-from-snapshot";
  std::filesystem::remove_all(copy);
  std::filesystem::copy(*snapshot, copy,
                        std::filesystem::copy_options::recursive);
  std::unique_ptr<Database> restored = OpenAt(copy);
  EXPECT_EQ(restored->ListCollections().size(), 1u);
  std::shared_ptr<Collection> old = *restored->GetCollection("c");
  EXPECT_THAT(old->CheckpointPath(), Not(IsEmpty()));
  EXPECT_THAT(StoredIds(*old, 200), UnorderedElementsAreArray(at_snapshot));
  EXPECT_THAT(SearchedIds(*old), UnorderedElementsAreArray(at_snapshot));
}

TEST_F(CheckpointTest, DropRemovesIndexFiles) {
  std::shared_ptr<Collection> collection = Create("c", kDimension, v1::L2);
  ASSERT_OK(Upsert(*collection, PointsFor(0, 10)));
  ASSERT_OK(collection->WriteCheckpoint());
  ASSERT_EQ(IndexFiles(options_.data_dir).size(), 1u);
  collection.reset();
  ASSERT_OK(database_->DropCollection("c"));
  EXPECT_THAT(IndexFiles(options_.data_dir), IsEmpty());
}

}  // namespace
}  // namespace vecdb::engine
