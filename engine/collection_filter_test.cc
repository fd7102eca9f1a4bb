// Filters through a whole Database: filtered search against brute force,
// Count, Scroll, delete by filter, and field index entries as stored.

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/database.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "storage/field_index_codec.h"
#include "tests/status_matchers.h"

namespace vecdb::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using ::vecdb::testing::StatusIs;

v1::Filter ParseFilter(const std::string& text) {
  v1::Filter filter;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &filter))
      << text;
  return filter;
}

v1::Filter ColorIs(const std::string& color) {
  return ParseFilter(absl::StrCat(
      "must { field { key: 'color' match { string_value: '", color, "' } } }"));
}

v1::Filter BucketBelow(int bound) {
  return ParseFilter(absl::StrCat(
      "must { field { key: 'bucket' range { lt: ", bound, " } } }"));
}

class CollectionFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.data_dir =
        (std::filesystem::path(::testing::TempDir()) /
         ::testing::UnitTest::GetInstance()->current_test_info()->name())
            .string();
    std::filesystem::remove_all(options_.data_dir);
    Reopen();
  }

  void TearDown() override {
    collection_.reset();
    database_.reset();
    std::filesystem::remove_all(options_.data_dir);
  }

  void Reopen() {
    collection_.reset();
    database_.reset();
    absl::StatusOr<std::unique_ptr<Database>> database =
        Database::Open(options_);
    ASSERT_OK(database);
    database_ = *std::move(database);
    if (absl::StatusOr<std::shared_ptr<Collection>> collection =
            database_->GetCollection("docs");
        collection.ok()) {
      collection_ = *collection;
    }
  }

  void Create(uint32_t dimension, v1::IndexKind kind,
              v1::Metric metric = v1::L2) {
    v1::CreateCollectionRequest request;
    request.set_name("docs");
    request.set_dimension(dimension);
    request.set_metric(metric);
    request.mutable_index()->set_kind(kind);
    ASSERT_OK(database_->CreateCollection(request));
    collection_ = *database_->GetCollection("docs");
  }

  void Upsert(const std::string& id, std::vector<float> vector,
              const std::string& color = "", int bucket = -1) {
    google::protobuf::RepeatedPtrField<v1::Point> points;
    v1::Point* point = points.Add();
    point->set_id(id);
    point->mutable_vector()->Assign(vector.begin(), vector.end());
    auto& fields = *point->mutable_metadata()->mutable_fields();
    if (!color.empty()) fields["color"].set_string_value(color);
    if (bucket >= 0) fields["bucket"].set_number_value(bucket);
    ASSERT_OK(collection_->Upsert(points));
  }

  void CreateFieldIndex(const std::string& key, v1::FieldIndexType type) {
    v1::CreateFieldIndexRequest request;
    request.set_key(key);
    request.set_type(type);
    ASSERT_OK(collection_->CreateFieldIndex(request));
  }

  uint64_t Count(const v1::Filter& filter) {
    v1::CountRequest request;
    *request.mutable_filter() = filter;
    absl::StatusOr<uint64_t> count = collection_->Count(request);
    EXPECT_OK(count);
    return count.value_or(0);
  }

  std::vector<std::string> ScrollAll(const v1::Filter* filter, int limit) {
    std::vector<std::string> ids;
    v1::ScrollRequest request;
    request.set_limit(limit);
    if (filter != nullptr) *request.mutable_filter() = *filter;
    do {
      absl::StatusOr<v1::ScrollResponse> page = collection_->Scroll(request);
      EXPECT_OK(page);
      if (!page.ok()) break;
      EXPECT_LE(page->points_size(), limit);
      for (const v1::Point& point : page->points()) ids.push_back(point.id());
      request.set_cursor(page->next_cursor());
    } while (!request.cursor().empty());
    return ids;
  }

  // Reads the field index entries of the collection straight from RocksDB
  // as "key=value:point id" strings. Closes the database to do so.
  std::set<std::string> StoredIndexEntries(const std::string& key) {
    collection_.reset();
    database_.reset();
    storage::StorageOptions storage_options;
    storage_options.path =
        (std::filesystem::path(options_.data_dir) / "rocksdb").string();
    std::unique_ptr<storage::Storage> storage =
        *storage::Storage::Open(storage_options);
    const uint64_t collection_id = (*storage->ListCollections())[0].id;

    const std::string prefix =
        storage::EncodeFieldIndexKeyPrefix(collection_id, key);
    std::set<std::string> entries;
    const absl::Status scanned = storage->ScanFieldIndex(
        prefix, storage::PrefixEnd(prefix), storage->TakeReadView(),
        [&](absl::string_view entry,
            absl::string_view) -> absl::StatusOr<bool> {
          storage::IndexedValue value;
          absl::string_view point_id;
          EXPECT_OK(storage::DecodeFieldIndexEntry(entry, prefix.size(), &value,
                                                   &point_id));
          const std::string shown =
              value.kind == storage::IndexedValue::Kind::kString
                  ? value.text
                  : absl::StrCat(value.number);
          entries.insert(absl::StrCat(key, "=", shown, ":", point_id));
          return true;
        });
    EXPECT_OK(scanned);

    storage.reset();
    Reopen();
    return entries;
  }

  DatabaseOptions options_;
  std::unique_ptr<Database> database_;
  std::shared_ptr<Collection> collection_;
};

// Random vectors with a "bucket" from 0 to 999, so that "bucket < b" matches
// b/1000 of the points, and brute-force results to check searches against.
class FilteredSearchTest : public CollectionFilterTest {
 protected:
  static constexpr int kPoints = 20000;
  static constexpr uint32_t kDimension = 16;
  static constexpr int kQueries = 40;

  void Load(v1::IndexKind kind) {
    Create(kDimension, kind);
    std::mt19937 random(7);
    std::normal_distribution<float> normal;
    std::vector<int> buckets(kPoints);
    for (int i = 0; i < kPoints; ++i) buckets[i] = i % 1000;
    std::shuffle(buckets.begin(), buckets.end(), random);
    google::protobuf::RepeatedPtrField<v1::Point> points;
    for (int i = 0; i < kPoints; ++i) {
      v1::Point* point = points.Add();
      point->set_id(absl::StrCat("p", i));
      std::vector<float> vector(kDimension);
      for (float& component : vector) component = normal(random);
      point->mutable_vector()->Assign(vector.begin(), vector.end());
      (*point->mutable_metadata()->mutable_fields())["bucket"].set_number_value(
          buckets[i]);
      vectors_.push_back(vector);
      buckets_.push_back(buckets[i]);
    }
    ASSERT_OK(collection_->Upsert(points));
    for (int q = 0; q < kQueries; ++q) {
      std::vector<float> query(kDimension);
      for (float& component : query) component = normal(random);
      queries_.push_back(query);
    }
  }

  // Returns the true nearest distances among points with bucket < bound.
  std::vector<float> ExactDistances(const std::vector<float>& query, int bound,
                                    size_t k) const {
    std::vector<float> distances;
    for (int i = 0; i < kPoints; ++i) {
      if (buckets_[i] >= bound) continue;
      float squared = 0;
      for (uint32_t d = 0; d < kDimension; ++d) {
        const float difference = vectors_[i][d] - query[d];
        squared += difference * difference;
      }
      distances.push_back(std::sqrt(squared));
    }
    std::sort(distances.begin(), distances.end());
    distances.resize(std::min(k, distances.size()));
    return distances;
  }

  std::vector<std::string> ExactIds(const std::vector<float>& query, int bound,
                                    size_t k) const {
    std::vector<std::pair<float, int>> scored;
    for (int i = 0; i < kPoints; ++i) {
      if (buckets_[i] >= bound) continue;
      float squared = 0;
      for (uint32_t d = 0; d < kDimension; ++d) {
        const float difference = vectors_[i][d] - query[d];
        squared += difference * difference;
      }
      scored.emplace_back(squared, i);
    }
    std::sort(scored.begin(), scored.end());
    std::vector<std::string> ids;
    for (size_t j = 0; j < std::min(k, scored.size()); ++j) {
      ids.push_back(absl::StrCat("p", scored[j].second));
    }
    return ids;
  }

  v1::SearchResponse Search(const std::vector<float>& query, int bound,
                            uint32_t top_k) {
    v1::SearchRequest request;
    request.mutable_vector()->Assign(query.begin(), query.end());
    request.set_top_k(top_k);
    *request.mutable_filter() = BucketBelow(bound);
    absl::StatusOr<v1::SearchResponse> response = collection_->Search(request);
    EXPECT_OK(response);
    return response.value_or(v1::SearchResponse());
  }

  std::vector<std::vector<float>> vectors_;
  std::vector<int> buckets_;
  std::vector<std::vector<float>> queries_;
};

// Bucket bounds for 0.1%, 1%, 10%, 50% and 100% of the points.
constexpr int kBounds[] = {1, 10, 100, 500, 1000};

TEST_F(FilteredSearchTest, FlatIsExactAtEverySelectivity) {
  Load(v1::FLAT);
  for (int bound : kBounds) {
    SCOPED_TRACE(absl::StrCat("bucket < ", bound));
    for (const std::vector<float>& query : queries_) {
      const v1::SearchResponse response = Search(query, bound, 10);
      const std::vector<float> expected = ExactDistances(query, bound, 10);
      ASSERT_EQ(response.hits_size(), static_cast<int>(expected.size()));
      for (int i = 0; i < response.hits_size(); ++i) {
        EXPECT_NEAR(response.hits(i).score(), expected[i], 1e-4);
      }
    }
  }
}

TEST_F(FilteredSearchTest, FewerMatchesThanTopKReturnsAll) {
  Load(v1::HNSW);
  // 0.1% of 20,000 points: 20 match.
  const v1::SearchResponse response = Search(queries_[0], 1, 100);
  EXPECT_EQ(response.hits_size(), 20);
  for (const v1::ScoredPoint& hit : response.hits()) {
    const int index = std::stoi(hit.id().substr(1));
    EXPECT_EQ(buckets_[index], 0) << hit.id();
  }
}

TEST_F(FilteredSearchTest, HnswRecallAtEverySelectivity) {
  Load(v1::HNSW);
  for (int bound : kBounds) {
    SCOPED_TRACE(absl::StrCat("bucket < ", bound));
    size_t found = 0;
    size_t wanted = 0;
    for (const std::vector<float>& query : queries_) {
      const v1::SearchResponse response = Search(query, bound, 10);
      const std::vector<std::string> expected = ExactIds(query, bound, 10);
      ASSERT_EQ(response.hits_size(), static_cast<int>(expected.size()));
      for (const v1::ScoredPoint& hit : response.hits()) {
        const int index = std::stoi(hit.id().substr(1));
        EXPECT_LT(buckets_[index], bound) << hit.id();
        found += std::count(expected.begin(), expected.end(), hit.id());
      }
      wanted += expected.size();
    }
    EXPECT_GE(static_cast<double>(found) / wanted, 0.95);
  }
}

TEST_F(FilteredSearchTest, BatchSearchesShareFilters) {
  Load(v1::HNSW);
  v1::SearchBatchRequest batch;
  for (int bound : kBounds) {
    v1::SearchRequest* search = batch.add_searches();
    search->mutable_vector()->Assign(queries_[0].begin(), queries_[0].end());
    search->set_top_k(10);
    search->mutable_params()->set_exact(true);
    *search->mutable_filter() = BucketBelow(bound);
  }
  absl::StatusOr<v1::SearchBatchResponse> response =
      collection_->SearchBatch(batch);
  ASSERT_OK(response);
  ASSERT_EQ(response->results_size(), 5);
  for (int i = 0; i < 5; ++i) {
    const std::vector<float> expected =
        ExactDistances(queries_[0], kBounds[i], 10);
    ASSERT_EQ(response->results(i).hits_size(), 10);
    EXPECT_NEAR(response->results(i).hits(9).score(), expected[9], 1e-4);
  }
}

TEST_F(FilteredSearchTest, IndexedFilterGivesSameHits) {
  Load(v1::FLAT);
  const v1::SearchResponse before = Search(queries_[1], 100, 10);
  CreateFieldIndex("bucket", v1::INTEGER);
  const v1::SearchResponse after = Search(queries_[1], 100, 10);
  ASSERT_EQ(after.hits_size(), 10);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(after.hits(i).id(), before.hits(i).id());
  }
  EXPECT_EQ(Count(BucketBelow(100)), 2000u);
}

TEST_F(CollectionFilterTest, BadSearchFilterNamesItsPath) {
  Create(2, v1::FLAT);
  v1::SearchBatchRequest batch;
  for (int i = 0; i < 2; ++i) {
    v1::SearchRequest* search = batch.add_searches();
    search->add_vector(1);
    search->add_vector(0);
    search->set_top_k(1);
  }
  *batch.mutable_searches(1)->mutable_filter() =
      ParseFilter("must { field { key: 'a' } }");
  EXPECT_THAT(collection_->SearchBatch(batch),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("searches[1].filter.must[0].field: no "
                                 "operator")));
}

TEST_F(CollectionFilterTest, CountWithAndWithoutFilter) {
  Create(2, v1::FLAT);
  Upsert("a", {1, 0}, "red");
  Upsert("b", {0, 1}, "blue");
  Upsert("c", {1, 1}, "red");
  Upsert("d", {2, 1});
  EXPECT_EQ(Count(ColorIs("red")), 2u);
  EXPECT_EQ(Count(ColorIs("green")), 0u);
  EXPECT_EQ(*collection_->Count(v1::CountRequest()), 4u);
  EXPECT_EQ(Count(ParseFilter("must_not { field { key: 'color' exists: true "
                              "} }")),
            1u);
}

TEST_F(CollectionFilterTest, ScrollPagesInIdOrder) {
  Create(2, v1::FLAT);
  for (int i = 0; i < 25; ++i) {
    Upsert(absl::StrCat("id", i < 10 ? "0" : "", i), {1, float(i)},
           i % 2 == 0 ? "red" : "blue");
  }
  const std::vector<std::string> all = ScrollAll(nullptr, 10);
  ASSERT_EQ(all.size(), 25u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));

  const v1::Filter red = ColorIs("red");
  const std::vector<std::string> reds = ScrollAll(&red, 4);
  EXPECT_EQ(reds.size(), 13u);
  EXPECT_TRUE(std::is_sorted(reds.begin(), reds.end()));
}

TEST_F(CollectionFilterTest, ScrollLastFullPageHasNoCursor) {
  Create(2, v1::FLAT);
  for (const char* id : {"a", "b", "c", "d"}) Upsert(id, {1, 0});
  v1::ScrollRequest request;
  request.set_limit(4);
  absl::StatusOr<v1::ScrollResponse> page = collection_->Scroll(request);
  ASSERT_OK(page);
  EXPECT_EQ(page->points_size(), 4);
  EXPECT_EQ(page->next_cursor(), "");
}

TEST_F(CollectionFilterTest, ScrollStableAcrossWrites) {
  Create(2, v1::FLAT);
  for (const char* id : {"b", "d", "f", "h"}) Upsert(id, {1, 0});
  v1::ScrollRequest request;
  request.set_limit(2);
  request.set_include_vectors(true);
  absl::StatusOr<v1::ScrollResponse> first = collection_->Scroll(request);
  ASSERT_OK(first);
  ASSERT_EQ(first->points_size(), 2);
  EXPECT_EQ(first->points(1).id(), "d");
  EXPECT_EQ(first->points(1).vector_size(), 2);

  // "a" sorts before the cursor and stays unseen. "e" sorts after it and
  // shows up, and the deleted "f" is gone.
  Upsert("a", {1, 0});
  Upsert("e", {1, 0});
  google::protobuf::RepeatedPtrField<std::string> gone;
  gone.Add("f");
  ASSERT_OK(collection_->Delete(gone));

  request.set_cursor(first->next_cursor());
  request.set_limit(10);
  absl::StatusOr<v1::ScrollResponse> second = collection_->Scroll(request);
  ASSERT_OK(second);
  std::vector<std::string> ids;
  for (const v1::Point& point : second->points()) ids.push_back(point.id());
  EXPECT_THAT(ids, ElementsAre("e", "h"));
  EXPECT_EQ(second->next_cursor(), "");
}

TEST_F(CollectionFilterTest, ScrollRejectsBadCursorAndLimit) {
  Create(2, v1::FLAT);
  v1::ScrollRequest request;
  request.set_cursor("not a cursor");
  EXPECT_THAT(collection_->Scroll(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("cursor is invalid")));
  request.clear_cursor();
  request.set_limit(10001);
  EXPECT_THAT(collection_->Scroll(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("limit is 10001")));
}

TEST_F(CollectionFilterTest, DeleteByFilter) {
  Create(2, v1::HNSW);
  Upsert("a", {1, 0}, "red");
  Upsert("b", {0, 1}, "blue");
  Upsert("c", {1, 1}, "red");
  v1::DeleteRequest request;
  *request.mutable_filter() = ColorIs("red");
  EXPECT_EQ(*collection_->Delete(request), 2u);
  EXPECT_EQ(*collection_->Count(v1::CountRequest()), 1u);
  EXPECT_THAT(ScrollAll(nullptr, 10), ElementsAre("b"));
}

TEST_F(CollectionFilterTest, DeleteByIdsAndFilterDeletesIntersection) {
  Create(2, v1::FLAT);
  Upsert("a", {1, 0}, "red");
  Upsert("b", {0, 1}, "blue");
  Upsert("c", {1, 1}, "red");
  v1::DeleteRequest request;
  request.add_ids("a");
  request.add_ids("b");
  *request.mutable_filter() = ColorIs("red");
  EXPECT_EQ(*collection_->Delete(request), 1u);
  EXPECT_THAT(ScrollAll(nullptr, 10), ElementsAre("b", "c"));
}

TEST_F(CollectionFilterTest, DeleteRejectsEmptyAndBadFilters) {
  Create(2, v1::FLAT);
  Upsert("a", {1, 0}, "red");
  v1::DeleteRequest request;
  request.mutable_filter();
  EXPECT_THAT(collection_->Delete(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("would delete every point")));
  *request.mutable_filter() = ParseFilter(
      "must { field { key: 'color' match { string_value: 'red' } } } "
      "must { field { key: 'n' range { } } }");
  EXPECT_THAT(collection_->Delete(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("filter.must[1].field.range: no bound")));
  EXPECT_EQ(*collection_->Delete(v1::DeleteRequest()), 0u);
  EXPECT_EQ(*collection_->Count(v1::CountRequest()), 1u);
}

TEST_F(CollectionFilterTest, FieldIndexFollowsUpsertReplaceDeleteAndRestart) {
  Create(2, v1::FLAT);
  Upsert("a", {1, 0}, "red", 1);
  Upsert("b", {0, 1}, "blue", 2);
  CreateFieldIndex("color", v1::KEYWORD);
  CreateFieldIndex("bucket", v1::FLOAT);
  EXPECT_THAT(StoredIndexEntries("color"),
              UnorderedElementsAre("color=red:a", "color=blue:b"));

  Upsert("c", {1, 1}, "red", 3);
  Upsert("a", {1, 0}, "green", 1);
  google::protobuf::RepeatedPtrField<std::string> gone;
  gone.Add("b");
  ASSERT_OK(collection_->Delete(gone));
  Upsert("d", {2, 2});
  EXPECT_THAT(StoredIndexEntries("color"),
              UnorderedElementsAre("color=green:a", "color=red:c"));
  EXPECT_THAT(StoredIndexEntries("bucket"),
              UnorderedElementsAre("bucket=1:a", "bucket=3:c"));

  // StoredIndexEntries reopened the database, so this reads what was
  // loaded from storage.
  EXPECT_EQ(Count(ColorIs("red")), 1u);
  EXPECT_EQ(Count(ColorIs("green")), 1u);
  EXPECT_EQ(Count(ColorIs("blue")), 0u);
  EXPECT_EQ(Count(ParseFilter("must { field { key: 'bucket' range { gte: 1 "
                              "} } }")),
            2u);
  v1::CollectionInfo info = collection_->Describe();
  ASSERT_EQ(info.field_indexes_size(), 2);
  EXPECT_EQ(info.field_indexes(0).key(), "bucket");
  EXPECT_EQ(info.field_indexes(1).key(), "color");
  EXPECT_EQ(info.field_indexes(1).type(), v1::KEYWORD);
}

TEST_F(CollectionFilterTest, FieldIndexRejectsBadRequests) {
  Create(2, v1::FLAT);
  v1::CreateFieldIndexRequest request;
  request.set_key("color");
  EXPECT_THAT(collection_->CreateFieldIndex(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("type 0 is missing")));
  request.set_type(v1::KEYWORD);
  ASSERT_OK(collection_->CreateFieldIndex(request));
  EXPECT_OK(collection_->CreateFieldIndex(request));
  request.set_type(v1::INTEGER);
  EXPECT_THAT(collection_->CreateFieldIndex(request),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr("already indexed as KEYWORD")));
  request.set_key("a..b");
  EXPECT_THAT(
      collection_->CreateFieldIndex(request),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty segment")));
}

TEST_F(CollectionFilterTest, MixedIndexedAndUnindexedKeys) {
  Create(2, v1::FLAT);
  Upsert("a", {1, 0}, "red", 1);
  Upsert("b", {0, 1}, "red", 2);
  Upsert("c", {1, 1}, "blue", 2);
  CreateFieldIndex("color", v1::KEYWORD);
  const v1::Filter filter = ParseFilter(
      "must { field { key: 'color' match { string_value: 'red' } } } "
      "must { field { key: 'bucket' match { number_value: 2 } } }");
  EXPECT_EQ(Count(filter), 1u);
  EXPECT_THAT(ScrollAll(&filter, 10), ElementsAre("b"));
}

TEST_F(CollectionFilterTest, DropRemovesFieldIndexEntries) {
  Create(2, v1::FLAT);
  Upsert("a", {1, 0}, "red");
  CreateFieldIndex("color", v1::KEYWORD);
  collection_.reset();
  ASSERT_OK(database_->DropCollection("docs"));
  Create(2, v1::FLAT);
  EXPECT_EQ(collection_->Describe().field_indexes_size(), 0);
  EXPECT_EQ(Count(ColorIs("red")), 0u);
}

}  // namespace
}  // namespace vecdb::engine
