// Tokenizer::Load: reads tokenizer.json (+ tokenizer_config.json) and assembles the pipeline.
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/tokenizer/bpe_model.h"
#include "r1/tokenizer/pretokenize.h"
#include "r1/tokenizer/tokenizer.h"
#include "r1/tokenizer/tokenizer_added.h"
#include "r1/tokenizer/tokenizer_config.h"
#include "r1/tokenizer/tokenizer_json.h"
#include "r1/tokenizer/tokenizer_normalizer.h"
#include "r1/tokenizer/unicode_byte_level.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const Json& Section(const Json& j, const char* key) {
  static const Json kNull;
  const auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

bool Flag(const Json& token, const char* key, bool fallback) {
  const auto it = token.find(key);
  if (it == token.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw Error(std::string("added token field \"") + key + "\" must be a boolean");
  return it->get<bool>();
}

std::vector<tok::AddedToken> ParseAddedTokens(const Json& j) {
  std::vector<tok::AddedToken> out;
  if (j.is_null()) return out;
  if (!j.is_array()) throw Error("\"added_tokens\" must be an array");
  for (const Json& t : j) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
        !t.contains("content") || !t["content"].is_string()) {
      throw Error("added token needs an integer \"id\" and a string \"content\": " +
                  t.dump().substr(0, 120));
    }
    const int64_t id = t["id"].get<int64_t>();
    if (id < 0 || id >= std::numeric_limits<int32_t>::max()) {
      throw Error("added token id " + std::to_string(id) + " is out of range");
    }
    tok::AddedToken a;
    a.id = static_cast<int32_t>(id);
    a.content = t["content"].get<std::string>();
    a.special = Flag(t, "special", false);
    a.lstrip = Flag(t, "lstrip", false);
    a.rstrip = Flag(t, "rstrip", false);
    a.single_word = Flag(t, "single_word", false);
    a.normalized = Flag(t, "normalized", true);
    out.push_back(std::move(a));
  }
  return out;
}

// Decoding maps vocab strings back through the byte-level alphabet, which is what a ByteLevel
// decoder does. In a Sequence, Fuse (joining the strings) changes nothing after that; any other
// decoder would need rules this tokenizer does not have, so it is refused.
bool CheckDecoder(const Json& j) {
  if (j.is_null()) throw Error("no decoder given; only the ByteLevel decoder is supported");
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    throw Error("decoder must be an object with a \"type\"");
  }
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return true;
  if (type == "Fuse") return false;
  if (type == "Sequence") {
    const auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) throw Error("decoder Sequence needs a \"decoders\" array");
    bool byte_level = false;
    for (const Json& d : *it) byte_level = CheckDecoder(d) || byte_level;
    if (!byte_level) throw Error("decoder Sequence has no ByteLevel decoder");
    return true;
  }
  throw Error("unsupported decoder type '" + type + "'");
}

std::string ModelType(const Json& model, const tok::BpeData& bpe) {
  const auto it = model.find("type");
  if (it != model.end() && it->is_string()) return it->get<std::string>();
  // Old files leave the type out; a vocab with merges can only be BPE.
  if (bpe.has_vocab && bpe.has_merges) return "BPE";
  return "(none)";
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::Load(const std::string& path) {
  std::error_code ec;
  fs::path json_path(path);
  if (fs::is_directory(json_path, ec)) json_path /= "tokenizer.json";
  if (!fs::exists(json_path, ec)) {
    throw Error("tokenizer: '" + json_path.string() + "' does not exist");
  }
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  try {
    t->Build(json_path.string());
    const tok::TokenizerConfig cfg =
        tok::LoadTokenizerConfig((json_path.parent_path() / "tokenizer_config.json").string());
    t->bos_token_ = cfg.bos_token;
    t->eos_token_ = cfg.eos_token;
    t->add_bos_ = cfg.add_bos;
    t->chat_template_ = cfg.chat_template;
  } catch (const Error& e) {
    throw Error(std::string("tokenizer: ") + e.what());
  }
  if (!t->bos_token_.empty()) t->bos_id_ = t->TokenId(t->bos_token_);
  if (!t->eos_token_.empty()) t->eos_id_ = t->TokenId(t->eos_token_);
  return t;
}

// Errors from here on name the file; Load adds the "tokenizer: " prefix.
void Tokenizer::Build(const std::string& json_path) {
  tok::TokenizerJson file = tok::ReadTokenizerJson(json_path);
  const Json& j = file.doc;
  try {
    if (!j.is_object()) throw Error("expected a JSON object");
    const Json& model = Section(j, "model");
    if (!model.is_object()) throw Error("missing \"model\" object");
    const std::string type = ModelType(model, file.bpe);
    if (type != "BPE") throw Error("unsupported tokenizer model type '" + type + "'");
    normalizer_ = std::make_unique<tok::Normalizer>(tok::Normalizer::FromJson(Section(j, "normalizer")));
    pre_tokenizer_ = tok::PreTokenizer::FromJson(Section(j, "pre_tokenizer"));
    if (!CheckDecoder(Section(j, "decoder"))) throw Error("a ByteLevel decoder is required");
    model_ = tok::BpeModel::Build(model, std::move(file.bpe), pre_tokenizer_->byte_level());
    added_ = std::make_unique<tok::AddedVocabulary>(ParseAddedTokens(Section(j, "added_tokens")),
                                                    *normalizer_);
  } catch (const Error& e) {
    throw Error(json_path + ": " + e.what());
  }
  BuildTokenTables();
}

void Tokenizer::BuildTokenTables() {
  const auto& vocab = model_->tokens();
  size_t size = vocab.size();
  for (const auto& a : added_->tokens()) size = std::max(size, static_cast<size_t>(a.id) + 1);
  vocab_size_ = static_cast<int32_t>(size);

  token_text_.assign(size, std::string_view());
  special_.assign(size, 0);
  for (size_t id = 0; id < vocab.size(); ++id) token_text_[id] = vocab[id];
  // Added tokens take precedence over a vocab entry with the same id, as in the reference.
  std::vector<uint8_t> is_added(size, 0);
  for (const auto& a : added_->tokens()) {
    token_text_[a.id] = a.content;
    special_[a.id] = a.special;
    is_added[a.id] = 1;
  }

  token_bytes_.clear();
  token_bytes_offset_.assign(size + 1, 0);
  for (size_t id = 0; id < size; ++id) {
    token_bytes_offset_[id] = static_cast<uint32_t>(token_bytes_.size());
    // Added tokens decode to their content verbatim; vocab entries through the byte alphabet.
    if (is_added[id]) {
      token_bytes_ += token_text_[id];
    } else {
      token_bytes_ += tok::ByteLevelDecode(token_text_[id]);
    }
  }
  token_bytes_offset_[size] = static_cast<uint32_t>(token_bytes_.size());
}

}  // namespace r1
