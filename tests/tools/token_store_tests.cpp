// SPDX-License-Identifier: MIT
// Tokens: issued once, stored as digests, checked, revoked, and listed without ever showing a token.
#include "crypto.hpp"
#include "database.hpp"
#include "temp_dir.hpp"
#include "token_store.hpp"

#include <doctest/doctest.h>

#include <parley/base64.hpp>

using namespace parley_tools;
using parley_tools::testing::temp_dir;

namespace {

struct fixture {
  temp_dir dir;
  database db = database::open(dir / "parley.db").value();
  token_store tokens{db, openssl_random_source()};
};

const auto t0 = parley::from_unix_ms(1'700'000'000'000);
const auto t1 = parley::from_unix_ms(1'700'000'001'000);

}  // namespace

TEST_CASE("an issued token has the documented shape and verifies to its label") {
  fixture f;
  const std::string token = f.tokens.issue("ci-bot", t0).value();
  REQUIRE(token.starts_with(token_prefix));
  const std::string body = token.substr(token_prefix.size());
  CHECK(body.size() == 43);  // 32 bytes in unpadded base64url
  CHECK(body.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
        std::string::npos);
  CHECK(f.tokens.check(token).value().status == parley::token_status::valid);
  CHECK(f.tokens.check(token).value().label == "ci-bot");
}

TEST_CASE("two tokens differ") {
  fixture f;
  CHECK(f.tokens.issue("a", t0).value() != f.tokens.issue("b", t0).value());
}

TEST_CASE("a duplicate label is refused, and the first token keeps working") {
  fixture f;
  const std::string token = f.tokens.issue("ci-bot", t0).value();
  const auto again = f.tokens.issue("ci-bot", t1);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == parley::error_code::invalid_argument);
  CHECK(again.error().message.find("already exists") != std::string::npos);
  CHECK(f.tokens.check(token).value().status == parley::token_status::valid);
  CHECK(f.tokens.check(token).value().label == "ci-bot");
}

TEST_CASE("labels are checked") {
  fixture f;
  for (const char* bad : {"", "has space", "new\nline", "émoji"}) {
    CAPTURE(bad);
    CHECK(f.tokens.issue(bad, t0).error().code == parley::error_code::invalid_argument);
  }
  CHECK_FALSE(f.tokens.issue(std::string(65, 'x'), t0));
  CHECK(f.tokens.issue(std::string(64, 'x'), t0));
  CHECK(f.tokens.issue("Agent_7.prod-eu", t0));
}

TEST_CASE("a wrong token is unknown; a revoked one is revoked, with its label") {
  fixture f;
  const std::string token = f.tokens.issue("ci-bot", t0).value();
  CHECK(f.tokens.check("parley_tok_nope").value().status == parley::token_status::unknown);
  CHECK(f.tokens.check("").value().status == parley::token_status::unknown);
  CHECK(f.tokens.check(token + "x").value().status == parley::token_status::unknown);

  REQUIRE(f.tokens.revoke("ci-bot", t1));
  CHECK(f.tokens.check(token).value().status == parley::token_status::revoked);
  CHECK(f.tokens.check(token).value().label == "ci-bot");
}

TEST_CASE("revoke: an unknown label is an error, revoking twice keeps the first time") {
  fixture f;
  CHECK(f.tokens.revoke("nobody", t0).error().code == parley::error_code::invalid_argument);
  REQUIRE(f.tokens.issue("ci-bot", t0));
  REQUIRE(f.tokens.revoke("ci-bot", t0));
  REQUIRE(f.tokens.revoke("ci-bot", t1));
  CHECK(f.tokens.list().value().at(0).revoked_at == t0);
}

TEST_CASE("check writes nothing; record_uses sets last_used_at in one batch and never moves it back") {
  fixture f;
  const std::string a = f.tokens.issue("a", t0).value();
  REQUIRE(f.tokens.issue("b", t0));
  REQUIRE(f.tokens.check(a).value().status == parley::token_status::valid);
  CHECK_FALSE(f.tokens.list().value().at(0).last_used_at);
  REQUIRE(f.tokens.record_uses({{"a", t1}, {"b", t0}}));
  REQUIRE(f.tokens.record_uses({{"a", t0}}));  // an older use arriving late
  const auto list = f.tokens.list().value();
  CHECK(list.at(0).last_used_at == t1);
  CHECK(list.at(1).last_used_at == t0);
  CHECK(f.tokens.record_uses({}));
}

TEST_CASE("list shows labels and times, never a token or its digest") {
  fixture f;
  const std::string a = f.tokens.issue("b-second", t0).value();
  const std::string b = f.tokens.issue("a-first", t0).value();
  REQUIRE(f.tokens.check(a).value().status == parley::token_status::valid);
  REQUIRE(f.tokens.record_uses({{"b-second", t1}}));
  REQUIRE(f.tokens.revoke("a-first", t1));

  const auto list = f.tokens.list().value();
  REQUIRE(list.size() == 2);
  CHECK(list[0].label == "a-first");
  CHECK(list[0].created_at == t0);
  CHECK_FALSE(list[0].last_used_at);
  CHECK(list[0].revoked());
  CHECK(list[1].label == "b-second");
  CHECK(list[1].last_used_at == t1);
  CHECK_FALSE(list[1].revoked());
  for (const auto& info : list) {
    for (const std::string& secret : {a, b, sha256_hex(a), sha256_hex(b)})
      CHECK(info.label.find(secret) == std::string::npos);
  }
}

TEST_CASE("only the digest is stored") {
  fixture f;
  const std::string token = f.tokens.issue("ci-bot", t0).value();
  auto s = f.db.prepare("SELECT sha256 FROM tokens").value();
  REQUIRE(s.step().value());
  CHECK(s.text(0) == sha256_hex(token));
}

TEST_CASE("any_active follows issue and revoke") {
  fixture f;
  CHECK_FALSE(f.tokens.any_active().value());
  REQUIRE(f.tokens.issue("ci-bot", t0));
  CHECK(f.tokens.any_active().value());
  REQUIRE(f.tokens.revoke("ci-bot", t1));
  CHECK_FALSE(f.tokens.any_active().value());
}

TEST_CASE("tokens survive reopening the file") {
  temp_dir dir;
  std::string token;
  {
    const database db = database::open(dir / "parley.db").value();
    token_store tokens(db, openssl_random_source());
    token = tokens.issue("ci-bot", t0).value();
  }
  const database db = database::open(dir / "parley.db").value();
  token_store tokens(db, openssl_random_source());
  CHECK(tokens.check(token).value().label == "ci-bot");
}

TEST_CASE("sha256_hex and constant_time_equal") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
}
