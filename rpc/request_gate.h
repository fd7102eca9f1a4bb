#ifndef VECDB_RPC_REQUEST_GATE_H_
#define VECDB_RPC_REQUEST_GATE_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vecdb::rpc {

// Counts the requests in flight and, once a shutdown starts draining, turns
// new ones away, so that the server can wait for the work it accepted and
// for nothing else. Thread-safe.
class RequestGate {
 public:
  // Counts a new request and returns true, or returns false once draining
  // has started; the caller then rejects the request with UNAVAILABLE.
  bool Enter();

  // Ends a request that Enter admitted.
  void Exit();

  // Stops admitting requests and waits until none is in flight or until
  // `deadline`. Returns the number still in flight.
  int64_t Drain(absl::Time deadline);

 private:
  absl::Mutex mutex_;
  int64_t in_flight_ ABSL_GUARDED_BY(mutex_) = 0;
  bool draining_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace vecdb::rpc

#endif  // VECDB_RPC_REQUEST_GATE_H_
