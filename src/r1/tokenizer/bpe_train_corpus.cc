// Reading the training text and counting its pre-tokenized words.
#include <algorithm>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/core/progress.h"
#include "r1/tokenizer/bpe_model.h"
#include "r1/tokenizer/bpe_train.h"
#include "r1/tokenizer/pretokenize.h"
#include "r1/tokenizer/tokenizer_files.h"

namespace r1::tok {
namespace {

using WordMap = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

class WordCounter final : public WordSink {
 public:
  void OnWord(std::string_view word) override {
    ++total_;
    if (auto it = map_.find(word); it != map_.end()) {
      ++it->second;
    } else {
      map_.emplace(std::string(word), 1);
    }
  }
  WordMap& map() { return map_; }
  int64_t total() const { return total_; }

 private:
  WordMap map_;
  int64_t total_ = 0;
};

bool IsJsonl(const std::string& path) {
  return path.size() >= 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
}

// Hands `text` to the pre-tokenizer in pieces of about 64 KiB, cut right after a newline that is
// followed by a visible ASCII character. No word of the three presets' patterns spans such a
// point (newlines end a match or stand alone, and no pattern looks behind), so the words are the
// ones splitting the whole text would give, and progress can be shown along the way.
template <class Fn>
void ForEachChunk(std::string_view text, Fn&& fn) {
  constexpr size_t kChunk = 1 << 16;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.size();
    for (size_t nl = text.find('\n', std::min(pos + kChunk, text.size()));
         nl != std::string_view::npos && nl + 1 < text.size(); nl = text.find('\n', nl + 1)) {
      const auto next = static_cast<unsigned char>(text[nl + 1]);
      if (next > 0x20 && next < 0x7F) {
        end = nl + 1;
        break;
      }
    }
    fn(text.substr(pos, end - pos));
    pos = end;
  }
}

// Cuts occurrences of the special tokens out of `text` (longest first where they start at the
// same place, as the encoder's added-token matching does) and pre-tokenizes the rest.
void CountText(std::string_view text, const PreTokenizer& pre,
               const std::vector<std::string>& specials, WordCounter& counter) {
  constexpr size_t kNone = std::string_view::npos;
  std::vector<size_t> next(specials.size(), 0);
  for (size_t i = 0; i < specials.size(); ++i) next[i] = text.find(specials[i]);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best = kNone, best_len = 0;
    for (size_t i = 0; i < specials.size(); ++i) {
      if (next[i] != kNone && next[i] < pos) next[i] = text.find(specials[i], pos);
      if (next[i] == kNone) continue;
      if (next[i] < best || (next[i] == best && specials[i].size() > best_len)) {
        best = next[i];
        best_len = specials[i].size();
      }
    }
    const size_t end = best == kNone ? text.size() : best;
    if (end > pos) pre.Split(text.substr(pos, end - pos), counter);
    if (best == kNone) break;
    pos = best + best_len;
  }
}

}  // namespace

size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The second byte's range also rules out overlong forms, surrogates and > U+10FFFF.
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c == 0xE0) {
      len = 3, lo = 0xA0;
    } else if (c == 0xED) {
      len = 3, hi = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
      len = 3;
    } else if (c == 0xF0) {
      len = 4, lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      len = 4, hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

BpeWordCounts CountBpeWords(const std::vector<std::string>& inputs, const PreTokenizer& pre,
                            const std::vector<std::string>& specials,
                            const std::string& jsonl_field, bool quiet, int64_t* input_bytes,
                            int64_t* total_words) {
  // Validate everything first, so a bad byte in the last file does not cost the whole count.
  int64_t total_bytes = 0;
  for (const std::string& path : inputs) {
    const std::string text = ReadWholeFile(path);
    if (text.empty()) throw Error(path + ": input file is empty");
    if (const size_t bad = FindInvalidUtf8(text); bad != std::string::npos) {
      throw Error(path + ": invalid UTF-8 at byte offset " + std::to_string(bad));
    }
    total_bytes += static_cast<int64_t>(text.size());
  }

  WordCounter counter;
  Progress progress("counting words", static_cast<double>(total_bytes), quiet);
  int64_t done = 0;
  auto count = [&](std::string_view text) {
    ForEachChunk(text, [&](std::string_view chunk) {
      CountText(chunk, pre, specials, counter);
      done += static_cast<int64_t>(chunk.size());
      progress.Update(static_cast<double>(done), std::to_string(counter.map().size()) + " words");
    });
  };
  for (const std::string& path : inputs) {
    const std::string text = ReadWholeFile(path);
    if (!IsJsonl(path)) {
      count(text);
      continue;
    }
    size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      const std::string_view line(text.data() + pos, eol - pos);
      ++line_no;
      pos = eol + 1;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      const auto field = j.is_object() ? j.find(jsonl_field) : j.end();
      if (j.is_discarded() || !j.is_object() || field == j.end() || !field->is_string()) {
        throw Error(path + ":" + std::to_string(line_no) + ": expected a JSON object with a \"" +
                    jsonl_field + "\" string");
      }
      count(field->get_ref<const std::string&>());
      // Progress counts file bytes; the JSON around the text counts as done with its line.
      done += static_cast<int64_t>(line.size() + 1 - field->get_ref<const std::string&>().size());
    }
  }
  progress.Finish(std::to_string(counter.total()) + " words, " +
                  std::to_string(counter.map().size()) + " distinct");
  if (counter.map().empty()) throw Error("the inputs hold no text to train on");

  BpeWordCounts out(counter.map().begin(), counter.map().end());
  std::sort(out.begin(), out.end());
  if (input_bytes) *input_bytes = total_bytes;
  if (total_words) *total_words = counter.total();
  return out;
}

}  // namespace r1::tok
