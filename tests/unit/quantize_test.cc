// The Q8/Q4/FP8 encoders (round-trip error bounds on odd shapes) and `r1 quantize`'s folder
// conversion: which tensors are re-encoded, their names and dtypes, the config entry, the copied
// files, and the refusals.
#include "r1/model/quantize_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/io/safetensors.h"
#include "r1/kernels/matrix.h"
#include "r1/kernels/quantize_rows.h"
#include "r1/model/model.h"
#include "r1/model/presets.h"
#include "quant_tiles_util.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

std::vector<float> Gaussian(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A one-row (or more) Q8/Q4 matrix over the row quantizers' output, packed into tiles kept in
// `storage`.
Matrix View(DType dtype, const void* codes, const uint16_t* scales, int64_t rows, int64_t cols,
            std::vector<uint8_t>& storage) {
  Matrix m;
  m.name = "w";
  m.dtype = dtype;
  m.rows = rows;
  m.cols = cols;
  const int64_t rb = PlainRowBytes(dtype, cols);
  std::vector<uint8_t> plain(static_cast<const uint8_t*>(codes),
                             static_cast<const uint8_t*>(codes) + rows * rb);
  PackTiles(m, plain, std::vector<uint16_t>(scales, scales + rows * m.qblocks()), storage);
  return m;
}

TEST(QuantizeRows, Q8RoundTripWithinHalfAStep) {
  std::vector<uint8_t> storage;
  for (int64_t cols : {1, 5, 31, 32, 33, 100, 257}) {
    auto x = Gaussian(cols, 7 + cols, 0.02f);
    const int64_t blocks = (cols + kQuantBlock - 1) / kQuantBlock;
    std::vector<int8_t> codes(cols);
    std::vector<uint16_t> scales(blocks);
    QuantizeRowQ8(x.data(), cols, codes.data(), scales.data());
    std::vector<float> back(cols);
    View(DType::kI8, codes.data(), scales.data(), 1, cols, storage)
        .DequantRow(0, 0, cols, back.data());
    for (int64_t c = 0; c < cols; ++c) {
      const float d = F16ToF32(scales[c / kQuantBlock]);
      ASSERT_GT(d, 0.0f);
      EXPECT_LE(std::fabs(back[c] - x[c]), 0.5f * d * 1.001f) << "cols " << cols << " c " << c;
      EXPECT_GE(codes[c], -127);
    }
  }
}

TEST(QuantizeRows, Q4RoundTripWithinOneStepAndPadsWithZero) {
  std::vector<uint8_t> storage;
  for (int64_t cols : {1, 7, 31, 32, 33, 100, 257}) {
    auto x = Gaussian(cols, 11 + cols);
    const int64_t blocks = (cols + kQuantBlock - 1) / kQuantBlock;
    std::vector<uint8_t> packed(Q4RowBytes(cols));
    std::vector<uint16_t> scales(blocks);
    QuantizeRowQ4(x.data(), cols, packed.data(), scales.data());
    std::vector<float> back(cols);
    View(DType::kU8, packed.data(), scales.data(), 1, cols, storage)
        .DequantRow(0, 0, cols, back.data());
    for (int64_t b = 0; b < blocks; ++b) {
      const float d = std::fabs(F16ToF32(scales[b]));
      float amax = 0;
      for (int64_t c = b * kQuantBlock; c < std::min(cols, (b + 1) * kQuantBlock); ++c) {
        amax = std::max(amax, std::fabs(x[c]));
        // Values on the far side of the block's extreme clamp at code 7, one step short of 8.
        EXPECT_LE(std::fabs(back[c] - x[c]), d * 1.001f) << "cols " << cols << " c " << c;
      }
      // The extreme value itself lands on code -8 exactly, up to the F16 rounding of the scale.
      EXPECT_NEAR(d * 8, amax, amax * 1e-3f);
    }
    // Padding of the short last block decodes as zero (code 8).
    if (cols % kQuantBlock) {
      const uint8_t* last = packed.data() + (blocks - 1) * kQuantBlock / 2;
      for (int64_t j = cols % kQuantBlock; j < kQuantBlock; ++j) {
        const int code = j < 16 ? (last[j] & 15) : (last[j - 16] >> 4);
        EXPECT_EQ(code, 8) << "padding element " << j;
      }
    }
  }
}

TEST(QuantizeRows, AllZeroBlocksDecodeToZero) {
  std::vector<uint8_t> storage;
  std::vector<float> x(40, 0.0f);
  std::vector<int8_t> q8(40);
  std::vector<uint8_t> q4(Q4RowBytes(40));
  std::vector<uint16_t> s8(2), s4(2);
  QuantizeRowQ8(x.data(), 40, q8.data(), s8.data());
  QuantizeRowQ4(x.data(), 40, q4.data(), s4.data());
  std::vector<float> back(40, 1.0f);
  View(DType::kI8, q8.data(), s8.data(), 1, 40, storage).DequantRow(0, 0, 40, back.data());
  for (float v : back) EXPECT_EQ(v, 0.0f);
  View(DType::kU8, q4.data(), s4.data(), 1, 40, storage).DequantRow(0, 0, 40, back.data());
  for (float v : back) EXPECT_EQ(v, 0.0f);
}

TEST(QuantizeRows, ScaleOutsideF16IsAnError) {
  std::vector<float> x(32, 1e9f);
  std::vector<int8_t> q(32);
  std::vector<uint16_t> s(1);
  EXPECT_THROW(QuantizeRowQ8(x.data(), 32, q.data(), s.data()), Error);
}

TEST(QuantizeRows, Fp8BlocksOnOddShape) {
  const int64_t rows = 130, cols = 201;
  auto w = Gaussian(rows * cols, 3, 0.05f);
  w[5] = 3.0f;  // one outlier: its block's scale follows it, the others do not
  std::vector<uint8_t> codes(rows * cols);
  std::vector<float> scale_inv(2 * 2);
  QuantizeFp8Blocks(w.data(), rows, cols, 128, 128, codes.data(), scale_inv.data());
  Matrix m;
  m.dtype = DType::kF8E4M3;
  m.data = codes.data();
  m.scale = scale_inv.data();
  m.rows = rows;
  m.cols = cols;
  EXPECT_FLOAT_EQ(scale_inv[0], 3.0f / 448.0f);
  std::vector<float> back(cols);
  for (int64_t r = 0; r < rows; ++r) {
    m.DequantRow(r, 0, cols, back.data());
    for (int64_t c = 0; c < cols; ++c) {
      const float s = scale_inv[(r / 128) * 2 + c / 128];
      // E4M3 keeps 3 mantissa bits (relative step 2^-3, error half that); below 2^-6 its
      // subnormals have a fixed step of 2^-9.
      const float tol = std::max(std::fabs(w[r * cols + c]) / 16.0f, s * std::ldexp(1.0f, -10));
      ASSERT_LE(std::fabs(back[c] - w[r * cols + c]), tol * 1.0001f) << r << "," << c;
    }
  }
  EXPECT_EQ(back.size(), static_cast<size_t>(cols));
}

TEST(QuantizeTarget, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(ParseQuantTarget("q8"), QuantTarget::kQ8);
  EXPECT_EQ(ParseQuantTarget("q4_0"), QuantTarget::kQ4);
  EXPECT_EQ(ParseQuantTarget("fp8"), QuantTarget::kFP8);
  EXPECT_EQ(ParseQuantTarget("bf16"), QuantTarget::kBF16);
  EXPECT_THROW(ParseQuantTarget("q3"), Error);
}

class QuantizeModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("r1_quantize_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    src_ = (root_ / "src").string();
    InitOptions o;
    o.seed = 3;
    InitModel("v3-nano", src_, o);
    WriteFileAtomic(src_ + "/tokenizer_config.json", "{}\n");
    WriteFileAtomic(src_ + "/trainer_state.json", "{}\n");
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path root_;
  std::string src_;
};

TEST_F(QuantizeModelTest, EveryTargetLoadsWithDocumentedTensors) {
  for (QuantTarget to : {QuantTarget::kQ8, QuantTarget::kQ4, QuantTarget::kFP8, QuantTarget::kBF16}) {
    SCOPED_TRACE(QuantTargetName(to));
    const std::string dst = (root_ / QuantTargetName(to)).string();
    QuantizeOptions o;
    o.to = to;
    double last = 0;
    const QuantizeReport r = QuantizeModel(src_, dst, o, [&](double f) {
      EXPECT_GE(f, last);
      last = f;
    });
    EXPECT_EQ(last, 1.0);
    EXPECT_GT(r.matrices_encoded, 0);
    EXPECT_TRUE(fs::exists(dst + "/tokenizer_config.json"));
    EXPECT_FALSE(fs::exists(dst + "/trainer_state.json"));
    const Config cfg = LoadConfig(dst);
    const TensorStore store = TensorStore::OpenDir(dst);
    const TensorView& router = store.Get("model.layers.1.mlp.gate.weight");
    const TensorView& expert = store.Get("model.layers.1.mlp.experts.0.up_proj.weight");
    const TensorView& head = store.Get("lm_head.weight");
    const TensorView& embed = store.Get("model.embed_tokens.weight");
    const nlohmann::json q = cfg.raw.value("quantization_config", nlohmann::json());
    switch (to) {
      case QuantTarget::kQ8:
      case QuantTarget::kQ4: {
        EXPECT_EQ(q["quant_method"], "r1cpp");
        EXPECT_EQ(q["format"], to == QuantTarget::kQ8 ? "q8_0" : "q4_0");
        EXPECT_EQ(q["block_size"], kQuantBlock);
        EXPECT_EQ(cfg.quant_format, q["format"]);
        EXPECT_EQ(router.dtype, DType::kBF16);
        EXPECT_EQ(expert.dtype, to == QuantTarget::kQ8 ? DType::kI8 : DType::kU8);
        EXPECT_EQ(head.dtype, DType::kI8);  // Q4 keeps the head at Q8
        EXPECT_EQ(q["layout"], "tiles_4x16_words");
        // Codes and scales in one tensor of tile groups (matrix.h).
        EXPECT_EQ(store.Find("model.layers.1.mlp.experts.0.up_proj.weight_scale"), nullptr);
        EXPECT_EQ(expert.shape, (std::vector<int64_t>{
                                    QuantGroups(cfg.moe_intermediate_size),
                                    QuantGroupBytes(expert.dtype, cfg.hidden_size)}));
        break;
      }
      case QuantTarget::kFP8:
        EXPECT_EQ(q["quant_method"], "fp8");
        EXPECT_TRUE(cfg.fp8_declared);
        EXPECT_EQ(expert.dtype, DType::kF8E4M3);
        EXPECT_EQ(store.Get("model.layers.1.mlp.experts.0.up_proj.weight_scale_inv").dtype,
                  DType::kF32);
        EXPECT_EQ(router.dtype, DType::kBF16);
        EXPECT_EQ(embed.dtype, DType::kBF16);
        EXPECT_EQ(head.dtype, DType::kBF16);
        break;
      case QuantTarget::kBF16:
        EXPECT_TRUE(q.is_null());
        EXPECT_EQ(expert.dtype, DType::kBF16);
        break;
    }
    // The whole model, MTP module included, binds and runs.
    auto model = Model::Load(dst);
    EXPECT_FALSE(model->weights().mtp.empty());
    KVCache cache = model->NewCache();
    const int slot = cache.AddSequence();
    const std::vector<int32_t> ids = {1, 2, 3};
    SeqChunk c{slot, ids};
    StepOutput out;
    model->Step(cache, {&c, 1}, {}, out);
    for (float v : out.logits) ASSERT_TRUE(std::isfinite(v));
  }
}

TEST_F(QuantizeModelTest, RequantizingAQuantizedFolderWorks) {
  QuantizeOptions o;
  o.to = QuantTarget::kQ8;
  QuantizeModel(src_, (root_ / "q8").string(), o, nullptr);
  o.to = QuantTarget::kQ4;
  QuantizeModel((root_ / "q8").string(), (root_ / "q8q4").string(), o, nullptr);
  EXPECT_EQ(TensorStore::OpenDir((root_ / "q8q4").string())
                .Get("model.layers.1.mlp.experts.0.up_proj.weight")
                .dtype,
            DType::kU8);
}

TEST_F(QuantizeModelTest, RefusesToOverwriteOrWriteIntoItsInput) {
  QuantizeOptions o;
  EXPECT_THROW(QuantizeModel(src_, src_, o, nullptr), Error);
  const std::string dst = (root_ / "q8").string();
  QuantizeModel(src_, dst, o, nullptr);
  try {
    QuantizeModel(src_, dst, o, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  o.overwrite = true;
  EXPECT_NO_THROW(QuantizeModel(src_, dst, o, nullptr));
}

}  // namespace
}  // namespace r1
