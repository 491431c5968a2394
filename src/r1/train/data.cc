// DataSet: choosing the reader for the files, the held-out split, the seeded epoch order and the
// resumable position.
#include "r1/train/data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "r1/core/error.h"
#include "r1/tokenizer/chat_template.h"
#include "r1/tokenizer/tokenizer.h"
#include "r1/train/data_internal.h"

namespace r1 {

namespace fs = std::filesystem;
using data_detail::FileFormat;
using data_detail::FormatOf;

namespace {

constexpr int kStateVersion = 1;

const char* FormatName(FileFormat f) {
  switch (f) {
    case FileFormat::kText:
      return "plain text";
    case FileFormat::kJsonl:
      return "JSONL";
    case FileFormat::kSafetensors:
      return "pre-tokenized safetensors";
  }
  return "";
}

// A 64-bit digest of the training rows, so a checkpoint's data position is never applied to
// other data that merely has the same number of rows.
uint64_t Fingerprint(const DataSet::Rows& rows) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(rows.width);
  auto mix = [&h](uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xFF51AFD7ED558CCDull;
  };
  for (int32_t t : rows.tokens) mix(static_cast<uint32_t>(t));
  for (uint8_t m : rows.mask) mix(m);
  return h;
}

std::string Hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

void CheckFilesExist(const std::vector<std::string>& files) {
  for (const std::string& f : files) {
    std::error_code ec;
    if (!fs::exists(f, ec)) throw Error(f + ": no such file");
    if (fs::is_directory(f, ec)) throw Error(f + ": is a directory, not a data file");
  }
}

double TotalBytes(const std::vector<std::string>& files) {
  double total = 0;
  for (const std::string& f : files) {
    std::error_code ec;
    const auto n = fs::file_size(f, ec);
    if (!ec) total += static_cast<double>(n);
  }
  return total;
}

int64_t CountOnes(const std::vector<uint8_t>& v) {
  int64_t n = 0;
  for (uint8_t x : v) n += x != 0;
  return n;
}

// The rows and messages of one side (training or evaluation) of the data.
struct Side {
  DataSet::Rows rows;
  std::vector<std::string> warnings;
  std::string detail;
};

Side ReadSide(DataKind kind, const std::vector<std::string>& files, int64_t* T,
              const DataOptions& o, const Tokenizer* tok, const ChatTemplate* tmpl,
              data_detail::ByteProgress& progress, const std::string& what) {
  Side side;
  const std::string nfiles =
      std::to_string(files.size()) + (files.size() == 1 ? " file" : " files");
  if (kind == DataKind::kPretokenized) {
    side.rows = data_detail::ReadPretokenized(files, T, o.vocab_size, progress);
    side.detail = nfiles + ", " + std::to_string(side.rows.count()) + " pre-tokenized rows";
  } else if (kind == DataKind::kPackedText) {
    const std::vector<int32_t> stream =
        data_detail::TokenizeTextFiles(files, *tok, o.vocab_size, progress);
    int64_t dropped = 0;
    side.rows = data_detail::PackRows(stream, *T, what + " (" + nfiles + ")", &dropped);
    side.detail = nfiles + ", " + std::to_string(stream.size()) + " tokens packed into " +
                  std::to_string(side.rows.count()) + " rows" +
                  (dropped ? " (last " + std::to_string(dropped) + " tokens dropped)" : "");
  } else {
    data_detail::SftRows sft = data_detail::ReadSft(files, *T, *tok, *tmpl, o.vocab_size, progress);
    const std::string row = std::to_string(*T + 1) + " tokens";
    if (sft.truncated) {
      side.warnings.push_back(what + ": " + std::to_string(sft.truncated) + " of " +
                              std::to_string(sft.conversations) +
                              " conversations are longer than seq_len+1 = " + row +
                              " and were cut (raise --seq-len to keep them whole)");
    }
    if (sft.no_targets) {
      side.warnings.push_back(what + ": " + std::to_string(sft.no_targets) + " of " +
                              std::to_string(sft.conversations) +
                              " conversations have no assistant token within the first " + row +
                              " and add nothing to the loss");
    }
    side.rows = std::move(sft.rows);
    side.detail = nfiles + ", " + std::to_string(sft.conversations) + " conversations";
  }
  return side;
}

}  // namespace

int64_t Batch::CountedTargets() const { return CountOnes(loss_mask); }

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::Below(uint64_t bound) {
  // Values below 2^64 mod bound would make the low residues more likely; they are redrawn.
  const uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const uint64_t r = Next();
    if (r >= threshold) return r % bound;
  }
}

std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch) {
  SplitMix64 rng(SplitMix64(seed).Next() + static_cast<uint64_t>(epoch) * 0xD1B54A32D192ED03ull);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(i) + 1));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

DataSet DataSet::Build(const DataOptions& o, const Tokenizer* tok,
                       const ChatTemplate* chat_template,
                       const std::function<void(double)>& progress) {
  if (o.files.empty()) throw Error("no training data: pass --data FILE");
  if (o.batch <= 0)
    throw Error("batch size must be positive (got " + std::to_string(o.batch) + ")");
  if (o.seq_len < 0)
    throw Error("seq_len must be positive (got " + std::to_string(o.seq_len) + ")");
  if (!(o.eval_fraction >= 0 && o.eval_fraction < 1)) {
    throw Error("eval fraction must be in [0, 1) (got " + std::to_string(o.eval_fraction) + ")");
  }
  std::vector<std::string> all = o.files;
  all.insert(all.end(), o.eval_files.begin(), o.eval_files.end());
  CheckFilesExist(all);

  DataKind kind;
  if (o.sft) {
    for (const std::string& f : all) {
      if (FormatOf(f) != FileFormat::kJsonl) {
        throw Error(f +
                    ": --sft takes chat JSONL files ({\"messages\": [...]} a line), but this is " +
                    FormatName(FormatOf(f)) + " (SFT and non-SFT data cannot be mixed)");
      }
    }
    kind = DataKind::kSft;
  } else {
    const std::string* st = nullptr;
    const std::string* text = nullptr;
    for (const std::string& f : all) (FormatOf(f) == FileFormat::kSafetensors ? st : text) = &f;
    if (st && text) {
      throw Error("cannot mix pre-tokenized safetensors ('" + *st + "') with text data ('" + *text +
                  "')");
    }
    kind = st ? DataKind::kPretokenized : DataKind::kPackedText;
  }
  if (kind != DataKind::kPretokenized) {
    if (o.seq_len == 0) throw Error("seq_len must be positive (got 0)");
    if (!tok) throw Error("text data needs a tokenizer (pass --tokenizer or a model with one)");
  }
  if (kind == DataKind::kSft && !chat_template) throw Error("--sft needs a chat template");

  DataSet ds;
  ds.kind_ = kind;
  ds.B_ = o.batch;
  ds.T_ = o.seq_len;
  ds.shuffle_ = o.shuffle;
  ds.seed_ = o.seed;
  data_detail::ByteProgress bytes(progress, TotalBytes(all));

  Side train = ReadSide(kind, o.files, &ds.T_, o, tok, chat_template, bytes, "training data");
  ds.train_ = std::move(train.rows);
  ds.warnings_ = std::move(train.warnings);
  std::string held_out;
  if (!o.eval_files.empty()) {
    Side eval =
        ReadSide(kind, o.eval_files, &ds.T_, o, tok, chat_template, bytes, "evaluation data");
    ds.eval_ = std::move(eval.rows);
    ds.warnings_.insert(ds.warnings_.end(), eval.warnings.begin(), eval.warnings.end());
    held_out =
        "; evaluation data: " + eval.detail + ", " + std::to_string(ds.eval_.count()) + " rows";
  } else if (o.eval_fraction > 0) {
    const int64_t rows = ds.train_.count();
    // The small epsilon keeps 100 * 0.07 (7.000000000000001 in doubles) from rounding up to 8.
    const auto n_eval =
        static_cast<int64_t>(std::ceil(static_cast<double>(rows) * o.eval_fraction - 1e-9));
    if (rows - n_eval < 1) {
      throw Error("cannot hold out " + std::to_string(n_eval) + " of " + std::to_string(rows) +
                  " rows for evaluation (eval fraction " + std::to_string(o.eval_fraction) +
                  ") and keep one for training; add data or lower the fraction");
    }
    const int64_t w = ds.train_.width, keep = rows - n_eval;
    ds.eval_.width = w;
    ds.eval_.tokens.assign(ds.train_.tokens.begin() + keep * w, ds.train_.tokens.end());
    ds.eval_.mask.assign(ds.train_.mask.begin() + keep * (w - 1), ds.train_.mask.end());
    ds.train_.tokens.resize(static_cast<size_t>(keep * w));
    ds.train_.mask.resize(static_cast<size_t>(keep * (w - 1)));
    held_out = "; the last " + std::to_string(n_eval) + (n_eval == 1 ? " row" : " rows") +
               " held out for evaluation";
  }
  ds.eval_.width = ds.train_.width;

  ds.train_targets_ = CountOnes(ds.train_.mask);
  if (ds.train_targets_ == 0) {
    throw Error("no training row has a target that counts in the loss (seq_len " +
                std::to_string(ds.T_) + " is shorter than every conversation's prompt?)");
  }
  if (ds.train_.count() < ds.B_) {
    ds.warnings_.push_back("training data has " + std::to_string(ds.train_.count()) +
                           " rows, fewer than the batch of " + std::to_string(ds.B_) +
                           ", so every batch repeats rows");
  }
  ds.fingerprint_ = Fingerprint(ds.train_);
  ds.summary_ = "training data: " + train.detail + "; " + std::to_string(ds.train_rows()) +
                " training rows of " + std::to_string(ds.T_ + 1) + " tokens, " +
                std::to_string(ds.train_targets_) + " targets in the loss" + held_out;
  ds.StartEpoch();
  if (progress) progress(1.0);
  return ds;
}

int64_t DataSet::train_rows() const { return train_.count(); }
int64_t DataSet::eval_rows() const { return eval_.count(); }

void DataSet::StartEpoch() {
  if (shuffle_) {
    perm_ = EpochPermutation(train_rows(), seed_, epoch_);
  } else {
    perm_.clear();
  }
}

int64_t DataSet::RowAt(int64_t position) const {
  return shuffle_ ? perm_[static_cast<size_t>(position)] : position;
}

namespace {
void CopyRow(const DataSet::Rows& from, int64_t row, Batch& to, int64_t slot) {
  const int64_t w = from.width;
  std::copy_n(from.tokens.begin() + row * w, w, to.tokens.begin() + slot * w);
  std::copy_n(from.mask.begin() + row * (w - 1), w - 1, to.loss_mask.begin() + slot * (w - 1));
}

Batch EmptyBatch(int64_t B, int64_t T) {
  Batch b;
  b.B = B;
  b.T = T;
  b.tokens.resize(static_cast<size_t>(B * (T + 1)));
  b.loss_mask.resize(static_cast<size_t>(B * T));
  return b;
}
}  // namespace

Batch DataSet::Next() {
  Batch b = EmptyBatch(B_, T_);
  for (int64_t r = 0; r < B_; ++r) {
    if (cursor_ == train_rows()) {
      ++epoch_;
      cursor_ = 0;
      StartEpoch();
    }
    CopyRow(train_, RowAt(cursor_++), b, r);
  }
  return b;
}

std::vector<Batch> DataSet::EvalBatches(int64_t max_batches) const {
  std::vector<Batch> out;
  const int64_t rows = eval_rows();
  for (int64_t first = 0; first < rows; first += B_) {
    if (max_batches >= 0 && static_cast<int64_t>(out.size()) >= max_batches) break;
    const int64_t n = std::min(B_, rows - first);
    Batch b = EmptyBatch(n, T_);
    for (int64_t r = 0; r < n; ++r) CopyRow(eval_, first + r, b, r);
    out.push_back(std::move(b));
  }
  return out;
}

nlohmann::json DataSet::SaveState() const {
  return {{"format", "r1-data-position"},
          {"version", kStateVersion},
          {"epoch", epoch_},
          {"cursor", cursor_},
          {"seed", seed_},
          {"shuffle", shuffle_},
          {"train_rows", train_rows()},
          {"row_tokens", T_ + 1},
          {"fingerprint", Hex(fingerprint_)}};
}

void DataSet::RestoreState(const nlohmann::json& s) {
  const std::string what = "data position in the checkpoint";
  auto get = [&](const char* key, nlohmann::json::value_t type) -> const nlohmann::json& {
    if (!s.is_object() || !s.contains(key)) throw Error(what + ": no \"" + key + "\"");
    const auto& v = s.at(key);
    const bool ok =
        type == nlohmann::json::value_t::number_integer
            ? v.is_number_integer()
            : (type == nlohmann::json::value_t::boolean ? v.is_boolean() : v.is_string());
    if (!ok) throw Error(what + ": \"" + key + "\" has the wrong type (" + v.type_name() + ")");
    return v;
  };
  using V = nlohmann::json::value_t;
  if (get("version", V::number_integer).get<int64_t>() != kStateVersion) {
    throw Error(what + ": unsupported version " + s.at("version").dump());
  }
  const int64_t rows = get("train_rows", V::number_integer).get<int64_t>();
  const int64_t width = get("row_tokens", V::number_integer).get<int64_t>();
  if (rows != train_rows() || width != T_ + 1) {
    throw Error(what + " is for " + std::to_string(rows) + " training rows of " +
                std::to_string(width) + " tokens, but the data now gives " +
                std::to_string(train_rows()) + " rows of " + std::to_string(T_ + 1) +
                " (different --data, --seq-len or eval split)");
  }
  const std::string fp = get("fingerprint", V::string).get<std::string>();
  if (fp != Hex(fingerprint_)) {
    throw Error(what + " was saved for different training data (fingerprint " + fp + ", now " +
                Hex(fingerprint_) + ")");
  }
  const int64_t epoch = get("epoch", V::number_integer).get<int64_t>();
  const int64_t cursor = get("cursor", V::number_integer).get<int64_t>();
  if (epoch < 0 || cursor < 0 || cursor > rows) {
    throw Error(what + ": epoch " + std::to_string(epoch) + ", cursor " + std::to_string(cursor) +
                " out of range for " + std::to_string(rows) + " rows");
  }
  const auto& seed = get("seed", V::number_integer);
  if (!seed.is_number_unsigned() && seed.get<int64_t>() < 0) throw Error(what + ": negative seed");
  seed_ = seed.get<uint64_t>();
  shuffle_ = get("shuffle", V::boolean).get<bool>();
  epoch_ = epoch;
  cursor_ = cursor;
  StartEpoch();
}

}  // namespace r1
