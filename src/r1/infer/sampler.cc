#include "r1/infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "r1/core/error.h"

// The build targets generic x86-64, so the loops over the whole vocabulary are cloned per ISA and
// picked at load time. They are written with per-lane accumulators and only IEEE +, -, *, / and
// selects, so every clone (and every platform) computes bit-identical results: the lanes are fixed
// by the code, not by the vector width, and nothing goes through libm.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define R1_VOCAB_LOOP __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define R1_VOCAB_LOOP
#endif

namespace r1 {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kFloatMax = std::numeric_limits<float>::max();
constexpr int kLanes = 16;
// Tokens per block of the draw's two-level walk: short enough that the sequential part is cheap.
constexpr int kBlock = 1024;
// Below this k, top-k keeps a k-sized heap in one pass; above it, nth_element over all tokens.
constexpr int kHeapTopK = 1024;

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

typedef float F16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));

// out[l] = e^((in[l] - max) / temperature) for 16 lanes, where in[l] <= max: the softmax
// numerator, exactly 1 at the max and 0 for -inf. Cephes expf (Cody-Waite reduction, degree-6
// polynomial, ~1 ulp) rather than std::exp, so that it vectorizes and gives the same bits under
// every libm; results below the smallest normal float are 0, which sampling cannot tell apart.
// Explicit vectors, because GCC will not auto-vectorize the clamp and underflow selects except
// with AVX-512 masks; the selects are bitwise so that 64-byte vectors split cleanly into halves
// or quarters on AVX2 and SSE. One operation per statement so no compiler fuses a multiply-add.
// `in` and `out` may be the same.
[[gnu::always_inline]] inline void ScaledExp16(const float* in, float* out, float max,
                                               float temperature) {
  F16 x;
  std::memcpy(&x, in, sizeof(x));
  x = x - max;
  x = x / temperature;
  const I16 underflow = x < -87.3f;
  const F16 lowest = F16{} - 87.3f;
  x = (F16)(((I16)x & ~underflow) | ((I16)lowest & underflow));  // Keeps the int conversion valid.
  F16 n = x * 1.44269504088896341f;
  n = n + 12582912.0f;  // 1.5 * 2^23: rounds to the nearest integer in the default rounding mode.
  n = n - 12582912.0f;
  F16 t = n * 0.693359375f;
  F16 r = x - t;
  t = n * -2.12194440e-4f;
  r = r - t;
  F16 p = 1.9875691500e-4f * r;
  p = p + 1.3981999507e-3f;
  p = p * r;
  p = p + 8.3334519073e-3f;
  p = p * r;
  p = p + 4.1665795894e-2f;
  p = p * r;
  p = p + 1.6666665459e-1f;
  p = p * r;
  p = p + 5.0000001201e-1f;
  const F16 r2 = r * r;
  p = p * r2;
  p = p + r;
  p = p + 1.0f;
  // n is in [-126, 0], so 2^n is a normal float built from its exponent bits.
  const I16 scale = (__builtin_convertvector(n, I16) + 127) << 23;
  p = p * (F16)scale;
  p = (F16)((I16)p & ~underflow);
  std::memcpy(out, &p, sizeof(p));
}

// NaN becomes -inf (never sampled); +inf becomes the largest float, so that subtracting the max
// never computes inf - inf.
R1_VOCAB_LOOP void SanitizeCopy(const float* in, float* out, int n) {
  for (int i = 0; i < n; ++i) {
    const float v = in[i];
    out[i] = v != v ? kNegInf : (v > kFloatMax ? kFloatMax : v);
  }
}

// Maximum of NaN-free values.
R1_VOCAB_LOOP float MaxValue(const float* x, int n) {
  float m[kLanes];
  for (int l = 0; l < kLanes; ++l) m[l] = kNegInf;
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
  }
  float best = kNegInf;
  for (; i < n; ++i) best = x[i] > best ? x[i] : best;
  for (int l = 0; l < kLanes; ++l) best = m[l] > best ? m[l] : best;
  return best;
}

// p[i] = e^((w[i] - max) / temperature): the softmax numerator, 1 at the max, 0 for -inf.
// p may be w.
R1_VOCAB_LOOP void ScaledExp(const float* w, float* p, int n, float max, float temperature) {
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) ScaledExp16(w + i, p + i, max, temperature);
  if (i < n) {
    float tail[kLanes];
    for (int l = 0; l < kLanes; ++l) tail[l] = i + l < n ? w[i + l] : kNegInf;
    ScaledExp16(tail, tail, max, temperature);
    for (int l = 0; i + l < n; ++l) p[i + l] = tail[l];
  }
}

R1_VOCAB_LOOP void ZeroBelow(float* p, int n, float cut) {
  for (int i = 0; i < n; ++i) p[i] = p[i] >= cut ? p[i] : 0.0f;
}

// Sum of each kBlock-sized block of p, in double.
R1_VOCAB_LOOP void BlockSums(const float* p, int n, double* sums) {
  for (int b = 0; b * kBlock < n; ++b) {
    const int begin = b * kBlock;
    const int end = std::min(n, begin + kBlock);
    double acc[kLanes] = {};
    int i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) acc[l] += p[i + l];
    }
    double s = 0.0;
    for (; i < end; ++i) s += p[i];
    for (int l = 0; l < kLanes; ++l) s += acc[l];
    sums[b] = s;
  }
}

// Whether any of x[0..kLanes) is >= t; branch-free so it compiles to one vector compare.
inline bool AnyAtLeast(const float* x, float t) {
  bool any = false;
  for (int l = 0; l < kLanes; ++l) any |= x[l] >= t;
  return any;
}

// Sum of the p[i] >= t, in double.
R1_VOCAB_LOOP double SumAtLeast(const float* p, int n, float t) {
  double acc[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += p[i + l] >= t ? p[i + l] : 0.0f;
  }
  double s = 0.0;
  for (; i < n; ++i) s += p[i] >= t ? p[i] : 0.0f;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

}  // namespace

void SamplingParams::Validate() const {
  // Written as !(in range) so that NaN fails too.
  if (!(temperature >= 0.0f) || !std::isfinite(temperature)) {
    throw Error("sampling: temperature must be a finite number >= 0, got " +
                std::to_string(temperature));
  }
  if (top_k < 0) throw Error("sampling: top_k must be >= 0, got " + std::to_string(top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    throw Error("sampling: top_p must be in (0, 1], got " + std::to_string(top_p));
  }
  if (!(min_p >= 0.0f && min_p <= 1.0f)) {
    throw Error("sampling: min_p must be in [0, 1], got " + std::to_string(min_p));
  }
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
    throw Error("sampling: repetition_penalty must be a finite number > 0, got " +
                std::to_string(repetition_penalty));
  }
  if (repetition_window < 0) {
    throw Error("sampling: repetition_window must be >= 0, got " +
                std::to_string(repetition_window));
  }
}

Sampler::Sampler(SamplingParams p) : params_(p) {
  params_.Validate();
  // splitmix64 spreads any seed (0 included) over the whole state; xoshiro must not start at 0.
  uint64_t x = params_.seed;
  for (uint64_t& s : rng_) s = SplitMix64(x);
}

double Sampler::NextUniform() {
  // xoshiro256**: fast, statistically strong, and defined bit for bit, unlike std distributions.
  const uint64_t result = Rotl(rng_[1] * 5, 7) * 9;
  const uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = Rotl(rng_[3], 45);
  return static_cast<double>(result >> 11) * 0x1.0p-53;
}

void Sampler::ApplyRepetitionPenalty(std::span<const int32_t> history, int vocab) {
  const float penalty = params_.repetition_penalty;
  if (penalty == 1.0f || history.empty()) return;
  const size_t window = static_cast<size_t>(params_.repetition_window);
  if (window > 0 && window < history.size()) history = history.last(window);
  seen_.resize(vocab);  // Zero-filled, and put back to zero below, so only the first call pays.
  for (int32_t t : history) {
    if (t < 0 || t >= vocab) {
      for (int32_t u : history) {
        if (u >= 0 && u < vocab) seen_[u] = 0;
      }
      throw Error("sampling: history token " + std::to_string(t) +
                  " is outside the vocabulary of " + std::to_string(vocab));
    }
    // Penalized once per distinct token, however often it repeats, as in HF and llama.cpp.
    if (seen_[t]) continue;
    seen_[t] = 1;
    float& v = work_[t];
    v = v > 0.0f ? v / penalty : v * penalty;
  }
  for (int32_t t : history) seen_[t] = 0;
}

int32_t Sampler::Sample(const float* logits, int vocab, std::span<const int32_t> history) {
  if (vocab <= 0) throw Error("sampling: vocab must be > 0, got " + std::to_string(vocab));
  if (logits == nullptr) throw Error("sampling: logits is null");

  work_.resize(vocab);  // Reuses capacity: no allocation after the first call.
  SanitizeCopy(logits, work_.data(), vocab);
  ApplyRepetitionPenalty(history, vocab);
  const float max = MaxValue(work_.data(), vocab);

  if (params_.temperature == 0.0f || max == kNegInf) {
    // The first maximum: the lowest index on ties, and token 0 when everything is -inf.
    return static_cast<int32_t>(std::find(work_.begin(), work_.end(), max) - work_.begin());
  }

  // One draw per sampled token, whatever the filters keep, so the stream position depends only
  // on how many tokens were sampled.
  const double u = NextUniform();
  const float temperature = params_.temperature;
  const int k = params_.top_k;
  if (k > 0 && k < vocab) return SampleTopK(vocab, max, u);

  // Every token is a candidate: softmax numerators for the whole vocabulary, vectorized.
  probs_.resize(vocab);
  ScaledExp(work_.data(), probs_.data(), vocab, max, temperature);
  if (params_.top_p < 1.0f) return SampleTopP(vocab, u);
  if (params_.min_p > 0.0f) ZeroBelow(probs_.data(), vocab, params_.min_p);

  // Two-level walk: find the block holding the target, then the token inside it.
  const int blocks = (vocab + kBlock - 1) / kBlock;
  block_sums_.resize(blocks);
  BlockSums(probs_.data(), vocab, block_sums_.data());
  double total = 0.0;
  int last_block = 0;  // The last block with any probability: the max's token is in one.
  for (int b = 0; b < blocks; ++b) {
    total += block_sums_[b];
    if (block_sums_[b] > 0.0) last_block = b;
  }
  double target = u * total;
  int b = 0;
  for (; b < last_block && target >= block_sums_[b]; ++b) target -= block_sums_[b];
  const int begin = b * kBlock;
  const int end = std::min(vocab, begin + kBlock);
  double cumulative = 0.0;
  int32_t last_positive = -1;
  for (int i = begin; i < end; ++i) {
    if (probs_[i] <= 0.0f) continue;
    cumulative += probs_[i];
    last_positive = i;
    if (target < cumulative) return i;
  }
  // Rounding between the block sums and the walk overshot the block: its last token is nearest.
  return last_positive;
}

bool Sampler::Greater(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.token < b.token);
}

int32_t Sampler::SampleTopK(int vocab, float max, double u) {
  const size_t k = static_cast<size_t>(params_.top_k);
  cands_.clear();
  if (k <= static_cast<size_t>(kHeapTopK)) {
    // One pass with a k-sized heap whose front is the weakest kept candidate: most tokens cost a
    // single comparison, and the exp runs on k tokens instead of the whole vocabulary.
    cands_.reserve(k);
    for (int32_t start = 0; start < vocab; start += kLanes) {
      const int32_t stop = std::min(vocab, start + kLanes);
      // Once the heap is full, whole chunks below its weakest entry are skipped at once.
      if (cands_.size() == k && stop - start == kLanes &&
          !AnyAtLeast(work_.data() + start, cands_.front().value)) {
        continue;
      }
      for (int32_t i = start; i < stop; ++i) {
        const Candidate c{work_[i], i};
        if (c.value == kNegInf) continue;
        if (cands_.size() < k) {
          cands_.push_back(c);
          std::push_heap(cands_.begin(), cands_.end(), Greater);
        } else if (Greater(c, cands_.front())) {
          std::pop_heap(cands_.begin(), cands_.end(), Greater);
          cands_.back() = c;
          std::push_heap(cands_.begin(), cands_.end(), Greater);
        }
      }
    }
    std::sort_heap(cands_.begin(), cands_.end(), Greater);
  } else {
    cands_.reserve(vocab);
    for (int32_t i = 0; i < vocab; ++i) {
      if (work_[i] != kNegInf) cands_.push_back({work_[i], i});
    }
    if (cands_.size() > k) {
      std::nth_element(cands_.begin(), cands_.begin() + (k - 1), cands_.end(), Greater);
      cands_.resize(k);
    }
    std::sort(cands_.begin(), cands_.end(), Greater);
  }

  // Sorted by `Greater`, a total order: the kept set and its order, and so the token a given u
  // picks, do not depend on the standard library.
  const int kept = static_cast<int>(cands_.size());
  probs_.resize(kept);
  for (int j = 0; j < kept; ++j) probs_[j] = cands_[j].value;
  ScaledExp(probs_.data(), probs_.data(), kept, max, params_.temperature);
  double total = 0.0;
  for (int j = 0; j < kept; ++j) {
    cands_[j].value = probs_[j];
    total += probs_[j];
  }
  if (params_.top_p < 1.0f) {
    const double threshold = static_cast<double>(params_.top_p) * total;
    double cumulative = 0.0;
    size_t keep = 0;
    while (keep < cands_.size()) {
      cumulative += cands_[keep++].value;
      if (cumulative >= threshold) break;
    }
    cands_.resize(keep);
  }
  return DrawFromSorted(u);
}

int32_t Sampler::SampleTopP(int vocab, double u) {
  double total = 0.0;
  {
    const int blocks = (vocab + kBlock - 1) / kBlock;
    block_sums_.resize(blocks);
    BlockSums(probs_.data(), vocab, block_sums_.data());
    for (double s : block_sums_) total += s;
  }
  const double threshold = static_cast<double>(params_.top_p) * total;

  // The nucleus is a prefix of the tokens by falling probability, so if the tokens with p >= t
  // already reach the threshold, the nucleus lies among them. Lower t until they do (min-p
  // removes everything below its cut anyway), and only those few are gathered and sorted.
  const float cut = params_.min_p;
  float t = 0.1f;
  for (;;) {
    if (t <= cut) t = cut;
    if (t == cut || SumAtLeast(probs_.data(), vocab, t) >= threshold) break;
    t = t > 1e-6f ? t * 0.1f : 0.0f;
  }
  cands_.clear();
  cands_.reserve(vocab);  // Once: how many are gathered varies from call to call.
  for (int32_t i = 0; i < vocab; ++i) {
    if (probs_[i] >= t && probs_[i] > 0.0f) cands_.push_back({probs_[i], i});
  }

  // Sort only as far as the nucleus reaches, growing the sorted prefix geometrically: a flat
  // distribution can leave most of the vocabulary here. Selection then sorting the selected part
  // beats partial_sort's heap once the prefix gets long.
  const size_t n = cands_.size();
  size_t done = 0;
  size_t keep = n;
  double cumulative = 0.0;
  for (size_t m = std::min<size_t>(n, 64);; m = std::min(n, m * 4)) {
    const auto first = cands_.begin() + done;
    const auto middle = cands_.begin() + m;
    if (m < n) std::nth_element(first, middle, cands_.end(), Greater);
    std::sort(first, middle, Greater);
    for (; done < m; ++done) {
      cumulative += cands_[done].value;
      if (cumulative >= threshold) break;
    }
    if (done < m) {
      keep = done + 1;
      break;
    }
    if (m == n) break;  // Rounding left the sum short of the threshold: keep all gathered.
  }
  cands_.resize(keep);
  return DrawFromSorted(u);
}

int32_t Sampler::DrawFromSorted(double u) {
  // min-p after top-k/top-p, as llama.cpp orders them. p_max is exactly 1 (the max's numerator)
  // and the list is sorted, so the cut only trims the tail and the first candidate survives.
  const float cut = params_.min_p;
  while (cands_.size() > 1 && cands_.back().value < cut) cands_.pop_back();

  double total = 0.0;
  for (const Candidate& c : cands_) total += c.value;
  const double target = u * total;
  double cumulative = 0.0;
  for (const Candidate& c : cands_) {
    cumulative += c.value;
    if (target < cumulative) return c.token;
  }
  // Only reachable when u * total rounds up to total: the last candidate with p > 0.
  for (auto it = cands_.rbegin(); it != cands_.rend(); ++it) {
    if (it->value > 0.0f) return it->token;
  }
  return cands_.front().token;
}

}  // namespace r1
