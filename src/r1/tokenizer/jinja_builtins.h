// The library a Jinja template can call: filters, tests, attribute and item access (with the
// Python methods of str, dict and list that chat templates use) and the global functions Hugging
// Face's sandboxed environment provides. Errors are thrown as r1::Error with Python's wording;
// the evaluator adds the template position.
#pragma once

#include <string>

#include "r1/tokenizer/jinja_error.h"
#include "r1/tokenizer/jinja_value.h"

namespace r1::jinja {

bool IsKnownFilter(const std::string& name);
bool IsKnownTest(const std::string& name);

Value ApplyFilter(const std::string& name, const Value& input, const CallArgs& args);
bool ApplyTest(const std::string& name, const Value& input, const CallArgs& args);

// Jinja's sandboxed getattr (`x.name`: Python attribute first, then item) and getitem (`x[key]`:
// item first, then attribute). Missing entries give an Undefined that says what was missing;
// methods that would mutate a list or dict give one that fails when called, as in
// ImmutableSandboxedEnvironment.
Value GetAttr(const Value& obj, const std::string& name);
Value GetItem(const Value& obj, const Value& key);
// Python obj[start:stop:step]; null pointers are omitted bounds.
Value SliceValue(const Value& obj, const Value* start, const Value* stop, const Value* step);

// Calls a callable value; calling anything else throws Python's TypeError text.
Value CallValue(const Value& callee, const CallArgs& args);

// range, dict, namespace, raise_exception, strftime_now.
DictData GlobalFunctions();

}  // namespace r1::jinja
