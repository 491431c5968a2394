#include "r1/tokenizer/tokenizer_config.h"

#include <filesystem>

#include "r1/core/error.h"
#include "r1/tokenizer/tokenizer_files.h"

namespace r1::tok {
namespace {

using Json = nlohmann::json;

// bos_token / eos_token are a string, an AddedToken object {"content": ...}, or null.
std::string TokenContent(const Json& j, const char* key, const std::string& path) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  throw Error(path + ": \"" + key + "\" must be a string or an object with a \"content\" string");
}

std::string ChatTemplate(const Json& j, const std::string& path) {
  const auto it = j.find("chat_template");
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    // Named templates: [{"name": "default", "template": "..."}, {"name": "tool_use", ...}].
    for (const Json& t : *it) {
      if (t.is_object() && t.contains("name") && t["name"].is_string() &&
          t["name"].get<std::string>() == "default" && t.contains("template") &&
          t["template"].is_string()) {
        return t["template"].get<std::string>();
      }
    }
    return "";
  }
  throw Error(path + ": \"chat_template\" must be a string or a list of {name, template}");
}

}  // namespace

TokenizerConfig LoadTokenizerConfig(const std::string& path) {
  namespace fs = std::filesystem;
  TokenizerConfig cfg;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    const Json j = ParseJsonFile(path);
    if (!j.is_object()) throw Error(path + ": expected a JSON object");
    cfg.bos_token = TokenContent(j, "bos_token", path);
    cfg.eos_token = TokenContent(j, "eos_token", path);
    const auto add = j.find("add_bos_token");
    if (add != j.end() && !add->is_null()) {
      if (!add->is_boolean()) throw Error(path + ": \"add_bos_token\" must be a boolean");
      cfg.add_bos = add->get<bool>();
    }
    cfg.chat_template = ChatTemplate(j, path);
  }
  if (cfg.chat_template.empty()) {
    const fs::path jinja = fs::path(path).parent_path() / "chat_template.jinja";
    if (fs::exists(jinja, ec)) cfg.chat_template = ReadWholeFile(jinja.string());
  }
  return cfg;
}

}  // namespace r1::tok
