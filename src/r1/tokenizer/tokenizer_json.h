// Reads tokenizer.json in one streaming pass. The file is mostly the BPE vocab and merges
// (hundreds of thousands of entries); building them as JSON values first costs about a second,
// so they go straight into BpeData and only the small rest of the document becomes JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "r1/tokenizer/bpe_model.h"

namespace r1::tok {

struct TokenizerJson {
  nlohmann::json doc;  // everything except model.vocab and model.merges
  BpeData bpe;
};

// Throws r1::Error naming the file: unreadable, invalid JSON, malformed vocab or merges entries.
TokenizerJson ReadTokenizerJson(const std::string& path);

}  // namespace r1::tok
