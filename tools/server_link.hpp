// SPDX-License-Identifier: MIT
// One connection from the MCP bridge to the parley server, TCP or TLS: dial, one reader, one writer, one end.
//
// A reconnect makes a new server_link. Nothing is shared with the one before: not the
// socket, not the bytes of a write in flight, not a "writing" flag. A completion that
// arrives late for an old connection finds only its own, finished, object, so it can
// neither end the new connection nor start a second write on it. Handlers run on the
// io_context's thread, never from inside a call to the link, and never after cancel().
#pragma once

#include <parley/server_url.hpp>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace parley_tools {

class server_link : public std::enable_shared_from_this<server_link> {
 public:
  struct handlers {
    std::function<void()> connected;                  // TCP (and TLS) is up
    std::function<void(std::string_view)> received;  // bytes from the server
    std::function<void(std::string why)> ended;      // once, whatever ended it, unless cancelled
  };

  // How long close_after_write() waits for a stuck write before it cuts the connection.
  static constexpr std::chrono::seconds close_grace{2};

  // `tls` is null for ws://.
  static std::shared_ptr<server_link> dial(asio::io_context& io, asio::ssl::context* tls, parley::server_url url,
                                           handlers h) {
    std::shared_ptr<server_link> link(new server_link(io, tls, std::move(url), std::move(h)));
    asio::co_spawn(io, link->run(), asio::detached);
    return link;
  }

  // Queued and written in order by the link's one writer; all that is queued when a write
  // starts goes out in that write.
  void write(std::string bytes) {
    if (done_ || closing_) return;
    queued_ += bytes;
    wake_.cancel();
  }

  // Writes what is queued, then closes and reports ended(); a write stuck for close_grace
  // is cut. While still dialing, gives up the attempt.
  void close_after_write() {
    if (done_ || closing_) return;
    closing_ = true;
    if (!connected_) return finish("closed while connecting");
    wake_.cancel();
    grace_.expires_after(close_grace);
    grace_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec) self->finish("the last write did not finish in time");
    });
  }

  // Ends at once and reports nothing more.
  void cancel() {
    handlers_ = {};
    finish("cancelled");
  }

 private:
  server_link(asio::io_context& io, asio::ssl::context* tls, parley::server_url url, handlers h)
      : io_(io), tls_context_(tls), url_(std::move(url)), handlers_(std::move(h)), resolver_(io), socket_(io),
        wake_(io), grace_(io) {}

  template <class F>
  auto with_stream(F&& f) {
    if (tls_) return f(*tls_);
    return f(socket_);
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    std::error_code ec;
    const auto endpoints = co_await resolver_.async_resolve(url_.host, std::to_string(url_.port),
                                                            asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && !done_) co_await asio::async_connect(socket_, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && !done_) socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    if (!ec && !done_ && tls_context_) {
      tls_.emplace(std::move(socket_), *tls_context_);
      SSL_set_tlsext_host_name(tls_->native_handle(), url_.host.c_str());
      // The host check is asio's; remembering that it, not the chain, said no lets the
      // error name the cause instead of OpenSSL's generic "certificate verify failed".
      tls_->set_verify_callback([this, check = asio::ssl::host_name_verification(url_.host)](
                                    bool preverified, asio::ssl::verify_context& ctx) mutable {
        const bool ok = check(preverified, ctx);
        if (preverified && !ok && X509_STORE_CTX_get_error_depth(ctx.native_handle()) == 0) host_mismatch_ = true;
        return ok;
      });
      co_await tls_->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (done_) co_return;
    if (ec) {
      finish("cannot reach " + url_.host + ":" + std::to_string(url_.port) + ": " + ec.message() + tls_failure());
      co_return;
    }
    connected_ = true;
    asio::co_spawn(io_, write_loop(), asio::detached);
    report(&handlers::connected);
    co_await read_loop();
  }

  asio::awaitable<void> read_loop() {
    auto self = shared_from_this();
    std::array<char, 16384> buffer;
    while (!done_) {
      std::error_code ec;
      const std::size_t n = co_await with_stream([&](auto& stream) {
        return stream.async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
      });
      if (done_) co_return;
      if (ec) {
        finish(ec == asio::error::eof ? "the server closed the connection" : ec.message());
        co_return;
      }
      report(&handlers::received, std::string_view(buffer.data(), n));
    }
  }

  // The only code that writes to the stream: one write at a time, by construction.
  asio::awaitable<void> write_loop() {
    auto self = shared_from_this();
    while (!done_) {
      if (queued_.empty()) {
        if (closing_) {
          finish("closed after the last write");
          co_return;
        }
        wake_.expires_at(asio::steady_timer::time_point::max());
        std::error_code ignored;
        co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        continue;
      }
      const std::string bytes = std::exchange(queued_, {});  // this coroutine's own buffer
      std::error_code ec;
      co_await with_stream([&](auto& stream) {
        return asio::async_write(stream, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
      });
      if (done_) co_return;
      if (ec) {
        finish("write failed: " + ec.message());
        co_return;
      }
    }
  }

  // Closes everything once; ended() is posted, so it never runs inside a call to the link.
  void finish(std::string why) {
    if (done_) return;
    done_ = true;
    std::error_code ignored;
    resolver_.cancel();
    if (tls_) tls_->lowest_layer().close(ignored);
    else socket_.close(ignored);
    wake_.cancel();
    grace_.cancel();
    queued_.clear();
    asio::post(io_, [self = shared_from_this(), why = std::move(why)]() mutable {
      self->report(&handlers::ended, std::move(why));
    });
  }

  // Why the server's certificate was refused, if it was: "; TLS: certificate has expired".
  std::string tls_failure() {
    if (!tls_) return {};
    if (host_mismatch_) return "; TLS: the server's certificate is not valid for " + url_.host;
    const long result = SSL_get_verify_result(tls_->native_handle());
    if (result == X509_V_OK) return {};
    return std::string("; TLS: ") + X509_verify_cert_error_string(result) +
           (result == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || result == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                    result == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
                ? " (the certificate's CA is not trusted: pass it with --ca-file)"
                : "");
  }

  // Calls a copy, so the owner may cancel (and so empty handlers_) from inside the handler.
  template <class Handler, class... Args>
  void report(Handler handlers::*which, Args&&... args) {
    if (auto handler = handlers_.*which) handler(std::forward<Args>(args)...);
  }

  asio::io_context& io_;
  asio::ssl::context* tls_context_;
  parley::server_url url_;
  handlers handlers_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
  asio::steady_timer wake_;   // the writer sleeps on it while nothing is queued
  asio::steady_timer grace_;  // bounds close_after_write()
  std::string queued_;
  bool connected_ = false;
  bool closing_ = false;
  bool done_ = false;
  bool host_mismatch_ = false;  // the chain verified, but not for url_.host
};

}  // namespace parley_tools
