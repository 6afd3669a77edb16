// SPDX-License-Identifier: MIT
// Token bucket, idempotency window, replay ring, UUIDs, RFC 3339, sign-in cookies and page files: the parts on their own.
#include <parley/parley.hpp>

#include "test_support.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <set>
#include <string>

using namespace parley;
using namespace parley::testing;
using std::chrono::milliseconds;

TEST_CASE("token bucket: burst 20, then 10 per second") {
  token_bucket bucket({20, 10}, epoch.monotonic);
  for (int i = 1; i <= 20; ++i) CHECK_MESSAGE(!bucket.try_take(epoch.monotonic), "send ", i);
  auto refused = bucket.try_take(epoch.monotonic);
  REQUIRE(refused);
  CHECK(*refused == milliseconds(100));
  CHECK(bucket.try_take(epoch.monotonic + milliseconds(99)));           // 99 ms is not enough
  CHECK(*bucket.try_take(epoch.monotonic + milliseconds(99)) == milliseconds(1));
  CHECK_FALSE(bucket.try_take(epoch.monotonic + milliseconds(100)));    // exactly the advertised wait
  CHECK(bucket.try_take(epoch.monotonic + milliseconds(100)));
}

TEST_CASE("token bucket: refills to capacity, never past it, and ignores a clock stepping back") {
  token_bucket bucket({20, 10}, epoch.monotonic);
  for (int i = 0; i < 20; ++i) (void)bucket.try_take(epoch.monotonic);
  CHECK(bucket.milli_tokens(epoch.monotonic + std::chrono::hours(24 * 365 * 100)) == 20000);
  token_bucket b2({2, 10}, epoch.monotonic + milliseconds(1000));
  (void)b2.try_take(epoch.monotonic + milliseconds(1000));
  (void)b2.try_take(epoch.monotonic + milliseconds(1000));
  CHECK(b2.try_take(epoch.monotonic));  // earlier than the last update: no tokens appear
}

TEST_CASE("token bucket: configurable rates, including odd ones") {
  token_bucket bucket({1, 3}, epoch.monotonic);
  CHECK_FALSE(bucket.try_take(epoch.monotonic));
  auto wait = bucket.try_take(epoch.monotonic);
  REQUIRE(wait);
  CHECK(*wait == milliseconds(334));  // ceil(1000 / 3)
  CHECK_FALSE(bucket.try_take(epoch.monotonic + *wait));
}

TEST_CASE("idempotency window: keeps the last N keys, and any key younger than the age") {
  idempotency_window<int, test_moment::monotonic_time> w({3, milliseconds(1000)});
  w.remember("a", 1, epoch.monotonic);
  w.remember("b", 2, epoch.monotonic);
  w.remember("c", 3, epoch.monotonic);
  w.remember("d", 4, epoch.monotonic + milliseconds(10));
  CHECK(w.find("a"));  // 4 keys but "a" is younger than 1 s: kept
  w.remember("e", 5, epoch.monotonic + milliseconds(1000));
  CHECK_FALSE(w.find("a"));  // old and beyond the last 3
  CHECK_FALSE(w.find("b"));
  CHECK(w.find("c"));  // ...while the last 3 stay whatever their age
  CHECK(*w.find("e") == 5);
  CHECK(w.size() == 3);
}

TEST_CASE("idempotency window: the same key twice keeps the first value") {
  idempotency_window<int, test_moment::monotonic_time> w;
  w.remember("k", 1, epoch.monotonic);
  w.remember("k", 2, epoch.monotonic);
  CHECK(*w.find("k") == 1);
  CHECK(w.size() == 1);
}

TEST_CASE("replay ring: bounded, cumulative acks, and a resume is exact or refused") {
  replay_ring ring(64);
  for (std::uint64_t seq = 1; seq <= 64; ++seq) ring.push(seq, make_shared_frame(std::to_string(seq)));
  CHECK(ring.size() == 64);
  CHECK(ring.can_resume_after(0));  // the 64th unacked message still fits
  ring.push(65, make_shared_frame("65"));
  CHECK(ring.size() == 64);
  CHECK_FALSE(ring.can_resume_after(0));  // the 65th evicted seq 1
  CHECK(ring.can_resume_after(1));
  std::vector<std::uint64_t> replayed;
  ring.for_each_after(60, [&](const replay_entry& e) { replayed.push_back(e.seq); });
  CHECK(replayed == std::vector<std::uint64_t>{61, 62, 63, 64, 65});
  ring.ack(63);
  CHECK(ring.size() == 2);
  CHECK(ring.acked() == 63);
  ring.ack(10);  // acks are cumulative: an older one changes nothing
  CHECK(ring.acked() == 63);
  CHECK(ring.size() == 2);
}

TEST_CASE("replay ring: seqs need not be contiguous") {
  replay_ring ring(2);
  ring.push(3, make_shared_frame("3"));
  ring.push(7, make_shared_frame("7"));
  ring.push(9, make_shared_frame("9"));
  CHECK(ring.highest_evicted() == 3);
  CHECK_FALSE(ring.can_resume_after(2));
  CHECK(ring.can_resume_after(3));
  CHECK(ring.can_resume_after(5));
}

TEST_CASE("uuid v7 carries the injected time, version and variant; v4 is random") {
  auto random = testing::seeded_random(1);
  const std::string id = uuid_v7(from_unix_ms(0x0123456789AB), random);
  CHECK(id.size() == 36);
  CHECK(id.substr(0, 13) == "01234567-89ab");
  CHECK(id[14] == '7');
  CHECK(std::string("89ab").find(id[19]) != std::string::npos);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(uuid_v4(random));
  CHECK(seen.size() == 1000);
  CHECK(uuid_v4(random)[14] == '4');
}

TEST_CASE("random tokens are base64url of the asked length") {
  auto random = testing::seeded_random(2);
  const std::string t = random_token(random, 32);
  CHECK(t.size() == 43);
  CHECK(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
  CHECK(random_token(random, 32) != t);
}

TEST_CASE("RFC 3339 with milliseconds in UTC") {
  CHECK(format_rfc3339(from_unix_ms(0)) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339(epoch.wall) == "2026-11-22T00:00:00.000Z");
  CHECK(format_rfc3339(from_unix_ms(951782400123)) == "2000-02-29T00:00:00.123Z");  // leap day
  CHECK(format_rfc3339(from_unix_ms(4102444799999)) == "2099-12-31T23:59:59.999Z");
  CHECK(format_rfc3339(from_unix_ms(-1)) == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("token bucket per minute: burst 20, then one every 6 s, exactly") {
  auto bucket = token_bucket<test_moment::monotonic_time>::per_minute({20, 10}, epoch.monotonic);
  for (int i = 1; i <= 20; ++i) CHECK_MESSAGE(!bucket.try_take(epoch.monotonic), "room ", i);
  auto refused = bucket.try_take(epoch.monotonic);
  REQUIRE(refused);
  CHECK(*refused == milliseconds(6000));
  CHECK(*bucket.try_take(epoch.monotonic + milliseconds(5999)) == milliseconds(1));
  CHECK_FALSE(bucket.try_take(epoch.monotonic + milliseconds(6000)));
  CHECK(bucket.milli_tokens(epoch.monotonic + milliseconds(9000)) == 500);
  CHECK_FALSE(bucket.full(epoch.monotonic + milliseconds(9000)));
  CHECK(bucket.full(epoch.monotonic + std::chrono::hours(24 * 365 * 100)));  // no overflow after a long gap
}

TEST_CASE("token bucket: huge rates saturate instead of overflowing") {
  token_bucket bucket({4000000000u, 4000000000u}, epoch.monotonic);
  for (int i = 0; i < 3; ++i) (void)bucket.try_take(epoch.monotonic);
  CHECK(bucket.milli_tokens(epoch.monotonic + std::chrono::hours(1)) == std::uint64_t{4000000000u} * 1000);
}

TEST_CASE("cookie_values finds every value of one cookie, whatever the spacing and the others around it") {
  CHECK(cookie_values("a=1; parley_sign_in=xyz;b=2", "parley_sign_in") == std::vector<std::string_view>{"xyz"});
  CHECK(cookie_values("parley_sign_in=one;  parley_sign_in=two", "parley_sign_in") ==
        std::vector<std::string_view>{"one", "two"});
  CHECK(cookie_values("xparley_sign_in=no; parley_sign_inx=no; parley_sign_in", "parley_sign_in").empty());
  CHECK(cookie_values("", "parley_sign_in").empty());
  CHECK(cookie_values("parley_sign_in=", "parley_sign_in") == std::vector<std::string_view>{""});
}

TEST_CASE("browser_sign_ins: found until they expire, the oldest given up at capacity, erased by id or label") {
  using time = std::chrono::steady_clock::time_point;
  const time t0{};
  browser_sign_ins<time> sign_ins(2, std::chrono::hours(1));
  sign_ins.add("a", "tok-a", "ann", t0);
  sign_ins.add("b", "tok-b", "bob", t0 + std::chrono::minutes(1));
  REQUIRE(sign_ins.find("a", t0));
  CHECK(sign_ins.find("a", t0)->token == "tok-a");
  CHECK_FALSE(sign_ins.find("a", t0 + std::chrono::hours(1)));  // expired, though not yet swept
  CHECK(sign_ins.find("b", t0 + std::chrono::hours(1)));

  sign_ins.add("c", "tok-c", "ann", t0 + std::chrono::minutes(2));  // at capacity: "a" goes
  CHECK(sign_ins.size() == 2);
  CHECK_FALSE(sign_ins.find("a", t0));
  sign_ins.erase_label("ann");
  CHECK(sign_ins.size() == 1);
  sign_ins.erase("b");
  CHECK(sign_ins.size() == 0);
  sign_ins.erase("b");  // twice is harmless

  sign_ins.add("d", "tok-d", "dan", t0);
  sign_ins.add("e", "tok-e", "eve", t0 + std::chrono::hours(2));  // sweeps the expired "d" first
  CHECK(sign_ins.size() == 1);
}

TEST_CASE("sign_in_cookie: HttpOnly and SameSite=Strict always; Secure and the __Host- prefix under TLS") {
  CHECK(sign_in_cookie("id", false, std::chrono::hours(12)) ==
        "parley_sign_in=id; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
  CHECK(sign_in_cookie("id", true, std::chrono::hours(1)) ==
        "__Host-parley_sign_in=id; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure");
  CHECK(sign_in_cookie("", false, std::chrono::hours(1)) == "parley_sign_in=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
}

TEST_CASE("web_content_type and find_web_asset") {
  CHECK(web_content_type("index.html") == "text/html; charset=utf-8");
  CHECK(web_content_type("app.js") == "text/javascript; charset=utf-8");
  CHECK(web_content_type("app.css") == "text/css; charset=utf-8");
  CHECK(web_content_type("favicon.svg") == "image/svg+xml");
  CHECK(web_content_type("README") == "application/octet-stream");
  const std::vector<web_asset> assets{{"index.html", "<p>"}, {"app.js", "1"}};
  CHECK(find_web_asset(assets, "/")->bytes == "<p>");
  CHECK(find_web_asset(assets, "/app.js")->bytes == "1");
  CHECK_FALSE(find_web_asset(assets, "app.js"));
  CHECK_FALSE(find_web_asset(assets, ""));
  CHECK_FALSE(find_web_asset(assets, "/app.js/"));
}
