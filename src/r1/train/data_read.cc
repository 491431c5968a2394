// Reading the data files: UTF-8 text and JSONL checked byte by byte, text documents tokenized and
// packed into rows, pre-tokenized safetensors copied out with every id range-checked.
#include "r1/tokenizer/bpe_train.h"
#include "r1/train/data_internal.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "r1/core/error.h"
#include "r1/core/thread_pool.h"
#include "r1/io/safetensors.h"
#include "r1/tokenizer/tokenizer.h"

namespace r1::data_detail {

namespace fs = std::filesystem;

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int64_t LineOf(std::string_view s, size_t offset) {
  return 1 + std::count(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
}

bool IsBlank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the user needs only the rest.
std::string ShortJsonError(const std::string& what) {
  const size_t p = what.find("] ");
  return p == std::string::npos ? what : what.substr(p + 2);
}

struct Document {
  std::string text;
  std::string where;  // "file" or "file:line"
};

// Documents of one text or {"text"} JSONL file, with the byte count for progress.
std::vector<Document> ReadDocuments(const std::string& path, size_t* bytes) {
  const std::string contents = ReadUtf8File(path);
  *bytes = contents.size();
  std::vector<Document> docs;
  if (FormatOf(path) == FileFormat::kText) {
    if (IsBlank(contents)) throw Error(path + ": holds only whitespace, no text to train on");
    docs.push_back({contents, path});
    return docs;
  }
  ForEachJsonObject(path, contents, [&](int64_t line, const nlohmann::ordered_json& j, size_t) {
    const std::string where = path + ":" + std::to_string(line);
    const auto it = j.find("text");
    if (it == j.end()) {
      throw Error(where + ": no \"text\" field" +
                  (j.contains("messages") ? " (this looks like chat data; pass --sft)" : ""));
    }
    if (!it->is_string())
      throw Error(where + ": \"text\" must be a string, not " + it->type_name());
    std::string text = it->get<std::string>();
    if (!text.empty()) docs.push_back({std::move(text), where});
  });
  return docs;
}

void CheckId(int64_t id, int64_t vocab_size, const std::string& where) {
  if (vocab_size > 0 && id >= vocab_size) {
    throw Error(where + ": token id " + std::to_string(id) +
                " is outside the model's vocabulary of " + std::to_string(vocab_size) +
                " (is the tokenizer the model's?)");
  }
}

}  // namespace

FileFormat FormatOf(const std::string& path) {
  const std::string ext = Lower(fs::path(path).extension().string());
  if (ext == ".jsonl") return FileFormat::kJsonl;
  if (ext == ".safetensors") return FileFormat::kSafetensors;
  return FileFormat::kText;
}

void ByteProgress::Add(double bytes) {
  done_ += bytes;
  if (fn_ && total_ > 0) fn_(std::min(1.0, done_ / total_));
}

std::string ReadUtf8File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.empty()) throw Error(path + ": file is empty");
  const size_t bad = tok::FindInvalidUtf8(s);
  if (bad != std::string::npos) {
    throw Error(path + ": not valid UTF-8 at byte offset " + std::to_string(bad) + " (line " +
                std::to_string(LineOf(s, bad)) + ")");
  }
  if (s.rfind("\xEF\xBB\xBF", 0) == 0) s.erase(0, 3);
  return s;
}

void ForEachJsonObject(const std::string& path, std::string_view contents, const JsonLineFn& fn) {
  int64_t line_no = 0, objects = 0;
  size_t pos = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    const std::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (IsBlank(line)) continue;
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(path + ":" + std::to_string(line_no) +
                  ": not valid JSON: " + ShortJsonError(e.what()));
    }
    if (!j.is_object()) {
      throw Error(path + ":" + std::to_string(line_no) + ": not a JSON object (found " +
                  j.type_name() + ")");
    }
    ++objects;
    fn(line_no, j, std::min(pos, contents.size()));
  }
  if (objects == 0) throw Error(path + ": holds no JSON lines");
}

std::vector<int32_t> TokenizeTextFiles(const std::vector<std::string>& files, const Tokenizer& tok,
                                       int64_t vocab_size, ByteProgress& progress) {
  if (!tok.eos_id()) {
    throw Error(
        "the tokenizer has no EOS token, which the packed text data needs between documents");
  }
  const int32_t eos = *tok.eos_id();
  const std::optional<int32_t> bos = tok.add_bos() ? tok.bos_id() : std::nullopt;
  CheckId(eos, vocab_size, "the tokenizer's EOS");
  if (bos) CheckId(*bos, vocab_size, "the tokenizer's BOS");

  std::vector<int32_t> stream;
  for (const std::string& path : files) {
    size_t bytes = 0;
    const std::vector<Document> docs = ReadDocuments(path, &bytes);
    double doc_bytes = 0;
    for (const Document& d : docs) doc_bytes += static_cast<double>(d.text.size());
    if (docs.empty()) progress.Add(static_cast<double>(bytes));
    // Groups of documents are tokenized in parallel; reporting progress between groups keeps the
    // callback on this thread.
    constexpr size_t kGroupBytes = 8u << 20;
    size_t first = 0;
    while (first < docs.size()) {
      size_t last = first, group_bytes = 0;
      while (last < docs.size() && (last == first || group_bytes < kGroupBytes)) {
        group_bytes += docs[last++].text.size();
      }
      std::vector<std::vector<int32_t>> ids(last - first);
      DefaultPool().ParallelFor(static_cast<int64_t>(ids.size()), 1,
                                [&](int64_t b, int64_t e, int) {
                                  for (int64_t d = b; d < e; ++d) {
                                    ids[d] = tok.Encode(docs[first + d].text);
                                  }
                                });
      for (size_t d = 0; d < ids.size(); ++d) {
        for (int32_t id : ids[d]) CheckId(id, vocab_size, docs[first + d].where);
        if (bos) stream.push_back(*bos);
        stream.insert(stream.end(), ids[d].begin(), ids[d].end());
        stream.push_back(eos);
      }
      progress.Add(static_cast<double>(bytes) * static_cast<double>(group_bytes) / doc_bytes);
      first = last;
    }
  }
  return stream;
}

DataSet::Rows PackRows(const std::vector<int32_t>& stream, int64_t T, const std::string& what,
                       int64_t* dropped) {
  const int64_t width = T + 1;
  const int64_t n = static_cast<int64_t>(stream.size()) / width;
  if (n == 0) {
    throw Error(what + ": " + std::to_string(stream.size()) +
                " tokens, fewer than one row of seq_len+1 = " + std::to_string(width) + " tokens");
  }
  DataSet::Rows rows;
  rows.width = width;
  rows.tokens.assign(stream.begin(), stream.begin() + n * width);
  rows.mask.assign(static_cast<size_t>(n * T), 1);
  if (dropped) *dropped = static_cast<int64_t>(stream.size()) - n * width;
  return rows;
}

DataSet::Rows ReadPretokenized(const std::vector<std::string>& files, int64_t* T,
                               int64_t vocab_size, ByteProgress& progress) {
  DataSet::Rows rows;
  for (const std::string& path : files) {
    if (fs::file_size(path) == 0) throw Error(path + ": file is empty");
    const auto file = SafetensorsFile::Open(path);
    // The golden reference files name it train.input_ids, beside their gradients.
    const TensorView* v = file->Find("input_ids");
    if (!v) v = file->Find("train.input_ids");
    if (!v) {
      std::string names;
      for (const auto& t : file->tensors()) names += (names.empty() ? "" : ", ") + t.name;
      throw Error(path +
                  ": no tensor 'input_ids' (pre-tokenized data needs input_ids [rows, tokens]; "
                  "the file has: " +
                  (names.empty() ? "none" : names) + ")");
    }
    if (v->dtype != DType::kI64 && v->dtype != DType::kI32) {
      throw Error(path + ": input_ids has dtype " + std::string(DTypeName(v->dtype)) +
                  "; expected I64 or I32");
    }
    if (v->shape.size() != 2) {
      throw Error(path + ": input_ids has shape " + v->ShapeString() + "; expected [rows, tokens]");
    }
    const int64_t n = v->shape[0], len = v->shape[1];
    if (n < 1 || len < 2) {
      throw Error(path + ": input_ids has shape " + v->ShapeString() +
                  "; expected at least one row of at least 2 tokens");
    }
    if (*T == 0) *T = len - 1;
    if (len - 1 != *T) {
      throw Error(path + ": input_ids rows hold " + std::to_string(len) + " tokens (seq_len " +
                  std::to_string(len - 1) + "), but seq_len is " + std::to_string(*T) +
                  (rows.width ? " from the files before it" : ""));
    }
    rows.width = len;
    const size_t base = rows.tokens.size();
    rows.tokens.resize(base + static_cast<size_t>(n * len));
    const int64_t limit = vocab_size > 0 ? vocab_size : int64_t{INT32_MAX} + 1;
    const size_t esize = DTypeSize(v->dtype);
    for (int64_t i = 0; i < n * len; ++i) {
      int64_t id;
      // Safetensors data offsets need not be aligned, so each value is copied out.
      if (v->dtype == DType::kI64) {
        std::memcpy(&id, v->data + i * esize, 8);
      } else {
        int32_t x;
        std::memcpy(&x, v->data + i * esize, 4);
        id = x;
      }
      if (id < 0 || id >= limit) {
        throw Error(path + ": input_ids row " + std::to_string(i / len) + ", column " +
                    std::to_string(i % len) + ": token id " + std::to_string(id) +
                    " is outside [0, " + std::to_string(limit) + ")" +
                    (vocab_size > 0 ? " (the model's vocabulary)" : ""));
      }
      rows.tokens[base + static_cast<size_t>(i)] = static_cast<int32_t>(id);
    }
    progress.Add(static_cast<double>(fs::file_size(path)));
  }
  rows.mask.assign(static_cast<size_t>(rows.count() * (rows.width - 1)), 1);
  return rows;
}

}  // namespace r1::data_detail
