#ifndef VECDB_ENGINE_INDEX_FILE_H_
#define VECDB_ENGINE_INDEX_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/vector_index.h"

namespace vecdb::engine {

// An index checkpoint: a collection's FAISS index with the point id of every
// label, as of one write sequence. A label whose id is empty was retired
// (its point replaced or deleted) and is marked deleted in the index.
//
// The file starts with a header (magic string, format version, collection
// id, sequence, label count) and the ids. The FAISS index follows in
// FAISS's own format, then a CRC-32 of everything before it and an end
// marker. docs/format.md has the details.
struct IndexCheckpoint {
  uint64_t collection_id = 0;
  uint64_t sequence = 0;
  std::vector<std::string> label_to_id;
  std::unique_ptr<index::VectorIndex> index;
};

// Index files live in one directory, named after their collection id and
// sequence, so that a collection's newest checkpoint is found by name.
std::string IndexFileName(uint64_t collection_id, uint64_t sequence);

struct IndexFileEntry {
  uint64_t collection_id = 0;
  uint64_t sequence = 0;
  std::string path;
};

// Lists the index files in `dir`, newest sequence first within a collection.
// Files whose names do not follow IndexFileName, such as unfinished ".tmp"
// files, are listed in `others` when it is not null.
absl::StatusOr<std::vector<IndexFileEntry>> ListIndexFiles(
    const std::string& dir, std::vector<std::string>* others = nullptr);

// Writes a checkpoint of `index` and `label_to_id` (one id per label) to
// `path` and flushes it to the operating system, but does not sync it: see
// SyncAndRename.
absl::Status WriteIndexFile(const std::string& path, uint64_t collection_id,
                            uint64_t sequence, const index::VectorIndex& index,
                            absl::Span<const std::string> label_to_id);

// Syncs the file at `from` to disk, renames it to `to` and syncs the
// directory, so that `to` is either absent or complete after a crash.
absl::Status SyncAndRename(const std::string& from, const std::string& to);

// Reads a checkpoint written by WriteIndexFile, after checking its checksum.
// Returns NOT_FOUND when the file is missing and DATA_LOSS, with the reason,
// when it is truncated, corrupted, of another collection or does not match
// `spec`.
absl::StatusOr<IndexCheckpoint> ReadIndexFile(const std::string& path,
                                              uint64_t collection_id,
                                              const index::IndexSpec& spec);

}  // namespace vecdb::engine

#endif  // VECDB_ENGINE_INDEX_FILE_H_
