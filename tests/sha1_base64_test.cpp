// SPDX-License-Identifier: MIT
// SHA-1 against FIPS 180 / RFC 3174 vectors and every padding boundary; base64 against RFC 4648 §10; the RFC 6455 accept key.
#include <parley/parley.hpp>

#include <doctest/doctest.h>

#include <string>

namespace {
std::string hex(const std::array<unsigned char, 20>& digest) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}
}  // namespace

TEST_CASE("sha1: FIPS 180 and RFC 3174 vectors") {
  CHECK(hex(parley::sha1("")) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(hex(parley::sha1("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(hex(parley::sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  CHECK(hex(parley::sha1("The quick brown fox jumps over the lazy dog")) ==
        "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
  CHECK(hex(parley::sha1(std::string(1000000, 'a'))) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST_CASE("sha1: lengths around the one-or-two final blocks boundary") {
  // 55 bytes still fit the length in the last block; 56 need a second one.
  CHECK(hex(parley::sha1(std::string(55, 'a'))) == "c1c8bbdc22796e28c0e15163d20899b65621d65a");
  CHECK(hex(parley::sha1(std::string(56, 'a'))) == "c2db330f6083854c99d4b5bfb6e8f29f201be699");
  CHECK(hex(parley::sha1(std::string(63, 'a'))) == "03f09f5b158a7a8cdad920bddc29b81c18a551f5");
  CHECK(hex(parley::sha1(std::string(64, 'a'))) == "0098ba824b5c16427bd7a1122a5a442a25ec644d");
  CHECK(hex(parley::sha1(std::string(65, 'a'))) == "11655326c708d70319be2610e8a57d9a5b959d3b");
  CHECK(hex(parley::sha1(std::string(119, 'a'))) == "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56");
  CHECK(hex(parley::sha1(std::string(120, 'a'))) == "f34c1488385346a55709ba056ddd08280dd4c6d6");
}

TEST_CASE("base64: RFC 4648 §10 vectors, both ways") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    CHECK(parley::base64_encode(plain) == encoded);
    const auto decoded = parley::base64_decode(encoded);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == plain);
  }
}

TEST_CASE("base64: every byte value round-trips") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    const std::string part = all.substr(0, n);
    CHECK(parley::base64_decode(parley::base64_encode(part)) == part);
  }
}

TEST_CASE("base64: malformed input is refused") {
  CHECK_FALSE(parley::base64_decode("Zg="));       // not a multiple of four
  CHECK_FALSE(parley::base64_decode("Zg"));
  CHECK_FALSE(parley::base64_decode("Z==="));      // three pad characters
  CHECK_FALSE(parley::base64_decode("===="));
  CHECK_FALSE(parley::base64_decode("Zg==Zg=="));  // padding in the middle
  CHECK_FALSE(parley::base64_decode("Zm9v\n"));
  CHECK_FALSE(parley::base64_decode("Zm 9"));
  CHECK_FALSE(parley::base64_decode("Zm-_"));      // base64url symbols are not base64
  CHECK_FALSE(parley::base64_decode("Zh=="));      // non-zero unused bits: a second spelling of "f"
  CHECK_FALSE(parley::base64_decode("Zm9="));      // likewise for "fo"
}

TEST_CASE("base64url: URL alphabet, no padding") {
  const std::string bytes = "\xfb\xff\xbf";
  CHECK(parley::base64_encode(bytes) == "+/+/");
  CHECK(parley::base64url_encode(bytes) == "-_-_");
  CHECK(parley::base64url_encode("\xfb\xff") == "-_8");
  CHECK(parley::base64url_encode("f") == "Zg");
  CHECK(parley::base64url_encode("") == "");
}

TEST_CASE("sha1 + base64: RFC 6455 §1.3 Sec-WebSocket-Accept example") {
  const auto digest = parley::sha1("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  const std::string raw(reinterpret_cast<const char*>(digest.data()), digest.size());
  CHECK(parley::base64_encode(raw) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
