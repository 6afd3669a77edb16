// SPDX-License-Identifier: MIT
// The server's web page for people: which built-in file a GET names, its content type, and the headers every answer carries.
//
// The page is a client like any other (it speaks the WebSocket protocol at "/"); the
// server only hands out its files. They are compiled into the host (tools/ embeds
// web/), so the core sees them as bytes. Every answer, page or error, carries a
// Content-Security-Policy that allows the page's own files and a WebSocket to the
// server's own origin only: no inline script or style, no eval, no frame around it.
// A body a room member wrote can therefore never become script, even if the page
// mistakenly put it in HTML.
#pragma once

#include "http.hpp"
#include "origin.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

// One file of the page, named as in web/ ("index.html", "app.js"); `bytes` outlive the server.
struct web_asset {
  std::string_view name;
  std::string_view bytes;
};

// By extension; an unknown one is served as bytes, which nosniff keeps a browser from running.
[[nodiscard]] inline std::string_view web_content_type(std::string_view name) noexcept {
  const auto dot = name.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// The file a request path names: "/" is index.html, "/NAME" is NAME. Only a path that
// is exactly a file's name matches, so no "..", query or encoding reaches anything else.
[[nodiscard]] inline const web_asset* find_web_asset(const std::vector<web_asset>& assets, std::string_view path) {
  if (path.empty() || path.front() != '/') return nullptr;
  const std::string_view name = path == "/" ? std::string_view("index.html") : path.substr(1);
  const auto it = std::find_if(assets.begin(), assets.end(), [&](const web_asset& a) { return a.name == name; });
  return it == assets.end() ? nullptr : &*it;
}

// `own` is the origin the request reached us at (from its Host), when it parses: the
// page may open a WebSocket to that origin and fetch from itself, nothing else.
[[nodiscard]] inline std::string content_security_policy(const std::optional<web_origin>& own) {
  std::string connect = "'self'";
  if (own) connect += (own->scheme == "https" ? " wss://" : " ws://") + own->host + ":" + own->port;
  return "default-src 'self'; connect-src " + connect +
         "; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
}

// The headers on every HTTP answer the server writes besides the 101.
inline void add_security_headers(http_headers& headers, const std::optional<web_origin>& own) {
  headers.add("Content-Security-Policy", content_security_policy(own));
  headers.add("X-Content-Type-Options", "nosniff");
  headers.add("Referrer-Policy", "no-referrer");
}

}  // namespace parley
