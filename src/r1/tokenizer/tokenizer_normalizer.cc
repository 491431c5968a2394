#include "r1/tokenizer/tokenizer_normalizer.h"

#include <nlohmann/json.hpp>

#include "r1/core/error.h"

namespace r1::tok {

Normalizer Normalizer::FromJson(const nlohmann::json& j) {
  Normalizer n;
  n.Add(j);
  return n;
}

void Normalizer::Add(const nlohmann::json& j) {
  if (j.is_null()) return;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    throw Error("normalizer must be null or an object with a \"type\"");
  }
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    const auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) {
      throw Error("normalizer Sequence needs a \"normalizers\" array");
    }
    for (const auto& child : *it) Add(child);
  } else if (type == "NFC") {
    forms_.push_back(NormalForm::kNFC);
  } else if (type == "NFD") {
    forms_.push_back(NormalForm::kNFD);
  } else if (type == "NFKC") {
    forms_.push_back(NormalForm::kNFKC);
  } else if (type == "NFKD") {
    forms_.push_back(NormalForm::kNFKD);
  } else {
    throw Error("unsupported normalizer type '" + type + "'");
  }
}

std::string_view Normalizer::Apply(std::string_view in, std::string& storage) const {
  std::string_view cur = in;
  for (NormalForm form : forms_) {
    std::string next;
    if (Normalize(form, cur, next)) {
      storage = std::move(next);
      cur = storage;
    }
  }
  return cur;
}

}  // namespace r1::tok
