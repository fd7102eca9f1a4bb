#ifndef VECDB_ENGINE_DATABASE_FIXTURE_H_
#define VECDB_ENGINE_DATABASE_FIXTURE_H_

// A test fixture that opens a Database in a fresh directory, with helpers to
// create collections, write points and search them.

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace vecdb::engine {

// Returns a vector of `dimension` normal samples drawn with `seed`.
inline std::vector<float> RandomVector(int seed, uint32_t dimension) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal;
  std::vector<float> vector(dimension);
  for (float& component : vector) component = normal(random);
  return vector;
}

inline v1::Point MakePoint(const std::string& id, std::vector<float> vector,
                           const std::string& tag = "") {
  v1::Point point;
  point.set_id(id);
  point.mutable_vector()->Assign(vector.begin(), vector.end());
  if (!tag.empty()) {
    (*point.mutable_metadata()->mutable_fields())["tag"].set_string_value(tag);
  }
  return point;
}

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.data_dir =
        (std::filesystem::path(::testing::TempDir()) /
         ::testing::UnitTest::GetInstance()->current_test_info()->name())
            .string();
    std::filesystem::remove_all(options_.data_dir);
    // Tests run maintenance themselves, with MaintainNow.
    options_.maintenance_period = absl::ZeroDuration();
    Reopen();
  }

  void TearDown() override {
    database_.reset();
    std::filesystem::remove_all(options_.data_dir);
  }

  // Callers release their collections first: a collection must not
  // outlive its database.
  void Reopen() {
    database_.reset();
    absl::StatusOr<std::unique_ptr<Database>> database =
        Database::Open(options_);
    ASSERT_OK(database);
    database_ = *std::move(database);
  }

  std::shared_ptr<Collection> Create(const std::string& name,
                                     uint32_t dimension, v1::Metric metric,
                                     v1::IndexKind kind = v1::HNSW) {
    v1::CreateCollectionRequest request;
    request.set_name(name);
    request.set_dimension(dimension);
    request.set_metric(metric);
    request.mutable_index()->set_kind(kind);
    EXPECT_OK(database_->CreateCollection(request));
    return Open(name);
  }

  std::shared_ptr<Collection> Open(const std::string& name) {
    absl::StatusOr<std::shared_ptr<Collection>> collection =
        database_->GetCollection(name);
    EXPECT_OK(collection);
    return collection.ok() ? *collection : nullptr;
  }

  static absl::StatusOr<uint64_t> Upsert(Collection& collection,
                                         std::vector<v1::Point> points) {
    google::protobuf::RepeatedPtrField<v1::Point> field(points.begin(),
                                                        points.end());
    return collection.Upsert(field);
  }

  static std::vector<v1::ScoredPoint> Search(Collection& collection,
                                             std::vector<float> vector,
                                             uint32_t top_k) {
    v1::SearchRequest request;
    request.mutable_vector()->Assign(vector.begin(), vector.end());
    request.set_top_k(top_k);
    request.set_include_metadata(true);
    absl::StatusOr<v1::SearchResponse> response = collection.Search(request);
    EXPECT_OK(response);
    if (!response.ok()) return {};
    return {response->hits().begin(), response->hits().end()};
  }

  static std::vector<std::string> Ids(
      const std::vector<v1::ScoredPoint>& hits) {
    std::vector<std::string> ids;
    for (const v1::ScoredPoint& hit : hits) ids.push_back(hit.id());
    return ids;
  }

  DatabaseOptions options_;
  std::unique_ptr<Database> database_;
};

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_DATABASE_FIXTURE_H_
