// SPDX-License-Identifier: MIT
// Loopback classification and the start-up auth plan built on it.
#include "auth_rule.hpp"

#include <doctest/doctest.h>

using parley_tools::is_loopback_bind;
using parley_tools::plan_auth;

TEST_CASE("loopback binds") {
  for (const char* host : {"127.0.0.1", "127.255.255.254", "127.0.0.0", "::1", "::ffff:127.0.0.1", "::ffff:127.1.2.3",
                           "localhost", "LocalHost"}) {
    CAPTURE(host);
    CHECK(is_loopback_bind(host));
  }
}

TEST_CASE("binds reachable from outside") {
  for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "::ffff:10.0.0.1", "128.0.0.1", "192.168.1.1", "fe80::1",
                           "::127.0.0.1", "localhost.example", "[::1]", "", "not an address"}) {
    CAPTURE(host);
    CHECK_FALSE(is_loopback_bind(host));
  }
}

TEST_CASE("a loopback bind needs no token and starts without one") {
  const auto plan = plan_auth("127.0.0.1", false, false);
  CHECK_FALSE(plan.tokens_required);
  CHECK_FALSE(plan.refusal);
  CHECK_FALSE(plan.warning);
}

TEST_CASE("a non-loopback bind with no active token refuses to start and says how to fix it") {
  const auto plan = plan_auth("0.0.0.0", true, false);
  CHECK(plan.tokens_required);
  REQUIRE(plan.refusal);
  CHECK(plan.refusal->find("parley-tools token issue --label NAME") != std::string::npos);
}

TEST_CASE("a non-loopback bind with a token starts, warning when tokens would travel in clear") {
  const auto clear = plan_auth("::", false, true);
  CHECK(clear.tokens_required);
  CHECK_FALSE(clear.refusal);
  REQUIRE(clear.warning);
  CHECK(clear.warning->find("TLS") != std::string::npos);

  const auto tls = plan_auth("10.0.0.1", true, true);
  CHECK(tls.tokens_required);
  CHECK_FALSE(tls.refusal);
  CHECK_FALSE(tls.warning);
}
