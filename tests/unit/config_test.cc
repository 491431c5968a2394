// ParseConfig / LoadConfig: errors name the problem, defaults follow model-spec §1, and every
// golden config parses.
#include "r1/model/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kSource[] = "models/test/config.json";

json LlamaJson() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "bos_token_id": 128000,
    "eos_token_id": 128001, "tie_word_embeddings": false
  })");
}

json DeepseekJson() {
  return json::parse(R"({
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
    "vocab_size": 2048, "hidden_size": 256, "intermediate_size": 512,
    "moe_intermediate_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
    "num_key_value_heads": 4, "n_routed_experts": 16, "n_shared_experts": 1,
    "num_experts_per_tok": 4, "n_group": 4, "topk_group": 2, "topk_method": "noaux_tc",
    "scoring_func": "sigmoid", "norm_topk_prob": true, "routed_scaling_factor": 2.5,
    "first_k_dense_replace": 1, "moe_layer_freq": 1, "q_lora_rank": 192, "kv_lora_rank": 128,
    "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32, "hidden_act": "silu",
    "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
    "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "max_position_embeddings": 512, "bos_token_id": 0, "eos_token_id": 1
  })");
}

// The r1::Error message ParseConfig throws, or a marker when it throws something else or nothing.
std::string ParseError(const json& j) {
  try {
    ParseConfig(j, kSource);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not an r1::Error: ") + e.what() + ">";
  }
  return "<no error>";
}

void ExpectParseError(const json& j, std::initializer_list<const char*> needles) {
  const std::string msg = ParseError(j);
  EXPECT_NE(msg.find(kSource), std::string::npos) << "message does not name the file: " << msg;
  for (const char* needle : needles)
    EXPECT_NE(msg.find(needle), std::string::npos) << "missing '" << needle << "' in: " << msg;
}

TEST(ConfigTest, ValidBaselinesParse) {
  EXPECT_EQ(ParseError(LlamaJson()), "<no error>");
  EXPECT_EQ(ParseError(DeepseekJson()), "<no error>");
}

TEST(ConfigTest, UnknownArchitectureIsNamed) {
  json j = LlamaJson();
  j["architectures"] = {"MistralForCausalLM"};
  ExpectParseError(j, {"MistralForCausalLM"});
}

TEST(ConfigTest, MissingArchitectures) {
  json j = LlamaJson();
  j.erase("architectures");
  ExpectParseError(j, {"architectures"});
  j["architectures"] = json::array();
  ExpectParseError(j, {"architectures"});
  j["architectures"] = "LlamaForCausalLM";  // a string, not a list
  ExpectParseError(j, {"architectures"});
  j["architectures"] = {42};
  ExpectParseError(j, {"architectures"});
}

TEST(ConfigTest, NotAnObject) {
  const std::string msg = ParseError(json::array({1, 2}));
  EXPECT_NE(msg.find(kSource), std::string::npos) << msg;
}

TEST(ConfigTest, MissingRequiredFieldsAreNamed) {
  for (const char* field : {"hidden_size", "vocab_size", "num_hidden_layers",
                            "num_attention_heads", "intermediate_size"}) {
    json j = LlamaJson();
    j.erase(field);
    ExpectParseError(j, {field});
    j[field] = nullptr;  // null counts as missing
    ExpectParseError(j, {field});
  }
  for (const char* field : {"hidden_size", "vocab_size", "num_hidden_layers", "kv_lora_rank",
                            "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
                            "num_experts_per_tok", "moe_intermediate_size",
                            "intermediate_size"}) {
    json j = DeepseekJson();
    j.erase(field);
    ExpectParseError(j, {field});
  }
}

TEST(ConfigTest, WrongTypesAreNamed) {
  struct Case {
    const char* field;
    json value;
  };
  const Case cases[] = {
      {"hidden_size", "abc"},       {"hidden_size", 1.5},           {"hidden_size", true},
      {"vocab_size", json::array()}, {"num_hidden_layers", "32"},    {"rms_norm_eps", "1e-5"},
      {"rope_theta", "big"},        {"tie_word_embeddings", "yes"}, {"model_type", 3},
      {"num_key_value_heads", 2.5}, {"eos_token_id", "eos"},
  };
  for (const Case& c : cases) {
    json j = LlamaJson();
    j[c.field] = c.value;
    ExpectParseError(j, {c.field});
  }
  json d = DeepseekJson();
  d["kv_lora_rank"] = "512";
  ExpectParseError(d, {"kv_lora_rank"});
}

TEST(ConfigTest, NonPositiveSizesRejected) {
  for (const char* field : {"hidden_size", "vocab_size", "num_hidden_layers"}) {
    json j = LlamaJson();
    j[field] = 0;
    ExpectParseError(j, {field});
    j[field] = -4;
    ExpectParseError(j, {field});
  }
}

TEST(ConfigTest, IntegralFloatsAccepted) {
  json j = LlamaJson();
  j["hidden_size"] = 4096.0;
  const Config c = ParseConfig(j, kSource);
  EXPECT_EQ(c.hidden_size, 4096);
}

TEST(ConfigTest, UnsupportedRopeType) {
  json j = LlamaJson();
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  ExpectParseError(j, {"dynamic"});
  j["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 2.0}};
  ExpectParseError(j, {"longrope"});
}

TEST(ConfigTest, RopeScalingParameterErrors) {
  json j = DeepseekJson();
  j["rope_scaling"].erase("factor");
  ExpectParseError(j, {"factor"});
  j = DeepseekJson();
  j["rope_scaling"].erase("original_max_position_embeddings");
  ExpectParseError(j, {"original_max_position_embeddings"});
  j = LlamaJson();
  j["rope_scaling"]["high_freq_factor"] = 0.5;
  ExpectParseError(j, {"high_freq_factor"});
}

TEST(ConfigTest, HeadsNotDivisibleByKvHeads) {
  json j = LlamaJson();
  j["num_key_value_heads"] = 5;
  ExpectParseError(j, {"num_key_value_heads"});
  j["num_key_value_heads"] = 0;
  ExpectParseError(j, {"num_key_value_heads"});
}

TEST(ConfigTest, HiddenNotMultipleOfHeadsNeedsHeadDim) {
  json j = LlamaJson();
  j["num_attention_heads"] = 24;  // 4096 / 24 is not whole
  j["num_key_value_heads"] = 8;
  ExpectParseError(j, {"head_dim"});
  j["head_dim"] = 128;
  const Config c = ParseConfig(j, kSource);
  EXPECT_EQ(c.head_dim, 128);
  j["head_dim"] = 127;  // odd: cannot be rotated in pairs
  ExpectParseError(j, {"head_dim"});
}

TEST(ConfigTest, MoeConsistencyChecks) {
  json j = DeepseekJson();
  j["n_group"] = 3;  // 16 experts in 3 groups
  ExpectParseError(j, {"n_routed_experts", "n_group"});
  j = DeepseekJson();
  j["topk_group"] = 5;  // more than n_group = 4
  ExpectParseError(j, {"topk_group"});
  j = DeepseekJson();
  j["topk_group"] = 0;
  ExpectParseError(j, {"topk_group"});
  j = DeepseekJson();
  j["scoring_func"] = "tanh";
  ExpectParseError(j, {"scoring_func", "tanh"});
  j = DeepseekJson();
  j["topk_method"] = "random";
  ExpectParseError(j, {"topk_method", "random"});
  j = DeepseekJson();
  j["num_experts_per_tok"] = 17;
  ExpectParseError(j, {"num_experts_per_tok"});
  j = DeepseekJson();
  j["qk_rope_head_dim"] = 15;
  ExpectParseError(j, {"qk_rope_head_dim"});
}

TEST(ConfigTest, UnsupportedActivation) {
  json j = LlamaJson();
  j["hidden_act"] = "gelu";
  ExpectParseError(j, {"gelu"});
}

TEST(ConfigTest, DenseDefaults) {
  json j = LlamaJson();
  j.erase("num_key_value_heads");
  j.erase("rms_norm_eps");
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j.erase("bos_token_id");
  j.erase("tie_word_embeddings");
  const Config c = ParseConfig(j, kSource);
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.num_key_value_heads, 32);  // defaults to heads
  EXPECT_EQ(c.head_dim, 128);            // hidden / heads
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-6f);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kNone);
  EXPECT_TRUE(c.bos_token_ids.empty());
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.is_deepseek());
}

TEST(ConfigTest, ExplicitHeadDimWins) {
  json j = LlamaJson();
  j["head_dim"] = 64;
  EXPECT_EQ(ParseConfig(j, kSource).head_dim, 64);
}

TEST(ConfigTest, EosTokenIdList) {
  json j = LlamaJson();
  j["eos_token_id"] = {128001, 128008, 128009};
  const Config c = ParseConfig(j, kSource);
  ASSERT_EQ(c.eos_token_ids.size(), 3u);
  EXPECT_EQ(c.eos_token_ids[0], 128001);
  EXPECT_EQ(c.eos_token_ids[2], 128009);
  ASSERT_EQ(c.bos_token_ids.size(), 1u);
  EXPECT_EQ(c.bos_token_ids[0], 128000);
  j["eos_token_id"] = 7;
  const Config single = ParseConfig(j, kSource);
  ASSERT_EQ(single.eos_token_ids.size(), 1u);
  EXPECT_EQ(single.eos_token_ids[0], 7);
}

TEST(ConfigTest, RopeScalingKeys) {
  // Llama spelling: "rope_type".
  Config c = ParseConfig(LlamaJson(), kSource);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(c.rope_factor, 8.0);
  EXPECT_EQ(c.llama3_low_freq_factor, 1.0);
  EXPECT_EQ(c.llama3_high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_original_max_position, 8192.0);
  // DeepSeek spelling "type", and "rope_type" for yarn too.
  json d = DeepseekJson();
  c = ParseConfig(d, kSource);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kYarn);
  EXPECT_EQ(c.rope_factor, 4.0);
  EXPECT_EQ(c.rope_original_max_position, 128.0);
  d["rope_scaling"].erase("type");
  d["rope_scaling"]["rope_type"] = "yarn";
  c = ParseConfig(d, kSource);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kYarn);
  // Null and "default" mean plain RoPE.
  json l = LlamaJson();
  l["rope_scaling"] = nullptr;
  EXPECT_EQ(ParseConfig(l, kSource).rope_scaling, RopeScaling::kNone);
  l["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_EQ(ParseConfig(l, kSource).rope_scaling, RopeScaling::kNone);
  // Newer transformers: rope_parameters, with rope_theta moved inside.
  l = LlamaJson();
  l["rope_parameters"] = l["rope_scaling"];
  l["rope_parameters"]["rope_theta"] = 250000.0;
  l.erase("rope_scaling");
  l.erase("rope_theta");
  c = ParseConfig(l, kSource);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(c.rope_theta, 250000.0);
}

TEST(ConfigTest, DeepseekFields) {
  json j = DeepseekJson();
  j["q_lora_rank"] = nullptr;
  const Config c = ParseConfig(j, kSource);
  EXPECT_EQ(c.arch, Arch::kDeepseekV3);
  EXPECT_TRUE(c.is_deepseek());
  EXPECT_EQ(c.q_lora_rank, 0);
  EXPECT_EQ(c.kv_lora_rank, 128);
  EXPECT_EQ(c.qk_head_dim(), 48);
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSigmoid);
  EXPECT_EQ(c.topk_method, "noaux_tc");
  EXPECT_EQ(c.n_group, 4);
  EXPECT_EQ(c.topk_group, 2);
  EXPECT_FALSE(c.is_moe_layer(0));
  EXPECT_TRUE(c.is_moe_layer(1));
  EXPECT_TRUE(c.is_moe_layer(3));
}

TEST(ConfigTest, QuantizationConfig) {
  json j = DeepseekJson();
  j["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {64, 32}}};
  Config c = ParseConfig(j, kSource);
  EXPECT_TRUE(c.fp8_declared);
  ASSERT_EQ(c.fp8_block.size(), 2u);
  EXPECT_EQ(c.fp8_block[0], 64);
  EXPECT_EQ(c.fp8_block[1], 32);
  j["quantization_config"]["weight_block_size"] = {0, 128};
  ExpectParseError(j, {"weight_block_size"});
  j["quantization_config"]["weight_block_size"] = {128};
  ExpectParseError(j, {"weight_block_size"});
}

// r1cpp's own entry: the current tile layout loads; the block-order tiles of the same tensor
// sizes (before 2026-12-07) are refused with the way out.
TEST(ConfigTest, R1cppQuantizationLayouts) {
  json j = DeepseekJson();
  j["quantization_config"] = {{"quant_method", "r1cpp"}, {"format", "q4_0"}, {"block_size", 32},
                              {"layout", "tiles_4x16_words"}};
  Config c = ParseConfig(j, kSource);
  EXPECT_EQ(c.quant_format, "q4_0");
  j["quantization_config"]["layout"] = "tiles_4x16";
  ExpectParseError(j, {"earlier r1cpp", "r1 quantize"});
  j["quantization_config"]["layout"] = "rows";
  ExpectParseError(j, {"tiles_4x16_words", "rows"});
}

// --- LoadConfig ------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("r1_config_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

std::string LoadError(const std::string& dir) {
  try {
    LoadConfig(dir);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not an r1::Error: ") + e.what() + ">";
  }
  return "<no error>";
}

TEST(LoadConfigTest, MissingDirectory) {
  TempDir tmp;
  const std::string dir = (tmp.path() / "no-such-model").string();
  const std::string msg = LoadError(dir);
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;
  EXPECT_EQ(msg.find("<no error>"), std::string::npos);
  EXPECT_EQ(msg.find("<not an r1::Error"), std::string::npos) << msg;
}

TEST(LoadConfigTest, FileInsteadOfDirectory) {
  TempDir tmp;
  tmp.Write("config.json", LlamaJson().dump());
  const std::string msg = LoadError((tmp.path() / "config.json").string());
  EXPECT_EQ(msg.find("<"), std::string::npos) << msg;  // an r1::Error, not a crash or success
}

TEST(LoadConfigTest, DirectoryWithoutConfig) {
  TempDir tmp;
  tmp.Write("model.safetensors", "");
  const std::string msg = LoadError(tmp.path().string());
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("<"), std::string::npos) << msg;
}

TEST(LoadConfigTest, InvalidJson) {
  TempDir tmp;
  tmp.Write("config.json", "{\"architectures\": [\"LlamaForCausalLM\"],");
  const std::string msg = LoadError(tmp.path().string());
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("JSON"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("<"), std::string::npos) << msg;
}

TEST(LoadConfigTest, EmptyFile) {
  TempDir tmp;
  tmp.Write("config.json", "");
  const std::string msg = LoadError(tmp.path().string());
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("<"), std::string::npos) << msg;
}

TEST(LoadConfigTest, ErrorsInsideTheFileNameIt) {
  TempDir tmp;
  json j = LlamaJson();
  j.erase("vocab_size");
  tmp.Write("config.json", j.dump());
  const std::string msg = LoadError(tmp.path().string());
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab_size"), std::string::npos) << msg;
}

TEST(LoadConfigTest, ValidFile) {
  TempDir tmp;
  tmp.Write("config.json", LlamaJson().dump(2));
  const Config c = LoadConfig(tmp.path().string());
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.raw["vocab_size"], 128256);
}

// --- golden configs ----------------------------------------------------------------------------

TEST(GoldenConfigTest, EveryGoldenConfigParses) {
  struct Case {
    const char* dir;
    Arch arch;
    int layers;
  };
  const Case cases[] = {
      {"deepseek-v3-tiny", Arch::kDeepseekV3, 4}, {"deepseek-v3-train", Arch::kDeepseekV3, 3},
      {"deepseek-v2-tiny", Arch::kDeepseekV2, 3}, {"qwen2-tiny", Arch::kQwen2, 3},
      {"llama3-tiny", Arch::kLlama, 3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dir);
    const Config cfg = LoadConfig(std::string(R1_GOLDEN_DIR) + "/" + c.dir + "/model");
    EXPECT_EQ(cfg.arch, c.arch);
    EXPECT_EQ(cfg.architecture, ArchName(c.arch));
    EXPECT_EQ(cfg.hidden_size, 256);
    EXPECT_EQ(cfg.num_hidden_layers, c.layers);
    EXPECT_EQ(cfg.num_attention_heads, 4);
  }
}

TEST(GoldenConfigTest, DistinctiveSettings) {
  const std::string g = R1_GOLDEN_DIR;
  const Config v3 = LoadConfig(g + "/deepseek-v3-tiny/model");
  EXPECT_TRUE(v3.fp8_declared);
  EXPECT_EQ(v3.q_lora_rank, 192);
  EXPECT_EQ(v3.n_routed_experts, 16);
  EXPECT_EQ(v3.rope_factor, 4.0);
  const Config v2 = LoadConfig(g + "/deepseek-v2-tiny/model");
  EXPECT_EQ(v2.q_lora_rank, 0);  // null
  EXPECT_EQ(v2.rope_factor, 40.0);  // as written, not max_position / original
  EXPECT_EQ(v2.scoring_func, ScoringFunc::kSoftmax);
  EXPECT_EQ(v2.topk_method, "greedy");
  const Config qwen = LoadConfig(g + "/qwen2-tiny/model");
  EXPECT_TRUE(qwen.tie_word_embeddings);
  EXPECT_EQ(qwen.num_key_value_heads, 2);
  EXPECT_EQ(qwen.head_dim, 64);
  EXPECT_EQ(qwen.rope_scaling, RopeScaling::kNone);
  const Config llama = LoadConfig(g + "/llama3-tiny/model");
  EXPECT_EQ(llama.rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(llama.rope_theta, 500000.0);
  EXPECT_FLOAT_EQ(llama.rms_norm_eps, 1e-5f);
  EXPECT_FALSE(llama.tie_word_embeddings);
}

}  // namespace
}  // namespace r1
