// SPDX-License-Identifier: MIT
// UTF-8 validation: the classes of invalid input RFC 3629 names, whole and split at every position.
#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <string>

using parley::is_valid_utf8;
using parley::utf8_validator;

namespace {
bool valid_at_every_split(const std::string& s) {
  const bool whole = is_valid_utf8(s);
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    utf8_validator v;
    v.feed(std::string_view(s).substr(0, cut));
    v.feed(std::string_view(s).substr(cut));
    if (v.complete() != whole) return !whole;  // a mismatch reports the opposite of `whole`
  }
  utf8_validator bytewise;
  for (char c : s) bytewise.feed(std::string_view(&c, 1));
  CHECK(bytewise.complete() == whole);
  return whole;
}
}  // namespace

TEST_CASE("utf8: valid text of every width") {
  CHECK(valid_at_every_split(""));
  CHECK(valid_at_every_split("plain ascii"));
  CHECK(valid_at_every_split("caf\xC3\xA9"));                 // é, 2 bytes
  CHECK(valid_at_every_split("\xE2\x82\xAC"));                // €, 3 bytes
  CHECK(valid_at_every_split("\xF0\x9F\x98\x80"));            // 😀, 4 bytes
  CHECK(valid_at_every_split("\xF4\x8F\xBF\xBF"));            // U+10FFFF, the last code point
  CHECK(valid_at_every_split("\xED\x9F\xBF"));                // U+D7FF, just below the surrogates
  CHECK(valid_at_every_split(std::string("nul\0inside", 10)));
}

TEST_CASE("utf8: invalid sequences are refused") {
  CHECK_FALSE(valid_at_every_split("\x80"));                  // lone continuation
  CHECK_FALSE(valid_at_every_split("\xC3"));                  // truncated
  CHECK_FALSE(valid_at_every_split("\xC0\xAF"));              // overlong '/'
  CHECK_FALSE(valid_at_every_split("\xE0\x80\xAF"));          // overlong 3-byte
  CHECK_FALSE(valid_at_every_split("\xF0\x80\x80\xAF"));      // overlong 4-byte
  CHECK_FALSE(valid_at_every_split("\xED\xA0\x80"));          // U+D800 surrogate
  CHECK_FALSE(valid_at_every_split("\xF4\x90\x80\x80"));      // above U+10FFFF
  CHECK_FALSE(valid_at_every_split("\xF5\x80\x80\x80"));
  CHECK_FALSE(valid_at_every_split("\xFF"));
  CHECK_FALSE(valid_at_every_split("ok\xE2\x82"));            // ends mid-character
}

TEST_CASE("utf8: a failed validator stays failed") {
  utf8_validator v;
  CHECK_FALSE(v.feed("\xFF"));
  CHECK_FALSE(v.feed("abc"));
  CHECK(v.failed());
  CHECK_FALSE(v.complete());
}

// feed() skips ASCII eight bytes at a time: every offset of a non-ASCII byte within and
// around those words must still be seen, whole and split.
TEST_CASE("utf8: non-ASCII at every offset of a long ASCII run") {
  const std::string pieces[] = {"\xC3\xA9", "\xF0\x9F\x98\x80", "\x80", "\xC3", "\xED\xA0\x80", "\xFF"};
  const bool piece_valid[] = {true, true, false, false, false, false};
  for (std::size_t k = 0; k < 6; ++k) {
    for (std::size_t before = 0; before <= 24; ++before) {
      for (std::size_t after : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{17}}) {
        const std::string s = std::string(before, 'a') + pieces[k] + std::string(after, 'z');
        CAPTURE(s);
        CHECK(valid_at_every_split(s) == piece_valid[k]);
      }
    }
  }
}
