// SPDX-License-Identifier: MIT
// Option checks that need more than a type: ranges, pairs of flags, files that must exist.
#include "options.hpp"

#include <parley/origin.hpp>
#include <parley/server_url.hpp>

#include <asio/ip/address.hpp>

#include <fstream>
#include <unistd.h>

namespace parley_tools {

namespace {

std::optional<std::string> readable_file(const char* flag, const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec) || ::access(file.c_str(), R_OK) != 0)
    return std::string(flag) + ": " + file.string() + " is not a readable file";
  return std::nullopt;
}

std::optional<std::string> positive(const char* flag, std::uint64_t value) {
  if (value == 0) return std::string(flag) + " must be positive";
  return std::nullopt;
}

std::optional<std::string> positive(const char* flag, parley::milliseconds value) {
  if (value.count() <= 0) return std::string(flag) + " must be a positive number of seconds";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> validate(const server_options& o) {
  asio::error_code ec;
  (void)asio::ip::make_address(o.bind, ec);
  if (ec && o.bind != "localhost") return "--bind: " + o.bind + " is neither an IP address nor localhost";
  if (o.port < 0 || o.port > 65535) return "--port must be between 0 and 65535";
  if (o.tls_cert.empty() != o.tls_key.empty()) return "--tls-cert and --tls-key go together: give both or neither";
  if (o.tls()) {
    if (auto problem = readable_file("--tls-cert", o.tls_cert)) return problem;
    if (auto problem = readable_file("--tls-key", o.tls_key)) return problem;
  }
  for (auto problem :
       {positive("--session-grace", o.hub.session_grace), positive("--handshake-timeout", o.core.handshake_timeout),
        positive("--ping-interval", o.core.ping_interval), positive("--pong-timeout", o.core.pong_timeout),
        positive("--max-connections", o.core.max_connections), positive("--max-queue-bytes", o.core.max_queue_bytes),
        positive("--max-message-bytes", o.core.websocket.max_message_bytes),
        positive("--rate-capacity", o.hub.rate.capacity), positive("--rate-per-second", o.hub.rate.refill_per_second),
        positive("--replay-capacity", o.hub.replay_capacity), positive("--max-rooms", o.hub.max_rooms),
        positive("--room-rate-capacity", o.hub.room_creation.capacity),
        positive("--room-rate-per-minute", o.hub.room_creation.refill_per_minute)})
    if (problem) return problem;
  if (o.threads < 1 || o.threads > max_io_threads)
    return "--threads must be between 1 and " + std::to_string(max_io_threads);
  if (o.hub.room_ttl.count() < 0) return "--room-ttl must be a number of seconds, or 0 for never";
  for (const auto& url : o.cluster)
    if (url.rfind("nats://", 0) != 0 && url.rfind("tls://", 0) != 0)
      return "--cluster " + url + ": a NATS server is named nats://HOST:PORT (or tls://HOST:PORT)";
  if (o.cluster.empty() && (!o.cluster_creds.empty() || !o.cluster_token_file.empty()))
    return "--cluster-creds and --cluster-token-file need --cluster";
  if (!o.cluster_creds.empty() && !o.cluster_token_file.empty())
    return "--cluster-creds and --cluster-token-file are two ways to sign in to NATS: give one";
  if (!o.cluster_creds.empty())
    if (auto problem = readable_file("--cluster-creds", o.cluster_creds)) return problem;
  if (!o.cluster_token_file.empty())
    if (auto problem = readable_file("--cluster-token-file", o.cluster_token_file)) return problem;
  if (o.cluster_replicas < 1 || o.cluster_replicas > 5) return "--cluster-replicas must be between 1 and 5";
  for (const auto& origin : o.allow_origins)
    if (auto parsed = parley::parse_web_origin(origin); !parsed) return "--allow-origin: " + parsed.error().message;
  return std::nullopt;
}

std::optional<std::string> validate(const mcp_options& o) {
  const auto url = parley::parse_server_url(o.server_url);
  if (!url) return "--server " + o.server_url + ": " + url.error().message;
  if (!o.ca_file.empty()) {
    if (!url->tls) return "--ca-file only applies to a wss:// server";
    if (auto problem = readable_file("--ca-file", o.ca_file)) return problem;
  }
  return std::nullopt;
}

parley::result<std::string> read_token_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line))
    return parley::make_error(parley::error_code::invalid_argument, "cannot read a token from " + file.string());
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty())
    return parley::make_error(parley::error_code::invalid_argument, file.string() + " starts with an empty line");
  return line;
}

}  // namespace parley_tools
