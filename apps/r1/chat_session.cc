#include "chat_session.h"

#include <filesystem>

#include "r1/core/error.h"

namespace r1::cli {

ChatSession::ChatSession(std::unique_ptr<Model> model, const std::string& tokenizer_path,
                         const std::string& template_flag)
    : model_(std::move(model)),
      tok_(Tokenizer::Load(tokenizer_path.empty() ? model_->dir() : tokenizer_path)),
      template_(template_flag.empty()
                    ? ChatTemplate::ForModel(tok_->chat_template(), ModelTypeName(model_->config().arch))
                    : ChatTemplate::FromFlag(template_flag)) {
  if (tok_->vocab_size() > model_->config().vocab_size)
    throw Error("tokenizer has " + std::to_string(tok_->vocab_size()) +
                " tokens but the model's vocabulary is " +
                std::to_string(model_->config().vocab_size));
}

std::vector<int32_t> ChatSession::PromptIds(const nlohmann::json& messages) const {
  ChatRenderOptions o;
  o.add_generation_prompt = true;
  o.bos_token = tok_->bos_token();
  o.eos_token = tok_->eos_token();
  // The rendered text already holds the BOS the template writes; never add a second one.
  return tok_->Encode(template_.Render(messages, o));
}

std::vector<int32_t> ChatSession::RawPromptIds(const std::string& text) const {
  std::vector<int32_t> ids;
  if (tok_->add_bos() && tok_->bos_id()) ids.push_back(*tok_->bos_id());
  tok_->Encode(text, ids);
  return ids;
}

Reply ChatSession::Generate(
    const std::vector<int32_t>& prompt, GenerateOptions opts, bool in_reasoning,
    const std::function<void(const std::string&, const std::string&)>& on_text) {
  if (opts.stop_ids.empty() && !opts.ignore_eos) {
    for (int64_t id : model_->config().eos_token_ids) opts.stop_ids.push_back(static_cast<int32_t>(id));
    if (tok_->eos_id()) opts.stop_ids.push_back(*tok_->eos_id());
  }
  Reply reply;
  StreamDecoder decoder(*tok_, /*skip_special=*/true);
  ReasoningParser parser(in_reasoning);
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    reply.text += piece;
    const auto d = parser.Push(piece);
    reply.reasoning += d.reasoning;
    reply.content += d.content;
    if (on_text && (!d.reasoning.empty() || !d.content.empty())) on_text(d.reasoning, d.content);
  };
  std::vector<GenerationResult> results;
  if (speculative_) {
    SpeculativeStats spec;
    results.push_back(GenerateSpeculative(*model_, prompt, opts,
                                          [&](int32_t id) { emit(decoder.Push(id)); }, &spec));
    reply.stats = spec.generation;
    reply.speculative = spec;
  } else {
    results = r1::Generate(*model_, {prompt}, opts,
                           [&](int, int32_t id) { emit(decoder.Push(id)); }, &reply.stats);
  }
  emit(decoder.Flush());
  const auto d = parser.Flush();
  reply.reasoning += d.reasoning;
  reply.content += d.content;
  if (on_text && (!d.reasoning.empty() || !d.content.empty())) on_text(d.reasoning, d.content);
  reply.tokens = results[0].tokens;
  reply.finish_reason = results[0].finish_reason;
  return reply;
}

}  // namespace r1::cli
