#include "r1/infer/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "r1/core/error.h"

namespace r1 {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Distinct pseudo-random logits from integer math, identical on every platform.
std::vector<float> MakeLogits(int vocab, uint32_t seed) {
  std::vector<float> logits(vocab);
  uint32_t x = seed * 2654435761u + 1;
  for (int i = 0; i < vocab; ++i) {
    x = x * 1664525u + 1013904223u;
    logits[i] = static_cast<float>(x >> 8) / static_cast<float>(1u << 24) * 20.0f - 10.0f;
  }
  return logits;
}

int Argmax(const std::vector<float>& v) {
  int best = 0;
  for (int i = 1; i < static_cast<int>(v.size()); ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

std::vector<double> Softmax(const std::vector<float>& logits, double temperature) {
  double mx = -1e300;
  for (float l : logits) mx = std::max(mx, l / temperature);
  std::vector<double> p(logits.size());
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) total += p[i] = std::exp(logits[i] / temperature - mx);
  for (double& x : p) x /= total;
  return p;
}

std::vector<int> Counts(Sampler& s, const std::vector<float>& logits, int draws,
                        std::span<const int32_t> history = {}) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    ++counts.at(s.Sample(logits.data(), static_cast<int>(logits.size()), history));
  }
  return counts;
}

// Each count within 5 sigma of its binomial expectation (a false alarm about once in 3 million
// per token, and the seeds are fixed anyway).
void ExpectFrequencies(const std::vector<int>& counts, const std::vector<double>& p, int draws) {
  ASSERT_EQ(counts.size(), p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    const double mean = draws * p[i];
    const double sigma = std::sqrt(draws * p[i] * (1 - p[i]));
    EXPECT_NEAR(counts[i], mean, 5 * sigma + 1e-9) << "token " << i;
  }
}

TEST(SamplerTest, GreedyIsArgmaxWithLowestIndexOnTies) {
  Sampler s({});
  std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 2.5f};
  EXPECT_EQ(s.Sample(logits.data(), 5, {}), 1);
  std::vector<float> big = MakeLogits(150000, 7);
  EXPECT_EQ(s.Sample(big.data(), 150000, {}), Argmax(big));
  std::vector<float> flat(10, 0.25f);
  EXPECT_EQ(s.Sample(flat.data(), 10, {}), 0);
}

TEST(SamplerTest, DoesNotModifyLogits) {
  SamplingParams p;
  p.temperature = 0.7f;
  p.top_k = 3;
  p.repetition_penalty = 1.3f;
  Sampler s(p);
  std::vector<float> logits = MakeLogits(100, 3);
  const std::vector<float> copy = logits;
  std::vector<int32_t> history = {1, 2, 3, 2};
  s.Sample(logits.data(), 100, history);
  EXPECT_EQ(logits, copy);
}

TEST(SamplerTest, NanLogitsCountAsMinusInfinity) {
  Sampler greedy({});
  std::vector<float> logits = {kNaN, 1.0f, kNaN, 0.5f};
  EXPECT_EQ(greedy.Sample(logits.data(), 4, {}), 1);
  std::vector<float> all_bad = {kNaN, -kInf, kNaN};
  EXPECT_EQ(greedy.Sample(all_bad.data(), 3, {}), 0);

  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  p.top_p = 0.9f;
  Sampler sampled(p);
  for (int i = 0; i < 100; ++i) {
    const int32_t t = sampled.Sample(logits.data(), 4, {});
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
  EXPECT_EQ(sampled.Sample(all_bad.data(), 3, {}), 0);
}

TEST(SamplerTest, InfiniteAndExtremeLogitsStayFinite) {
  SamplingParams p;
  p.temperature = 1e-37f;  // 50 / 1e-37 overflows to +inf.
  Sampler s(p);
  std::vector<float> logits = {-3.0f, 50.0f, 0.001f};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.Sample(logits.data(), 3, {}), 1);
  p.temperature = 1.0f;
  Sampler s2(p);
  std::vector<float> with_inf = {0.0f, kInf, 1.0f};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s2.Sample(with_inf.data(), 3, {}), 1);
}

TEST(SamplerTest, SameSeedSameSequenceDifferentSeedDifferent) {
  const std::vector<float> logits = {0.0f, 0.5f, 1.0f, 0.2f, -0.3f};
  auto run = [&](uint64_t seed) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(s.Sample(logits.data(), 5, {}));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_EQ(run(0), run(0));
  EXPECT_NE(run(42), run(43));
  EXPECT_NE(run(0), run(1));
}

TEST(SamplerTest, IndependentSamplersHaveIndependentStreams) {
  // Interleaving two samplers must not change either one's tokens.
  const std::vector<float> logits = MakeLogits(50, 11);
  SamplingParams p;
  p.temperature = 2.0f;
  p.seed = 5;
  Sampler alone(p);
  std::vector<int32_t> expected;
  for (int i = 0; i < 100; ++i) expected.push_back(alone.Sample(logits.data(), 50, {}));

  Sampler a(p);
  p.seed = 6;
  Sampler b(p);
  std::vector<int32_t> got;
  for (int i = 0; i < 100; ++i) {
    got.push_back(a.Sample(logits.data(), 50, {}));
    b.Sample(logits.data(), 50, {});
  }
  EXPECT_EQ(got, expected);
}

TEST(SamplerTest, FixedSeedGivesKnownTokens) {
  // Pins the RNG and the draw: a change here means a seed no longer reproduces old outputs.
  const std::vector<float> logits = {0.0f, 0.5f, 1.0f, 0.2f, -0.3f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 1234;
  Sampler s(p);
  std::vector<int32_t> got;
  for (int i = 0; i < 16; ++i) got.push_back(s.Sample(logits.data(), 5, {}));
  const std::vector<int32_t> expected = {0, 3, 2, 3, 0, 3, 2, 1, 2, 2, 2, 1, 1, 2, 2, 3};
  EXPECT_EQ(got, expected);
}

TEST(SamplerTest, TopK1IsGreedyAtAnyTemperature) {
  const std::vector<float> logits = MakeLogits(1000, 1);
  const int best = Argmax(logits);
  for (float t : {0.1f, 1.0f, 5.0f, 1000.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = 1;
    p.seed = 9;
    Sampler s(p);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(s.Sample(logits.data(), 1000, {}), best) << t;
  }
}

TEST(SamplerTest, TinyTopPIsGreedy) {
  const std::vector<float> logits = MakeLogits(1000, 2);
  const int best = Argmax(logits);
  SamplingParams p;
  p.temperature = 3.0f;
  p.top_p = 1e-6f;
  Sampler s(p);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.Sample(logits.data(), 1000, {}), best);
}

TEST(SamplerTest, MinP1IsGreedy) {
  const std::vector<float> logits = MakeLogits(1000, 3);
  const int best = Argmax(logits);
  SamplingParams p;
  p.temperature = 3.0f;
  p.min_p = 1.0f;
  Sampler s(p);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.Sample(logits.data(), 1000, {}), best);
}

TEST(SamplerTest, FrequenciesMatchSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 77;
  Sampler s(p);
  constexpr int kDraws = 20000;
  ExpectFrequencies(Counts(s, logits, kDraws), Softmax(logits, 1.0), kDraws);
}

TEST(SamplerTest, TemperatureSharpensAndFlattens) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  constexpr int kDraws = 20000;
  std::vector<int> top_counts;
  for (float t : {0.5f, 1.0f, 2.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.seed = 100;
    Sampler s(p);
    const std::vector<int> counts = Counts(s, logits, kDraws);
    ExpectFrequencies(counts, Softmax(logits, t), kDraws);
    top_counts.push_back(counts[1]);
  }
  // Lower temperature: the most likely token more often.
  EXPECT_GT(top_counts[0], top_counts[1]);
  EXPECT_GT(top_counts[1], top_counts[2]);
}

TEST(SamplerTest, TopK2StaysInTopTwo) {
  const std::vector<float> logits = {0.1f, 2.0f, 1.9f, 1.8f, -1.0f, 1.0f, 0.0f, 1.85f};
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_k = 2;
  p.seed = 3;
  Sampler s(p);
  constexpr int kDraws = 5000;
  const std::vector<int> counts = Counts(s, logits, kDraws);
  EXPECT_EQ(counts[1] + counts[2], kDraws);
  // Renormalized over the two survivors.
  std::vector<double> expect(logits.size(), 0.0);
  const std::vector<double> pair = Softmax({2.0f, 1.9f}, 1.5);
  expect[1] = pair[0];
  expect[2] = pair[1];
  ExpectFrequencies(counts, expect, kDraws);
}

TEST(SamplerTest, TopKDropsTheLowestTokens) {
  // Both the one-pass heap (small k) and the selection (large k) paths.
  for (int vocab : {50, 3000}) {
    std::vector<float> logits(vocab, 0.0f);
    logits[5] = -1.0f;
    logits[7] = -1.0f;
    logits[vocab - 1] = kNaN;
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_k = vocab - 3;
    Sampler s(p);
    for (int i = 0; i < 500; ++i) {
      const int32_t t = s.Sample(logits.data(), vocab, {});
      ASSERT_TRUE(t != 5 && t != 7 && t != vocab - 1) << vocab << " " << t;
    }
  }
}

TEST(SamplerTest, DrawSpansBlocksOfALargeVocab) {
  // The draw walks block sums first; mass in the first, a middle and the last (partial) block.
  constexpr int kVocab = 3000;
  std::vector<float> logits(kVocab, -std::numeric_limits<float>::infinity());
  logits[10] = 1.0f;
  logits[1500] = 1.0f;
  logits[kVocab - 1] = 1.0f + std::log(2.0f);
  logits[2000] = kNaN;
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 17;
  Sampler s(p);
  constexpr int kDraws = 20000;
  const std::vector<int> counts = Counts(s, logits, kDraws);
  EXPECT_EQ(counts[10] + counts[1500] + counts[kVocab - 1], kDraws);
  ExpectFrequencies({counts[10], counts[1500], counts[kVocab - 1]}, {0.25, 0.25, 0.5}, kDraws);
}

TEST(SamplerTest, TopKOnLargeVocab) {
  const std::vector<float> logits = MakeLogits(150000, 4);
  std::vector<float> sorted = logits;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const float kth = sorted[39];
  SamplingParams p;
  p.temperature = 5.0f;
  p.top_k = 40;
  p.top_p = 0.95f;
  Sampler s(p);
  for (int i = 0; i < 200; ++i) {
    EXPECT_GE(logits[s.Sample(logits.data(), 150000, {})], kth);
  }
}

TEST(SamplerTest, TopPKeepsSmallestNucleus) {
  // p = {0.644, 0.237, 0.087, 0.032}: 0.644 < 0.8 <= 0.881, so the nucleus is tokens 0 and 1.
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f, 0.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.8f;
  p.seed = 8;
  Sampler s(p);
  constexpr int kDraws = 10000;
  const std::vector<double> full = Softmax(logits, 1.0);
  const double kept = full[0] + full[1];
  ExpectFrequencies(Counts(s, logits, kDraws), {full[0] / kept, full[1] / kept, 0, 0}, kDraws);
}

TEST(SamplerTest, TopPThenMinP) {
  // top_p 0.95 keeps tokens 0-2 (cumulative 0.968); min_p 0.2 then drops token 2 (e^-2 = 0.135).
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f, 0.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.95f;
  p.min_p = 0.2f;
  p.seed = 12;
  Sampler s(p);
  constexpr int kDraws = 10000;
  const std::vector<double> pair = Softmax({3.0f, 2.0f}, 1.0);
  ExpectFrequencies(Counts(s, logits, kDraws), {pair[0], pair[1], 0, 0}, kDraws);
}

TEST(SamplerTest, TopPOnAFlatLargeVocab) {
  // A nucleus of thousands of tokens: the threshold search has to go low and sort many.
  const std::vector<float> logits = MakeLogits(150000, 5);
  SamplingParams p;
  p.temperature = 2.0f;
  p.top_p = 0.5f;
  Sampler s(p);
  // Every kept token is at least as likely as the least likely one in the smallest nucleus.
  std::vector<float> sorted = logits;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const std::vector<double> probs = Softmax(sorted, 2.0);
  double cumulative = 0;
  size_t nucleus = 0;
  while (cumulative < 0.5) cumulative += probs[nucleus++];
  EXPECT_GT(nucleus, 1000u);
  const float lowest_kept = sorted[nucleus - 1];
  for (int i = 0; i < 50; ++i) {
    EXPECT_GE(logits[s.Sample(logits.data(), 150000, {})], lowest_kept);
  }
}

TEST(SamplerTest, MinPDropsUnlikelyTokens) {
  // Relative to the max: e^-1 = 0.37 survives a 0.3 cut, e^-1.5 = 0.22 does not.
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.min_p = 0.3f;
  Sampler s(p);
  constexpr int kDraws = 10000;
  const std::vector<double> pair = Softmax({2.0f, 1.0f}, 1.0);
  ExpectFrequencies(Counts(s, logits, kDraws), {pair[0], pair[1], 0}, kDraws);
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveLogits) {
  const std::vector<float> logits = {2.0f, 1.9f, 0.0f};
  SamplingParams p;
  p.repetition_penalty = 1.5f;  // 2.0 -> 1.33 < 1.9
  Sampler s(p);
  const std::vector<int32_t> history = {0};
  EXPECT_EQ(s.Sample(logits.data(), 3, {}), 0);
  EXPECT_EQ(s.Sample(logits.data(), 3, history), 1);
}

TEST(SamplerTest, RepetitionPenaltyMultipliesNegativeLogits) {
  // Dividing -1 would raise it to -0.5 and keep token 0 on top; multiplying gives -2.
  const std::vector<float> logits = {-1.0f, -1.1f, -5.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  const std::vector<int32_t> history = {0};
  EXPECT_EQ(s.Sample(logits.data(), 3, history), 1);
}

TEST(SamplerTest, RepetitionPenaltyOncePerDistinctToken) {
  // Once: 2.0 / 1.5 = 1.33 > 1.2. Twice would give 0.89 < 1.2.
  const std::vector<float> logits = {2.0f, 1.2f};
  SamplingParams p;
  p.repetition_penalty = 1.5f;
  Sampler s(p);
  const std::vector<int32_t> history = {0, 0, 0};
  EXPECT_EQ(s.Sample(logits.data(), 2, history), 0);
  // And the marks are cleared between calls.
  EXPECT_EQ(s.Sample(logits.data(), 2, history), 0);
}

TEST(SamplerTest, RepetitionWindowLimitsHistory) {
  const std::vector<float> logits = {2.0f, 1.9f, 0.0f};
  const std::vector<int32_t> history = {0, 2, 2};
  SamplingParams p;
  p.repetition_penalty = 1.5f;
  Sampler whole(p);
  EXPECT_EQ(whole.Sample(logits.data(), 3, history), 1);
  p.repetition_window = 2;  // Token 0 is out of the window.
  Sampler windowed(p);
  EXPECT_EQ(windowed.Sample(logits.data(), 3, history), 0);
}

TEST(SamplerTest, RepetitionPenaltyLowersRepeatedTokenFrequency) {
  const std::vector<float> logits = {1.0f, 1.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.repetition_penalty = 2.0f;
  p.seed = 21;
  Sampler s(p);
  const std::vector<int32_t> history = {0};
  constexpr int kDraws = 20000;
  const std::vector<int> counts = Counts(s, logits, kDraws, history);
  ExpectFrequencies(counts, Softmax({0.5f, 1.0f}, 1.0), kDraws);
  EXPECT_LT(counts[0], kDraws / 2);
}

TEST(SamplerTest, HistoryTokenOutOfRangeThrows) {
  const std::vector<float> logits = {1.0f, 2.0f};
  SamplingParams p;
  p.repetition_penalty = 1.2f;
  Sampler s(p);
  const std::vector<int32_t> bad = {1, 5};
  EXPECT_THROW(s.Sample(logits.data(), 2, bad), Error);
  const std::vector<int32_t> negative = {-1};
  EXPECT_THROW(s.Sample(logits.data(), 2, negative), Error);
  // The failed call left no stale marks: token 1 is still penalized once, not skipped.
  const std::vector<int32_t> ok = {1};
  EXPECT_EQ(s.Sample(logits.data(), 2, ok), 1);  // 2 / 1.2 = 1.67 > 1
}

TEST(SamplerTest, BadVocabThrows) {
  Sampler s({});
  const float one = 1.0f;
  EXPECT_THROW(s.Sample(&one, 0, {}), Error);
  EXPECT_THROW(s.Sample(&one, -3, {}), Error);
}

void ExpectInvalid(const SamplingParams& p, const std::string& field) {
  try {
    p.Validate();
    ADD_FAILURE() << "no error for bad " << field;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
  EXPECT_THROW(Sampler{p}, Error);
}

TEST(SamplerTest, ValidateNamesTheBadField) {
  SamplingParams ok;
  EXPECT_NO_THROW(ok.Validate());
  ok.temperature = 0.8f;
  ok.top_k = 40;
  ok.top_p = 1.0f;
  ok.min_p = 1.0f;
  ok.repetition_penalty = 0.5f;
  EXPECT_NO_THROW(ok.Validate());

  auto with = [](auto mutate) {
    SamplingParams p;
    mutate(p);
    return p;
  };
  ExpectInvalid(with([](SamplingParams& p) { p.temperature = -0.1f; }), "temperature");
  ExpectInvalid(with([](SamplingParams& p) { p.temperature = kNaN; }), "temperature");
  ExpectInvalid(with([](SamplingParams& p) { p.top_k = -1; }), "top_k");
  ExpectInvalid(with([](SamplingParams& p) { p.top_p = 0.0f; }), "top_p");
  ExpectInvalid(with([](SamplingParams& p) { p.top_p = 1.5f; }), "top_p");
  ExpectInvalid(with([](SamplingParams& p) { p.top_p = kNaN; }), "top_p");
  ExpectInvalid(with([](SamplingParams& p) { p.min_p = -0.1f; }), "min_p");
  ExpectInvalid(with([](SamplingParams& p) { p.min_p = 1.1f; }), "min_p");
  ExpectInvalid(with([](SamplingParams& p) { p.repetition_penalty = 0.0f; }), "repetition_penalty");
  ExpectInvalid(with([](SamplingParams& p) { p.repetition_penalty = -1.0f; }),
                "repetition_penalty");
  ExpectInvalid(with([](SamplingParams& p) { p.repetition_window = -1; }), "repetition_window");
}

}  // namespace
}  // namespace r1
