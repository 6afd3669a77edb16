// SPDX-License-Identifier: MIT
// parley-tools' main: parse the command line, apply the start-up rules, run the server, the bridge, or a token or room command.
#include "auth_rule.hpp"
#include "crypto.hpp"
#include "database.hpp"
#include "log.hpp"
#include "bridge_loop.hpp"
#include "options.hpp"
#include "server_loop.hpp"
#include "sqlite_store.hpp"
#include "token_store.hpp"
#include "wall_clock.hpp"

#include "parley_git_revision.hpp"  // generated at build time: PARLEY_GIT_REVISION

#include <CLI/CLI.hpp>
#include <parley/arguments.hpp>
#include <parley/version.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <malloc.h>

namespace {

using namespace parley_tools;

// 0: done. 1: something failed at run time (the database, the network).
// 2: the command line or the configuration cannot work as given.
constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

void print_error(const std::string& message) { std::fprintf(stderr, "parley-tools: %s\n", message.c_str()); }

// A bad label is the user's to fix (2); anything else went wrong underneath (1).
int fail(const parley::error& e) {
  print_error(e.message);
  return e.code == parley::error_code::invalid_argument ? exit_usage : exit_failure;
}

CLI::Option* add_log_level(CLI::App& app, log_level& target) {
  return app
      .add_option_function<std::string>(
          "--log-level", [&target](const std::string& name) { target = *log_level_from_string(name); },
          "Least severe level logged to stderr")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}, CLI::ignore_case))
      ->envname("PARLEY_LOG_LEVEL")
      ->default_str(std::string(to_string(target)));
}

// CLI11 2.1 reads "-5" into an unsigned as a huge number, so digits are checked
// first; zero passes here and validate() says why it is refused.
template <class Unsigned>
CLI::Option* add_count(CLI::App& app, const std::string& name, Unsigned& target, const std::string& description) {
  static const CLI::Validator digits_only(
      [](const std::string& text) -> std::string {
        if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
          return "must be a whole number, not " + text;
        return {};
      },
      "");
  return app.add_option(name, target, description)->check(digits_only)->capture_default_str();
}

// CLI11 2.1 has no std::chrono support; seconds are read as an integer into the
// core's millisecond setting, whose default is shown.
CLI::Option* add_seconds(CLI::App& app, const std::string& name, parley::milliseconds& target,
                         const std::string& description) {
  return app
      .add_option_function<std::int64_t>(
          name, [&target](std::int64_t s) { target = std::chrono::seconds(s); }, description)
      ->type_name("SECONDS")
      ->default_str(std::to_string(std::chrono::duration_cast<std::chrono::seconds>(target).count()));
}

CLI::Option* add_db(CLI::App& app, std::filesystem::path& target) {
  return app
      .add_option("--db", target,
                  "SQLite database file (default $XDG_DATA_HOME/parley/parley.db, else "
                  "~/.local/share/parley/parley.db)")
      ->envname("PARLEY_DB_FILE")
      ->type_name("PATH");
}

// Resolves the default path and opens the file, or says why not.
parley::result<database> open_database(std::filesystem::path& file) {
  if (file.empty()) {
    auto path = default_database_path();
    if (!path) return tl::unexpected(path.error());
    file = *path;
  }
  return database::open(file);
}

int server_main(server_options& options) {
  const logger log(options.log);
  // Frames are built on the hub's thread and freed on the I/O threads, received bytes the
  // other way round: with glibc's default trim threshold each burst's frees gave the heap
  // back to the kernel and the next burst faulted it in again, zeroed (5% of the server's
  // time under load). Keep up to 32 MiB of freed memory for reuse instead.
  ::mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
  // Declared before the database, so released after it closes (see database_lock).
  std::optional<database_lock> running;
  if (auto problem = validate(options)) {
    print_error("server: " + *problem);
    return exit_usage;
  }
  auto db = open_database(options.db_file);
  if (!db) {
    log.error(db.error().message);
    return exit_failure;
  }
  // Held until exit, so that `room delete` refuses to change rooms under a running server.
  auto locked = database_lock::acquire(options.db_file, database_lock::mode::shared_wait);
  if (!locked) {
    log.error(locked.error().message);
    return exit_failure;
  }
  running.emplace(std::move(*locked));
  // The writes (rooms, seq blocks reserved ahead, token uses) run on a thread with a
  // connection of its own, so the io thread never waits on an fsync. Declared after the
  // lock, so closed before it is released; it applies every queued write as it goes.
  auto writer = database_worker::open(options.db_file);
  if (!writer) {
    log.error(writer.error().message);
    return exit_failure;
  }
  token_store tokens(*db, openssl_random_source());
  const auto active = tokens.any_active();
  if (!active) {
    log.error(active.error().message);
    return exit_failure;
  }
  const auth_plan plan = plan_auth(options.bind, options.tls(), *active);
  if (plan.refusal) {
    log.error(*plan.refusal);
    return exit_usage;
  }
  if (plan.warning) log.warn(*plan.warning);
  log.info("database " + options.db_file.string() +
           (plan.tokens_required ? "; tokens required" : "; loopback, no token needed"));

  sqlite_room_store rooms(*db, **writer, &log, options.hub.seq_block_size);
  server_context context{rooms, tokens, **writer, plan.tokens_required, log, openssl_random_source()};
  return run_server(options, context);
}

int mcp_main(mcp_options& options, const std::filesystem::path& token_file) {
  if (auto problem = validate(options)) {
    print_error("mcp: " + *problem);
    return exit_usage;
  }
  if (!token_file.empty()) {
    auto token = read_token_file(token_file);
    if (!token) {
      print_error("mcp: " + token.error().message);
      return exit_usage;
    }
    options.token = std::move(*token);
  } else if (const char* token = std::getenv("PARLEY_TOKEN")) {
    options.token = token;
  }
  return run_mcp(options);
}

int token_issue(std::filesystem::path& db_file, const std::string& label) {
  auto db = open_database(db_file);
  if (!db) return fail(db.error());
  token_store tokens(*db, openssl_random_source());
  auto token = tokens.issue(label, wall_clock_now());
  if (!token) return fail(token.error());
  // stdout holds the token alone, so `parley-tools token issue ... > file` captures exactly it.
  std::printf("%s\n", token->c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "Issued token %s. Store it now: it cannot be shown again.\n", label.c_str());
  return exit_ok;
}

std::string time_or(const std::optional<parley::wall_time>& t, const char* otherwise) {
  return t ? parley::format_rfc3339(*t) : otherwise;
}

int token_list(std::filesystem::path& db_file) {
  auto db = open_database(db_file);
  if (!db) return fail(db.error());
  const token_store tokens(*db, openssl_random_source());
  const auto list = tokens.list();
  if (!list) return fail(list.error());
  if (list->empty()) {
    std::fprintf(stderr, "No tokens. Issue one with: parley-tools token issue --label NAME\n");
    return exit_ok;
  }
  int width = 5;  // "LABEL"
  for (const auto& t : *list) width = std::max(width, static_cast<int>(t.label.size()));
  std::printf("%-*s  %-24s  %-24s  %s\n", width, "LABEL", "CREATED", "LAST USED", "REVOKED");
  for (const auto& t : *list)
    std::printf("%-*s  %-24s  %-24s  %s\n", width, t.label.c_str(), parley::format_rfc3339(t.created_at).c_str(),
                time_or(t.last_used_at, "never").c_str(), time_or(t.revoked_at, "-").c_str());
  return exit_ok;
}

int token_revoke(std::filesystem::path& db_file, const std::string& label) {
  auto db = open_database(db_file);
  if (!db) return fail(db.error());
  token_store tokens(*db, openssl_random_source());
  if (auto revoked = tokens.revoke(label, wall_clock_now()); !revoked) return fail(revoked.error());
  std::fprintf(stderr, "Revoked token %s; new connections with it are refused.\n", label.c_str());
  return exit_ok;
}

int room_list(std::filesystem::path& db_file) {
  auto db = open_database(db_file);
  if (!db) return fail(db.error());
  sqlite_room_store store(*db);
  const auto rooms = store.load_rooms();
  if (!rooms) return fail(rooms.error());
  if (rooms->empty()) {
    std::fprintf(stderr, "No rooms.\n");
    return exit_ok;
  }
  int width = 4;  // "ROOM"
  for (const auto& r : *rooms) width = std::max(width, static_cast<int>(r.name.size()));
  std::printf("%-*s  %-24s  %s\n", width, "ROOM", "CREATED", "MAX SEQ");
  for (const auto& r : *rooms)
    std::printf("%-*s  %-24s  %llu\n", width, r.name.c_str(), parley::format_rfc3339(r.created_at).c_str(),
                static_cast<unsigned long long>(r.next_seq - 1));
  return exit_ok;
}

int room_delete(std::filesystem::path& db_file, const std::string& name) {
  if (auto ok = parley::check_room_slug("room", name); !ok) return fail(ok.error());
  // Declared before the database, so released after it closes (see database_lock).
  std::optional<database_lock> alone;
  auto db = open_database(db_file);
  if (!db) return fail(db.error());
  // A running server keeps its rooms in memory and would not see the deletion.
  auto locked = database_lock::acquire(db_file, database_lock::mode::exclusive_or_fail);
  if (!locked) {
    print_error("room delete: " + locked.error().message);
    return exit_failure;
  }
  alone.emplace(std::move(*locked));
  sqlite_room_store store(*db);
  const auto deleted = store.delete_room(name, wall_clock_now());
  if (!deleted) return fail(deleted.error());
  if (!*deleted) {
    print_error("no room " + name + " in " + db_file.string());
    return exit_usage;
  }
  std::fprintf(stderr, "Deleted room %s.\n", name.c_str());
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parley-tools: the parley chat server, its MCP bridge, and token administration", "parley-tools"};
  // "parley-tools 0.1.0 (1a2b3c4)", or "parley-tools 0.1.0" when built without git (a source tarball).
  std::string version = "parley-tools " + std::string(parley::version_string);
  if (constexpr std::string_view revision = PARLEY_GIT_REVISION; !revision.empty())
    version += " (" + std::string(revision) + ")";
  app.set_version_flag("--version", version);
  app.require_subcommand(1);

  server_options server;
  CLI::App* server_cmd = app.add_subcommand(
      "server", "Run the chat server; people join the rooms at its web page, http(s)://HOST:PORT/");
  server_cmd
      ->add_option("--bind", server.bind,
                   "Address to listen on: an IP address or localhost; any non-loopback "
                   "address requires a token (see `token issue`)")
      ->envname("PARLEY_BIND")
      ->capture_default_str();
  server_cmd->add_option("--port", server.port, "TCP port; 0 picks a free one")
      ->envname("PARLEY_PORT")
      ->capture_default_str();
  add_db(*server_cmd, server.db_file);
  add_log_level(*server_cmd, server.log);
  add_seconds(*server_cmd, "--session-grace", server.hub.session_grace, "How long a dropped session may resume")
      ->envname("PARLEY_SESSION_GRACE");
  server_cmd->add_option("--tls-cert", server.tls_cert, "TLS certificate chain (PEM); needs --tls-key")
      ->envname("PARLEY_TLS_CERT")
      ->type_name("PATH");
  server_cmd->add_option("--tls-key", server.tls_key, "TLS private key (PEM); needs --tls-cert")
      ->envname("PARLEY_TLS_KEY")
      ->type_name("PATH");
  add_count(*server_cmd, "--max-connections", server.core.max_connections, "Open connections at most")
      ->envname("PARLEY_MAX_CONNECTIONS");
  add_seconds(*server_cmd, "--handshake-timeout", server.core.handshake_timeout, "From TCP accept to a completed hello")
      ->envname("PARLEY_HANDSHAKE_TIMEOUT");
  add_seconds(*server_cmd, "--ping-interval", server.core.ping_interval, "Seconds between pings to each connection: periodic, not after idle time")
      ->envname("PARLEY_PING_INTERVAL");
  add_seconds(*server_cmd, "--pong-timeout", server.core.pong_timeout, "Close a connection that has sent nothing (not even a pong) for this long")
      ->envname("PARLEY_PONG_TIMEOUT");
  add_count(*server_cmd, "--max-queue-bytes", server.core.max_queue_bytes,
            "Outgoing bytes queued per connection before a slow consumer is disconnected")
      ->envname("PARLEY_MAX_QUEUE_BYTES");
  add_count(*server_cmd, "--max-message-bytes", server.core.websocket.max_message_bytes, "Largest incoming WebSocket message")
      ->envname("PARLEY_MAX_MESSAGE_BYTES");
  add_count(*server_cmd, "--rate-capacity", server.hub.rate.capacity, "Messages a session may send in a burst")
      ->envname("PARLEY_RATE_CAPACITY");
  add_count(*server_cmd, "--rate-per-second", server.hub.rate.refill_per_second, "Sustained messages per second per session")
      ->envname("PARLEY_RATE_PER_SECOND");
  add_count(*server_cmd, "--replay-capacity", server.hub.replay_capacity, "Unacked messages kept per (session, room) for a resume")
      ->envname("PARLEY_REPLAY_CAPACITY");
  add_count(*server_cmd, "--max-rooms", server.hub.max_rooms,
            "Rooms at most; a join that would create another is refused with RoomLimitError")
      ->envname("PARLEY_MAX_ROOMS");
  add_count(*server_cmd, "--room-rate-capacity", server.hub.room_creation.capacity,
            "Rooms a token (or a session without one) may create in a burst")
      ->envname("PARLEY_ROOM_RATE_CAPACITY");
  add_count(*server_cmd, "--room-rate-per-minute", server.hub.room_creation.refill_per_minute,
            "Sustained room creations per minute per token (or session without one)")
      ->envname("PARLEY_ROOM_RATE_PER_MINUTE");
  add_seconds(*server_cmd, "--room-ttl", server.hub.room_ttl,
              "Delete a room that is empty and was never written to after this long; 0: never")
      ->envname("PARLEY_ROOM_TTL");
  server.threads = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, max_io_threads);
  server_cmd
      ->add_option("--threads", server.threads,
                   "Threads for connection I/O (read, TLS, write); the hub is one more, fed through a queue. "
                   "1 runs everything on one thread. Default: the number of cores")
      ->envname("PARLEY_THREADS")
      ->capture_default_str();
  server_cmd
      ->add_option("--cluster", server.cluster,
                   "Join other servers through NATS JetStream: nats://HOST:PORT[,nats://...]. Rooms' messages are "
                   "then ordered by the bus (docs/cluster.md). Default: none, one process on SQLite")
      ->envname("PARLEY_CLUSTER")
      ->delimiter(',');
  server_cmd->add_option("--cluster-creds", server.cluster_creds, "A NATS credentials (.creds) file for --cluster")
      ->envname("PARLEY_CLUSTER_CREDS");
  server_cmd
      ->add_option("--cluster-token-file", server.cluster_token_file,
                   "A file whose first line is the NATS token for --cluster (kept off the command line)")
      ->envname("PARLEY_CLUSTER_TOKEN_FILE");
  server_cmd
      ->add_option("--cluster-replicas", server.cluster_replicas,
                   "JetStream replicas of the rooms' stream; 3 on a 3-node NATS cluster, so a NATS node may restart")
      ->envname("PARLEY_CLUSTER_REPLICAS")
      ->capture_default_str();
  server_cmd
      ->add_option("--allow-origin", server.allow_origins,
                   "A web page origin (http(s)://host[:port]) besides the server's own that may open a WebSocket; "
                   "repeatable. Browsers from any other origin are refused with 403")
      ->envname("PARLEY_ALLOW_ORIGINS")
      ->delimiter(',');

  mcp_options mcp;
  std::filesystem::path token_file;
  CLI::App* mcp_cmd = app.add_subcommand("mcp", "Bridge MCP on stdin/stdout to a parley server");
  mcp_cmd->add_option("--server", mcp.server_url, "Server URL, ws:// or wss://")
      ->envname("PARLEY_SERVER")
      ->capture_default_str();
  mcp_cmd->add_option("--token-file", token_file, "File whose first line is the token; wins over PARLEY_TOKEN")
      ->type_name("PATH");
  mcp_cmd->add_option("--ca-file", mcp.ca_file, "CA bundle (PEM) to verify a wss:// server (default: the system's)")
      ->type_name("PATH");
  add_log_level(*mcp_cmd, mcp.log);
  // A token is never a flag's value: the command line is visible to every user in ps.
  mcp_cmd->footer("The token comes from the PARLEY_TOKEN environment variable or --token-file.");

  std::filesystem::path token_db;
  std::string label;
  CLI::App* token_cmd = app.add_subcommand("token", "Issue, list and revoke access tokens");
  token_cmd->require_subcommand(1);
  CLI::App* issue_cmd = token_cmd->add_subcommand("issue", "Issue a token and print it once on stdout");
  issue_cmd->add_option("--label", label, "Name for the token: 1-64 of A-Z a-z 0-9 . _ -")->required();
  add_db(*issue_cmd, token_db);
  CLI::App* list_cmd = token_cmd->add_subcommand("list", "List tokens by label (tokens themselves are never shown)");
  add_db(*list_cmd, token_db);
  CLI::App* revoke_cmd = token_cmd->add_subcommand("revoke", "Revoke a token by label");
  revoke_cmd->add_option("--label", label, "Label of the token to revoke")->required();
  add_db(*revoke_cmd, token_db);

  std::filesystem::path room_db;
  std::string room_name;
  CLI::App* room_cmd = app.add_subcommand("room", "List and delete rooms in the database (delete: server stopped)");
  room_cmd->require_subcommand(1);
  CLI::App* room_list_cmd =
      room_cmd->add_subcommand("list", "List rooms: name, creation time, and the highest seq ever reserved");
  add_db(*room_list_cmd, room_db);
  CLI::App* room_delete_cmd = room_cmd->add_subcommand(
      "delete",
      "Delete a room. Stop the server first: a running server keeps its rooms in memory, so this refuses while one "
      "runs on the database");
  room_delete_cmd->add_option("name", room_name, "The room's name")->required();
  add_db(*room_delete_cmd, room_db);
  room_delete_cmd->footer(
      "A room that ever had messages keeps its seq counter hidden in the database, so if it is created again its "
      "seqs continue and never repeat.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  }

  if (*server_cmd) return server_main(server);
  if (*mcp_cmd) return mcp_main(mcp, token_file);
  if (*issue_cmd) return token_issue(token_db, label);
  if (*list_cmd) return token_list(token_db);
  if (*revoke_cmd) return token_revoke(token_db, label);
  if (*room_list_cmd) return room_list(room_db);
  if (*room_delete_cmd) return room_delete(room_db, room_name);
  return exit_usage;  // unreachable: require_subcommand
}
