#include "r1/tokenizer/tokenizer_json.h"

#include <limits>
#include <utility>
#include <vector>

#include "r1/core/error.h"
#include "r1/tokenizer/tokenizer_files.h"

namespace r1::tok {
namespace {

using Json = nlohmann::json;

std::string Abbrev(const std::string& s) { return s.size() <= 80 ? s : s.substr(0, 80) + "..."; }

std::string Quoted(const std::string& s) {
  std::string q(1, '"');
  q += Abbrev(s);
  q += '"';
  return q;
}

// Builds the JSON document like nlohmann's own DOM parser, except inside model.vocab and
// model.merges, whose entries are validated and collected directly.
class Reader final : public nlohmann::json_sax<Json> {
 public:
  explicit Reader(TokenizerJson& out) : out_(out) {}

  bool null() override { return Value(nullptr, "null"); }
  bool boolean(bool v) override { return Value(v, v ? "true" : "false"); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == Mode::kVocab) return VocabId(v, std::to_string(v));
    return Value(v, std::to_string(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::kVocab) {
      return VocabId(v > static_cast<number_unsigned_t>(std::numeric_limits<int64_t>::max())
                         ? -1
                         : static_cast<int64_t>(v),
                     std::to_string(v));
    }
    return Value(v, std::to_string(v));
  }
  bool number_float(number_float_t v, const string_t& text) override { return Value(v, text); }
  bool binary(binary_t&) override { return Value(nullptr, "binary"); }
  bool string(string_t& s) override {
    if (mode_ == Mode::kMerges) {
      LegacyMerge(s);
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(s));
      return true;
    }
    return Value(std::move(s), Quoted(s));
  }

  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }

  bool start_object(std::size_t) override {
    if (mode_ == Mode::kDom && AtModelField("vocab")) {
      mode_ = Mode::kVocab;
      out_.bpe.has_vocab = true;
      return true;
    }
    if (mode_ != Mode::kDom) return Value(nullptr, "an object");
    Open(Json::object());
    return true;
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    Close();
    return true;
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kDom && AtModelField("merges")) {
      mode_ = Mode::kMerges;
      out_.bpe.has_merges = true;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::kDom) return Value(nullptr, "an array");
    Open(Json::array());
    return true;
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2) BadMerge("a list of " + std::to_string(pair_.size()) + " strings");
      out_.bpe.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    Close();
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    throw Error(std::string("invalid JSON: ") + e.what());
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  // Inside vocab or merges only the expected kinds of value are allowed; `text` describes the
  // value for the error message.
  template <class V>
  bool Value(V&& v, const std::string& text) {
    switch (mode_) {
      case Mode::kVocab:
        throw Error("vocab entry '" + Abbrev(key_) + "' has no valid id (" + text + ")");
      case Mode::kMerges:
      case Mode::kMergePair:
        BadMerge(text);
      case Mode::kDom:
        break;
    }
    Insert(Json(std::forward<V>(v)));
    return true;
  }

  bool VocabId(int64_t id, const std::string& text) {
    if (id < 0 || id >= std::numeric_limits<int32_t>::max()) {
      throw Error("vocab entry '" + Abbrev(key_) + "' has no valid id (" + text + ")");
    }
    out_.bpe.vocab.emplace_back(std::move(key_), static_cast<int32_t>(id));
    return true;
  }

  // The legacy "left right" form. A "#version" header line is not a rule.
  void LegacyMerge(std::string& line) {
    if (line.rfind("#version", 0) == 0) return;
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      throw Error("merge #" + std::to_string(out_.bpe.merges.size()) + " '" + Abbrev(line) +
                  "' is not two tokens separated by one space");
    }
    out_.bpe.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }

  [[noreturn]] void BadMerge(const std::string& got) {
    throw Error("merge #" + std::to_string(out_.bpe.merges.size()) +
                " must be \"left right\" or [\"left\", \"right\"], got " + got);
  }

  bool AtModelField(const char* name) const {
    return stack_.size() == 2 && stack_.back()->is_object() && keys_[1] == "model" &&
           key_ == name;
  }

  Json* Insert(Json v) {
    if (stack_.empty()) {
      out_.doc = std::move(v);
      return &out_.doc;
    }
    Json& top = *stack_.back();
    if (top.is_object()) {
      Json& slot = top[key_];
      slot = std::move(v);
      return &slot;
    }
    top.push_back(std::move(v));
    return &top.back();
  }
  void Open(Json container) {
    const bool in_object = !stack_.empty() && stack_.back()->is_object();
    std::string key = in_object ? key_ : std::string();
    stack_.push_back(Insert(std::move(container)));
    keys_.push_back(std::move(key));
  }
  void Close() {
    stack_.pop_back();
    keys_.pop_back();
  }

  TokenizerJson& out_;
  Mode mode_ = Mode::kDom;
  std::vector<Json*> stack_;       // open containers, outermost first
  std::vector<std::string> keys_;  // the key each open container sits under ("" in arrays)
  std::string key_;                // the last object key read
  std::vector<std::string> pair_;
};

}  // namespace

TokenizerJson ReadTokenizerJson(const std::string& path) {
  const std::string text = ReadWholeFile(path);
  TokenizerJson out;
  try {
    Reader reader(out);
    Json::sax_parse(text, &reader);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return out;
}

}  // namespace r1::tok
