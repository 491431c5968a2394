// The built-in chat templates: name, Jinja source and the BOS/EOS text each model family uses.
#pragma once

#include <vector>

namespace r1 {

struct BuiltinChatTemplate {
  const char* name;
  const char* source;
  const char* bos_token;
  const char* eos_token;
  const char* description;
};

const std::vector<BuiltinChatTemplate>& BuiltinChatTemplates();

}  // namespace r1
