#include "r1/model/presets.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/core/thread_pool.h"
#include "r1/io/safetensors.h"
#include "r1/model/config.h"
#include "r1/model/weights.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

Config PresetCfg(const std::string& name) { return ParseConfig(PresetConfig(name), name); }

std::string ErrorText(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PresetConfigTest, EveryNameParses) {
  const auto names = PresetNames();
  ASSERT_EQ(names.size(), 7u);
  for (const auto& n : names) {
    SCOPED_TRACE(n);
    const nlohmann::json j = PresetConfig(n);
    EXPECT_EQ(j.at("torch_dtype"), "bfloat16");
    EXPECT_TRUE(j.contains("bos_token_id"));
    EXPECT_TRUE(j.contains("eos_token_id"));
    EXPECT_TRUE(j.contains("rope_scaling"));
    EXPECT_NO_THROW(ParseConfig(j, n));
  }
}

TEST(PresetConfigTest, UnknownNameListsTheValidOnes) {
  const std::string msg = ErrorText([] { PresetConfig("deepseek-v4"); });
  EXPECT_NE(msg.find("deepseek-v4"), std::string::npos) << msg;
  for (const auto& n : PresetNames()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
}

TEST(PresetConfigTest, DeepseekV3MatchesThePublishedConfig) {
  const Config c = PresetCfg("deepseek-v3");
  EXPECT_EQ(c.arch, Arch::kDeepseekV3);
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.first_k_dense_replace, 3);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_EQ(c.topk_method, "noaux_tc");
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSigmoid);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kYarn);
  EXPECT_DOUBLE_EQ(c.rope_factor, 40);
  EXPECT_DOUBLE_EQ(c.rope_original_max_position, 4096);
  EXPECT_DOUBLE_EQ(c.yarn_mscale_all_dim, 1.0);
  EXPECT_EQ(c.num_nextn_predict_layers, 1);
  EXPECT_TRUE(c.fp8_declared);
  EXPECT_EQ(c.fp8_block, (std::vector<int>{128, 128}));
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{0});
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(PresetConfig("deepseek-r1"), PresetConfig("deepseek-v3"));
}

TEST(PresetConfigTest, SmallerPresetsHaveTheirDistinctiveSettings) {
  const Config lite = PresetCfg("deepseek-v2-lite");
  EXPECT_EQ(lite.arch, Arch::kDeepseekV2);
  EXPECT_EQ(lite.q_lora_rank, 0);
  EXPECT_EQ(lite.scoring_func, ScoringFunc::kSoftmax);
  EXPECT_FALSE(lite.norm_topk_prob);
  EXPECT_DOUBLE_EQ(lite.yarn_mscale, 0.707);
  EXPECT_EQ(lite.bos_token_ids, std::vector<int64_t>{100000});
  EXPECT_FALSE(lite.fp8_declared);

  const Config qwen = PresetCfg("r1-distill-qwen-1.5b");
  EXPECT_EQ(qwen.arch, Arch::kQwen2);
  EXPECT_EQ(qwen.head_dim, 128);
  EXPECT_FALSE(qwen.tie_word_embeddings);
  EXPECT_EQ(qwen.rope_scaling, RopeScaling::kNone);

  const Config llama = PresetCfg("r1-distill-llama-8b");
  EXPECT_EQ(llama.arch, Arch::kLlama);
  EXPECT_EQ(llama.rope_scaling, RopeScaling::kLlama3);
  EXPECT_DOUBLE_EQ(llama.rope_factor, 8);
  EXPECT_DOUBLE_EQ(llama.rope_theta, 500000);
  EXPECT_FLOAT_EQ(llama.rms_norm_eps, 1e-5f);

  for (const char* name : {"v3-nano", "v3-small"}) {
    SCOPED_TRACE(name);
    const Config c = PresetCfg(name);
    EXPECT_EQ(c.arch, Arch::kDeepseekV3);
    EXPECT_EQ(c.rope_scaling, RopeScaling::kNone);
    EXPECT_EQ(c.topk_method, "noaux_tc");
    EXPECT_EQ(c.n_group, 1);
    EXPECT_TRUE(c.norm_topk_prob);
    EXPECT_EQ(c.num_nextn_predict_layers, 1);
    EXPECT_EQ(c.first_k_dense_replace, 1);
  }
}

// model-spec §8.1. "Active" there counts the embedding table too ("with the embedding").
TEST(PresetCountsTest, DeepseekV3MatchesModelSpec) {
  const ParamCounts p = CountParams(PresetCfg("deepseek-v3"));
  EXPECT_EQ(p.total, 671'026'419'200);
  EXPECT_EQ(p.active, 37'552'297'472);
  EXPECT_EQ(p.active - p.embedding, 36'625'618'432);
  EXPECT_EQ(p.mtp, 13'463'426'304);
  EXPECT_EQ(p.total + p.mtp, 684'489'845'504);
  EXPECT_EQ(p.embedding, 129280LL * 7168);
}

TEST(PresetCountsTest, DeepseekV2LiteMatchesModelSpec) {
  const ParamCounts p = CountParams(PresetCfg("deepseek-v2-lite"));
  EXPECT_EQ(p.total, 15'706'484'224);
  EXPECT_EQ(p.active, 2'661'150'208);
  EXPECT_EQ(p.active - p.embedding, 2'451'435'008);
  EXPECT_EQ(p.mtp, 0);
}

TEST(PresetCountsTest, DistillModelsMatchModelSpec) {
  const ParamCounts qwen = CountParams(PresetCfg("r1-distill-qwen-1.5b"));
  EXPECT_EQ(qwen.total, 1'777'088'000);
  EXPECT_EQ(qwen.active, qwen.total);
  const ParamCounts llama = CountParams(PresetCfg("r1-distill-llama-8b"));
  EXPECT_EQ(llama.total, 8'030'261'248);
  EXPECT_EQ(llama.active, llama.total);
  EXPECT_EQ(llama.mtp, 0);
}

// The torch training benchmark (perf-anchors §3) counts parameters of its own module, where the
// routing bias is a buffer rather than a parameter and the MTP module shares embedding, head and
// final norm with the main model (the checkpoint layout stores copies and a shared_head.norm).
TEST(PresetCountsTest, TrainingPresetsMatchTheTorchBenchmark) {
  struct Want {
    const char* name;
    int64_t main, active, mtp_unique;
  };
  for (const Want& w : {Want{"v3-nano", 1'700'352, 815'616, 527'968},
                        Want{"v3-small", 63'376'384, 24'841'216, 7'940'416}}) {
    SCOPED_TRACE(w.name);
    const Config c = PresetCfg(w.name);
    const ParamCounts p = CountParams(c);
    const int64_t moe_layers = c.num_hidden_layers - c.first_k_dense_replace;
    const int64_t bias = c.n_routed_experts;  // e_score_correction_bias per MoE block
    const int64_t copies = 2 * c.vocab_size * c.hidden_size;
    EXPECT_EQ(p.total - moe_layers * bias, w.main);
    EXPECT_EQ(p.active - moe_layers * bias, w.active);
    EXPECT_EQ(p.mtp - copies - bias - c.hidden_size, w.mtp_unique);
  }
}

class PresetInitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("r1_presets_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string Read(const std::string& path) { return ReadFileToString(path); }

  // The bytes of every tensor, in name order, without the header.
  static std::string TensorBytes(const std::string& path) {
    auto f = SafetensorsFile::Open(path);
    std::vector<const TensorView*> views;
    for (const auto& t : f->tensors()) views.push_back(&t);
    std::sort(views.begin(), views.end(),
              [](const TensorView* a, const TensorView* b) { return a->name < b->name; });
    std::string out;
    for (const TensorView* t : views)
      out.append(reinterpret_cast<const char*>(t->data), t->nbytes);
    return out;
  }

  fs::path dir_;
};

float ValueAt(const TensorView& t, int64_t i) {
  if (t.dtype == DType::kBF16) {
    uint16_t h;
    std::memcpy(&h, t.data + 2 * i, 2);
    return Bf16ToF32(h);
  }
  float f;
  std::memcpy(&f, t.data + 4 * i, 4);
  return f;
}

// --layers keeps every layer's shape and the MTP module after the last layer.
TEST_F(PresetInitTest, LayersOverrideChangesOnlyTheLayerCount) {
  InitOptions opts;
  opts.layers = 2;
  InitModel("v3-nano", Path("two"), opts);
  const Config two = LoadConfig(Path("two"));
  InitModel("v3-nano", Path("full"), InitOptions{});
  const Config full = LoadConfig(Path("full"));
  EXPECT_EQ(two.num_hidden_layers, 2);
  EXPECT_NE(full.num_hidden_layers, 2);
  EXPECT_EQ(two.hidden_size, full.hidden_size);
  EXPECT_EQ(two.n_routed_experts, full.n_routed_experts);
  auto file = SafetensorsFile::Open(Path("two/model.safetensors"));
  const auto specs = ExpectedTensors(two, /*include_mtp=*/true);
  EXPECT_EQ(file->tensors().size(), specs.size());
  EXPECT_NE(file->Find("model.layers.2.eh_proj.weight"), nullptr);  // the MTP module
  EXPECT_EQ(file->Find("model.layers.3.self_attn.kv_a_proj_with_mqa.weight"), nullptr);
  opts.layers = -1;
  EXPECT_THROW(InitModel("v3-nano", Path("neg"), opts), Error);
}

TEST_F(PresetInitTest, NanoFolderHoldsExactlyTheExpectedTensors) {
  std::vector<double> fractions;
  InitOptions opts;
  opts.seed = 7;
  InitModel("v3-nano", Path("nano"), opts, [&](double f) { fractions.push_back(f); });

  const Config cfg = LoadConfig(Path("nano"));
  EXPECT_EQ(cfg.vocab_size, 64);
  EXPECT_EQ(cfg.num_nextn_predict_layers, 1);
  auto file = SafetensorsFile::Open(Path("nano/model.safetensors"));
  EXPECT_EQ(file->metadata().at("format"), "pt");
  const auto specs = ExpectedTensors(cfg, /*include_mtp=*/true);
  ASSERT_EQ(file->tensors().size(), specs.size());
  bool saw_mtp = false;
  for (const TensorSpec& s : specs) {
    SCOPED_TRACE(s.name);
    const TensorView* t = file->Find(s.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->shape, s.shape);
    const bool bias = s.name.ends_with("e_score_correction_bias");
    EXPECT_EQ(t->dtype, bias ? DType::kF32 : DType::kBF16);
    if (s.name.starts_with("model.layers.4.")) saw_mtp = true;
    if (s.is_matrix) {
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < t->numel(); ++i) {
        const double v = ValueAt(*t, i);
        sum += v;
        sq += v * v;
      }
      const double n = static_cast<double>(t->numel());
      EXPECT_NEAR(sum / n, 0.0, 0.004);
      EXPECT_NEAR(std::sqrt(sq / n), 0.02, 0.002);
    } else {
      const float want = bias ? 0.0f : 1.0f;
      for (int64_t i = 0; i < t->numel(); ++i) ASSERT_EQ(ValueAt(*t, i), want);
    }
  }
  EXPECT_TRUE(saw_mtp);
  // The weights bind, which is what the engine will do with them.
  TensorStore store = TensorStore::OpenDir(Path("nano"));
  const Weights w = BindWeights(cfg, store);
  EXPECT_EQ(w.mtp.size(), 1u);

  const auto gen = nlohmann::json::parse(Read(Path("nano/generation_config.json")));
  EXPECT_EQ(gen.at("bos_token_id"), 0);
  EXPECT_EQ(gen.at("eos_token_id"), 1);
  EXPECT_EQ(gen.at("do_sample"), true);
  EXPECT_DOUBLE_EQ(gen.at("temperature").get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(gen.at("top_p").get<double>(), 0.95);

  ASSERT_FALSE(fractions.empty());
  EXPECT_TRUE(std::is_sorted(fractions.begin(), fractions.end()));
  EXPECT_GT(fractions.front(), 0.0);
  EXPECT_DOUBLE_EQ(fractions.back(), 1.0);
}

TEST_F(PresetInitTest, SameSeedSameBytesWhateverTheThreadCount) {
  InitOptions opts;
  opts.seed = 42;
  SetDefaultPoolThreads(1);
  InitModel("v3-nano", Path("a"), opts);
  SetDefaultPoolThreads(3);
  InitModel("v3-nano", Path("b"), opts);
  SetDefaultPoolThreads(0);
  opts.seed = 43;
  InitModel("v3-nano", Path("c"), opts);

  const std::string a = Read(Path("a/model.safetensors"));
  EXPECT_EQ(a, Read(Path("b/model.safetensors")));
  EXPECT_EQ(Read(Path("a/config.json")), Read(Path("b/config.json")));
  EXPECT_NE(TensorBytes(Path("a/model.safetensors")), TensorBytes(Path("c/model.safetensors")));
}

TEST_F(PresetInitTest, Float32Option) {
  InitOptions opts;
  opts.dtype = DType::kF32;
  InitModel("v3-nano", Path("f32"), opts);
  auto file = SafetensorsFile::Open(Path("f32/model.safetensors"));
  for (const auto& t : file->tensors()) EXPECT_EQ(t.dtype, DType::kF32) << t.name;
  EXPECT_EQ(LoadConfig(Path("f32")).torch_dtype, "float32");

  opts.dtype = DType::kF8E4M3;
  EXPECT_THROW(InitModel("v3-nano", Path("fp8"), opts), Error);
}

TEST_F(PresetInitTest, RefusesAnExistingModelFolderUnlessOverwriting) {
  InitOptions opts;
  InitModel("v3-nano", Path("m"), opts);
  const std::string before = Read(Path("m/model.safetensors"));
  const std::string msg = ErrorText([&] { InitModel("v3-nano", Path("m"), opts); });
  EXPECT_NE(msg.find(Path("m")), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;

  // A folder holding other files only (say, a tokenizer) is fine.
  fs::create_directories(Path("other"));
  WriteFileAtomic(Path("other/notes.txt"), "hello");
  EXPECT_NO_THROW(InitModel("v3-nano", Path("other"), opts));

  opts.overwrite = true;
  opts.seed = 1;
  InitModel("v3-nano", Path("m"), opts);
  EXPECT_NE(Read(Path("m/model.safetensors")), before);

  WriteFileAtomic(Path("file"), "x");
  EXPECT_THROW(InitModel("v3-nano", Path("file"), opts), Error);
}

TEST_F(PresetInitTest, RefusesThe671BPresets) {
  for (const char* name : {"deepseek-v3", "deepseek-r1"}) {
    const std::string msg = ErrorText([&] { InitModel(name, Path(name), InitOptions{}); });
    EXPECT_NE(msg.find("r1 info --preset"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(Path(name)));
  }
  EXPECT_THROW(InitModel("nope", Path("nope"), InitOptions{}), Error);
}

TEST_F(PresetInitTest, TokenizerSetsVocabAndSpecialIds) {
  const fs::path tok_dir = fs::path(R1_GOLDEN_DIR) / "tokenizer" / "deepseek_v3";
  const std::string tok_json = Read((tok_dir / "tokenizer.json").string());
  // Expected size straight from the file: max id over the BPE vocab and the added tokens, + 1.
  const auto tok = nlohmann::json::parse(tok_json);
  int64_t max_id = -1;
  for (const auto& [token, id] : tok["model"]["vocab"].items())
    max_id = std::max(max_id, id.get<int64_t>());
  int64_t bos = -1, eos = -1;
  for (const auto& t : tok["added_tokens"]) {
    max_id = std::max(max_id, t["id"].get<int64_t>());
    if (t["content"] == "<｜begin▁of▁sentence｜>") bos = t["id"];
    if (t["content"] == "<｜end▁of▁sentence｜>") eos = t["id"];
  }
  ASSERT_EQ(tok["model"]["vocab"].size(), 128000u);
  ASSERT_EQ(tok["added_tokens"].size(), 818u);

  InitOptions opts;
  opts.tokenizer_path = tok_dir.string();  // a folder; the file itself works too
  InitModel("v3-nano", Path("tok"), opts);
  const Config cfg = LoadConfig(Path("tok"));
  EXPECT_EQ(cfg.vocab_size, max_id + 1);
  EXPECT_EQ(cfg.vocab_size, 128815);
  EXPECT_EQ(cfg.bos_token_ids, std::vector<int64_t>{bos});
  EXPECT_EQ(cfg.eos_token_ids, std::vector<int64_t>{eos});
  EXPECT_EQ(Read(Path("tok/tokenizer.json")), tok_json);
  EXPECT_EQ(Read(Path("tok/tokenizer_config.json")),
            Read((tok_dir / "tokenizer_config.json").string()));
  auto file = SafetensorsFile::Open(Path("tok/model.safetensors"));
  EXPECT_EQ(file->Find("model.embed_tokens.weight")->shape,
            (std::vector<int64_t>{max_id + 1, 128}));
  EXPECT_EQ(file->Find("lm_head.weight")->shape, (std::vector<int64_t>{max_id + 1, 128}));
}

TEST_F(PresetInitTest, TokenizerWithoutConfigKeepsPresetIdsWhenTheyFit) {
  InitOptions opts;
  WriteFileAtomic(Path("small_tok.json"),
                  R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2}},
                      "added_tokens": [{"id": 5, "content": "<s>"}]})");
  opts.tokenizer_path = Path("small_tok.json");
  InitModel("v3-nano", Path("tiny"), opts);
  const Config cfg = LoadConfig(Path("tiny"));
  EXPECT_EQ(cfg.vocab_size, 6);
  EXPECT_EQ(cfg.bos_token_ids, std::vector<int64_t>{0});
  EXPECT_FALSE(fs::exists(Path("tiny/tokenizer_config.json")));

  // Preset ids that do not fit the tokenizer are an error, not a silently broken model.
  WriteFileAtomic(Path("one_tok.json"), R"({"model": {"type": "BPE", "vocab": {"a": 0}}})");
  opts.tokenizer_path = Path("one_tok.json");
  const std::string msg = ErrorText([&] { InitModel("v3-nano", Path("bad"), opts); });
  EXPECT_NE(msg.find("eos_token_id"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(Path("bad")));
}

}  // namespace
}  // namespace r1
