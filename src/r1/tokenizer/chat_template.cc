#include "r1/tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "r1/core/error.h"
#include "r1/tokenizer/chat_template_builtins.h"

namespace r1 {
namespace {

std::string JoinedNames() {
  std::string out;
  for (const auto& b : BuiltinChatTemplates()) {
    if (!out.empty()) out += ", ";
    out += b.name;
  }
  return out;
}

// Drops all whitespace, so a template re-indented or re-wrapped by a converter still counts as the
// built-in it came from. Only identity (name, BOS/EOS defaults) rides on this; the given source is
// what gets rendered.
std::string NormalizeWhitespace(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') out.push_back(c);
  }
  return out;
}

const BuiltinChatTemplate* FindBuiltin(const std::string& name) {
  for (const auto& b : BuiltinChatTemplates()) {
    if (name == b.name) return &b;
  }
  return nullptr;
}

const BuiltinChatTemplate* MatchBuiltin(const std::string& source) {
  const std::string norm = NormalizeWhitespace(source);
  for (const auto& b : BuiltinChatTemplates()) {
    if (NormalizeWhitespace(b.source) == norm) return &b;
  }
  return nullptr;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read chat template file '" + path + "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// bos_token / eos_token in tokenizer_config.json: a string, an AddedToken object or null.
std::string TokenText(const nlohmann::ordered_json& cfg, const char* key) {
  if (!cfg.contains(key)) return "";
  const auto& v = cfg.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string()) {
    return v.at("content").get<std::string>();
  }
  return "";
}

// chat_template is a string, or a list of {"name", "template"} of which "default" is the one
// apply_chat_template uses without a template name.
std::string ChatTemplateOf(const nlohmann::ordered_json& cfg, const std::string& path) {
  if (!cfg.contains("chat_template")) throw Error("'" + path + "' has no chat_template");
  const auto& t = cfg.at("chat_template");
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) {
    for (const auto& entry : t) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry.at("template").is_string())
        return entry.at("template").get<std::string>();
    }
  }
  throw Error("'" + path + "': chat_template is neither a string nor a list with a 'default' entry");
}

bool LooksLikeJson(const std::string& text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{' && text.find("\"chat_template\"") != std::string::npos;
  }
  return false;
}

nlohmann::ordered_json MessageObject(const ChatMessage& m) {
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  o["role"] = m.role;
  o["content"] = m.content;
  if (!m.reasoning_content.empty()) o["reasoning_content"] = m.reasoning_content;
  if (m.extra.is_object()) {
    for (const auto& [k, v] : m.extra.items()) o[k] = v;
  } else if (!m.extra.is_null()) {
    throw Error("ChatMessage.extra must be a JSON object");
  }
  return o;
}

}  // namespace

ChatTemplate::ChatTemplate(std::string source, std::string name, std::string bos, std::string eos)
    : name_(std::move(name)),
      source_(std::move(source)),
      bos_token_(std::move(bos)),
      eos_token_(std::move(eos)) {
  template_ = std::make_shared<const jinja::Template>(source_, name_);
  // Probe the generation prompt: R1-style templates end it with "<think>\n", after which the
  // model's first tokens are reasoning.
  try {
    ChatRenderOptions probe;
    const std::string out =
        Render(nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Hi"}}}), probe);
    size_t end = out.size();
    while (end > 0 && (out[end - 1] == '\n' || out[end - 1] == ' ')) --end;
    opens_thinking_ = end >= 7 && out.compare(end - 7, 7, "<think>") == 0;
  } catch (const Error&) {
    opens_thinking_ = false;  // a template that cannot render one user turn opens nothing
  }
}

std::vector<std::string> ChatTemplate::BuiltinNames() {
  std::vector<std::string> names;
  for (const auto& b : BuiltinChatTemplates()) names.emplace_back(b.name);
  return names;
}

ChatTemplate ChatTemplate::Named(const std::string& name) {
  const BuiltinChatTemplate* b = FindBuiltin(name);
  if (b == nullptr) {
    throw Error("unknown chat template '" + name + "'; valid names: " + JoinedNames());
  }
  return ChatTemplate(b->source, b->name, b->bos_token, b->eos_token);
}

ChatTemplate ChatTemplate::FromString(std::string jinja_source, std::string name) {
  const BuiltinChatTemplate* b = MatchBuiltin(jinja_source);
  return ChatTemplate(std::move(jinja_source), std::move(name), b ? b->bos_token : "",
                      b ? b->eos_token : "");
}

ChatTemplate ChatTemplate::FromFile(const std::string& path) {
  const std::string text = ReadFile(path);
  std::string source = text;
  std::string bos, eos;
  bool from_config = false;
  if (LooksLikeJson(text)) {
    nlohmann::ordered_json cfg;
    try {
      cfg = nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error("'" + path + "' is not valid JSON: " + e.what());
    }
    source = ChatTemplateOf(cfg, path);
    bos = TokenText(cfg, "bos_token");
    eos = TokenText(cfg, "eos_token");
    from_config = true;
  }
  const BuiltinChatTemplate* b = MatchBuiltin(source);
  if (b != nullptr && !from_config) {
    bos = b->bos_token;
    eos = b->eos_token;
  }
  return ChatTemplate(std::move(source), b != nullptr ? b->name : path, std::move(bos),
                      std::move(eos));
}

ChatTemplate ChatTemplate::FromFlag(const std::string& name_or_path) {
  if (FindBuiltin(name_or_path) != nullptr) return Named(name_or_path);
  std::error_code ec;
  if (std::filesystem::is_regular_file(name_or_path, ec)) return FromFile(name_or_path);
  throw Error("--chat-template '" + name_or_path +
              "' is neither a built-in template (" + JoinedNames() +
              ") nor a readable .jinja or tokenizer_config.json file");
}

ChatTemplate ChatTemplate::ForModel(const std::string& tokenizer_config_chat_template,
                                    const std::string& model_type) {
  if (!NormalizeWhitespace(tokenizer_config_chat_template).empty()) {
    const BuiltinChatTemplate* b = MatchBuiltin(tokenizer_config_chat_template);
    if (b != nullptr) {
      return ChatTemplate(tokenizer_config_chat_template, b->name, b->bos_token, b->eos_token);
    }
    return FromString(tokenizer_config_chat_template, "model");
  }
  if (model_type == "deepseek_v3" || model_type == "deepseek_v2") return Named("deepseek-v3");
  if (model_type == "qwen2") return Named("chatml");
  if (model_type == "qwen3") return Named("qwen3");
  if (model_type == "llama") return Named("llama3");
  throw Error("no chat template for model_type '" + model_type +
              "': the tokenizer_config.json has none; pass --chat-template with one of " +
              JoinedNames() + " or a .jinja file");
}

std::string ChatTemplate::Render(const std::vector<ChatMessage>& messages,
                                 const ChatRenderOptions& opts) const {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  for (const auto& m : messages) arr.push_back(MessageObject(m));
  return Render(arr, opts);
}

std::string ChatTemplate::Render(const nlohmann::json& messages,
                                 const ChatRenderOptions& opts) const {
  return Render(nlohmann::ordered_json(messages), opts);
}

std::string ChatTemplate::Render(const nlohmann::ordered_json& messages,
                                 const ChatRenderOptions& opts) const {
  if (!messages.is_array()) throw Error("chat messages must be a JSON array");
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  vars["messages"] = messages;
  vars["tools"] = nullptr;
  vars["documents"] = nullptr;
  vars["add_generation_prompt"] = opts.add_generation_prompt;
  vars["bos_token"] = opts.bos_token.empty() ? bos_token_ : opts.bos_token;
  vars["eos_token"] = opts.eos_token.empty() ? eos_token_ : opts.eos_token;
  if (opts.extra_vars.is_object()) {
    for (const auto& [k, v] : opts.extra_vars.items()) vars[k] = v;
  } else if (!opts.extra_vars.is_null()) {
    throw Error("ChatRenderOptions.extra_vars must be a JSON object");
  }
  return template_->Render(vars);
}

}  // namespace r1
