// Reading tokenizer.json / tokenizer_config.json from disk with errors that name the file.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace r1::tok {

// Throws r1::Error("cannot read '<path>': <reason>").
std::string ReadWholeFile(const std::string& path);

// Throws r1::Error("<path>: invalid JSON: <parser message>") on syntax errors.
nlohmann::json ParseJsonFile(const std::string& path);

}  // namespace r1::tok
