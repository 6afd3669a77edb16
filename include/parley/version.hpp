// SPDX-License-Identifier: MIT
// parley's version, which is also the serverVersion in hello.ok.
#pragma once

#include <string_view>

// The one place the version is written. CMakeLists.txt, conanfile.py and
// scripts/amalgamate.py read these three lines; tests/package/check_version.py
// fails when anything else that states the version disagrees.
#define PARLEY_VERSION_MAJOR 0
#define PARLEY_VERSION_MINOR 1
#define PARLEY_VERSION_PATCH 0

#define PARLEY_VERSION_STR_(x) #x
#define PARLEY_VERSION_STR(x) PARLEY_VERSION_STR_(x)

namespace parley {

inline constexpr std::string_view version_string =
    PARLEY_VERSION_STR(PARLEY_VERSION_MAJOR) "." PARLEY_VERSION_STR(PARLEY_VERSION_MINOR) "." PARLEY_VERSION_STR(PARLEY_VERSION_PATCH);

// Wire compatibility follows the major version: a client whose clientVersion has a
// different major is refused with VersionMismatchError.
inline constexpr unsigned protocol_major = PARLEY_VERSION_MAJOR;

}  // namespace parley

#undef PARLEY_VERSION_STR
#undef PARLEY_VERSION_STR_
