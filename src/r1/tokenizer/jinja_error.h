// The error a template raises on purpose, kept apart from interpreter errors.
#pragma once

#include "r1/core/error.h"

namespace r1::jinja {

// Thrown by raise_exception(): what() is exactly the template's message, with no position prefix,
// so servers can show it to the client as Hugging Face does.
class RaisedException : public Error {
 public:
  using Error::Error;
};

}  // namespace r1::jinja
