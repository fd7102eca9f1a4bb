#ifndef VECDB_TOOLS_PROGRESS_H_
#define VECDB_TOOLS_PROGRESS_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace vecdb::tools {

// Formats seconds as "42 s", "3 min 05 s" or "2 h 07 min".
std::string FormatDuration(double seconds);

// Shows the progress of an import on a stream (stderr in the tool) from a
// thread of its own. On a terminal it redraws one line five times a second,
// with a bar, the points done, the rate and the time left. Elsewhere it
// prints a plain line every `interval`. Add may be called from any thread.
class ProgressReporter {
 public:
  // Starts reporting progress towards `total` points.
  ProgressReporter(uint64_t total, std::FILE* out, bool terminal,
                   absl::Duration interval);
  // Calls Stop.
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Counts `points` more points as done.
  void Add(uint64_t points) { done_.fetch_add(points); }

  // Stops the thread and ends the terminal's progress line. Idempotent.
  void Stop();

 private:
  void Run();
  void Print(bool final);

  const uint64_t total_;
  std::FILE* const out_;
  const bool terminal_;
  const absl::Duration interval_;
  const absl::Time start_;
  std::atomic<uint64_t> done_{0};
  absl::Notification stop_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace vecdb::tools

#endif  // VECDB_TOOLS_PROGRESS_H_
