// `r1 quantize` on every golden folder, in every target format. Two checks:
//  - exactness of the quantized engine: its logits equal (to the golden float32 tolerance) those
//    of a float32 model holding the dequantized weights, so kernels, GEMM path and loader add no
//    error of their own;
//  - accuracy against the reference: the relative RMS logit error is printed (the figures in
//    docs/quantization.md) and must stay under a loose per-format bound. These tiny random models
//    amplify weight noise (MoE routing flips), so the bounds only catch a broken encoder, whose
//    logits are uncorrelated (error ~1.4); re-encoding BF16 as BF16, or 128x128-block FP8 as FP8,
//    must be lossless.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "golden_util.h"
#include "r1/kernels/matvec_int8.h"
#include "r1/model/model.h"
#include "r1/model/quantize_model.h"
#include "r1/model/weights.h"

namespace r1 {
namespace {

struct QuantCase {
  std::string folder;
  QuantTarget to;
};

std::vector<QuantCase> AllQuantCases() {
  std::vector<QuantCase> out;
  for (const auto& f : testing::GoldenModelFolders())
    for (QuantTarget t : {QuantTarget::kBF16, QuantTarget::kFP8, QuantTarget::kQ8, QuantTarget::kQ4})
      out.push_back({f, t});
  return out;
}

std::string CaseName(const ::testing::TestParamInfo<QuantCase>& info) {
  std::string s = info.param.folder + "_" + QuantTargetName(info.param.to);
  for (char& c : s)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

// Relative RMS error of the logits: sqrt(mean (got - want)^2) / sqrt(mean want^2). Tiny random
// models have logits of very different scales, so an absolute bound would say little.
double RelativeRms(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Per-format bounds on the relative RMS logit error: about 3x the worst golden folder (the
// measured figures are in docs/quantization.md).
double Bound(QuantTarget t) {
  switch (t) {
    case QuantTarget::kBF16: return 0.25;
    case QuantTarget::kFP8: return 0.5;
    case QuantTarget::kQ8: return 0.3;
    case QuantTarget::kQ4: return 0.9;
  }
  return 0;
}

// Whether re-encoding loses nothing: every matrix already is in the target format.
bool Lossless(const Config& cfg, const TensorStore& store, QuantTarget to) {
  std::vector<std::shared_ptr<std::vector<float>>> scales;
  for (const StoredTensor& t : ListStoredTensors(cfg, store, scales)) {
    if (!t.is_matrix) continue;
    if (to == QuantTarget::kBF16 && t.matrix.dtype != DType::kBF16) return false;
    if (to == QuantTarget::kFP8 && t.matrix.dtype != DType::kBF16 &&
        !(t.matrix.dtype == DType::kF8E4M3 && t.matrix.block_rows == 128 &&
          t.matrix.block_cols == 128))
      return false;
    if (to == QuantTarget::kFP8 && t.matrix.dtype == DType::kBF16 &&
        t.name.find("embed_tokens") == std::string::npos && t.name != "lm_head.weight" &&
        t.name.find(".mlp.gate.weight") == std::string::npos)
      return false;
  }
  return to == QuantTarget::kBF16 || to == QuantTarget::kFP8;
}

// Logits of one token at a time (the streaming decode kernels rather than the GEMM path).
std::vector<float> StepByStepLogits(Model& model, const std::vector<int32_t>& ids, int64_t n) {
  KVCache cache = model.NewCache();
  const int slot = cache.AddSequence();
  std::vector<float> all;
  StepOutput out;
  for (int64_t i = 0; i < n; ++i) {
    SeqChunk c{slot, std::span<const int32_t>(ids.data() + i, 1)};
    model.Step(cache, {&c, 1}, {}, out);
    all.insert(all.end(), out.logits.begin(), out.logits.end());
  }
  return all;
}

class QuantizedGolden : public ::testing::TestWithParam<QuantCase> {};

TEST_P(QuantizedGolden, LogitsCloseToReference) {
  const std::string dir = testing::GoldenDir() + "/" + GetParam().folder;
  const std::string out_dir = (std::filesystem::temp_directory_path() /
                               ("r1_quant_golden_" + CaseName({GetParam(), 0}) + "_" +
                                std::to_string(::getpid())))
                                  .string();
  QuantizeOptions o;
  o.to = GetParam().to;
  QuantizeModel(dir + "/model", out_dir, o, nullptr);
  auto model = Model::Load(out_dir);
  auto golden = SafetensorsFile::Open(dir + "/golden.safetensors");
  const float logits_tol =
      testing::ReadJson(dir + "/golden.json")["tolerance"]["logits_max_abs"].get<float>();
  const TensorView* ids_t = golden->Find("input_ids");
  ASSERT_NE(ids_t, nullptr);
  const int64_t B = ids_t->shape[0], T = ids_t->shape[1];
  const auto ids = testing::I64AsI32(*ids_t);
  const std::vector<float> got = testing::AllLogits(*model, ids, B, T);
  const auto want = testing::F32(*golden->Find("logits"));
  ASSERT_EQ(got.size(), want.size());

  // The same weights, dequantized to float32 and run through the float32 path.
  std::vector<DenseTensor> dense = LoadDenseTensors(model->config(), model->store(), true);
  std::vector<TensorView> views;
  for (const DenseTensor& t : dense)
    views.push_back({t.name, DType::kF32, t.shape, reinterpret_cast<const uint8_t*>(t.data.data()),
                     t.data.size() * 4, "dense"});
  Model dense_model(model->config(), TensorStore::FromViews("dense", std::move(views)));
  const std::vector<float> dense_logits = testing::AllLogits(dense_model, ids, B, T);
  // Exactness is checked with float32 activations; MoE experts see fewer than kGemmMinTokens
  // tokens even in a prefill, so the int8 decode path would otherwise take part.
  SetInt8Activations(false);
  const std::vector<float> got_f32 = testing::AllLogits(*model, ids, B, T);
  SetInt8Activations(true);
  const float engine_err =
      testing::MaxAbsDiff(got_f32.data(), dense_logits.data(), got_f32.size());
  EXPECT_LE(engine_err, logits_tol) << "quantized engine vs float32 engine on the same weights";
  const int64_t steps = std::min<int64_t>(T, 6);
  const std::vector<float> step_f = StepByStepLogits(dense_model, ids, steps);
  // Decode steps with float32 activations: exact as well.
  SetInt8Activations(false);
  const std::vector<float> step_q = StepByStepLogits(*model, ids, steps);
  SetInt8Activations(true);
  EXPECT_LE(testing::MaxAbsDiff(step_q.data(), step_f.data(), step_q.size()), logits_tol)
      << "decode steps: quantized engine vs float32 engine on the same weights";
  // With int8 activations (the default decode path for Q8/Q4 where the CPU has VNNI): the only
  // difference is the activations' rounding, far below the weights' own quantization error.
  const std::vector<float> step_i8 = StepByStepLogits(*model, ids, steps);
  const double i8_rel = RelativeRms(step_i8, step_f);
  std::printf("[%s] decode steps with int8 activations vs float32 activations: relative RMS %.4f\n",
              CaseName({GetParam(), 0}).c_str(), i8_rel);
  EXPECT_LE(i8_rel, 0.1);

  const double rel = RelativeRms(got, want);
  const float max_abs = testing::MaxAbsDiff(got.data(), want.data(), want.size());
  const int64_t V = model->config().vocab_size;
  int agree = 0;
  for (int64_t p = 0; p < B * T; ++p)
    agree += testing::ArgMax(got.data() + p * V, V) == testing::ArgMax(want.data() + p * V, V);
  std::printf(
      "[%s] vs reference: relative RMS error %.4f, max |diff| %.4g, top-1 agreement %d/%lld; "
      "vs float32 engine on the same weights: max |diff| %.3g\n",
      CaseName({GetParam(), 0}).c_str(), rel, max_abs, agree, static_cast<long long>(B * T),
      engine_err);
  const Config src_cfg = LoadConfig(dir + "/model");
  const TensorStore src_store = TensorStore::OpenDir(dir + "/model");
  if (Lossless(src_cfg, src_store, GetParam().to))
    EXPECT_LE(max_abs, logits_tol) << "re-encoding into the same format must be lossless";
  else
    EXPECT_LE(rel, Bound(GetParam().to));
  std::filesystem::remove_all(out_dir);
}

INSTANTIATE_TEST_SUITE_P(Folders, QuantizedGolden, ::testing::ValuesIn(AllQuantCases()), CaseName);

}  // namespace
}  // namespace r1
