// SPDX-License-Identifier: MIT
// A person's sign-in at the web page: the token they typed, held by the server under a random cookie.
//
// On a bind that requires tokens the page POSTs the token once (Authorization: Bearer)
// and gets a cookie naming a sign-in; its WebSocket upgrades then present the cookie.
// The token never reaches script: the cookie is HttpOnly, SameSite=Strict and, under
// TLS, Secure with the __Host- prefix (no subdomain can plant one). SameSite does not
// separate ports of one host, so the server also honours the cookie only on an upgrade
// whose Origin is exactly its own. A sign-in lasts `lifetime`, ends at sign-out, when
// its token's label is revoked, or when the server restarts (it is memory only).
#pragma once

#include "clock.hpp"

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace parley {

[[nodiscard]] constexpr std::string_view sign_in_cookie_name(bool tls) noexcept {
  return tls ? "__Host-parley_sign_in" : "parley_sign_in";
}

// Every value of cookie `name` in a Cookie header ("a=1; b=2"), in order.
[[nodiscard]] inline std::vector<std::string_view> cookie_values(std::string_view header, std::string_view name) {
  std::vector<std::string_view> out;
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
    while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) out.push_back(pair.substr(eq + 1));
  }
  return out;
}

// The Set-Cookie value that gives the browser sign-in `id`, or (id empty) takes it away.
[[nodiscard]] inline std::string sign_in_cookie(std::string_view id, bool tls, milliseconds lifetime) {
  std::string out(sign_in_cookie_name(tls));
  out += "=";
  out += id;
  out += "; Path=/; HttpOnly; SameSite=Strict; Max-Age=";
  out += id.empty() ? "0" : std::to_string(std::chrono::duration_cast<std::chrono::seconds>(lifetime).count());
  if (tls) out += "; Secure";
  return out;
}

// The server's sign-ins: at most `capacity`, the oldest given up first when full.
template <class Time>
class browser_sign_ins {
 public:
  struct sign_in {
    std::string token;
    std::string label;
    Time expires;
  };

  browser_sign_ins(std::size_t capacity, milliseconds lifetime) : capacity_(capacity), lifetime_(lifetime) {}

  [[nodiscard]] milliseconds lifetime() const noexcept { return lifetime_; }
  [[nodiscard]] std::size_t size() const noexcept { return by_id_.size(); }

  void add(std::string id, std::string token, std::string label, Time now) {
    expire(now);
    while (!by_expiry_.empty() && by_id_.size() >= capacity_) erase(std::string(by_expiry_.begin()->second));
    const Time expires = now + lifetime_;
    by_expiry_.emplace(expires, id);
    by_id_.insert_or_assign(std::move(id), sign_in{std::move(token), std::move(label), expires});
  }

  // The live sign-in under `id`, if any.
  [[nodiscard]] const sign_in* find(std::string_view id, Time now) const {
    const auto it = by_id_.find(std::string(id));
    if (it == by_id_.end() || now >= it->second.expires) return nullptr;
    return &it->second;
  }

  void erase(const std::string& id) {
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    by_expiry_.erase({it->second.expires, id});
    by_id_.erase(it);
  }

  void erase_label(std::string_view label) {
    std::vector<std::string> doomed;
    for (const auto& [id, s] : by_id_)
      if (s.label == label) doomed.push_back(id);
    for (const auto& id : doomed) erase(id);
  }

  void expire(Time now) {
    while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) erase(std::string(by_expiry_.begin()->second));
  }

 private:
  std::size_t capacity_;
  milliseconds lifetime_;
  std::unordered_map<std::string, sign_in> by_id_;
  std::set<std::pair<Time, std::string>> by_expiry_;
};

}  // namespace parley
