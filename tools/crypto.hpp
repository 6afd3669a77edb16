// SPDX-License-Identifier: MIT
// OpenSSL behind the three things the tools need: a CSPRNG for the core, SHA-256, and a constant-time compare.
#pragma once

#include <parley/random_source.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace parley_tools {

// Fills `n` bytes from RAND_bytes. Aborts if OpenSSL cannot supply them: every caller
// needs secrets, and carrying on with predictable bytes would be worse than stopping.
void random_bytes(unsigned char* out, std::size_t n);

// The random_source the core is given in production.
[[nodiscard]] parley::random_source openssl_random_source();

// SHA-256 of `data` as 64 lower-case hex digits.
[[nodiscard]] std::string sha256_hex(std::string_view data);

// Equal sizes and equal bytes, in time independent of where the first difference is.
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace parley_tools
