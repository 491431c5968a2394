// The chat template API: built-in names, files and flags, model defaults, message conversion,
// and renders checked against model-spec §7 and against Python Jinja2 (tool calls, reasoning).
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/tokenizer/chat_template.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

// Expected renders produced by Python Jinja2 3.1.6 in transformers' apply_chat_template
// environment (tools=None, documents=None unless given).
constexpr const char* kV3Tools = R"x(<｜begin▁of▁sentence｜><｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather
```json
{"city": "Paris"}
```<｜tool▁call▁end｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>sunny, 21C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>Sunny and 21C.<｜end▁of▁sentence｜><｜User｜>Thanks!<｜Assistant｜>)x";
constexpr const char* kR1Tools = R"x(<｜begin▁of▁sentence｜><｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather
```json
{"city": "Paris"}
```<｜tool▁call▁end｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>sunny, 21C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>Sunny and 21C.<｜end▁of▁sentence｜><｜User｜>Thanks!<｜Assistant｜><think>
)x";
constexpr const char* kQwen3Tools = R"x(<|im_start|>system
# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
<|im_start|>user
Weather in Paris?<|im_end|>
<|im_start|>assistant
<tool_call>
{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}
</tool_call><|im_end|>
<|im_start|>user
<tool_response>
sunny, 21C
</tool_response><|im_end|>
<|im_start|>assistant
)x";
constexpr const char* kQwen3Reasoning = R"x(<|im_start|>user
2+2?<|im_end|>
<|im_start|>assistant
4<|im_end|>
<|im_start|>user
3+3?<|im_end|>
<|im_start|>assistant
<think>
Add again.
</think>

6<|im_end|>
)x";
constexpr const char* kQwen3NoThinking = R"x(<|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
<think>

</think>

)x";
constexpr const char* kLlama3Tools = R"x(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Environment: ipython
Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>

Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.

Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.

{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {
                    "type": "string"
                }
            },
            "required": [
                "city"
            ]
        }
    }
}

Weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)x";
constexpr const char* kChatmlDefaultSystem = R"x(<|im_start|>system
You are a helpful assistant.<|im_end|>
<|im_start|>user
Hello!<|im_end|>
<|im_start|>assistant
)x";


using Conv = std::vector<ChatMessage>;

// The conversation of model-spec §7.
std::vector<ChatMessage> SpecConversation() {
  return {{"system", "You are a helpful assistant.", "", {}},
          {"user", "Hello!", "", {}},
          {"assistant", "Hi! How can I help?", "", {}},
          {"user", "What is 2+2?", "", {}}};
}

std::string ErrorText(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

fs::path TempFile(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("r1_chat_template_test_" + name);
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

TEST(ChatTemplateTest, Spec73DeepseekV3) {
  const ChatTemplate t = ChatTemplate::Named("deepseek-v3");
  ChatRenderOptions opts;
  EXPECT_EQ(t.Render(SpecConversation(), opts),
            "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Hello!<｜Assistant｜>Hi! How "
            "can I help?<｜end▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜>");
  opts.add_generation_prompt = false;
  EXPECT_EQ(t.Render(Conv{{"system", "A.", "", {}}, {"user", "Hi", "", {}}, {"system", "B.", "", {}}},
                     ChatRenderOptions{}),
            "<｜begin▁of▁sentence｜>A.\n\nB.<｜User｜>Hi<｜Assistant｜>");
}

TEST(ChatTemplateTest, Spec74DeepseekR1DropsEarlierReasoning) {
  auto conv = SpecConversation();
  conv[2].content = "<think>\nThe user greets me.\n</think>\n\nHi! How can I help?";
  const std::string want =
      "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>Hello!<｜Assistant｜>\n\nHi! How "
      "can I help?<｜end▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n";
  EXPECT_EQ(ChatTemplate::Named("deepseek-r1").Render(conv, {}), want);
  // §7.5: the distill template renders this conversation identically.
  EXPECT_EQ(ChatTemplate::Named("deepseek-r1-distill").Render(conv, {}), want);
}

TEST(ChatTemplateTest, Spec76Chatml) {
  EXPECT_EQ(ChatTemplate::Named("chatml").Render(SpecConversation(), {}),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!"
            "<|im_end|>\n<|im_start|>assistant\nHi! How can I help?<|im_end|>\n<|im_start|>user\n"
            "What is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  // Without a system message, Qwen2-Instruct's default one is inserted.
  EXPECT_EQ(ChatTemplate::Named("chatml").Render(Conv{{"user", "Hello!", "", {}}}, {}),
            kChatmlDefaultSystem);
}

TEST(ChatTemplateTest, Spec77Llama31) {
  EXPECT_EQ(ChatTemplate::Named("llama3").Render(SpecConversation(), {}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
            "December 2023\nToday Date: 26 Jul 2024\n\nYou are a helpful assistant.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>"
            "assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\n");
  ChatRenderOptions opts;
  opts.extra_vars = {{"date_string", "1 Jan 2025"}};
  EXPECT_NE(ChatTemplate::Named("llama3").Render(SpecConversation(), opts).find(
                "Today Date: 1 Jan 2025\n"),
            std::string::npos);
}

nlohmann::ordered_json WeatherTool() {
  return nlohmann::ordered_json::parse(
      R"({"type": "function", "function": {"name": "get_weather", "description": "Get the weather",)"
      R"( "parameters": {"type": "object", "properties": {"city": {"type": "string"}},)"
      R"( "required": ["city"]}}})");
}

TEST(ChatTemplateTest, DeepseekToolCallsFromChatMessages) {
  ChatMessage call{"assistant", "", "", nlohmann::ordered_json::parse(
      R"({"content": null, "tool_calls": [{"type": "function", "function": {"name": "get_weather",)"
      R"( "arguments": "{\"city\": \"Paris\"}"}}]})")};
  const std::vector<ChatMessage> conv = {{"user", "Weather in Paris?", "", {}}, call,
                                         {"tool", "sunny, 21C", "", {}},
                                         {"assistant", "Sunny and 21C.", "", {}},
                                         {"user", "Thanks!", "", {}}};
  EXPECT_EQ(ChatTemplate::Named("deepseek-v3").Render(conv, {}), kV3Tools);
  EXPECT_EQ(ChatTemplate::Named("deepseek-r1").Render(conv, {}), kR1Tools);
}

TEST(ChatTemplateTest, Qwen3ToolsKeepJsonKeyOrder) {
  const auto messages = nlohmann::ordered_json::parse(
      R"([{"role": "user", "content": "Weather in Paris?"},)"
      R"( {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function":)"
      R"( {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},)"
      R"( {"role": "tool", "content": "sunny, 21C"}])");
  ChatRenderOptions opts;
  opts.extra_vars = {{"tools", nlohmann::ordered_json::array({WeatherTool()})}};
  EXPECT_EQ(ChatTemplate::Named("qwen3").Render(messages, opts), kQwen3Tools);
}

TEST(ChatTemplateTest, Qwen3ReasoningContentAndEnableThinking) {
  const std::vector<ChatMessage> conv = {{"user", "2+2?", "", {}},
                                         {"assistant", "4", "Add them.", {}},
                                         {"user", "3+3?", "", {}},
                                         {"assistant", "6", "Add again.", {}}};
  ChatRenderOptions no_prompt;
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(ChatTemplate::Named("qwen3").Render(conv, no_prompt), kQwen3Reasoning);
  ChatRenderOptions opts;
  opts.extra_vars = {{"enable_thinking", false}};
  EXPECT_EQ(ChatTemplate::Named("qwen3").Render(Conv{{"user", "Hi", "", {}}}, opts), kQwen3NoThinking);
}

TEST(ChatTemplateTest, Llama3ToolsInFirstUserMessage) {
  ChatRenderOptions opts;
  opts.extra_vars = {{"tools", nlohmann::ordered_json::array({WeatherTool()})}};
  EXPECT_EQ(ChatTemplate::Named("llama3").Render(
                Conv{{"system", "Be brief.", "", {}}, {"user", "Weather in Paris?", "", {}}}, opts),
            kLlama3Tools);
  // The template refuses tools without a user message, through raise_exception.
  EXPECT_EQ(ErrorText([&] { ChatTemplate::Named("llama3").Render(Conv{{"system", "S", "", {}}}, opts); }),
            "Cannot put tools in the first user message when there's no first user message!");
}

TEST(ChatTemplateTest, PlainJsonMessagesAndBosOverride) {
  const nlohmann::json messages = {{{"role", "user"}, {"content", "Hi"}}};
  ChatRenderOptions opts;
  EXPECT_EQ(ChatTemplate::Named("deepseek-v3").Render(messages, opts),
            "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>");
  opts.bos_token = "<BOS>";
  EXPECT_EQ(ChatTemplate::Named("deepseek-v3").Render(messages, opts), "<BOS><｜User｜>Hi<｜Assistant｜>");
}

TEST(ChatTemplateTest, NamedListsValidNamesOnError) {
  const std::string msg = ErrorText([] { ChatTemplate::Named("vicuna"); });
  EXPECT_NE(msg.find("vicuna"), std::string::npos) << msg;
  for (const auto& n : ChatTemplate::BuiltinNames()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  EXPECT_EQ(ChatTemplate::BuiltinNames().size(), 6u);
}

TEST(ChatTemplateTest, OpensThinkingOnlyForR1Templates) {
  EXPECT_TRUE(ChatTemplate::Named("deepseek-r1").opens_thinking());
  EXPECT_TRUE(ChatTemplate::Named("deepseek-r1-distill").opens_thinking());
  for (const char* n : {"deepseek-v3", "qwen3", "chatml", "llama3"}) {
    EXPECT_FALSE(ChatTemplate::Named(n).opens_thinking()) << n;
  }
  EXPECT_TRUE(ChatTemplate::FromString("{{ 'x' }}{% if add_generation_prompt %}<think>\n{% endif %}")
                  .opens_thinking());
}

TEST(ChatTemplateTest, FromFlagTakesNamesAndFiles) {
  EXPECT_EQ(ChatTemplate::FromFlag("qwen3").name(), "qwen3");
  const fs::path jinja = TempFile("custom.jinja",
                                  "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n"
                                  "{% endfor %}{% if add_generation_prompt %}>{% endif %}\n");
  const ChatTemplate custom = ChatTemplate::FromFlag(jinja.string());
  EXPECT_EQ(custom.name(), jinja.string());
  EXPECT_EQ(custom.Render(Conv{{"user", "hi", "", {}}}, {}), "[user] hi\n>");
  const fs::path cfg = TempFile(
      "tokenizer_config.json",
      R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"})");
  const ChatTemplate from_cfg = ChatTemplate::FromFlag(cfg.string());
  EXPECT_EQ(from_cfg.Render(Conv{{"user", "hi", "", {}}}, {}), "<s>hi</s>");
  const std::string msg = ErrorText([] { ChatTemplate::FromFlag("/no/such/template.jinja"); });
  EXPECT_NE(msg.find("/no/such/template.jinja"), std::string::npos) << msg;
  EXPECT_NE(msg.find("deepseek-r1"), std::string::npos) << msg;
  fs::remove(jinja);
  fs::remove(cfg);
}

TEST(ChatTemplateTest, FileWithMultipleNamedTemplatesUsesDefault) {
  const fs::path cfg = TempFile(
      "multi_config.json",
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ messages|length }}"}]})");
  EXPECT_EQ(ChatTemplate::FromFile(cfg.string()).Render(nlohmann::ordered_json::array(), {}), "D0");
  fs::remove(cfg);
}

TEST(ChatTemplateTest, ForModelPrefersTheConfigTemplate) {
  // A re-indented copy of a built-in is still recognised, and gets its BOS.
  std::string reflowed = ChatTemplate::Named("deepseek-r1").source();
  for (size_t p = reflowed.find("{%-"); p != std::string::npos; p = reflowed.find("{%-", p + 4)) {
    reflowed.insert(p, "\n  ");
  }
  const ChatTemplate r1 = ChatTemplate::ForModel(reflowed, "deepseek_v3");
  EXPECT_EQ(r1.name(), "deepseek-r1");
  EXPECT_TRUE(r1.opens_thinking());
  EXPECT_EQ(r1.Render(Conv{{"user", "Hi", "", {}}}, {}),
            "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n");
  // An unknown template is evaluated as given.
  const ChatTemplate other = ChatTemplate::ForModel("{{ messages[0]['content'] }}!", "llama");
  EXPECT_EQ(other.name(), "model");
  EXPECT_EQ(other.Render(Conv{{"user", "Hi", "", {}}}, {}), "Hi!");
}

TEST(ChatTemplateTest, ForModelFallsBackOnArchitecture) {
  EXPECT_EQ(ChatTemplate::ForModel("", "deepseek_v3").name(), "deepseek-v3");
  EXPECT_EQ(ChatTemplate::ForModel("", "deepseek_v2").name(), "deepseek-v3");
  EXPECT_EQ(ChatTemplate::ForModel("  \n", "qwen2").name(), "chatml");
  EXPECT_EQ(ChatTemplate::ForModel("", "llama").name(), "llama3");
  const std::string msg = ErrorText([] { ChatTemplate::ForModel("", "mamba"); });
  EXPECT_NE(msg.find("mamba"), std::string::npos) << msg;
}

TEST(ChatTemplateTest, SyntaxErrorsNameTheTemplate) {
  const std::string msg = ErrorText([] { ChatTemplate::FromString("{% if x %}", "mine"); });
  EXPECT_NE(msg.find("'mine'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 1 column 4"), std::string::npos) << msg;
}

}  // namespace
}  // namespace r1
