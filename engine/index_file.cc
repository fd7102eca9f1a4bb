#include "engine/index_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "faiss/impl/io.h"

namespace vecdb::engine {
namespace {

constexpr char kMagic[8] = {'V', 'E', 'C', 'D', 'B', 'I', 'D', 'X'};
constexpr char kEndMarker[8] = {'V', 'E', 'C', 'D', 'B', 'E', 'N', 'D'};
constexpr uint32_t kFormatVersion = 1;
// Magic, version, collection id, sequence and label count.
constexpr size_t kHeaderBytes = 8 + 4 + 8 + 8 + 8;
// CRC-32 and end marker.
constexpr size_t kTrailerBytes = 4 + 8;
// Bytes handed to zlib per call; crc32_z takes any size, but a bounded one
// keeps the loop simple across zlib versions.
constexpr size_t kChecksumChunk = size_t{1} << 30;

absl::Status ErrnoError(absl::string_view action, const std::string& path) {
  return absl::UnavailableError(
      absl::StrCat(action, " ", path, ": ", std::strerror(errno)));
}

uint32_t ExtendCrc(uint32_t crc, const void* data, size_t size) {
  const auto* bytes = static_cast<const Bytef*>(data);
  while (size > 0) {
    const size_t step = std::min(size, kChecksumChunk);
    crc = static_cast<uint32_t>(crc32_z(crc, bytes, step));
    bytes += step;
    size -= step;
  }
  return crc;
}

// Writes to a stdio file and keeps a running CRC-32 of what it wrote.
class ChecksumWriter : public faiss::IOWriter {
 public:
  explicit ChecksumWriter(FILE* file) : file_(file) {}

  size_t operator()(const void* data, size_t size, size_t count) override {
    // FAISS may write an empty vector with a null `data`, which fwrite must
    // not be given even for zero bytes.
    if (size == 0 || count == 0) return count;
    const size_t written = std::fwrite(data, size, count, file_);
    crc_ = ExtendCrc(crc_, data, written * size);
    return written;
  }

  bool Write(const void* data, size_t size) {
    return (*this)(data, 1, size) == size;
  }
  bool Write32(uint32_t value) {
    char bytes[4];
    absl::little_endian::Store32(bytes, value);
    return Write(bytes, 4);
  }
  bool Write64(uint64_t value) {
    char bytes[8];
    absl::little_endian::Store64(bytes, value);
    return Write(bytes, 8);
  }

  uint32_t crc() const { return crc_; }

 private:
  FILE* const file_;
  uint32_t crc_ = static_cast<uint32_t>(crc32_z(0, nullptr, 0));
};

// Reads from a byte range in memory, for FAISS and for the header.
class MemoryReader : public faiss::IOReader {
 public:
  MemoryReader(const char* data, size_t size) : data_(data), size_(size) {}

  size_t operator()(void* out, size_t size, size_t count) override {
    if (size == 0) return 0;
    const size_t whole = std::min(count, (size_ - position_) / size);
    // `out` may be null when FAISS reads an empty vector.
    if (whole == 0) return 0;
    std::memcpy(out, data_ + position_, whole * size);
    position_ += whole * size;
    return whole;
  }

  bool Read(void* out, size_t size) { return (*this)(out, 1, size) == size; }
  bool Read32(uint32_t* value) {
    char bytes[4];
    if (!Read(bytes, 4)) return false;
    *value = absl::little_endian::Load32(bytes);
    return true;
  }
  bool Read64(uint64_t* value) {
    char bytes[8];
    if (!Read(bytes, 8)) return false;
    *value = absl::little_endian::Load64(bytes);
    return true;
  }

  size_t position() const { return position_; }
  size_t remaining() const { return size_ - position_; }

 private:
  const char* const data_;
  const size_t size_;
  size_t position_ = 0;
};

// A read-only memory map of a whole file.
class MappedFile {
 public:
  static absl::StatusOr<MappedFile> Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT)
        return absl::NotFoundError(absl::StrCat(path, " does not exist"));
      return ErrnoError("cannot open", path);
    }
    absl::Cleanup close_fd = [fd] { ::close(fd); };
    struct stat info;
    if (::fstat(fd, &info) != 0) return ErrnoError("cannot stat", path);
    MappedFile file;
    file.size_ = static_cast<size_t>(info.st_size);
    if (file.size_ == 0) return file;
    void* data = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) return ErrnoError("cannot map", path);
    ::madvise(data, file.size_, MADV_SEQUENTIAL);
    file.data_ = static_cast<const char*>(data);
    return file;
  }

  MappedFile(MappedFile&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  MappedFile& operator=(MappedFile&&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }

  const char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  MappedFile() = default;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

absl::Status Corrupt(const std::string& path, absl::string_view reason) {
  return absl::DataLossError(absl::StrCat(path, ": ", reason));
}

}  // namespace

std::string IndexFileName(uint64_t collection_id, uint64_t sequence) {
  // Zero-padded, so that names sort by sequence.
  char name[64];
  std::snprintf(name, sizeof(name), "collection-%llu-%020llu.index",
                static_cast<unsigned long long>(collection_id),
                static_cast<unsigned long long>(sequence));
  return name;
}

absl::StatusOr<std::vector<IndexFileEntry>> ListIndexFiles(
    const std::string& dir, std::vector<std::string>* others) {
  std::vector<IndexFileEntry> entries;
  std::error_code error;
  std::filesystem::directory_iterator it(dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot list ", dir, ": ", error.message()));
  }
  for (const std::filesystem::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    unsigned long long collection_id = 0;
    unsigned long long sequence = 0;
    int consumed = 0;
    if (std::sscanf(name.c_str(), "collection-%llu-%llu.index%n",
                    &collection_id, &sequence, &consumed) == 2 &&
        static_cast<size_t>(consumed) == name.size() &&
        name == IndexFileName(collection_id, sequence)) {
      entries.push_back({collection_id, sequence, entry.path().string()});
    } else if (others != nullptr) {
      others->push_back(entry.path().string());
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const IndexFileEntry& a, const IndexFileEntry& b) {
              if (a.collection_id != b.collection_id) {
                return a.collection_id < b.collection_id;
              }
              return a.sequence > b.sequence;
            });
  return entries;
}

absl::Status WriteIndexFile(const std::string& path, uint64_t collection_id,
                            uint64_t sequence, const index::VectorIndex& index,
                            absl::Span<const std::string> label_to_id) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return ErrnoError("cannot create", path);
  absl::Cleanup close_file = [&file] {
    if (file != nullptr) std::fclose(file);
  };
  std::vector<char> buffer(size_t{4} << 20);
  std::setvbuf(file, buffer.data(), _IOFBF, buffer.size());

  ChecksumWriter writer(file);
  bool ok = writer.Write(kMagic, sizeof(kMagic)) &&
            writer.Write32(kFormatVersion) && writer.Write64(collection_id) &&
            writer.Write64(sequence) && writer.Write64(label_to_id.size());
  for (size_t i = 0; ok && i < label_to_id.size(); ++i) {
    ok = writer.Write32(static_cast<uint32_t>(label_to_id[i].size())) &&
         writer.Write(label_to_id[i].data(), label_to_id[i].size());
  }
  if (!ok) return ErrnoError("cannot write", path);
  if (absl::Status status = index.Save(&writer); !status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("writing ", path, ": ", status.message()));
  }
  char trailer[kTrailerBytes];
  absl::little_endian::Store32(trailer, writer.crc());
  std::memcpy(trailer + 4, kEndMarker, sizeof(kEndMarker));
  if (std::fwrite(trailer, 1, sizeof(trailer), file) != sizeof(trailer) ||
      std::fflush(file) != 0) {
    return ErrnoError("cannot write", path);
  }
  FILE* closing = std::exchange(file, nullptr);
  if (std::fclose(closing) != 0) return ErrnoError("cannot close", path);
  return absl::OkStatus();
}

absl::Status SyncAndRename(const std::string& from, const std::string& to) {
  const int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", from);
  const int synced = ::fsync(fd);
  ::close(fd);
  if (synced != 0) return ErrnoError("cannot sync", from);
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoError(absl::StrCat("cannot rename ", from, " to"), to);
  }
  const std::string dir = std::filesystem::path(to).parent_path().string();
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoError("cannot open", dir);
  const int dir_synced = ::fsync(dir_fd);
  ::close(dir_fd);
  if (dir_synced != 0) return ErrnoError("cannot sync", dir);
  return absl::OkStatus();
}

absl::StatusOr<IndexCheckpoint> ReadIndexFile(const std::string& path,
                                              uint64_t collection_id,
                                              const index::IndexSpec& spec) {
  absl::StatusOr<MappedFile> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  if (file->size() < kHeaderBytes + kTrailerBytes) {
    return Corrupt(path,
                   absl::StrCat("truncated: only ", file->size(), " bytes"));
  }
  const size_t body_size = file->size() - kTrailerBytes;
  const char* trailer = file->data() + body_size;
  if (std::memcmp(trailer + 4, kEndMarker, sizeof(kEndMarker)) != 0) {
    return Corrupt(path, "truncated: the end marker is missing");
  }
  const uint32_t expected_crc = absl::little_endian::Load32(trailer);
  const uint32_t actual_crc = ExtendCrc(
      static_cast<uint32_t>(crc32_z(0, nullptr, 0)), file->data(), body_size);
  if (actual_crc != expected_crc) {
    return Corrupt(
        path, absl::StrCat("checksum mismatch: the file says ", expected_crc,
                           ", its bytes give ", actual_crc));
  }

  MemoryReader reader(file->data(), body_size);
  char magic[sizeof(kMagic)];
  uint32_t version = 0;
  IndexCheckpoint checkpoint;
  uint64_t label_count = 0;
  if (!reader.Read(magic, sizeof(magic)) ||
      std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    return Corrupt(path, "not a vecdb index file");
  }
  reader.Read32(&version);
  if (version != kFormatVersion) {
    return Corrupt(path,
                   absl::StrCat("format version ", version,
                                ", this build reads version ", kFormatVersion));
  }
  reader.Read64(&checkpoint.collection_id);
  reader.Read64(&checkpoint.sequence);
  reader.Read64(&label_count);
  if (checkpoint.collection_id != collection_id) {
    return Corrupt(
        path, absl::StrCat("belongs to collection id ",
                           checkpoint.collection_id, ", not ", collection_id));
  }
  // Each label takes at least its 4-byte length.
  if (label_count > reader.remaining() / 4) {
    return Corrupt(path, absl::StrCat("claims ", label_count,
                                      " labels, more than the file holds"));
  }

  checkpoint.label_to_id.resize(label_count);
  std::vector<uint8_t> deleted(label_count, 0);
  for (uint64_t label = 0; label < label_count; ++label) {
    uint32_t length = 0;
    if (!reader.Read32(&length) || length > reader.remaining()) {
      return Corrupt(
          path, absl::StrCat("the id of label ", label, " runs past the end"));
    }
    std::string& id = checkpoint.label_to_id[label];
    id.resize(length);
    reader.Read(id.data(), length);
    if (length == 0) deleted[label] = 1;
  }

  absl::StatusOr<std::unique_ptr<index::VectorIndex>> index =
      index::VectorIndex::Load(spec, &reader, std::move(deleted));
  if (!index.ok()) return Corrupt(path, index.status().message());
  if (reader.remaining() != 0) {
    return Corrupt(path, absl::StrCat(reader.remaining(),
                                      " unexpected bytes follow the index"));
  }
  checkpoint.index = *std::move(index);
  return checkpoint;
}

}  // namespace vecdb::engine
