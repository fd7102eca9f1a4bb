#include "engine/database.h"

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine/database_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace vecdb::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vecdb::testing::StatusIs;

TEST_F(DatabaseTest, CreateResolvesHnswDefaults) {
  v1::CreateCollectionRequest request;
  request.set_name("docs");
  request.set_dimension(8);
  request.set_metric(v1::COSINE);
  absl::StatusOr<v1::CollectionInfo> info =
      database_->CreateCollection(request);
  ASSERT_OK(info);
  EXPECT_EQ(info->index().kind(), v1::HNSW);
  EXPECT_EQ(info->index().m(), 16u);
  EXPECT_EQ(info->index().ef_construction(), 100u);
  EXPECT_EQ(info->index().ef_search(), 64u);
  EXPECT_THAT(database_->CreateCollection(request),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("docs")));
}

TEST_F(DatabaseTest, CreateRejectsMissingMetricAndDimension) {
  v1::CreateCollectionRequest request;
  request.set_name("docs");
  request.set_dimension(8);
  EXPECT_THAT(
      database_->CreateCollection(request),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("metric")));
  request.set_metric(v1::L2);
  request.set_dimension(0);
  EXPECT_THAT(database_->CreateCollection(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("dimension is 0")));
  EXPECT_TRUE(database_->ListCollections().empty());
}

TEST_F(DatabaseTest, FlatIgnoresHnswParameters) {
  v1::CreateCollectionRequest request;
  request.set_name("docs");
  request.set_dimension(8);
  request.set_metric(v1::L2);
  request.mutable_index()->set_kind(v1::FLAT);
  request.mutable_index()->set_m(8);
  absl::StatusOr<v1::CollectionInfo> info =
      database_->CreateCollection(request);
  ASSERT_OK(info);
  EXPECT_EQ(info->index().kind(), v1::FLAT);
  EXPECT_EQ(info->index().m(), 0u);
}

TEST_F(DatabaseTest, SecondOpenOfDataDirFails) {
  EXPECT_THAT(Database::Open(options_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("is already open")));
}

TEST_F(DatabaseTest, UnknownCollectionIsNotFound) {
  EXPECT_THAT(database_->GetCollection("nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_THAT(database_->DropCollection("nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

TEST_F(DatabaseTest, ReplaceHidesOldVector) {
  auto collection = Create("c", 2, v1::L2);
  ASSERT_OK(Upsert(*collection,
                   {MakePoint("p", {1, 0}, "old"), MakePoint("q", {5, 5})}));
  ASSERT_OK(Upsert(*collection, {MakePoint("p", {-1, 0}, "new")}));

  std::vector<v1::ScoredPoint> hits = Search(*collection, {1, 0}, 10);
  EXPECT_THAT(Ids(hits), ElementsAre("p", "q"));
  EXPECT_FLOAT_EQ(hits[0].score(), 2.0f);
  EXPECT_EQ(hits[0].metadata().fields().at("tag").string_value(), "new");
  EXPECT_EQ(collection->Describe().point_count(), 2u);
}

TEST_F(DatabaseTest, BadPointRejectsWholeBatch) {
  auto collection = Create("c", 2, v1::COSINE);
  EXPECT_THAT(
      Upsert(*collection, {MakePoint("a", {1, 0}), MakePoint("b", {0, 0}),
                           MakePoint("c", {0, 1})}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("points[1] (id \"b\")")));
  EXPECT_EQ(collection->Describe().point_count(), 0u);
  collection.reset();
  Reopen();
  EXPECT_EQ(Open("c")->Describe().point_count(), 0u);
}

TEST_F(DatabaseTest, LaterDuplicateInBatchWins) {
  auto collection = Create("c", 2, v1::L2, v1::FLAT);
  absl::StatusOr<uint64_t> written = Upsert(
      *collection,
      {MakePoint("x", {1, 1}, "first"), MakePoint("x", {2, 2}, "second")});
  ASSERT_OK(written);
  EXPECT_EQ(*written, 1u);
  std::vector<v1::ScoredPoint> hits = Search(*collection, {2, 2}, 5);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_FLOAT_EQ(hits[0].score(), 0.0f);
  EXPECT_EQ(hits[0].metadata().fields().at("tag").string_value(), "second");
}

TEST_F(DatabaseTest, DeletedPointIsNeverReturned) {
  auto collection = Create("c", 2, v1::DOT_PRODUCT);
  ASSERT_OK(
      Upsert(*collection, {MakePoint("a", {1, 0}), MakePoint("b", {0, 1})}));
  google::protobuf::RepeatedPtrField<std::string> ids;
  ids.Add("a");
  ids.Add("missing");
  ids.Add("a");
  absl::StatusOr<uint64_t> deleted = collection->Delete(ids);
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 1u);
  EXPECT_THAT(Ids(Search(*collection, {1, 0}, 10)), ElementsAre("b"));
  collection.reset();
  Reopen();
  EXPECT_THAT(Ids(Search(*Open("c"), {1, 0}, 10)), ElementsAre("b"));
}

TEST_F(DatabaseTest, ReopenRestoresPointsAndOriginalVectors) {
  auto collection = Create("c", 3, v1::COSINE);
  ASSERT_OK(Upsert(*collection, {MakePoint("a", {3, 0, 4}, "x"),
                                 MakePoint("b", {0, 2, 0})}));
  collection.reset();
  Reopen();
  collection = Open("c");
  google::protobuf::RepeatedPtrField<std::string> ids;
  ids.Add("b");
  ids.Add("zzz");
  ids.Add("a");
  absl::StatusOr<std::vector<v1::Point>> points = collection->Get(ids);
  ASSERT_OK(points);
  ASSERT_EQ(points->size(), 2u);
  EXPECT_EQ((*points)[0].id(), "b");
  EXPECT_EQ((*points)[1].id(), "a");
  EXPECT_THAT((*points)[1].vector(), ElementsAre(3, 0, 4));
  EXPECT_EQ((*points)[1].metadata().fields().at("tag").string_value(), "x");

  std::vector<v1::ScoredPoint> hits = Search(*collection, {3, 0, 4}, 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_NEAR(hits[0].score(), 1.0f, 1e-6);
}

TEST_F(DatabaseTest, DropRemovesCollectionAndItsPoints) {
  auto collection = Create("c", 2, v1::L2);
  ASSERT_OK(Upsert(*collection, {MakePoint("a", {1, 0})}));
  ASSERT_OK(database_->DropCollection("c"));
  EXPECT_THAT(Upsert(*collection, {MakePoint("b", {1, 0})}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("dropped")));
  auto again = Create("c", 2, v1::L2);
  EXPECT_EQ(again->Describe().point_count(), 0u);
  collection.reset();
  again.reset();
  Reopen();
  EXPECT_EQ(Open("c")->Describe().point_count(), 0u);
}

TEST_F(DatabaseTest, SearchesNeverSeeHalfABatch) {
  // Every batch moves both points to the same new position, so a search
  // that saw half a batch would score them differently.
  auto collection = Create("c", 2, v1::L2, v1::FLAT);
  ASSERT_OK(
      Upsert(*collection, {MakePoint("a", {0, 0}), MakePoint("b", {0, 0})}));
  std::atomic<bool> done{false};
  std::atomic<int> mismatches{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        std::vector<v1::ScoredPoint> hits = Search(*collection, {0, 0}, 2);
        if (hits.size() != 2 || hits[0].score() != hits[1].score()) {
          ++mismatches;
        }
      }
    });
  }
  for (int i = 1; i <= 300; ++i) {
    const float x = static_cast<float>(i);
    ASSERT_OK(
        Upsert(*collection, {MakePoint("a", {x, 0}), MakePoint("b", {0, x})}));
  }
  done = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(collection->Describe().point_count(), 2u);
}

}  // namespace
}  // namespace vecdb::engine
