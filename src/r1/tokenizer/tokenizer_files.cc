#include "r1/tokenizer/tokenizer_files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "r1/core/error.h"

namespace r1::tok {

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "': " + std::strerror(errno));
  std::string data;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error("cannot read '" + path + "': not a regular file");
  data.resize(static_cast<size_t>(size));
  in.seekg(0, std::ios::beg);
  in.read(data.data(), size);
  if (!in) throw Error("cannot read '" + path + "': read failed");
  return data;
}

nlohmann::json ParseJsonFile(const std::string& path) {
  const std::string text = ReadWholeFile(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
}

}  // namespace r1::tok
