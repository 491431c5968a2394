// Byte-level BPE tokenizers loaded from a Hugging Face tokenizer.json (DeepSeek-V3/R1, Qwen2/3,
// the R1 distills), producing exactly the reference implementation's ids.
//
// Encoding, as the reference does it: added tokens (special tokens such as <｜User｜>, and extras
// such as <think>) are cut out of the raw text first, longest match first; the text between them
// is normalized, split into words by the pre-tokenizer, and each word is BPE-merged. No BOS/EOS
// or other post-processing is added; use bos_id()/add_bos() for that.
//
// Invalid UTF-8 input is not an error: each maximal invalid byte sequence is replaced by U+FFFD
// before encoding, exactly like Rust's String::from_utf8_lossy (what a Python or JS caller of the
// reference would have had to do to get a string in the first place).
//
// Decoding concatenates each token's bytes (vocab entries map back through the byte-level
// alphabet; added tokens give their content) and repairs any invalid UTF-8 in the result with
// U+FFFD. Ids outside the vocabulary are skipped, as the reference skips them. Encode and Decode
// may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace r1 {

namespace tok {
class AddedVocabulary;
class BpeModel;
class Normalizer;
class PreTokenizer;
}  // namespace tok

class Tokenizer {
 public:
  // `path`: a tokenizer.json, or a folder holding one. tokenizer_config.json beside it is read
  // when present. Throws r1::Error naming the file and the problem.
  static std::unique_ptr<Tokenizer> Load(const std::string& path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // No special tokens are added; special tokens written in the text are recognised.
  std::vector<int32_t> Encode(std::string_view text) const;
  void Encode(std::string_view text, std::vector<int32_t>& out) const;  // appends

  std::string Decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // Raw vocab string (byte-level form) or added token content; "" for unknown ids.
  std::string_view TokenText(int32_t id) const;
  // The bytes `id` contributes to decoded text (possibly part of a UTF-8 character).
  std::string_view TokenBytes(int32_t id) const;
  // Exact lookup among added tokens, then the vocab.
  std::optional<int32_t> TokenId(std::string_view token) const;
  int32_t vocab_size() const { return vocab_size_; }  // max id + 1 over vocab and added tokens
  bool IsSpecial(int32_t id) const;

  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  bool add_bos() const { return add_bos_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  // tokenizer_config.json "chat_template" ("default" one if it is a list), "" if none.
  const std::string& chat_template() const { return chat_template_; }

 private:
  Tokenizer();
  void Build(const std::string& json_path);
  void BuildTokenTables();
  void EncodeValid(std::string_view text, std::vector<int32_t>& out) const;

  std::unique_ptr<tok::Normalizer> normalizer_;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<tok::BpeModel> model_;
  std::unique_ptr<tok::AddedVocabulary> added_;

  int32_t vocab_size_ = 0;
  std::vector<std::string_view> token_text_;  // by id; points into model_ / added_
  std::string token_bytes_;                   // all tokens' decoded bytes, back to back
  std::vector<uint32_t> token_bytes_offset_;  // by id, plus one past the end
  std::vector<uint8_t> special_;              // by id

  std::optional<int32_t> bos_id_, eos_id_;
  bool add_bos_ = false;
  std::string bos_token_, eos_token_, chat_template_;
};

// Turns a stream of ids (one sequence) into text as it is generated. Bytes of a character split
// across tokens are held back until the character completes, so the output never contains a
// broken UTF-8 sequence, and the concatenation of all pieces plus Flush() equals Decode of the
// whole sequence.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = false);

  // The text completed by this token (maybe empty).
  std::string Push(int32_t id);
  // Whatever is still held back, an incomplete final character becoming U+FFFD.
  std::string Flush();

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace r1
