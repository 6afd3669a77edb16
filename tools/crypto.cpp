// SPDX-License-Identifier: MIT
// The OpenSSL calls behind crypto.hpp.
#include "crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace parley_tools {

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "parley-tools: %s failed (OpenSSL error %lu); aborting\n", what, ERR_get_error());
  std::abort();
}

}  // namespace

void random_bytes(unsigned char* out, std::size_t n) {
  while (n > 0) {
    const std::size_t chunk = std::min<std::size_t>(n, INT_MAX);
    if (RAND_bytes(out, static_cast<int>(chunk)) != 1) die("RAND_bytes");
    out += chunk;
    n -= chunk;
  }
}

parley::random_source openssl_random_source() { return random_bytes; }

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) die("EVP_Digest");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0x0F];
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  // The sizes are public (both sides are digests or both are not); only the bytes are secret.
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace parley_tools
