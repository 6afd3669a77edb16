// SPDX-License-Identifier: MIT
// parley's version, which is also the serverVersion in hello.ok.
#pragma once

#include <string_view>

#define PARLEY_VERSION_MAJOR 0
#define PARLEY_VERSION_MINOR 1
#define PARLEY_VERSION_PATCH 0

namespace parley {

inline constexpr std::string_view version_string = "0.1.0";

// Wire compatibility follows the major version: a client whose clientVersion has a
// different major is refused with VersionMismatchError.
inline constexpr unsigned protocol_major = PARLEY_VERSION_MAJOR;

}  // namespace parley
