#include "r1/tokenizer/tokenizer.h"
#include "r1/tokenizer/unicode_utf8.h"

namespace r1 {

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special)
    : tok_(&tok), skip_special_(skip_special) {}

std::string StreamDecoder::Push(int32_t id) {
  if (skip_special_ && tok_->IsSpecial(id)) return {};
  pending_ += tok_->TokenBytes(id);
  // Repairing piecewise with incomplete tails held back gives the same text as Decode's
  // repairing the whole sequence at once.
  std::string out;
  const size_t used = tok::AppendUtf8Lossy(pending_, /*final=*/false, out);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out;
  tok::AppendUtf8Lossy(pending_, /*final=*/true, out);
  pending_.clear();
  return out;
}

}  // namespace r1
