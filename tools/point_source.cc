#include "tools/point_source.h"

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "simdjson.h"
#include "tools/json_values.h"
#include "tools/mapped_file.h"
#include "tools/vector_file.h"

namespace vecdb::tools {
namespace {

absl::Status AtLine(const std::string& path, size_t line_number,
                    absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": line ", line_number, ": ", problem));
}

std::string GeneratedId(const SourceOptions& options, size_t index) {
  return absl::StrCat(options.id_prefix, options.id_start + index);
}

// Parses one line of a JSON lines file into `parser`'s document. The message
// of a failure points at NaN and Infinity, which JSON cannot express but
// some writers produce (Python's json.dumps among them).
absl::StatusOr<simdjson::dom::element> ParseJsonLine(
    simdjson::dom::parser& parser, const std::string& path, size_t line_number,
    absl::string_view line) {
  simdjson::dom::element element;
  const simdjson::error_code error =
      parser.parse(line.data(), line.size(), true).get(element);
  if (error == simdjson::SUCCESS) return element;

  std::string problem =
      absl::StrCat("invalid JSON: ", simdjson::error_message(error));
  if (absl::StrContains(line, "NaN") || absl::StrContains(line, "Infinity")) {
    absl::StrAppend(&problem,
                    "; NaN and Infinity are not JSON numbers, and vector "
                    "components must be finite");
  }
  return AtLine(path, line_number, problem);
}

// A .jsonl file with one point a line. See README.md for the fields.
class JsonlPointSource final : public PointSource {
 public:
  JsonlPointSource(std::unique_ptr<MappedFile> file, SourceOptions options)
      : file_(std::move(file)), options_(std::move(options)) {
    Rewind();
  }

  absl::StatusOr<bool> Next(v1::Point* point) override {
    // Blank lines carry no point and are skipped.
    absl::string_view line;
    do {
      if (remaining_.empty()) return false;
      const size_t end = remaining_.find('\n');
      line = remaining_.substr(0, end);
      remaining_.remove_prefix(
          end == absl::string_view::npos ? remaining_.size() : end + 1);
      ++line_number_;
    } while (absl::StripAsciiWhitespace(line).empty());

    const size_t index = point_count_++;
    if (line_numbers_.size() < point_count_) {
      line_numbers_.push_back(line_number_);
    }
    point->Clear();
    if (absl::Status status = ParseLine(line, index, point); !status.ok()) {
      return status;
    }
    return true;
  }

  void Rewind() override {
    remaining_ = file_->contents();
    line_number_ = 0;
    point_count_ = 0;
  }

  uint32_t dimension() const override { return dimension_; }

  std::string Location(size_t index) const override {
    return absl::StrCat(file_->path(), ": line ", line_numbers_[index]);
  }
  std::string IdLocation(size_t index) const override {
    return Location(index);
  }

  std::string Describe() const override {
    return absl::StrCat(file_->path(), " (JSON lines)");
  }

 private:
  absl::Status ParseLine(absl::string_view line, size_t index,
                         v1::Point* point) {
    absl::StatusOr<simdjson::dom::element> parsed =
        ParseJsonLine(parser_, file_->path(), line_number_, line);
    if (!parsed.ok()) return parsed.status();
    simdjson::dom::object object;
    if (parsed->get_object().get(object) != simdjson::SUCCESS) {
      return Fail(absl::StrCat("expected a JSON object, found ",
                               JsonTypeName(*parsed)));
    }

    if (absl::Status status = ReadId(object, index, point); !status.ok()) {
      return status;
    }
    if (absl::Status status = ReadVector(object, point); !status.ok()) {
      return status;
    }
    return ReadMetadata(object, point);
  }

  absl::Status ReadId(simdjson::dom::object object, size_t index,
                      v1::Point* point) {
    simdjson::dom::element id;
    if (object["id"].get(id) != simdjson::SUCCESS) {
      point->set_id(GeneratedId(options_, index));
      return absl::OkStatus();
    }
    if (id.is_string()) {
      point->set_id(std::string(id.get_string().value_unsafe()));
    } else if (id.is_int64() || id.is_uint64()) {
      // Integer ids are stored as their decimal text.
      point->set_id(id.is_int64()
                        ? absl::StrCat(id.get_int64().value_unsafe())
                        : absl::StrCat(id.get_uint64().value_unsafe()));
    } else {
      return Fail(absl::StrCat("'id' is a ", JsonTypeName(id),
                               ", expected a string or an integer"));
    }
    return absl::OkStatus();
  }

  absl::Status ReadVector(simdjson::dom::object object, v1::Point* point) {
    simdjson::dom::element vector;
    if (object["vector"].get(vector) != simdjson::SUCCESS) {
      return Fail("the object has no 'vector' field");
    }
    components_.clear();
    if (absl::Status status = AppendFloatArray(vector, &components_);
        !status.ok()) {
      return Fail(absl::StrCat("'vector': ", status.message()));
    }
    if (components_.empty()) return Fail("'vector' is empty");
    if (dimension_ == 0) dimension_ = static_cast<uint32_t>(components_.size());
    if (components_.size() != dimension_) {
      return Fail(absl::StrCat("'vector' has dimension ", components_.size(),
                               ", expected ", dimension_,
                               " like the first point"));
    }
    point->mutable_vector()->Assign(components_.begin(), components_.end());
    return absl::OkStatus();
  }

  // The metadata is the 'metadata' object when there is one, and otherwise
  // every field besides 'id' and 'vector'. Both at once are ambiguous.
  absl::Status ReadMetadata(simdjson::dom::object object, v1::Point* point) {
    std::vector<std::string> other_fields;
    for (simdjson::dom::key_value_pair field : object) {
      if (field.key != "id" && field.key != "vector" &&
          field.key != "metadata") {
        other_fields.emplace_back(field.key);
      }
    }

    simdjson::dom::element nested;
    if (object["metadata"].get(nested) == simdjson::SUCCESS) {
      if (!other_fields.empty()) {
        return Fail(
            absl::StrCat("the object has a 'metadata' field and other fields (",
                         absl::StrJoin(other_fields, ", "),
                         "); put all metadata in one of the two"));
      }
      if (!nested.is_object()) {
        return Fail(absl::StrCat("'metadata' is a ", JsonTypeName(nested),
                                 ", expected an object"));
      }
      return ConvertOrFail(nested.get_object().value_unsafe(), point);
    }
    if (other_fields.empty()) return absl::OkStatus();

    // Copies the object without 'id' and 'vector' into the metadata.
    google::protobuf::Struct metadata;
    absl::Status status = ConvertMetadata(object, &metadata);
    if (!status.ok()) return Fail(status.message());
    metadata.mutable_fields()->erase("id");
    metadata.mutable_fields()->erase("vector");
    *point->mutable_metadata() = std::move(metadata);
    return absl::OkStatus();
  }

  absl::Status ConvertOrFail(simdjson::dom::object object, v1::Point* point) {
    absl::Status status = ConvertMetadata(object, point->mutable_metadata());
    if (!status.ok()) return Fail(status.message());
    return absl::OkStatus();
  }

  absl::Status Fail(absl::string_view problem) const {
    return AtLine(file_->path(), line_number_, problem);
  }

  std::unique_ptr<MappedFile> file_;
  const SourceOptions options_;
  simdjson::dom::parser parser_;
  absl::string_view remaining_;
  size_t line_number_ = 0;
  size_t point_count_ = 0;
  // The line of each point read so far, by index.
  std::vector<size_t> line_numbers_;
  uint32_t dimension_ = 0;
  std::vector<float> components_;
};

// The lines of a text file that belongs to a vector file: one line per row.
struct RowLines {
  std::unique_ptr<MappedFile> file;
  std::vector<absl::string_view> lines;
};

// Reads the lines of `path`, one for each of `rows` rows, rejecting empty
// lines and a line count other than `rows`. The error for an empty line
// ends with `empty_hint`, the text to write instead.
absl::StatusOr<RowLines> ReadRowLines(const std::string& path,
                                      const VectorFile& vectors,
                                      absl::string_view empty_hint) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  RowLines result;
  result.file = *std::move(file);
  result.lines.reserve(vectors.rows());

  absl::Status status;
  ForEachLine(
      result.file->contents(), [&](absl::string_view line, size_t line_number) {
        if (line.empty()) {
          status = AtLine(path, line_number,
                          absl::StrCat("the line is empty; ", empty_hint));
          return false;
        }
        result.lines.push_back(line);
        return true;
      });
  if (!status.ok()) return status;

  if (result.lines.size() != vectors.rows()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " has ", result.lines.size(), " lines but ", vectors.path(),
        " has ", vectors.rows(), " rows; they must match one to one"));
  }
  return result;
}

// A .npy or .fvecs file, with ids and metadata from optional text files.
class MatrixPointSource final : public PointSource {
 public:
  MatrixPointSource(std::unique_ptr<VectorFile> vectors,
                    std::optional<RowLines> ids,
                    std::optional<RowLines> metadata, SourceOptions options)
      : vectors_(std::move(vectors)),
        ids_(std::move(ids)),
        metadata_(std::move(metadata)),
        options_(std::move(options)) {}

  absl::StatusOr<bool> Next(v1::Point* point) override {
    if (row_ >= vectors_->rows()) return false;
    const size_t row = row_++;
    point->Clear();

    point->set_id(ids_ ? std::string(ids_->lines[row])
                       : GeneratedId(options_, row));

    point->mutable_vector()->Resize(static_cast<int>(vectors_->dimension()),
                                    0.0f);
    if (absl::Status status =
            vectors_->ReadRow(row, point->mutable_vector()->mutable_data());
        !status.ok()) {
      return status;
    }

    if (metadata_) return ReadMetadata(row, point);
    return true;
  }

  void Rewind() override { row_ = 0; }

  uint32_t dimension() const override { return vectors_->dimension(); }

  std::string Location(size_t index) const override {
    return absl::StrCat(vectors_->path(), ": row ", index);
  }
  std::string IdLocation(size_t index) const override {
    if (!ids_) return Location(index);
    return absl::StrCat(ids_->file->path(), ": line ", index + 1);
  }

  std::string Describe() const override {
    std::string text =
        absl::StrCat(vectors_->path(), " (", vectors_->rows(), " rows of ",
                     vectors_->dimension(), " values)");
    if (ids_) absl::StrAppend(&text, ", ids from ", ids_->file->path());
    if (metadata_) {
      absl::StrAppend(&text, ", metadata from ", metadata_->file->path());
    }
    return text;
  }

 private:
  absl::StatusOr<bool> ReadMetadata(size_t row, v1::Point* point) {
    const std::string& path = metadata_->file->path();
    const absl::string_view line = metadata_->lines[row];
    absl::StatusOr<simdjson::dom::element> parsed =
        ParseJsonLine(parser_, path, row + 1, line);
    if (!parsed.ok()) return parsed.status();
    if (!parsed->is_object()) {
      return AtLine(path, row + 1,
                    absl::StrCat("expected a JSON object, found ",
                                 JsonTypeName(*parsed)));
    }
    absl::Status status = ConvertMetadata(parsed->get_object().value_unsafe(),
                                          point->mutable_metadata());
    if (!status.ok()) return AtLine(path, row + 1, status.message());
    return true;
  }

  std::unique_ptr<VectorFile> vectors_;
  std::optional<RowLines> ids_;
  std::optional<RowLines> metadata_;
  const SourceOptions options_;
  simdjson::dom::parser parser_;
  size_t row_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PointSource>> OpenPointSource(
    const SourceOptions& options) {
  if (absl::EndsWith(options.path, ".jsonl")) {
    if (!options.ids_path.empty() || !options.metadata_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          options.path,
          ": --ids and --metadata go with a .npy or .fvecs file; a .jsonl "
          "file carries ids and metadata on each line"));
    }
    absl::StatusOr<std::unique_ptr<MappedFile>> file =
        MappedFile::Open(options.path);
    if (!file.ok()) return file.status();
    return std::make_unique<JsonlPointSource>(*std::move(file), options);
  }

  if (!VectorFile::HasVectorFileExtension(options.path)) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.path,
                     ": unknown input type; expected a name ending in .jsonl, "
                     ".npy or .fvecs (Parquet is not supported)"));
  }
  absl::StatusOr<std::unique_ptr<VectorFile>> vectors =
      VectorFile::Open(options.path);
  if (!vectors.ok()) return vectors.status();

  std::optional<RowLines> ids;
  if (!options.ids_path.empty()) {
    absl::StatusOr<RowLines> lines = ReadRowLines(
        options.ids_path, **vectors, "every line must contain one id");
    if (!lines.ok()) return lines.status();
    ids = *std::move(lines);
  }
  std::optional<RowLines> metadata;
  if (!options.metadata_path.empty()) {
    absl::StatusOr<RowLines> lines =
        ReadRowLines(options.metadata_path, **vectors,
                     "write {} for a point without metadata");
    if (!lines.ok()) return lines.status();
    metadata = *std::move(lines);
  }
  return std::make_unique<MatrixPointSource>(
      *std::move(vectors), std::move(ids), std::move(metadata), options);
}

}  // namespace vecdb::tools
