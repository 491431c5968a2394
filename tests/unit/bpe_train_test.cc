// BPE training: the written tokenizer.json loads, round-trips text, learns what it should in the
// order it should, and is deterministic; bad input is refused with a clear error.
#include "r1/tokenizer/bpe_train.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/tokenizer/chat_template.h"
#include "r1/tokenizer/pretokenize.h"
#include "r1/tokenizer/tokenizer.h"
#include "r1/tokenizer/unicode_byte_level.h"
#include "r1/tokenizer/unicode_utf8.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

class BpeTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("r1_bpe_train_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // Sentences from a small vocabulary, word frequencies skewed as in real text.
  static std::vector<std::string> Sentences(size_t n) {
    static const std::vector<std::string> kWords = {
        "the",   "the",    "the",  "of",     "and",   "and",      "to",      "a",
        "in",    "is",     "that", "model",  "token", "language", "learns",  "from",
        "text",  "with",   "for",  "this",   "it",    "reads",    "writes",  "quickly",
        "large", "small",  "data", "people", "time",  "world",    "numbers", "42"};
    std::mt19937 rng(1234);
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      std::string s;
      const size_t len = 4 + rng() % 8;
      for (size_t w = 0; w < len; ++w) {
        std::string word = kWords[rng() % kWords.size()];
        if (w == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
        s += (w ? " " : "") + word;
      }
      s += rng() % 4 == 0 ? "!" : ".";
      out.push_back(s);
    }
    return out;
  }

  static std::string Join(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }

  tok::BpeTrainStats Train(const std::vector<std::string>& inputs, int64_t vocab,
                           const std::string& out, const std::string& pre = "deepseek-v3",
                           const std::string& specials = "deepseek", int64_t min_freq = 2) {
    tok::BpeTrainOptions o;
    o.inputs = inputs;
    o.vocab_size = vocab;
    o.pre_tokenizer = pre;
    o.special_tokens = specials;
    o.min_frequency = min_freq;
    o.quiet = true;
    return tok::TrainBpeTokenizer(o, out);
  }

  static std::string Slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  fs::path dir_;
};

std::string RandomUtf8(std::mt19937& rng, size_t chars) {
  std::string s;
  for (size_t i = 0; i < chars; ++i) {
    char32_t cp;
    switch (rng() % 4) {
      case 0: cp = 0x20 + rng() % 0x5F; break;
      case 1: cp = 0x80 + rng() % 0x780; break;
      case 2: cp = 0x800 + rng() % 0xD000; break;  // stays below the surrogates
      default: cp = 0x10000 + rng() % 0x100000; break;
    }
    tok::AppendUtf8(cp, s);
  }
  return s;
}

TEST_F(BpeTrainTest, RoundTripsCorpusAndRandomText) {
  const auto lines = Sentences(2000);
  const std::string corpus = Write("corpus.txt", Join(lines));
  const std::string out = (dir_ / "tokenizer.json").string();
  const auto stats = Train({corpus}, 380, out);
  EXPECT_EQ(stats.vocab_size, 380);
  EXPECT_EQ(stats.merges, 380 - 256 - 7);

  auto tok = Tokenizer::Load(out);
  EXPECT_EQ(tok->vocab_size(), 380);
  for (const auto& line : lines) {
    const auto ids = tok->Encode(line);
    ASSERT_EQ(tok->Decode(ids), line);
  }
  const std::string whole = Join(lines);
  const auto ids = tok->Encode(whole);
  EXPECT_EQ(tok->Decode(ids), whole);
  // Merges pay off: far fewer tokens than bytes.
  EXPECT_LT(ids.size() * 3, whole.size());

  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    const std::string text = RandomUtf8(rng, 1 + rng() % 40);
    ASSERT_EQ(tok->Decode(tok->Encode(text)), text);
  }
}

TEST_F(BpeTrainTest, CommonWordsBecomeSingleTokens) {
  const std::string corpus = Write("corpus.txt", Join(Sentences(2000)));
  const std::string out = (dir_ / "tokenizer.json").string();
  Train({corpus}, 400, out);
  auto tok = Tokenizer::Load(out);
  for (const char* word : {" the", " and", " model", " language"}) {
    EXPECT_EQ(tok->Encode(word).size(), 1u) << "'" << word << "'";
  }
  // Both spellings of a word exist as tokens in the vocab, in the byte alphabet.
  EXPECT_TRUE(tok->TokenId("Ġthe").has_value());
}

TEST_F(BpeTrainTest, FirstMergeIsTheMostFrequentPair) {
  const std::string corpus = Write("corpus.txt", Join(Sentences(500)));
  const std::string out = (dir_ / "tokenizer.json").string();
  Train({corpus}, 300, out);

  // Recount pairs by brute force over the same words.
  const auto pre = tok::PreTokenizer::FromJson(tok::BpePreTokenizerJson("deepseek-v3"));
  int64_t bytes = 0, words = 0;
  const auto counts = tok::CountBpeWords({corpus}, *pre, {}, "text", true, &bytes, &words);
  std::map<std::pair<std::string, std::string>, int64_t> pairs;
  for (const auto& [w, n] : counts) {
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      pairs[{std::string(1, w[i]), std::string(1, w[i + 1])}] += n;
    }
  }
  int64_t best_n = 0;
  for (const auto& [p, n] : pairs) best_n = std::max(best_n, n);

  const auto j = nlohmann::json::parse(Slurp(out));
  const auto& first = j["model"]["merges"][0];
  auto dec = [](const nlohmann::json& s) { return tok::ByteLevelDecode(s.get<std::string>()); };
  // Ties are broken by the vocab strings, so compare counts rather than the pair itself.
  EXPECT_EQ((pairs[{dec(first[0]), dec(first[1])}]), best_n);
  EXPECT_GT(best_n, 500);
}

TEST_F(BpeTrainTest, MergesFollowCountsAndTieBreak) {
  // ab: 10 + 5 = 15, bc: 5 + 3 = 8, then (ab, c): 5 beats (b, c): 3.
  auto m = tok::LearnBpe({{"ab", 10}, {"abc", 5}, {"bc", 3}}, 258, 1, true);
  ASSERT_EQ(m.merges.size(), 2u);
  EXPECT_EQ(m.vocab[m.merges[0].first] + m.vocab[m.merges[0].second], "ab");
  EXPECT_EQ(m.vocab[m.merges[1].first], "ab");
  EXPECT_EQ(m.vocab[m.merges[1].second], "c");
  EXPECT_EQ(m.vocab[256], "ab");
  EXPECT_EQ(m.vocab[257], "abc");
  EXPECT_EQ(m.tokens, 10 + 5 + 2 * 3);

  // Equal counts: the lexicographically smallest pair of strings goes first.
  m = tok::LearnBpe({{"yz", 4}, {"ab", 4}, {"ac", 4}}, 259, 1, true);
  ASSERT_EQ(m.merges.size(), 3u);
  EXPECT_EQ(m.vocab[256], "ab");
  EXPECT_EQ(m.vocab[257], "ac");
  EXPECT_EQ(m.vocab[258], "yz");

  // min_frequency stops merging early.
  m = tok::LearnBpe({{"ab", 3}, {"cd", 1}}, 1000, 2, true);
  EXPECT_EQ(m.merges.size(), 1u);
  EXPECT_EQ(m.vocab.size(), 257u);

  // Byte ids follow GPT-2's order: '!' is 0, the space's stand-in 'Ġ' is 220.
  EXPECT_EQ(m.vocab[0], "!");
  EXPECT_EQ(m.vocab[220], "Ġ");
}

TEST_F(BpeTrainTest, SpecialTokensAndConfig) {
  const std::string corpus = Write("corpus.txt", Join(Sentences(300)) + "<｜User｜>hello<think>");
  const std::string out = (dir_ / "tokenizer.json").string();
  Train({corpus}, 350, out);
  auto tok = Tokenizer::Load(out);
  const int32_t base = 350 - 7;
  const char* names[] = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>",
                         "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(tok->TokenId(names[i]), base + i) << names[i];
    EXPECT_EQ(tok->IsSpecial(base + i), i < 5) << names[i];
  }
  EXPECT_EQ(tok->bos_id(), base);
  EXPECT_EQ(tok->eos_id(), base + 1);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->chat_template(), ChatTemplate::Named("deepseek-v3").source());
  const auto ids = tok->Encode("<｜User｜>Hi<｜Assistant｜><think>");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), base + 3);
  EXPECT_EQ(ids[ids.size() - 2], base + 4);
  EXPECT_EQ(ids.back(), base + 5);
  // Special tokens in the training text are not learned as merges.
  const auto j = nlohmann::json::parse(Slurp(out));
  for (const auto& [text, id] : j["model"]["vocab"].items()) {
    EXPECT_EQ(tok::ByteLevelDecode(text).find("｜"), std::string::npos) << text;
  }

  // Without specials the whole size goes to BPE and the config has no BOS.
  fs::create_directories(dir_ / "plain");
  Train({corpus}, 300, (dir_ / "plain").string(), "deepseek-v3", "none");
  auto plain = Tokenizer::Load((dir_ / "plain").string());
  EXPECT_EQ(plain->vocab_size(), 300);
  EXPECT_FALSE(plain->bos_id().has_value());
  EXPECT_FALSE(plain->add_bos());
}

TEST_F(BpeTrainTest, WritesTheStandardSchema) {
  const std::string corpus = Write("corpus.txt", Join(Sentences(300)));
  const std::string out = (dir_ / "tokenizer.json").string();
  Train({corpus}, 320, out);
  const auto j = nlohmann::json::parse(Slurp(out));
  EXPECT_EQ(j["version"], "1.0");
  EXPECT_TRUE(j["truncation"].is_null());
  EXPECT_TRUE(j["padding"].is_null());
  EXPECT_TRUE(j["normalizer"].is_null());
  EXPECT_TRUE(j["post_processor"].is_null());
  EXPECT_EQ(j["decoder"]["type"], "ByteLevel");
  EXPECT_EQ(j["model"]["type"], "BPE");
  EXPECT_EQ(j["model"]["byte_fallback"], false);
  EXPECT_EQ(j["model"]["vocab"].size(), 320u - 7);
  EXPECT_EQ(j["model"]["merges"].size(), 320u - 7 - 256);
  EXPECT_TRUE(j["model"]["merges"][0].is_array());
  EXPECT_EQ(j["added_tokens"].size(), 7u);
  const auto golden = nlohmann::json::parse(
      Slurp(std::string(R1_GOLDEN_DIR) + "/tokenizer/deepseek_v3/tokenizer.json"));
  EXPECT_EQ(j["pre_tokenizer"], golden["pre_tokenizer"]);
  const auto qwen = nlohmann::json::parse(
      Slurp(std::string(R1_GOLDEN_DIR) + "/tokenizer/qwen3/tokenizer.json"));
  EXPECT_EQ(tok::BpePreTokenizerJson("qwen2"), qwen["pre_tokenizer"]);
  const auto cfg = nlohmann::json::parse(Slurp(dir_ / "tokenizer_config.json"));
  EXPECT_EQ(cfg["bos_token"], "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(cfg["add_bos_token"], true);
}

TEST_F(BpeTrainTest, OtherPreTokenizersAndJsonl) {
  const auto lines = Sentences(800);
  std::string jsonl;
  for (const auto& l : lines) jsonl += nlohmann::json{{"body", l}, {"id", 1}}.dump() + "\n\n";
  const std::string corpus = Write("corpus.jsonl", jsonl);
  for (const char* pre : {"qwen2", "gpt2"}) {
    const std::string out = (dir_ / (std::string(pre) + ".json")).string();
    tok::BpeTrainOptions o;
    o.inputs = {corpus};
    o.vocab_size = 360;
    o.pre_tokenizer = pre;
    o.jsonl_field = "body";
    o.quiet = true;
    tok::TrainBpeTokenizer(o, out);
    auto tok = Tokenizer::Load(out);
    for (const auto& l : lines) ASSERT_EQ(tok->Decode(tok->Encode(l)), l) << pre;
    EXPECT_EQ(tok->Encode(" language").size(), 1u) << pre;
  }
}

TEST_F(BpeTrainTest, Deterministic) {
  std::mt19937 rng(3);
  const std::string corpus = Write("corpus.txt", Join(Sentences(1500)) + RandomUtf8(rng, 3000));
  Train({corpus}, 500, (dir_ / "a.json").string());
  Train({corpus}, 500, (dir_ / "b.json").string());
  EXPECT_EQ(Slurp(dir_ / "a.json"), Slurp(dir_ / "b.json"));
}

TEST_F(BpeTrainTest, Errors) {
  const std::string corpus = Write("corpus.txt", Join(Sentences(50)));
  const std::string out = (dir_ / "tokenizer.json").string();
  auto expect_error = [&](auto&& fn, const std::string& want) {
    try {
      fn();
      ADD_FAILURE() << "no error; wanted '" << want << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  expect_error([&] { Train({(dir_ / "nope.txt").string()}, 300, out); }, "does not exist");
  expect_error([&] { Train({Write("empty.txt", "")}, 300, out); }, "empty");
  expect_error([&] { Train({corpus}, 262, out); }, "too small");
  expect_error([&] { Train({corpus}, 255, out, "deepseek-v3", "none"); }, "too small");
  expect_error([&] { Train({corpus}, 300, (dir_ / "no/such/dir/t.json").string()); },
               "does not exist");
  expect_error([&] { Train({corpus}, 300, out, "llama"); }, "unknown pre-tokenizer");
  const std::string bad = Write("bad.txt", "hello\xC3\x28 world");
  expect_error([&] { Train({corpus, bad}, 300, out); }, "bad.txt: invalid UTF-8 at byte offset 5");
  expect_error([&] { Train({Write("bad.jsonl", "{\"text\": \"ok\"}\n{\"txt\": 1}\n")}, 300, out); },
               "bad.jsonl:2");
  // Nothing was written by the failed runs.
  EXPECT_FALSE(fs::exists(out));
}

TEST(BpeTrainUtf8, FindsTheFirstInvalidByte) {
  constexpr size_t kNone = std::string_view::npos;
  EXPECT_EQ(tok::FindInvalidUtf8("plain ascii"), kNone);
  EXPECT_EQ(tok::FindInvalidUtf8("é中😀"), kNone);
  EXPECT_EQ(tok::FindInvalidUtf8("ab\x80"), 2u);                // stray continuation
  EXPECT_EQ(tok::FindInvalidUtf8("a\xC0\xAF"), 1u);             // overlong
  EXPECT_EQ(tok::FindInvalidUtf8("a\xED\xA0\x80"), 1u);         // surrogate
  EXPECT_EQ(tok::FindInvalidUtf8("a\xF4\x90\x80\x80"), 1u);     // above U+10FFFF
  EXPECT_EQ(tok::FindInvalidUtf8("ab\xE4\xB8"), 2u);            // truncated
}

}  // namespace
}  // namespace r1
