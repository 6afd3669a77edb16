// SPDX-License-Identifier: MIT
// Loopback classification with asio's address parser, and the plan built on it.
#include "auth_rule.hpp"

#include <asio/ip/address.hpp>

#include <algorithm>
#include <cctype>

namespace parley_tools {

bool is_loopback_bind(std::string_view host) {
  constexpr std::string_view localhost = "localhost";
  if (std::equal(host.begin(), host.end(), localhost.begin(), localhost.end(),
                 [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; }))
    return true;

  asio::error_code ec;
  const asio::ip::address address = asio::ip::make_address(std::string(host), ec);
  if (ec) return false;
  if (address.is_v4()) return address.to_v4().is_loopback();
  const asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).is_loopback();
  return v6.is_loopback();
}

auth_plan plan_auth(std::string_view bind, bool tls, bool active_token_exists) {
  auth_plan plan;
  if (is_loopback_bind(bind)) return plan;
  plan.tokens_required = true;
  if (!active_token_exists) {
    plan.refusal = "refusing to listen on " + std::string(bind) +
                   ": a non-loopback bind requires a token and none is active. "
                   "Issue one with: parley-tools token issue --label NAME";
    return plan;
  }
  if (!tls)
    plan.warning = "listening on " + std::string(bind) +
                   " without TLS: tokens travel in clear unless a TLS-terminating proxy is in front";
  return plan;
}

}  // namespace parley_tools
