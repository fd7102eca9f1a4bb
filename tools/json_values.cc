#include "tools/json_values.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "engine/limits.h"

namespace vecdb::tools {
namespace {

using google::protobuf::Value;

absl::Status ConvertValue(simdjson::dom::element json, const std::string& path,
                          int depth, Value* value);

// `depth` counts nesting as the server does: the values of the top-level
// object are at depth 1, and each object or list adds one level.
absl::Status ConvertObject(simdjson::dom::object object,
                           const std::string& path, int depth,
                           google::protobuf::Struct* out) {
  auto& fields = *out->mutable_fields();
  for (simdjson::dom::key_value_pair field : object) {
    const std::string key(field.key);
    const std::string child = path.empty() ? key : absl::StrCat(path, ".", key);
    if (absl::Status status =
            ConvertValue(field.value, child, depth + 1, &fields[key]);
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status ConvertValue(simdjson::dom::element json, const std::string& path,
                          int depth, Value* value) {
  if (depth > engine::kMaxMetadataDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata field '", path, "' is nested deeper than ",
                     engine::kMaxMetadataDepth, " levels"));
  }
  switch (json.type()) {
    case simdjson::dom::element_type::OBJECT:
      return ConvertObject(json.get_object().value_unsafe(), path, depth,
                           value->mutable_struct_value());
    case simdjson::dom::element_type::ARRAY: {
      google::protobuf::ListValue* list = value->mutable_list_value();
      size_t index = 0;
      // A named copy, because the result object of get_array() is a
      // temporary that a range-for over value_unsafe() would outlive.
      const simdjson::dom::array items = json.get_array().value_unsafe();
      for (simdjson::dom::element item : items) {
        if (absl::Status status =
                ConvertValue(item, absl::StrCat(path, "[", index, "]"),
                             depth + 1, list->add_values());
            !status.ok()) {
          return status;
        }
        ++index;
      }
      return absl::OkStatus();
    }
    case simdjson::dom::element_type::STRING:
      value->set_string_value(std::string(json.get_string().value_unsafe()));
      return absl::OkStatus();
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      // get_double converts the integer kinds as well.
      value->set_number_value(json.get_double().value_unsafe());
      return absl::OkStatus();
    case simdjson::dom::element_type::BOOL:
      value->set_bool_value(json.get_bool().value_unsafe());
      return absl::OkStatus();
    case simdjson::dom::element_type::NULL_VALUE:
      value->set_null_value(google::protobuf::NULL_VALUE);
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("metadata field '", path, "' has an unknown JSON type"));
}

}  // namespace

std::string JsonTypeName(simdjson::dom::element value) {
  switch (value.type()) {
    case simdjson::dom::element_type::OBJECT:
      return "object";
    case simdjson::dom::element_type::ARRAY:
      return "array";
    case simdjson::dom::element_type::STRING:
      return "string";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      return "number";
    case simdjson::dom::element_type::BOOL:
      return "boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

absl::Status AppendFloatArray(simdjson::dom::element array,
                              std::vector<float>* vector) {
  if (!array.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected an array of numbers, found ", JsonTypeName(array)));
  }
  size_t index = 0;
  const simdjson::dom::array items = array.get_array().value_unsafe();
  for (simdjson::dom::element item : items) {
    double number;
    if (item.get_double().get(number) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat("component ", index, " is a ", JsonTypeName(item),
                       ", expected a number"));
    }
    if (std::fabs(number) > std::numeric_limits<float>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "component ", index, " is ", number, ", out of float32's range"));
    }
    vector->push_back(static_cast<float>(number));
    ++index;
  }
  return absl::OkStatus();
}

absl::Status ConvertMetadata(simdjson::dom::object object,
                             google::protobuf::Struct* metadata) {
  if (absl::Status status = ConvertObject(object, "", 0, metadata);
      !status.ok()) {
    return status;
  }
  const size_t bytes = metadata->ByteSizeLong();
  if (bytes > engine::kMaxMetadataBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata is ", bytes, " bytes serialized, the limit is ",
                     engine::kMaxMetadataBytes));
  }
  return absl::OkStatus();
}

}  // namespace vecdb::tools
