#include "engine/validation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/limits.h"

namespace vecdb::engine {
namespace {

bool IsNameCharacter(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '-';
}

// Returns the byte offset of the first invalid UTF-8 sequence, or -1.
// Overlong encodings, surrogates and code points above U+10FFFF are invalid.
long FindInvalidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = static_cast<unsigned char>(text[i]);
    size_t length;
    uint32_t code_point;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2;
      code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      code_point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      code_point = lead & 0x07;
    } else {
      return static_cast<long>(i);
    }
    if (i + length > text.size()) return static_cast<long>(i);
    for (size_t j = 1; j < length; ++j) {
      const unsigned char next = static_cast<unsigned char>(text[i + j]);
      if ((next & 0xC0) != 0x80) return static_cast<long>(i);
      code_point = (code_point << 6) | (next & 0x3F);
    }
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < kSmallest[length] || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return static_cast<long>(i);
    }
    i += length;
  }
  return -1;
}

absl::Status ValidateValue(const google::protobuf::Value& value,
                           const std::string& path, int depth, int max_depth);

absl::Status ValidateStruct(const google::protobuf::Struct& object,
                            const std::string& path, int depth, int max_depth) {
  for (const auto& [key, value] : object.fields()) {
    const std::string child = path.empty() ? key : absl::StrCat(path, ".", key);
    if (absl::Status status = ValidateValue(value, child, depth + 1, max_depth);
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateValue(const google::protobuf::Value& value,
                           const std::string& path, int depth, int max_depth) {
  if (depth > max_depth) {
    return absl::InvalidArgumentError(absl::StrCat("metadata field '", path,
                                                   "' is nested deeper than ",
                                                   max_depth, " levels"));
  }
  switch (value.kind_case()) {
    case google::protobuf::Value::kNumberValue:
      if (!std::isfinite(value.number_value())) {
        return absl::InvalidArgumentError(
            absl::StrCat("metadata field '", path, "' is ",
                         value.number_value(), "; numbers must be finite"));
      }
      return absl::OkStatus();
    case google::protobuf::Value::kStructValue:
      return ValidateStruct(value.struct_value(), path, depth, max_depth);
    case google::protobuf::Value::kListValue: {
      const auto& items = value.list_value().values();
      for (int i = 0; i < items.size(); ++i) {
        if (absl::Status status =
                ValidateValue(items[i], absl::StrCat(path, "[", i, "]"),
                              depth + 1, max_depth);
            !status.ok()) {
          return status;
        }
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

}  // namespace

absl::Status ValidateCollectionName(absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("collection name is empty");
  }
  if (name.size() > kMaxCollectionNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection name is ", name.size(),
                     " bytes, the limit is ", kMaxCollectionNameBytes));
  }
  if (name[0] == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("collection name '", name, "' must not start with '-'"));
  }
  for (char c : name) {
    if (!IsNameCharacter(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "collection name '", absl::CHexEscape(name),
          "' is invalid: use only ASCII letters, digits, '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePointId(absl::string_view id) {
  return ValidatePointId(id, kMaxPointIdBytes);
}

absl::Status ValidatePointId(absl::string_view id, size_t max_bytes) {
  if (id.empty()) return absl::InvalidArgumentError("id is empty");
  if (id.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("id is ", id.size(), " bytes, the limit is ", max_bytes,
                     " bytes of UTF-8"));
  }
  if (long offset = FindInvalidUtf8(id); offset >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("id is not valid UTF-8 at byte ", offset));
  }
  return absl::OkStatus();
}

absl::Status ValidatePointIds(
    const google::protobuf::RepeatedPtrField<std::string>& ids) {
  for (int i = 0; i < ids.size(); ++i) {
    if (absl::Status status = ValidatePointId(ids[i]); !status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("ids[", i, "]: ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateVector(
    const google::protobuf::RepeatedField<float>& vector, uint32_t dimension,
    v1::Metric metric) {
  if (vector.empty()) return absl::InvalidArgumentError("vector is empty");
  if (static_cast<uint32_t>(vector.size()) != dimension) {
    return absl::InvalidArgumentError(
        absl::StrCat("vector has ", vector.size(),
                     " components, the collection's dimension is ", dimension));
  }
  double squared_norm = 0;
  for (int i = 0; i < vector.size(); ++i) {
    const float component = vector[i];
    if (!std::isfinite(component)) {
      return absl::InvalidArgumentError(
          absl::StrCat("vector component ", i, " is ", component,
                       "; components must be finite"));
    }
    squared_norm += static_cast<double>(component) * component;
  }
  if (metric == v1::COSINE && squared_norm == 0) {
    return absl::InvalidArgumentError(
        "vector is all zeros, which has no direction for COSINE");
  }
  if (metric != v1::COSINE && squared_norm > kMaxSquaredNorm) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vector's squared norm ", squared_norm, " exceeds ", kMaxSquaredNorm,
        ", where inner products and distances overflow float"));
  }
  return absl::OkStatus();
}

absl::Status ValidateMetadata(const google::protobuf::Struct& metadata) {
  return ValidateMetadata(metadata, Limits());
}

absl::Status ValidateMetadata(const google::protobuf::Struct& metadata,
                              const Limits& limits) {
  const size_t bytes = metadata.ByteSizeLong();
  if (bytes > limits.max_metadata_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata is ", bytes, " bytes serialized, the limit is ",
                     limits.max_metadata_bytes));
  }
  return ValidateStruct(metadata, "", 0, limits.max_metadata_depth);
}

absl::Status ValidateLimits(const Limits& limits) {
  struct Check {
    const char* name;
    uint64_t value;
    uint64_t maximum;
  };
  const Check checks[] = {
      {"max_collection_name_bytes", limits.max_collection_name_bytes,
       kMaxCollectionNameBytes},
      {"max_point_id_bytes", limits.max_point_id_bytes, kMaxPointIdBytes},
      {"max_dimension", limits.max_dimension, kMaxDimension},
      {"max_top_k", limits.max_top_k, kMaxTopK},
      {"max_metadata_bytes", limits.max_metadata_bytes, kMaxMetadataBytes},
      {"max_metadata_depth",
       static_cast<uint64_t>(std::max(limits.max_metadata_depth, 0)),
       kMaxMetadataDepth},
      {"max_batch_points", limits.max_batch_points, UINT64_MAX},
      {"max_collections", limits.max_collections, UINT64_MAX},
  };
  for (const Check& check : checks) {
    if (check.value < 1 || check.value > check.maximum) {
      return absl::InvalidArgumentError(absl::StrCat(
          check.name, " is ", check.value, "; it must be 1 to ",
          check.maximum == UINT64_MAX ? "any larger number"
                                      : absl::StrCat(check.maximum)));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckUpsertLimits(const v1::UpsertRequest& request,
                               const Limits& limits) {
  const size_t points = static_cast<size_t>(request.points_size());
  if (points > limits.max_batch_points) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request has ", points, " points, the limit is ",
        limits.max_batch_points, " per request; split it into smaller ones"));
  }
  for (int i = 0; i < request.points_size(); ++i) {
    const v1::Point& point = request.points(i);
    absl::Status status =
        ValidatePointId(point.id(), limits.max_point_id_bytes);
    if (status.ok()) status = ValidateMetadata(point.metadata(), limits);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("points[", i, "] (id \"", absl::CHexEscape(point.id()),
                       "\"): ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSearchLimits(const v1::SearchRequest& request,
                               const Limits& limits) {
  if (request.top_k() > limits.max_top_k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "top_k is ", request.top_k(), ", it must be 1 to ", limits.max_top_k));
  }
  return absl::OkStatus();
}

void PrepareForIndex(const google::protobuf::RepeatedField<float>& vector,
                     v1::Metric metric, float* out) {
  if (metric != v1::COSINE) {
    std::copy(vector.begin(), vector.end(), out);
    return;
  }
  double squared_norm = 0;
  for (float component : vector) {
    squared_norm += static_cast<double>(component) * component;
  }
  const double inverse_norm = 1.0 / std::sqrt(squared_norm);
  for (int i = 0; i < vector.size(); ++i) {
    out[i] = static_cast<float>(vector[i] * inverse_norm);
  }
}

}  // namespace vecdb::engine
