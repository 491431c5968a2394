#include "r1/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/io/huge_pages.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// The overflow checks below reason in 64-bit byte counts.
static_assert(sizeof(size_t) == 8, "r1cpp needs a 64-bit size_t");

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// A valid header nests three levels (header object, tensor entry, shape array). The limit only
// has to stop a hostile header of "[[[[..." from building millions of nested JSON values.
constexpr int kMaxHeaderDepth = 8;
// A name taken from a file may be megabytes long; messages quote only its start.
constexpr size_t kMaxQuoted = 200;

[[noreturn]] void Fail(const std::string& message) { throw Error(message); }

std::string ErrnoText(int err) { return std::strerror(err); }

std::string Quote(const std::string& s) {
  if (s.size() <= kMaxQuoted) return "'" + s + "'";
  return "'" + s.substr(0, kMaxQuoted) + "...' (" + std::to_string(s.size()) + " bytes)";
}

std::string Snippet(const Json& j) {
  std::string s = j.dump();
  if (s.size() > kMaxQuoted) s = s.substr(0, kMaxQuoted) + "...";
  return s;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string RangeText(uint64_t begin, uint64_t end) {
  // Appending step by step: GCC 12 warns (-Wrestrict, a false positive) on "[" + to_string(..).
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  s += ")";
  return s;
}

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void StoreLe64(uint64_t v, uint8_t* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Bytes of a tensor with non-negative `shape`; nullopt when the count does not fit in int64.
// A zero dimension makes the tensor empty however large the others are, so it is checked first
// rather than letting an earlier product overflow.
std::optional<uint64_t> ByteSize(const std::vector<int64_t>& shape, DType dtype) {
  for (int64_t d : shape) {
    if (d == 0) return 0;
  }
  uint64_t n = DTypeSize(dtype);
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n) || n > kInt64Max) {
      return std::nullopt;
    }
  }
  return n;
}

// Both signed and unsigned JSON integers count; floats ("2.0") and strings do not.
bool NonNegativeInt(const Json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer()) {
    const int64_t v = j.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  return false;
}

std::string WhyNotNonNegativeInt(const Json& j) {
  if (j.is_number_integer()) return Snippet(j) + ", which is negative";
  return Snippet(j) + ", not an integer";
}

// Parses the header JSON, rejecting duplicate keys (nlohmann would silently keep the last one,
// so a file could carry two conflicting entries for one tensor) and absurd nesting.
Json ParseHeaderJson(const std::string& path, const char* begin, const char* end) {
  std::set<std::string> tensor_keys;
  std::set<std::string> entry_keys;
  std::string current_tensor;
  Json::parser_callback_t callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxHeaderDepth) {
          Fail(path + ": header JSON is nested more than " + std::to_string(kMaxHeaderDepth) +
               " levels deep");
        }
        if (depth == 1) entry_keys.clear();
        break;
      case Json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (depth == 1) {
          if (!tensor_keys.insert(key).second) {
            Fail(path + ": tensor " + Quote(key) + " appears more than once in the header");
          }
          current_tensor = key;
        } else if (depth == 2 && !entry_keys.insert(key).second) {
          Fail(path + ": tensor " + Quote(current_tensor) + ": key " + Quote(key) +
               " appears more than once");
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return Json::parse(begin, end, callback);
  } catch (const Json::exception& e) {
    Fail(path + ": header is not valid JSON: " + e.what());
  }
}

struct ParsedHeader {
  std::vector<TensorView> tensors;  // ordered by data offset, i.e. as written
  std::map<std::string, std::string> metadata;
};

ParsedHeader ParseHeader(const std::string& path, const uint8_t* base, uint64_t file_size) {
  const uint64_t header_len = LoadLe64(base);
  if (header_len > file_size - 8) {
    Fail(path + ": header length " + std::to_string(header_len) + " exceeds the " +
         std::to_string(file_size - 8) + " bytes that follow the length field (file truncated?)");
  }
  if (header_len > kMaxSafetensorsHeaderBytes) {
    Fail(path + ": header length " + std::to_string(header_len) + " exceeds the limit of " +
         std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  }
  const char* header = reinterpret_cast<const char*>(base + 8);
  const Json j = ParseHeaderJson(path, header, header + header_len);
  if (!j.is_object()) {
    Fail(path + ": header is not a JSON object but " + std::string(j.type_name()));
  }

  const uint8_t* data_area = base + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;
  ParsedHeader out;
  struct Range {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Range> ranges;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        Fail(path + ": __metadata__ is " + std::string(entry.type_name()) + ", not an object");
      }
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          Fail(path + ": __metadata__ entry " + Quote(key) + " is " +
               std::string(value.type_name()) + ", not a string");
        }
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor " + Quote(name) + ": ";
    if (!entry.is_object()) {
      Fail(where + "entry is " + std::string(entry.type_name()) + ", not an object");
    }

    const auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end()) Fail(where + "missing \"dtype\"");
    if (!dtype_it->is_string()) Fail(where + "dtype " + Snippet(*dtype_it) + " is not a string");
    const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
    const std::optional<DType> dtype = ParseDType(dtype_name);
    if (!dtype) {
      Fail(where + "unknown dtype " + Quote(dtype_name) +
           " (supported: F32, F16, BF16, F8_E4M3, I64, I32)");
    }

    const auto shape_it = entry.find("shape");
    if (shape_it == entry.end()) Fail(where + "missing \"shape\"");
    if (!shape_it->is_array()) Fail(where + "shape " + Snippet(*shape_it) + " is not an array");
    std::vector<int64_t> shape;
    shape.reserve(shape_it->size());
    for (size_t i = 0; i < shape_it->size(); ++i) {
      const Json& dim = (*shape_it)[i];
      uint64_t d = 0;
      if (!NonNegativeInt(dim, &d)) {
        Fail(where + "shape[" + std::to_string(i) + "] is " + WhyNotNonNegativeInt(dim));
      }
      if (d > kInt64Max) Fail(where + "shape[" + std::to_string(i) + "] is too large");
      shape.push_back(static_cast<int64_t>(d));
    }

    const auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end()) Fail(where + "missing \"data_offsets\"");
    if (!offsets_it->is_array() || offsets_it->size() != 2) {
      Fail(where + "data_offsets " + Snippet(*offsets_it) + " is not an array of two integers");
    }
    uint64_t begin = 0, end = 0;
    if (!NonNegativeInt((*offsets_it)[0], &begin)) {
      Fail(where + "data_offsets[0] is " + WhyNotNonNegativeInt((*offsets_it)[0]));
    }
    if (!NonNegativeInt((*offsets_it)[1], &end)) {
      Fail(where + "data_offsets[1] is " + WhyNotNonNegativeInt((*offsets_it)[1]));
    }
    if (begin > end) {
      Fail(where + "data_offsets " + RangeText(begin, end) + " end before they begin");
    }
    if (end > data_size) {
      Fail(where + "data_offsets " + RangeText(begin, end) + " exceed the data area of " +
           std::to_string(data_size) + " bytes (file truncated?)");
    }

    const std::optional<uint64_t> nbytes = ByteSize(shape, *dtype);
    if (!nbytes) Fail(where + "shape " + ShapeText(shape) + " has too many elements");
    if (end - begin != *nbytes) {
      Fail(where + "data_offsets " + RangeText(begin, end) + " hold " +
           std::to_string(end - begin) + " bytes but " + dtype_name + " " + ShapeText(shape) +
           " needs " + std::to_string(*nbytes));
    }

    TensorView view;
    view.name = name;
    view.dtype = *dtype;
    view.shape = std::move(shape);
    view.data = data_area + begin;
    view.nbytes = *nbytes;
    view.file = path;
    ranges.push_back({begin, end, out.tensors.size()});
    out.tensors.push_back(std::move(view));
  }

  // Sorted by begin, ranges are disjoint iff each starts at or after the end of the one before;
  // empty tensors own no bytes and cannot overlap anything.
  std::sort(ranges.begin(), ranges.end(), [&](const Range& a, const Range& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return out.tensors[a.tensor].name < out.tensors[b.tensor].name;
  });
  const Range* prev = nullptr;
  for (const Range& r : ranges) {
    if (r.begin == r.end) continue;
    if (prev && r.begin < prev->end) {
      Fail(path + ": tensors " + Quote(out.tensors[prev->tensor].name) + " " +
           RangeText(prev->begin, prev->end) + " and " + Quote(out.tensors[r.tensor].name) +
           " " + RangeText(r.begin, r.end) + " overlap");
    }
    prev = &r;
  }

  std::vector<TensorView> ordered;
  ordered.reserve(ranges.size());
  for (const Range& r : ranges) ordered.push_back(std::move(out.tensors[r.tensor]));
  out.tensors = std::move(ordered);
  return out;
}

// Writes to `<path>.tmp.<pid>` and renames over `path` on Commit(); anything short of a
// successful Commit() removes the temporary file.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path)
      : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (!file_) {
      Fail(path_ + ": cannot create temporary file " + tmp_ + ": " + ErrnoText(errno));
    }
  }
  ~AtomicFile() {
    if (file_) std::fclose(file_);
    if (!committed_) std::remove(tmp_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void Write(const void* data, size_t n) {
    if (n == 0) return;
    if (std::fwrite(data, 1, n, file_) != n) {
      Fail(path_ + ": writing " + tmp_ + " failed: " + ErrnoText(errno));
    }
  }

  void Commit() {
    if (std::fflush(file_) != 0) {
      Fail(path_ + ": flushing " + tmp_ + " failed: " + ErrnoText(errno));
    }
    if (::fsync(::fileno(file_)) != 0) {
      Fail(path_ + ": fsync of " + tmp_ + " failed: " + ErrnoText(errno));
    }
    FILE* f = file_;
    file_ = nullptr;
    if (std::fclose(f) != 0) Fail(path_ + ": closing " + tmp_ + " failed: " + ErrnoText(errno));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      Fail(path_ + ": renaming " + tmp_ + " into place failed: " + ErrnoText(errno));
    }
    committed_ = true;
    // The rename itself only survives a power loss once the directory is synced too; the file
    // is already complete either way, so a failure here is not worth an error.
    std::string dir = fs::path(path_).parent_path().string();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  std::string path_;
  std::string tmp_;
  FILE* file_ = nullptr;
  bool committed_ = false;
};

// Validates a name and shape handed to the writer; returns the tensor's byte size.
uint64_t CheckWriterEntry(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                          const std::set<std::string>& names) {
  if (name.empty()) Fail("safetensors writer: empty tensor name");
  if (name == "__metadata__") Fail("safetensors writer: '__metadata__' is not a valid tensor name");
  try {
    (void)Json(name).dump();
  } catch (const Json::exception&) {
    Fail("safetensors writer: tensor name " + Quote(name) + " is not valid UTF-8");
  }
  if (names.count(name)) Fail("safetensors writer: tensor " + Quote(name) + " added twice");
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      Fail("safetensors writer: tensor " + Quote(name) + ": shape " + ShapeText(shape) +
           " has negative dimension " + std::to_string(i));
    }
  }
  const std::optional<uint64_t> nbytes = ByteSize(shape, dtype);
  if (!nbytes) {
    Fail("safetensors writer: tensor " + Quote(name) + ": shape " + ShapeText(shape) +
         " has too many elements");
  }
  return *nbytes;
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::ShapeString() const { return ShapeText(shape); }

std::unique_ptr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path + ": cannot open: " + ErrnoText(errno));
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) Fail(path + ": cannot stat: " + ErrnoText(errno));
  if (S_ISDIR(st.st_mode)) Fail(path + ": is a directory, not a safetensors file");
  if (!S_ISREG(st.st_mode)) Fail(path + ": is not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    Fail(path + ": file is " + std::to_string(size) +
         " bytes, too small for a safetensors file (the header length alone takes 8)");
  }

  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  void* map = MapFileAligned(fd, size);
  if (map == MAP_FAILED) Fail(path + ": mmap failed: " + ErrnoText(errno));
  // From here the destructor unmaps, also when validation below throws.
  file->map_ = map;
  file->map_size_ = size;

  ParsedHeader parsed = ParseHeader(path, static_cast<const uint8_t*>(map), size);
  file->tensors_ = std::move(parsed.tensors);
  file->metadata_ = std::move(parsed.metadata);
  for (size_t i = 0; i < file->tensors_.size(); ++i) file->index_[file->tensors_[i].name] = i;
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

TensorStore TensorStore::OpenFile(const std::string& path) {
  TensorStore store;
  store.source_ = path;
  std::shared_ptr<SafetensorsFile> file = SafetensorsFile::Open(path);
  for (const TensorView& t : file->tensors()) store.by_name_.emplace(t.name, &t);
  store.files_.push_back(std::move(file));
  return store;
}

TensorStore TensorStore::FromViews(const std::string& source, std::vector<TensorView> views) {
  TensorStore store;
  store.source_ = source;
  store.memory_views_ = std::make_shared<std::vector<TensorView>>(std::move(views));
  for (const TensorView& t : *store.memory_views_) {
    if (t.numel() * static_cast<int64_t>(DTypeSize(t.dtype)) != static_cast<int64_t>(t.nbytes))
      Fail(source + ": tensor " + Quote(t.name) + " holds " + std::to_string(t.nbytes) +
           " bytes, shape " + t.ShapeString() + " needs another size");
    if (!store.by_name_.emplace(t.name, &t).second)
      Fail(source + ": tensor " + Quote(t.name) + " appears twice");
  }
  return store;
}

TensorStore TensorStore::OpenDir(const std::string& dir) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (status.type() == fs::file_type::not_found) Fail(dir + ": no such directory");
  if (ec) Fail(dir + ": cannot access: " + ec.message());
  if (!fs::is_directory(status)) Fail(dir + ": is not a directory");

  TensorStore store;
  store.source_ = dir;
  // TensorViews live in heap-allocated SafetensorsFiles, so these pointers survive moves of
  // the store and of files_.
  auto add = [&store](std::shared_ptr<SafetensorsFile> file) {
    for (const TensorView& t : file->tensors()) {
      const auto [it, inserted] = store.by_name_.emplace(t.name, &t);
      if (!inserted) {
        Fail(store.source_ + ": tensor " + Quote(t.name) + " is in both " + it->second->file +
             " and " + t.file);
      }
    }
    store.files_.push_back(std::move(file));
  };

  const fs::path root(dir);
  const fs::path index_path = root / "model.safetensors.index.json";
  const fs::path single_path = root / "model.safetensors";
  if (fs::exists(index_path, ec)) {
    const std::string ipath = index_path.string();
    const std::string text = ReadFileToString(ipath);
    Json index;
    try {
      index = Json::parse(text);
    } catch (const Json::exception& e) {
      Fail(ipath + ": not valid JSON: " + e.what());
    }
    if (!index.is_object()) Fail(ipath + ": not a JSON object");
    const auto map_it = index.find("weight_map");
    if (map_it == index.end()) Fail(ipath + ": missing \"weight_map\"");
    if (!map_it->is_object()) Fail(ipath + ": \"weight_map\" is not an object");

    std::map<std::string, std::vector<std::string>> by_shard;  // sorted: a stable open order
    for (const auto& [tensor, shard_json] : map_it->items()) {
      if (!shard_json.is_string()) {
        Fail(ipath + ": weight_map entry for tensor " + Quote(tensor) + " is " +
             std::string(shard_json.type_name()) + ", not a file name");
      }
      const std::string& shard = shard_json.get_ref<const std::string&>();
      // Shards are files next to the index; anything else could point the loader outside.
      if (shard.empty() || shard == "." || shard == ".." ||
          shard.find('/') != std::string::npos) {
        Fail(ipath + ": tensor " + Quote(tensor) + " is assigned to " + Quote(shard) +
             ", which is not a file name in " + dir);
      }
      by_shard[shard].push_back(tensor);
    }
    for (const auto& [shard, tensors] : by_shard) {
      const fs::path shard_path = root / shard;
      if (!fs::is_regular_file(shard_path, ec)) {
        Fail(ipath + ": shard " + Quote(shard) + " (holding tensor " + Quote(tensors.front()) +
             ") does not exist in " + dir);
      }
      std::shared_ptr<SafetensorsFile> file = SafetensorsFile::Open(shard_path.string());
      for (const std::string& tensor : tensors) {
        if (!file->Find(tensor)) {
          Fail(ipath + ": tensor " + Quote(tensor) + " is assigned to shard " + Quote(shard) +
               ", which does not contain it");
        }
      }
      add(std::move(file));
    }
  } else if (fs::exists(single_path, ec)) {
    add(SafetensorsFile::Open(single_path.string()));
  } else {
    std::vector<std::string> paths;
    fs::directory_iterator it(root, ec);
    if (ec) Fail(dir + ": cannot list: " + ec.message());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const std::string ext = ".safetensors";
      const bool suffix =
          name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
      if (suffix && it->is_regular_file(ec)) {
        paths.push_back(it->path().string());
      }
    }
    if (ec) Fail(dir + ": cannot list: " + ec.message());
    if (paths.empty()) {
      Fail(dir + ": no model.safetensors or model.safetensors.index.json in " + dir);
    }
    std::sort(paths.begin(), paths.end());
    for (const std::string& p : paths) add(SafetensorsFile::Open(p));
  }
  return store;
}

const TensorView* TensorStore::Find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorView& TensorStore::Get(const std::string& name) const {
  const TensorView* t = Find(name);
  if (!t) Fail(source_ + ": missing tensor " + Quote(name));
  return *t;
}

std::vector<std::string> TensorStore::Names() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, view] : by_name_) names.push_back(name);
  return names;
}

std::vector<const SafetensorsFile*> TensorStore::Files() const {
  std::vector<const SafetensorsFile*> files;
  for (const auto& f : files_) files.push_back(f.get());
  return files;
}

size_t TensorStore::TotalBytes() const {
  size_t total = 0;
  for (const auto& [name, view] : by_name_) total += view->nbytes;
  return total;
}

void SafetensorsWriter::Add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            const void* data) {
  const uint64_t nbytes = CheckWriterEntry(name, dtype, shape, names_);
  if (!data && nbytes > 0) Fail("safetensors writer: tensor " + Quote(name) + " has no data");
  names_.insert(name);
  entries_.push_back({name, dtype, std::move(shape), data, nullptr});
}

void SafetensorsWriter::AddGenerated(const std::string& name, DType dtype,
                                     std::vector<int64_t> shape,
                                     std::function<void(uint8_t* dst)> fill) {
  CheckWriterEntry(name, dtype, shape, names_);
  if (!fill) Fail("safetensors writer: tensor " + Quote(name) + " has no fill function");
  names_.insert(name);
  entries_.push_back({name, dtype, std::move(shape), nullptr, std::move(fill)});
}

void SafetensorsWriter::SetMetadata(const std::string& key, const std::string& value) {
  try {
    (void)Json(key).dump();
    (void)Json(value).dump();
  } catch (const Json::exception&) {
    Fail("safetensors writer: metadata " + Quote(key) + " is not valid UTF-8");
  }
  metadata_[key] = value;
}

void SafetensorsWriter::Write(const std::string& path) const {
  // Built by hand rather than through nlohmann::ordered_json, whose key lookup is linear and
  // would make a header of ~100k tensors quadratic. Names were checked to be valid UTF-8 in Add.
  std::string header = "{";
  bool first = true;
  auto key = [&](const std::string& k) {
    if (!first) header += ',';
    first = false;
    header += Json(k).dump();
    header += ':';
  };
  if (!metadata_.empty()) {
    key("__metadata__");
    header += Json(metadata_).dump();
  }
  // Tensors whose size is a whole number of 64-byte lines first, so with the data area on a line
  // (below) every one of them starts on a line: Q8/Q4 decode reads rows with 64-byte loads, which
  // split across two lines when a tensor starts 32 bytes in (Q4 2-3% slower from DRAM).
  std::vector<const Entry*> order;
  order.reserve(entries_.size());
  for (const Entry& e : entries_) order.push_back(&e);
  std::stable_partition(order.begin(), order.end(),
                        [](const Entry* e) { return *ByteSize(e->shape, e->dtype) % 64 == 0; });
  std::vector<uint64_t> sizes;
  sizes.reserve(entries_.size());
  uint64_t offset = 0;
  for (const Entry* entry : order) {
    const Entry& e = *entry;
    const uint64_t nbytes = *ByteSize(e.shape, e.dtype);
    key(e.name);
    header += "{\"dtype\":\"" + std::string(DTypeName(e.dtype)) + "\",\"shape\":" +
              Json(e.shape).dump() + ",\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
    sizes.push_back(nbytes);
  }
  header += '}';
  // Pad with spaces, as the reference implementation does to keep the data area 8-aligned; here
  // to 64 (a cache line), after the 8-byte length.
  header.append((64 - (8 + header.size()) % 64) % 64, ' ');
  if (header.size() > kMaxSafetensorsHeaderBytes) {
    Fail(path + ": header of " + std::to_string(header.size()) + " bytes exceeds the limit of " +
         std::to_string(kMaxSafetensorsHeaderBytes));
  }

  AtomicFile out(path);
  uint8_t len[8];
  StoreLe64(header.size(), len);
  out.Write(len, 8);
  out.Write(header.data(), header.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const Entry& e = *order[i];
    if (e.fill) {
      // One tensor at a time, so peak memory is the largest tensor, not the file.
      std::unique_ptr<uint8_t[]> buffer = std::make_unique<uint8_t[]>(sizes[i]);
      e.fill(buffer.get());
      out.Write(buffer.get(), sizes[i]);
    } else {
      out.Write(e.data, sizes[i]);
    }
  }
  out.Commit();
}

void WriteFileAtomic(const std::string& path, const std::string& contents) {
  AtomicFile out(path);
  out.Write(contents.data(), contents.size());
  out.Commit();
}

std::string ReadFileToString(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(path + ": cannot open: " + ErrnoText(errno));
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) Fail(path + ": cannot stat: " + ErrnoText(errno));
  if (S_ISDIR(st.st_mode)) Fail(path + ": is a directory");
  std::string contents;
  if (S_ISREG(st.st_mode)) contents.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      Fail(path + ": cannot read: " + ErrnoText(errno));
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  return contents;
}

}  // namespace r1
