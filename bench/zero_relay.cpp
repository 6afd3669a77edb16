// SPDX-License-Identifier: MIT
// zero_relay: a WebSocket relay that does no work, the physical limit the load generator can reach on this machine.
//
// Usage: zero_relay [--host 127.0.0.1] [--port 0]     prints `listening ws://HOST:PORT` as parley-tools does
//
// One epoll thread. It answers the HTTP upgrade, answers hello with a fixed hello.ok and
// every tool frame with a fixed tool.ok, and copies each tool.send_message to every other
// connection that has sent a tool.join_room, as a room.message-shaped frame carrying the
// sender's room and body and a relay-global seq. Acks and everything else are read and
// dropped. No JSON is parsed: the relay finds `"_tag"`, `"room"` and `"body"` by scanning.
// The delivery frames of one epoll wakeup (every read it reported) are built once, into
// one buffer, in which each sender's frames are one segment; at the end of the wakeup each
// joined connection gets, in one writev, its own answers and that buffer minus its own
// segment (no self-echo); what the socket does not take waits in the connection's buffer
// for EPOLLOUT.
// Nothing is bounded but a connection's unwritten output (1 MiB as parley's, then it is dropped):
// rooms, nicknames, rate limits, replay rings, seqs per room, acks and auth do not exist.
#include <parley/http.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t max_unwritten = 1u << 20;  // parley-tools' default --max-queue-bytes, where it closes 4008
constexpr std::size_t max_frame = 1u << 20;

// Server frames are never masked: a 2-, 4- or 10-byte header, then the payload.
void append_header(std::string& out, unsigned opcode, std::size_t n) {
  out += static_cast<char>(0x80 | opcode);
  if (n < 126) {
    out += static_cast<char>(n);
  } else if (n < 65536) {
    out += static_cast<char>(126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(127);
    for (int s = 56; s >= 0; s -= 8) out += static_cast<char>((static_cast<std::uint64_t>(n) >> s) & 0xff);
  }
}

std::string text_frame(std::string_view payload) {
  std::string out;
  append_header(out, 1, payload.size());
  out += payload;
  return out;
}

const std::string hello_ok = text_frame(
    R"({"_tag":"hello.ok","reconnectToken":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",)"
    R"("serverVersion":"0.1.0","sessionId":"00000000-0000-4000-8000-000000000000"})");
const std::string join_ok = text_frame(
    R"({"_tag":"tool.ok","requestId":"r","result":{"membersCount":1,"nickname":"relay","role":"member",)"
    R"("room":"bench","visibility":"public"}})");
const std::string send_ok = text_frame(
    R"({"_tag":"tool.ok","requestId":"r","result":{"messageId":"00000000-0000-7000-8000-000000000000",)"
    R"("room":"bench","sentAt":"2026-01-01T00:00:00.000Z","seq":1}})");

constexpr std::string_view delivery_head = R"({"_tag":"room.message","room":")";
constexpr std::string_view delivery_seq = R"(","seq":)";
constexpr std::string_view delivery_middle =
    R"(,"messageId":"00000000-0000-7000-8000-000000000000","fromNickname":"relay","fromKind":"agent",)"
    R"("sentAt":"2026-01-01T00:00:00.000Z","body":")";
constexpr std::string_view delivery_tail = R"("})";

// The raw (still escaped) string value of a key, or false. The end is the first quote not
// escaped by a backslash.
bool raw_string(std::string_view json, std::string_view quoted_key, std::string_view& out) {
  for (std::size_t at = json.find(quoted_key); at != std::string_view::npos; at = json.find(quoted_key, at + 1)) {
    std::size_t p = at + quoted_key.size();
    while (p < json.size() && json[p] == ' ') ++p;
    if (p >= json.size() || json[p] != ':') continue;
    ++p;
    while (p < json.size() && json[p] == ' ') ++p;
    if (p >= json.size() || json[p] != '"') return false;
    const std::size_t start = ++p;
    while (p < json.size()) {
      if (json[p] == '\\') {
        p += 2;
      } else if (json[p] == '"') {
        out = json.substr(start, p - start);
        return true;
      } else {
        ++p;
      }
    }
    return false;
  }
  return false;
}

struct connection {
  int fd = -1;
  bool upgraded = false;
  bool joined = false;
  std::size_t joined_slot = 0;
  std::vector<char> in = std::vector<char>(1 << 16);
  std::size_t in_len = 0;
  std::string fragments;
  std::string out;
  std::size_t out_off = 0;
  bool waiting_writable = false;  // the socket was full: append, do not write, until EPOLLOUT
  bool closing = false;
  bool dirty = false;  // answers appended to `out` during this wakeup
  std::uint64_t segment_wakeup = 0;  // the wakeup whose batch holds [segment_begin, segment_end) from us
  std::size_t segment_begin = 0, segment_end = 0;
};

class relay {
 public:
  int run(const std::string& host, std::uint16_t port);

 private:
  void accept_all();
  void on_readable(connection& c);
  bool on_http(connection& c, std::size_t& p);
  void on_message(connection& c, std::string_view msg);
  void answer(connection& c, std::string_view bytes);
  void write_out(connection& c, std::string_view a = {}, std::string_view b = {});
  void flush(connection& c);
  void end_of_wakeup();
  void watch_writable(connection& c, bool on);
  void drop(connection& c);

  int ep_ = -1;
  int listener_ = -1;
  std::vector<connection*> joined_;
  std::string batch_;         // this wakeup's delivery frames, the same bytes for every recipient
  std::uint64_t wakeup_ = 1;  // counts epoll wakeups, to tell this wakeup's segments from old ones
  std::uint64_t seq_ = 0;     // relay-global
  std::vector<connection*> dirty_;
  std::vector<connection*> dead_;
};

void relay::watch_writable(connection& c, bool on) {
  if (c.waiting_writable == on) return;
  c.waiting_writable = on;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
}

void relay::drop(connection& c) {
  if (c.fd < 0) return;
  if (c.joined) {
    joined_[c.joined_slot] = joined_.back();
    joined_[c.joined_slot]->joined_slot = c.joined_slot;
    joined_.pop_back();
    c.joined = false;
  }
  epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
  close(c.fd);
  c.fd = -1;
  dead_.push_back(&c);  // freed after the event loop's batch, which may still point at it
}

void relay::answer(connection& c, std::string_view bytes) {
  c.out.append(bytes.data(), bytes.size());
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(&c);
  }
}

// Writes what `out` holds, then a, then b, in one writev; keeps in `out` what the socket
// did not take and waits for EPOLLOUT. While waiting it only appends.
void relay::write_out(connection& c, std::string_view a, std::string_view b) {
  if (c.fd < 0) return;
  const std::size_t pending = c.out.size() - c.out_off;
  if (c.waiting_writable) {
    if (pending + a.size() + b.size() > max_unwritten) {
      std::fprintf(stderr, "zero_relay: dropping a connection with over %zu unwritten bytes\n", max_unwritten);
      drop(c);
      return;
    }
    c.out += a;
    c.out += b;
    return;
  }
  iovec iov[3];
  int k = 0;
  auto add = [&](const char* p, std::size_t n) {
    if (n != 0) iov[k++] = iovec{const_cast<char*>(p), n};
  };
  add(c.out.data() + c.out_off, pending);
  add(a.data(), a.size());
  add(b.data(), b.size());
  if (k == 0) {
    if (c.closing) drop(c);
    return;
  }
  ssize_t n;
  do {
    n = ::writev(c.fd, iov, k);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    drop(c);
    return;
  }
  std::size_t written = n > 0 ? static_cast<std::size_t>(n) : 0;
  const std::size_t from_out = std::min(written, pending);
  c.out_off += from_out;
  written -= from_out;
  for (std::string_view part : {a, b}) {
    const std::size_t from_part = std::min(written, part.size());
    written -= from_part;
    c.out.append(part.data() + from_part, part.size() - from_part);
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
    if (c.closing) drop(c);
    return;
  }
  if (c.out_off > (1u << 20)) {  // keep the buffer from growing without end under a steady backlog
    c.out.erase(0, c.out_off);
    c.out_off = 0;
  }
  watch_writable(c, true);
}

void relay::flush(connection& c) {
  watch_writable(c, false);
  write_out(c);
}

// One write per connection per wakeup: every joined connection gets the batch minus its
// own segment, behind its answers; the others just their answers.
void relay::end_of_wakeup() {
  if (!batch_.empty()) {
    const std::string_view all(batch_);
    for (std::size_t i = 0; i < joined_.size(); ++i) {
      connection* r = joined_[i];
      r->dirty = false;
      if (r->segment_wakeup == wakeup_) {
        write_out(*r, all.substr(0, r->segment_begin), all.substr(r->segment_end));
      } else {
        write_out(*r, all);
      }
      if (r->fd < 0) --i;  // drop() moved the last joined connection into slot i
    }
  }
  for (connection* c : dirty_) {
    if (c->dirty && c->fd >= 0) {
      c->dirty = false;
      write_out(*c);
    }
  }
  dirty_.clear();
  batch_.clear();
  ++wakeup_;
}

bool relay::on_http(connection& c, std::size_t& p) {
  const std::string_view head(c.in.data(), c.in_len);
  const std::size_t end = head.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (c.in_len > 16384) drop(c);
    return false;
  }
  std::string lower(head.substr(0, end + 2));
  for (char& ch : lower) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  const std::size_t at = lower.find("\r\nsec-websocket-key:");
  if (at == std::string::npos) {
    answer(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    c.closing = true;
    return false;
  }
  std::size_t v = at + std::strlen("\r\nsec-websocket-key:");
  const std::size_t eol = lower.find("\r\n", v);
  while (v < eol && (head[v] == ' ' || head[v] == '\t')) ++v;
  std::size_t ve = eol;
  while (ve > v && (head[ve - 1] == ' ' || head[ve - 1] == '\t')) --ve;
  answer(c, parley::build_switching_protocols(parley::websocket_accept(head.substr(v, ve - v))));
  c.upgraded = true;
  p = end + 4;
  return true;
}

void relay::on_message(connection& c, std::string_view msg) {
  std::string_view tag;
  if (!raw_string(msg, "\"_tag\"", tag)) return;
  if (tag == "ack") return;
  if (tag == "hello") {
    answer(c, hello_ok);
    return;
  }
  if (tag.substr(0, 5) != "tool.") return;
  if (tag != "tool.send_message") {
    if (tag == "tool.join_room" && !c.joined) {
      c.joined = true;
      c.joined_slot = joined_.size();
      joined_.push_back(&c);
    }
    answer(c, join_ok);
    return;
  }
  std::string_view room, body;
  if (!raw_string(msg, "\"room\"", room) || !raw_string(msg, "\"body\"", body)) {
    answer(c, send_ok);  // a zero-work relay does not validate
    return;
  }
  const std::string seq = std::to_string(++seq_);
  const std::size_t n = delivery_head.size() + room.size() + delivery_seq.size() + seq.size() +
                        delivery_middle.size() + body.size() + delivery_tail.size();
  append_header(batch_, 1, n);
  batch_ += delivery_head;
  batch_ += room;
  batch_ += delivery_seq;
  batch_ += seq;
  batch_ += delivery_middle;
  batch_ += body;
  batch_ += delivery_tail;
  answer(c, send_ok);
}

void relay::on_readable(connection& c) {
  if (c.in.size() - c.in_len < 16384) c.in.resize(c.in.size() * 2);
  ssize_t n;
  do {
    n = ::recv(c.fd, c.in.data() + c.in_len, c.in.size() - c.in_len, 0);
  } while (n < 0 && errno == EINTR);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
    drop(c);
    return;
  }
  if (n < 0) return;
  c.in_len += static_cast<std::size_t>(n);
  std::size_t p = 0;
  if (!c.upgraded && !on_http(c, p)) return;
  const std::size_t segment_begin = batch_.size();
  char* buf = c.in.data();
  while (c.fd >= 0 && !c.closing && c.in_len - p >= 2) {
    const auto b0 = static_cast<unsigned char>(buf[p]);
    const auto b1 = static_cast<unsigned char>(buf[p + 1]);
    if (!(b1 & 0x80)) {  // client frames must be masked
      drop(c);
      return;
    }
    std::size_t header = 6;
    std::uint64_t len = b1 & 0x7f;
    if (len == 126) {
      if (c.in_len - p < 8) break;
      len = (std::uint64_t{static_cast<unsigned char>(buf[p + 2])} << 8) | static_cast<unsigned char>(buf[p + 3]);
      header = 8;
    } else if (len == 127) {
      if (c.in_len - p < 14) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(buf[p + 2 + i]);
      header = 14;
    }
    if (len > max_frame) {
      drop(c);
      return;
    }
    if (c.in_len - p < header + len) break;
    const char* mask = buf + p + header - 4;
    char* payload = buf + p + header;
    for (std::size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
    const std::string_view msg(payload, static_cast<std::size_t>(len));
    const unsigned opcode = b0 & 0x0f;
    const bool fin = (b0 & 0x80) != 0;
    p += header + static_cast<std::size_t>(len);
    if (opcode == 8) {  // close: echo it and hang up once written
      std::string echo;
      append_header(echo, 8, std::min<std::size_t>(msg.size(), 2));
      echo.append(msg.data(), std::min<std::size_t>(msg.size(), 2));
      answer(c, echo);
      c.closing = true;
    } else if (opcode == 9) {
      std::string pong;
      append_header(pong, 10, msg.size());
      pong += msg;
      answer(c, pong);
    } else if (opcode == 10) {
    } else if (opcode == 0 || !fin) {
      if (opcode != 0) c.fragments.clear();
      c.fragments += msg;
      if (fin) {
        const std::string whole = std::move(c.fragments);
        c.fragments.clear();
        on_message(c, whole);
      }
    } else {
      on_message(c, msg);
    }
  }
  if (batch_.size() != segment_begin) {
    c.segment_wakeup = wakeup_;
    c.segment_begin = segment_begin;
    c.segment_end = batch_.size();
  }
  if (c.fd < 0) return;
  std::memmove(c.in.data(), c.in.data() + p, c.in_len - p);
  c.in_len -= p;
}

void relay::accept_all() {
  for (;;) {
    const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN, or a transient error (EMFILE...) that a later wakeup retries
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new connection;
    c->fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }
}

int relay::run(const std::string& host, std::uint16_t port) {
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "zero_relay: --host must be an IPv4 address\n");
    return 2;
  }
  if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener_, 1024) != 0) {
    std::perror("zero_relay: bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  const int sfd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);

  ep_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &listener_;
  epoll_ctl(ep_, EPOLL_CTL_ADD, listener_, &ev);
  ev.data.ptr = nullptr;
  epoll_ctl(ep_, EPOLL_CTL_ADD, sfd, &ev);

  std::printf("listening ws://%s:%u\n", host.c_str(), static_cast<unsigned>(ntohs(addr.sin_port)));
  std::fflush(stdout);

  std::vector<epoll_event> events(512);
  for (;;) {
    const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno != EINTR) {
      std::perror("zero_relay: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      void* ptr = events[i].data.ptr;
      if (ptr == nullptr) return 0;  // SIGINT or SIGTERM
      if (ptr == &listener_) {
        accept_all();
        continue;
      }
      auto& c = *static_cast<connection*>(ptr);
      if (c.fd < 0) continue;
      if (events[i].events & EPOLLOUT) flush(c);
      if (c.fd >= 0 && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
    }
    end_of_wakeup();
    for (connection* c : dead_) delete c;
    dead_.clear();
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  long port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--host" && i + 1 < argc) {
      host = argv[++i];
    } else if (a == "--port" && i + 1 < argc) {
      port = std::strtol(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: zero_relay [--host IPV4] [--port N]\n");
      return 2;
    }
  }
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "zero_relay: --port must be 0..65535\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  relay r;
  return r.run(host, static_cast<std::uint16_t>(port));
}
