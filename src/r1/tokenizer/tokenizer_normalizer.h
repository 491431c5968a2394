// The "normalizer" section of tokenizer.json: null, a Unicode normal form, or a Sequence of them.
// Byte-level BPE tokenizers use nothing else, so any other normalizer is refused at load time
// rather than silently skipped (which would change the ids).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "r1/tokenizer/unicode_props.h"

namespace r1::tok {

class Normalizer {
 public:
  // Throws r1::Error("unsupported normalizer type 'X'") for anything it cannot reproduce.
  static Normalizer FromJson(const nlohmann::json& j);

  bool empty() const { return forms_.empty(); }

  // `in` normalized; the result points into `in` or into `storage`.
  std::string_view Apply(std::string_view in, std::string& storage) const;

 private:
  void Add(const nlohmann::json& j);
  std::vector<NormalForm> forms_;
};

}  // namespace r1::tok
