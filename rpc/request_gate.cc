#include "rpc/request_gate.h"

namespace vecdb::rpc {

bool RequestGate::Enter() {
  absl::MutexLock lock(&mutex_);
  if (draining_) return false;
  ++in_flight_;
  return true;
}

void RequestGate::Exit() {
  absl::MutexLock lock(&mutex_);
  --in_flight_;
}

int64_t RequestGate::Drain(absl::Time deadline) {
  absl::MutexLock lock(&mutex_);
  draining_ = true;
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mutex_) {
    return in_flight_ == 0;
  };
  mutex_.AwaitWithDeadline(absl::Condition(&idle), deadline);
  return in_flight_;
}

}  // namespace vecdb::rpc
