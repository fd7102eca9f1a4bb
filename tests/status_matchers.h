#ifndef VECDB_TESTS_STATUS_MATCHERS_H_
#define VECDB_TESTS_STATUS_MATCHERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vecdb::testing {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// Matches a Status or StatusOr whose code is `code` and whose message
// matches `message_matcher`.
MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code &&
         ::testing::Matches(message_matcher)(std::string(status.message()));
}

// Matches an OK StatusOr whose value matches `value_matcher`.
MATCHER_P(IsOkAndHolds, value_matcher, "") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace vecdb::testing

// Both copy the status, because `expression` may be a temporary.
#define ASSERT_OK(expression)                         \
  do {                                                \
    const absl::Status vecdb_status_ =                \
        ::vecdb::testing::GetStatus(expression);      \
    ASSERT_TRUE(vecdb_status_.ok()) << vecdb_status_; \
  } while (0)

#define EXPECT_OK(expression)                         \
  do {                                                \
    const absl::Status vecdb_status_ =                \
        ::vecdb::testing::GetStatus(expression);      \
    EXPECT_TRUE(vecdb_status_.ok()) << vecdb_status_; \
  } while (0)

#endif  // VECDB_TESTS_STATUS_MATCHERS_H_
