#include "storage/storage.h"

#include <algorithm>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/checkpoint.h"

namespace vecdb::storage {
namespace {

constexpr char kCollectionsFamily[] = "collections";
constexpr char kPointsFamily[] = "points";
constexpr char kChangesFamily[] = "changes";
constexpr char kFieldIndexFamily[] = "field_index";

// Key in the default column family holding the next collection id.
constexpr char kNextCollectionIdKey[] = "next_collection_id";

// Prefixes of the keys in the default column family holding a collection's
// last write sequence and the sequence its change log was trimmed through,
// each followed by the collection id as 8 big-endian bytes.
constexpr char kSequenceKeyPrefix[] = "sequence/";
constexpr char kTrimmedKeyPrefix[] = "trimmed/";

// Collection record layout, version 1: one version byte, the id as 8
// big-endian bytes, then the configuration bytes.
constexpr uint8_t kCollectionFormatVersion = 1;

// Debian's Abseil has its own string_view type, not std::string_view, so
// slices are converted by hand.
absl::string_view View(const rocksdb::Slice& slice) {
  return absl::string_view(slice.data(), slice.size());
}

rocksdb::Slice ToSlice(absl::string_view text) {
  return rocksdb::Slice(text.data(), text.size());
}

absl::Status FromRocks(const rocksdb::Status& status,
                       absl::string_view action) {
  if (status.ok()) return absl::OkStatus();
  const std::string message =
      absl::StrCat(action, " failed: ", status.ToString());
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (status.IsIOError() || status.IsNoSpace()) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

std::string EncodeCollectionValue(uint64_t id, absl::string_view config) {
  std::string value(9, '\0');
  value[0] = static_cast<char>(kCollectionFormatVersion);
  absl::big_endian::Store64(value.data() + 1, id);
  value.append(config.data(), config.size());
  return value;
}

absl::StatusOr<CollectionRecord> DecodeCollectionValue(
    absl::string_view name, absl::string_view value) {
  if (value.size() < 9 ||
      static_cast<uint8_t>(value[0]) != kCollectionFormatVersion) {
    return absl::DataLossError(
        absl::StrCat("collection record of '", name,
                     "' is truncated or has an unknown format version"));
  }
  CollectionRecord record;
  record.id = absl::big_endian::Load64(value.data() + 1);
  record.name = std::string(name);
  record.config = std::string(value.substr(9));
  return record;
}

std::string SequenceKey(uint64_t collection_id) {
  return absl::StrCat(kSequenceKeyPrefix,
                      EncodeCollectionPrefix(collection_id));
}

std::string TrimmedKey(uint64_t collection_id) {
  return absl::StrCat(kTrimmedKeyPrefix, EncodeCollectionPrefix(collection_id));
}

std::string EncodeSequence(uint64_t sequence) {
  std::string value(8, '\0');
  absl::big_endian::Store64(value.data(), sequence);
  return value;
}

// An iterator over the keys of one collection in one column family, up to
// the collection's last key, reading through a view. A bulk iterator is for
// scans of the whole collection: it reads ahead and bypasses the block
// cache.
struct CollectionIterator {
  CollectionIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                     uint64_t collection_id, const ReadView& view, bool bulk)
      : end(EncodeCollectionPrefix(collection_id + 1)), upper_bound(end) {
    rocksdb::ReadOptions read_options;
    read_options.snapshot = view.get();
    read_options.iterate_upper_bound = &upper_bound;
    if (bulk) {
      read_options.fill_cache = false;
      read_options.readahead_size = size_t{8} << 20;
    }
    iterator.reset(db->NewIterator(read_options, family));
  }

  rocksdb::Iterator* operator->() const { return iterator.get(); }

  // The bound must outlive the iterator, which keeps a pointer to it.
  const std::string end;
  const rocksdb::Slice upper_bound;
  std::unique_ptr<rocksdb::Iterator> iterator;
};

}  // namespace

void PointBatch::Put(absl::string_view point_id, const StoredPoint& point) {
  writes_.push_back({std::string(point_id), EncodePoint(point)});
}

void PointBatch::Delete(absl::string_view point_id) {
  writes_.push_back({std::string(point_id), std::nullopt});
}

void PointBatch::PutFieldIndexKey(std::string key, std::string value) {
  field_index_writes_.emplace_back(std::move(key), std::move(value));
}

void PointBatch::DeleteFieldIndexKey(std::string key) {
  field_index_writes_.emplace_back(std::move(key), std::nullopt);
}

absl::StatusOr<std::unique_ptr<Storage>> Storage::Open(
    const StorageOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);

  rocksdb::ColumnFamilyOptions family_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, family_options},
      {kCollectionsFamily, family_options},
      {kPointsFamily, family_options},
      {kChangesFamily, family_options},
      {kFieldIndexFamily, family_options},
  };

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status status =
      rocksdb::DB::Open(db_options, options.path, families, &handles, &raw_db);
  if (status.IsIOError() && absl::StrContains(status.ToString(), "/LOCK")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "RocksDB at ", options.path,
        " is already open, because its LOCK file is held; stop the other "
        "vecdb-server or use another data dir (",
        status.ToString(), ")"));
  }
  if (!status.ok()) {
    return FromRocks(status, absl::StrCat("opening RocksDB at ", options.path));
  }
  return std::unique_ptr<Storage>(new Storage(
      std::unique_ptr<rocksdb::DB>(raw_db), handles, options.sync_writes));
}

Storage::Storage(std::unique_ptr<rocksdb::DB> db,
                 std::vector<rocksdb::ColumnFamilyHandle*> handles,
                 bool sync_writes)
    : db_(std::move(db)),
      meta_(handles[0]),
      collections_(handles[1]),
      points_(handles[2]),
      changes_(handles[3]),
      field_index_(handles[4]),
      sync_writes_(sync_writes) {}

Storage::~Storage() {
  for (rocksdb::ColumnFamilyHandle* handle :
       {meta_, collections_, points_, changes_, field_index_}) {
    // A destructor cannot report errors, and none would change what
    // follows.
    db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();
}

absl::Status Storage::Commit(rocksdb::WriteBatch* batch) {
  rocksdb::WriteOptions write_options;
  write_options.sync = sync_writes_;
  return FromRocks(db_->Write(write_options, batch), "RocksDB write");
}

absl::StatusOr<std::vector<CollectionRecord>> Storage::ListCollections() {
  std::vector<CollectionRecord> records;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), collections_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<CollectionRecord> record =
        DecodeCollectionValue(View(it->key()), View(it->value()));
    if (!record.ok()) return record.status();
    records.push_back(*std::move(record));
  }
  if (absl::Status status = FromRocks(it->status(), "listing collections");
      !status.ok()) {
    return status;
  }
  return records;
}

absl::StatusOr<uint64_t> Storage::CreateCollection(absl::string_view name,
                                                   absl::string_view config) {
  absl::MutexLock lock(&create_mutex_);

  std::string counter;
  uint64_t id = 1;
  rocksdb::Status read =
      db_->Get(rocksdb::ReadOptions(), meta_, kNextCollectionIdKey, &counter);
  if (read.ok() && counter.size() == 8) {
    id = absl::big_endian::Load64(counter.data());
  } else if (!read.IsNotFound()) {
    return FromRocks(
        read.ok() ? rocksdb::Status::Corruption("bad counter") : read,
        "reading the collection id counter");
  }

  std::string next(8, '\0');
  absl::big_endian::Store64(next.data(), id + 1);
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.Put(meta_, kNextCollectionIdKey, next);
  if (put.ok()) {
    put = batch.Put(collections_, ToSlice(name),
                    EncodeCollectionValue(id, config));
  }
  if (!put.ok()) return FromRocks(put, "building the collection write");
  if (absl::Status status = Commit(&batch); !status.ok()) return status;
  return id;
}

absl::Status Storage::UpdateCollection(const CollectionRecord& collection) {
  rocksdb::WriteBatch batch;
  rocksdb::Status put =
      batch.Put(collections_, ToSlice(collection.name),
                EncodeCollectionValue(collection.id, collection.config));
  if (!put.ok()) return FromRocks(put, "building the collection update");
  return Commit(&batch);
}

absl::Status Storage::DropCollection(const CollectionRecord& collection) {
  const std::string begin = EncodeCollectionPrefix(collection.id);
  const std::string end = EncodeCollectionPrefix(collection.id + 1);
  rocksdb::WriteBatch batch;
  rocksdb::Status status = batch.Delete(collections_, collection.name);
  if (status.ok()) status = batch.DeleteRange(points_, begin, end);
  if (status.ok()) status = batch.DeleteRange(field_index_, begin, end);
  if (status.ok()) status = batch.DeleteRange(changes_, begin, end);
  if (status.ok()) status = batch.Delete(meta_, SequenceKey(collection.id));
  if (status.ok()) status = batch.Delete(meta_, TrimmedKey(collection.id));
  if (!status.ok()) return FromRocks(status, "building the drop write");
  return Commit(&batch);
}

absl::Status Storage::Write(uint64_t collection_id, uint64_t sequence,
                            const PointBatch& batch) {
  rocksdb::WriteBatch write_batch;
  std::vector<std::string> changed;
  changed.reserve(batch.writes_.size());
  rocksdb::Status status;
  for (const PointBatch::Write& write : batch.writes_) {
    const std::string key = EncodePointKey(collection_id, write.point_id);
    status = write.value.has_value()
                 ? write_batch.Put(points_, key, *write.value)
                 : write_batch.Delete(points_, key);
    if (!status.ok()) break;
    changed.push_back(write.point_id);
  }
  for (const auto& [key, value] : batch.field_index_writes_) {
    if (!status.ok()) break;
    status = value.has_value() ? write_batch.Put(field_index_, key, *value)
                               : write_batch.Delete(field_index_, key);
  }
  if (status.ok()) {
    status = write_batch.Put(changes_, EncodeChangeKey(collection_id, sequence),
                             EncodeChangedIds(changed));
  }
  if (status.ok()) {
    status = write_batch.Put(meta_, SequenceKey(collection_id),
                             EncodeSequence(sequence));
  }
  if (!status.ok()) return FromRocks(status, "building the point write");
  return Commit(&write_batch);
}

absl::StatusOr<uint64_t> Storage::LastSequence(uint64_t collection_id,
                                               const ReadView& view) {
  return ReadSequence(SequenceKey(collection_id), view);
}

absl::StatusOr<uint64_t> Storage::ReadSequence(const std::string& key,
                                               const ReadView& view) {
  rocksdb::ReadOptions read_options;
  read_options.snapshot = view.get();
  std::string value;
  rocksdb::Status status = db_->Get(read_options, meta_, key, &value);
  if (status.IsNotFound()) return 0;
  if (!status.ok()) return FromRocks(status, "reading a sequence number");
  if (value.size() != 8) {
    return absl::DataLossError(absl::StrCat("sequence number under key \"",
                                            absl::CHexEscape(key), "\" has ",
                                            value.size(), " bytes, not 8"));
  }
  return absl::big_endian::Load64(value.data());
}

absl::StatusOr<std::vector<std::string>> Storage::ChangedIdsAfter(
    uint64_t collection_id, uint64_t after, const ReadView& view) {
  absl::StatusOr<uint64_t> last =
      ReadSequence(SequenceKey(collection_id), view);
  if (!last.ok()) return last.status();
  std::vector<std::string> changed;
  if (*last <= after) return changed;
  absl::StatusOr<uint64_t> trimmed =
      ReadSequence(TrimmedKey(collection_id), view);
  if (!trimmed.ok()) return trimmed.status();
  if (*trimmed > after) {
    return absl::DataLossError(absl::StrCat(
        "the change log of collection ", collection_id, " starts after ",
        *trimmed, ", so the changes after ", after, " are gone"));
  }

  const std::string begin = EncodeChangeKey(collection_id, after + 1);
  CollectionIterator it(db_.get(), changes_, collection_id, view,
                        /*bulk=*/false);
  it->Seek(begin);
  for (; it->Valid(); it->Next()) {
    if (absl::Status status = DecodeChangedIds(View(it->value()), &changed);
        !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = FromRocks(it->status(), "reading the change log");
      !status.ok()) {
    return status;
  }

  return KeepLastOfEach(std::move(changed));
}

absl::Status Storage::TrimChanges(uint64_t collection_id, uint64_t through) {
  rocksdb::WriteBatch batch;
  rocksdb::Status status =
      batch.DeleteRange(changes_, EncodeCollectionPrefix(collection_id),
                        EncodeChangeKey(collection_id, through + 1));
  if (status.ok()) {
    status =
        batch.Put(meta_, TrimmedKey(collection_id), EncodeSequence(through));
  }
  if (!status.ok()) return FromRocks(status, "building the change log trim");
  return Commit(&batch);
}

absl::Status Storage::CreateCheckpoint(const std::string& dir) {
  rocksdb::Checkpoint* raw_checkpoint = nullptr;
  rocksdb::Status status =
      rocksdb::Checkpoint::Create(db_.get(), &raw_checkpoint);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw_checkpoint);
  if (status.ok()) {
    // Flush first, so that the copy needs no write-ahead log replay.
    status = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
  }
  return FromRocks(status,
                   absl::StrCat("writing a RocksDB checkpoint to ", dir));
}

ReadView Storage::TakeReadView() {
  rocksdb::DB* db = db_.get();
  return ReadView(db->GetSnapshot(), [db](const rocksdb::Snapshot* snapshot) {
    db->ReleaseSnapshot(snapshot);
  });
}

absl::StatusOr<std::vector<std::optional<StoredPoint>>> Storage::GetPoints(
    uint64_t collection_id, absl::Span<const std::string> point_ids,
    const ReadView& view) {
  std::vector<std::string> keys;
  keys.reserve(point_ids.size());
  for (const std::string& id : point_ids) {
    keys.push_back(EncodePointKey(collection_id, id));
  }
  std::vector<rocksdb::Slice> key_slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());

  rocksdb::ReadOptions read_options;
  read_options.snapshot = view.get();
  db_->MultiGet(read_options, points_, keys.size(), key_slices.data(),
                values.data(), statuses.data());

  std::vector<std::optional<StoredPoint>> points(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return FromRocks(statuses[i], "reading points");
    absl::StatusOr<StoredPoint> point = DecodePoint(View(values[i]));
    if (!point.ok()) return point.status();
    points[i] = *std::move(point);
  }
  return points;
}

absl::Status Storage::ScanPoints(
    uint64_t collection_id, const ReadView& view,
    const std::function<absl::Status(absl::string_view point_id,
                                     StoredPoint point)>& visit) {
  const std::string begin = EncodeCollectionPrefix(collection_id);
  CollectionIterator it(db_.get(), points_, collection_id, view,
                        /*bulk=*/true);
  for (it->Seek(begin); it->Valid(); it->Next()) {
    absl::StatusOr<StoredPoint> point = DecodePoint(View(it->value()));
    if (!point.ok()) return point.status();
    absl::string_view point_id = View(it->key()).substr(8);
    if (absl::Status status = visit(point_id, *std::move(point));
        !status.ok()) {
      return status;
    }
  }
  return FromRocks(it->status(), "scanning points");
}

absl::Status Storage::ScanPointMetadata(
    uint64_t collection_id, const ReadView& view,
    const std::function<absl::Status(absl::string_view point_id,
                                     absl::string_view metadata)>& visit) {
  const std::string begin = EncodeCollectionPrefix(collection_id);
  CollectionIterator it(db_.get(), points_, collection_id, view,
                        /*bulk=*/true);
  for (it->Seek(begin); it->Valid(); it->Next()) {
    absl::StatusOr<absl::string_view> metadata =
        PointMetadata(View(it->value()));
    if (!metadata.ok()) return metadata.status();
    if (metadata->empty()) continue;
    if (absl::Status status = visit(View(it->key()).substr(8), *metadata);
        !status.ok()) {
      return status;
    }
  }
  return FromRocks(it->status(), "scanning point metadata");
}

uint64_t Storage::ApproximateBytes(uint64_t collection_id) {
  const std::string begin = EncodeCollectionPrefix(collection_id);
  const std::string end = EncodeCollectionPrefix(collection_id + 1);
  rocksdb::Range range(begin, end);
  uint64_t size = 0;
  rocksdb::SizeApproximationOptions size_options;
  size_options.include_memtables = true;
  size_options.include_files = true;
  // An estimate only: on failure the size simply reads as zero.
  db_->GetApproximateSizes(size_options, points_, &range, 1, &size)
      .PermitUncheckedError();
  return size;
}

absl::Status Storage::ScanPointsAfter(
    uint64_t collection_id, absl::string_view after_id, const ReadView& view,
    const std::function<absl::StatusOr<bool>(absl::string_view point_id,
                                             StoredPoint point)>& visit) {
  // The smallest key after after_id's is after_id's key with a 0 byte
  // appended.
  std::string begin = EncodePointKey(collection_id, after_id);
  if (!after_id.empty()) begin.push_back('\0');
  CollectionIterator it(db_.get(), points_, collection_id, view,
                        /*bulk=*/false);
  for (it->Seek(begin); it->Valid(); it->Next()) {
    absl::StatusOr<StoredPoint> point = DecodePoint(View(it->value()));
    if (!point.ok()) return point.status();
    absl::StatusOr<bool> more =
        visit(View(it->key()).substr(8), *std::move(point));
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
  }
  return FromRocks(it->status(), "scanning points");
}

absl::Status Storage::ScanFieldIndex(
    absl::string_view begin, absl::string_view end, const ReadView& view,
    const std::function<absl::StatusOr<bool>(absl::string_view key,
                                             absl::string_view value)>& visit) {
  const std::string end_key(end);
  rocksdb::Slice upper_bound(end_key);
  rocksdb::ReadOptions read_options;
  read_options.snapshot = view.get();
  read_options.iterate_upper_bound = &upper_bound;

  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(read_options, field_index_));
  for (it->Seek(ToSlice(begin)); it->Valid(); it->Next()) {
    absl::StatusOr<bool> more = visit(View(it->key()), View(it->value()));
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
  }
  return FromRocks(it->status(), "scanning a field index");
}

}  // namespace vecdb::storage
