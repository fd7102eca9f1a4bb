#ifndef VECDB_TOOLS_VECTOR_FILE_H_
#define VECDB_TOOLS_VECTOR_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/mapped_file.h"

namespace vecdb::tools {

// A matrix of vectors in a binary file, `rows() * dimension()` values,
// memory-mapped. Two formats are read, chosen by the file name's ending:
//
//   .npy    NumPy's format, version 1 to 3: a two-dimensional array of
//           little-endian float32 ('<f4') or float64 ('<f8') in C order.
//   .fvecs  for each row, its dimension as a little-endian int32 and then
//           that many float32 values; every row has the same dimension.
//
// Rows are numbered from 0, as NumPy indexes them. Safe to read from several
// threads.
class VectorFile {
 public:
  // Opens `path` and checks its header and size. Returns INVALID_ARGUMENT
  // naming the file for an unknown ending, a malformed header, an
  // unsupported dtype, Fortran order, a shape that is not two-dimensional,
  // a dimension of 0 or a truncated file; NOT_FOUND when it does not exist.
  static absl::StatusOr<std::unique_ptr<VectorFile>> Open(
      const std::string& path);

  // True when `path` ends in .npy or .fvecs.
  static bool HasVectorFileExtension(const std::string& path);

  const std::string& path() const { return file_->path(); }
  size_t rows() const { return rows_; }
  uint32_t dimension() const { return dimension_; }

  // Copies row `row` (below rows()) into `out`, dimension() floats; float64
  // values are rounded to float32. Returns INVALID_ARGUMENT naming the file,
  // row and component when a value is NaN, infinite or, for float64, out of
  // float32's range. `out` is filled either way.
  absl::Status ReadRow(size_t row, float* out) const;

 private:
  enum class ValueType { kFloat32, kFloat64 };

  VectorFile(std::unique_ptr<MappedFile> file, size_t rows, uint32_t dimension,
             size_t data_offset, size_t row_stride, ValueType value_type)
      : file_(std::move(file)),
        rows_(rows),
        dimension_(dimension),
        data_offset_(data_offset),
        row_stride_(row_stride),
        value_type_(value_type) {}

  static absl::StatusOr<std::unique_ptr<VectorFile>> OpenNpy(
      std::unique_ptr<MappedFile> file);
  static absl::StatusOr<std::unique_ptr<VectorFile>> OpenFvecs(
      std::unique_ptr<MappedFile> file);

  std::unique_ptr<MappedFile> file_;
  size_t rows_;
  uint32_t dimension_;
  // Byte offset of row 0's first value, and bytes from one row to the next.
  size_t data_offset_;
  size_t row_stride_;
  ValueType value_type_;
};

}  // namespace vecdb::tools

#endif  // VECDB_TOOLS_VECTOR_FILE_H_
