// SPDX-License-Identifier: MIT
// Bearer tokens for non-loopback servers: issued once, stored only as SHA-256 digests, revocable by label.
#pragma once

#include "database.hpp"

#include <parley/clock.hpp>
#include <parley/error.hpp>
#include <parley/random_source.hpp>
#include <parley/server_hooks.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley_tools {

inline constexpr std::string_view token_prefix = "parley_tok_";

// What `token list` shows. There is no token in it: the store cannot know one.
struct token_info {
  std::string label;
  parley::wall_time created_at;
  std::optional<parley::wall_time> last_used_at;  // last successful hello, recorded by record_uses()
  std::optional<parley::wall_time> revoked_at;

  [[nodiscard]] bool revoked() const noexcept { return revoked_at.has_value(); }
};

// Labels are 1 to 64 of [A-Za-z0-9._-], because they are printed in tables and logs.
[[nodiscard]] bool valid_token_label(std::string_view label) noexcept;

class token_store {
 public:
  // `db` must outlive the store; `random` supplies token bytes (OpenSSL in production).
  token_store(const database& db, parley::random_source random) : db_(db), random_(std::move(random)) {}

  // A new token, "parley_tok_" + base64url of 32 random bytes. It is returned once
  // and never stored. A label in use, even by a revoked token, is invalid_argument.
  [[nodiscard]] parley::result<std::string> issue(std::string_view label, parley::wall_time now);

  // Every token ever issued, in label order.
  [[nodiscard]] parley::result<std::vector<token_info>> list() const;

  // Revoking twice is fine and keeps the first time; an unknown label is invalid_argument.
  [[nodiscard]] parley::result<void> revoke(std::string_view label, parley::wall_time now);

  // What the store knows of a token: valid, unknown or revoked, each with its label
  // where there is one. An error is the database failing, never a verdict: the core
  // decides what each verdict means on the wire. A read only: the use is recorded by
  // record_uses(), which the server batches off the hello's path.
  [[nodiscard]] parley::result<parley::token_verdict> check(std::string_view token) const;

  // Sets last_used_at for each label, in one transaction.
  [[nodiscard]] parley::result<void> record_uses(const std::map<std::string, parley::wall_time>& uses);

  // Whether at least one token is unrevoked: a non-loopback server needs one to start.
  [[nodiscard]] parley::result<bool> any_active() const;

 private:
  const database& db_;
  parley::random_source random_;
};

}  // namespace parley_tools
