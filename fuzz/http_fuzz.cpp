// SPDX-License-Identifier: MIT
// Invariant: the HTTP request and response head parsers reach the same outcome (status, bytes consumed, error,
// parsed head) on any bytes whether fed whole, a byte at a time, in chunks the input picks or cut in two; a complete
// head lies within the byte and field limits, and written out again it parses to the same head; nothing crashes.
#include <parley/http.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "http invariant violated: %s\n", what);
  std::abort();
}

struct outcome {
  parley::http_parse_status status = parley::http_parse_status::need_more;
  std::size_t consumed = 0;  // counted from the start of the stream
  parley::http_error error;
};

bool operator==(const outcome& a, const outcome& b) {
  return a.status == b.status && a.consumed == b.consumed && a.error == b.error;
}

bool same_head(const parley::http_request& a, const parley::http_request& b) {
  return a.method == b.method && a.target == b.target && a.version_major == b.version_major &&
         a.version_minor == b.version_minor && a.headers == b.headers;
}

bool same_head(const parley::http_response& a, const parley::http_response& b) {
  return a.status == b.status && a.reason == b.reason && a.version_major == b.version_major &&
         a.version_minor == b.version_minor && a.headers == b.headers;
}

// Feeds the stream in the given chunk sizes (zero-sized chunks included) and returns the
// outcome: once a head is complete or has failed, a further feed must repeat that status
// with nothing consumed.
template <class Parser>
outcome feed_chunks(Parser& parser, std::string_view stream, const std::vector<std::size_t>& chunks) {
  outcome out;
  std::size_t at = 0;
  for (std::size_t n : chunks) {
    n = std::min(n, stream.size() - at);
    const parley::http_parse_result r = parser.feed(stream.substr(at, n));
    if (r.consumed > n) fail("consumed more than was fed");
    if (out.status != parley::http_parse_status::need_more) {
      if (r.status != out.status || r.consumed != 0) fail("a finished parser changed its mind");
    } else if (r.status == parley::http_parse_status::need_more) {
      if (r.consumed != 0) fail("consumed bytes while still needing more");
    } else {
      out.status = r.status;
      out.consumed = r.status == parley::http_parse_status::complete ? at + r.consumed : 0;
      out.error = r.error;
      if (r.status == parley::http_parse_status::failed && r.consumed != 0) fail("a failure consumed bytes");
    }
    at += n;
  }
  return out;
}

std::string write_head(const parley::http_request& r) {
  std::string out = r.method + " " + r.target + " HTTP/" + std::to_string(r.version_major) + "." +
                    std::to_string(r.version_minor) + "\r\n";
  for (const auto& h : r.headers) out += h.name + ": " + h.value + "\r\n";
  return out + "\r\n";
}

std::string write_head(const parley::http_response& r) {
  std::string out = "HTTP/" + std::to_string(r.version_major) + "." + std::to_string(r.version_minor) + " " +
                    std::to_string(r.status) + " " + r.reason + "\r\n";
  for (const auto& h : r.headers) out += h.name + ": " + h.value + "\r\n";
  return out + "\r\n";
}

template <class Parser>
const auto& head_of(const Parser& p) {
  if constexpr (std::is_same_v<Parser, parley::http_request_parser>) return p.request();
  else return p.response();
}

template <class Parser>
void check_parser(std::string_view stream, const parley::http_limits& limits,
                  const std::vector<std::vector<std::size_t>>& chunkings) {
  Parser whole(limits);
  const outcome expected = feed_chunks(whole, stream, {stream.size()});
  switch (expected.status) {
    case parley::http_parse_status::need_more:
      if (stream.size() >= limits.max_head_bytes) fail("needs more past the head limit");
      break;
    case parley::http_parse_status::failed:
      if (expected.error.status != 400 && expected.error.status != 431 && expected.error.status != 505)
        fail("failed with an unexpected status");
      if (expected.error.reason.empty()) fail("failed without a reason");
      break;
    case parley::http_parse_status::complete:
      if (expected.consumed > limits.max_head_bytes) fail("a complete head is longer than the limit");
      if (head_of(whole).headers.size() > limits.max_header_count) fail("a complete head has too many fields");
      break;
  }
  for (const auto& chunks : chunkings) {
    Parser split(limits);
    if (!(feed_chunks(split, stream, chunks) == expected)) fail("chunking changed the outcome");
    if (expected.status == parley::http_parse_status::complete && !same_head(head_of(split), head_of(whole)))
      fail("chunking changed the parsed head");
  }
  if (expected.status != parley::http_parse_status::complete) return;

  // What was parsed, written out canonically, parses to the same head.
  const std::string again = write_head(head_of(whole));
  parley::http_limits roomy = limits;
  roomy.max_head_bytes = again.size() + 1;
  Parser reparsed(roomy);
  const parley::http_parse_result r = reparsed.feed(again);
  if (r.status != parley::http_parse_status::complete || r.consumed != again.size())
    fail("a parsed head written out again does not parse");
  if (!same_head(head_of(reparsed), head_of(whole))) fail("a parsed head written out again parses differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  // Byte 0 picks the limits, bytes 1-2 the chunking and the cut; the rest is the stream.
  parley::http_limits limits;
  if (data[0] & 1) {
    limits.max_head_bytes = 16 + (data[0] >> 1) * 4;
    limits.max_header_count = data[0] >> 5;
  }
  const std::string_view stream(reinterpret_cast<const char*>(data + 3), size - 3);

  std::vector<std::vector<std::size_t>> chunkings;
  chunkings.emplace_back(stream.size(), 1);  // a byte at a time
  std::vector<std::size_t> random;
  std::uint32_t seed = data[1] | 0x100u;
  for (std::size_t at = 0; at < stream.size();) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t n = (seed >> 16) % 24;  // zero-sized feeds included
    random.push_back(n);
    at += n;
  }
  chunkings.push_back(std::move(random));
  const std::size_t cut = stream.empty() ? 0 : (data[2] * stream.size()) / 255;
  chunkings.push_back({cut, stream.size() - cut});

  check_parser<parley::http_request_parser>(stream, limits, chunkings);
  check_parser<parley::http_response_parser>(stream, limits, chunkings);
  return 0;
}
