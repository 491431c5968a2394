// The parts of tokenizer_config.json the engine needs beside the tokenizer itself: which tokens
// begin and end a sequence, whether BOS is added, and the chat template.
#pragma once

#include <string>

namespace r1::tok {

struct TokenizerConfig {
  std::string bos_token;  // content, "" if none
  std::string eos_token;
  bool add_bos = false;
  std::string chat_template;
};

// Reads `path` when it exists (defaults otherwise). A chat_template.jinja beside it supplies the
// template when the config has none, as newer checkpoints ship it that way. Throws r1::Error
// naming the file when it exists but is malformed.
TokenizerConfig LoadTokenizerConfig(const std::string& path);

}  // namespace r1::tok
