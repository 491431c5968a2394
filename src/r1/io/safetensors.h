// Safetensors: memory-mapped, fully validated reading of single files and sharded checkpoints,
// and an atomic writer. Nothing in a file is trusted: header size, JSON, dtypes, shapes and data
// offsets are all checked before any tensor can be reached, and every failure is an r1::Error
// naming the file, the tensor and what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "r1/core/dtype.h"

namespace r1 {

// A read-only view of one stored tensor. `data` points into a memory mapping that lives as long
// as the SafetensorsFile (or TensorStore) it came from.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // path of the file holding it, for error messages

  int64_t numel() const;
  std::string ShapeString() const;  // "[2, 24, 2048]"
};

// Largest header we accept: real checkpoints have headers well under 10 MiB.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

class SafetensorsFile {
 public:
  // Maps `path` read-only and validates it; throws r1::Error on any problem.
  static std::unique_ptr<SafetensorsFile> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // nullptr when absent.
  const TensorView* Find(const std::string& name) const;
  // The optional "__metadata__" object (string -> string).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The whole file as mapped.
  std::span<const uint8_t> mapping() const {
    return {static_cast<const uint8_t*>(map_), map_size_};
  }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint folder: `model.safetensors`, or the shards named in
// `model.safetensors.index.json` (every shard listed must exist and hold the tensors the index
// assigns to it), or failing both every `*.safetensors` file in the folder.
class TensorStore {
 public:
  static TensorStore OpenDir(const std::string& dir);
  static TensorStore OpenFile(const std::string& path);
  // Tensors that live in memory owned by the caller (the trainer's float32 master weights); the
  // memory must outlive the store. Views are checked like a file's: size matches shape x dtype.
  static TensorStore FromViews(const std::string& source, std::vector<TensorView> views);

  const TensorView* Find(const std::string& name) const;
  // Throws r1::Error("<dir>: missing tensor '<name>'") when absent.
  const TensorView& Get(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted
  const std::string& source() const { return source_; }
  // Sum of the mapped tensor bytes.
  size_t TotalBytes() const;
  // The mapped files (none for FromViews).
  std::vector<const SafetensorsFile*> Files() const;

 private:
  std::string source_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::shared_ptr<std::vector<TensorView>> memory_views_;
  std::map<std::string, const TensorView*> by_name_;
};

// Writes a safetensors file to `<path>.tmp.<pid>` and renames it over `path` only once every
// byte is written and flushed, so a crash or a kill never leaves a half-written file at `path`.
class SafetensorsWriter {
 public:
  // Copies nothing: `data` must stay valid until Write() returns.
  void Add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data);
  // For tensors too large to hold all at once: `fill` is called during Write() with a buffer of
  // exactly numel * DTypeSize(dtype) bytes to fill.
  void AddGenerated(const std::string& name, DType dtype, std::vector<int64_t> shape,
                    std::function<void(uint8_t* dst)> fill);
  void SetMetadata(const std::string& key, const std::string& value);
  // Tensors are written in the order they were added. Throws r1::Error on I/O failure.
  void Write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* data;
    std::function<void(uint8_t*)> fill;
  };
  std::vector<Entry> entries_;
  std::set<std::string> names_;  // duplicate check without a quadratic scan of entries_
  std::map<std::string, std::string> metadata_;
};

// Writes `contents` to `path` via a temporary file and rename.
void WriteFileAtomic(const std::string& path, const std::string& contents);
std::string ReadFileToString(const std::string& path);

}  // namespace r1
