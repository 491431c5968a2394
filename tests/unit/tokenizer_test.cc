// Byte-exactness of the BPE tokenizers against the reference (Hugging Face tokenizers) ids in
// golden/tokenizer/cases.jsonl, plus the round-trip and streaming properties decoding promises.
#include "r1/tokenizer/tokenizer.h"

#include <chrono>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/tokenizer/unicode_byte_level.h"
#include "r1/tokenizer/unicode_props.h"
#include "r1/tokenizer/unicode_utf8.h"

namespace r1 {
namespace {

const std::string kTokDir = std::string(R1_GOLDEN_DIR) + "/tokenizer";

struct Case {
  std::string text;
  std::vector<int32_t> deepseek, qwen;
};

std::string Nfc(const std::string& s) {
  std::string out;
  return tok::Normalize(tok::NormalForm::kNFC, s, out) ? out : s;
}

// Random valid UTF-8 drawn from every plane, weighted towards what makes tokenizing hard:
// combining marks, scripts without spaces, emoji sequences, whitespace of all kinds.
std::string RandomUtf8(std::mt19937& rng, size_t chars) {
  static const std::vector<std::pair<char32_t, char32_t>> kRanges = {
      {0x20, 0x7E},       {0x09, 0x0D},       {0x80, 0x2FF},     {0x300, 0x36F},
      {0x370, 0x52F},     {0x590, 0x6FF},     {0x900, 0x97F},    {0xE00, 0xE7F},
      {0x1100, 0x11FF},   {0x2000, 0x206F},   {0x3000, 0x30FF},  {0x4E00, 0x9FFF},
      {0xAC00, 0xD7A3},   {0xE000, 0xF8FF},   {0xFE00, 0xFFFD},  {0x10000, 0x1FFFF},
      {0x1F300, 0x1FAFF}, {0x20000, 0x2FFFF}, {0xE0000, 0xE01EF}, {0xF0000, 0x10FFFF},
      {'0', '9'},         {'a', 'z'},         {' ', ' '},        {0x85, 0x85},
  };
  std::uniform_int_distribution<size_t> pick(0, kRanges.size() - 1);
  std::string s;
  for (size_t i = 0; i < chars; ++i) {
    const auto [lo, hi] = kRanges[pick(rng)];
    char32_t cp = std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    tok::AppendUtf8(cp, s);
  }
  return s;
}

class TokenizerGoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* name : {"deepseek_v3", "qwen3"}) {
      const auto start = std::chrono::steady_clock::now();
      auto t = Tokenizer::Load(kTokDir + "/" + name);
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("[ tokenizer ] loaded %s in %.3f s\n", name, s);
      (std::string(name) == "qwen3" ? qwen_ : deepseek_) = std::move(t);
    }
    std::ifstream in(kTokDir + "/cases.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line);
      cases_.push_back({j["text"].get<std::string>(), j["deepseek_v3"].get<std::vector<int32_t>>(),
                        j["qwen3"].get<std::vector<int32_t>>()});
    }
  }
  static void TearDownTestSuite() {
    deepseek_.reset();
    qwen_.reset();
    cases_.clear();
  }

  static std::unique_ptr<Tokenizer> deepseek_, qwen_;
  static std::vector<Case> cases_;
};

std::unique_ptr<Tokenizer> TokenizerGoldenTest::deepseek_;
std::unique_ptr<Tokenizer> TokenizerGoldenTest::qwen_;
std::vector<Case> TokenizerGoldenTest::cases_;

TEST_F(TokenizerGoldenTest, DeepSeekV3MatchesReferenceIds) {
  ASSERT_GT(cases_.size(), 300u);
  size_t pass = 0;
  for (const Case& c : cases_) {
    const auto ids = deepseek_->Encode(c.text);
    if (ids == c.deepseek) {
      ++pass;
    } else {
      ADD_FAILURE() << "text: " << nlohmann::json(c.text).dump()
                    << "\n got: " << nlohmann::json(ids).dump()
                    << "\nwant: " << nlohmann::json(c.deepseek).dump();
    }
  }
  std::printf("[ tokenizer ] deepseek_v3: %zu/%zu cases match\n", pass, cases_.size());
}

TEST_F(TokenizerGoldenTest, Qwen3MatchesReferenceIds) {
  size_t pass = 0;
  for (const Case& c : cases_) {
    const auto ids = qwen_->Encode(c.text);
    if (ids == c.qwen) {
      ++pass;
    } else {
      ADD_FAILURE() << "text: " << nlohmann::json(c.text).dump()
                    << "\n got: " << nlohmann::json(ids).dump()
                    << "\nwant: " << nlohmann::json(c.qwen).dump();
    }
  }
  std::printf("[ tokenizer ] qwen3: %zu/%zu cases match\n", pass, cases_.size());
}

TEST_F(TokenizerGoldenTest, DecodeInvertsEncodeOnCases) {
  for (const Case& c : cases_) {
    EXPECT_EQ(deepseek_->Decode(deepseek_->Encode(c.text)), c.text);
    // Qwen normalizes to NFC, so only NFC text comes back unchanged.
    const std::string nfc = Nfc(c.text);
    EXPECT_EQ(qwen_->Decode(qwen_->Encode(nfc)), nfc);
    EXPECT_EQ(qwen_->Decode(c.qwen), nfc);
  }
}

TEST_F(TokenizerGoldenTest, DecodeInvertsEncodeOnRandomUtf8) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 300; ++i) {
    const std::string s = RandomUtf8(rng, 1 + rng() % 60);
    ASSERT_TRUE(tok::IsValidUtf8(s));
    EXPECT_EQ(deepseek_->Decode(deepseek_->Encode(s)), s);
    const std::string nfc = Nfc(s);
    EXPECT_EQ(qwen_->Decode(qwen_->Encode(nfc)), nfc);
  }
}

// Streams `ids` one token at a time; every piece must be valid UTF-8 and all of them together
// must equal Decode.
void ExpectStreamMatchesDecode(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip) {
  StreamDecoder stream(t, skip);
  std::string all;
  for (int32_t id : ids) {
    const std::string piece = stream.Push(id);
    ASSERT_TRUE(tok::IsValidUtf8(piece)) << "broken UTF-8 after id " << id;
    all += piece;
  }
  const std::string rest = stream.Flush();
  ASSERT_TRUE(tok::IsValidUtf8(rest));
  all += rest;
  EXPECT_EQ(all, t.Decode(ids, skip));
}

TEST_F(TokenizerGoldenTest, StreamDecoderMatchesDecode) {
  for (const Case& c : cases_) {
    ExpectStreamMatchesDecode(*deepseek_, c.deepseek, false);
    ExpectStreamMatchesDecode(*deepseek_, c.deepseek, true);
    ExpectStreamMatchesDecode(*qwen_, c.qwen, false);
  }
  std::mt19937 rng(99);
  for (int i = 0; i < 100; ++i) {
    const std::string s = RandomUtf8(rng, 40);
    ExpectStreamMatchesDecode(*deepseek_, deepseek_->Encode(s), false);
    // Arbitrary id sequences split characters anywhere; the stream must still never break one.
    std::vector<int32_t> ids;
    for (int k = 0; k < 30; ++k) ids.push_back(static_cast<int32_t>(rng() % deepseek_->vocab_size()));
    ExpectStreamMatchesDecode(*deepseek_, ids, false);
    ExpectStreamMatchesDecode(*qwen_, ids, true);
  }
}

TEST_F(TokenizerGoldenTest, StreamHoldsBackPartialCharacters) {
  // "😀" is four bytes; byte-level tokens for its bytes arrive one by one.
  const std::string emoji = "\xF0\x9F\x98\x80";
  std::vector<int32_t> ids;
  for (unsigned char b : emoji) ids.push_back(*deepseek_->TokenId(tok::ByteLevelStrings()[b]));
  ASSERT_EQ(ids.size(), 4u);
  StreamDecoder stream(*deepseek_);
  EXPECT_EQ(stream.Push(ids[0]), "");
  EXPECT_EQ(stream.Push(ids[1]), "");
  EXPECT_EQ(stream.Push(ids[2]), "");
  EXPECT_EQ(stream.Push(ids[3]), emoji);
  EXPECT_EQ(stream.Flush(), "");
  StreamDecoder cut(*deepseek_);
  EXPECT_EQ(cut.Push(ids[0]), "");
  EXPECT_EQ(cut.Push(ids[1]), "");
  EXPECT_EQ(cut.Flush(), "\xEF\xBF\xBD");
}

TEST_F(TokenizerGoldenTest, SpecialTokensAreSingleIds) {
  const auto user = deepseek_->TokenId("<｜User｜>");
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(deepseek_->Encode("<｜User｜>"), std::vector<int32_t>{*user});
  EXPECT_EQ(deepseek_->Decode(std::vector<int32_t>{0, 19923}, true), "Hello");
  EXPECT_EQ(deepseek_->Decode(std::vector<int32_t>{0, 19923}, false), "<｜begin▁of▁sentence｜>Hello");
  EXPECT_TRUE(deepseek_->IsSpecial(0));
  EXPECT_FALSE(deepseek_->IsSpecial(19923));

  const auto think = qwen_->TokenId("<think>");
  ASSERT_TRUE(think.has_value());
  EXPECT_EQ(*think, 151667);
  EXPECT_EQ(qwen_->Encode("<think>\n"), (std::vector<int32_t>{151667, 198}));
  EXPECT_FALSE(qwen_->IsSpecial(151667));  // not special: kept by skip_special
  EXPECT_EQ(qwen_->Decode(std::vector<int32_t>{151644, 151667}, true), "<think>");
  EXPECT_EQ(qwen_->TokenText(9707), "Hello");
  EXPECT_EQ(qwen_->TokenText(-1), "");
  EXPECT_EQ(qwen_->TokenText(1 << 30), "");
}

TEST_F(TokenizerGoldenTest, ConfigValues) {
  EXPECT_EQ(deepseek_->vocab_size(), 128815);
  EXPECT_EQ(deepseek_->bos_id(), 0);
  EXPECT_EQ(deepseek_->eos_id(), 1);
  EXPECT_TRUE(deepseek_->add_bos());
  EXPECT_EQ(deepseek_->bos_token(), "<｜begin▁of▁sentence｜>");
  EXPECT_FALSE(deepseek_->chat_template().empty());

  EXPECT_EQ(qwen_->vocab_size(), 151669);
  EXPECT_FALSE(qwen_->bos_id().has_value());
  EXPECT_EQ(qwen_->bos_token(), "");
  EXPECT_EQ(qwen_->eos_token(), "<|im_end|>");
  EXPECT_EQ(qwen_->eos_id(), 151645);
  EXPECT_FALSE(qwen_->add_bos());
  EXPECT_NE(qwen_->chat_template().find("<|im_start|>"), std::string::npos);
}

TEST_F(TokenizerGoldenTest, InvalidUtf8BecomesReplacementCharacters) {
  const std::vector<std::string> bad = {
      "\xFF", "abc\xC3", "\xC3(", "a\xF0\x9F\x98" "b", "\xED\xA0\x80", "\xC0\xAF",
      "\xF4\x90\x80\x80", std::string("nul\0byte\x80", 9), "\xE2\x82", "ok \xF8\x88\x80\x80\x80 ok"};
  for (const std::string& s : bad) {
    const std::string lossy = tok::ToUtf8Lossy(s);
    ASSERT_TRUE(tok::IsValidUtf8(lossy));
    for (const Tokenizer* t : {deepseek_.get(), qwen_.get()}) {
      const auto ids = t->Encode(s);
      EXPECT_EQ(ids, t->Encode(lossy));
      EXPECT_EQ(t->Decode(ids), lossy);
    }
  }
  // The maximal-subpart rule: a truncated 4-byte sequence is one U+FFFD, a surrogate is three.
  EXPECT_EQ(tok::ToUtf8Lossy("a\xF0\x9F\x98" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(tok::ToUtf8Lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok::ToUtf8Lossy("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(TokenizerGoldenTest, LongInputsEncodeAndRoundTrip) {
  const std::vector<std::string> inputs = {
      std::string(200000, 'a'), std::string(100000, ' ') + "x", std::string(100000, '7'),
      std::string(50000, '\n'), std::string(30000, '=') + "end"};
  for (const std::string& s : inputs) {
    EXPECT_EQ(deepseek_->Decode(deepseek_->Encode(s)), s);
    EXPECT_EQ(qwen_->Decode(qwen_->Encode(s)), s);
  }
  std::string cjk;
  for (int i = 0; i < 20000; ++i) cjk += "深度求索";
  EXPECT_EQ(deepseek_->Decode(deepseek_->Encode(cjk)), cjk);
}

TEST_F(TokenizerGoldenTest, EncodeAppendsAndHandlesEmpty) {
  EXPECT_TRUE(deepseek_->Encode("").empty());
  std::vector<int32_t> out = {42};
  qwen_->Encode("Hello, world!", out);
  EXPECT_EQ(out, (std::vector<int32_t>{42, 9707, 11, 1879, 0}));
}

}  // namespace
}  // namespace r1
