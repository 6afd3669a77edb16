// SPDX-License-Identifier: MIT
// The core's own SHA-256 (invite codes) agrees with OpenSSL's (tokens) on every length across several blocks.
#include "crypto.hpp"

#include <parley/sha256.hpp>

#include <doctest/doctest.h>

#include <string>

TEST_CASE("parley::sha256_hex equals OpenSSL's for every length from 0 to 300 bytes") {
  std::string data;
  for (int n = 0; n <= 300; ++n) {
    CHECK_MESSAGE(parley::sha256_hex(data) == parley_tools::sha256_hex(data), "length ", n);
    data += static_cast<char>((n * 131 + 7) & 0xFF);
  }
}
