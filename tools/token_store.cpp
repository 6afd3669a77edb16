// SPDX-License-Identifier: MIT
// Token issue, list, revoke and check against the tokens table.
#include "token_store.hpp"

#include "crypto.hpp"

#include <parley/base64.hpp>

#include <array>

namespace parley_tools {

namespace {

constexpr std::size_t token_bytes = 32;
constexpr std::size_t max_label_size = 64;

std::optional<parley::wall_time> optional_time(const statement& s, int column) {
  if (s.is_null(column)) return std::nullopt;
  return parley::from_unix_ms(s.int64(column));
}

}  // namespace

bool valid_token_label(std::string_view label) noexcept {
  if (label.empty() || label.size() > max_label_size) return false;
  for (const char c : label) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

parley::result<std::string> token_store::issue(std::string_view label, parley::wall_time now) {
  if (!valid_token_label(label))
    return parley::make_error(parley::error_code::invalid_argument,
                              "a token label is 1 to 64 characters of A-Z a-z 0-9 . _ -");
  std::array<unsigned char, token_bytes> secret{};
  random_(secret.data(), secret.size());
  std::string token(token_prefix);
  token += parley::base64url_encode(std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()));

  auto s =
      db_.prepare("INSERT INTO tokens (label, sha256, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (label) DO NOTHING");
  if (!s) return tl::unexpected(s.error());
  s->bind(1, label).bind(2, sha256_hex(token)).bind(3, parley::to_unix_ms(now));
  if (auto done = s->step(); !done) return tl::unexpected(done.error());
  if (db_.changes() == 0)
    return parley::make_error(parley::error_code::invalid_argument,
                              "a token labelled " + std::string(label) +
                                  " already exists (labels of revoked tokens stay taken); pick another label");
  return token;
}

parley::result<std::vector<token_info>> token_store::list() const {
  auto s = db_.prepare("SELECT label, created_at, last_used_at, revoked_at FROM tokens ORDER BY label");
  if (!s) return tl::unexpected(s.error());
  std::vector<token_info> tokens;
  for (;;) {
    auto row = s->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return tokens;
    tokens.push_back(
        token_info{s->text(0), parley::from_unix_ms(s->int64(1)), optional_time(*s, 2), optional_time(*s, 3)});
  }
}

parley::result<void> token_store::revoke(std::string_view label, parley::wall_time now) {
  auto s = db_.prepare("UPDATE tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE label = ?1");
  if (!s) return tl::unexpected(s.error());
  s->bind(1, label).bind(2, parley::to_unix_ms(now));
  if (auto done = s->step(); !done) return tl::unexpected(done.error());
  if (db_.changes() == 0)
    return parley::make_error(parley::error_code::invalid_argument, "no token is labelled " + std::string(label));
  return {};
}

parley::result<parley::token_verdict> token_store::check(std::string_view token) const {
  // Looking up by digest leaks nothing: the digest of a secret is not a secret.
  // The compare is constant-time anyway, so no future change of index can add a timing channel.
  const std::string digest = sha256_hex(token);
  auto s = db_.prepare("SELECT label, sha256, revoked_at FROM tokens WHERE sha256 = ?1");
  if (!s) return tl::unexpected(s.error());
  s->bind(1, digest);
  auto row = s->step();
  if (!row) return tl::unexpected(row.error());
  if (!*row || !constant_time_equal(s->text(1), digest)) return parley::token_verdict{parley::token_status::unknown, {}};
  const auto status = s->is_null(2) ? parley::token_status::valid : parley::token_status::revoked;
  return parley::token_verdict{status, s->text(0)};
}

parley::result<void> token_store::record_uses(const std::map<std::string, parley::wall_time>& uses) {
  if (uses.empty()) return {};
  if (auto begun = db_.exec("BEGIN IMMEDIATE"); !begun) return begun;
  auto update_all = [&]() -> parley::result<void> {
    for (const auto& [label, at] : uses) {
      auto used = db_.prepare("UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE label = ?1");
      if (!used) return tl::unexpected(used.error());
      used->bind(1, label).bind(2, parley::to_unix_ms(at));
      if (auto done = used->step(); !done) return tl::unexpected(done.error());
    }
    return {};
  };
  if (auto updated = update_all(); !updated) {
    (void)db_.exec("ROLLBACK");
    return updated;
  }
  return db_.exec("COMMIT");
}

parley::result<bool> token_store::any_active() const {
  auto s = db_.prepare("SELECT EXISTS (SELECT 1 FROM tokens WHERE revoked_at IS NULL)");
  if (!s) return tl::unexpected(s.error());
  auto row = s->step();
  if (!row) return tl::unexpected(row.error());
  return *row && s->int64(0) != 0;
}

}  // namespace parley_tools
