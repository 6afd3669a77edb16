// SPDX-License-Identifier: MIT
// load_generator: M WebSocket members in one room, on one epoll thread, speaking the Parley wire; fixed-rate or closed-loop sends, acks on by default.
//
// Usage: load_generator [--host 127.0.0.1] [--port 7539] [--members 100] [--room bench]
//                       (--rate R | --closed-loop [--in-flight 4]) [--no-ack | --ack-batch]
//                       [--warmup 2] [--duration 10] [--drain 5] [--body 200] [--timeout S] [--json]
//
// Every member connects (HTTP upgrade, masked client frames), sends hello and join_room
// back to back, and waits. When all have joined, sending starts: with --rate each member
// sends R messages a second on a fixed schedule (evenly spread over the members, with a
// random phase), with --closed-loop each keeps K send_message requests unanswered. Each
// body starts with `t<steady ns>.m<member>.n<count>.`, so a receiver computes the latency
// from the send to its read, and checks that it gets every sender's messages exactly once
// and in order (gaps, dups); at the end, sends stop and the run drains for up to --drain
// seconds so the messages still in flight arrive (any that do not are `missing`).
// Deliveries and answers are counted only inside the measured window, after --warmup.
//
// Only control frames (hello.ok, join's tool.ok, errors) go through nlohmann/json; a
// delivery and a send's tool.ok are recognised by scanning for `"_tag":"...", "seq":`
// and `"body":"` in any key order, so the generator costs little per delivery. Answers
// are matched to requests by order (the protocol answers in request order), not by
// requestId, so the zero-work relay may answer with fixed frames.
//
// Acks: by default every delivered message is acked with its own `ack` frame (the acks of
// one read batch go out in one write); --ack-batch sends one cumulative ack per read
// batch with the highest seq (the protocol's ack is cumulative); --no-ack sends none.
//
// Exit status 0 only if there was no error, gap, dup or missing message and the run
// finished within --timeout (default warmup + duration + drain + 20 s).
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // what std::chrono::steady_clock reads on Linux
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

// ---- Options ----------------------------------------------------------------------------------

struct options {
  std::string host = "127.0.0.1";
  std::string port = "7539";  // P or P1,P2,...: member i connects to the (i mod n)-th, so one room spans servers
  std::size_t members = 100;
  std::string room = "bench";
  double rate = 0;  // messages per second per member; 0 with closed_loop
  bool closed_loop = false;
  std::size_t in_flight = 4;
  enum class ack_mode { every, batch, none } ack = ack_mode::every;
  double warmup = 2;
  double duration = 10;
  double drain = 5;
  std::size_t body = 200;
  double timeout = 0;
  bool json = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "load_generator: %s\n"
               "usage: load_generator [--host H] [--port P[,P2...]] [--members M] [--room SLUG]\n"
               "                      (--rate R | --closed-loop [--in-flight K]) [--no-ack | --ack-batch]\n"
               "                      [--warmup S] [--duration S] [--drain S] [--body BYTES] [--timeout S] [--json]\n",
               why);
  std::exit(2);
}

options parse_options(int argc, char** argv) {
  options o;
  auto value = [&](int& i) -> const char* {
    if (i + 1 >= argc) usage((std::string(argv[i]) + " needs a value").c_str());
    return argv[++i];
  };
  auto number = [&](int& i) {
    const char* flag = argv[i];
    const char* v = value(i);
    char* end = nullptr;
    const double d = std::strtod(v, &end);
    if (end == v || *end != '\0' || !(d >= 0)) usage((std::string(flag) + " needs a number >= 0").c_str());
    return d;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--host") o.host = value(i);
    else if (a == "--port") o.port = value(i);
    else if (a == "--members") o.members = static_cast<std::size_t>(number(i));
    else if (a == "--room") o.room = value(i);
    else if (a == "--rate") o.rate = number(i);
    else if (a == "--closed-loop") o.closed_loop = true;
    else if (a == "--in-flight") o.in_flight = static_cast<std::size_t>(number(i));
    else if (a == "--no-ack") o.ack = options::ack_mode::none;
    else if (a == "--ack-batch") o.ack = options::ack_mode::batch;
    else if (a == "--warmup") o.warmup = number(i);
    else if (a == "--duration") o.duration = number(i);
    else if (a == "--drain") o.drain = number(i);
    else if (a == "--body") o.body = static_cast<std::size_t>(number(i));
    else if (a == "--timeout") o.timeout = number(i);
    else if (a == "--json") o.json = true;
    else if (a == "-h" || a == "--help") usage("help");
    else usage(("unknown option " + std::string(a)).c_str());
  }
  if (o.closed_loop == (o.rate > 0)) usage("give exactly one of --rate R (R > 0) and --closed-loop");
  if (o.members < 2) usage("--members must be at least 2");
  if (o.closed_loop && o.in_flight == 0) usage("--in-flight must be at least 1");
  if (o.duration <= 0) usage("--duration must be > 0");
  if (o.body < 1 || o.body > 8192) usage("--body must be 1..8192");
  if (o.timeout == 0) o.timeout = o.warmup + o.duration + o.drain + 20;
  return o;
}

// ---- A log-linear latency histogram (64 sub-buckets per power of two, < 1.6% error) ----------

class histogram {
 public:
  void record(std::uint64_t v) {
    ++counts_[index(v)];
    ++total_;
    max_ = std::max(max_, v);
  }
  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return max_; }
  // The value at quantile q (0..1): the middle of the bucket holding it.
  std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= std::max<std::uint64_t>(rank, 1)) return std::min(middle(i), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned sub_bits = 6;
  static constexpr std::uint64_t sub = 1u << sub_bits;
  static std::size_t index(std::uint64_t v) {
    if (v < 2 * sub) return static_cast<std::size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));
    const unsigned shift = msb - sub_bits;
    return static_cast<std::size_t>(2 * sub + (shift - 1) * sub + ((v >> shift) - sub));
  }
  static std::uint64_t middle(std::size_t i) {
    if (i < 2 * sub) return i;
    const std::uint64_t shift = (i - 2 * sub) / sub + 1;
    const std::uint64_t mantissa = (i - 2 * sub) % sub + sub;
    return (mantissa << shift) + (std::uint64_t{1} << (shift - 1));
  }
  std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(2 * sub + 58 * sub, 0);
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

// ---- Cheap scanning of server frames ---------------------------------------------------------

bool digits(std::string_view s, std::size_t& p, std::uint64_t& out) {
  const std::size_t start = p;
  std::uint64_t v = 0;
  while (p < s.size() && s[p] >= '0' && s[p] <= '9') v = v * 10 + static_cast<std::uint64_t>(s[p++] - '0');
  out = v;
  return p > start;
}

// The top-level fields the hot path needs. Strings are raw (still escaped), which is exact
// for every value it reads: tags, slugs and the generator's own bodies have no escapes.
struct frame_fields {
  std::string_view tag, room, body;
  std::uint64_t seq = 0;
  bool has_seq = false;
};

// One pass over a JSON object's top-level keys, in any order and with any blanks; nested
// values (tool.ok's result) are skipped. False on anything that is not an object.
bool scan_frame(std::string_view s, frame_fields& f) {
  const char* p = s.data();
  const char* const end = p + s.size();
  auto blank = [&] {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  };
  // At an opening quote: moves past the closing one and returns the contents.
  auto string = [&](std::string_view& out) {
    const char* const start = ++p;
    for (;;) {
      const auto* q = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
      if (q == nullptr) return false;
      const char* b = q;
      while (b > start && b[-1] == '\\') --b;
      p = q + 1;
      if ((q - b) % 2 == 0) {
        out = std::string_view(start, static_cast<std::size_t>(q - start));
        return true;
      }
    }
  };
  auto skip_nested = [&] {
    int depth = 0;
    std::string_view ignored;
    while (p < end) {
      if (*p == '"') {
        if (!string(ignored)) return false;
        continue;
      }
      if (*p == '{' || *p == '[') ++depth;
      if (*p == '}' || *p == ']') --depth;
      ++p;
      if (depth == 0) return true;
    }
    return false;
  };
  blank();
  if (p == end || *p != '{') return false;
  ++p;
  for (;;) {
    blank();
    if (p == end) return false;
    if (*p == '}') return true;
    std::string_view key;
    if (*p != '"' || !string(key)) return false;
    blank();
    if (p == end || *p != ':') return false;
    ++p;
    blank();
    if (p == end) return false;
    if (*p == '"') {
      std::string_view value;
      if (!string(value)) return false;
      if (key == "_tag") f.tag = value;
      else if (key == "room") f.room = value;
      else if (key == "body") f.body = value;
    } else if (*p == '{' || *p == '[') {
      if (!skip_nested()) return false;
    } else {
      const char* const start = p;
      while (p < end && *p != ',' && *p != '}' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') ++p;
      if (key == "seq") {
        const std::string_view number(start, static_cast<std::size_t>(p - start));
        std::size_t at = 0;
        f.has_seq = digits(number, at, f.seq) && at == number.size();
      }
    }
    blank();
    if (p < end && *p == ',') ++p;
  }
}

// ---- Members ----------------------------------------------------------------------------------

enum class phase { connecting, upgrading, joining, ready, closed };

struct member {
  int fd = -1;
  std::size_t index = 0;
  phase state = phase::connecting;
  std::uint64_t answers_expected_before_ready = 2;  // hello.ok, then join's tool.ok

  std::vector<char> in = std::vector<char>(1 << 16);
  std::size_t in_len = 0;
  std::string fragments;  // a fragmented message being assembled (servers rarely fragment)
  bool in_fragmented = false;

  std::string out;
  std::size_t out_off = 0;
  bool dirty = false;
  bool waiting_writable = false;

  std::uint64_t sent = 0;       // send_message requests written; also the last body counter `n`
  std::uint64_t answered = 0;   // their answers (tool.ok or tool.err)
  std::uint64_t accepted = 0;   // their tool.ok
  std::uint64_t next_send = 0;  // fixed rate: when the next send is due (ns)

  std::vector<std::uint64_t> last_from;  // per sender: the last body counter received
  std::uint64_t last_seq = 0;            // the last room seq received
  std::uint64_t batch_max_seq = 0;       // --ack-batch: the highest seq of this read batch
  std::uint64_t received = 0;            // deliveries, window or not
};

struct totals {
  std::uint64_t deliveries = 0;  // inside the window
  std::uint64_t accepted = 0;    // send tool.ok inside the window
  std::uint64_t gaps = 0, dups = 0, missing = 0;
  std::uint64_t tool_errors = 0, system_errors = 0, hello_errors = 0, closes = 0, disconnects = 0;
  std::uint64_t malformed = 0, other_frames = 0;
  std::string first_error;
  histogram latency;
};

class generator {
 public:
  explicit generator(options o) : o_(std::move(o)), rng_(std::random_device{}()), mask_state_(rng_() | 1) {}

  int run();

 private:
  void fail(const std::string& what) {
    if (t_.first_error.empty()) t_.first_error = what;
  }
  bool connect_all();
  void on_connected(member& m);
  void on_readable(member& m, std::uint64_t now);
  void on_message(member& m, std::string_view msg, std::uint64_t now);
  void on_delivery(member& m, const frame_fields& f, std::string_view msg, std::uint64_t now);
  void on_answer(member& m, std::string_view msg, bool ok, std::uint64_t now);
  void on_control(member& m, unsigned opcode, std::string_view payload);
  void send_frame(member& m, unsigned opcode, std::string_view payload);
  void send_message(member& m, std::uint64_t now);
  void send_ack(member& m, std::uint64_t seq);
  void flush(member& m);
  void flush_dirty();
  void drop(member& m, const char* why);
  void arm_timer(std::uint64_t at);
  void fire_due_sends(std::uint64_t now);
  bool sending() const { return started_ && !stopped_; }
  bool in_window(std::uint64_t now) const { return started_ && now >= window_start_ && now < window_end_; }
  bool drained() const;
  void report(double window_s, bool timed_out);

  options o_;
  std::mt19937_64 rng_;
  std::uint64_t mask_state_ = 0;
  int ep_ = -1;
  int timer_ = -1;
  std::vector<std::unique_ptr<member>> members_;
  std::vector<std::string> ports_;  // from --port, in order
  std::vector<member*> dirty_;
  std::size_t ready_ = 0;
  bool started_ = false, stopped_ = false;
  std::uint64_t window_start_ = 0, window_end_ = 0;
  totals t_;
  std::string body_pad_;
  std::string scratch_;
};

void generator::drop(member& m, const char* why) {
  if (m.state == phase::closed) return;
  ++t_.disconnects;
  fail("member " + std::to_string(m.index) + ": " + why);
  if (m.state == phase::ready) --ready_;
  m.state = phase::closed;
  epoll_ctl(ep_, EPOLL_CTL_DEL, m.fd, nullptr);
  close(m.fd);
  m.fd = -1;
}

bool generator::connect_all() {
  for (std::size_t at = 0; at <= o_.port.size();) {
    const std::size_t comma = std::min(o_.port.find(',', at), o_.port.size());
    ports_.push_back(o_.port.substr(at, comma - at));
    at = comma + 1;
  }
  for (std::size_t i = 0; i < o_.members; ++i) {
    const std::string& port = ports_[i % ports_.size()];
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int rc = getaddrinfo(o_.host.c_str(), port.c_str(), &hints, &res); rc != 0 || res == nullptr) {
      std::fprintf(stderr, "load_generator: cannot resolve %s:%s: %s\n", o_.host.c_str(), port.c_str(), gai_strerror(rc));
      return false;
    }
    auto m = std::make_unique<member>();
    m->index = i;
    m->last_from.assign(o_.members, 0);
    m->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m->fd < 0) {
      std::perror("load_generator: socket");
      freeaddrinfo(res);
      return false;
    }
    const int one = 1;
    setsockopt(m->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(m->fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
      std::perror("load_generator: connect");
      freeaddrinfo(res);
      return false;
    }
    freeaddrinfo(res);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = m.get();
    epoll_ctl(ep_, EPOLL_CTL_ADD, m->fd, &ev);
    members_.push_back(std::move(m));
  }
  return true;
}

std::string base64(const unsigned char* p, std::size_t n) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (i + 1 < n ? std::uint32_t{p[i + 1]} << 8 : 0) |
                            (i + 2 < n ? std::uint32_t{p[i + 2]} : 0);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
    out += i + 2 < n ? alphabet[v & 63] : '=';
  }
  return out;
}

// The TCP connection is up: send the upgrade, hello and join_room in one write.
void generator::on_connected(member& m) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(m.fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    drop(m, (std::string("connect: ") + std::strerror(err)).c_str());
    return;
  }
  unsigned char key[16];
  for (auto& b : key) b = static_cast<unsigned char>(rng_());
  m.out += "GET / HTTP/1.1\r\nHost: " + o_.host + ":" + ports_[m.index % ports_.size()] +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
           base64(key, sizeof key) + "\r\n\r\n";
  send_frame(m, 1, R"({"_tag":"hello","clientVersion":"0.1.0"})");
  send_frame(m, 1,
             R"({"_tag":"tool.join_room","requestId":"j","room":")" + o_.room + R"(","nickname":"m)" +
                 std::to_string(m.index) + R"("})");
  m.state = phase::upgrading;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &m;
  epoll_ctl(ep_, EPOLL_CTL_MOD, m.fd, &ev);
  flush(m);
}

// A masked client frame (RFC 6455 §5.3), appended to the member's output.
void generator::send_frame(member& m, unsigned opcode, std::string_view payload) {
  const std::size_t n = payload.size();
  std::string& out = m.out;
  out += static_cast<char>(0x80 | opcode);
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(0x80 | 127);
    for (int s = 56; s >= 0; s -= 8) out += static_cast<char>((static_cast<std::uint64_t>(n) >> s) & 0xff);
  }
  // Mask keys from xorshift64, seeded from random_device: unpredictable enough for a bench
  // and far cheaper per frame than the Mersenne twister.
  mask_state_ ^= mask_state_ << 13;
  mask_state_ ^= mask_state_ >> 7;
  mask_state_ ^= mask_state_ << 17;
  const std::uint64_t r = mask_state_;
  const char mask[4] = {static_cast<char>(r), static_cast<char>(r >> 8), static_cast<char>(r >> 16),
                        static_cast<char>(r >> 24)};
  out.append(mask, 4);
  const std::size_t at = out.size();
  out.append(payload.data(), n);
  char* data = out.data() + at;
  std::uint64_t mask8 = 0;
  std::memcpy(&mask8, mask, 4);
  std::memcpy(reinterpret_cast<char*>(&mask8) + 4, mask, 4);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {  // eight bytes at a time: the mask repeats every four
    std::uint64_t word;
    std::memcpy(&word, data + i, 8);
    word ^= mask8;
    std::memcpy(data + i, &word, 8);
  }
  for (; i < n; ++i) data[i] = static_cast<char>(data[i] ^ mask[i & 3]);
  if (!m.dirty) {
    m.dirty = true;
    dirty_.push_back(&m);
  }
}

void generator::send_message(member& m, std::uint64_t now) {
  ++m.sent;
  scratch_.clear();
  scratch_ += R"({"_tag":"tool.send_message","requestId":"s)";
  scratch_ += std::to_string(m.sent);
  scratch_ += R"(","room":")";
  scratch_ += o_.room;
  scratch_ += R"(","body":")";
  const std::size_t body_at = scratch_.size();
  scratch_ += 't';
  scratch_ += std::to_string(now);
  scratch_ += ".m";
  scratch_ += std::to_string(m.index);
  scratch_ += ".n";
  scratch_ += std::to_string(m.sent);
  scratch_ += '.';
  const std::size_t stamp = scratch_.size() - body_at;
  if (stamp < o_.body) scratch_.append(body_pad_, 0, o_.body - stamp);
  scratch_ += R"("})";
  send_frame(m, 1, scratch_);
}

void generator::send_ack(member& m, std::uint64_t seq) {
  scratch_.clear();
  scratch_ += R"({"_tag":"ack","room":")";
  scratch_ += o_.room;
  scratch_ += R"(","seq":)";
  scratch_ += std::to_string(seq);
  scratch_ += '}';
  send_frame(m, 1, scratch_);
}

void generator::flush(member& m) {
  m.dirty = false;
  if (m.state == phase::closed || m.state == phase::connecting) return;
  while (m.out_off < m.out.size()) {
    const ssize_t n = ::send(m.fd, m.out.data() + m.out_off, m.out.size() - m.out_off, MSG_NOSIGNAL);
    if (n > 0) {
      m.out_off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!m.waiting_writable) {
        m.waiting_writable = true;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.ptr = &m;
        epoll_ctl(ep_, EPOLL_CTL_MOD, m.fd, &ev);
      }
      return;
    }
    drop(m, (std::string("write: ") + std::strerror(errno)).c_str());
    return;
  }
  m.out.clear();
  m.out_off = 0;
  if (m.waiting_writable) {
    m.waiting_writable = false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &m;
    epoll_ctl(ep_, EPOLL_CTL_MOD, m.fd, &ev);
  }
}

void generator::flush_dirty() {
  // flush() may not add to dirty_, but a drop inside it must not invalidate the loop.
  for (std::size_t i = 0; i < dirty_.size(); ++i) flush(*dirty_[i]);
  dirty_.clear();
}

void generator::on_readable(member& m, std::uint64_t now) {
  for (int reads = 0; reads < 4 && m.state != phase::closed; ++reads) {
    if (m.in.size() - m.in_len < 16384) m.in.resize(m.in.size() * 2);
    const ssize_t n = ::recv(m.fd, m.in.data() + m.in_len, m.in.size() - m.in_len, 0);
    if (n == 0) {
      drop(m, "the server closed the TCP connection");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      drop(m, (std::string("read: ") + std::strerror(errno)).c_str());
      return;
    }
    m.in_len += static_cast<std::size_t>(n);
    now = now_ns();  // per read, not per wakeup: the reads before this one took time too
    std::size_t p = 0;
    const char* buf = m.in.data();
    if (m.state == phase::upgrading) {
      const std::string_view head(buf, m.in_len);
      const std::size_t end = head.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (m.in_len > 16384) drop(m, "no end to the HTTP response head");
        continue;
      }
      if (head.substr(0, 12) != "HTTP/1.1 101") {
        drop(m, ("upgrade refused: " + std::string(head.substr(0, head.find("\r\n")))).c_str());
        return;
      }
      m.state = phase::joining;
      p = end + 4;
    }
    m.batch_max_seq = 0;
    while (m.state != phase::closed) {
      if (m.in_len - p < 2) break;
      const auto b0 = static_cast<unsigned char>(buf[p]);
      const auto b1 = static_cast<unsigned char>(buf[p + 1]);
      if (b1 & 0x80) {
        drop(m, "the server sent a masked frame");
        return;
      }
      std::size_t header = 2;
      std::uint64_t len = b1 & 0x7f;
      if (len == 126) {
        if (m.in_len - p < 4) break;
        len = (std::uint64_t{static_cast<unsigned char>(buf[p + 2])} << 8) | static_cast<unsigned char>(buf[p + 3]);
        header = 4;
      } else if (len == 127) {
        if (m.in_len - p < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(buf[p + 2 + i]);
        header = 10;
      }
      if (len > (64u << 20)) {
        drop(m, "a server frame over 64 MiB");
        return;
      }
      if (m.in_len - p - header < len) break;
      const std::string_view payload(buf + p + header, static_cast<std::size_t>(len));
      const unsigned opcode = b0 & 0x0f;
      const bool fin = (b0 & 0x80) != 0;
      p += header + static_cast<std::size_t>(len);
      if (opcode >= 8) {
        on_control(m, opcode, payload);
      } else if (opcode == 0 || !fin) {
        if (opcode != 0) m.fragments.clear();
        m.fragments.append(payload.data(), payload.size());
        if (fin) {
          const std::string whole = std::move(m.fragments);
          m.fragments.clear();
          on_message(m, whole, now);
        }
      } else {
        on_message(m, payload, now);
      }
    }
    if (m.state == phase::closed) return;
    if (m.batch_max_seq != 0) send_ack(m, m.batch_max_seq);
    if (p > 0) {
      std::memmove(m.in.data(), m.in.data() + p, m.in_len - p);
      m.in_len -= p;
    }
    if (static_cast<std::size_t>(n) < 16384) break;  // a short read: the socket is likely empty
  }
}

void generator::on_control(member& m, unsigned opcode, std::string_view payload) {
  if (opcode == 9) {  // ping: answer with a pong carrying the same payload
    send_frame(m, 10, payload);
  } else if (opcode == 8) {
    unsigned code = payload.size() >= 2
                        ? (static_cast<unsigned>(static_cast<unsigned char>(payload[0])) << 8) |
                              static_cast<unsigned char>(payload[1])
                        : 1005;
    ++t_.closes;
    fail("member " + std::to_string(m.index) + ": the server closed with " + std::to_string(code) + " " +
         std::string(payload.size() > 2 ? payload.substr(2) : std::string_view{}));
    drop(m, "close frame");
  }
}

void generator::on_message(member& m, std::string_view msg, std::uint64_t now) {
  frame_fields f;
  if (!scan_frame(msg, f) || f.tag.empty()) {
    ++t_.malformed;
    fail("a frame that is not an object with a _tag: " + std::string(msg.substr(0, 200)));
    return;
  }
  const std::string_view tag = f.tag;
  if (tag == "room.message") {
    on_delivery(m, f, msg, now);
  } else if (tag == "tool.ok") {
    on_answer(m, msg, true, now);
  } else if (tag == "tool.err") {
    on_answer(m, msg, false, now);
  } else if (tag == "hello.ok") {
    if (m.state != phase::joining || m.answers_expected_before_ready != 2) {
      ++t_.malformed;
      fail("an unexpected hello.ok");
    }
    m.answers_expected_before_ready = 1;
  } else if (tag == "hello.err" || tag == "system.error") {
    ++(tag == "hello.err" ? t_.hello_errors : t_.system_errors);
    fail("member " + std::to_string(m.index) + ": " + std::string(msg.substr(0, 300)));
  } else {
    ++t_.other_frames;  // room.event and whatever a later server adds
  }
}

void generator::on_delivery(member& m, const frame_fields& f, std::string_view msg, std::uint64_t now) {
  const std::uint64_t seq = f.seq;
  const std::string_view body = f.body;
  std::uint64_t stamp = 0, from = 0, n = 0;
  std::size_t p = 1;
  if (!f.has_seq || body.empty() || body[0] != 't' || !digits(body, p, stamp) || body.substr(p, 2) != ".m" ||
      !digits(body, p += 2, from) || body.substr(p, 2) != ".n" || !digits(body, p += 2, n) || f.room != o_.room ||
      from >= o_.members) {
    ++t_.malformed;
    fail("a room.message the generator did not send: " + std::string(msg.substr(0, 300)));
    return;
  }
  ++m.received;
  if (from == m.index) {
    ++t_.malformed;
    fail("a member received its own message (self-echo)");
  }
  if (seq <= m.last_seq) ++t_.dups;  // room seqs strictly increase for each receiver
  m.last_seq = std::max(m.last_seq, seq);
  std::uint64_t& last = m.last_from[from];
  if (n <= last) {
    ++t_.dups;
  } else {
    if (n != last + 1) t_.gaps += n - last - 1;
    last = n;
  }
  if (in_window(now)) {
    ++t_.deliveries;
    t_.latency.record(now > stamp ? now - stamp : 0);
  }
  if (o_.ack == options::ack_mode::every) {
    send_ack(m, seq);
  } else if (o_.ack == options::ack_mode::batch) {
    m.batch_max_seq = std::max(m.batch_max_seq, seq);
  }
}

void generator::on_answer(member& m, std::string_view msg, bool ok, std::uint64_t now) {
  if (!ok) {
    ++t_.tool_errors;
    std::string what = std::string(msg.substr(0, 300));
    try {
      const auto j = nlohmann::json::parse(msg);
      what = j.value("code", std::string("?")) + ": " + j.value("message", std::string());
    } catch (const nlohmann::json::exception&) {
    }
    fail("member " + std::to_string(m.index) + ": tool.err " + what);
  }
  if (m.state == phase::joining) {
    if (m.answers_expected_before_ready != 1) {
      ++t_.malformed;
      fail("a tool answer before hello.ok");
      return;
    }
    m.answers_expected_before_ready = 0;
    if (!ok) return;  // the member stays out; the run fails at the barrier
    try {
      (void)nlohmann::json::parse(msg).at("result");
    } catch (const nlohmann::json::exception& e) {
      ++t_.malformed;
      fail(std::string("join_room's tool.ok without a result: ") + e.what());
      return;
    }
    m.state = phase::ready;
    ++ready_;
    return;
  }
  if (m.answered == m.sent) {
    ++t_.malformed;
    fail("a tool answer to no request");
    return;
  }
  ++m.answered;
  if (ok) {
    ++m.accepted;
    if (in_window(now)) ++t_.accepted;
  }
  if (o_.closed_loop && sending()) send_message(m, now);
}

void generator::arm_timer(std::uint64_t at) {
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(at / 1'000'000'000ull);
  spec.it_value.tv_nsec = static_cast<long>(at % 1'000'000'000ull);
  if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  timerfd_settime(timer_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void generator::fire_due_sends(std::uint64_t now) {
  const auto period = static_cast<std::uint64_t>(1e9 / o_.rate);
  std::uint64_t next = UINT64_MAX;
  for (auto& mp : members_) {
    member& m = *mp;
    if (m.state != phase::ready) continue;
    // A late generator catches up, so the offered rate stays R; a lag of more than the
    // server's burst would show as RateLimitedError, which is reported.
    while (m.next_send <= now) {
      send_message(m, now);
      m.next_send += period;
    }
    next = std::min(next, m.next_send);
  }
  if (next != UINT64_MAX) arm_timer(next);
}

bool generator::drained() const {
  for (const auto& s : members_) {
    if (s->state == phase::ready && s->answered != s->sent) return false;
  }
  for (const auto& r : members_) {
    if (r->state != phase::ready) continue;
    for (const auto& s : members_) {
      if (s.get() != r.get() && r->last_from[s->index] < s->accepted) return false;
    }
  }
  return true;
}

int generator::run() {
  body_pad_.assign(o_.body, 'x');
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.ptr = nullptr;
  epoll_ctl(ep_, EPOLL_CTL_ADD, timer_, &tev);

  const std::uint64_t begun = now_ns();
  const auto deadline = begun + static_cast<std::uint64_t>(o_.timeout * 1e9);
  if (!connect_all()) return 1;
  std::uint64_t drain_end = 0;
  bool timed_out = false;
  std::vector<epoll_event> events(512);
  for (;;) {
    std::uint64_t now = now_ns();
    if (now >= deadline) {
      timed_out = true;
      fail("the run did not finish within --timeout");
      break;
    }
    if (!t_.first_error.empty() && !started_) break;  // a setup failure: nothing to measure
    if (!started_ && ready_ == o_.members) {
      started_ = true;
      window_start_ = now + static_cast<std::uint64_t>(o_.warmup * 1e9);
      window_end_ = window_start_ + static_cast<std::uint64_t>(o_.duration * 1e9);
      if (o_.closed_loop) {
        for (auto& m : members_)
          for (std::size_t k = 0; k < o_.in_flight; ++k) send_message(*m, now);
      } else {
        const double period = 1e9 / o_.rate;
        std::uniform_real_distribution<double> jitter(0.0, 1.0);
        for (auto& m : members_)
          m->next_send = now + static_cast<std::uint64_t>(
                                   period * (static_cast<double>(m->index) + jitter(rng_)) / static_cast<double>(o_.members));
        fire_due_sends(now);
      }
      flush_dirty();
    }
    if (started_ && !stopped_ && now >= window_end_) {
      stopped_ = true;
      drain_end = now + static_cast<std::uint64_t>(o_.drain * 1e9);
      itimerspec off{};
      timerfd_settime(timer_, 0, &off, nullptr);
    }
    if (stopped_ && (drained() || now >= drain_end)) break;
    if (started_ && ready_ < o_.members && !stopped_) {
      // a member was lost mid-run; its messages can never all arrive: stop now
      break;
    }

    std::uint64_t wake = deadline;
    if (started_ && !stopped_) wake = std::min(wake, window_end_);
    if (stopped_) wake = std::min(wake, drain_end);
    const int timeout_ms = static_cast<int>(std::min<std::uint64_t>((wake - now) / 1'000'000 + 1, 1000));
    const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      std::perror("load_generator: epoll_wait");
      return 1;
    }
    now = now_ns();
    bool timer_fired = false;
    for (int i = 0; i < n; ++i) {
      auto* m = static_cast<member*>(events[i].data.ptr);
      if (m == nullptr) {
        std::uint64_t expirations = 0;
        while (read(timer_, &expirations, sizeof expirations) > 0) {
        }
        timer_fired = true;
        continue;
      }
      if (m->state == phase::closed) continue;
      if (m->state == phase::connecting) {
        if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(*m);
        continue;
      }
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(*m, now);
      if (m->state != phase::closed && (events[i].events & EPOLLOUT)) flush(*m);
    }
    if (timer_fired && sending() && !o_.closed_loop) fire_due_sends(now);
    flush_dirty();
  }

  // Say goodbye properly (close 1000 ends the sessions at once) and hang up.
  for (auto& m : members_) {
    if (m->state == phase::closed) continue;
    send_frame(*m, 8, std::string_view("\x03\xe8", 2));
    flush(*m);
    if (m->fd >= 0) close(m->fd);
    m->state = phase::closed;
  }
  dirty_.clear();

  if (started_) {
    for (const auto& r : members_) {
      for (const auto& s : members_) {
        if (s.get() != r.get() && r->last_from[s->index] < s->accepted) t_.missing += s->accepted - r->last_from[s->index];
      }
    }
  } else if (t_.first_error.empty()) {
    fail("only " + std::to_string(ready_) + " of " + std::to_string(o_.members) + " members joined");
  }
  report(o_.duration, timed_out);
  const bool ok = t_.first_error.empty() && t_.gaps == 0 && t_.dups == 0 && t_.missing == 0 && started_;
  return ok ? 0 : 1;
}

void generator::report(double window_s, bool timed_out) {
  const double ms = 1e-6;
  const auto& h = t_.latency;
  const char* ack = o_.ack == options::ack_mode::every ? "every" : o_.ack == options::ack_mode::batch ? "batch" : "none";
  const bool ok = t_.first_error.empty() && t_.gaps == 0 && t_.dups == 0 && t_.missing == 0 && started_;
  std::uint64_t total_received = 0;  // warm-up and drain included, to divide by a server's CPU time
  for (const auto& m : members_) total_received += m->received;
  if (o_.json) {
    nlohmann::json j{{"mode", o_.closed_loop ? "closed-loop" : "rate"},
                     {"members", o_.members},
                     {"rate", o_.rate},
                     {"in_flight", o_.closed_loop ? o_.in_flight : 0},
                     {"ack", ack},
                     {"body", o_.body},
                     {"warmup_s", o_.warmup},
                     {"duration_s", window_s},
                     {"deliveries", t_.deliveries},
                     {"deliveries_total", total_received},
                     {"deliveries_per_s", static_cast<double>(t_.deliveries) / window_s},
                     {"messages_per_s", static_cast<double>(t_.accepted) / window_s},
                     {"p50_ms", static_cast<double>(h.quantile(0.50)) * ms},
                     {"p90_ms", static_cast<double>(h.quantile(0.90)) * ms},
                     {"p99_ms", static_cast<double>(h.quantile(0.99)) * ms},
                     {"max_ms", static_cast<double>(h.max()) * ms},
                     {"gaps", t_.gaps},
                     {"dups", t_.dups},
                     {"missing", t_.missing},
                     {"tool_errors", t_.tool_errors},
                     {"system_errors", t_.system_errors},
                     {"hello_errors", t_.hello_errors},
                     {"closes", t_.closes},
                     {"disconnects", t_.disconnects},
                     {"malformed", t_.malformed},
                     {"timed_out", timed_out},
                     {"first_error", t_.first_error},
                     {"ok", ok}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    if (o_.closed_loop)
      std::printf("load_generator: %zu members, closed loop with %zu in flight each, body %zu B, acks %s\n",
                  o_.members, o_.in_flight, o_.body, ack);
    else
      std::printf("load_generator: %zu members x %g msgs/s, body %zu B, acks %s\n", o_.members, o_.rate, o_.body, ack);
    std::printf("  window:     %.1f s after %.1f s of warm-up\n", window_s, o_.warmup);
    std::printf("  messages:   %.0f/s accepted\n", static_cast<double>(t_.accepted) / window_s);
    std::printf("  deliveries: %" PRIu64 " = %.0f/s\n", t_.deliveries, static_cast<double>(t_.deliveries) / window_s);
    std::printf("  latency:    p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (send -> receive)\n",
                static_cast<double>(h.quantile(0.50)) * ms, static_cast<double>(h.quantile(0.90)) * ms,
                static_cast<double>(h.quantile(0.99)) * ms, static_cast<double>(h.max()) * ms);
    std::printf("  checks:     gaps %" PRIu64 ", dups %" PRIu64 ", missing %" PRIu64 ", tool errors %" PRIu64
                ", system errors %" PRIu64 ", hello errors %" PRIu64 ", closes %" PRIu64 ", disconnects %" PRIu64
                ", malformed %" PRIu64 "\n",
                t_.gaps, t_.dups, t_.missing, t_.tool_errors, t_.system_errors, t_.hello_errors, t_.closes,
                t_.disconnects, t_.malformed);
    if (!t_.first_error.empty()) std::printf("  first error: %s\n", t_.first_error.c_str());
    std::printf("  result:     %s\n", ok ? "ok" : "FAILED");
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  generator g(parse_options(argc, argv));
  return g.run();
}
