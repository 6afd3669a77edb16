// GENERATED FILE - DO NOT EDIT. Made by scripts/amalgamate.py from include/parley;
// change the headers there and run `python3 scripts/amalgamate.py` to regenerate.
#pragma once

// ----- begin parley/parley.hpp -----
// parley: the whole sans-I/O core in one include.


// ----- begin parley/arguments.hpp -----
// Validation of tool arguments, shared by the wire decoder and the hub so both refuse the same things the same way.


// ----- begin parley/error.hpp -----
// Errors as values: a stable wire code, a sentence for humans, and optional structured details.

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace parley {

// The codes are the reference Parley's; their spelling on the wire is load-bearing.
enum class error_code {
  // hello.err
  auth_required,
  bad_token,
  token_revoked,
  version_mismatch,
  server_shutting_down,
  unknown_session,
  bad_reconnect_token,
  replay_buffer_overflow,
  bad_handshake_frame,
  // tool.err
  nickname_taken,
  rate_limited,
  not_in_room,
  internal,
  invalid_argument,  // parley's addition: bad arguments are answered under their requestId
  // system.error
  bad_frame,
};

namespace detail {
inline constexpr std::array<std::pair<error_code, std::string_view>, 15> error_code_names{{
    {error_code::auth_required, "AuthRequiredError"},
    {error_code::bad_token, "BadTokenError"},
    {error_code::token_revoked, "TokenRevokedError"},
    {error_code::version_mismatch, "VersionMismatchError"},
    {error_code::server_shutting_down, "ServerShuttingDownError"},
    {error_code::unknown_session, "UnknownSessionError"},
    {error_code::bad_reconnect_token, "BadReconnectTokenError"},
    {error_code::replay_buffer_overflow, "ReplayBufferOverflowError"},
    {error_code::bad_handshake_frame, "BadHandshakeFrameError"},
    {error_code::nickname_taken, "NicknameTakenError"},
    {error_code::rate_limited, "RateLimitedError"},
    {error_code::not_in_room, "NotInRoomError"},
    {error_code::internal, "InternalError"},
    {error_code::invalid_argument, "InvalidArgumentError"},
    {error_code::bad_frame, "BadFrameError"},
}};
}  // namespace detail

[[nodiscard]] constexpr std::string_view to_string(error_code code) noexcept {
  for (const auto& [c, name] : detail::error_code_names)
    if (c == code) return name;
  return "InternalError";
}

[[nodiscard]] inline std::optional<error_code> error_code_from_string(std::string_view name) noexcept {
  for (const auto& [c, n] : detail::error_code_names)
    if (n == name) return c;
  return std::nullopt;
}

// The WebSocket close code that follows each hello failure.
[[nodiscard]] constexpr int close_code_for(error_code code) noexcept {
  switch (code) {
    case error_code::auth_required:
    case error_code::bad_token:
    case error_code::token_revoked: return 4000;
    case error_code::unknown_session: return 4001;
    case error_code::bad_reconnect_token: return 4002;
    case error_code::replay_buffer_overflow: return 4003;
    case error_code::version_mismatch: return 4004;
    case error_code::server_shutting_down: return 1001;
    default: return 1002;
  }
}

struct error {
  error_code code = error_code::internal;
  std::string message;
  nlohmann::json details = nullptr;  // null when there are none

  friend bool operator==(const error& a, const error& b) {
    return a.code == b.code && a.message == b.message && a.details == b.details;
  }
};

template <class T>
using result = tl::expected<T, error>;

[[nodiscard]] inline tl::unexpected<error> make_error(error_code code, std::string message,
                                                      nlohmann::json details = nullptr) {
  return tl::unexpected<error>(error{code, std::move(message), std::move(details)});
}

}  // namespace parley
// ----- end parley/error.hpp -----

// ----- begin parley/name_rules.hpp -----
// Validation of the two names users pick, room slugs and nicknames, reporting which rule failed.

#include <tl/expected.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace parley {

enum class name_rule {
  empty,           // no characters at all
  too_long,        // more than 32 characters
  bad_first,       // the first character is outside its class
  bad_character,   // a later character is outside its class
};

struct name_violation {
  name_rule rule;
  std::size_t position = 0;  // index of the offending byte, 0 for empty/too_long

  [[nodiscard]] std::string describe(std::string_view what, std::string_view pattern) const {
    std::string s(what);
    switch (rule) {
      case name_rule::empty: s += " must not be empty"; break;
      case name_rule::too_long: s += " must be at most 32 characters"; break;
      case name_rule::bad_first: s += " must start with a letter or digit"; break;
      case name_rule::bad_character:
        s += " has a character not allowed at position " + std::to_string(position);
        break;
    }
    s += " (pattern ";
    s += pattern;
    s += ")";
    return s;
  }
};

inline constexpr std::size_t max_name_length = 32;
inline constexpr std::string_view room_slug_pattern = "^[a-z0-9][a-z0-9-]{0,31}$";
inline constexpr std::string_view nickname_pattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$";

namespace detail {
constexpr bool is_lower_or_digit(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
constexpr bool is_alnum(char c) noexcept { return is_lower_or_digit(c) || (c >= 'A' && c <= 'Z'); }

template <class First, class Rest>
constexpr tl::expected<void, name_violation> validate_name(std::string_view s, First first, Rest rest) noexcept {
  if (s.empty()) return tl::unexpected(name_violation{name_rule::empty, 0});
  if (s.size() > max_name_length) return tl::unexpected(name_violation{name_rule::too_long, 0});
  if (!first(s[0])) return tl::unexpected(name_violation{name_rule::bad_first, 0});
  for (std::size_t i = 1; i < s.size(); ++i)
    if (!rest(s[i])) return tl::unexpected(name_violation{name_rule::bad_character, i});
  return {};
}
}  // namespace detail

// ^[a-z0-9][a-z0-9-]{0,31}$
[[nodiscard]] constexpr tl::expected<void, name_violation> validate_room_slug(std::string_view s) noexcept {
  return detail::validate_name(s, detail::is_lower_or_digit,
                               [](char c) { return detail::is_lower_or_digit(c) || c == '-'; });
}

// ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$
[[nodiscard]] constexpr tl::expected<void, name_violation> validate_nickname(std::string_view s) noexcept {
  return detail::validate_name(s, detail::is_alnum,
                               [](char c) { return detail::is_alnum(c) || c == '-' || c == '_'; });
}

// Nicknames collide case-insensitively (`Alice` and `alice`); the chosen spelling is
// kept for display. Nicknames are ASCII by rule, so an ASCII fold is exact.
[[nodiscard]] inline std::string fold_nickname(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace parley
// ----- end parley/name_rules.hpp -----

// ----- begin parley/utf8.hpp -----
// UTF-8 validation, whole or streamed, as RFC 3629 defines it: no overlongs, no surrogates, nothing past U+10FFFF.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace parley {

// A streaming validator: feed() may be called with any split of the input (a
// WebSocket message arrives in fragments), complete() says whether the input
// ended on a character boundary.
class utf8_validator {
 public:
  // Returns false as soon as the bytes seen so far cannot be a prefix of valid UTF-8;
  // after that the validator stays failed.
  bool feed(std::string_view bytes) noexcept {
    for (unsigned char c : bytes) {
      if (!step(c)) {
        failed_ = true;
        return false;
      }
    }
    return !failed_;
  }

  [[nodiscard]] bool failed() const noexcept { return failed_; }
  [[nodiscard]] bool complete() const noexcept { return !failed_ && pending_ == 0; }

 private:
  bool step(unsigned char c) noexcept {
    if (failed_) return false;
    if (pending_ == 0) {
      if (c < 0x80) return true;
      if (c >= 0xC2 && c <= 0xDF) return expect(1, 0x80, 0xBF);
      if (c == 0xE0) return expect(2, 0xA0, 0xBF);   // no overlong 3-byte forms
      if (c == 0xED) return expect(2, 0x80, 0x9F);   // no UTF-16 surrogates
      if (c >= 0xE1 && c <= 0xEF) return expect(2, 0x80, 0xBF);
      if (c == 0xF0) return expect(3, 0x90, 0xBF);   // no overlong 4-byte forms
      if (c >= 0xF1 && c <= 0xF3) return expect(3, 0x80, 0xBF);
      if (c == 0xF4) return expect(3, 0x80, 0x8F);   // nothing above U+10FFFF
      return false;
    }
    if (c < lower_ || c > upper_) return false;
    --pending_;
    lower_ = 0x80;
    upper_ = 0xBF;
    return true;
  }

  bool expect(std::uint8_t continuation_bytes, unsigned char lower, unsigned char upper) noexcept {
    pending_ = continuation_bytes;
    lower_ = lower;
    upper_ = upper;
    return true;
  }

  std::uint8_t pending_ = 0;
  unsigned char lower_ = 0x80;
  unsigned char upper_ = 0xBF;
  bool failed_ = false;
};

[[nodiscard]] inline bool is_valid_utf8(std::string_view bytes) noexcept {
  utf8_validator v;
  return v.feed(bytes) && v.complete();
}

}  // namespace parley
// ----- end parley/utf8.hpp -----

#include <cstddef>
#include <string>
#include <string_view>

namespace parley {

inline constexpr std::size_t default_max_body_bytes = 8192;
inline constexpr std::size_t max_client_msg_id_length = 64;
inline constexpr std::size_t max_request_id_length = 128;

// InvalidArgumentError always names the field and the rule, so a client can fix the call.
[[nodiscard]] inline error invalid_argument(std::string_view field, std::string_view rule, std::string message) {
  return error{error_code::invalid_argument, std::move(message),
               nlohmann::json{{"field", std::string(field)}, {"rule", std::string(rule)}}};
}

[[nodiscard]] inline result<void> check_room_slug(std::string_view field, std::string_view value) {
  if (auto v = validate_room_slug(value); !v)
    return tl::unexpected(invalid_argument(field, "pattern " + std::string(room_slug_pattern),
                                           v.error().describe(field, room_slug_pattern)));
  return {};
}

[[nodiscard]] inline result<void> check_nickname(std::string_view field, std::string_view value) {
  if (auto v = validate_nickname(value); !v)
    return tl::unexpected(invalid_argument(field, "pattern " + std::string(nickname_pattern),
                                           v.error().describe(field, nickname_pattern)));
  return {};
}

// Bodies are counted in UTF-8 bytes, not characters: 2048 four-byte emoji fill 8192.
[[nodiscard]] inline result<void> check_body(std::string_view value, std::size_t max_bytes = default_max_body_bytes) {
  if (value.empty()) return tl::unexpected(invalid_argument("body", "minBytes 1", "body must not be empty"));
  if (value.size() > max_bytes)
    return tl::unexpected(invalid_argument("body", "maxBytes " + std::to_string(max_bytes),
                                           "body is " + std::to_string(value.size()) + " bytes of UTF-8; the limit is " +
                                               std::to_string(max_bytes)));
  if (!is_valid_utf8(value)) return tl::unexpected(invalid_argument("body", "utf8", "body is not valid UTF-8"));
  return {};
}

// clientMsgId: 1-64 characters of [A-Za-z0-9_-].
[[nodiscard]] inline result<void> check_client_msg_id(std::string_view value) {
  constexpr std::string_view rule = "pattern ^[A-Za-z0-9_-]{1,64}$";
  if (value.empty() || value.size() > max_client_msg_id_length)
    return tl::unexpected(invalid_argument("clientMsgId", rule, "clientMsgId must be 1 to 64 characters"));
  for (char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return tl::unexpected(invalid_argument("clientMsgId", rule, "clientMsgId may hold only A-Z a-z 0-9 _ -"));
  }
  return {};
}

}  // namespace parley
// ----- end parley/arguments.hpp -----

// ----- begin parley/clock.hpp -----
// Time as the core sees it: a millisecond time point the caller passes in, and RFC 3339 formatting.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace parley {

using milliseconds = std::chrono::milliseconds;
// Wall-clock milliseconds since the Unix epoch. The core never reads a clock: every
// operation that needs time takes `now` of this type.
using time_point = std::chrono::time_point<std::chrono::system_clock, milliseconds>;

[[nodiscard]] constexpr time_point from_unix_ms(std::int64_t ms) noexcept { return time_point(milliseconds(ms)); }
[[nodiscard]] constexpr std::int64_t to_unix_ms(time_point t) noexcept { return t.time_since_epoch().count(); }

// RFC 3339 in UTC with milliseconds, e.g. 2026-11-22T09:30:00.125Z. Uses Howard
// Hinnant's days-to-civil algorithm so it needs no C++20 calendar and no time zone
// database.
[[nodiscard]] inline std::string format_rfc3339(time_point t) {
  std::int64_t ms = to_unix_ms(t);
  std::int64_t days = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
  std::int64_t ms_of_day = ms - days * 86400000;
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  char buf[80];  // room for any int64 year, though only 0000-9999 are meaningful
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(year),
                static_cast<long long>(month), static_cast<long long>(day),
                static_cast<long long>(ms_of_day / 3600000), static_cast<long long>(ms_of_day / 60000 % 60),
                static_cast<long long>(ms_of_day / 1000 % 60), static_cast<long long>(ms_of_day % 1000));
  return buf;
}

}  // namespace parley
// ----- end parley/clock.hpp -----

// ----- begin parley/hub.hpp -----
// The hub: rooms, sessions, nicknames and delivery as one deterministic state machine with no I/O.
//
// Every operation takes `now`; randomness comes from the injected random_source.
// Deliveries go to per-session outboxes that the caller drains; a message's frame is
// encoded once and shared by every recipient's outbox and replay ring.


// ----- begin parley/idempotency_window.hpp -----
// Remembers a session's recent clientMsgId keys so a retried send returns its first result instead of delivering twice.


#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace parley {

struct idempotency_window_config {
  std::size_t min_keys = 1024;               // a key is kept while it is among the last min_keys...
  milliseconds min_age = std::chrono::minutes(10);  // ...or younger than min_age
};

// Memory stays bounded because only sends that passed the rate limit are recorded:
// size() <= max(min_keys, sends the token bucket allows within min_age).
template <class Value>
class idempotency_window {
 public:
  explicit idempotency_window(idempotency_window_config config = {}) : config_(config) {}

  [[nodiscard]] const Value* find(std::string_view key) const {
    auto it = entries_.find(std::string(key));
    return it == entries_.end() ? nullptr : &it->second;
  }

  void remember(std::string key, Value value, time_point now) {
    auto [it, inserted] = entries_.emplace(std::move(key), std::move(value));
    if (inserted) order_.push_back(order_entry{it->first, now});
    evict(now);
  }

  void evict(time_point now) {
    while (order_.size() > config_.min_keys && now - order_.front().at >= config_.min_age) {
      entries_.erase(order_.front().key);
      order_.pop_front();
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct order_entry {
    std::string key;
    time_point at;
  };
  idempotency_window_config config_;
  std::unordered_map<std::string, Value> entries_;
  std::deque<order_entry> order_;
};

}  // namespace parley
// ----- end parley/idempotency_window.hpp -----

// ----- begin parley/nickname_generator.hpp -----
// Assigns adjective-animal nicknames (`clever-otter`, then `clever-otter-2`, ...) when a member names none.


// ----- begin parley/random_source.hpp -----
// Randomness enters the core only through this type, so tests and fuzzers are deterministic.

#include <cstddef>
#include <cstdint>
#include <functional>

namespace parley {

// Fills `n` bytes at `out`. Production passes a CSPRNG (the tools use OpenSSL's
// RAND_bytes): reconnect tokens and WebSocket masks are drawn from it.
using random_source = std::function<void(unsigned char* out, std::size_t n)>;

[[nodiscard]] inline std::uint64_t random_u64(const random_source& random) {
  unsigned char b[8];
  random(b, sizeof b);
  std::uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

// A uniform draw from [0, bound) without modulo bias; bound must be > 0.
[[nodiscard]] inline std::uint64_t random_below(const random_source& random, std::uint64_t bound) {
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    const std::uint64_t v = random_u64(random);
    if (v < limit) return v % bound;
  }
}

}  // namespace parley
// ----- end parley/random_source.hpp -----

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace parley {

// Every word is 3..9 lowercase letters, so `adjective-animal-NNNNNNNNNN` stays within
// the 32-character nickname limit for any suffix a room could ever need.
inline constexpr std::array<std::string_view, 72> nickname_adjectives{
    "able",    "agile",   "amber",   "ancient", "arctic",  "ardent",  "azure",   "bold",    "brave",
    "bright",  "brisk",   "calm",    "candid",  "cheery",  "civic",   "clever",  "cosmic",  "crisp",
    "curious", "daring",  "deft",    "dusty",   "eager",   "early",   "earnest", "fabled",  "fair",
    "fleet",   "fluent",  "frank",   "gentle",  "gilded",  "glad",    "golden",  "grand",   "hardy",
    "hazel",   "honest",  "humble",  "ivory",   "jade",    "jolly",   "keen",    "kind",    "lively",
    "loyal",   "lucid",   "lucky",   "mellow",  "merry",   "mighty",  "misty",   "modest",  "nimble",
    "noble",   "olive",   "placid",  "plucky",  "polite",  "proud",   "quiet",   "quick",   "rapid",
    "ruby",    "rustic",  "sage",    "serene",  "sharp",   "silver",  "steady",  "sunny",   "witty"};

inline constexpr std::array<std::string_view, 72> nickname_animals{
    "alpaca",  "badger",  "beaver",  "bison",   "bobcat",  "camel",   "caribou", "cheetah", "condor",
    "corgi",   "cougar",  "coyote",  "crane",   "dingo",   "dolphin", "donkey",  "eagle",   "egret",
    "falcon",  "ferret",  "finch",   "fox",     "gazelle", "gecko",   "gibbon",  "gopher",  "heron",
    "hippo",   "ibex",    "ibis",    "iguana",  "impala",  "jackal",  "jaguar",  "koala",   "lemur",
    "lynx",    "macaw",   "magpie",  "marmot",  "marten",  "meerkat", "mink",    "moose",   "narwhal",
    "newt",    "ocelot",  "okapi",   "orca",    "osprey",  "otter",   "owl",     "panda",   "panther",
    "parrot",  "pelican", "penguin", "puffin",  "quail",   "rabbit",  "raven",   "robin",   "salmon",
    "seal",    "sparrow", "stoat",   "swan",    "tapir",   "toucan",  "walrus",  "wombat",  "zebra"};

// Picks a random pair, then `-2`, `-3`, ... until `is_taken` says no: allocation
// never fails, because a room has finitely many members. `is_taken` receives the
// case-folded candidate.
template <class IsTaken>
[[nodiscard]] std::string allocate_nickname(const random_source& random, IsTaken&& is_taken) {
  const auto& adjective = nickname_adjectives[random_below(random, nickname_adjectives.size())];
  const auto& animal = nickname_animals[random_below(random, nickname_animals.size())];
  std::string base;
  base.reserve(adjective.size() + 1 + animal.size());
  base.append(adjective).append("-").append(animal);
  if (!is_taken(base)) return base;
  for (std::size_t n = 2;; ++n) {
    std::string candidate = base + "-" + std::to_string(n);
    if (!is_taken(candidate)) return candidate;
  }
}

}  // namespace parley
// ----- end parley/nickname_generator.hpp -----

// ----- begin parley/replay_ring.hpp -----
// The per-(session, room) ring of unacked messages that lets a dropped connection resume without a gap.


// ----- begin parley/shared_frame.hpp -----
// An encoded outgoing frame, built once per message and shared by every recipient and replay ring.

#include <memory>
#include <string>

namespace parley {

using shared_frame = std::shared_ptr<const std::string>;

[[nodiscard]] inline shared_frame make_shared_frame(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

}  // namespace parley
// ----- end parley/shared_frame.hpp -----

#include <cstddef>
#include <cstdint>
#include <deque>

namespace parley {

struct replay_entry {
  std::uint64_t seq;
  shared_frame frame;
};

// Invariants: entries are in strictly increasing seq order; size() <= capacity;
// every seq ever evicted unacked is <= highest_evicted(). A resume after seq `a`
// is exact iff highest_evicted() <= a: otherwise something after `a` is gone and
// the caller must report the gap, never paper over it.
class replay_ring {
 public:
  explicit replay_ring(std::size_t capacity) noexcept : capacity_(capacity == 0 ? 1 : capacity) {}

  void push(std::uint64_t seq, shared_frame frame) {
    if (entries_.size() == capacity_) {
      if (entries_.front().seq > highest_evicted_) highest_evicted_ = entries_.front().seq;
      entries_.pop_front();
    }
    entries_.push_back(replay_entry{seq, std::move(frame)});
  }

  // Acks are cumulative: everything at or below `seq` is done with.
  void ack(std::uint64_t seq) {
    if (seq > acked_) acked_ = seq;
    while (!entries_.empty() && entries_.front().seq <= seq) entries_.pop_front();
  }

  [[nodiscard]] bool can_resume_after(std::uint64_t seq) const noexcept { return highest_evicted_ <= seq; }

  // Calls `visit(entry)` for every entry after `seq`, oldest first.
  template <class Visit>
  void for_each_after(std::uint64_t seq, Visit&& visit) const {
    for (const auto& e : entries_)
      if (e.seq > seq) visit(e);
  }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::uint64_t acked() const noexcept { return acked_; }
  [[nodiscard]] std::uint64_t highest_evicted() const noexcept { return highest_evicted_; }
  [[nodiscard]] const std::deque<replay_entry>& entries() const noexcept { return entries_; }

 private:
  std::size_t capacity_;
  std::deque<replay_entry> entries_;
  std::uint64_t acked_ = 0;
  std::uint64_t highest_evicted_ = 0;
};

}  // namespace parley
// ----- end parley/replay_ring.hpp -----

// ----- begin parley/room_store.hpp -----
// Where rooms and seq blocks live between restarts: an interface, and the in-memory store the core ships.


#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

struct stored_room {
  std::string name;
  time_point created_at;
};

// The hub calls a store synchronously and rarely: once when a room is first created
// and once per seq block (hi/lo), never per message. Bodies never reach a store.
class room_store {
 public:
  virtual ~room_store() = default;

  // Every room that ever existed, in name order.
  [[nodiscard]] virtual result<std::vector<stored_room>> load_rooms() = 0;

  // Records a new room; creating one that exists is not an error.
  [[nodiscard]] virtual result<void> create_room(std::string_view name, time_point now) = 0;

  // Reserves `count` seqs for `room` and returns the first: [first, first + count)
  // are the caller's, and no later call, in this process or after a restart, hands
  // any of them out again. The first block of a room starts at 1.
  [[nodiscard]] virtual result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count) = 0;
};

class memory_room_store final : public room_store {
 public:
  result<std::vector<stored_room>> load_rooms() override {
    std::vector<stored_room> out;
    out.reserve(rooms_.size());
    for (const auto& [name, r] : rooms_) out.push_back(stored_room{name, r.created_at});
    return out;
  }

  result<void> create_room(std::string_view name, time_point now) override {
    rooms_.try_emplace(std::string(name), entry{now, 1});
    return {};
  }

  result<std::uint64_t> reserve_seq_block(std::string_view room, std::uint64_t count) override {
    auto it = rooms_.find(std::string(room));
    if (it == rooms_.end()) return make_error(error_code::internal, "seq block for unknown room " + std::string(room));
    const std::uint64_t first = it->second.next_seq;
    it->second.next_seq += count;
    ++blocks_reserved_;
    return first;
  }

  [[nodiscard]] std::uint64_t blocks_reserved() const noexcept { return blocks_reserved_; }

 private:
  struct entry {
    time_point created_at;
    std::uint64_t next_seq;
  };
  std::map<std::string, entry, std::less<>> rooms_;
  std::uint64_t blocks_reserved_ = 0;
};

}  // namespace parley
// ----- end parley/room_store.hpp -----

// ----- begin parley/token_bucket.hpp -----
// The per-session send budget: a token bucket, in integer milli-tokens so it never drifts.


#include <algorithm>
#include <cstdint>
#include <optional>

namespace parley {

struct token_bucket_config {
  std::uint32_t capacity = 20;           // burst
  std::uint32_t refill_per_second = 10;  // sustained rate
};

class token_bucket {
 public:
  explicit token_bucket(token_bucket_config config, time_point now) noexcept
      : config_(config), milli_tokens_(std::uint64_t{config.capacity} * 1000), updated_(now) {}

  // Takes one token, or returns how long until one is available (rounded up, so a
  // caller that waits exactly that long succeeds).
  [[nodiscard]] std::optional<milliseconds> try_take(time_point now) noexcept {
    refill(now);
    if (milli_tokens_ >= 1000) {
      milli_tokens_ -= 1000;
      return std::nullopt;
    }
    if (config_.refill_per_second == 0) return milliseconds::max();
    // The refill rate is refill_per_second milli-tokens per millisecond.
    const std::uint64_t missing = 1000 - milli_tokens_;
    return milliseconds((missing + config_.refill_per_second - 1) / config_.refill_per_second);
  }

  [[nodiscard]] std::uint64_t milli_tokens(time_point now) noexcept {
    refill(now);
    return milli_tokens_;
  }

 private:
  void refill(time_point now) noexcept {
    if (now <= updated_) return;  // a clock stepping back never mints tokens
    const auto elapsed = static_cast<std::uint64_t>((now - updated_).count());
    const std::uint64_t cap = std::uint64_t{config_.capacity} * 1000;
    // Saturate before multiplying: a long idle gap must not overflow.
    const std::uint64_t gained =
        elapsed >= cap ? cap : std::min(cap, elapsed * config_.refill_per_second);
    milli_tokens_ = std::min(cap, milli_tokens_ + gained);
    updated_ = now;
  }

  token_bucket_config config_;
  std::uint64_t milli_tokens_;
  time_point updated_;
};

}  // namespace parley
// ----- end parley/token_bucket.hpp -----

// ----- begin parley/uuid.hpp -----
// UUIDs built from injected time and randomness: v7 for message ids (time-ordered), v4 for session ids.


#include <array>
#include <cstdint>
#include <string>

namespace parley {

namespace detail {
inline std::string format_uuid(const std::array<unsigned char, 16>& b) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[b[i] >> 4]);
    s.push_back(hex[b[i] & 0xF]);
  }
  return s;
}
}  // namespace detail

// RFC 9562 UUIDv7: 48-bit Unix milliseconds, then 74 random bits.
[[nodiscard]] inline std::string uuid_v7(time_point now, const random_source& random) {
  std::array<unsigned char, 16> b{};
  random(b.data() + 6, 10);
  const auto ms = static_cast<std::uint64_t>(to_unix_ms(now));
  for (int i = 0; i < 6; ++i) b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0F));
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3F));
  return detail::format_uuid(b);
}

// RFC 9562 UUIDv4: 122 random bits.
[[nodiscard]] inline std::string uuid_v4(const random_source& random) {
  std::array<unsigned char, 16> b{};
  random(b.data(), b.size());
  b[6] = static_cast<unsigned char>(0x40 | (b[6] & 0x0F));
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3F));
  return detail::format_uuid(b);
}

// A secret of `bytes` random bytes in base64url without padding (32 bytes → 43 characters).
[[nodiscard]] inline std::string random_token(const random_source& random, std::size_t bytes = 32) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string raw(bytes, '\0');
  random(reinterpret_cast<unsigned char*>(raw.data()), raw.size());
  std::string out;
  out.reserve((bytes * 4 + 2) / 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 0x3F]);
  return out;
}

}  // namespace parley
// ----- end parley/uuid.hpp -----

// ----- begin parley/version.hpp -----
// parley's version, which is also the serverVersion in hello.ok.

#include <string_view>

#define PARLEY_VERSION_MAJOR 0
#define PARLEY_VERSION_MINOR 1
#define PARLEY_VERSION_PATCH 0

namespace parley {

inline constexpr std::string_view version_string = "0.1.0";

// Wire compatibility follows the major version: a client whose clientVersion has a
// different major is refused with VersionMismatchError.
inline constexpr unsigned protocol_major = PARLEY_VERSION_MAJOR;

}  // namespace parley
// ----- end parley/version.hpp -----

// ----- begin parley/wire.hpp -----
// The JSON wire frames of the Parley protocol, both directions: typed structs, complete validation, encoding.
//
// One frame per WebSocket text message, a JSON object discriminated by `_tag`.
// Unknown extra fields are ignored (as the reference's schemas do), so either side
// may add fields; missing or mistyped known fields are errors. docs/protocol.md is
// the normative description.


#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace parley {

using json = nlohmann::json;

// ---- client → server ------------------------------------------------------

struct resume_block {
  std::string session_id;
  std::string reconnect_token;
  std::map<std::string, std::uint64_t, std::less<>> last_acked_seq_by_room;
};

struct hello_frame {
  std::string client_version;
  std::optional<std::string> auth_token;
  std::optional<resume_block> resume;
};

struct join_room_args {
  std::string room;
  std::optional<std::string> nickname;
};
struct leave_room_args {
  std::string room;
};
struct list_rooms_args {};
struct send_message_args {
  std::string room;
  std::string body;
  std::optional<std::string> client_msg_id;  // parley's addition: the idempotency key
};
struct who_is_here_args {
  std::string room;
};

using tool_args = std::variant<join_room_args, leave_room_args, list_rooms_args, send_message_args, who_is_here_args>;

struct tool_request {
  std::string request_id;
  tool_args args;
};

struct ack_frame {
  std::string room;
  std::uint64_t seq = 0;
};

using client_frame = std::variant<tool_request, ack_frame>;

// A client frame that cannot be served. With a request id it is answered by
// `tool.err` under that id; without one, by `system.error`.
struct frame_error {
  error err;
  std::optional<std::string> request_id;
};

// ---- tool results ---------------------------------------------------------

struct join_room_result {
  std::string room;
  std::string nickname;
  std::size_t members_count = 0;
};
struct leave_room_result {
  std::string room;
};
struct joined_room {
  std::string name;
  std::string nickname;
  std::size_t members_count = 0;
};
struct available_room {
  std::string name;
  std::size_t members_count = 0;
};
struct list_rooms_result {
  std::vector<joined_room> joined;
  std::vector<available_room> available;
};
struct send_message_result {
  std::string room;
  std::uint64_t seq = 0;
  std::string message_id;
  std::string sent_at;
};
struct who_is_here_result {
  std::string room;
  std::vector<std::string> nicknames;
};

inline void to_json(json& j, const join_room_result& r) {
  j = json{{"room", r.room}, {"nickname", r.nickname}, {"membersCount", r.members_count}};
}
inline void to_json(json& j, const leave_room_result& r) { j = json{{"room", r.room}}; }
inline void to_json(json& j, const list_rooms_result& r) {
  json joined = json::array();
  for (const auto& x : r.joined)
    joined.push_back(json{{"name", x.name}, {"nickname", x.nickname}, {"membersCount", x.members_count}});
  json available = json::array();
  for (const auto& x : r.available) available.push_back(json{{"name", x.name}, {"membersCount", x.members_count}});
  j = json{{"joined", std::move(joined)}, {"available", std::move(available)}};
}
inline void to_json(json& j, const send_message_result& r) {
  j = json{{"room", r.room}, {"seq", r.seq}, {"messageId", r.message_id}, {"sentAt", r.sent_at}};
}
inline void to_json(json& j, const who_is_here_result& r) { j = json{{"room", r.room}, {"nicknames", r.nicknames}}; }

// ---- server → client ------------------------------------------------------

struct hello_ok_frame {
  std::string session_id;
  std::string reconnect_token;
  std::string server_version;
};
struct hello_err_frame {
  std::string code;  // a string, not error_code: a newer server may send codes we do not know
  std::string message;
};
struct tool_ok_frame {
  std::string request_id;
  json result;
};
struct tool_err_frame {
  std::string request_id;
  std::string code;
  std::string message;
  json details;  // null when absent
};
struct room_message_frame {
  std::string room;
  std::uint64_t seq = 0;
  std::string message_id;
  std::string from_nickname;
  std::string body;
  std::string sent_at;
};
struct system_error_frame {
  std::string code;
  std::string message;
};

using server_frame = std::variant<hello_ok_frame, hello_err_frame, tool_ok_frame, tool_err_frame, room_message_frame,
                                  system_error_frame>;

// ---- decoding helpers -----------------------------------------------------

namespace detail {

// Seqs travel as JSON numbers; above 2^53 a JavaScript peer would lose precision.
inline constexpr std::uint64_t max_wire_integer = (std::uint64_t{1} << 53) - 1;

inline std::optional<json> parse_object(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

inline const std::string* tag_of(const json& j) {
  auto it = j.find("_tag");
  return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

// Reads fields of one frame and turns the first problem into an InvalidArgumentError.
class field_reader {
 public:
  explicit field_reader(const json& object) : object_(object) {}

  const json* find(std::string_view name) const {
    auto it = object_.find(name);
    return it == object_.end() ? nullptr : &*it;
  }

  result<std::string> string(std::string_view name) const {
    const json* v = find(name);
    if (!v) return tl::unexpected(invalid_argument(name, "required", std::string(name) + " is required"));
    if (!v->is_string()) return tl::unexpected(invalid_argument(name, "type string", std::string(name) + " must be a string"));
    return v->get<std::string>();
  }

  result<std::optional<std::string>> optional_string(std::string_view name) const {
    const json* v = find(name);
    if (!v) return std::optional<std::string>{};
    if (!v->is_string()) return tl::unexpected(invalid_argument(name, "type string", std::string(name) + " must be a string"));
    return std::optional<std::string>(v->get<std::string>());
  }

  result<std::uint64_t> seq(std::string_view name) const {
    const json* v = find(name);
    if (!v) return tl::unexpected(invalid_argument(name, "required", std::string(name) + " is required"));
    return read_seq(name, *v);
  }

  static result<std::uint64_t> read_seq(std::string_view name, const json& v) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() <= max_wire_integer) return v.get<std::uint64_t>();
    return tl::unexpected(invalid_argument(name, "integer 0..2^53-1", std::string(name) + " must be a non-negative integer"));
  }

 private:
  const json& object_;
};

inline result<tool_args> decode_tool_args(std::string_view tag, const field_reader& f) {
  auto room = [&]() -> result<std::string> {
    auto r = f.string("room");
    if (!r) return r;
    if (auto ok = check_room_slug("room", *r); !ok) return tl::unexpected(ok.error());
    return r;
  };
  if (tag == "tool.join_room") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto nick = f.optional_string("nickname");
    if (!nick) return tl::unexpected(nick.error());
    if (*nick)
      if (auto ok = check_nickname("nickname", **nick); !ok) return tl::unexpected(ok.error());
    return join_room_args{std::move(*r), std::move(*nick)};
  }
  if (tag == "tool.leave_room") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    return leave_room_args{std::move(*r)};
  }
  if (tag == "tool.list_rooms") return list_rooms_args{};
  if (tag == "tool.send_message") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    auto body = f.string("body");
    if (!body) return tl::unexpected(body.error());
    if (auto ok = check_body(*body); !ok) return tl::unexpected(ok.error());
    auto key = f.optional_string("clientMsgId");
    if (!key) return tl::unexpected(key.error());
    if (*key)
      if (auto ok = check_client_msg_id(**key); !ok) return tl::unexpected(ok.error());
    return send_message_args{std::move(*r), std::move(*body), std::move(*key)};
  }
  if (tag == "tool.who_is_here") {
    auto r = room();
    if (!r) return tl::unexpected(r.error());
    return who_is_here_args{std::move(*r)};
  }
  return make_error(error_code::bad_frame, "unknown frame tag");
}

}  // namespace detail

// ---- client frames: decode (server role) ----------------------------------

inline constexpr std::size_t max_client_version_length = 64;
inline constexpr std::size_t max_auth_token_length = 256;
inline constexpr std::size_t max_session_id_length = 64;
inline constexpr std::size_t min_reconnect_token_length = 32;
inline constexpr std::size_t max_reconnect_token_length = 128;

// The first frame of a connection. Any problem is a BadHandshakeFrameError whose
// message says what was wrong.
[[nodiscard]] inline result<hello_frame> decode_hello(std::string_view text) {
  auto bad = [](std::string why) { return make_error(error_code::bad_handshake_frame, std::move(why)); };
  auto parsed = detail::parse_object(text);
  if (!parsed) return bad("the first frame must be a JSON object");
  const json& j = *parsed;
  const std::string* tag = detail::tag_of(j);
  if (!tag || *tag != "hello") return bad("the first frame must be a hello frame (_tag \"hello\")");
  detail::field_reader f(j);
  hello_frame hello;
  auto version = f.string("clientVersion");
  if (!version) return bad(version.error().message);
  if (version->empty() || version->size() > max_client_version_length)
    return bad("clientVersion must be 1 to 64 characters");
  hello.client_version = std::move(*version);
  auto token = f.optional_string("authToken");
  if (!token) return bad(token.error().message);
  if (*token && ((*token)->empty() || (*token)->size() > max_auth_token_length))
    return bad("authToken must be 1 to 256 characters");
  hello.auth_token = std::move(*token);
  if (const json* r = f.find("resume")) {
    if (!r->is_object()) return bad("resume must be an object");
    detail::field_reader rf(*r);
    resume_block resume;
    auto sid = rf.string("sessionId");
    if (!sid) return bad("resume." + sid.error().message);
    if (sid->empty() || sid->size() > max_session_id_length) return bad("resume.sessionId must be 1 to 64 characters");
    auto rt = rf.string("reconnectToken");
    if (!rt) return bad("resume." + rt.error().message);
    if (rt->size() < min_reconnect_token_length || rt->size() > max_reconnect_token_length)
      return bad("resume.reconnectToken must be 32 to 128 characters");
    const json* acks = rf.find("lastAckedSeqByRoom");
    if (!acks || !acks->is_object()) return bad("resume.lastAckedSeqByRoom must be an object");
    for (const auto& [room, seq] : acks->items()) {
      if (!validate_room_slug(room)) return bad("resume.lastAckedSeqByRoom has a key that is not a room slug");
      auto s = detail::field_reader::read_seq("seq", seq);
      if (!s) return bad("resume.lastAckedSeqByRoom values must be non-negative integers");
      resume.last_acked_seq_by_room.emplace(room, *s);
    }
    resume.session_id = std::move(*sid);
    resume.reconnect_token = std::move(*rt);
    hello.resume = std::move(resume);
  }
  return hello;
}

// Every frame after hello. Bad arguments under a readable requestId come back with
// that id (answer: tool.err InvalidArgumentError); anything else is BadFrameError
// (answer: system.error).
[[nodiscard]] inline tl::expected<client_frame, frame_error> decode_client_frame(std::string_view text) {
  auto bad = [](std::string why) {
    return tl::unexpected(frame_error{error{error_code::bad_frame, std::move(why), nullptr}, std::nullopt});
  };
  auto parsed = detail::parse_object(text);
  if (!parsed) return bad("a frame must be a JSON object");
  const json& j = *parsed;
  const std::string* tag = detail::tag_of(j);
  if (!tag) return bad("a frame must carry a string _tag");
  detail::field_reader f(j);
  if (*tag == "ack") {
    auto room = f.string("room");
    if (!room || !validate_room_slug(*room)) return bad("ack.room must be a room slug");
    auto seq = f.seq("seq");
    if (!seq) return bad("ack.seq must be a non-negative integer");
    return ack_frame{std::move(*room), *seq};
  }
  if (tag->rfind("tool.", 0) != 0) return bad("unknown frame _tag \"" + tag->substr(0, 64) + "\"");
  auto id = f.string("requestId");
  if (!id) return bad("a tool frame must carry a string requestId");
  if (id->size() > max_request_id_length) return bad("requestId must be at most 128 characters");
  auto args = detail::decode_tool_args(*tag, f);
  if (!args) {
    if (args.error().code == error_code::bad_frame) return bad("unknown frame _tag \"" + tag->substr(0, 64) + "\"");
    return tl::unexpected(frame_error{std::move(args.error()), std::move(*id)});
  }
  return tool_request{std::move(*id), std::move(*args)};
}

// ---- client frames: encode (client role) ----------------------------------

[[nodiscard]] inline std::string encode_hello(const hello_frame& h) {
  json j{{"_tag", "hello"}, {"clientVersion", h.client_version}};
  if (h.auth_token) j["authToken"] = *h.auth_token;
  if (h.resume) {
    json acks = json::object();
    for (const auto& [room, seq] : h.resume->last_acked_seq_by_room) acks[room] = seq;
    j["resume"] = json{{"sessionId", h.resume->session_id},
                       {"reconnectToken", h.resume->reconnect_token},
                       {"lastAckedSeqByRoom", std::move(acks)}};
  }
  return j.dump();
}

[[nodiscard]] inline std::string encode_tool_request(const tool_request& r) {
  json j = std::visit(
      [](const auto& a) -> json {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, join_room_args>) {
          json o{{"_tag", "tool.join_room"}, {"room", a.room}};
          if (a.nickname) o["nickname"] = *a.nickname;
          return o;
        } else if constexpr (std::is_same_v<T, leave_room_args>) {
          return json{{"_tag", "tool.leave_room"}, {"room", a.room}};
        } else if constexpr (std::is_same_v<T, list_rooms_args>) {
          return json{{"_tag", "tool.list_rooms"}};
        } else if constexpr (std::is_same_v<T, send_message_args>) {
          json o{{"_tag", "tool.send_message"}, {"room", a.room}, {"body", a.body}};
          if (a.client_msg_id) o["clientMsgId"] = *a.client_msg_id;
          return o;
        } else {
          return json{{"_tag", "tool.who_is_here"}, {"room", a.room}};
        }
      },
      r.args);
  j["requestId"] = r.request_id;
  return j.dump();
}

[[nodiscard]] inline std::string encode_ack(const ack_frame& a) {
  return json{{"_tag", "ack"}, {"room", a.room}, {"seq", a.seq}}.dump();
}

// ---- server frames: encode (server role) ----------------------------------

[[nodiscard]] inline std::string encode_hello_ok(const hello_ok_frame& f) {
  return json{{"_tag", "hello.ok"},
              {"sessionId", f.session_id},
              {"reconnectToken", f.reconnect_token},
              {"serverVersion", f.server_version}}
      .dump();
}

[[nodiscard]] inline std::string encode_hello_err(const error& e) {
  return json{{"_tag", "hello.err"}, {"code", std::string(to_string(e.code))}, {"message", e.message}}.dump();
}

[[nodiscard]] inline std::string encode_tool_ok(std::string_view request_id, json result) {
  return json{{"_tag", "tool.ok"}, {"requestId", std::string(request_id)}, {"result", std::move(result)}}.dump();
}

[[nodiscard]] inline std::string encode_tool_err(std::string_view request_id, const error& e) {
  json j{{"_tag", "tool.err"},
         {"requestId", std::string(request_id)},
         {"code", std::string(to_string(e.code))},
         {"message", e.message}};
  if (!e.details.is_null()) j["details"] = e.details;
  return j.dump();
}

[[nodiscard]] inline std::string encode_room_message(const room_message_frame& m) {
  return json{{"_tag", "room.message"}, {"room", m.room},   {"seq", m.seq},        {"messageId", m.message_id},
              {"fromNickname", m.from_nickname},         {"body", m.body}, {"sentAt", m.sent_at}}
      .dump();
}

[[nodiscard]] inline std::string encode_system_error(const error& e) {
  return json{{"_tag", "system.error"}, {"code", std::string(to_string(e.code))}, {"message", e.message}}.dump();
}

// ---- server frames: decode (client role) ----------------------------------

[[nodiscard]] inline result<server_frame> decode_server_frame(std::string_view text) {
  auto bad = [](std::string why) { return make_error(error_code::bad_frame, std::move(why)); };
  auto parsed = detail::parse_object(text);
  if (!parsed) return bad("a server frame must be a JSON object");
  const json& j = *parsed;
  const std::string* tag = detail::tag_of(j);
  if (!tag) return bad("a server frame must carry a string _tag");
  detail::field_reader f(j);
  auto str = [&](std::string_view name, std::string& out) -> bool {
    auto v = f.string(name);
    if (!v) return false;
    out = std::move(*v);
    return true;
  };
  if (*tag == "room.message") {
    room_message_frame m;
    auto seq = f.seq("seq");
    if (!seq || !str("room", m.room) || !str("messageId", m.message_id) || !str("fromNickname", m.from_nickname) ||
        !str("body", m.body) || !str("sentAt", m.sent_at))
      return bad("malformed room.message frame");
    m.seq = *seq;
    return m;
  }
  if (*tag == "tool.ok") {
    tool_ok_frame t;
    const json* res = f.find("result");
    if (!str("requestId", t.request_id) || !res) return bad("malformed tool.ok frame");
    t.result = *res;
    return t;
  }
  if (*tag == "tool.err") {
    tool_err_frame t;
    if (!str("requestId", t.request_id) || !str("code", t.code) || !str("message", t.message))
      return bad("malformed tool.err frame");
    if (const json* d = f.find("details")) t.details = *d;
    return t;
  }
  if (*tag == "hello.ok") {
    hello_ok_frame h;
    if (!str("sessionId", h.session_id) || !str("reconnectToken", h.reconnect_token) ||
        !str("serverVersion", h.server_version))
      return bad("malformed hello.ok frame");
    return h;
  }
  if (*tag == "hello.err") {
    hello_err_frame h;
    if (!str("code", h.code) || !str("message", h.message)) return bad("malformed hello.err frame");
    return h;
  }
  if (*tag == "system.error") {
    system_error_frame s;
    if (!str("code", s.code) || !str("message", s.message)) return bad("malformed system.error frame");
    return s;
  }
  return bad("unknown server frame _tag \"" + tag->substr(0, 64) + "\"");
}

}  // namespace parley
// ----- end parley/wire.hpp -----

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace parley {

struct hub_config {
  token_bucket_config rate{};                 // per-session send budget: burst 20, 10/s
  std::size_t replay_capacity = 64;           // unacked messages kept per (session, room)
  milliseconds session_grace = std::chrono::seconds(60);  // how long a detached session may resume
  idempotency_window_config idempotency{};    // clientMsgId memory: >= 1024 keys and >= 10 minutes
  std::size_t max_body_bytes = default_max_body_bytes;
  std::uint64_t seq_block_size = 256;         // seqs reserved per store write (hi/lo)
  std::string server_version = std::string(version_string);
};

// A local handle for a session; only the hub and its caller see it, never the wire.
using session_handle = std::uint64_t;

struct session_grant {
  session_handle handle = 0;
  std::string session_id;
  std::string reconnect_token;
};

struct hub_stats {
  std::size_t sessions = 0;
  std::size_t attached_sessions = 0;
  std::size_t rooms = 0;
  std::size_t memberships = 0;
  std::uint64_t messages_total = 0;
  std::uint64_t deliveries_total = 0;
  std::uint64_t rate_limited_total = 0;
  std::uint64_t replay_overflows_total = 0;
};

class hub {
 public:
  struct session_state;

  struct member {
    session_state* session;
    std::string nickname;
  };

  struct room_state {
    std::string name;
    std::vector<member> members;                                 // in join order
    std::unordered_map<std::string, session_handle> by_folded;   // folded nickname → member
    std::uint64_t next_seq = 0;                                  // hi/lo: [next_seq, seq_limit) is reserved
    std::uint64_t seq_limit = 0;
    std::uint64_t last_seq = 0;
  };

  struct membership {
    room_state* room;
    std::string nickname;
    replay_ring ring;
  };

  struct session_state {
    session_handle handle;
    std::string id;
    std::string reconnect_token;
    bool attached = true;
    time_point detach_deadline{};
    std::map<std::string, membership, std::less<>> memberships;
    token_bucket bucket;
    idempotency_window<send_message_result> sent;
    std::vector<shared_frame> outbox;
    bool ready_listed = false;
  };

  // Loads the store's rooms; a store that cannot be read is an error, not an empty hub.
  [[nodiscard]] static result<hub> open(room_store& store, random_source random, hub_config config = {}) {
    auto rooms = store.load_rooms();
    if (!rooms) return tl::unexpected(rooms.error());
    hub h(store, std::move(random), std::move(config));
    for (auto& r : *rooms) h.rooms_.emplace(r.name, room_state{r.name, {}, {}, 0, 0, 0});
    return h;
  }

  hub(hub&&) noexcept = default;
  hub& operator=(hub&&) = delete;
  hub(const hub&) = delete;

  // ---- sessions -----------------------------------------------------------

  [[nodiscard]] session_grant open_session(time_point now) {
    const session_handle handle = ++last_handle_;
    auto s = std::make_unique<session_state>(session_state{
        handle, uuid_v4(random_), random_token(random_, 32), true, {}, {}, token_bucket(config_.rate, now),
        idempotency_window<send_message_result>(config_.idempotency), {}, false});
    session_grant grant{handle, s->id, s->reconnect_token};
    by_id_.emplace(s->id, handle);
    sessions_.emplace(handle, std::move(s));
    return grant;
  }

  // Resumes a detached (or still attached: the newer connection wins) session and
  // queues, per room, exactly the messages after the client's last ack. If any of
  // them was evicted the resume fails with ReplayBufferOverflowError and the session
  // ends, so its nicknames are free for the fresh session the client starts next.
  [[nodiscard]] result<session_grant> resume_session(const resume_block& resume, time_point now) {
    auto id = by_id_.find(resume.session_id);
    if (id == by_id_.end())
      return make_error(error_code::unknown_session, "no session " + resume.session_id + " (it ended or never existed)");
    session_state& s = *sessions_.at(id->second);
    if (!constant_time_equal(s.reconnect_token, resume.reconnect_token))
      return make_error(error_code::bad_reconnect_token, "the reconnect token does not match this session");
    detach(s.handle, now);
    json lost = json::array();
    for (auto& [room, m] : s.memberships)
      if (!m.ring.can_resume_after(acked_after_resume(resume, room, m))) lost.push_back(room);
    if (!lost.empty()) {
      ++stats_.replay_overflows_total;
      std::string rooms;
      for (const auto& r : lost) rooms += (rooms.empty() ? "" : ", ") + r.get<std::string>();
      end_session(s.handle);
      return make_error(error_code::replay_buffer_overflow,
                        "messages were dropped while disconnected (in " + rooms + "); the session has ended",
                        json{{"rooms", std::move(lost)}});
    }
    s.attached = true;
    deadlines_.erase({s.detach_deadline, s.handle});
    for (auto& [room, m] : s.memberships) {
      const std::uint64_t after = acked_after_resume(resume, room, m);
      m.ring.ack(after);
      m.ring.for_each_after(after, [&](const replay_entry& e) { enqueue(s, e.frame); });
    }
    return session_grant{s.handle, s.id, s.reconnect_token};
  }

  // The transport is gone; memberships stay for the grace period.
  void detach(session_handle handle, time_point now) {
    session_state* s = find(handle);
    if (!s || !s->attached) return;
    s->attached = false;
    s->outbox.clear();  // still in the replay rings, which is where a resume reads from
    s->detach_deadline = now + config_.session_grace;
    deadlines_.emplace(s->detach_deadline, handle);
  }

  // A clean end (close 1000, or the grace ran out): memberships vanish at once.
  void end_session(session_handle handle) {
    session_state* s = find(handle);
    if (!s) return;
    for (auto& [name, m] : s->memberships) remove_member(*m.room, *s);
    if (!s->attached) deadlines_.erase({s->detach_deadline, handle});
    by_id_.erase(s->id);
    sessions_.erase(handle);
  }

  // Ends every detached session whose grace ran out by `now`; returns them.
  std::vector<session_handle> expire(time_point now) {
    std::vector<session_handle> ended;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const session_handle h = deadlines_.begin()->second;
      ended.push_back(h);
      end_session(h);
    }
    return ended;
  }

  [[nodiscard]] std::optional<time_point> next_deadline() const {
    if (deadlines_.empty()) return std::nullopt;
    return deadlines_.begin()->first;
  }

  // ---- tools ----------------------------------------------------------------

  [[nodiscard]] result<join_room_result> join_room(session_handle handle, const join_room_args& args, time_point now) {
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    if (args.nickname)
      if (auto ok = check_nickname("nickname", *args.nickname); !ok) return tl::unexpected(ok.error());
    if (auto it = s->memberships.find(args.room); it != s->memberships.end())
      return join_room_result{args.room, it->second.nickname, it->second.room->members.size()};

    auto room = ensure_room(args.room, now);
    if (!room) return tl::unexpected(room.error());
    room_state& r = **room;
    std::string nickname;
    if (args.nickname) {
      if (r.by_folded.count(fold_nickname(*args.nickname)))
        return make_error(error_code::nickname_taken,
                          "the nickname " + *args.nickname + " is taken in " + args.room + "; pick another",
                          json{{"room", args.room}, {"nickname", *args.nickname}});
      nickname = *args.nickname;
    } else {
      nickname = allocate_nickname(random_, [&](const std::string& folded) { return r.by_folded.count(folded) > 0; });
    }
    r.members.push_back(member{s, nickname});
    r.by_folded.emplace(fold_nickname(nickname), handle);
    s->memberships.emplace(args.room, membership{&r, nickname, replay_ring(config_.replay_capacity)});
    return join_room_result{args.room, std::move(nickname), r.members.size()};
  }

  // Silent to the others: there are no presence events in the protocol.
  [[nodiscard]] result<leave_room_result> leave_room(session_handle handle, const leave_room_args& args) {
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    auto it = s->memberships.find(args.room);
    if (it == s->memberships.end()) return not_in_room(args.room);
    remove_member(*it->second.room, *s);
    s->memberships.erase(it);
    return leave_room_result{args.room};
  }

  [[nodiscard]] result<send_message_result> send_message(session_handle handle, const send_message_args& args,
                                                         time_point now) {
    session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    if (auto ok = check_body(args.body, config_.max_body_bytes); !ok) return tl::unexpected(ok.error());
    if (args.client_msg_id) {
      if (auto ok = check_client_msg_id(*args.client_msg_id); !ok) return tl::unexpected(ok.error());
      // A retry returns the first result, delivers nothing and spends no token.
      if (const send_message_result* first = s->sent.find(*args.client_msg_id)) return *first;
    }
    auto it = s->memberships.find(args.room);
    if (it == s->memberships.end()) return not_in_room(args.room);
    if (auto wait = s->bucket.try_take(now)) {
      ++stats_.rate_limited_total;
      return make_error(error_code::rate_limited,
                        "rate limited: retry after " + std::to_string(wait->count()) + " ms",
                        json{{"retryAfterMs", wait->count()}});
    }
    room_state& r = *it->second.room;
    auto seq = next_seq(r);
    if (!seq) return tl::unexpected(seq.error());

    send_message_result sent{args.room, *seq, uuid_v7(now, random_), format_rfc3339(now)};
    const shared_frame frame = make_shared_frame(encode_room_message(
        room_message_frame{args.room, sent.seq, sent.message_id, it->second.nickname, args.body, sent.sent_at}));
    ++stats_.messages_total;
    for (member& m : r.members) {
      if (m.session == s) continue;  // the sender's confirmation is this result, never an echo
      m.session->memberships.find(args.room)->second.ring.push(sent.seq, frame);
      if (m.session->attached) enqueue(*m.session, frame);
    }
    if (args.client_msg_id) s->sent.remember(*args.client_msg_id, sent, now);
    return sent;
  }

  [[nodiscard]] result<list_rooms_result> list_rooms(session_handle handle) const {
    const session_state* s = find(handle);
    if (!s) return no_session();
    list_rooms_result out;
    for (const auto& [name, r] : rooms_) {
      if (auto it = s->memberships.find(name); it != s->memberships.end())
        out.joined.push_back(joined_room{name, it->second.nickname, r.members.size()});
      else
        out.available.push_back(available_room{name, r.members.size()});
    }
    return out;
  }

  [[nodiscard]] result<who_is_here_result> who_is_here(session_handle handle, const who_is_here_args& args) const {
    const session_state* s = find(handle);
    if (!s) return no_session();
    if (auto ok = check_room_slug("room", args.room); !ok) return tl::unexpected(ok.error());
    auto it = s->memberships.find(args.room);
    if (it == s->memberships.end()) return not_in_room(args.room);
    who_is_here_result out{args.room, {}};
    out.nicknames.reserve(it->second.room->members.size());
    for (const member& m : it->second.room->members) out.nicknames.push_back(m.nickname);
    return out;
  }

  // Cumulative per room. Acks for rooms the session is not in are ignored: a leave
  // may cross an ack in flight.
  void ack(session_handle handle, const ack_frame& a) {
    session_state* s = find(handle);
    if (!s) return;
    if (auto it = s->memberships.find(a.room); it != s->memberships.end()) it->second.ring.ack(a.seq);
  }

  // ---- deliveries -----------------------------------------------------------

  // Sessions whose outbox became non-empty since the last call, each listed once.
  [[nodiscard]] std::vector<session_handle> take_ready() {
    std::vector<session_handle> out;
    out.swap(ready_);
    for (session_handle h : out)
      if (session_state* s = find(h)) s->ready_listed = false;
    return out;
  }

  // The frames queued for an attached session, oldest first.
  [[nodiscard]] std::vector<shared_frame> drain(session_handle handle) {
    std::vector<shared_frame> out;
    if (session_state* s = find(handle)) out.swap(s->outbox);
    return out;
  }

  // ---- inspection ---------------------------------------------------------

  [[nodiscard]] hub_stats stats() const {
    hub_stats st = stats_;
    st.sessions = sessions_.size();
    st.rooms = rooms_.size();
    for (const auto& [h, s] : sessions_) st.attached_sessions += s->attached ? 1 : 0;
    for (const auto& [n, r] : rooms_) st.memberships += r.members.size();
    return st;
  }

  [[nodiscard]] const std::map<std::string, room_state, std::less<>>& rooms() const noexcept { return rooms_; }
  [[nodiscard]] const session_state* session(session_handle handle) const { return find(handle); }
  [[nodiscard]] std::optional<session_handle> handle_of(std::string_view session_id) const {
    auto it = by_id_.find(std::string(session_id));
    if (it == by_id_.end()) return std::nullopt;
    return it->second;
  }
  [[nodiscard]] const hub_config& config() const noexcept { return config_; }

 private:
  hub(room_store& store, random_source random, hub_config config)
      : store_(&store), random_(std::move(random)), config_(std::move(config)) {}

  session_state* find(session_handle handle) const {
    auto it = sessions_.find(handle);
    return it == sessions_.end() ? nullptr : it->second.get();
  }

  static tl::unexpected<error> no_session() {
    return make_error(error_code::internal, "the session has ended");
  }
  static tl::unexpected<error> not_in_room(const std::string& room) {
    return make_error(error_code::not_in_room, "not a member of " + room + "; join it first", json{{"room", room}});
  }

  static bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
  }

  // A room the client names no ack for resumes from the server's own ack point.
  static std::uint64_t acked_after_resume(const resume_block& resume, std::string_view room, const membership& m) {
    auto it = resume.last_acked_seq_by_room.find(room);
    return it == resume.last_acked_seq_by_room.end() ? m.ring.acked() : it->second;
  }

  result<room_state*> ensure_room(const std::string& name, time_point now) {
    if (auto it = rooms_.find(name); it != rooms_.end()) return &it->second;
    if (auto created = store_->create_room(name, now); !created)
      return make_error(error_code::internal, "could not create room " + name + ": " + created.error().message);
    return &rooms_.emplace(name, room_state{name, {}, {}, 0, 0, 0}).first->second;
  }

  result<std::uint64_t> next_seq(room_state& r) {
    if (r.next_seq == r.seq_limit) {
      auto first = store_->reserve_seq_block(r.name, config_.seq_block_size);
      if (!first) return make_error(error_code::internal, "could not reserve seqs: " + first.error().message);
      r.next_seq = *first;
      r.seq_limit = *first + config_.seq_block_size;
    }
    r.last_seq = r.next_seq;
    return r.next_seq++;
  }

  void remove_member(room_state& r, const session_state& s) {
    auto it = std::find_if(r.members.begin(), r.members.end(), [&](const member& m) { return m.session == &s; });
    if (it == r.members.end()) return;
    r.by_folded.erase(fold_nickname(it->nickname));
    r.members.erase(it);  // keeps join order for who_is_here
  }

  void enqueue(session_state& s, const shared_frame& frame) {
    s.outbox.push_back(frame);
    ++stats_.deliveries_total;
    if (!s.ready_listed) {
      s.ready_listed = true;
      ready_.push_back(s.handle);
    }
  }

  room_store* store_;
  random_source random_;
  hub_config config_;
  std::map<std::string, room_state, std::less<>> rooms_;
  std::unordered_map<session_handle, std::unique_ptr<session_state>> sessions_;
  std::unordered_map<std::string, session_handle> by_id_;
  std::set<std::pair<time_point, session_handle>> deadlines_;
  std::vector<session_handle> ready_;
  session_handle last_handle_ = 0;
  hub_stats stats_{};
};

}  // namespace parley
// ----- end parley/hub.hpp -----

// ----- begin parley/session_protocol.hpp -----
// Serves decoded frames against a hub: hello/resume into a session, tool requests into tool.ok/tool.err frames.


#include <cctype>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

// A clientVersion of the form MAJOR.MINOR.PATCH (an optional leading "v" allowed)
// must share our major; anything else is accepted, since the reference does not
// constrain the field's shape.
[[nodiscard]] inline bool client_version_compatible(std::string_view client_version) noexcept {
  std::string_view v = client_version;
  if (!v.empty() && (v.front() == 'v' || v.front() == 'V')) v.remove_prefix(1);
  if (v.empty() || !std::isdigit(static_cast<unsigned char>(v.front()))) return true;
  unsigned long major = 0;
  std::size_t i = 0;
  for (; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i) {
    major = major * 10 + static_cast<unsigned long>(v[i] - '0');
    if (major > 1000000) return false;
  }
  if (i == v.size() || v[i] != '.') return true;  // not semver-shaped
  return major == protocol_major;
}

struct hello_outcome {
  std::string frame;                         // hello.ok or hello.err, to send as is
  std::optional<session_grant> session;      // set on success
  std::optional<int> close_code;             // set on failure: close after sending `frame`
};

// `auth_failure` is the authenticator's verdict (the server's token store decides;
// the core only shapes the answer). Resume needs the reconnect token, not a bearer
// token: the session was authenticated when it began.
[[nodiscard]] inline hello_outcome serve_hello(hub& h, const hello_frame& hello, time_point now,
                                               const std::optional<error>& auth_failure = std::nullopt) {
  auto refuse = [](const error& e) { return hello_outcome{encode_hello_err(e), std::nullopt, close_code_for(e.code)}; };
  if (!client_version_compatible(hello.client_version))
    return refuse(error{error_code::version_mismatch,
                        "client version " + hello.client_version + " is not compatible with server version " +
                            h.config().server_version,
                        nullptr});
  result<session_grant> grant = [&]() -> result<session_grant> {
    if (hello.resume) return h.resume_session(*hello.resume, now);
    if (auth_failure) return tl::unexpected(*auth_failure);
    return h.open_session(now);
  }();
  if (!grant) return refuse(grant.error());
  std::string ok = encode_hello_ok(hello_ok_frame{grant->session_id, grant->reconnect_token, h.config().server_version});
  return hello_outcome{std::move(ok), std::move(*grant), std::nullopt};
}

// Runs one tool request and encodes its answer.
[[nodiscard]] inline std::string serve_tool_request(hub& h, session_handle session, const tool_request& request,
                                                    time_point now) {
  auto answer = [&](auto&& r) {
    if (r) return encode_tool_ok(request.request_id, json(*r));
    return encode_tool_err(request.request_id, r.error());
  };
  return std::visit(
      [&](const auto& args) -> std::string {
        using T = std::decay_t<decltype(args)>;
        if constexpr (std::is_same_v<T, join_room_args>) return answer(h.join_room(session, args, now));
        else if constexpr (std::is_same_v<T, leave_room_args>) return answer(h.leave_room(session, args));
        else if constexpr (std::is_same_v<T, list_rooms_args>) return answer(h.list_rooms(session));
        else if constexpr (std::is_same_v<T, send_message_args>) return answer(h.send_message(session, args, now));
        else return answer(h.who_is_here(session, args));
      },
      request.args);
}

// Serves one post-hello text frame: a tool request's answer, nothing for an ack, or
// system.error for a frame that cannot be read.
[[nodiscard]] inline std::optional<std::string> serve_client_text(hub& h, session_handle session, std::string_view text,
                                                                  time_point now) {
  auto frame = decode_client_frame(text);
  if (!frame) {
    if (frame.error().request_id) return encode_tool_err(*frame.error().request_id, frame.error().err);
    return encode_system_error(frame.error().err);
  }
  if (const auto* a = std::get_if<ack_frame>(&*frame)) {
    h.ack(session, *a);
    return std::nullopt;
  }
  return serve_tool_request(h, session, std::get<tool_request>(*frame), now);
}

}  // namespace parley
// ----- end parley/session_protocol.hpp -----
// ----- end parley/parley.hpp -----
