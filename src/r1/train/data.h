// Training data for `r1 train`: reading, validating and tokenizing the --data files up front,
// packing them into fixed-length rows, holding out evaluation rows, and handing out batches in a
// seeded order that a checkpoint can resume exactly.
//
// Formats, chosen per file by extension:
//   *.safetensors  pre-tokenized: tensor `input_ids` (or `train.input_ids`, as in the golden
//                  reference files), I64 or I32, shape [N, L]; each row is one
//                  training row as is (T = L-1), loss on every target.
//   *.jsonl        one JSON object a line: {"text": "..."} documents, or with --sft
//                  {"messages": [{"role": ..., "content": ...}, ...]} conversations.
//   anything else  plain UTF-8 text; the whole file is one document.
// Text documents (files and JSONL lines alike) are tokenized, BOS first when the tokenizer adds
// one, EOS after each, concatenated across all files in the order given, and cut into rows of
// T+1 tokens with stride T+1, dropping the ragged tail. Document boundaries are not respected,
// as in standard pretraining packing. Pre-tokenized and text files cannot be mixed, nor SFT and
// non-SFT files.
//
// --sft: one conversation a row, rendered with the chat template and tokenized (the render holds
// the BOS). Loss counts only on the tokens an assistant message adds: its content and the
// end-of-turn token the template writes after it (the tokenizer's EOS, e.g. <｜end▁of▁sentence｜>
// or <|im_end|>), not the assistant header (<｜Assistant｜>, "<|im_start|>assistant\n") and not
// anything the template writes after the EOS (Qwen's "\n"). Rows are right-padded with EOS under
// mask 0; longer conversations are cut to T+1 tokens (see warnings()).
//
// How assistant tokens are found, for any template: for assistant message i, the render of
// messages[0..i) with the generation prompt shares its leading tokens with the whole render up to
// where the assistant's own tokens begin; the render of messages[0..i] ends where they end. When
// a template renders an earlier turn differently once later turns follow (Qwen3 adds an empty
// <think></think> only to the latest turn), the end is the longest tail of the turn's own tokens
// that the whole render continues with at that point. A conversation where neither holds is an
// error naming its line.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace r1 {

class Tokenizer;
class ChatTemplate;

// One training batch: B rows of T+1 tokens. Inputs are tokens[r][0..T-1], the next-token targets
// tokens[r][1..T]; loss_mask[r][i] says whether the target tokens[r][i+1] counts in the loss.
// (Multi-token prediction at depth k uses target tokens[r][i+k+1] with mask loss_mask[r][i+k].)
struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens;     // [B * (T+1)]
  std::vector<uint8_t> loss_mask;  // [B * T], 0 or 1
  int64_t CountedTargets() const;  // number of ones in loss_mask
};

enum class DataKind { kPackedText, kSft, kPretokenized };

struct DataOptions {
  std::vector<std::string> files;  // --data, repeatable; concatenated in this order
  // --eval-data: when given, evaluation rows come only from these (eval_fraction is ignored).
  std::vector<std::string> eval_files;
  bool sft = false;  // --sft
  // T, targets per row. Must be > 0 for text and SFT data; for pre-tokenized data 0 takes L-1
  // from the files, and any other value must equal it.
  int64_t seq_len = 0;
  int64_t batch = 0;  // B, rows per Next()
  bool shuffle = true;
  uint64_t seed = 0;
  // Share of the rows held out for evaluation when there are no eval_files: the last
  // ceil(rows * eval_fraction) rows before shuffling. In [0, 1).
  double eval_fraction = 0.0;
  // When > 0, every token id must be below it (the model's vocabulary).
  int64_t vocab_size = 0;
};

class DataSet {
 public:
  // Reads, validates and tokenizes everything up front, so bad input fails before training
  // starts; every problem is an r1::Error naming the file (and line, row or byte offset).
  // `tok` may be null only for pre-tokenized data; `chat_template` is needed only for --sft.
  // `progress` gets the fraction of input bytes processed, in [0, 1].
  static DataSet Build(const DataOptions& opts, const Tokenizer* tok,
                       const ChatTemplate* chat_template,
                       const std::function<void(double)>& progress = {});

  // The next training batch of B rows. Rows come in order of the current epoch's permutation
  // (the identity without shuffle); a batch that runs past the last row continues with the next
  // epoch, so step s without shuffle holds rows s*B .. s*B+B-1, modulo the row count.
  Batch Next();
  // The held-out rows in fixed order, B per batch (the last may have fewer); at most
  // `max_batches` batches when >= 0. Empty when nothing is held out.
  std::vector<Batch> EvalBatches(int64_t max_batches = -1) const;

  DataKind kind() const { return kind_; }
  int64_t seq_len() const { return T_; }
  int64_t batch() const { return B_; }
  int64_t train_rows() const;
  int64_t eval_rows() const;
  // Targets that count in the loss over all training rows (rows * T for packed text).
  int64_t train_tokens() const { return train_targets_; }
  int64_t epoch() const { return epoch_; }
  // Rows of the current epoch already handed out.
  int64_t cursor() const { return cursor_; }
  // Things worth telling the user that do not stop training, e.g. "3 of 120 conversations are
  // longer than 1025 tokens and were cut".
  const std::vector<std::string>& warnings() const { return warnings_; }
  // One line for the log: files, tokens, rows, held-out rows, dropped tail.
  const std::string& summary() const { return summary_; }

  // The position in the data, for a checkpoint: epoch, cursor, seed, shuffle, and a fingerprint
  // of the training rows. RestoreState continues exactly where SaveState was taken, adopting the
  // saved seed and shuffle setting; a state saved for different training rows (count, length or
  // contents) is an r1::Error.
  nlohmann::json SaveState() const;
  void RestoreState(const nlohmann::json& state);

  // Rows as stored: `width` = T+1 tokens each, mask `width-1` each. Public for the tests and for
  // tools that want to inspect the packed data.
  struct Rows {
    int64_t width = 0;
    std::vector<int32_t> tokens;
    std::vector<uint8_t> mask;
    int64_t count() const { return width > 0 ? static_cast<int64_t>(tokens.size()) / width : 0; }
  };
  const Rows& train_data() const { return train_; }
  const Rows& eval_data() const { return eval_; }

 private:
  void StartEpoch();
  int64_t RowAt(int64_t position) const;

  DataKind kind_ = DataKind::kPackedText;
  int64_t T_ = 0, B_ = 0;
  Rows train_, eval_;
  int64_t train_targets_ = 0;
  uint64_t fingerprint_ = 0;
  bool shuffle_ = true;
  uint64_t seed_ = 0;
  int64_t epoch_ = 0, cursor_ = 0;
  std::vector<int64_t> perm_;  // this epoch's order; empty without shuffle
  std::vector<std::string> warnings_;
  std::string summary_;
};

// The generator behind the epoch permutations: splitmix64, written out so the order of rows is
// the same with every compiler and standard library (std::shuffle's is not).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, bound), without modulo bias; bound > 0.
  uint64_t Below(uint64_t bound);

 private:
  uint64_t state_;
};

// The permutation of [0, n) used for `epoch` under `seed` (Fisher-Yates from the back).
std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace r1
