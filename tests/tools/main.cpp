// SPDX-License-Identifier: MIT
// The tools_tests runner: doctest's own main.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
