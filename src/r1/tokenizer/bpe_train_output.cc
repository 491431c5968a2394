// TrainBpeTokenizer: option checks, the training steps, and writing tokenizer.json and
// tokenizer_config.json.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/tokenizer/bpe_train.h"
#include "r1/tokenizer/chat_template.h"
#include "r1/tokenizer/pretokenize.h"

namespace r1::tok {
namespace {

namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;

// Stand-ins dumped by nlohmann and then replaced by the vocab and merges written by hand:
// ordered_json inserts keys with a linear search, which a 100k-entry vocab would feel.
constexpr std::string_view kVocabMark = "\"@@R1_VOCAB@@\"";
constexpr std::string_view kMergesMark = "\"@@R1_MERGES@@\"";

std::string Quote(const std::string& s) { return nlohmann::json(s).dump(); }

// Where tokenizer.json goes: `out` itself, or inside it when it is a folder.
fs::path ResolveOut(const std::string& out) {
  if (out.empty()) throw Error("--out is empty");
  std::error_code ec;
  fs::path path(out);
  if (fs::is_directory(path, ec)) path /= "tokenizer.json";
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (!fs::is_directory(dir, ec)) {
    throw Error("cannot write '" + path.string() + "': folder '" + dir.string() +
                "' does not exist");
  }
  if (access(dir.c_str(), W_OK) != 0) {
    throw Error("cannot write '" + path.string() + "': folder '" + dir.string() +
                "' is not writable");
  }
  for (const fs::path& p : {path, dir / "tokenizer_config.json"}) {
    if (fs::exists(p, ec) && (fs::is_directory(p, ec) || access(p.c_str(), W_OK) != 0)) {
      throw Error("cannot write '" + p.string() + "': not a writable file");
    }
  }
  return path;
}

void CheckInputs(const std::vector<std::string>& inputs) {
  if (inputs.empty()) throw Error("no input files given");
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (!fs::exists(in, ec)) throw Error(in + ": input file does not exist");
    if (!fs::is_regular_file(in, ec)) throw Error(in + ": input is not a regular file");
    if (fs::file_size(in, ec) == 0) throw Error(in + ": input file is empty");
    if (access(in.c_str(), R_OK) != 0) throw Error(in + ": input file is not readable");
  }
}

// Written to a temporary name and renamed, so an interrupted run leaves no half file behind.
void WriteFile(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write '" + tmp.string() + "'");
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.close();
    if (!f) throw Error("error writing '" + tmp.string() + "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("cannot write '" + path.string() + "': " + ec.message());
  }
}

std::string TokenizerJson(const BpeLearned& bpe, const std::vector<BpeSpecialToken>& specials,
                          const std::string& pre_tokenizer_source) {
  OJson added = OJson::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    OJson t;
    t["id"] = bpe.vocab.size() + i;
    t["content"] = specials[i].content;
    t["single_word"] = false;
    t["lstrip"] = false;
    t["rstrip"] = false;
    // HF's convention: special tokens match the raw text, others the normalized text (the same
    // here, with no normalizer).
    t["normalized"] = !specials[i].special;
    t["special"] = specials[i].special;
    added.push_back(std::move(t));
  }
  OJson doc;
  doc["version"] = "1.0";
  doc["truncation"] = nullptr;
  doc["padding"] = nullptr;
  doc["added_tokens"] = std::move(added);
  doc["normalizer"] = nullptr;
  // Parsed from the preset text itself to keep the original key order.
  doc["pre_tokenizer"] = OJson::parse(pre_tokenizer_source);
  doc["post_processor"] = nullptr;
  doc["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true},
                    {"trim_offsets", true}, {"use_regex", true}};
  OJson model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["ignore_merges"] = false;
  model["vocab"] = std::string(kVocabMark.substr(1, kVocabMark.size() - 2));
  model["merges"] = std::string(kMergesMark.substr(1, kMergesMark.size() - 2));
  doc["model"] = std::move(model);
  std::string text = doc.dump(2);

  std::string vocab = "{";
  for (size_t id = 0; id < bpe.vocab.size(); ++id) {
    vocab += id ? ",\n      " : "\n      ";
    vocab += Quote(bpe.vocab[id]) + ": " + std::to_string(id);
  }
  vocab += "\n    }";
  std::string merges = "[";
  for (size_t i = 0; i < bpe.merges.size(); ++i) {
    merges += i ? ",\n      [" : "\n      [";
    merges += Quote(bpe.vocab[bpe.merges[i].first]) + ", " + Quote(bpe.vocab[bpe.merges[i].second]);
    merges += "]";
  }
  merges += bpe.merges.empty() ? "]" : "\n    ]";
  text.replace(text.find(kVocabMark), kVocabMark.size(), vocab);
  text.replace(text.find(kMergesMark), kMergesMark.size(), merges);
  text += "\n";
  return text;
}

std::string ConfigJson(const std::vector<BpeSpecialToken>& specials) {
  OJson cfg;
  const bool deepseek = !specials.empty();
  cfg["add_bos_token"] = deepseek;
  cfg["add_eos_token"] = false;
  cfg["bos_token"] = deepseek ? OJson(specials[0].content) : OJson(nullptr);
  cfg["eos_token"] = deepseek ? OJson(specials[1].content) : OJson(nullptr);
  // DeepSeek's own config pads with EOS; kept so code written for those models behaves the same.
  cfg["pad_token"] = deepseek ? OJson(specials[1].content) : OJson(nullptr);
  cfg["unk_token"] = nullptr;
  cfg["clean_up_tokenization_spaces"] = false;
  cfg["legacy"] = true;
  cfg["model_max_length"] = 131072;
  cfg["tokenizer_class"] = deepseek ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast";
  // The template names the DeepSeek role tokens, so it only fits a vocabulary that has them.
  if (deepseek) cfg["chat_template"] = ChatTemplate::Named("deepseek-v3").source();
  return cfg.dump(2) + "\n";
}

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::vector<BpeSpecialToken> BpeSpecialTokens(const std::string& set) {
  if (set == "none") return {};
  if (set == "deepseek") {
    return {{"<｜begin▁of▁sentence｜>", true}, {"<｜end▁of▁sentence｜>", true},
            {"<｜▁pad▁｜>", true},              {"<｜User｜>", true},
            {"<｜Assistant｜>", true},          {"<think>", false},
            {"</think>", false}};
  }
  throw Error("unknown special token set '" + set + "' (expected deepseek or none)");
}

BpeTrainStats TrainBpeTokenizer(const BpeTrainOptions& opts, const std::string& out_path) {
  // Everything that can be checked without reading the text comes first.
  const nlohmann::json pre_json = BpePreTokenizerJson(opts.pre_tokenizer);
  const std::vector<BpeSpecialToken> specials = BpeSpecialTokens(opts.special_tokens);
  const int64_t minimum = 256 + static_cast<int64_t>(specials.size());
  if (opts.vocab_size < minimum) {
    throw Error("--vocab-size " + std::to_string(opts.vocab_size) + " is too small: the 256 byte " +
                "symbols and " + std::to_string(specials.size()) + " special tokens need " +
                std::to_string(minimum));
  }
  if (opts.vocab_size > (int64_t{1} << 31) - 1) throw Error("--vocab-size is too large");
  if (opts.min_frequency < 1) throw Error("--min-frequency must be at least 1");
  if (opts.jsonl_field.empty()) throw Error("--jsonl-field is empty");
  CheckInputs(opts.inputs);
  const fs::path out = ResolveOut(out_path);
  const auto pre = PreTokenizer::FromJson(pre_json);

  BpeTrainStats stats;
  std::vector<std::string> special_texts;
  for (const auto& s : specials) special_texts.push_back(s.content);
  auto t0 = std::chrono::steady_clock::now();
  const BpeWordCounts words = CountBpeWords(opts.inputs, *pre, special_texts, opts.jsonl_field,
                                            opts.quiet, &stats.input_bytes, &stats.words);
  stats.distinct_words = static_cast<int64_t>(words.size());
  stats.count_seconds = Since(t0);

  t0 = std::chrono::steady_clock::now();
  const BpeLearned bpe = LearnBpe(words, static_cast<size_t>(opts.vocab_size) - specials.size(),
                                  opts.min_frequency, opts.quiet);
  stats.merge_seconds = Since(t0);
  stats.merges = static_cast<int64_t>(bpe.merges.size());
  stats.vocab_size = static_cast<int64_t>(bpe.vocab.size() + specials.size());
  stats.tokens = bpe.tokens;

  WriteFile(out, TokenizerJson(bpe, specials, BpePreTokenizerSource(opts.pre_tokenizer)));
  WriteFile(out.parent_path() / "tokenizer_config.json", ConfigJson(specials));
  return stats;
}

}  // namespace r1::tok
