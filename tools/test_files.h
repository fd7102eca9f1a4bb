#ifndef VECDB_TOOLS_TEST_FILES_H_
#define VECDB_TOOLS_TEST_FILES_H_

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace vecdb::tools::testing {

// A temporary directory for input files, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "vecdb-tools-test-XXXXXX")
            .string();
    path_ = ::mkdtemp(pattern.data());
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }

  // Writes `contents` to the file `name` and returns its path.
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = Path(name);
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  std::string Path(const std::string& name) const {
    return absl::StrCat(path_, "/", name);
  }

 private:
  std::string path_;
};

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// Returns a version 1 .npy file with the given header fields and data.
inline std::string NpyFile(const std::string& descr, bool fortran_order,
                           const std::string& shape, const std::string& data) {
  std::string header =
      absl::StrCat("{'descr': '", descr,
                   "', 'fortran_order': ", fortran_order ? "True" : "False",
                   ", 'shape': ", shape, ", }");
  // NumPy pads the header with spaces and a newline to a multiple of 64.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string file = "\x93NUMPY";
  file.push_back('\x01');
  file.push_back('\x00');
  file.push_back(static_cast<char>(header.size() & 0xff));
  file.push_back(static_cast<char>(header.size() >> 8));
  return file + header + data;
}

inline std::string Float32Npy(size_t rows, size_t dimension,
                              const std::vector<float>& values) {
  return NpyFile("<f4", false, absl::StrCat("(", rows, ", ", dimension, ")"),
                 Bytes(values));
}

// Returns an .fvecs file whose rows have the given values.
inline std::string FvecsFile(const std::vector<std::vector<float>>& rows) {
  std::string file;
  for (const std::vector<float>& row : rows) {
    file += Bytes(std::vector<int32_t>{static_cast<int32_t>(row.size())});
    file += Bytes(row);
  }
  return file;
}

}  // namespace vecdb::tools::testing

#endif  // VECDB_TOOLS_TEST_FILES_H_
