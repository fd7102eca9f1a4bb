#include "storage/storage.h"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace vecdb::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vecdb::testing::IsOkAndHolds;
using ::vecdb::testing::StatusIs;

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::path(::testing::TempDir()) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(path_);
    Reopen();
  }

  void TearDown() override {
    storage_.reset();
    std::filesystem::remove_all(path_);
  }

  void Reopen() {
    storage_.reset();
    StorageOptions options;
    options.path = path_.string();
    absl::StatusOr<std::unique_ptr<Storage>> storage = Storage::Open(options);
    ASSERT_OK(storage);
    storage_ = *std::move(storage);
  }

  void PutPoint(uint64_t collection, const std::string& id,
                std::vector<float> vector, std::string metadata = "") {
    PointBatch batch;
    batch.Put(id, StoredPoint{std::move(vector), std::move(metadata)});
    ASSERT_OK(storage_->Write(collection, ++sequences_[collection], batch));
  }

  std::vector<std::string> ScanIds(uint64_t collection) {
    std::vector<std::string> ids;
    EXPECT_OK(storage_->ScanPoints(collection, storage_->TakeReadView(),
                                   [&](absl::string_view id, StoredPoint) {
                                     ids.emplace_back(id);
                                     return absl::OkStatus();
                                   }));
    return ids;
  }

  std::filesystem::path path_;
  std::unique_ptr<Storage> storage_;
  // The last write sequence used per collection.
  std::map<uint64_t, uint64_t> sequences_;
};

TEST(PointCodecTest, RoundTripsVectorAndMetadata) {
  StoredPoint point{{1.5f, -0.0f, 3e38f}, std::string("meta\0data", 9)};
  absl::StatusOr<StoredPoint> decoded = DecodePoint(EncodePoint(point));
  ASSERT_OK(decoded);
  EXPECT_EQ(decoded->vector, point.vector);
  EXPECT_EQ(decoded->metadata, point.metadata);
}

TEST(PointCodecTest, RejectsTruncatedValue) {
  std::string value = EncodePoint(StoredPoint{{1, 2, 3}, ""});
  value.resize(value.size() - 1);
  EXPECT_THAT(DecodePoint(value),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
}

TEST(PointCodecTest, RejectsUnknownVersion) {
  std::string value = EncodePoint(StoredPoint{{1}, ""});
  value[0] = 99;
  EXPECT_THAT(DecodePoint(value), StatusIs(absl::StatusCode::kDataLoss,
                                           HasSubstr("format version 99")));
}

TEST_F(StorageTest, CollectionsSurviveReopen) {
  absl::StatusOr<uint64_t> first = storage_->CreateCollection("b", "cfg-b");
  absl::StatusOr<uint64_t> second = storage_->CreateCollection("a", "cfg-a");
  ASSERT_OK(first);
  ASSERT_OK(second);
  EXPECT_NE(*first, *second);

  Reopen();
  absl::StatusOr<std::vector<CollectionRecord>> records =
      storage_->ListCollections();
  ASSERT_OK(records);
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].name, "a");
  EXPECT_EQ((*records)[0].config, "cfg-a");
  EXPECT_EQ((*records)[0].id, *second);
  EXPECT_EQ((*records)[1].name, "b");
}

TEST_F(StorageTest, DroppedCollectionIdIsNotReused) {
  absl::StatusOr<uint64_t> id = storage_->CreateCollection("c", "");
  ASSERT_OK(id);
  PutPoint(*id, "p", {1, 2});
  ASSERT_OK(storage_->DropCollection({*id, "c", ""}));
  Reopen();

  absl::StatusOr<uint64_t> again = storage_->CreateCollection("c", "");
  ASSERT_OK(again);
  EXPECT_GT(*again, *id);
  EXPECT_TRUE(ScanIds(*id).empty());
  EXPECT_TRUE(ScanIds(*again).empty());
}

TEST_F(StorageTest, PointsStayInsideTheirCollection) {
  PutPoint(1, "x", {1});
  PutPoint(2, "y", {2});
  PutPoint(1, "z", {3});
  EXPECT_THAT(ScanIds(1), ElementsAre("x", "z"));
  EXPECT_THAT(ScanIds(2), ElementsAre("y"));
}

TEST_F(StorageTest, BatchAppliesPutsAndDeletesTogether) {
  PutPoint(1, "old", {1});
  PointBatch batch;
  batch.Put("new", StoredPoint{{2}, "m"});
  batch.Delete("old");
  ASSERT_OK(storage_->Write(1, 2, batch));
  Reopen();
  EXPECT_THAT(ScanIds(1), ElementsAre("new"));
}

TEST_F(StorageTest, ReadViewHidesLaterWrites) {
  PutPoint(1, "p", {1});
  ReadView view = storage_->TakeReadView();
  PutPoint(1, "p", {2});
  PutPoint(1, "q", {3});

  absl::StatusOr<std::vector<std::optional<StoredPoint>>> old_points =
      storage_->GetPoints(1, {"p", "q"}, view);
  ASSERT_OK(old_points);
  ASSERT_TRUE((*old_points)[0].has_value());
  EXPECT_THAT((*old_points)[0]->vector, ElementsAre(1));
  EXPECT_FALSE((*old_points)[1].has_value());

  absl::StatusOr<std::vector<std::optional<StoredPoint>>> new_points =
      storage_->GetPoints(1, {"p", "q"}, nullptr);
  ASSERT_OK(new_points);
  EXPECT_THAT((*new_points)[0]->vector, ElementsAre(2));
  EXPECT_TRUE((*new_points)[1].has_value());
}

TEST_F(StorageTest, ScanStopsAtVisitorError) {
  PutPoint(1, "a", {1});
  PutPoint(1, "b", {1});
  int visited = 0;
  absl::Status status = storage_->ScanPoints(
      1, storage_->TakeReadView(), [&](absl::string_view, StoredPoint) {
        ++visited;
        return absl::AbortedError("stop");
      });
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kAborted, "stop"));
  EXPECT_EQ(visited, 1);
}

TEST_F(StorageTest, ChangeLogListsIdsChangedAfterASequence) {
  PutPoint(1, "a", {1});  // sequence 1
  PutPoint(1, "b", {2});  // 2
  PutPoint(2, "other", {3});
  PointBatch batch;
  batch.Delete("a");
  batch.Put("c", StoredPoint{{4}, ""});
  ASSERT_OK(storage_->Write(1, 3, batch));
  sequences_[1] = 3;
  PutPoint(1, "b", {5});  // 4

  EXPECT_THAT(storage_->LastSequence(1, nullptr), IsOkAndHolds(4));
  EXPECT_THAT(storage_->LastSequence(3, nullptr), IsOkAndHolds(0));
  // Each id once, at its last change.
  EXPECT_THAT(storage_->ChangedIdsAfter(1, 0, nullptr),
              IsOkAndHolds(ElementsAre("a", "c", "b")));
  EXPECT_THAT(storage_->ChangedIdsAfter(1, 2, nullptr),
              IsOkAndHolds(ElementsAre("a", "c", "b")));
  EXPECT_THAT(storage_->ChangedIdsAfter(1, 3, nullptr),
              IsOkAndHolds(ElementsAre("b")));
  EXPECT_THAT(storage_->ChangedIdsAfter(1, 4, nullptr),
              IsOkAndHolds(ElementsAre()));
}

TEST_F(StorageTest, ChangeLogTrimRejectsOlderReads) {
  PutPoint(1, "a", {1});
  PutPoint(1, "b", {2});
  PutPoint(1, "c", {3});
  ASSERT_OK(storage_->TrimChanges(1, 2));
  Reopen();
  EXPECT_THAT(storage_->ChangedIdsAfter(1, 2, nullptr),
              IsOkAndHolds(ElementsAre("c")));
  EXPECT_THAT(storage_->ChangedIdsAfter(1, 1, nullptr),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
}

TEST_F(StorageTest, DropForgetsSequenceAndChangeLog) {
  PutPoint(1, "a", {1});
  CollectionRecord record;
  record.id = 1;
  record.name = "gone";
  ASSERT_OK(storage_->DropCollection(record));
  EXPECT_THAT(storage_->LastSequence(1, nullptr), IsOkAndHolds(0));
  EXPECT_THAT(storage_->ChangedIdsAfter(1, 0, nullptr),
              IsOkAndHolds(ElementsAre()));
}

TEST_F(StorageTest, CheckpointIsAnOpenableCopy) {
  PutPoint(1, "a", {1});
  const std::filesystem::path copy = path_.string() + "-copy";
  ASSERT_OK(storage_->CreateCheckpoint(copy.string()));
  PutPoint(1, "b", {2});

  StorageOptions options;
  options.path = copy.string();
  absl::StatusOr<std::unique_ptr<Storage>> opened = Storage::Open(options);
  ASSERT_OK(opened);
  std::vector<std::string> ids;
  ASSERT_OK(
      (*opened)->ScanPoints(1, nullptr, [&](absl::string_view id, StoredPoint) {
        ids.emplace_back(id);
        return absl::OkStatus();
      }));
  EXPECT_THAT(ids, ElementsAre("a"));
  EXPECT_THAT((*opened)->LastSequence(1, nullptr), IsOkAndHolds(1));
  opened->reset();
  std::filesystem::remove_all(copy);
}

}  // namespace
}  // namespace vecdb::storage
