// GPT-2's byte-level alphabet: every byte value gets a printable code point (printable Latin-1
// bytes keep their own, the rest are moved to U+0100 onwards), so that byte-level BPE vocabularies
// can be stored as text. Vocab strings are written in this alphabet.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace r1::tok {

// byte -> code point of its stand-in character.
const std::array<char32_t, 256>& ByteLevelChars();

// The UTF-8 spelling of each byte's stand-in character.
const std::array<std::string, 256>& ByteLevelStrings();

// Maps a vocab string back to bytes: each character of the alphabet becomes its byte. As in the
// reference decoder, a string containing any character outside the alphabet is kept as it is.
std::string ByteLevelDecode(std::string_view token);

}  // namespace r1::tok
