// Training a byte-level BPE tokenizer from text, written out as a Hugging Face tokenizer.json
// (plus tokenizer_config.json) that Tokenizer::Load and HF tokenizers both read.
//
// Words are cut with the same PreTokenizer class the encoder uses, built from the very JSON
// written into the output, so training and encoding split text identically. The vocabulary is
// the 256 byte-alphabet symbols (ids 0..255, in GPT-2's order, i.e. sorted by their stand-in code
// point), then one entry per merge, then the added (special) tokens.
//
// Merge selection: the pair with the highest frequency-weighted count wins; ties go to the pair
// whose (left, right) vocab strings, as written in tokenizer.json, are lexicographically smallest
// (byte-wise comparison of left, then of right). Merging stops at the requested size or when the
// best pair occurs fewer than min_frequency times. Output is deterministic for the same input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace r1::tok {

class PreTokenizer;

struct BpeTrainOptions {
  std::vector<std::string> inputs;  // plain text, or .jsonl with one object a line
  int64_t vocab_size = 0;           // everything: 256 bytes + merges + special tokens
  std::string pre_tokenizer = "deepseek-v3";  // deepseek-v3 | qwen2 | gpt2
  int64_t min_frequency = 2;
  std::string special_tokens = "deepseek";  // deepseek | none
  std::string jsonl_field = "text";
  bool quiet = false;  // no progress lines on stderr
};

struct BpeTrainStats {
  int64_t input_bytes = 0;
  int64_t words = 0;           // pre-tokenized words, with repeats
  int64_t distinct_words = 0;
  int64_t merges = 0;
  int64_t vocab_size = 0;      // what was written, special tokens included
  int64_t tokens = 0;          // the training text's length in tokens after the merges
  double count_seconds = 0, merge_seconds = 0;
};

struct BpeSpecialToken {
  std::string content;
  bool special;  // false for <think> / </think>, as in the R1 tokenizers
};

// "deepseek": BOS, EOS, pad, <｜User｜>, <｜Assistant｜>, <think>, </think>; "none": nothing.
std::vector<BpeSpecialToken> BpeSpecialTokens(const std::string& set);

// The tokenizer.json "pre_tokenizer" object for a preset name. Throws r1::Error on others.
nlohmann::json BpePreTokenizerJson(const std::string& name);
// The same object as JSON text, keys in the order of the released files.
std::string BpePreTokenizerSource(const std::string& name);
std::vector<std::string> BpePreTokenizerNames();

// Byte offset of the first byte that does not start a valid UTF-8 sequence, or npos.
size_t FindInvalidUtf8(std::string_view s);

// Distinct words (raw bytes) with their counts, sorted by word.
using BpeWordCounts = std::vector<std::pair<std::string, int64_t>>;

// Reads, validates and pre-tokenizes the inputs. Text equal to a `specials` entry is cut out
// first, as the encoder does with added tokens, so it never shapes the merges. Throws r1::Error
// naming the file (and byte offset, or line for JSONL) on unreadable, empty or invalid input.
BpeWordCounts CountBpeWords(const std::vector<std::string>& inputs, const PreTokenizer& pre,
                            const std::vector<std::string>& specials,
                            const std::string& jsonl_field, bool quiet, int64_t* input_bytes,
                            int64_t* total_words);

struct BpeLearned {
  std::vector<std::string> vocab;  // byte-alphabet strings by id
  std::vector<std::pair<int32_t, int32_t>> merges;  // in rank order
  int64_t tokens = 0;  // the words' total length in tokens at the end, weighted by count
};

// Learns merges until the vocabulary has `bpe_vocab_size` entries (>= 256) or no pair occurs
// min_frequency times.
BpeLearned LearnBpe(const BpeWordCounts& words, size_t bpe_vocab_size, int64_t min_frequency,
                    bool quiet);

// Checks the options and the output path, trains, and writes `out_path` (a file, or a folder
// to hold tokenizer.json) and tokenizer_config.json beside it. Throws r1::Error; problems found
// without reading the text (missing or empty files, too small a vocab size, an unwritable out
// path) are reported before any work starts.
BpeTrainStats TrainBpeTokenizer(const BpeTrainOptions& opts, const std::string& out_path);

}  // namespace r1::tok
