#include "rpc/request_gate.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "rpc/worker_pool.h"

namespace vecdb::rpc {
namespace {

TEST(RequestGateTest, DrainWaitsForRequestsInFlight) {
  RequestGate gate;
  ASSERT_TRUE(gate.Enter());
  std::thread finisher([&gate] {
    absl::SleepFor(absl::Milliseconds(50));
    gate.Exit();
  });
  EXPECT_EQ(gate.Drain(absl::Now() + absl::Seconds(10)), 0);
  finisher.join();
}

TEST(RequestGateTest, DrainRejectsNewRequests) {
  RequestGate gate;
  EXPECT_EQ(gate.Drain(absl::Now()), 0);
  EXPECT_FALSE(gate.Enter());
}

TEST(RequestGateTest, DrainGivesUpAtDeadline) {
  RequestGate gate;
  ASSERT_TRUE(gate.Enter());
  ASSERT_TRUE(gate.Enter());
  gate.Exit();
  EXPECT_EQ(gate.Drain(absl::Now() + absl::Milliseconds(20)), 1);
  gate.Exit();
}

TEST(WorkerPoolTest, RunsEveryTaskBeforeJoining) {
  std::atomic<int> done{0};
  {
    WorkerPool pool(3);
    for (int i = 0; i < 100; ++i) {
      pool.Schedule([&done] { done.fetch_add(1); });
    }
  }
  EXPECT_EQ(done.load(), 100);
}

TEST(WorkerPoolTest, RunsTasksInParallel) {
  // Two tasks that each wait for the other can only finish when they run on
  // different threads at the same time.
  std::atomic<int> arrived{0};
  WorkerPool pool(2);
  for (int i = 0; i < 2; ++i) {
    pool.Schedule([&arrived] {
      arrived.fetch_add(1);
      while (arrived.load() < 2) std::this_thread::yield();
    });
  }
}

}  // namespace
}  // namespace vecdb::rpc
