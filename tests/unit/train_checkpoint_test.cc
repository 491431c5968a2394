#include "r1/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/io/safetensors.h"
#include "r1/model/model.h"
#include "r1/model/presets.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ErrorText(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void WriteText(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

void FillGrads(ParamSet& ps, int step) {
  int k = 0;
  for (Param& p : ps.params()) {
    ++k;
    for (size_t i = 0; i < p.grad.size(); ++i)
      p.grad[i] = static_cast<float>(std::sin(0.1 * i + step + k) * 0.01);
  }
}

struct TrainRun {
  Config cfg;
  ParamSet params;
  AdamW opt;
  TrainerState state;
};

class TrainCkpt : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("r1_train_ckpt_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "tok");
    ASSERT_NE(std::find(PresetNames().begin(), PresetNames().end(), "v3-nano"),
              PresetNames().end());
    InitOptions init;
    init.seed = 7;
    init.dtype = DType::kF32;
    InitModel("v3-nano", (root_ / "init").string(), init);
    WriteText(root_ / "tok" / "tokenizer.json", "{\"model\": \"a stand-in tokenizer\"}\n");
    WriteText(root_ / "tok" / "tokenizer_config.json", "{\"bos_token\": \"<s>\"}\n");
    WriteText(root_ / "tok" / "generation_config.json",
              "{\"temperature\": 0.7, \"bos_token_id\": 42}\n");
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void SetUp() override {
    dir_ = root_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  // A run after `steps` AdamW steps, so the moments and step count are not trivial.
  static TrainRun Train(int steps) {
    TrainRun r;
    r.params = ParamSet::FromDir((root_ / "init").string(), &r.cfg);
    r.opt = AdamW(r.params, AdamWOptions{.beta2 = 0.99, .weight_decay = 0.05});
    for (int s = 0; s < steps; ++s) {
      FillGrads(r.params, s);
      r.opt.Step(r.params, 1e-3);
    }
    r.state.step = steps;
    r.state.options = {{"lr", 0.1}, {"schedule", "wsd"}, {"batch", {4, 33}}};
    r.state.data_state = {{"shard", 3}, {"offset", 123456789012LL}};
    r.state.rng_state = {{"s", {std::numeric_limits<uint64_t>::max(), 1u}}};
    r.state.extra = {{"best_loss", 1.2345678901234567}};
    return r;
  }

  static TrainRun Load(const fs::path& dir) {
    TrainRun r;
    LoadCheckpoint(dir.string(), &r.cfg, &r.params, &r.opt, &r.state);
    return r;
  }

  std::string Tok() const { return (root_ / "tok").string(); }

  static fs::path root_;
  fs::path dir_;
};

fs::path TrainCkpt::root_;

std::vector<std::string> Siblings(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir.parent_path())) {
    const std::string name = e.path().filename().string();
    if (name != dir.filename().string() && name.starts_with(dir.filename().string()))
      out.push_back(name);
  }
  return out;
}

TEST_F(TrainCkpt, RoundTripIsBitExact) {
  const TrainRun a = Train(2);
  const fs::path ckpt = dir_ / "ckpt";
  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state, Tok());
  EXPECT_TRUE(IsCheckpoint(ckpt.string()));
  const TrainRun b = Load(ckpt);

  ASSERT_EQ(b.params.params().size(), a.params.params().size());
  EXPECT_EQ(b.params.mtp_modules(), a.params.mtp_modules());
  for (const Param& p : a.params.params()) {
    SCOPED_TRACE(p.name);
    const Param& q = b.params.Get(p.name);
    EXPECT_EQ(q.shape, p.shape);
    EXPECT_TRUE(q.value == p.value);
    EXPECT_EQ(q.decay, p.decay);
    EXPECT_EQ(q.trainable, p.trainable);
    const AdamW::Moments* ma = a.opt.Find(p.name);
    const AdamW::Moments* mb = b.opt.Find(p.name);
    ASSERT_EQ(ma == nullptr, mb == nullptr);
    if (!ma) continue;
    EXPECT_TRUE(ma->m == mb->m);
    EXPECT_TRUE(ma->v == mb->v);
  }
  EXPECT_EQ(b.opt.step(), 2);
  EXPECT_EQ(b.opt.options().beta2, 0.99);
  EXPECT_EQ(b.opt.options().weight_decay, 0.05);
  EXPECT_EQ(b.state.step, 2);
  EXPECT_EQ(b.state.options, a.state.options);
  EXPECT_EQ(b.state.data_state, a.state.data_state);
  EXPECT_EQ(b.state.rng_state, a.state.rng_state);
  EXPECT_EQ(b.state.extra, a.state.extra);
  EXPECT_EQ(ReadTrainerState(ckpt.string()).rng_state, a.state.rng_state);

  // A Hugging Face folder: float32 config, the tokenizer copied, generation ids from the config.
  EXPECT_EQ(json::parse(ReadFileToString((ckpt / "config.json").string()))["torch_dtype"],
            "float32");
  EXPECT_EQ(ReadFileToString((ckpt / "tokenizer.json").string()),
            ReadFileToString((root_ / "tok" / "tokenizer.json").string()));
  EXPECT_TRUE(fs::exists(ckpt / "tokenizer_config.json"));
  const json gen = json::parse(ReadFileToString((ckpt / "generation_config.json").string()));
  EXPECT_EQ(gen["temperature"], 0.7);
  EXPECT_EQ(gen["bos_token_id"], a.cfg.raw["bos_token_id"]);
  EXPECT_EQ(gen["eos_token_id"], a.cfg.raw["eos_token_id"]);
  EXPECT_TRUE(Siblings(ckpt).empty());
}

TEST_F(TrainCkpt, ResumedRunContinuesBitForBit) {
  TrainRun a = Train(2);
  const fs::path ckpt = dir_ / "ckpt";
  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state);
  TrainRun b = Load(ckpt);
  for (TrainRun* r : {&a, &b}) {
    FillGrads(r->params, 2);
    r->opt.Step(r->params, 1e-3);
  }
  for (const Param& p : a.params.params())
    EXPECT_TRUE(b.params.Get(p.name).value == p.value) << p.name;
}

std::vector<float> Logits(const Model& model) {
  const std::vector<int32_t> ids = {1, 5, 9, 33, 2, 63};
  KVCache cache = model.NewCache();
  const SeqChunk chunk{cache.AddSequence(), ids};
  StepOptions opts;
  opts.all_logits = true;
  StepOutput out;
  model.Step(cache, {&chunk, 1}, opts, out);
  return out.logits;
}

TEST_F(TrainCkpt, SavedFolderLoadsAsAModelWithTheSameLogits) {
  const TrainRun a = Train(1);
  const fs::path ckpt = dir_ / "ckpt";
  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state);
  const std::unique_ptr<Model> loaded = Model::Load(ckpt.string());
  const Model direct(a.cfg, a.params.View());
  const std::vector<float> expected = Logits(direct);
  ASSERT_EQ(expected.size(), 6u * 64u);
  EXPECT_TRUE(Logits(*loaded) == expected);
  // The MTP module's copies of the embedding and head are written too.
  const TensorStore store = TensorStore::OpenDir(ckpt.string());
  EXPECT_NE(store.Find("model.layers.4.embed_tokens.weight"), nullptr);
  EXPECT_NE(store.Find("model.layers.4.shared_head.head.weight"), nullptr);
}

TEST_F(TrainCkpt, LeftoverTempFolderDoesNotDisturbLoadingAndIsCleanedByTheNextSave) {
  const TrainRun a = Train(1);
  const fs::path ckpt = dir_ / "ckpt";
  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state);
  // What a save killed half-way leaves behind.
  for (const char* name : {"ckpt.tmp-999", "ckpt.tmp-2147483646", "ckpt.old-2147483646"}) {
    fs::create_directories(dir_ / name);
    WriteText(dir_ / name / "model.safetensors", "garbage");
    WriteText(dir_ / name / "trainer_state.json", "{");
  }
  EXPECT_TRUE(IsCheckpoint(ckpt.string()));
  EXPECT_EQ(Load(ckpt).opt.step(), 1);

  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state);
  // No process has those pids (beyond any pid_max), so their leftovers go.
  EXPECT_FALSE(fs::exists(dir_ / "ckpt.tmp-2147483646"));
  EXPECT_FALSE(fs::exists(dir_ / "ckpt.old-2147483646"));
  EXPECT_EQ(Load(ckpt).opt.step(), 1);
}

TEST_F(TrainCkpt, SavingOverACheckpointReplacesItWhole) {
  TrainRun a = Train(1);
  const fs::path ckpt = dir_ / "ckpt";
  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state, Tok());
  WriteText(ckpt / "model.safetensors.index.json", "{\"stale\": true}");
  FillGrads(a.params, 1);
  a.opt.Step(a.params, 1e-3);
  a.state.step = 2;
  a.state.extra = json();
  SaveCheckpoint((ckpt.string() + "/"), a.cfg, a.params, a.opt, a.state);  // trailing slash too

  EXPECT_FALSE(fs::exists(ckpt / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(ckpt / "model.safetensors.index.json"));
  EXPECT_TRUE(Siblings(ckpt).empty());
  const TrainRun b = Load(ckpt);
  EXPECT_EQ(b.state.step, 2);
  EXPECT_EQ(b.opt.step(), 2);
  EXPECT_TRUE(b.state.extra.is_null());
  for (const Param& p : a.params.params())
    EXPECT_TRUE(b.params.Get(p.name).value == p.value) << p.name;
}

TEST_F(TrainCkpt, RefusesToReplaceAFolderWithOtherFiles) {
  const TrainRun a = Train(0);
  const fs::path out = dir_ / "run";
  fs::create_directories(out);
  WriteText(out / "notes.txt", "keep me");
  const std::string msg =
      ErrorText([&] { SaveCheckpoint(out.string(), a.cfg, a.params, a.opt, a.state); });
  EXPECT_NE(msg.find("notes.txt"), std::string::npos) << msg;
  EXPECT_EQ(ReadFileToString((out / "notes.txt").string()), "keep me");
  EXPECT_TRUE(Siblings(out).empty());
}

TEST_F(TrainCkpt, FailedSaveLeavesThePreviousCheckpoint) {
  const TrainRun a = Train(1);
  const fs::path ckpt = dir_ / "ckpt";
  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state);
  const AdamW empty;
  const std::string msg =
      ErrorText([&] { SaveCheckpoint(ckpt.string(), a.cfg, a.params, empty, a.state); });
  EXPECT_NE(msg.find("no state for parameter"), std::string::npos) << msg;
  EXPECT_TRUE(IsCheckpoint(ckpt.string()));
  EXPECT_TRUE(Siblings(ckpt).empty());
}

TEST_F(TrainCkpt, MissingFilesGiveClearErrors) {
  const TrainRun a = Train(1);
  const fs::path ckpt = dir_ / "ckpt";
  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state);
  for (const char* name :
       {"trainer_state.json", "optimizer.safetensors", "config.json", "model.safetensors"}) {
    SCOPED_TRACE(name);
    const fs::path copy = dir_ / (std::string("without_") + name);
    fs::copy(ckpt, copy, fs::copy_options::recursive);
    fs::remove(copy / name);
    EXPECT_FALSE(IsCheckpoint(copy.string()));
    const std::string msg = ErrorText([&] { Load(copy); });
    EXPECT_NE(msg.find(copy.string() + " is not a complete checkpoint: missing " + name),
              std::string::npos)
        << msg;
  }
}

TEST_F(TrainCkpt, InvalidTrainerStateIsAnError) {
  const TrainRun a = Train(1);
  const fs::path ckpt = dir_ / "ckpt";
  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state);
  const std::string good = ReadFileToString((ckpt / "trainer_state.json").string());
  auto expect_error = [&](const std::string& text, const std::string& needle) {
    WriteText(ckpt / "trainer_state.json", text);
    EXPECT_FALSE(IsCheckpoint(ckpt.string()));
    const std::string msg = ErrorText([&] { Load(ckpt); });
    EXPECT_NE(msg.find("trainer_state.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  };
  expect_error("{\"step\": ", "not a JSON object");
  json j = json::parse(good);
  j["version"] = 2;
  expect_error(j.dump(), "version 2");
  j = json::parse(good);
  j["step"] = -1;
  expect_error(j.dump(), "'step'");
  j = json::parse(good);
  j["adamw"].erase("beta1");
  expect_error(j.dump(), "'beta1'");
}

TEST_F(TrainCkpt, OptimizerStateMustMatchTheModel) {
  const TrainRun a = Train(1);
  const fs::path ckpt = dir_ / "ckpt";
  SaveCheckpoint(ckpt.string(), a.cfg, a.params, a.opt, a.state);
  const std::string victim = "model.layers.0.self_attn.kv_a_proj_with_mqa.weight";
  ASSERT_NE(a.opt.Find(victim), nullptr);

  auto rewrite = [&](const std::function<void(SafetensorsWriter&, const Param&)>& add) {
    SafetensorsWriter w;
    for (const Param& p : a.params.params())
      if (p.trainable) add(w, p);
    w.Write((ckpt / "optimizer.safetensors").string());
  };
  const std::vector<float> zeros(1 << 20, 0.0f);
  rewrite([&](SafetensorsWriter& w, const Param& p) {
    w.Add("adamw.m." + p.name, DType::kF32, p.shape, zeros.data());
    if (p.name != victim) w.Add("adamw.v." + p.name, DType::kF32, p.shape, zeros.data());
  });
  std::string msg = ErrorText([&] { Load(ckpt); });
  EXPECT_NE(msg.find("'adamw.v." + victim + "'"), std::string::npos) << msg;

  rewrite([&](SafetensorsWriter& w, const Param& p) {
    std::vector<int64_t> shape = p.shape;
    if (p.name == victim) shape = {p.numel()};
    w.Add("adamw.m." + p.name, DType::kF32, shape, zeros.data());
    w.Add("adamw.v." + p.name, DType::kF32, p.shape, zeros.data());
  });
  msg = ErrorText([&] { Load(ckpt); });
  EXPECT_NE(msg.find("shape"), std::string::npos) << msg;
  EXPECT_NE(msg.find(victim), std::string::npos) << msg;

  rewrite([&](SafetensorsWriter& w, const Param& p) {
    w.Add("adamw.m." + p.name, DType::kF32, p.shape, zeros.data());
    w.Add("adamw.v." + p.name, DType::kF32, p.shape, zeros.data());
    if (p.name == victim) w.Add("adamw.m.not_a_param", DType::kF32, {1}, zeros.data());
  });
  msg = ErrorText([&] { Load(ckpt); });
  EXPECT_NE(msg.find("unexpected tensor 'adamw.m.not_a_param'"), std::string::npos) << msg;
}

TEST_F(TrainCkpt, MissingFolderNamesTheCopyAnInterruptedSaveLeft) {
  const fs::path ckpt = dir_ / "ckpt";
  std::string msg = ErrorText([&] { Load(ckpt); });
  EXPECT_NE(msg.find("no such checkpoint folder"), std::string::npos) << msg;
  fs::create_directories(dir_ / "ckpt.old-4242");
  msg = ErrorText([&] { Load(ckpt); });
  EXPECT_NE(msg.find((dir_ / "ckpt.old-4242").string()), std::string::npos) << msg;
  EXPECT_FALSE(IsCheckpoint(ckpt.string()));
}

TEST_F(TrainCkpt, ModelFolderExportInBf16) {
  const TrainRun a = Train(1);
  const fs::path out = dir_ / "export";
  WriteModelFolder(out.string(), a.cfg, a.params, Tok(), DType::kBF16);
  EXPECT_FALSE(IsCheckpoint(out.string()));
  EXPECT_TRUE(fs::exists(out / "tokenizer.json"));
  EXPECT_EQ(json::parse(ReadFileToString((out / "config.json").string()))["torch_dtype"],
            "bfloat16");
  const auto file = SafetensorsFile::Open((out / "model.safetensors").string());
  const Param& w = a.params.Get("model.layers.1.mlp.gate.weight");
  const TensorView* t = file->Find(w.name);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->dtype, DType::kBF16);
  const uint16_t* bits = reinterpret_cast<const uint16_t*>(t->data);
  for (int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(bits[i], F32ToBf16(w.value[i])) << i;
  const TensorView* bias = file->Find("model.layers.1.mlp.gate.e_score_correction_bias");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->dtype, DType::kF32);
  EXPECT_TRUE(Model::Load(out.string()) != nullptr);

  const std::string msg = ErrorText(
      [&] { WriteModelFolder(out.string(), a.cfg, a.params, "", DType::kF16); });
  EXPECT_NE(msg.find("F32 or BF16"), std::string::npos) << msg;
  // The F32 export of the same weights replaces it and loads back exactly.
  WriteModelFolder(out.string(), a.cfg, a.params);
  Config cfg;
  const ParamSet back = ParamSet::FromDir(out.string(), &cfg);
  EXPECT_TRUE(back.Get(w.name).value == w.value);
  EXPECT_FALSE(fs::exists(out / "tokenizer.json"));
}

}  // namespace
}  // namespace r1
