#ifndef VECDB_TOOLS_MAPPED_FILE_H_
#define VECDB_TOOLS_MAPPED_FILE_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vecdb::tools {

// A whole file mapped read-only into memory. The contents stay valid for
// the object's lifetime. Safe to read from several threads.
class MappedFile {
 public:
  // Maps `path`. Returns NOT_FOUND when it does not exist, INVALID_ARGUMENT
  // when it is a directory and INTERNAL when it cannot be opened or mapped.
  // An empty file maps to empty contents.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(
      const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  absl::string_view contents() const { return absl::string_view(data_, size_); }

 private:
  MappedFile(std::string path, const char* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  const std::string path_;
  const char* const data_;
  const size_t size_;
};

// Calls `visit(line, line_number)` for each line of `text`, numbered from 1,
// without its '\n' or a '\r' before it. A final line without '\n' counts; an
// empty text has no lines. Stops early when `visit` returns false.
template <typename Visitor>
void ForEachLine(absl::string_view text, Visitor visit) {
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t end = text.find('\n');
    absl::string_view line = text.substr(0, end);
    text.remove_prefix(end == absl::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!visit(line, line_number)) return;
  }
}

}  // namespace vecdb::tools

#endif  // VECDB_TOOLS_MAPPED_FILE_H_
