// SPDX-License-Identifier: MIT
// Room slugs and nicknames: each rule, its boundaries, case folding and automatic nicknames.
#include <parley/parley.hpp>

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace parley;

TEST_CASE("room slugs: ^[a-z0-9][a-z0-9-]{0,31}$") {
  CHECK(validate_room_slug("a"));
  CHECK(validate_room_slug("0"));
  CHECK(validate_room_slug("team-42"));
  CHECK(validate_room_slug("a-"));
  CHECK(validate_room_slug(std::string(32, 'x')));
  CHECK(validate_room_slug(std::string(31, 'x') + "-"));

  CHECK(validate_room_slug("").error().rule == name_rule::empty);
  CHECK(validate_room_slug(std::string(33, 'x')).error().rule == name_rule::too_long);
  CHECK(validate_room_slug("-lobby").error().rule == name_rule::bad_first);
  CHECK(validate_room_slug("Lobby").error().rule == name_rule::bad_first);
  auto upper = validate_room_slug("lobBy");
  CHECK(upper.error().rule == name_rule::bad_character);
  CHECK(upper.error().position == 3);
  CHECK(validate_room_slug("lob_by").error().rule == name_rule::bad_character);
  CHECK(validate_room_slug("lob by").error().rule == name_rule::bad_character);
  CHECK(validate_room_slug("caf\xC3\xA9").error().rule == name_rule::bad_character);
}

TEST_CASE("nicknames: ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$") {
  CHECK(validate_nickname("Alice"));
  CHECK(validate_nickname("9lives"));
  CHECK(validate_nickname("a_b-C"));
  CHECK(validate_nickname(std::string(32, 'N')));

  CHECK(validate_nickname("").error().rule == name_rule::empty);
  CHECK(validate_nickname(std::string(33, 'N')).error().rule == name_rule::too_long);
  CHECK(validate_nickname("_alice").error().rule == name_rule::bad_first);
  CHECK(validate_nickname("-alice").error().rule == name_rule::bad_first);
  CHECK(validate_nickname("al ice").error().rule == name_rule::bad_character);
  CHECK(validate_nickname("al.ice").error().rule == name_rule::bad_character);
}

TEST_CASE("a violation says which rule failed, in the error's details") {
  auto e = check_nickname("nickname", "_x");
  REQUIRE_FALSE(e);
  CHECK(e.error().code == error_code::invalid_argument);
  CHECK(e.error().details["field"] == "nickname");
  CHECK(e.error().details["rule"] == "pattern ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$");
  CHECK(e.error().message.find("start with a letter or digit") != std::string::npos);
  auto r = check_room_slug("room", std::string(33, 'a'));
  CHECK(r.error().message.find("at most 32") != std::string::npos);
}

TEST_CASE("nickname folding is ASCII case-insensitive and keeps the rest") {
  CHECK(fold_nickname("Alice") == fold_nickname("alice"));
  CHECK(fold_nickname("ALICE_9-x") == "alice_9-x");
  CHECK(fold_nickname("alice") != fold_nickname("alice2"));
}

TEST_CASE("the word lists give at least 64 x 64 distinct, valid pairs") {
  CHECK(nickname_adjectives.size() >= 64);
  CHECK(nickname_animals.size() >= 64);
  std::set<std::string_view> adjectives(nickname_adjectives.begin(), nickname_adjectives.end());
  std::set<std::string_view> animals(nickname_animals.begin(), nickname_animals.end());
  CHECK(adjectives.size() == nickname_adjectives.size());
  CHECK(animals.size() == nickname_animals.size());
  for (auto a : nickname_adjectives)
    for (auto b : nickname_animals) {
      const std::string pair = std::string(a) + "-" + std::string(b);
      CHECK_MESSAGE(validate_nickname(pair), pair);
      // a ten-digit suffix (more members than any room holds) still fits in 32
      CHECK_MESSAGE(validate_nickname(pair + "-4294967295"), pair);
    }
}

TEST_CASE("automatic nicknames: a pair, then -2, -3, ... never failing") {
  auto random = testing::seeded_random(7);
  std::set<std::string> taken;
  const std::string first = allocate_nickname(random, [&](const std::string& n) { return taken.count(n) > 0; });
  CHECK(validate_nickname(first));
  CHECK(first.find('-') != std::string::npos);

  // Force every draw to collide with the same pair: the same seed gives the same pair.
  taken.insert(first);
  for (int n = 2; n <= 50; ++n) {
    auto again = testing::seeded_random(7);
    const std::string next = allocate_nickname(again, [&](const std::string& c) { return taken.count(c) > 0; });
    CHECK(next == first + "-" + std::to_string(n));
    CHECK(validate_nickname(next));
    taken.insert(next);
  }
}
