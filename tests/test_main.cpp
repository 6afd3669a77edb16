// SPDX-License-Identifier: MIT
// The doctest runner for the core suite.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
