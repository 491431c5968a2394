#include "r1/io/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/core/dtype.h"
#include "r1/core/error.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

// A safetensors file from a raw header string and data area, for hand-made broken files.
std::string RawFile(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

std::string RawFileWithLength(uint64_t header_len, const std::string& rest) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(header_len >> (8 * i));
  return out + rest;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("r1_safetensors_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::string WriteRaw(const std::string& name, const std::string& bytes) const {
    const std::string p = Path(name);
    WriteFileAtomic(p, bytes);
    return p;
  }

  // Opening `path` must throw r1::Error mentioning every one of `words`.
  static void ExpectOpenError(const std::string& path, const std::vector<std::string>& words) {
    ExpectError([&] { SafetensorsFile::Open(path); }, words);
  }

  template <typename F>
  static void ExpectError(F&& f, const std::vector<std::string>& words) {
    try {
      f();
      ADD_FAILURE() << "expected an r1::Error mentioning '" << words.front() << "'";
    } catch (const Error& e) {
      const std::string what = e.what();
      for (const std::string& w : words) {
        EXPECT_NE(what.find(w), std::string::npos) << "'" << w << "' not in: " << what;
      }
    }
  }

  std::vector<std::string> TmpLeftovers() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (name.find(".tmp.") != std::string::npos) out.push_back(name);
    }
    return out;
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripEveryDtype) {
  const std::vector<float> f32 = {1.5f, -2.0f, 0.0f, 3.25f, 1e-3f, -7.0f};
  const std::vector<uint16_t> f16 = {F32ToF16(1.0f), F32ToF16(-0.5f), F32ToF16(65504.0f),
                                     F32ToF16(0.0f)};
  const std::vector<uint16_t> bf16 = {F32ToBf16(1.0f), F32ToBf16(2.0f), F32ToBf16(-3.0f),
                                      F32ToBf16(448.0f)};
  std::vector<uint8_t> f8(15);
  for (size_t i = 0; i < f8.size(); ++i) f8[i] = static_cast<uint8_t>(i * 17);
  const std::vector<int64_t> i64 = {-1, int64_t{1} << 40};
  const std::vector<int32_t> i32 = {7, -8, 9};
  const float scalar = 42.0f;

  SafetensorsWriter w;
  w.Add("a.f32", DType::kF32, {2, 3}, f32.data());
  w.Add("b.f16", DType::kF16, {4}, f16.data());
  w.Add("c.bf16", DType::kBF16, {2, 2}, bf16.data());
  w.Add("d.f8", DType::kF8E4M3, {3, 5}, f8.data());
  w.Add("e.i64", DType::kI64, {2}, i64.data());
  w.Add("f.i32", DType::kI32, {1, 1, 3}, i32.data());
  w.Add("g.scalar", DType::kF32, {}, &scalar);
  w.Add("h.empty", DType::kBF16, {0, 4}, nullptr);
  w.AddGenerated("i.generated", DType::kI32, {10}, [](uint8_t* dst) {
    for (int32_t i = 0; i < 10; ++i) std::memcpy(dst + 4 * i, &i, 4);
  });
  w.SetMetadata("format", "pt");
  w.SetMetadata("note", "round \"trip\"");
  const std::string path = Path("model.safetensors");
  w.Write(path);

  const auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file->path(), path);
  ASSERT_EQ(file->tensors().size(), 9u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->metadata().at("note"), "round \"trip\"");

  auto check = [&](const std::string& name, DType dtype, std::vector<int64_t> shape,
                   const void* data, size_t nbytes) {
    SCOPED_TRACE(name);
    const TensorView* t = file->Find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->name, name);
    EXPECT_EQ(t->dtype, dtype);
    EXPECT_EQ(t->shape, shape);
    EXPECT_EQ(t->nbytes, nbytes);
    EXPECT_EQ(t->file, path);
    if (nbytes) {
      EXPECT_EQ(std::memcmp(t->data, data, nbytes), 0);
    }
  };
  check("a.f32", DType::kF32, {2, 3}, f32.data(), 24);
  check("b.f16", DType::kF16, {4}, f16.data(), 8);
  check("c.bf16", DType::kBF16, {2, 2}, bf16.data(), 8);
  check("d.f8", DType::kF8E4M3, {3, 5}, f8.data(), 15);
  check("e.i64", DType::kI64, {2}, i64.data(), 16);
  check("f.i32", DType::kI32, {1, 1, 3}, i32.data(), 12);
  check("g.scalar", DType::kF32, {}, &scalar, 4);
  check("h.empty", DType::kBF16, {0, 4}, nullptr, 0);
  std::vector<int32_t> gen(10);
  for (int32_t i = 0; i < 10; ++i) gen[i] = i;
  check("i.generated", DType::kI32, {10}, gen.data(), 40);
  EXPECT_EQ(file->Find("nope"), nullptr);

  EXPECT_EQ(file->Find("g.scalar")->numel(), 1);
  EXPECT_EQ(file->Find("g.scalar")->ShapeString(), "[]");
  EXPECT_EQ(file->Find("h.empty")->numel(), 0);
  EXPECT_EQ(file->Find("f.i32")->numel(), 3);
  EXPECT_EQ(file->Find("a.f32")->ShapeString(), "[2, 3]");

  // Tensors come back in file order, which is the order they were added.
  std::vector<std::string> nonempty;
  for (const TensorView& t : file->tensors()) {
    if (t.nbytes) nonempty.push_back(t.name);
  }
  EXPECT_EQ(nonempty, (std::vector<std::string>{"a.f32", "b.f16", "c.bf16", "d.f8", "e.i64",
                                                "f.i32", "g.scalar", "i.generated"}));

  // The header is space-padded to a multiple of 8 and the offsets are contiguous.
  const std::string raw = ReadFileToString(path);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(raw[i]);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(raw.size(), 8 + header_len + 24 + 8 + 8 + 15 + 16 + 12 + 4 + 40);
  const auto header = nlohmann::ordered_json::parse(raw.substr(8, header_len));
  std::vector<std::string> keys;
  for (const auto& [k, v] : header.items()) keys.push_back(k);
  EXPECT_EQ(keys.front(), "__metadata__");
  EXPECT_EQ(keys.back(), "i.generated");
  EXPECT_EQ(header["a.f32"]["data_offsets"], nlohmann::json::parse("[0, 24]"));
  EXPECT_EQ(header["b.f16"]["data_offsets"], nlohmann::json::parse("[24, 32]"));

  // The store view of the same file.
  TensorStore store = TensorStore::OpenFile(path);
  EXPECT_EQ(store.source(), path);
  const std::vector<std::string> names = store.Names();
  EXPECT_EQ(names.size(), 9u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(store.TotalBytes(), 24u + 8 + 8 + 15 + 16 + 12 + 4 + 40);
  const TensorView* before = &store.Get("a.f32");
  TensorStore moved = std::move(store);
  EXPECT_EQ(&moved.Get("a.f32"), before);
  EXPECT_EQ(std::memcmp(moved.Get("a.f32").data, f32.data(), 24), 0);
}

// Tensors of whole 64-byte lines start on a line even when odd-sized ones are added before
// them (the writer puts those last), so 64-byte vector loads of their rows never split a line;
// every tensor still reads back its own bytes.
TEST_F(SafetensorsTest, WholeLineTensorsStartOnACacheLine) {
  std::vector<uint8_t> odd(37), lines(3 * 64), more(5 * 64), tail(3);
  for (size_t i = 0; i < odd.size(); ++i) odd[i] = static_cast<uint8_t>(i + 1);
  for (size_t i = 0; i < lines.size(); ++i) lines[i] = static_cast<uint8_t>(3 * i + 7);
  for (size_t i = 0; i < more.size(); ++i) more[i] = static_cast<uint8_t>(5 * i + 11);
  for (size_t i = 0; i < tail.size(); ++i) tail[i] = static_cast<uint8_t>(200 + i);
  SafetensorsWriter w;
  w.Add("a.odd", DType::kU8, {37}, odd.data());
  w.Add("b.lines", DType::kU8, {3, 64}, lines.data());
  w.Add("c.tail", DType::kU8, {3}, tail.data());
  w.Add("d.more", DType::kBF16, {5, 32}, more.data());
  w.SetMetadata("format", "pt");
  const std::string path = Path("aligned.safetensors");
  w.Write(path);
  const auto file = SafetensorsFile::Open(path);
  const uint8_t* base = file->Find("a.odd")->data;
  const TensorView* first = file->Find("b.lines");
  ASSERT_NE(first, nullptr);
  // The map starts on a page, so a pointer's line offset is its offset in the file.
  for (const char* name : {"b.lines", "d.more"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(file->Find(name)->data) % 64, 0u);
  }
  EXPECT_GT(base, first->data);  // the odd-sized tensor went after the whole-line ones
  EXPECT_EQ(std::memcmp(file->Find("a.odd")->data, odd.data(), odd.size()), 0);
  EXPECT_EQ(std::memcmp(first->data, lines.data(), lines.size()), 0);
  EXPECT_EQ(std::memcmp(file->Find("c.tail")->data, tail.data(), tail.size()), 0);
  EXPECT_EQ(std::memcmp(file->Find("d.more")->data, more.data(), more.size()), 0);
}

TEST_F(SafetensorsTest, RoundTripWithoutMetadataHasNoMetadataKey) {
  const float v = 1.0f;
  SafetensorsWriter w;
  w.Add("x", DType::kF32, {1}, &v);
  const std::string path = Path("x.safetensors");
  w.Write(path);
  EXPECT_EQ(ReadFileToString(path).find("__metadata__"), std::string::npos);
  const auto file = SafetensorsFile::Open(path);
  EXPECT_TRUE(file->metadata().empty());
  EXPECT_EQ(file->tensors().size(), 1u);
}

TEST_F(SafetensorsTest, ReadsGoldenFile) {
  const auto file = SafetensorsFile::Open(R1_GOLDEN_DIR "/qwen2-tiny/golden.safetensors");
  const TensorView* ids = file->Find("input_ids");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->dtype, DType::kI64);
  EXPECT_EQ(ids->shape, (std::vector<int64_t>{2, 24}));
  EXPECT_EQ(ids->ShapeString(), "[2, 24]");
  ASSERT_EQ(ids->nbytes, 2u * 24 * 8);
  std::vector<int64_t> values(48);
  std::memcpy(values.data(), ids->data, ids->nbytes);
  EXPECT_EQ(values.front(), 546);
  EXPECT_EQ(values.back(), 690);
  for (int64_t v : values) {
    EXPECT_GE(v, 0);
    EXPECT_LT(v, 1 << 20);
  }
}

TEST_F(SafetensorsTest, ReadsGoldenShardedCheckpoint) {
  const std::string dir = R1_GOLDEN_DIR "/deepseek-v3-tiny/model";
  const TensorStore store = TensorStore::OpenDir(dir);
  EXPECT_EQ(store.source(), dir);
  const TensorView& embed = store.Get("model.embed_tokens.weight");
  EXPECT_EQ(embed.dtype, DType::kBF16);
  EXPECT_EQ(embed.shape.size(), 2u);
  EXPECT_EQ(embed.nbytes, static_cast<size_t>(embed.numel()) * 2);

  const auto index =
      nlohmann::json::parse(ReadFileToString(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(store.Names().size(), index["weight_map"].size());
  std::set<std::string> files;
  int fp8 = 0;
  for (const std::string& name : store.Names()) {
    const TensorView& t = store.Get(name);
    files.insert(fs::path(t.file).filename().string());
    EXPECT_EQ(fs::path(t.file).filename().string(), index["weight_map"][name]) << name;
    if (t.dtype != DType::kF8E4M3) continue;
    ++fp8;
    const TensorView* scale = store.Find(name + "_scale_inv");
    ASSERT_NE(scale, nullptr) << name;
    EXPECT_EQ(scale->dtype, DType::kF32);
    ASSERT_EQ(t.shape.size(), 2u);
    // 128x128 blocks, rounded up.
    EXPECT_EQ(scale->shape,
              (std::vector<int64_t>{(t.shape[0] + 127) / 128, (t.shape[1] + 127) / 128}));
  }
  EXPECT_GT(fp8, 0);
  EXPECT_EQ(files.size(), 2u);
  EXPECT_GT(store.TotalBytes(), 0u);
}

TEST_F(SafetensorsTest, TruncatedDataArea) {
  const std::vector<float> v(25, 1.0f);
  SafetensorsWriter w;
  w.Add("model.norm.weight", DType::kF32, {25}, v.data());
  const std::string good = Path("good.safetensors");
  w.Write(good);
  std::string bytes = ReadFileToString(good);
  bytes.resize(bytes.size() - 36);  // 64 of the 100 data bytes remain
  const std::string path = WriteRaw("model.safetensors", bytes);
  ExpectOpenError(path, {path + ": tensor 'model.norm.weight': data_offsets [0, 100) exceed the "
                                "data area of 64 bytes"});
}

TEST_F(SafetensorsTest, TruncatedInsideHeader) {
  const float v = 1.0f;
  SafetensorsWriter w;
  w.Add("x", DType::kF32, {1}, &v);
  w.Write(Path("good.safetensors"));
  std::string bytes = ReadFileToString(Path("good.safetensors"));
  bytes.resize(8 + 10);
  const std::string path = WriteRaw("cut.safetensors", bytes);
  ExpectOpenError(path, {"cut.safetensors", "header length", "exceeds the 10 bytes"});
}

TEST_F(SafetensorsTest, TooShortAndEmptyFiles) {
  ExpectOpenError(WriteRaw("short.safetensors", "abcde"),
                  {"short.safetensors", "5 bytes", "too small"});
  ExpectOpenError(WriteRaw("empty.safetensors", ""), {"empty.safetensors", "0 bytes"});
}

TEST_F(SafetensorsTest, DirectoryAndMissingPaths) {
  ExpectOpenError(dir_.string(), {dir_.string(), "is a directory"});
  ExpectOpenError(Path("absent.safetensors"), {"absent.safetensors", "cannot open"});
  ExpectError([&] { TensorStore::OpenDir(Path("no_such_dir")); }, {"no_such_dir", "no such"});
  const std::string file = WriteRaw("plain.txt", "hi");
  ExpectError([&] { TensorStore::OpenDir(file); }, {"plain.txt", "not a directory"});
}

TEST_F(SafetensorsTest, HugeHeaderLength) {
  ExpectOpenError(WriteRaw("huge.safetensors", RawFileWithLength(uint64_t{1} << 62, "{}")),
                  {"huge.safetensors", "header length 4611686018427387904"});
  ExpectOpenError(WriteRaw("max.safetensors", RawFileWithLength(~uint64_t{0}, "{}")),
                  {"max.safetensors", "header length"});
  // Within the file but over the limit; a sparse file, as only its first bytes are ever read.
  const uint64_t over = kMaxSafetensorsHeaderBytes + 8;
  const std::string limit = WriteRaw("limit.safetensors", RawFileWithLength(over, "{}"));
  fs::resize_file(limit, 8 + over);
  ExpectOpenError(limit, {"limit.safetensors", "exceeds the limit"});
}

TEST_F(SafetensorsTest, HeaderNotJson) {
  ExpectOpenError(WriteRaw("bad.safetensors", RawFile("{\"x\": [1, 2", "")),
                  {"bad.safetensors", "not valid JSON"});
  ExpectOpenError(WriteRaw("bad2.safetensors", RawFile("", "")),
                  {"bad2.safetensors", "not valid JSON"});
  // Invalid UTF-8 inside a string.
  ExpectOpenError(WriteRaw("bad3.safetensors", RawFile("{\"\xff\": 1}", "")),
                  {"bad3.safetensors", "not valid JSON"});
}

TEST_F(SafetensorsTest, HeaderNotObject) {
  ExpectOpenError(WriteRaw("arr.safetensors", RawFile("[1, 2]  ", "")),
                  {"arr.safetensors", "not a JSON object", "array"});
  ExpectOpenError(WriteRaw("num.safetensors", RawFile("42", "")),
                  {"num.safetensors", "not a JSON object"});
}

TEST_F(SafetensorsTest, DeeplyNestedHeader) {
  const std::string deep = "{\"t\":" + std::string(10000, '[') + std::string(10000, ']') + "}";
  ExpectOpenError(WriteRaw("deep.safetensors", RawFile(deep, "")),
                  {"deep.safetensors", "nested"});
}

TEST_F(SafetensorsTest, DuplicateKeys) {
  ExpectOpenError(
      WriteRaw("dup.safetensors",
               RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                       std::string(8, '\0'))),
      {"dup.safetensors", "'w'", "more than once"});
  ExpectOpenError(
      WriteRaw("dup2.safetensors",
               RawFile(R"({"w":{"dtype":"F32","shape":[1],"shape":[2],"data_offsets":[0,4]}})",
                       std::string(4, '\0'))),
      {"dup2.safetensors", "'w'", "'shape'", "more than once"});
}

TEST_F(SafetensorsTest, UnknownDtype) {
  ExpectOpenError(
      WriteRaw("dt.safetensors",
               RawFile(R"({"layer.w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
                       std::string(8, '\0'))),
      {"dt.safetensors", "tensor 'layer.w'", "unknown dtype 'F64'"});
  ExpectOpenError(
      WriteRaw("dt2.safetensors",
               RawFile(R"({"layer.w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})",
                       std::string(4, '\0'))),
      {"dt2.safetensors", "tensor 'layer.w'", "dtype 4 is not a string"});
  ExpectOpenError(
      WriteRaw("dt3.safetensors",
               RawFile(R"({"layer.w":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0'))),
      {"dt3.safetensors", "tensor 'layer.w'", "missing \"dtype\""});
}

TEST_F(SafetensorsTest, ShapeByteSizeMismatch) {
  ExpectOpenError(
      WriteRaw("mm.safetensors",
               RawFile(R"({"emb":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                       std::string(8, '\0'))),
      {"mm.safetensors", "tensor 'emb'", "hold 8 bytes", "F32 [3] needs 12"});
}

TEST_F(SafetensorsTest, ShapeOverflow) {
  ExpectOpenError(
      WriteRaw("of.safetensors",
               RawFile(R"({"big":{"dtype":"F32","shape":[4611686018427387904,4],)"
                       R"("data_offsets":[0,0]}})",
                       "")),
      {"of.safetensors", "tensor 'big'", "too many elements"});
  ExpectOpenError(
      WriteRaw("of2.safetensors",
               RawFile(R"({"big":{"dtype":"F32","shape":[18446744073709551615],)"
                       R"("data_offsets":[0,0]}})",
                       "")),
      {"of2.safetensors", "tensor 'big'", "too large"});
  // A zero dimension makes the tensor empty however large the others are.
  const auto f = SafetensorsFile::Open(
      WriteRaw("zero.safetensors",
               RawFile(R"({"big":{"dtype":"F32","shape":[4611686018427387904,4,0],)"
                       R"("data_offsets":[0,0]}})",
                       "")));
  EXPECT_EQ(f->Find("big")->nbytes, 0u);
}

TEST_F(SafetensorsTest, OffsetsPastTheEnd) {
  ExpectOpenError(
      WriteRaw("end.safetensors",
               RawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                       std::string(12, '\0'))),
      {"end.safetensors", "tensor 'b'", "data_offsets [8, 16) exceed the data area of 12 bytes"});
  ExpectOpenError(
      WriteRaw("rev.safetensors",
               RawFile(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})",
                       std::string(12, '\0'))),
      {"rev.safetensors", "tensor 'a'", "[8, 4)", "end before they begin"});
  // Empty tensors may sit at the very end of the data area.
  const auto f = SafetensorsFile::Open(
      WriteRaw("edge.safetensors",
               RawFile(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                       std::string(4, '\0'))));
  EXPECT_EQ(f->Find("a")->nbytes, 0u);
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  ExpectOpenError(
      WriteRaw("ov.safetensors",
               RawFile(R"({"first":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                       R"("second":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                       std::string(24, '\0'))),
      {"ov.safetensors", "'first' [0, 16)", "'second' [8, 24)", "overlap"});
  // Identical ranges overlap too.
  ExpectOpenError(
      WriteRaw("ov2.safetensors",
               RawFile(R"({"x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},)"
                       R"("y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                       std::string(4, '\0'))),
      {"ov2.safetensors", "'x'", "'y'", "overlap"});
}

TEST_F(SafetensorsTest, NegativeShape) {
  ExpectOpenError(
      WriteRaw("neg.safetensors",
               RawFile(R"({"w":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,0]}})", "")),
      {"neg.safetensors", "tensor 'w'", "shape[0] is -1", "negative"});
}

TEST_F(SafetensorsTest, MissingOrMalformedDataOffsets) {
  ExpectOpenError(
      WriteRaw("nooff.safetensors", RawFile(R"({"w":{"dtype":"F32","shape":[1]}})", "abcd")),
      {"nooff.safetensors", "tensor 'w'", "missing \"data_offsets\""});
  ExpectOpenError(
      WriteRaw("off3.safetensors",
               RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", "abcd")),
      {"off3.safetensors", "tensor 'w'", "not an array of two integers"});
  ExpectOpenError(
      WriteRaw("offneg.safetensors",
               RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "abcd")),
      {"offneg.safetensors", "tensor 'w'", "data_offsets[0] is -4", "negative"});
  ExpectOpenError(
      WriteRaw("offf.safetensors",
               RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}})", "abcd")),
      {"offf.safetensors", "tensor 'w'", "data_offsets[1]", "not an integer"});
}

TEST_F(SafetensorsTest, NonIntegerShapeEntries) {
  ExpectOpenError(
      WriteRaw("sf.safetensors",
               RawFile(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,0]}})", "")),
      {"sf.safetensors", "tensor 'w'", "shape[0] is 2.5", "not an integer"});
  ExpectOpenError(
      WriteRaw("ss.safetensors",
               RawFile(R"({"w":{"dtype":"F32","shape":[1,"2"],"data_offsets":[0,8]}})",
                       std::string(8, '\0'))),
      {"ss.safetensors", "tensor 'w'", "shape[1] is \"2\"", "not an integer"});
  ExpectOpenError(
      WriteRaw("sn.safetensors",
               RawFile(R"({"w":{"dtype":"F32","shape":3,"data_offsets":[0,12]}})",
                       std::string(12, '\0'))),
      {"sn.safetensors", "tensor 'w'", "not an array"});
  ExpectOpenError(
      WriteRaw("se.safetensors", RawFile(R"({"w":[1,2]})", "")),
      {"se.safetensors", "tensor 'w'", "not an object"});
}

TEST_F(SafetensorsTest, BadMetadata) {
  ExpectOpenError(WriteRaw("m1.safetensors", RawFile(R"({"__metadata__":[1]})", "")),
                  {"m1.safetensors", "__metadata__", "not an object"});
  ExpectOpenError(WriteRaw("m2.safetensors", RawFile(R"({"__metadata__":{"k":1}})", "")),
                  {"m2.safetensors", "__metadata__", "'k'", "not a string"});
}

TEST_F(SafetensorsTest, EmptyHeaderObjectIsValid) {
  const auto f = SafetensorsFile::Open(WriteRaw("none.safetensors", RawFile("{}      ", "")));
  EXPECT_TRUE(f->tensors().empty());
}

// Writes a two-shard checkpoint with an index into `dir`; `index` is the index JSON text.
void WriteShards(const fs::path& dir, const std::string& index) {
  fs::create_directories(dir);
  const float a[2] = {1, 2};
  const float b[3] = {3, 4, 5};
  SafetensorsWriter w1;
  w1.Add("a", DType::kF32, {2}, a);
  w1.Write((dir / "shard-1.safetensors").string());
  SafetensorsWriter w2;
  w2.Add("b", DType::kF32, {3}, b);
  w2.Write((dir / "shard-2.safetensors").string());
  if (!index.empty()) WriteFileAtomic((dir / "model.safetensors.index.json").string(), index);
}

TEST_F(SafetensorsTest, ShardedIndexGood) {
  WriteShards(dir_ / "ok",
              R"({"metadata":{},"weight_map":{"a":"shard-1.safetensors",)"
              R"("b":"shard-2.safetensors"}})");
  const TensorStore store = TensorStore::OpenDir((dir_ / "ok").string());
  EXPECT_EQ(store.Names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(store.Get("b").shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(store.TotalBytes(), 20u);
}

TEST_F(SafetensorsTest, BadIndexJson) {
  WriteShards(dir_ / "d1", "{\"weight_map\": ");
  ExpectError([&] { TensorStore::OpenDir((dir_ / "d1").string()); },
              {"model.safetensors.index.json", "not valid JSON"});
  WriteShards(dir_ / "d2", "[]");
  ExpectError([&] { TensorStore::OpenDir((dir_ / "d2").string()); },
              {"model.safetensors.index.json", "not a JSON object"});
  WriteShards(dir_ / "d3", R"({"metadata":{}})");
  ExpectError([&] { TensorStore::OpenDir((dir_ / "d3").string()); },
              {"model.safetensors.index.json", "missing \"weight_map\""});
  WriteShards(dir_ / "d4", R"({"weight_map":["a"]})");
  ExpectError([&] { TensorStore::OpenDir((dir_ / "d4").string()); },
              {"model.safetensors.index.json", "\"weight_map\" is not an object"});
  WriteShards(dir_ / "d5", R"({"weight_map":{"a":1}})");
  ExpectError([&] { TensorStore::OpenDir((dir_ / "d5").string()); },
              {"model.safetensors.index.json", "tensor 'a'", "not a file name"});
  WriteShards(dir_ / "d6", R"({"weight_map":{"a":"../shard-1.safetensors"}})");
  ExpectError([&] { TensorStore::OpenDir((dir_ / "d6").string()); },
              {"model.safetensors.index.json", "tensor 'a'", "not a file name"});
}

TEST_F(SafetensorsTest, IndexNamesMissingShard) {
  WriteShards(dir_ / "m",
              R"({"weight_map":{"a":"shard-1.safetensors","b":"shard-3.safetensors"}})");
  ExpectError([&] { TensorStore::OpenDir((dir_ / "m").string()); },
              {"model.safetensors.index.json", "shard 'shard-3.safetensors'", "tensor 'b'",
               "does not exist"});
}

TEST_F(SafetensorsTest, IndexNamesTensorNotInShard) {
  WriteShards(dir_ / "m",
              R"({"weight_map":{"a":"shard-1.safetensors","b":"shard-1.safetensors"}})");
  ExpectError([&] { TensorStore::OpenDir((dir_ / "m").string()); },
              {"model.safetensors.index.json", "tensor 'b'", "shard 'shard-1.safetensors'",
               "does not contain it"});
}

TEST_F(SafetensorsTest, TensorInTwoShards) {
  WriteShards(dir_ / "m",
              R"({"weight_map":{"a":"shard-1.safetensors","b":"shard-2.safetensors",)"
              R"("c":"shard-3.safetensors"}})");
  const float a[2] = {9, 9};
  SafetensorsWriter w;
  w.Add("a", DType::kF32, {2}, a);
  w.Add("c", DType::kF32, {2}, a);
  w.Write((dir_ / "m" / "shard-3.safetensors").string());
  ExpectError([&] { TensorStore::OpenDir((dir_ / "m").string()); },
              {"tensor 'a'", "shard-1.safetensors", "shard-3.safetensors"});
}

TEST_F(SafetensorsTest, DirectoryWithoutIndex) {
  // model.safetensors wins over other files.
  WriteShards(dir_ / "single", "");
  const float x = 1;
  SafetensorsWriter w;
  w.Add("only", DType::kF32, {1}, &x);
  w.Write((dir_ / "single" / "model.safetensors").string());
  EXPECT_EQ(TensorStore::OpenDir((dir_ / "single").string()).Names(),
            std::vector<std::string>{"only"});

  // Otherwise every *.safetensors file.
  WriteShards(dir_ / "glob", "");
  WriteFileAtomic((dir_ / "glob" / "notes.txt").string(), "not a checkpoint");
  EXPECT_EQ(TensorStore::OpenDir((dir_ / "glob").string()).Names(),
            (std::vector<std::string>{"a", "b"}));

  // Duplicate names across the globbed files.
  WriteShards(dir_ / "dup", "");
  const float a[2] = {0, 0};
  SafetensorsWriter w3;
  w3.Add("a", DType::kF32, {2}, a);
  w3.Write((dir_ / "dup" / "shard-3.safetensors").string());
  ExpectError([&] { TensorStore::OpenDir((dir_ / "dup").string()); },
              {"tensor 'a'", "shard-1.safetensors", "shard-3.safetensors"});

  // Nothing at all.
  fs::create_directories(dir_ / "empty");
  WriteFileAtomic((dir_ / "empty" / "config.json").string(), "{}");
  ExpectError([&] { TensorStore::OpenDir((dir_ / "empty").string()); },
              {"no model.safetensors or model.safetensors.index.json in", "empty"});
}

TEST_F(SafetensorsTest, GetMissingTensor) {
  WriteShards(dir_ / "m", "");
  const TensorStore store = TensorStore::OpenDir((dir_ / "m").string());
  EXPECT_EQ(store.Find("nope"), nullptr);
  ExpectError([&] { store.Get("nope"); }, {(dir_ / "m").string() + ": missing tensor 'nope'"});
}

// Random single-byte changes and truncations of a valid file must never crash: opening either
// succeeds (and then every tensor lies inside the file) or throws r1::Error.
TEST_F(SafetensorsTest, FuzzedHeadersNeverCrash) {
  std::vector<float> f32(6, 1.0f);
  std::vector<uint16_t> bf16(4, 0x3f80);
  std::vector<int64_t> i64 = {1, 2};
  SafetensorsWriter w;
  w.Add("w.f32", DType::kF32, {2, 3}, f32.data());
  w.Add("w.bf16", DType::kBF16, {4}, bf16.data());
  w.Add("w.empty", DType::kF16, {0}, nullptr);
  w.Add("ids", DType::kI64, {2}, i64.data());
  w.SetMetadata("format", "pt");
  const std::string good_path = Path("good.safetensors");
  w.Write(good_path);
  const std::string good = ReadFileToString(good_path);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(good[i]);
  const size_t header_end = 8 + header_len;

  std::mt19937 rng(20240601);
  const std::string interesting = "0123456789-+.eE,:[]{}\" \\";
  int opened = 0, rejected = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string bytes = good;
    const int mode = iter % 4;
    if (mode == 3) {
      bytes.resize(std::uniform_int_distribution<size_t>(0, good.size() - 1)(rng));
    } else {
      const size_t first = mode == 0 ? 0 : 8;  // mode 0 also hits the length field
      const size_t pos = std::uniform_int_distribution<size_t>(first, header_end - 1)(rng);
      char c;
      if (mode == 1) {
        c = interesting[std::uniform_int_distribution<size_t>(0, interesting.size() - 1)(rng)];
      } else {
        c = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
      }
      bytes[pos] = c;
    }
    // A plain write: the fsync of WriteFileAtomic would dominate the test's run time.
    const std::string path = Path("fuzz.safetensors");
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      ASSERT_TRUE(out.good());
    }
    try {
      const auto file = SafetensorsFile::Open(path);
      ++opened;
      uint64_t sum = 0;
      for (const TensorView& t : file->tensors()) {
        EXPECT_EQ(t.nbytes, static_cast<size_t>(t.numel()) * DTypeSize(t.dtype));
        EXPECT_LE(t.nbytes, bytes.size());
        for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
      }
      (void)sum;
    } catch (const Error& e) {
      ++rejected;
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "iteration " << iter << ": non-r1 exception: " << e.what();
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(opened, 0);
}

TEST_F(SafetensorsTest, WriterReplacesAtomicallyAndLeavesNoTemp) {
  const std::string path = Path("ckpt.safetensors");
  const float one = 1.0f, two[2] = {2.0f, 3.0f};
  SafetensorsWriter w1;
  w1.Add("x", DType::kF32, {1}, &one);
  w1.Write(path);
  // Hold a mapping of the old file across the replacement: rename keeps its inode alive.
  const auto old_file = SafetensorsFile::Open(path);
  SafetensorsWriter w2;
  w2.Add("y", DType::kF32, {2}, two);
  w2.Write(path);
  EXPECT_TRUE(TmpLeftovers().empty());
  const auto new_file = SafetensorsFile::Open(path);
  EXPECT_EQ(new_file->Find("x"), nullptr);
  ASSERT_NE(new_file->Find("y"), nullptr);
  float got[2];
  std::memcpy(got, new_file->Find("y")->data, 8);
  EXPECT_EQ(got[1], 3.0f);
  float old_value;
  std::memcpy(&old_value, old_file->Find("x")->data, 4);
  EXPECT_EQ(old_value, 1.0f);
}

TEST_F(SafetensorsTest, FailedWriteKeepsOldFileAndRemovesTemp) {
  const std::string path = Path("ckpt.safetensors");
  const float one = 1.0f;
  SafetensorsWriter w1;
  w1.Add("x", DType::kF32, {1}, &one);
  w1.Write(path);
  const std::string before = ReadFileToString(path);

  SafetensorsWriter w2;
  w2.Add("a", DType::kF32, {1}, &one);
  w2.AddGenerated("b", DType::kF32, {4}, [](uint8_t*) { throw Error("generator failed"); });
  ExpectError([&] { w2.Write(path); }, {"generator failed"});
  EXPECT_TRUE(TmpLeftovers().empty());
  EXPECT_EQ(ReadFileToString(path), before);
}

TEST_F(SafetensorsTest, WriteIntoMissingDirectoryFails) {
  const std::string path = Path("no/such/dir/x.safetensors");
  const float one = 1.0f;
  SafetensorsWriter w;
  w.Add("x", DType::kF32, {1}, &one);
  ExpectError([&] { w.Write(path); }, {path});
  ExpectError([&] { WriteFileAtomic(path, "data"); }, {path});
  EXPECT_FALSE(fs::exists(Path("no")));
}

TEST_F(SafetensorsTest, WriterRejectsBadEntries) {
  const float v[4] = {};
  SafetensorsWriter w;
  w.Add("x", DType::kF32, {2, 2}, v);
  ExpectError([&] { w.Add("x", DType::kF32, {1}, v); }, {"'x'", "added twice"});
  ExpectError([&] { w.AddGenerated("x", DType::kF32, {1}, [](uint8_t*) {}); },
              {"'x'", "added twice"});
  ExpectError([&] { w.Add("neg", DType::kF32, {2, -1}, v); }, {"'neg'", "negative"});
  ExpectError([&] { w.Add("huge", DType::kF32, {int64_t{1} << 62, 8}, v); },
              {"'huge'", "too many elements"});
  ExpectError([&] { w.Add("null", DType::kF32, {1}, nullptr); }, {"'null'", "no data"});
  ExpectError([&] { w.Add("__metadata__", DType::kF32, {1}, v); }, {"__metadata__"});
  ExpectError([&] { w.Add("", DType::kF32, {1}, v); }, {"empty tensor name"});
  ExpectError([&] { w.Add("bad\xff", DType::kF32, {1}, v); }, {"not valid UTF-8"});
  // The failed adds left the writer usable.
  const std::string path = Path("ok.safetensors");
  w.Write(path);
  EXPECT_EQ(SafetensorsFile::Open(path)->tensors().size(), 1u);
}

TEST_F(SafetensorsTest, WriteAndReadFileHelpers) {
  const std::string path = Path("notes.txt");
  std::string contents = "line 1\n";
  contents.push_back('\0');
  contents += "binary";
  WriteFileAtomic(path, contents);
  EXPECT_EQ(ReadFileToString(path), contents);
  WriteFileAtomic(path, "");
  EXPECT_EQ(ReadFileToString(path), "");
  EXPECT_TRUE(TmpLeftovers().empty());
  ExpectError([&] { ReadFileToString(Path("missing.txt")); }, {"missing.txt", "cannot open"});
  ExpectError([&] { ReadFileToString(dir_.string()); }, {dir_.string(), "is a directory"});
}

}  // namespace
}  // namespace r1
