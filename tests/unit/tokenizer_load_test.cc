// Tokenizer loading from small hand-written tokenizer.json files: error reporting, both merge
// spellings, and the pre-tokenizer / added-token options the big real files do not exercise.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/tokenizer/tokenizer.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Character-level vocab (no ByteLevel step): a b - space and a few merged tokens, so that where
// the pre-tokenizer cuts shows up directly in which merges could happen.
Json TinyTokenizer(bool array_merges) {
  Json vocab = {{"a", 0}, {"b", 1}, {"-", 2}, {"a-", 3}, {"-b", 4}, {"a-b", 5}, {"--", 6},
                {" ", 7}, {"1", 8}, {"2", 9}, {"12", 10}, {"ab", 11}};
  std::vector<std::pair<std::string, std::string>> rules = {
      {"a", "-"}, {"-", "b"}, {"a-", "b"}, {"-", "-"}, {"1", "2"}, {"a", "b"}};
  Json merges = Json::array();
  for (const auto& [l, r] : rules) {
    if (array_merges) {
      merges.push_back(Json::array({l, r}));
    } else {
      merges.push_back(l + " " + r);
    }
  }
  return {{"version", "1.0"},
          {"added_tokens", Json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

Json SplitOn(const std::string& s, const std::string& behavior, bool invert = false) {
  return {{"type", "Split"},
          {"pattern", {{"String", s}}},
          {"behavior", behavior},
          {"invert", invert}};
}

class TokenizerLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("r1_tokenizer_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) const {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  std::string Write(const std::string& name, const Json& j) const { return Write(name, j.dump()); }

  std::unique_ptr<Tokenizer> LoadJson(const Json& j) const {
    return Tokenizer::Load(Write("t/tokenizer.json", j));
  }

  // Loading must throw r1::Error whose message contains each of `words`.
  void ExpectLoadError(const std::string& path, const std::vector<std::string>& words) const {
    try {
      Tokenizer::Load(path);
      ADD_FAILURE() << "no error loading " << path;
    } catch (const Error& e) {
      for (const auto& w : words) {
        EXPECT_NE(std::string(e.what()).find(w), std::string::npos)
            << "message '" << e.what() << "' lacks '" << w << "'";
      }
    }
  }
  void ExpectJsonError(const Json& j, const std::vector<std::string>& words) const {
    const std::string path = Write("bad/tokenizer.json", j);
    auto with_path = words;
    with_path.push_back(path);
    ExpectLoadError(path, with_path);
  }

  fs::path dir_;
};

TEST_F(TokenizerLoadTest, BothMergeFormsGiveTheSameTokenizer) {
  auto strings = LoadJson(TinyTokenizer(false));
  auto arrays = Tokenizer::Load(Write("u/tokenizer.json", TinyTokenizer(true)));
  for (const std::string text : {"a-b", "a--b", "ab-12", "b-a", "12 a-b-a--", ""}) {
    EXPECT_EQ(strings->Encode(text), arrays->Encode(text)) << text;
  }
  EXPECT_EQ(strings->Encode("a-b"), std::vector<int32_t>{5});
  EXPECT_EQ(strings->vocab_size(), 12);
  EXPECT_EQ(strings->Decode(strings->Encode("12 a-b")), "12 a-b");
}

TEST_F(TokenizerLoadTest, VersionLineInLegacyMergesIsSkipped) {
  Json j = TinyTokenizer(false);
  j["model"]["merges"].insert(j["model"]["merges"].begin(), "#version: 0.2");
  EXPECT_EQ(LoadJson(j)->Encode("a-b"), std::vector<int32_t>{5});
}

TEST_F(TokenizerLoadTest, SplitBehaviors) {
  struct Want {
    Json pre;
    std::string text;
    std::vector<int32_t> ids;
  };
  const std::vector<Want> wants = {
      {nullptr, "a-b", {5}},
      {SplitOn("-", "Isolated"), "a-b", {0, 2, 1}},
      {SplitOn("-", "Removed"), "a-b", {0, 1}},
      {SplitOn("-", "MergedWithPrevious"), "a-b", {3, 1}},
      {SplitOn("-", "MergedWithNext"), "a-b", {0, 4}},
      {SplitOn("-", "Contiguous"), "a--b", {0, 6, 1}},
      {SplitOn("-", "Isolated"), "a--b", {0, 2, 2, 1}},
      // Inverted, the non-dash text is the "match": Removed keeps only the dashes.
      {SplitOn("-", "Removed", true), "a-b", {2}},
      {{{"type", "Split"}, {"pattern", {{"Regex", "-+"}}}, {"behavior", "Isolated"}}, "a--b", {0, 6, 1}},
      {{{"type", "Digits"}, {"individual_digits", true}}, "12", {8, 9}},
      {{{"type", "Digits"}, {"individual_digits", false}}, "12a", {10, 0}},
      {{{"type", "Sequence"},
        {"pretokenizers", {SplitOn("-", "Removed"), {{"type", "Digits"}, {"individual_digits", true}}}}},
       "12-ab",
       {8, 9, 11}},
  };
  for (const Want& w : wants) {
    Json j = TinyTokenizer(false);
    j["pre_tokenizer"] = w.pre;
    EXPECT_EQ(LoadJson(j)->Encode(w.text), w.ids) << w.pre.dump() << " on " << w.text;
  }
}

TEST_F(TokenizerLoadTest, AddedTokenOptions) {
  Json j = TinyTokenizer(false);
  auto added = [](const std::string& content, int id, bool lstrip, bool rstrip, bool single) {
    return Json{{"id", id},         {"content", content}, {"single_word", single},
                {"lstrip", lstrip}, {"rstrip", rstrip},   {"normalized", false},
                {"special", true}};
  };
  j["added_tokens"] = {added("<m>", 20, true, false, false), added("<r>", 21, false, true, false),
                       added("<w>", 22, false, false, true), added("<mm>", 23, false, false, false)};
  auto t = LoadJson(j);
  EXPECT_EQ(t->vocab_size(), 24);
  EXPECT_EQ(t->Encode("a <m>b"), (std::vector<int32_t>{0, 20, 1}));     // lstrip eats " "
  EXPECT_EQ(t->Encode("a<r>  b"), (std::vector<int32_t>{0, 21, 1}));    // rstrip eats "  "
  EXPECT_EQ(t->Encode("a <w> b"), (std::vector<int32_t>{0, 7, 22, 7, 1}));
  EXPECT_EQ(t->Encode("a<w>"), std::vector<int32_t>{0});  // not a single word: '<' 'w' '>' unknown
  EXPECT_EQ(t->Encode("<mm><m>"), (std::vector<int32_t>{23, 20}));  // longest match first
  EXPECT_EQ(t->Decode(std::vector<int32_t>{0, 20, 1}), "a<m>b");
  EXPECT_EQ(t->Decode(std::vector<int32_t>{0, 20, 1}, true), "ab");
  EXPECT_EQ(t->TokenId("<mm>"), 23);
}

TEST_F(TokenizerLoadTest, ConfigTokensAsStringsOrObjects) {
  Write("t/tokenizer_config.json",
        Json{{"bos_token", {{"__type", "AddedToken"}, {"content", "a"}}},
             {"eos_token", "b"},
             {"add_bos_token", true},
             {"chat_template", Json::array({{{"name", "tool_use"}, {"template", "T"}},
                                            {{"name", "default"}, {"template", "D"}}})}});
  auto t = LoadJson(TinyTokenizer(false));
  EXPECT_EQ(t->bos_id(), 0);
  EXPECT_EQ(t->eos_id(), 1);
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->chat_template(), "D");
  // A folder path works too.
  EXPECT_EQ(Tokenizer::Load((dir_ / "t").string())->chat_template(), "D");
}

TEST_F(TokenizerLoadTest, MissingFile) {
  ExpectLoadError((dir_ / "nope.json").string(), {"nope.json", "does not exist"});
  ExpectLoadError(dir_.string(), {"tokenizer.json", "does not exist"});
}

TEST_F(TokenizerLoadTest, BadJson) {
  const std::string path = Write("x/tokenizer.json", std::string("{\"model\": {"));
  ExpectLoadError(path, {path, "invalid JSON"});
  Write("t/tokenizer_config.json", std::string("not json"));
  ExpectLoadError(Write("t/tokenizer.json", TinyTokenizer(false)), {"tokenizer_config.json", "invalid JSON"});
}

TEST_F(TokenizerLoadTest, UnsupportedModelTypes) {
  for (const std::string type : {"Unigram", "WordPiece", "WordLevel"}) {
    Json j = TinyTokenizer(false);
    j["model"]["type"] = type;
    ExpectJsonError(j, {"unsupported tokenizer model type '" + type + "'"});
  }
}

TEST_F(TokenizerLoadTest, UnknownComponentTypes) {
  Json j = TinyTokenizer(false);
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  ExpectJsonError(j, {"unsupported pre-tokenizer type 'Metaspace'"});
  j = TinyTokenizer(false);
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
  ExpectJsonError(j, {"unsupported normalizer type 'Lowercase'"});
  j = TinyTokenizer(false);
  j["decoder"] = {{"type", "WordPiece"}};
  ExpectJsonError(j, {"unsupported decoder type 'WordPiece'"});
  j = TinyTokenizer(false);
  j["pre_tokenizer"] = SplitOn("-", "Sideways");
  ExpectJsonError(j, {"Sideways"});
  j = TinyTokenizer(false);
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  ExpectJsonError(j, {"(unclosed"});
}

TEST_F(TokenizerLoadTest, MergesNamingUnknownTokens) {
  Json j = TinyTokenizer(false);
  j["model"]["merges"].push_back("a zz");
  ExpectJsonError(j, {"merge #6", "'zz'", "not in the vocab"});
  j = TinyTokenizer(true);
  j["model"]["merges"].push_back(Json::array({"b", "a"}));  // "ba" is not in the vocab
  ExpectJsonError(j, {"'ba'"});
  j = TinyTokenizer(false);
  j["model"]["merges"].push_back("a b c");
  ExpectJsonError(j, {"merge #6", "one space"});
  j = TinyTokenizer(false);
  j["model"]["vocab"]["q"] = "seven";
  ExpectJsonError(j, {"'q'"});
}

}  // namespace
}  // namespace r1
