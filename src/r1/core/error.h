// Error type used across r1cpp: every failure a user can cause (bad file, bad flag, bad config)
// is reported as an r1::Error whose message names what is wrong, never as a crash.
#pragma once

#include <stdexcept>
#include <string>

namespace r1 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace r1
