#include "rpc/api_keys.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::rpc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

TEST(ApiKeysParse, ReadsKeysRightsAndComments) {
  absl::StatusOr<ApiKeys> keys = ApiKeys::Parse(
      "# operators\n"
      "reader-key read\n"
      "\n"
      "  writer-key\twrite   # the import job\n"
      "admin-key admin\r\n",
      "keys.txt");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 3u);
  EXPECT_THAT(keys->Find("reader-key"), Optional(Right::kRead));
  EXPECT_THAT(keys->Find("writer-key"), Optional(Right::kWrite));
  EXPECT_THAT(keys->Find("admin-key"), Optional(Right::kAdmin));
  EXPECT_EQ(keys->Find("admin-ke"), std::nullopt);
  EXPECT_EQ(keys->Find("admin-keyx"), std::nullopt);
  EXPECT_EQ(keys->Find(""), std::nullopt);
}

TEST(ApiKeysParse, MalformedLineNamedWithoutKey) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"good admin\nsecret-one\n", "keys.txt: line 2: expected a key"},
      {"good admin\n\nsecret-two root\n", "keys.txt: line 3: the right"},
      {"secret-three read extra\n", "keys.txt: line 1: expected a key"},
      {"secret-four read\nsecret-four admin\n", "line 2: the key appears"},
      {"# nothing here\n", "keys.txt: no keys"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ApiKeys> keys = ApiKeys::Parse(c.text, "keys.txt");
    ASSERT_FALSE(keys.ok()) << c.text;
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(keys.status().message()), HasSubstr(c.expected));
    EXPECT_THAT(std::string(keys.status().message()), Not(HasSubstr("secret")));
  }
}

TEST(ApiKeysLoad, MissingFileIsNotFound) {
  absl::StatusOr<ApiKeys> keys = ApiKeys::Load("/nonexistent/vecdb-keys");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kNotFound);
}

TEST(RequiredRight, EveryServiceMethodHasTheDocumentedRight) {
  const std::map<std::string, Right> expected = {
      {"Get", Right::kRead},
      {"Search", Right::kRead},
      {"SearchBatch", Right::kRead},
      {"Count", Right::kRead},
      {"Scroll", Right::kRead},
      {"GetCollection", Right::kRead},
      {"ListCollections", Right::kRead},
      {"Upsert", Right::kWrite},
      {"Import", Right::kWrite},
      {"Delete", Right::kWrite},
      {"CreateCollection", Right::kAdmin},
      {"DropCollection", Right::kAdmin},
      {"CreateFieldIndex", Right::kAdmin},
      {"CreateSnapshot", Right::kAdmin},
      {"UpdateCollection", Right::kAdmin},
  };
  const google::protobuf::ServiceDescriptor* service =
      v1::CollectionInfo::descriptor()->file()->FindServiceByName("VectorDB");
  ASSERT_NE(service, nullptr);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string& method = service->method(i)->name();
    auto it = expected.find(method);
    // A method added later must get a right on purpose, so this test
    // fails until the table above names it.
    ASSERT_NE(it, expected.end()) << method << " has no documented right";
    EXPECT_EQ(RequiredRight(method), it->second) << method;
  }
  EXPECT_EQ(RequiredRight("SomeFutureMethod"), Right::kAdmin);
}

}  // namespace
}  // namespace vecdb::rpc
