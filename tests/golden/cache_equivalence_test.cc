// The KV cache and the batched step must not change any number: prefill equals one token at a
// time, a batch of sequences of different lengths equals each sequence run alone, and a step
// that mixes a prefill with decodes of other sequences equals running them separately.
#include <gtest/gtest.h>

#include "golden_util.h"
#include "r1/core/error.h"
#include "r1/model/model.h"

namespace r1 {
namespace {

// Far below the golden tolerance: only float summation order may differ.
constexpr float kTol = 2e-4f;

using Case = testing::ModelCase;

std::vector<int32_t> Tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> t(n);
  uint32_t x = seed * 2654435761u + 12345u;
  for (auto& v : t) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<int32_t>((x >> 8) % vocab);
  }
  return t;
}

class CacheEquivalence : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    model_ = Model::Load(testing::GoldenDir() + "/" + GetParam().folder + "/model");
    model_->set_mla_mode(GetParam().mode);
    V_ = model_->config().vocab_size;
  }
  // Logits of every position of `tokens`, computed in one prefill.
  std::vector<float> Prefill(const std::vector<int32_t>& tokens) {
    KVCache cache = model_->NewCache();
    SeqChunk c{cache.AddSequence(), tokens};
    StepOutput out;
    model_->Step(cache, {&c, 1}, {.all_logits = true}, out);
    return out.logits;
  }
  std::unique_ptr<Model> model_;
  int64_t V_ = 0;
};

TEST_P(CacheEquivalence, PrefillEqualsSingleTokenSteps) {
  const auto tokens = Tokens(13, V_, 1);
  const auto want = Prefill(tokens);
  KVCache cache = model_->NewCache();
  const int slot = cache.AddSequence();
  StepOutput out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    SeqChunk c{slot, std::span<const int32_t>(&tokens[i], 1)};
    model_->Step(cache, {&c, 1}, {}, out);
    ASSERT_EQ(out.rows, 1);
    EXPECT_LE(testing::MaxAbsDiff(out.logits.data(), want.data() + i * V_, V_), kTol)
        << "position " << i;
  }
  EXPECT_EQ(cache.Length(slot), 13);
}

TEST_P(CacheEquivalence, PrefillInChunksEqualsOnePrefill) {
  const auto tokens = Tokens(17, V_, 2);
  const auto want = Prefill(tokens);
  KVCache cache = model_->NewCache();
  const int slot = cache.AddSequence();
  StepOutput out;
  size_t done = 0;
  for (size_t len : {5u, 1u, 7u, 4u}) {
    SeqChunk c{slot, std::span<const int32_t>(tokens.data() + done, len)};
    model_->Step(cache, {&c, 1}, {.all_logits = true}, out);
    EXPECT_LE(testing::MaxAbsDiff(out.logits.data(), want.data() + done * V_, len * V_), kTol)
        << "chunk at " << done;
    done += len;
  }
}

// A long prefill takes the many-token paths (BF16/int8 GEMMs, blocked attention, experts one
// after another with their tokens grouped); chunks of 6 take the few-token ones (streaming
// products, per-query attention, experts in parallel). Both must give the same numbers.
TEST_P(CacheEquivalence, LongPrefillEqualsSmallChunks) {
  const auto tokens = Tokens(120, V_, 9);
  const auto want = Prefill(tokens);
  KVCache cache = model_->NewCache();
  const int slot = cache.AddSequence();
  StepOutput out;
  for (size_t done = 0; done < tokens.size(); done += 6) {
    SeqChunk c{slot, std::span<const int32_t>(tokens.data() + done, 6)};
    model_->Step(cache, {&c, 1}, {.all_logits = true}, out);
    EXPECT_LE(testing::MaxAbsDiff(out.logits.data(), want.data() + done * V_, 6 * V_), kTol)
        << "chunk at " << done;
  }
}

TEST_P(CacheEquivalence, BatchOfDifferentLengthsEqualsEachAlone) {
  const std::vector<std::vector<int32_t>> seqs = {Tokens(5, V_, 3), Tokens(11, V_, 4),
                                                  Tokens(1, V_, 5), Tokens(8, V_, 6)};
  KVCache cache = model_->NewCache();
  std::vector<SeqChunk> chunks;
  for (const auto& s : seqs) chunks.push_back({cache.AddSequence(), s});
  StepOutput out;
  model_->Step(cache, chunks, {.all_logits = true}, out);
  int64_t row = 0;
  for (const auto& s : seqs) {
    const auto alone = Prefill(s);
    EXPECT_LE(testing::MaxAbsDiff(out.logits.data() + row * V_, alone.data(), s.size() * V_), kTol);
    row += static_cast<int64_t>(s.size());
  }

  // Then decode all of them together for a few steps, at different positions, and compare with
  // each sequence extended alone.
  std::vector<std::vector<int32_t>> full = seqs;
  for (int step = 0; step < 4; ++step) {
    std::vector<int32_t> next(seqs.size());
    std::vector<SeqChunk> dec;
    for (size_t i = 0; i < seqs.size(); ++i) {
      next[i] = static_cast<int32_t>((step * 31 + i * 17 + 3) % V_);
      full[i].push_back(next[i]);
      dec.push_back({chunks[i].slot, std::span<const int32_t>(&next[i], 1)});
    }
    model_->Step(cache, dec, {}, out);
    for (size_t i = 0; i < seqs.size(); ++i) {
      const auto alone = Prefill(full[i]);
      EXPECT_LE(testing::MaxAbsDiff(out.logits.data() + i * V_,
                                    alone.data() + (full[i].size() - 1) * V_, V_),
                kTol)
          << "sequence " << i << " step " << step;
    }
  }
}

TEST_P(CacheEquivalence, MixedPrefillAndDecodeInOneStep) {
  const auto a = Tokens(9, V_, 7), b = Tokens(6, V_, 8);
  KVCache cache = model_->NewCache();
  const int sa = cache.AddSequence(), sb = cache.AddSequence();
  StepOutput out;
  SeqChunk first{sa, std::span<const int32_t>(a.data(), 8)};
  model_->Step(cache, {&first, 1}, {}, out);
  // Sequence a decodes its 9th token while b is prefilled in the same step.
  std::vector<SeqChunk> mixed = {{sa, std::span<const int32_t>(a.data() + 8, 1)}, {sb, b}};
  model_->Step(cache, mixed, {}, out);
  const auto wa = Prefill(a), wb = Prefill(b);
  EXPECT_LE(testing::MaxAbsDiff(out.logits.data(), wa.data() + 8 * V_, V_), kTol);
  EXPECT_LE(testing::MaxAbsDiff(out.logits.data() + V_, wb.data() + 5 * V_, V_), kTol);
}

TEST_P(CacheEquivalence, TruncateThenContinue) {
  // Rejected speculative tokens are dropped by truncating the cache.
  const auto t = Tokens(10, V_, 9);
  const auto want = Prefill(t);
  KVCache cache = model_->NewCache();
  const int slot = cache.AddSequence();
  StepOutput out;
  auto wrong = t;
  wrong[7] = (wrong[7] + 1) % V_;
  SeqChunk c{slot, std::span<const int32_t>(wrong.data(), 9)};
  model_->Step(cache, {&c, 1}, {}, out);
  cache.Truncate(slot, 7);
  SeqChunk rest{slot, std::span<const int32_t>(t.data() + 7, 3)};
  model_->Step(cache, {&rest, 1}, {}, out);
  EXPECT_LE(testing::MaxAbsDiff(out.logits.data(), want.data() + 9 * V_, V_), kTol);
}

TEST_P(CacheEquivalence, BadStepsAreErrors) {
  KVCache cache = model_->NewCache();
  const int slot = cache.AddSequence();
  StepOutput out;
  std::vector<int32_t> bad = {0, static_cast<int32_t>(V_)};
  SeqChunk c{slot, bad};
  EXPECT_THROW(model_->Step(cache, {&c, 1}, {}, out), Error);
  SeqChunk missing{slot + 5, std::span<const int32_t>(bad.data(), 1)};
  EXPECT_THROW(model_->Step(cache, {&missing, 1}, {}, out), Error);
  std::vector<SeqChunk> twice = {{slot, std::span<const int32_t>(bad.data(), 1)},
                                 {slot, std::span<const int32_t>(bad.data(), 1)}};
  EXPECT_THROW(model_->Step(cache, twice, {}, out), Error);
  EXPECT_EQ(cache.Length(slot), 0);
}

INSTANTIATE_TEST_SUITE_P(Golden, CacheEquivalence, ::testing::ValuesIn(testing::AllModelCases()), testing::ModelCaseName);

}  // namespace
}  // namespace r1
