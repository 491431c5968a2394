// Chat templates: turning a conversation into the prompt text a model was trained on, by
// evaluating the model's Jinja chat template exactly as Hugging Face's apply_chat_template does.
//
// JSON here is nlohmann::ordered_json because key order is visible in the output (tojson of tool
// schemas and arguments); plain nlohmann::json converts implicitly but arrives key-sorted.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "r1/tokenizer/jinja.h"

namespace r1 {

struct ChatMessage {
  std::string role;
  std::string content;
  // Passed to the template only when non-empty: templates such as Qwen3's test whether it is
  // defined and would otherwise ignore reasoning embedded in `content`.
  std::string reasoning_content;
  // Further message fields (tool_calls, tool_call_id, name, ...), merged into the message object.
  // A "content" key here overrides `content`, e.g. null for an assistant turn that only calls
  // tools, which the DeepSeek templates expect.
  nlohmann::ordered_json extra;
};

struct ChatRenderOptions {
  bool add_generation_prompt = true;
  // Empty means the template's own default (the built-in's BOS/EOS text, or the values read from
  // a tokenizer_config.json).
  std::string bos_token, eos_token;
  // Further template variables, e.g. enable_thinking or tools; they override the defaults
  // (tools and documents are none unless given, as in transformers).
  nlohmann::ordered_json extra_vars;
};

class ChatTemplate {
 public:
  // Built-in names: deepseek-v3, deepseek-r1, deepseek-r1-distill, qwen3, chatml (Qwen2-Instruct,
  // default system message "You are a helpful assistant."), llama3 (Llama 3.1 Instruct, date
  // "26 Jul 2024"). Throws r1::Error listing the valid names.
  static ChatTemplate Named(const std::string& name);
  static std::vector<std::string> BuiltinNames();

  // A template from Jinja source. If the source is one of the built-ins (ignoring whitespace),
  // the built-in's BOS/EOS defaults apply. Throws r1::Error on syntax errors.
  static ChatTemplate FromString(std::string jinja_source, std::string name = "custom");
  // A .jinja file, or a tokenizer_config.json (its chat_template, and its bos/eos tokens).
  static ChatTemplate FromFile(const std::string& path);
  // NAME or FILE, as the --chat-template flag takes it.
  static ChatTemplate FromFlag(const std::string& name_or_path);
  // The template for a model: the tokenizer_config.json chat_template when there is one (named
  // after the built-in it matches, else "model"); otherwise by config.json model_type:
  // deepseek_v3/deepseek_v2 -> deepseek-v3, qwen2 -> chatml, qwen3 -> qwen3, llama -> llama3.
  static ChatTemplate ForModel(const std::string& tokenizer_config_chat_template,
                               const std::string& model_type);

  std::string Render(const std::vector<ChatMessage>& messages, const ChatRenderOptions& opts) const;
  // OpenAI-style message objects.
  std::string Render(const nlohmann::ordered_json& messages, const ChatRenderOptions& opts) const;
  std::string Render(const nlohmann::json& messages, const ChatRenderOptions& opts) const;

  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }
  const std::string& default_bos_token() const { return bos_token_; }
  const std::string& default_eos_token() const { return eos_token_; }
  // Whether the generation prompt opens a <think> block (R1 style), so the reasoning parser
  // should start inside reasoning.
  bool opens_thinking() const { return opens_thinking_; }

 private:
  ChatTemplate(std::string source, std::string name, std::string bos, std::string eos);

  std::string name_;
  std::string source_;
  std::string bos_token_;
  std::string eos_token_;
  bool opens_thinking_ = false;
  std::shared_ptr<const jinja::Template> template_;
};

}  // namespace r1
