// SPDX-License-Identifier: MIT
// The real parley-tools server driven by parley's own client codec (http.hpp, websocket.hpp in role::client, wire.hpp) over POSIX sockets.
//
// PARLEY_TOOLS names the executable (ctest sets it). Every wait is bounded by poll()
// timeouts and every server is killed by its destructor, so nothing here can hang CI.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <parley/http.hpp>
#include <parley/websocket.hpp>
#include <parley/wire.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
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

// A Parley client made of the core's codecs. Frames that arrive while waiting for
// something else are kept in order for later.
class client {
 public:
  explicit client(std::uint16_t port, const parley::http_headers& extra = {})
      : random_(test_random()), ws_(parley::role::client, random_) {
    fd_ = connect_tcp(port);
    const std::string key = parley::make_websocket_key(random_);
    const auto request = parley::build_upgrade_request("127.0.0.1:" + std::to_string(port), "/", key, extra);
    REQUIRE(request);
    write_all(fd_, *request);
    parley::http_response_parser parser;
    const auto deadline = clock_type::now() + io_timeout;
    for (;;) {
      bool eof = false;
      const std::string bytes = read_some(fd_, deadline, eof);
      if (bytes.empty()) fail_with("no upgrade answer");
      const auto r = parser.feed(bytes);
      if (r.status == parley::http_parse_status::failed) fail_with("bad upgrade answer");
      if (r.status == parley::http_parse_status::need_more) continue;
      const parley::http_response response = parser.take_response();
      status_ = response.status;
      if (auto ok = parley::check_upgrade_response(response, key); !ok) fail_with(ok.error());
      ws_.receive(std::string_view(bytes).substr(r.consumed));
      break;
    }
  }
  ~client() { drop(); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  void send_text(std::string_view text) { write_all(fd_, ws_.encode_text(text)); }

  parley::server_frame hello(parley::hello_frame h = {"0.1.0", std::nullopt, std::nullopt}) {
    send_text(parley::encode_hello(h));
    return next([](const parley::server_frame& f) {
      return std::holds_alternative<parley::hello_ok_frame>(f) || std::holds_alternative<parley::hello_err_frame>(f);
    });
  }

  parley::hello_ok_frame hello_ok(parley::hello_frame h = {"0.1.0", std::nullopt, std::nullopt}) {
    auto f = hello(std::move(h));
    if (auto* err = std::get_if<parley::hello_err_frame>(&f)) fail_with("hello refused: " + err->code + " " + err->message);
    session_ = std::get<parley::hello_ok_frame>(f);
    return session_;
  }

  // A tool call and its answer: tool.ok's result, or tool.err.
  parley::server_frame call(parley::tool_args args) {
    const std::string id = "cpp-" + std::to_string(++requests_);
    send_text(parley::encode_tool_request(parley::tool_request{id, std::move(args)}));
    return next([&](const parley::server_frame& f) {
      if (auto* ok = std::get_if<parley::tool_ok_frame>(&f)) return ok->request_id == id;
      if (auto* err = std::get_if<parley::tool_err_frame>(&f)) return err->request_id == id;
      return false;
    });
  }

  parley::json ok(parley::tool_args args) {
    auto f = call(std::move(args));
    if (auto* err = std::get_if<parley::tool_err_frame>(&f)) fail_with("tool.err " + err->code + ": " + err->message);
    return std::get<parley::tool_ok_frame>(f).result;
  }

  parley::tool_err_frame err(parley::tool_args args) {
    auto f = call(std::move(args));
    REQUIRE(std::holds_alternative<parley::tool_err_frame>(f));
    return std::get<parley::tool_err_frame>(f);
  }

  parley::room_message_frame message() {
    return std::get<parley::room_message_frame>(
        next([](const parley::server_frame& f) { return std::holds_alternative<parley::room_message_frame>(f); }));
  }

  void ack(const std::string& room, std::uint64_t seq) { send_text(parley::encode_ack({room, seq})); }

  // Sends a close frame and waits for the server's; returns the server's code.
  std::uint16_t close(std::uint16_t code = parley::ws_status::normal) {
    write_all(fd_, ws_.encode_close(code));
    return wait_close();
  }

  // Reads until the server's close frame (or EOF) and returns its code (1006 for a bare EOF).
  std::uint16_t wait_close() {
    const auto deadline = clock_type::now() + io_timeout;
    while (!close_code_) {
      if (!pump(deadline)) break;
    }
    drop();
    return close_code_.value_or(parley::ws_status::abnormal);
  }

  // The TCP connection ends without a close frame.
  void drop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  [[nodiscard]] std::size_t queued() const { return queue_.size(); }
  [[nodiscard]] const parley::hello_ok_frame& session() const { return session_; }
  [[nodiscard]] std::optional<std::uint16_t> close_code() const { return close_code_; }

 private:
  template <class Pred>
  parley::server_frame next(Pred pred) {
    const auto deadline = clock_type::now() + io_timeout;
    for (;;) {
      for (auto it = queue_.begin(); it != queue_.end(); ++it) {
        if (pred(*it)) {
          parley::server_frame f = std::move(*it);
          queue_.erase(it);
          return f;
        }
      }
      if (close_code_) fail_with("closed with " + std::to_string(*close_code_) + " while waiting for a frame");
      if (!pump(deadline)) fail_with("timed out or EOF while waiting for a frame");
    }
  }

  // Reads once and turns bytes into queued frames; false on timeout or EOF.
  bool pump(clock_type::time_point deadline) {
    if (fd_ < 0) return false;
    bool eof = false;
    const std::string bytes = read_some(fd_, deadline, eof);
    if (bytes.empty()) return false;
    ws_.receive(bytes);
    while (auto event = ws_.next_event()) {
      if (auto* text = std::get_if<parley::ws_text>(&*event)) {
        auto frame = parley::decode_server_frame(text->data);
        if (!frame) fail_with("undecodable server frame: " + text->data.substr(0, 200));
        queue_.push_back(std::move(*frame));
      } else if (auto* ping = std::get_if<parley::ws_ping>(&*event)) {
        write_all(fd_, ws_.encode_pong(ping->payload));
      } else if (auto* close = std::get_if<parley::ws_close>(&*event)) {
        close_code_ = close->code;
        if (!ws_.close_sent()) write_all(fd_, ws_.encode_close(close->code));
      } else if (auto* failure = std::get_if<parley::ws_failure>(&*event)) {
        fail_with("the server broke RFC 6455: " + failure->reason);
      }
    }
    return true;
  }

  parley::random_source random_;
  parley::websocket ws_;
  int fd_ = -1;
  int status_ = 0;
  int requests_ = 0;
  std::deque<parley::server_frame> queue_;
  std::optional<std::uint16_t> close_code_;
  parley::hello_ok_frame session_;
};

parley::join_room_args join(std::string room, std::optional<std::string> nickname = std::nullopt) {
  return parley::join_room_args{std::move(room), std::move(nickname)};
}
parley::send_message_args say(std::string room, std::string body, std::optional<std::string> key = std::nullopt) {
  return parley::send_message_args{std::move(room), std::move(body), std::move(key)};
}
parley::hello_frame resume_hello(const parley::hello_ok_frame& s, std::map<std::string, std::uint64_t, std::less<>> acks) {
  return parley::hello_frame{"0.1.0", std::nullopt, parley::resume_block{s.session_id, s.reconnect_token, std::move(acks)}};
}

}  // namespace

TEST_CASE("the codec's upgrade and hello get hello.ok; /healthz and /metrics answer") {
  temp_dir dir;
  server_process server(dir);
  client c(server.port());
  const auto ok = c.hello_ok();
  CHECK(ok.session_id.size() == 36);
  CHECK(ok.reconnect_token.size() >= 32);
  CHECK(ok.server_version == "0.1.0");
  CHECK(http_get(server.port(), "/healthz") == std::pair<int, std::string>{200, "ok\n"});
  CHECK(http_get(server.port(), "/nope").first == 404);
  CHECK(http_get(server.port(), "/").first == 426);
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
  parley::hello_ok_frame bob_session;
  {
    client bob(server.port());
    bob_session = bob.hello_ok();
    bob.ok(join("r", "bob"));
    for (const char* body : {"1", "2"}) alice.ok(say("r", body));
    CHECK(bob.message().seq == 1);
    CHECK(bob.message().seq == 2);
    bob.ack("r", 1);
    bob.ok(parley::list_rooms_args{});
    bob.drop();  // no close frame
  }
  for (const char* body : {"3", "4"}) alice.ok(say("r", body));

  {
    client wrong(server.port());
    auto token = bob_session.reconnect_token;
    token[0] = token[0] == 'a' ? 'b' : 'a';
    auto h = wrong.hello({"0.1.0", std::nullopt, parley::resume_block{bob_session.session_id, token, {}}});
    REQUIRE(std::holds_alternative<parley::hello_err_frame>(h));
    CHECK(std::get<parley::hello_err_frame>(h).code == "BadReconnectTokenError");
    CHECK(wrong.wait_close() == 4002);
  }
  client bob(server.port());
  const auto resumed = bob.hello_ok(resume_hello(bob_session, {{"r", 1}}));
  CHECK(resumed.session_id == bob_session.session_id);
  for (std::uint64_t want = 2; want <= 4; ++want) CHECK(bob.message().seq == want);
  bob.ok(parley::list_rooms_args{});
  CHECK(bob.queued() == 0);

  CHECK(bob.close(parley::ws_status::normal) == parley::ws_status::normal);
  // Ended at once: gone from the room and not resumable.
  const auto who = alice.ok(parley::who_is_here_args{"r"});
  CHECK(who["nicknames"] == parley::json::array({"alice"}));
  client late(server.port());
  auto h = late.hello(resume_hello(bob_session, {}));
  REQUIRE(std::holds_alternative<parley::hello_err_frame>(h));
  CHECK(std::get<parley::hello_err_frame>(h).code == "UnknownSessionError");
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
  auto h = none.hello();
  REQUIRE(std::holds_alternative<parley::hello_err_frame>(h));
  CHECK(std::get<parley::hello_err_frame>(h).code == "AuthRequiredError");
  CHECK(none.wait_close() == 4000);

  client in_hello(server.port());
  in_hello.hello_ok({"0.1.0", token, std::nullopt});
  client in_header(server.port(), parley::http_headers{{"Authorization", "Bearer " + token}});
  in_header.hello_ok();
  in_hello.close();
  in_header.close();
}
