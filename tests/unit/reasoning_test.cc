// Splitting <think> reasoning from the answer, one-shot and streamed: every way of cutting the
// text into pushes must give the one-shot result.
#include "r1/tokenizer/reasoning.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace r1 {
namespace {

ReasoningSplit Stream(const std::vector<std::string_view>& pieces, bool starts_in_reasoning) {
  ReasoningParser p(starts_in_reasoning);
  ReasoningSplit total;
  for (auto piece : pieces) {
    const auto d = p.Push(piece);
    total.reasoning += d.reasoning;
    total.content += d.content;
  }
  const auto d = p.Flush();
  total.reasoning += d.reasoning;
  total.content += d.content;
  return total;
}

void ExpectSplit(std::string_view text, bool starts, const std::string& reasoning,
                 const std::string& content) {
  SCOPED_TRACE(testing::Message() << "text=\"" << text << "\" starts=" << starts);
  const ReasoningSplit one = SplitReasoning(text, starts);
  EXPECT_EQ(one.reasoning, reasoning);
  EXPECT_EQ(one.content, content);
}

TEST(ReasoningTest, R1PromptStartsInsideReasoning) {
  ExpectSplit("The user greets me.\n</think>\n\nHi! How can I help?", true, "The user greets me.",
              "Hi! How can I help?");
  ExpectSplit("\nthinking...\n\n</think>\n\nAnswer.\n", true, "thinking...", "Answer.\n");
  // Still thinking when generation stopped.
  ExpectSplit("\nstep 1\nstep 2\n", true, "step 1\nstep 2", "");
  // Only the first </think> closes; a later one is answer text.
  ExpectSplit("a</think>b</think>c", true, "a", "b</think>c");
  ExpectSplit("</think>just the answer", true, "", "just the answer");
}

TEST(ReasoningTest, OpeningTagAtTheStartOfTheOutput) {
  ExpectSplit("<think>\nHmm.\n</think>\n\nYes.", false, "Hmm.", "Yes.");
  ExpectSplit("\n  <think>x</think>y", false, "x", "y");
  ExpectSplit("<think>\n\n</think>\n\nNo thinking.", false, "", "No thinking.");
  ExpectSplit("<think>unfinished", false, "unfinished", "");
}

TEST(ReasoningTest, TagsInsideTheAnswerAreText) {
  ExpectSplit("Answer with <think> tags </think> inside", false, "",
              "Answer with <think> tags </think> inside");
  ExpectSplit("no reasoning at all", false, "", "no reasoning at all");
  ExpectSplit("</think>stray", false, "", "</think>stray");
  ExpectSplit("<thinker>", false, "", "<thinker>");
  ExpectSplit("  <thi", false, "", "<thi");
  ExpectSplit("", false, "", "");
  ExpectSplit("", true, "", "");
}

TEST(ReasoningTest, TagSplitAcrossPushes) {
  const auto r = Stream({"<thi", "nk>\nreason", "ing</th", "ink>", "\n\nans", "wer"}, false);
  EXPECT_EQ(r.reasoning, "reasoning");
  EXPECT_EQ(r.content, "answer");
  ReasoningParser p(true);
  EXPECT_EQ(p.Push("abc</").reasoning, "abc");  // "</" is held back: it may start </think>
  EXPECT_TRUE(p.in_reasoning());
  const auto d = p.Push("x");  // it did not
  EXPECT_EQ(d.reasoning, "</x");
  EXPECT_EQ(p.Push("</think>").reasoning, "");
  EXPECT_FALSE(p.in_reasoning());
}

TEST(ReasoningTest, TrailingReasoningWhitespaceIsHeldUntilDecided) {
  ReasoningParser p(true);
  EXPECT_EQ(p.Push("\nfirst\n\n").reasoning, "first");
  EXPECT_EQ(p.Push("second").reasoning, "\n\nsecond");
  EXPECT_EQ(p.Push("\n</think>\n").reasoning, "");
  EXPECT_EQ(p.Push("\n ok").content, "ok");
}

// Every cut into two and three pieces, and one byte at a time, equals the one-shot split.
TEST(ReasoningTest, StreamingMatchesOneShotForEverySplit) {
  const std::vector<std::string> texts = {
      "<think>\nLet me see.\n</think>\n\nThe answer is 4.",
      "\nreasoning </thi nk> more\n</think>\n\n content </think> end",
      "  <think>\n\n</think>\n\n",
      "<thin>not a tag</think>",
      "plain answer with <think> later",
      "a</think>b",
      "日本語の推論\n</think>\n\n答え 🙂",
      "<",
      "</think",
  };
  for (const bool starts : {false, true}) {
    for (const auto& text : texts) {
      SCOPED_TRACE(testing::Message() << "starts=" << starts << " text=\"" << text << "\"");
      const ReasoningSplit want = SplitReasoning(text, starts);
      const std::string_view t = text;
      for (size_t i = 0; i <= t.size(); ++i) {
        const auto two = Stream({t.substr(0, i), t.substr(i)}, starts);
        ASSERT_EQ(two.reasoning, want.reasoning) << "cut at " << i;
        ASSERT_EQ(two.content, want.content) << "cut at " << i;
        for (size_t j = i; j <= t.size(); ++j) {
          const auto three = Stream({t.substr(0, i), t.substr(i, j - i), t.substr(j)}, starts);
          ASSERT_EQ(three.reasoning, want.reasoning) << "cuts at " << i << ", " << j;
          ASSERT_EQ(three.content, want.content) << "cuts at " << i << ", " << j;
        }
      }
      std::vector<std::string_view> bytes;
      for (size_t i = 0; i < t.size(); ++i) bytes.push_back(t.substr(i, 1));
      const auto each = Stream(bytes, starts);
      EXPECT_EQ(each.reasoning, want.reasoning);
      EXPECT_EQ(each.content, want.content);
    }
  }
}

}  // namespace
}  // namespace r1
