// SPDX-License-Identifier: MIT
// The real parley-tools server driven by parley::client (include/parley/client.hpp) over POSIX sockets.
//
// PARLEY_TOOLS names the executable (ctest sets it). Every wait is bounded by poll()
// timeouts and every server is killed by its destructor, so nothing here can hang CI.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <parley/client.hpp>
#include <parley/http.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto io_timeout = 5s;

[[noreturn]] void fail_with(const std::string& why) { throw std::runtime_error(why); }

std::string tools_binary() {
  const char* path = std::getenv("PARLEY_TOOLS");
  if (!path || !*path) fail_with("set PARLEY_TOOLS to the parley-tools executable (ctest does this)");
  return path;
}

int remaining_ms(clock_type::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "parley-it-cpp-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) fail_with("mkdtemp failed");
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

// Runs parley-tools with `args` in a clean environment; returns its exit status and stdout.
std::pair<int, std::string> run_tool(const temp_dir& dir, const std::vector<std::string>& args) {
  int out[2];
  if (::pipe(out) != 0) fail_with("pipe failed");
  const std::string binary = tools_binary();
  const pid_t pid = ::fork();
  if (pid < 0) fail_with("fork failed");
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    const int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 2);
    ::setenv("HOME", dir.path.c_str(), 1);
    ::setenv("XDG_DATA_HOME", (dir.path / "xdg").c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  const auto deadline = clock_type::now() + 10s;
  char buf[4096];
  for (;;) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0) break;
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (clock_type::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

// `parley-tools server --port 0`, killed on destruction: SIGTERM, then SIGKILL after 3 s.
class server_process {
 public:
  server_process(const temp_dir& dir, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"server", "--port", "0", "--db", (dir.path / "parley.db").string(), "--log-level",
                                  "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    log_ = dir.path / ("server-" + std::to_string(++started_) + ".log");
    int out[2];
    if (::pipe(out) != 0) fail_with("pipe failed");
    const std::string binary = tools_binary();
    pid_ = ::fork();
    if (pid_ < 0) fail_with("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      const int err = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (err >= 0) ::dup2(err, 2);
      ::setenv("HOME", dir.path.c_str(), 1);
      ::setenv("XDG_DATA_HOME", (dir.path / "xdg").c_str(), 1);
      std::vector<char*> argv{const_cast<char*>(binary.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    const auto deadline = clock_type::now() + 10s;
    while (line.find('\n') == std::string::npos) {
      pollfd p{out[0], POLLIN, 0};
      char buf[256];
      if (::poll(&p, 1, remaining_ms(deadline)) <= 0) break;
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    const auto colon = line.rfind(':');
    if (line.rfind("listening ws", 0) != 0 || colon == std::string::npos) {
      stop();
      fail_with("the server did not start: stdout " + line + "\nstderr:\n" + log_text());
    }
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
  }
  ~server_process() { stop(); }
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string log_text() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Returns the exit status, or -1 if it had to be killed.
  int stop() {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, SIGTERM);
    const auto deadline = clock_type::now() + 3s;
    int status = 0;
    for (;;) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        break;
      }
      if (clock_type::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        exit_status_ = -1;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
    return exit_status_;
  }

 private:
  static inline int started_ = 0;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  int exit_status_ = -1;
  fs::path log_;
};

int connect_tcp(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail_with("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    fail_with(std::string("connect failed: ") + std::strerror(errno));
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) fail_with("send failed");
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads what is there, waiting up to the deadline; empty on EOF or timeout (then `eof` says which).
std::string read_some(int fd, clock_type::time_point deadline, bool& eof) {
  eof = false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return {};
  char buf[65536];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  if (n <= 0) {
    eof = true;
    return {};
  }
  return std::string(buf, static_cast<std::size_t>(n));
}

// One plain HTTP exchange: the status and the body.
std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target) {
  const int fd = connect_tcp(port);
  write_all(fd, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  parley::http_response_parser parser;
  std::string body;
  int status = 0;
  const auto deadline = clock_type::now() + io_timeout;
  bool eof = false;
  while (!eof && clock_type::now() < deadline) {
    std::string bytes = read_some(fd, deadline, eof);
    if (status == 0 && !bytes.empty()) {
      auto r = parser.feed(bytes);
      if (r.status == parley::http_parse_status::failed) break;
      if (r.status == parley::http_parse_status::complete) {
        status = parser.take_response().status;
        body += bytes.substr(r.consumed);
      }
    } else {
      body += bytes;
    }
  }
  ::close(fd);
  return {status, body};
}

std::uint64_t metric(std::uint16_t port, const std::string& name) {
  const auto [status, body] = http_get(port, "/metrics");
  REQUIRE(status == 200);
  const std::string key = "\nparley_" + name + " ";
  const auto at = body.find(key);
  REQUIRE(at != std::string::npos);
  return std::stoull(body.substr(at + key.size()));
}

parley::random_source test_random() {
  auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [engine](unsigned char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>((*engine)());
  };
}

// parley::client over a POSIX socket: the loop a real program runs (poll the client, do
// what it says, wait for the socket or the client's deadline), bounded by io_timeout.
// Events that arrive while waiting for something else are kept in order for later.
class client {
 public:
  explicit client(std::uint16_t port, parley::client_config config = {})
      : port_(port), client_(with_host(std::move(config), port), test_random()) {}
  ~client() { drop(); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // hello.ok of the first session this client opens.
  parley::hello_ok_frame hello_ok() {
    next([](const parley::client_event& e) {
      if (auto* refused = std::get_if<parley::hello_refused>(&e)) fail_with("hello refused: " + refused->code);
      return std::holds_alternative<parley::session_opened>(e);
    });
    return *client_.session();
  }

  // The code of a refused hello (or of a refused resume).
  std::string refused() {
    auto e = next([](const parley::client_event& e) {
      return std::holds_alternative<parley::hello_refused>(e) || std::holds_alternative<parley::resume_refused>(e);
    });
    if (auto* r = std::get_if<parley::hello_refused>(&e)) return r->code;
    return std::get<parley::resume_refused>(e).code;
  }

  // A tool call and its outcome.
  parley::client_event call(parley::tool_args args) {
    const parley::call_id id = client_.call(std::move(args));
    return next([&](const parley::client_event& e) {
      if (auto* ok = std::get_if<parley::call_succeeded>(&e)) return ok->call == id;
      if (auto* failed = std::get_if<parley::call_failed>(&e)) return failed->call == id;
      return false;
    });
  }

  parley::json ok(parley::tool_args args) {
    auto e = call(std::move(args));
    if (auto* failed = std::get_if<parley::call_failed>(&e)) fail_with("tool.err " + failed->code + ": " + failed->message);
    return std::get<parley::call_succeeded>(e).result;
  }

  parley::call_failed err(parley::tool_args args) {
    auto e = call(std::move(args));
    REQUIRE(std::holds_alternative<parley::call_failed>(e));
    const auto failed = std::get<parley::call_failed>(e);
    REQUIRE(failed.why == parley::call_failure::refused);
    return failed;
  }

  parley::room_message_frame message() {
    return std::get<parley::room_message_frame>(
        next([](const parley::client_event& e) { return std::holds_alternative<parley::room_message_frame>(e); }));
  }

  void ack(const std::string& room, std::uint64_t seq) { client_.ack(room, seq); }

  // Ends the session with 1000 and returns the code of the server's answering close.
  std::uint16_t close() {
    client_.close(now());
    return wait_close();
  }

  // Runs until the connection ends; the code of the server's close frame, 1006 without one.
  std::uint16_t wait_close() {
    auto e = next([](const parley::client_event& e) { return std::holds_alternative<parley::connection_closed>(e); });
    drop();
    return std::get<parley::connection_closed>(e).close_code.value_or(parley::ws_status::abnormal);
  }

  // The TCP connection ends without a close frame, and nothing more is driven.
  void drop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    dropped_ = true;
  }

  // Messages (and system errors) received and not taken.
  [[nodiscard]] std::size_t queued() const {
    return static_cast<std::size_t>(std::count_if(queue_.begin(), queue_.end(), [](const parley::client_event& e) {
      return std::holds_alternative<parley::room_message_frame>(e) || std::holds_alternative<parley::server_error>(e);
    }));
  }
  [[nodiscard]] std::optional<parley::session_snapshot> snapshot() const { return client_.snapshot(); }

 private:
  static parley::client_config with_host(parley::client_config config, std::uint16_t port) {
    config.host = "127.0.0.1:" + std::to_string(port);
    return config;
  }

  static parley::steady_time now() {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now());
  }

  template <class Pred>
  parley::client_event next(Pred pred) {
    const auto deadline = clock_type::now() + io_timeout;
    for (bool more = true;;) {
      for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (pred(*it)) {
          parley::client_event e = std::move(*it);
          queue_.erase(it);
          return e;
        }
      }
      if (dropped_) fail_with("the connection was dropped while waiting for an event");
      if (!more) fail_with("timed out waiting for an event");
      more = step(deadline);
    }
  }

  void lost() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    client_.disconnected(now());
  }

  // One round of the loop; false once the deadline has passed or the client finished.
  bool step(clock_type::time_point deadline) {
    auto a = client_.poll(now());
    for (auto& e : a.events) queue_.push_back(std::move(e));
    if (!a.send.empty() && fd_ >= 0) {
      std::string_view bytes = a.send;
      while (!bytes.empty()) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        bytes.remove_prefix(static_cast<std::size_t>(n));
      }
      if (!bytes.empty()) lost();
    }
    if (a.close) lost();
    if (a.dial) {
      fd_ = connect_tcp(port_);
      client_.connected(now());
    }
    if (a.finished) return false;
    if (!a.events.empty() || a.dial || a.close || !a.send.empty()) return true;  // poll again before waiting
    auto until = deadline;
    if (a.deadline) until = std::min(until, clock_type::now() + (*a.deadline - now()));
    if (fd_ < 0) {
      std::this_thread::sleep_until(until);
    } else {
      bool eof = false;
      const std::string bytes = read_some(fd_, until, eof);
      if (eof) lost();
      else if (!bytes.empty()) client_.receive(bytes, now());
    }
    return clock_type::now() < deadline;
  }

  std::uint16_t port_;
  parley::client client_;
  int fd_ = -1;
  bool dropped_ = false;
  std::deque<parley::client_event> queue_;
};

parley::join_room_args join(std::string room, std::optional<std::string> nickname = std::nullopt) {
  return parley::join_room_args{std::move(room), std::move(nickname)};
}
parley::send_message_args say(std::string room, std::string body, std::optional<std::string> key = std::nullopt) {
  return parley::send_message_args{std::move(room), std::move(body), std::move(key)};
}
// A client that begins by resuming `s`, having passed on `last_seqs` in its rooms.
parley::client_config resuming(const parley::session_snapshot& s, std::map<std::string, std::uint64_t> last_seqs) {
  parley::client_config config;
  config.resume_from = parley::session_snapshot{s.session_id, s.reconnect_token, {}};
  for (const auto& [room, seq] : last_seqs) config.resume_from->rooms[room] = {"", seq};
  return config;
}

}  // namespace

TEST_CASE("parley::client's upgrade and hello get hello.ok; /healthz, /metrics and the page answer") {
  temp_dir dir;
  server_process server(dir);
  client c(server.port());
  const auto ok = c.hello_ok();
  CHECK(ok.session_id.size() == 36);
  CHECK(ok.reconnect_token.size() >= 32);
  CHECK(ok.server_version == "0.1.0");
  CHECK(http_get(server.port(), "/healthz") == std::pair<int, std::string>{200, "ok\n"});
  CHECK(http_get(server.port(), "/nope").first == 404);
  CHECK(http_get(server.port(), "/").first == 200);  // a plain GET of "/" is the page for people
  CHECK(metric(server.port(), "sessions") == 1);
  CHECK(c.close() == parley::ws_status::normal);
  CHECK(server.stop() == 0);
}

TEST_CASE("seq per room, delivery to the others, no self-echo, case-insensitive nicknames") {
  temp_dir dir;
  server_process server(dir);
  client alice(server.port()), bob(server.port());
  alice.hello_ok();
  bob.hello_ok();
  CHECK(alice.ok(join("lobby", "Alice"))["nickname"] == "Alice");
  const auto taken = bob.err(join("lobby", "aLICE"));
  CHECK(taken.code == "NicknameTakenError");
  CHECK(bob.ok(join("lobby", "bob"))["membersCount"] == 2);
  const auto auto_nick = bob.ok(join("side"))["nickname"].get<std::string>();
  CHECK(parley::validate_nickname(auto_nick));

  std::vector<std::uint64_t> seqs;
  for (const char* body : {"one", "two", "three"}) seqs.push_back(alice.ok(say("lobby", body))["seq"]);
  CHECK(seqs == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(bob.ok(say("side", "elsewhere"))["seq"] == 1);
  for (std::uint64_t want = 1; want <= 3; ++want) {
    const auto m = bob.message();
    CHECK(m.room == "lobby");
    CHECK(m.seq == want);
    CHECK(m.from_nickname == "Alice");
  }
  alice.ok(parley::list_rooms_args{});
  CHECK(alice.queued() == 0);  // no echo of her own three

  const std::string s32(32, 's');
  CHECK(alice.ok(join(s32))["room"] == s32);
  const auto long_room = alice.err(join(s32 + "s"));
  CHECK(long_room.code == "InvalidArgumentError");
  CHECK(long_room.details["field"] == "room");
  alice.close();
  bob.close();
}

TEST_CASE("bodies: 8192 UTF-8 bytes pass, 8193 are InvalidArgumentError; clientMsgId makes a resend idempotent") {
  temp_dir dir;
  server_process server(dir);
  client alice(server.port()), bob(server.port());
  alice.hello_ok();
  bob.hello_ok();
  alice.ok(join("r", "alice"));
  bob.ok(join("r", "bob"));
  std::string full;
  for (int i = 0; i < 2048; ++i) full += "\xF0\x9F\x98\x80";  // 2048 four-byte emoji
  REQUIRE(full.size() == 8192);
  alice.ok(say("r", full));
  CHECK(bob.message().body == full);
  const auto over = alice.err(say("r", full + "x"));
  CHECK(over.code == "InvalidArgumentError");
  CHECK(over.details == parley::json{{"field", "body"}, {"rule", "maxBytes 8192"}});

  const auto first = alice.ok(say("r", "once", "key-1"));
  const auto again = alice.ok(say("r", "once", "key-1"));
  CHECK(first == again);
  CHECK(bob.message().seq == first["seq"].get<std::uint64_t>());
  bob.ok(parley::list_rooms_args{});
  CHECK(bob.queued() == 0);
  alice.close();
  bob.close();
}

TEST_CASE("an abrupt drop then resume replays exactly what was not acked; 1000 ends the session; 4001 and 4002") {
  temp_dir dir;
  server_process server(dir);
  client alice(server.port());
  alice.hello_ok();
  alice.ok(join("r", "alice"));
  parley::session_snapshot bob_session;
  {
    client bob(server.port());
    bob.hello_ok();
    bob.ok(join("r", "bob"));
    for (const char* body : {"1", "2"}) alice.ok(say("r", body));
    CHECK(bob.message().seq == 1);
    CHECK(bob.message().seq == 2);
    bob.ack("r", 1);
    bob.ok(parley::list_rooms_args{});
    bob_session = *bob.snapshot();
    bob.drop();  // no close frame
  }
  for (const char* body : {"3", "4"}) alice.ok(say("r", body));

  {
    auto wrong_token = bob_session;
    wrong_token.reconnect_token[0] = wrong_token.reconnect_token[0] == 'a' ? 'b' : 'a';
    client wrong(server.port(), resuming(wrong_token, {}));
    CHECK(wrong.refused() == "BadReconnectTokenError");
    CHECK(wrong.wait_close() == 4002);
  }
  client bob(server.port(), resuming(bob_session, {{"r", 1}}));
  const auto resumed = bob.hello_ok();
  CHECK(resumed.session_id == bob_session.session_id);
  for (std::uint64_t want = 2; want <= 4; ++want) CHECK(bob.message().seq == want);
  bob.ok(parley::list_rooms_args{});
  CHECK(bob.queued() == 0);

  CHECK(bob.close() == parley::ws_status::normal);
  // Ended at once: gone from the room and not resumable.
  const auto who = alice.ok(parley::who_is_here_args{"r"});
  CHECK(who["nicknames"] == parley::json::array({"alice"}));
  client late(server.port(), resuming(bob_session, {}));
  CHECK(late.refused() == "UnknownSessionError");
  CHECK(late.wait_close() == 4001);
  alice.close();
}

TEST_CASE("a public bind: no token is 4000, the token in hello or in Authorization: Bearer works") {
  temp_dir dir;
  const auto db = (dir.path / "parley.db").string();
  CHECK(run_tool(dir, {"server", "--bind", "0.0.0.0", "--port", "0", "--db", db}).first == 2);
  const auto [status, out] = run_tool(dir, {"token", "issue", "--label", "cpp", "--db", db});
  REQUIRE(status == 0);
  const std::string token = out.substr(0, out.find('\n'));
  server_process server(dir, {"--bind", "0.0.0.0"});

  client none(server.port());
  CHECK(none.refused() == "AuthRequiredError");
  CHECK(none.wait_close() == 4000);

  parley::client_config with_token;
  with_token.token = token;
  client in_hello(server.port(), with_token);
  in_hello.hello_ok();
  parley::client_config with_header;
  with_header.headers = parley::http_headers{{"Authorization", "Bearer " + token}};
  client in_header(server.port(), with_header);
  in_header.hello_ok();
  in_hello.close();
  in_header.close();
}
