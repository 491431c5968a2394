// Supervised fine-tuning rows: conversations rendered with the chat template, and a mask over the
// tokens each assistant message adds, found by comparing renders of the conversation's prefixes.
#include "r1/train/data_internal.h"

#include <algorithm>

#include "r1/core/error.h"
#include "r1/tokenizer/chat_template.h"
#include "r1/tokenizer/tokenizer.h"

namespace r1::data_detail {

namespace {

const char* const kRoles[] = {"system", "user", "assistant", "tool"};

size_t CommonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// The messages array of one SFT line, checked so that the template never sees a message it would
// silently skip (an unknown role renders as nothing in most templates).
const nlohmann::ordered_json& CheckedMessages(const nlohmann::ordered_json& line,
                                              const std::string& where) {
  const auto it = line.find("messages");
  if (it == line.end() || !it->is_array()) {
    throw Error(where + ": no \"messages\" array" +
                (line.contains("text") ? " (this looks like plain text data; drop --sft)" : ""));
  }
  if (it->empty()) throw Error(where + ": \"messages\" is empty");
  bool any_assistant = false;
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& m = (*it)[i];
    const std::string what = where + ": message " + std::to_string(i);
    if (!m.is_object()) throw Error(what + " is not a JSON object");
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) throw Error(what + " has no \"role\" string");
    const std::string r = role->get<std::string>();
    if (std::find(std::begin(kRoles), std::end(kRoles), r) == std::end(kRoles)) {
      throw Error(what + " has role \"" + r + "\"; expected system, user, assistant or tool");
    }
    const auto content = m.find("content");
    if (content == m.end()) throw Error(what + " (" + r + ") has no \"content\"");
    // Null content is how an assistant turn that only calls tools is written.
    const bool tool_call_only = r == "assistant" && content->is_null() && m.contains("tool_calls");
    if (!content->is_string() && !tool_call_only) {
      throw Error(what + " (" + r + "): \"content\" must be a string, not " + content->type_name());
    }
    any_assistant |= r == "assistant";
  }
  if (!any_assistant) throw Error(where + ": no assistant message, so nothing to train on");
  return *it;
}

}  // namespace

SftTokens TokenizeConversation(const nlohmann::ordered_json& line, const Tokenizer& tok,
                               const ChatTemplate& tmpl, const std::string& where) {
  const nlohmann::ordered_json& messages = CheckedMessages(line, where);
  ChatRenderOptions opts;
  opts.bos_token = tok.bos_token();
  opts.eos_token = tok.eos_token();
  if (line.contains("tools")) opts.extra_vars["tools"] = line.at("tools");

  auto encode = [&](size_t n, bool generation_prompt) {
    nlohmann::ordered_json prefix = nlohmann::ordered_json::array();
    for (size_t i = 0; i < n; ++i) prefix.push_back(messages[i]);
    ChatRenderOptions o = opts;
    o.add_generation_prompt = generation_prompt;
    try {
      // The render holds the template's BOS already; none is added here.
      return tok.Encode(tmpl.Render(prefix, o));
    } catch (const Error& e) {
      throw Error(where + ": chat template '" + tmpl.name() + "' failed on the first " +
                  std::to_string(n) + " messages: " + e.what());
    }
  };

  SftTokens out;
  out.tokens = encode(messages.size(), false);
  const std::vector<int32_t>& full = out.tokens;
  out.assistant.assign(full.size(), 0);
  const std::optional<int32_t> eos = tok.eos_id();

  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].at("role") != "assistant") continue;
    const std::vector<int32_t> before = encode(i, true);
    const std::vector<int32_t> upto = i + 1 == messages.size() ? full : encode(i + 1, false);
    const size_t start = CommonPrefix(before, full);
    size_t end;
    if (CommonPrefix(upto, full) == upto.size()) {
      end = upto.size();
    } else {
      // The template renders this turn differently once later turns follow; the turn's own
      // tokens are then matched from their end, which is where such differences do not reach.
      const size_t own = std::min(CommonPrefix(before, upto), upto.size());
      const size_t seg = upto.size() - own;
      size_t k = std::min(seg, full.size() - start);
      while (k > 0 && !std::equal(upto.end() - static_cast<std::ptrdiff_t>(k), upto.end(),
                                  full.begin() + static_cast<std::ptrdiff_t>(start))) {
        --k;
      }
      if (k == 0) {
        throw Error(where + ": cannot find the tokens of message " + std::to_string(i) +
                    " (assistant) in the rendered conversation: chat template '" + tmpl.name() +
                    "' renders it differently when later messages follow");
      }
      end = start + k;
    }
    if (end <= start) {
      throw Error(where + ": message " + std::to_string(i) +
                  " (assistant) adds no tokens to the rendered conversation with chat template '" +
                  tmpl.name() + "'");
    }
    // Generation stops at the end-of-turn token, so what a template writes after it (a newline
    // before the next turn) is never the model's to produce.
    if (eos) {
      for (size_t p = end; p > start; --p) {
        if (full[p - 1] == *eos) {
          end = p;
          break;
        }
      }
    }
    std::fill(out.assistant.begin() + static_cast<std::ptrdiff_t>(start),
              out.assistant.begin() + static_cast<std::ptrdiff_t>(end), 1);
  }
  return out;
}

SftRows ReadSft(const std::vector<std::string>& files, int64_t T, const Tokenizer& tok,
                const ChatTemplate& tmpl, int64_t vocab_size, ByteProgress& progress) {
  if (!tok.eos_id()) throw Error("the tokenizer has no EOS token, which pads SFT rows");
  const int32_t pad = *tok.eos_id();
  SftRows out;
  out.rows.width = T + 1;
  for (const std::string& path : files) {
    const std::string contents = ReadUtf8File(path);
    size_t reported = 0;
    ForEachJsonObject(
        path, contents, [&](int64_t line, const nlohmann::ordered_json& j, size_t read) {
          const std::string where = path + ":" + std::to_string(line);
          const SftTokens conv = TokenizeConversation(j, tok, tmpl, where);
          const int64_t len = static_cast<int64_t>(conv.tokens.size());
          for (int32_t id : conv.tokens) {
            if (vocab_size > 0 && id >= vocab_size) {
              throw Error(where + ": token id " + std::to_string(id) +
                          " is outside the model's vocabulary of " + std::to_string(vocab_size) +
                          " (is the tokenizer the model's?)");
            }
          }
          ++out.conversations;
          if (len > T + 1) ++out.truncated;
          const int64_t kept = std::min(len, T + 1);
          out.rows.tokens.insert(out.rows.tokens.end(), conv.tokens.begin(),
                                 conv.tokens.begin() + kept);
          out.rows.tokens.insert(out.rows.tokens.end(), static_cast<size_t>(T + 1 - kept), pad);
          bool any = false;
          for (int64_t p = 0; p < T; ++p) {
            const uint8_t m = p + 1 < kept ? conv.assistant[static_cast<size_t>(p + 1)] : 0;
            out.rows.mask.push_back(m);
            any |= m != 0;
          }
          if (!any) ++out.no_targets;
          progress.Add(static_cast<double>(read - reported));
          reported = read;
        });
    progress.Add(static_cast<double>(contents.size() - reported));
  }
  return out;
}

}  // namespace r1::data_detail
