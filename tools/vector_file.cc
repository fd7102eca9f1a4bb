#include "tools/vector_file.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace vecdb::tools {
namespace {

constexpr absl::string_view kNpyMagic = "\x93NUMPY";

absl::Status NpyError(const std::string& path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", problem));
}

// Returns the text after `'key':` in a .npy header dictionary, up to the end
// of the header; the caller parses the value at its start.
absl::StatusOr<absl::string_view> FindHeaderValue(const std::string& path,
                                                  absl::string_view header,
                                                  absl::string_view key) {
  const std::string quoted = absl::StrCat("'", key, "'");
  size_t at = header.find(quoted);
  if (at == absl::string_view::npos) {
    return NpyError(path, absl::StrCat("the .npy header has no ", quoted,
                                       " entry: ", header));
  }
  absl::string_view rest = header.substr(at + quoted.size());
  rest = absl::StripLeadingAsciiWhitespace(rest);
  if (!absl::ConsumePrefix(&rest, ":")) {
    return NpyError(path, absl::StrCat("the .npy header is malformed after ",
                                       quoted, ": ", header));
  }
  return absl::StripLeadingAsciiWhitespace(rest);
}

// Parses the shape tuple at the start of `text`, such as "(1000, 128), ...".
absl::StatusOr<std::vector<size_t>> ParseShape(const std::string& path,
                                               absl::string_view text) {
  const size_t close = text.find(')');
  if (!absl::ConsumePrefix(&text, "(") || close == absl::string_view::npos) {
    return NpyError(path, "the .npy header's 'shape' is not a tuple");
  }
  std::vector<size_t> shape;
  for (absl::string_view item :
       absl::StrSplit(text.substr(0, close - 1), ',', absl::SkipWhitespace())) {
    uint64_t extent;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(item), &extent)) {
      return NpyError(path,
                      absl::StrCat("the .npy header's 'shape' has an invalid "
                                   "extent '",
                                   item, "'"));
    }
    shape.push_back(static_cast<size_t>(extent));
  }
  return shape;
}

std::string FormatShape(const std::vector<size_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    absl::StrAppend(&text, i == 0 ? "" : ", ", shape[i]);
  }
  absl::StrAppend(&text, shape.size() == 1 ? ",)" : ")");
  return text;
}

uint32_t ReadLittleEndian32(const char* bytes) {
  uint32_t value;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}

}  // namespace

bool VectorFile::HasVectorFileExtension(const std::string& path) {
  return absl::EndsWith(path, ".npy") || absl::EndsWith(path, ".fvecs");
}

absl::StatusOr<std::unique_ptr<VectorFile>> VectorFile::Open(
    const std::string& path) {
  if (!HasVectorFileExtension(path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": unknown vector file type; expected a name ending in .npy or "
        ".fvecs"));
  }
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  if (absl::EndsWith(path, ".npy")) return OpenNpy(*std::move(file));
  return OpenFvecs(*std::move(file));
}

absl::StatusOr<std::unique_ptr<VectorFile>> VectorFile::OpenNpy(
    std::unique_ptr<MappedFile> file) {
  const std::string& path = file->path();
  const absl::string_view contents = file->contents();

  // The preamble: magic, version, then the header's length (2 bytes in
  // version 1, 4 bytes in versions 2 and 3), all little-endian.
  if (contents.size() < 10 || !absl::StartsWith(contents, kNpyMagic)) {
    return NpyError(path, "not a .npy file (the magic string is missing)");
  }
  const int major_version = static_cast<unsigned char>(contents[6]);
  size_t header_start;
  size_t header_length;
  if (major_version == 1) {
    header_start = 10;
    header_length = static_cast<unsigned char>(contents[8]) |
                    static_cast<unsigned char>(contents[9]) << 8;
  } else if (major_version == 2 || major_version == 3) {
    if (contents.size() < 12) return NpyError(path, "the .npy file is cut off");
    header_start = 12;
    header_length = ReadLittleEndian32(contents.data() + 8);
  } else {
    return NpyError(path, absl::StrCat("unsupported .npy format version ",
                                       major_version, "; expected 1 to 3"));
  }
  if (contents.size() < header_start + header_length) {
    return NpyError(path, "the .npy header is cut off");
  }
  const absl::string_view header = contents.substr(header_start, header_length);

  // The header is a Python dictionary literal with three entries.
  absl::StatusOr<absl::string_view> descr =
      FindHeaderValue(path, header, "descr");
  if (!descr.ok()) return descr.status();
  ValueType value_type;
  size_t value_bytes;
  if (absl::StartsWith(*descr, "'<f4'")) {
    value_type = ValueType::kFloat32;
    value_bytes = 4;
  } else if (absl::StartsWith(*descr, "'<f8'")) {
    value_type = ValueType::kFloat64;
    value_bytes = 8;
  } else {
    const absl::string_view dtype = descr->substr(0, descr->find(','));
    return NpyError(path,
                    absl::StrCat("unsupported dtype ", dtype,
                                 "; expected little-endian float32 ('<f4') or "
                                 "float64 ('<f8'), for example "
                                 "array.astype(numpy.float32)"));
  }

  absl::StatusOr<absl::string_view> fortran_order =
      FindHeaderValue(path, header, "fortran_order");
  if (!fortran_order.ok()) return fortran_order.status();
  if (absl::StartsWith(*fortran_order, "True")) {
    return NpyError(path,
                    "the array is in Fortran order; save a C-ordered copy, "
                    "for example with numpy.ascontiguousarray(array)");
  }
  if (!absl::StartsWith(*fortran_order, "False")) {
    return NpyError(path, "the .npy header's 'fortran_order' is not a bool");
  }

  absl::StatusOr<absl::string_view> shape_text =
      FindHeaderValue(path, header, "shape");
  if (!shape_text.ok()) return shape_text.status();
  absl::StatusOr<std::vector<size_t>> shape = ParseShape(path, *shape_text);
  if (!shape.ok()) return shape.status();
  if (shape->size() != 2) {
    return NpyError(path,
                    absl::StrCat("the array has shape ", FormatShape(*shape),
                                 "; expected two dimensions, "
                                 "(points, vector dimension)"));
  }
  const size_t rows = (*shape)[0];
  const size_t dimension = (*shape)[1];
  if (dimension == 0 || dimension > std::numeric_limits<uint32_t>::max()) {
    return NpyError(path,
                    absl::StrCat("the array has shape ", FormatShape(*shape),
                                 "; the vector dimension must be at "
                                 "least 1"));
  }

  // The data follows the header; a shorter file was cut off.
  const size_t data_offset = header_start + header_length;
  const size_t row_stride = dimension * value_bytes;
  if (rows > (contents.size() - data_offset) / row_stride) {
    return NpyError(
        path, absl::StrCat("the file contains ", contents.size() - data_offset,
                           " data bytes, too few for shape ",
                           FormatShape(*shape), "; it may be truncated"));
  }
  return std::unique_ptr<VectorFile>(
      new VectorFile(std::move(file), rows, static_cast<uint32_t>(dimension),
                     data_offset, row_stride, value_type));
}

absl::StatusOr<std::unique_ptr<VectorFile>> VectorFile::OpenFvecs(
    std::unique_ptr<MappedFile> file) {
  const std::string& path = file->path();
  const absl::string_view contents = file->contents();
  if (contents.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the file is empty"));
  }
  if (contents.size() < 4) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": row 0 is cut off"));
  }

  // Row 0's dimension sets the stride; each row must repeat it.
  const uint32_t dimension = ReadLittleEndian32(contents.data());
  if (dimension == 0 || dimension > (1u << 30)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": row 0 declares dimension ", static_cast<int32_t>(dimension),
        "; expected a positive dimension"));
  }
  const size_t row_stride = 4 + size_t{dimension} * 4;
  size_t rows = 0;
  for (size_t offset = 0; offset < contents.size(); offset += row_stride) {
    const uint32_t row_dimension =
        offset + 4 <= contents.size()
            ? ReadLittleEndian32(contents.data() + offset)
            : 0;
    if (offset + 4 <= contents.size() && row_dimension != dimension) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": row ", rows, " has dimension ",
                       static_cast<int32_t>(row_dimension), ", expected ",
                       dimension, " as in row 0"));
    }
    if (offset + row_stride > contents.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": row ", rows, " is cut off after ", contents.size() - offset,
          " of its ", row_stride, " bytes; the file may be truncated"));
    }
    ++rows;
  }
  return std::unique_ptr<VectorFile>(new VectorFile(
      std::move(file), rows, dimension, 4, row_stride, ValueType::kFloat32));
}

absl::Status VectorFile::ReadRow(size_t row, float* out) const {
  const char* start =
      file_->contents().data() + data_offset_ + row * row_stride_;

  if (value_type_ == ValueType::kFloat32) {
    std::memcpy(out, start, size_t{dimension_} * sizeof(float));
  } else {
    for (uint32_t i = 0; i < dimension_; ++i) {
      double value;
      std::memcpy(&value, start + size_t{i} * sizeof(double), sizeof(value));
      if (std::isfinite(value) &&
          std::fabs(value) > std::numeric_limits<float>::max()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path(), ": row ", row, ": component ", i, " is ",
                         value, ", out of float32's range"));
      }
      out[i] = static_cast<float>(value);
    }
  }

  for (uint32_t i = 0; i < dimension_; ++i) {
    if (!std::isfinite(out[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(path(), ": row ", row, ": component ", i, " is ", out[i],
                       "; every component must be a finite number"));
    }
  }
  return absl::OkStatus();
}

}  // namespace vecdb::tools
