#ifndef VECDB_TOOLS_POINT_SOURCE_H_
#define VECDB_TOOLS_POINT_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "vecdb/v1/vecdb.pb.h"

namespace vecdb::tools {

// Input files of an import and how ids are made for points without one.
struct SourceOptions {
  // A .jsonl file of points, or a .npy or .fvecs file of vectors.
  std::string path;
  // Optional, with a vector file only: one id a line, in row order.
  std::string ids_path;
  // Optional, with a vector file only: one JSON object a line, in row order,
  // the metadata of each point.
  std::string metadata_path;
  // A point without an id gets `id_prefix` followed by `id_start` plus its
  // position in the input, counted from 0 over the points.
  std::string id_prefix;
  uint64_t id_start = 0;
};

// Points read in order from the input files. Locations in messages name
// the file and, in a binary file, the row (counted from 0, as NumPy does)
// or, in a text file, the line (counted from 1, as editors do). Not safe
// to use from several threads.
class PointSource {
 public:
  virtual ~PointSource() = default;

  // Reads the next point into `point`, replacing its contents. Returns
  // false after the last point. Returns INVALID_ARGUMENT naming the file and
  // line or row when the input is malformed. Examples are invalid JSON, a
  // missing or mistyped field, a vector of another dimension than the first
  // and a component that is not a finite float32.
  virtual absl::StatusOr<bool> Next(v1::Point* point) = 0;

  // Starts again at the first point.
  virtual void Rewind() = 0;

  // The dimension of every vector. Known on opening a vector file; for a
  // .jsonl file, the first point's dimension, 0 until Next has read it.
  virtual uint32_t dimension() const = 0;

  // Where the point at `index` (counted from 0) was read, such as
  // "points.jsonl: line 8" or "vectors.npy: row 7". Only for points that
  // Next has returned.
  virtual std::string Location(size_t index) const = 0;

  // Where the id of the point at `index` came from: the ids file's line
  // when there is one, else Location(index).
  virtual std::string IdLocation(size_t index) const = 0;

  // The input in a few words, such as "vectors.npy (1000 rows of 128
  // float32) with ids from ids.txt".
  virtual std::string Describe() const = 0;
};

// Opens the input that `options` names, choosing the format by the file's
// ending (.jsonl, .npy, .fvecs). Returns NOT_FOUND when a file does not
// exist. Returns INVALID_ARGUMENT for an unknown ending, for --ids or
// --metadata given with a .jsonl file, and for a file whose header is
// invalid. An ids or metadata file with an empty line, or whose line count
// differs from the vector file's rows, is INVALID_ARGUMENT too.
absl::StatusOr<std::unique_ptr<PointSource>> OpenPointSource(
    const SourceOptions& options);

}  // namespace vecdb::tools

#endif  // VECDB_TOOLS_POINT_SOURCE_H_
