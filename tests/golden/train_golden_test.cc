// The training pass against PyTorch (../shared/golden/*/train.*): the loss and d loss / d weight
// of every weight at the initial weights, in the naive MLA form the reference used.
#include <filesystem>

#include <gtest/gtest.h>

#include "golden_util.h"
#include "r1/train/optimizer.h"
#include "r1/train/params.h"
#include "r1/train/train_model.h"

namespace r1::testing {
namespace {

std::vector<std::string> TrainFolders() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(GoldenDir(), ec))
    if (std::filesystem::exists(e.path() / "train.safetensors")) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

struct TrainCase {
  Config cfg;
  ParamSet params;
  std::vector<int32_t> tokens;
  int64_t B = 0, T = 0;
  nlohmann::json spec;
  TensorStore ref;
};

TrainCase LoadCase(const std::string& folder) {
  const std::string dir = GoldenDir() + "/" + folder;
  TrainCase c;
  c.params = ParamSet::FromDir(dir + "/model", &c.cfg);
  c.ref = TensorStore::OpenFile(dir + "/train.safetensors");
  const TensorView& ids = c.ref.Get("train.input_ids");
  c.B = ids.shape[0];
  c.T = ids.shape[1] - 1;
  c.tokens = I64AsI32(ids);
  c.spec = ReadJson(dir + "/train.json");
  return c;
}

class TrainGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainGolden, LossAndEveryGradientMatchPyTorch) {
  TrainCase c = LoadCase(GetParam());
  TrainModel model(c.cfg, c.params);
  const StepStats st = model.Step({c.B, c.T, c.tokens.data(), nullptr}, {}, /*backward=*/true);
  const double ref_loss = c.spec["losses"][0].get<double>();
  EXPECT_NEAR(st.loss, ref_loss, 1e-5 * ref_loss);
  EXPECT_EQ(st.targets, c.B * c.T);

  int checked = 0;
  double worst = 0;
  std::string worst_name;
  for (const std::string& name : c.ref.Names()) {
    if (name.rfind("grad.", 0) != 0) continue;
    const std::string pname = name.substr(5);
    const Param* p = c.params.Find(pname);
    ASSERT_NE(p, nullptr) << pname;
    const std::vector<float> ref = F32(c.ref.Get(name));
    ASSERT_EQ(ref.size(), p->grad.size()) << pname;
    double ref_max = 0, diff = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      ref_max = std::max(ref_max, std::fabs(static_cast<double>(ref[i])));
      diff = std::max(diff, std::fabs(static_cast<double>(p->grad[i]) - ref[i]));
    }
    EXPECT_LE(diff, 1e-3 * ref_max + 1e-6) << pname << " ref max " << ref_max;
    if (diff / (ref_max + 1e-30) > worst) {
      worst = diff / (ref_max + 1e-30);
      worst_name = pname;
    }
    ++checked;
  }
  // Every trainable parameter has a reference gradient.
  int trainable = 0;
  for (const Param& p : c.params.params()) trainable += p.trainable ? 1 : 0;
  EXPECT_EQ(checked, trainable);
  std::printf("%s: loss %.7f (ref %.7f), %d gradients, worst relative diff %.3g (%s)\n",
              GetParam().c_str(), st.loss, ref_loss, checked, worst, worst_name.c_str());
}

// Five AdamW steps with the auxiliary-loss-free bias update after each, as train.json states.
TEST_P(TrainGolden, FiveAdamWStepsWithBiasUpdateFollowPyTorchLosses) {
  TrainCase c = LoadCase(GetParam());
  const auto& a = c.spec["adamw"];
  ASSERT_TRUE(a["grad_clip"].is_null());
  ASSERT_EQ(a["decay_applies_to"], "2-D weights only");
  AdamWOptions o;
  o.beta1 = a["beta1"].get<double>();
  o.beta2 = a["beta2"].get<double>();
  o.eps = a["eps"].get<double>();
  o.weight_decay = a["weight_decay"].get<double>();
  const double lr = a["lr"].get<double>();
  const double gamma = c.spec["balance_bias_update"]["gamma"].get<double>();
  TrainModel model(c.cfg, c.params);
  AdamW opt(c.params, o);
  const auto& ref = c.spec["losses"];
  for (size_t step = 0; step < ref.size(); ++step) {
    c.params.ZeroGrad();
    const StepStats st = model.Step({c.B, c.T, c.tokens.data(), nullptr}, {}, true);
    const double want = ref[step].get<double>();
    const double tol = (step == 0 ? 1e-5 : 1e-3) * want;
    EXPECT_NEAR(st.loss, want, tol) << "step " << step;
    std::printf("%s step %zu: loss %.6f (ref %.6f, rel diff %.2g)\n", GetParam().c_str(), step,
                st.loss, want, std::fabs(st.loss - want) / want);
    opt.Step(c.params, lr);
    UpdateRouterBiases(model.RouterBiases(), st.expert_load, gamma);
  }
}

INSTANTIATE_TEST_SUITE_P(Folders, TrainGolden, ::testing::ValuesIn(TrainFolders()),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

// The training pass is the inference forward with activations kept: on every golden model
// (FP8, BF16, the dense ones) its logits equal Model::Step's, from the dequantized float32
// master weights.
class TrainForward : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainForward, LogitsEqualTheInferenceEngine) {
  const std::string dir = GoldenDir() + "/" + GetParam() + "/model";
  Config cfg;
  ParamSet params = ParamSet::FromDir(dir, &cfg);
  auto ref_model = Model::Load(dir);
  ref_model->set_mla_mode(MlaMode::kNaive);
  const TensorStore ref = TensorStore::OpenFile(GoldenDir() + "/" + GetParam() + "/golden.safetensors");
  const TensorView& ids = ref.Get("input_ids");
  const int64_t B = ids.shape[0], L = ids.shape[1];
  std::vector<int32_t> rows = I64AsI32(ids);
  // A training row needs one more token (the last target); repeat the last one.
  std::vector<int32_t> tokens;
  for (int64_t b = 0; b < B; ++b) {
    tokens.insert(tokens.end(), rows.begin() + b * L, rows.begin() + (b + 1) * L);
    tokens.push_back(rows[(b + 1) * L - 1]);
  }
  TrainModel model(cfg, params);
  model.set_keep_logits(true);
  model.Step({B, L, tokens.data(), nullptr}, {}, false);
  const int64_t V = cfg.vocab_size;
  double worst = 0;
  for (int64_t b = 0; b < B; ++b) {
    KVCache cache = ref_model->NewCache();
    const int slot = cache.AddSequence();
    StepOutput out;
    StepOptions so;
    so.all_logits = true;
    const SeqChunk chunk{slot, std::span<const int32_t>(rows.data() + b * L, L)};
    ref_model->Step(cache, std::span<const SeqChunk>(&chunk, 1), so, out);
    for (int64_t i = 0; i < L * V; ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(out.logits[i]) -
                                        model.logits()[b * L * V + i]));
  }
  EXPECT_LE(worst, 1e-4);
  std::printf("%s: training forward vs inference logits, max |diff| %.3g\n", GetParam().c_str(),
              worst);
}

INSTANTIATE_TEST_SUITE_P(Folders, TrainForward, ::testing::ValuesIn(GoldenModelFolders()),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace r1::testing
