// r1 tokenizer train: learn a byte-level BPE from text and write a Hugging Face tokenizer.json.
#include <cstdio>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/tokenizer/bpe_train.h"

namespace r1::cli {

namespace {
struct TrainArgs {
  tok::BpeTrainOptions opts;
  std::string out;
};

int RunTokenizerTrain(const TrainArgs& a) {
  const tok::BpeTrainStats s = tok::TrainBpeTokenizer(a.opts, a.out);
  const double mb = static_cast<double>(s.input_bytes) / 1e6;
  std::printf("read %.2f MB: %lld words (%lld distinct) in %.2fs\n", mb,
              static_cast<long long>(s.words), static_cast<long long>(s.distinct_words),
              s.count_seconds);
  std::printf("learned %lld merges in %.2fs; vocab size %lld (requested %lld)\n",
              static_cast<long long>(s.merges), s.merge_seconds,
              static_cast<long long>(s.vocab_size), static_cast<long long>(a.opts.vocab_size));
  if (s.tokens > 0) {
    std::printf("training text: %lld tokens, %.2f bytes/token\n", static_cast<long long>(s.tokens),
                static_cast<double>(s.input_bytes) / static_cast<double>(s.tokens));
  }
  std::printf("wrote %s\n", a.out.c_str());
  return 0;
}
}  // namespace

void AddTokenizerTrain(CLI::App& app, Action& action) {
  // `tokenizer` groups tokenizer tools; reuse it if another command registered it already.
  CLI::App* group = nullptr;
  const auto found =
      app.get_subcommands([](CLI::App* s) { return s->get_name() == "tokenizer"; });
  if (!found.empty()) {
    group = found.front();
  } else {
    group = app.add_subcommand("tokenizer", "Tokenizer tools (see `r1 tokenizer train --help`)");
    group->require_subcommand(1);
  }

  auto a = std::make_shared<TrainArgs>();
  auto* cmd = group->add_subcommand(
      "train",
      "Learn a byte-level BPE tokenizer from text files and write a Hugging Face tokenizer.json "
      "(readable by `r1 tokenize` and by HF tokenizers) plus tokenizer_config.json beside it. "
      "The vocabulary is the 256 byte symbols, then the merges, then the special tokens; "
      "--vocab-size counts all of them. Files ending in .jsonl are read as one JSON object a "
      "line. Ties between equally frequent pairs go to the lexicographically smallest pair, so "
      "the output is deterministic.\n"
      "Example: r1 tokenizer train --input corpus.txt --vocab-size 8000 --out tok/tokenizer.json");
  cmd->add_option("--input", a->opts.inputs, "Text files (.jsonl: one {\"text\": ...} a line)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--vocab-size", a->opts.vocab_size,
                  "Total vocabulary size, byte symbols and special tokens included")
      ->required();
  cmd->add_option("--out", a->out, "tokenizer.json to write (or a folder to write it into)")
      ->required();
  cmd->add_option("--pre-tokenizer", a->opts.pre_tokenizer, "Word-splitting rules")
      ->check(CLI::IsMember(tok::BpePreTokenizerNames()))
      ->capture_default_str();
  cmd->add_option("--min-frequency", a->opts.min_frequency,
                  "Stop merging when the best pair occurs fewer times than this")
      ->capture_default_str();
  cmd->add_option("--special-tokens", a->opts.special_tokens,
                  "deepseek: BOS/EOS/pad, <｜User｜>, <｜Assistant｜>, <think>, </think>; none")
      ->check(CLI::IsMember({"deepseek", "none"}))
      ->capture_default_str();
  cmd->add_option("--jsonl-field", a->opts.jsonl_field, "Field holding the text in .jsonl files")
      ->capture_default_str();
  cmd->add_flag("--quiet", a->opts.quiet, "No progress lines");
  cmd->callback([a, &action] { action = [a] { return RunTokenizerTrain(*a); }; });
}

}  // namespace r1::cli
