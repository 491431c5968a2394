// The pieces DataSet::Build is made of, one reader per format; shared by data*.cc and the tests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "r1/train/data.h"

namespace r1 {

class Tokenizer;
class ChatTemplate;

namespace data_detail {

enum class FileFormat { kText, kJsonl, kSafetensors };
FileFormat FormatOf(const std::string& path);

// Reports the fraction of all input bytes done; readers add bytes as they finish them.
class ByteProgress {
 public:
  ByteProgress(const std::function<void(double)>& fn, double total_bytes)
      : fn_(fn), total_(total_bytes) {}
  void Add(double bytes);

 private:
  const std::function<void(double)>& fn_;
  double total_, done_ = 0;
};

// A text or JSONL file's contents: it must exist, be non-empty and be valid UTF-8. A leading
// byte-order mark is dropped, since it would otherwise become a token of the first document.
std::string ReadUtf8File(const std::string& path);

// Calls fn(line_number, object, bytes_read_so_far) for every non-blank line; a line that is not a
// JSON object is an error naming path:line. A file with no non-blank line is an error too.
using JsonLineFn = std::function<void(int64_t, const nlohmann::ordered_json&, size_t)>;
void ForEachJsonObject(const std::string& path, std::string_view contents, const JsonLineFn& fn);

// The token stream of text files and {"text"} JSONL files: per document BOS (when the tokenizer
// adds one), the document, EOS. Empty documents are skipped. Ids >= vocab_size (when > 0) are
// an error naming the document.
std::vector<int32_t> TokenizeTextFiles(const std::vector<std::string>& files, const Tokenizer& tok,
                                       int64_t vocab_size, ByteProgress& progress);

// Rows of T+1 tokens cut from `stream` with stride T+1, mask all ones. `what` names the data in
// the error when the stream is shorter than one row. `dropped` gets the ragged tail's length.
DataSet::Rows PackRows(const std::vector<int32_t>& stream, int64_t T, const std::string& what,
                       int64_t* dropped);

// Rows of pre-tokenized safetensors files, in file order. *T: 0 takes L-1 from the first file;
// otherwise every file's L-1 must equal it.
DataSet::Rows ReadPretokenized(const std::vector<std::string>& files, int64_t* T,
                               int64_t vocab_size, ByteProgress& progress);

// One conversation's tokens (the whole render) and, per token, whether it belongs to an
// assistant message (see data.h for the rule). `where` ("file:line") prefixes errors.
struct SftTokens {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> assistant;  // [tokens.size()]
};
SftTokens TokenizeConversation(const nlohmann::ordered_json& line, const Tokenizer& tok,
                               const ChatTemplate& tmpl, const std::string& where);

struct SftRows {
  DataSet::Rows rows;
  int64_t conversations = 0;
  int64_t truncated = 0;   // longer than T+1 tokens
  int64_t no_targets = 0;  // no assistant token left within the row
};
SftRows ReadSft(const std::vector<std::string>& files, int64_t T, const Tokenizer& tok,
                const ChatTemplate& tmpl, int64_t vocab_size, ByteProgress& progress);

}  // namespace data_detail
}  // namespace r1
