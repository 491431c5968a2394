// The tokenizer's building blocks: UTF-8 repair, the two merge strategies, the word cache and the
// regex translation from Oniguruma spelling.
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "r1/tokenizer/bpe_cache.h"
#include "r1/tokenizer/bpe_merge.h"
#include "r1/tokenizer/pretokenize_regex.h"
#include "r1/tokenizer/unicode_utf8.h"

namespace r1::tok {
namespace {

TEST(TokenizerPartsTest, LossyRepairStreamsLikeWhole) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes;
    const int n = 1 + rng() % 24;
    for (int k = 0; k < n; ++k) {
      // Mostly lead and continuation bytes, to hit every truncation and invalid case.
      static const unsigned char kPool[] = {'a', 0x80, 0xBF, 0xC2, 0xC0, 0xE0, 0xED, 0xA0, 0x9F,
                                            0xF0, 0xF4, 0x90, 0x8F, 0xF5, 0xFF, 0xE2, 0x82, 0xAC};
      bytes.push_back(static_cast<char>(kPool[rng() % sizeof(kPool)]));
    }
    const std::string whole = ToUtf8Lossy(bytes);
    ASSERT_TRUE(IsValidUtf8(whole));
    std::string streamed, pending;
    for (char c : bytes) {
      pending.push_back(c);
      pending.erase(0, AppendUtf8Lossy(pending, false, streamed));
      ASSERT_TRUE(IsValidUtf8(streamed));
    }
    AppendUtf8Lossy(pending, true, streamed);
    EXPECT_EQ(streamed, whole);
    EXPECT_EQ(IsValidUtf8(bytes), whole == bytes);
  }
}

TEST(TokenizerPartsTest, ScanAndHeapMergesAgree) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    // Random rules over a small alphabet, with merged ids above it.
    PairMap rules;
    rules.Reserve(64);
    const int alphabet = 4 + rng() % 4;
    int next_id = alphabet;
    for (int r = 0; r < 40; ++r) {
      const int32_t l = rng() % next_id, rr = rng() % next_id;
      rules.Insert(l, rr, MergeRule{static_cast<uint32_t>(rng() % 1000), next_id++});
    }
    std::vector<int32_t> word;
    const int len = 1 + rng() % 80;
    for (int i = 0; i < len; ++i) word.push_back(rng() % alphabet);
    std::vector<int32_t> scan = word, heap = word;
    ApplyMergesByScan(rules, scan);
    ApplyMergesByHeap(rules, heap);
    EXPECT_EQ(scan, heap);
  }
}

TEST(TokenizerPartsTest, PairMapKeepsLaterDuplicate) {
  PairMap m;
  m.Reserve(2);
  m.Insert(1, 2, {5, 10});
  m.Insert(1, 2, {9, 11});
  for (int i = 0; i < 100; ++i) m.Insert(i + 100, i, {static_cast<uint32_t>(i), i});  // forces growth
  ASSERT_NE(m.Find(1, 2), nullptr);
  EXPECT_EQ(m.Find(1, 2)->rank, 9u);
  EXPECT_EQ(m.Find(1, 2)->merged, 11);
  EXPECT_EQ(m.Find(2, 1), nullptr);
  EXPECT_EQ(m.Find(150, 50)->merged, 50);
}

TEST(TokenizerPartsTest, WordCacheHitsAndEvicts) {
  WordCache cache(4);
  std::vector<int32_t> out;
  const std::vector<int32_t> ids = {1, 2, 3};
  EXPECT_FALSE(cache.Lookup("hello", HashBytes("hello"), out));
  cache.Insert("hello", HashBytes("hello"), ids);
  EXPECT_TRUE(cache.Lookup("hello", HashBytes("hello"), out));
  EXPECT_EQ(out, ids);
  for (int i = 0; i < 10; ++i) {
    std::string w(1, 'w');
    w += std::to_string(i);
    cache.Insert(w, HashBytes(w), ids);
  }
  out.clear();
  EXPECT_TRUE(cache.Lookup("w9", HashBytes("w9"), out));  // the newest survives a reset
}

TEST(TokenizerPartsTest, OnigSpellingsTranslate) {
  EXPECT_EQ(TranslateOnigPattern("[\\u4e00-\\u9fa5]+"), "[\\x{4e00}-\\x{9fa5}]+");
  EXPECT_EQ(TranslateOnigPattern("\\h+"), "[0-9a-fA-F]+");
  EXPECT_EQ(TranslateOnigPattern("[\\h_]"), "[0-9a-fA-F_]");
  EXPECT_EQ(TranslateOnigPattern("\\\\u0041"), "\\\\u0041");
  EXPECT_EQ(TranslateOnigPattern("\\s+(?!\\S)"), "\\s+(?!\\S)");
}

TEST(TokenizerPartsTest, RegexIterationMatchesOniguruma) {
  auto re = Regex::Compile("a*", false);
  std::vector<std::pair<size_t, size_t>> got;
  re->ForEachMatch("baab", [&](size_t b, size_t e) { got.emplace_back(b, e); });
  // Empty match at 0, "aa" at 1..3, then the empty match at 3 directly after it is skipped.
  const std::vector<std::pair<size_t, size_t>> want = {{0, 0}, {1, 3}, {4, 4}};
  EXPECT_EQ(got, want);
  auto lit = Regex::Compile("a.b", true);
  size_t b, e;
  EXPECT_FALSE(lit->Find("axb", 0, b, e));
  EXPECT_TRUE(lit->Find("xa.b", 0, b, e));
  EXPECT_EQ(b, 1u);
}

}  // namespace
}  // namespace r1::tok
