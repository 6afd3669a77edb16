// SPDX-License-Identifier: MIT
// UTF-8 validation, whole or streamed, as RFC 3629 defines it: no overlongs, no surrogates, nothing past U+10FFFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace parley {

// A streaming validator: feed() may be called with any split of the input (a
// WebSocket message arrives in fragments), complete() says whether the input
// ended on a character boundary.
class utf8_validator {
 public:
  // Returns false as soon as the bytes seen so far cannot be a prefix of valid UTF-8;
  // after that the validator stays failed.
  bool feed(std::string_view bytes) noexcept {
    const char* p = bytes.data();
    const char* const end = p + bytes.size();
    while (p != end) {
      // Between characters, skip ASCII eight bytes at a time: JSON frames are mostly ASCII.
      if (pending_ == 0 && !failed_) {
        while (end - p >= 8) {
          std::uint64_t word;
          std::memcpy(&word, p, 8);
          if (word & 0x8080808080808080ULL) break;
          p += 8;
        }
        if (p == end) break;
      }
      if (!step(static_cast<unsigned char>(*p++))) {
        failed_ = true;
        return false;
      }
    }
    return !failed_;
  }

  [[nodiscard]] bool failed() const noexcept { return failed_; }
  [[nodiscard]] bool complete() const noexcept { return !failed_ && pending_ == 0; }

 private:
  bool step(unsigned char c) noexcept {
    if (failed_) return false;
    if (pending_ == 0) {
      if (c < 0x80) return true;
      if (c >= 0xC2 && c <= 0xDF) return expect(1, 0x80, 0xBF);
      if (c == 0xE0) return expect(2, 0xA0, 0xBF);   // no overlong 3-byte forms
      if (c == 0xED) return expect(2, 0x80, 0x9F);   // no UTF-16 surrogates
      if (c >= 0xE1 && c <= 0xEF) return expect(2, 0x80, 0xBF);
      if (c == 0xF0) return expect(3, 0x90, 0xBF);   // no overlong 4-byte forms
      if (c >= 0xF1 && c <= 0xF3) return expect(3, 0x80, 0xBF);
      if (c == 0xF4) return expect(3, 0x80, 0x8F);   // nothing above U+10FFFF
      return false;
    }
    if (c < lower_ || c > upper_) return false;
    --pending_;
    lower_ = 0x80;
    upper_ = 0xBF;
    return true;
  }

  bool expect(std::uint8_t continuation_bytes, unsigned char lower, unsigned char upper) noexcept {
    pending_ = continuation_bytes;
    lower_ = lower;
    upper_ = upper;
    return true;
  }

  std::uint8_t pending_ = 0;
  unsigned char lower_ = 0x80;
  unsigned char upper_ = 0xBF;
  bool failed_ = false;
};

[[nodiscard]] inline bool is_valid_utf8(std::string_view bytes) noexcept {
  utf8_validator v;
  return v.feed(bytes) && v.complete();
}

// Characters (code points) in valid UTF-8: every byte that does not continue a sequence
// starts one. Limits that the docs state in characters are counted with this.
[[nodiscard]] inline std::size_t utf8_length(std::string_view text) noexcept {
  std::size_t n = 0;
  for (unsigned char byte : text) n += (byte & 0xC0) != 0x80;
  return n;
}

}  // namespace parley
