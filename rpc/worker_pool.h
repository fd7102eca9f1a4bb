#ifndef VECDB_RPC_WORKER_POOL_H_
#define VECDB_RPC_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace vecdb::rpc {

// A fixed set of threads that run scheduled tasks in order of arrival.
// gRPC callback handlers must not block, so they hand blocking work (synced
// writes, index builds) to this pool. Thread-safe.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);

  // Runs every task already scheduled, then joins the threads.
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Schedule(std::function<void()> task);

 private:
  void RunTasks();

  absl::Mutex mutex_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace vecdb::rpc

#endif  // VECDB_RPC_WORKER_POOL_H_
