#include "tools/progress.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vecdb::tools {
namespace {

constexpr int kBarWidth = 30;
constexpr absl::Duration kTerminalInterval = absl::Milliseconds(200);

}  // namespace

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "unknown";
  const int64_t whole = static_cast<int64_t>(std::llround(seconds));
  if (whole < 60) return absl::StrCat(whole, " s");
  if (whole < 3600) {
    return absl::StrFormat("%d min %02d s", whole / 60, whole % 60);
  }
  return absl::StrFormat("%d h %02d min", whole / 3600, whole % 3600 / 60);
}

ProgressReporter::ProgressReporter(uint64_t total, std::FILE* out,
                                   bool terminal, absl::Duration interval)
    : total_(total),
      out_(out),
      terminal_(terminal),
      interval_(terminal ? kTerminalInterval : interval),
      start_(absl::Now()),
      thread_([this] { Run(); }) {}

ProgressReporter::~ProgressReporter() { Stop(); }

void ProgressReporter::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_.Notify();
  thread_.join();
  if (terminal_) {
    Print(/*final=*/true);
    std::fputc('\n', out_);
    std::fflush(out_);
  }
}

void ProgressReporter::Run() {
  while (!stop_.WaitForNotificationWithTimeout(interval_)) {
    Print(/*final=*/false);
  }
}

void ProgressReporter::Print(bool final) {
  const uint64_t done = std::min(done_.load(), total_);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  const double rate = seconds > 0 ? done / seconds : 0;
  const double fraction = total_ > 0 ? double(done) / total_ : 1.0;
  const std::string left =
      rate > 0 ? FormatDuration((total_ - done) / rate) : "unknown";

  if (!terminal_) {
    absl::FPrintF(out_,
                  "import: %d of %d points (%.1f%%), %.0f points/s, %s left\n",
                  done, total_, 100 * fraction, rate, left);
    std::fflush(out_);
    return;
  }

  const int filled = static_cast<int>(fraction * kBarWidth);
  std::string bar(filled, '#');
  bar.resize(kBarWidth, '.');
  // \r returns to the line start and \x1b[K clears what a longer line left.
  absl::FPrintF(out_, "\r[%s] %5.1f%%  %d/%d points  %.0f points/s  %s%s\x1b[K",
                bar, 100 * fraction, done, total_, rate,
                final ? "elapsed " : "",
                final ? FormatDuration(seconds) : absl::StrCat(left, " left"));
  std::fflush(out_);
}

}  // namespace vecdb::tools
