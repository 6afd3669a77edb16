// SPDX-License-Identifier: MIT
// nats_link: the tools' one door to NATS (libnats, the C client): JetStream streams and KV
// buckets, with every result and event handed to an asio::io_context, so its users stay
// single-threaded and no asio thread ever waits on the network.
#pragma once

#include <tl/expected.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace asio {
class io_context;
}

namespace parley_tools {

// parley::error is the wire protocol's vocabulary; what goes wrong with NATS is a sentence for
// the log (libnats' status text, its last error, the JetStream error code) and nothing more.
template <class T>
using nats_result = tl::expected<T, std::string>;

struct nats_options {
  std::vector<std::string> servers;  // nats://host:port, tried in order, then the cluster's own list
  std::string token;                 // optional
  std::string credentials_file;      // optional: a .creds file (user JWT and NKey seed)
  std::string name = "parley";       // shown by the server's monitoring (connz)
  // There is no last attempt: a node keeps trying, however long NATS is away.
  std::chrono::milliseconds reconnect_wait{250};
  // JetStream API requests, KV operations and publish acks time out after this.
  std::chrono::milliseconds request_timeout{5000};
  // libnats otherwise leaves each publish to its flusher thread, which waits about 1 ms for
  // more to coalesce: p50 of a publish-to-ack round trip is then 1.0 ms on loopback instead of
  // about 0.1 ms. False trades that latency for fewer writes under a heavy publish rate.
  bool send_asap = true;
};

// "nats://a:4222,nats://b:4222" -> {"nats://a:4222", "nats://b:4222"}; blanks around commas dropped.
[[nodiscard]] std::vector<std::string> split_server_urls(std::string_view list);

enum class nats_connection_event { disconnected, reconnected, closed };

struct nats_stream_config {
  std::string name;
  std::vector<std::string> subjects;
  std::chrono::seconds max_age{0};        // 0: kept until the other limits drop them
  std::int64_t max_msgs_per_subject = -1;  // -1: no limit
  int replicas = 1;
  // Always memory storage: message bodies are never written to disk. A NATS node that
  // restarts therefore comes back without the stream (with one replica), and the caller
  // must ensure_stream() again on `reconnected`.
};

using nats_headers = std::vector<std::pair<std::string, std::string>>;

struct nats_stream_message {
  std::string subject;
  std::uint64_t seq = 0;  // the stream sequence
  std::string payload;
  nats_headers headers;
};

struct nats_bucket_config {
  std::string name;
  std::chrono::milliseconds ttl{0};  // 0: entries never expire
  int replicas = 1;
  // History 1 and memory storage, always (see nats_stream_config).
};

enum class nats_kv_create_outcome { created, taken };

struct nats_kv_entry {
  std::string key;
  std::string value;  // empty for a delete
  std::uint64_t revision = 0;
  bool deleted = false;  // a delete or purge marker
};

// What a watch reports: each entry, and once, after the values present when it started, `caught_up`.
struct nats_kv_watch_event {
  std::optional<nats_kv_entry> entry;  // empty: the caught_up marker
};

// Every completion and event runs on the io_context given at construction, never on a libnats
// thread and never inside the call that asked for it. Calls that block in libnats (connect,
// stream and bucket creation, subscribing, every KV operation) run on the link's own worker
// thread, one at a time and in the order they were asked for; publish() does not block and runs
// on the caller's thread. Callers use the link from the io_context's thread only, and one
// thread runs that io_context (what is posted must run in the order it was posted).
//
// The link never calls nats_Close(): libnats keeps process-wide threads and buffers, which the
// program may release once, at the end of main(), with nats_CloseAndWait() after every link is
// gone. Not from a static destructor: libnats 3.4.1 has torn itself down by then, and the call
// crashes. Without it LeakSanitizer reports nothing, so no suppression is needed.
class nats_link {
 public:
  template <class T>
  using completion = std::function<void(nats_result<T>)>;
  using id = std::uint64_t;

  explicit nats_link(asio::io_context& io);
  // Blocks until close() has finished (see there).
  ~nats_link();
  nats_link(const nats_link&) = delete;
  nats_link& operator=(const nats_link&) = delete;

  // Set before connect(); events arrive in the order libnats saw them.
  void on_connection_event(std::function<void(nats_connection_event)> handler);

  // What libnats reports on its own, outside any call: a slow consumer dropping messages, an
  // ordered consumer that could not be recreated. A sentence for the log. Set before connect().
  void on_async_error(std::function<void(std::string)> handler);

  // The first connection must succeed (an error otherwise); after that libnats reconnects
  // forever, reporting `disconnected` and `reconnected`, and buffers publishes meanwhile.
  void connect(nats_options options, completion<void> done);

  // Creates the stream, or updates one of that name to this configuration.
  void ensure_stream(nats_stream_config config, completion<void> done);

  // Stores `payload` under `subject`; `done` gets the stream sequence JetStream acked, or an
  // error (no stream, NATS away longer than request_timeout, too many acks outstanding).
  // Acks may complete out of publish order; the sequences are the stream's order.
  void publish(std::string subject, std::string payload, nats_headers headers, completion<std::uint64_t> done);
  void publish(std::string subject, std::string payload, completion<std::uint64_t> done) {
    publish(std::move(subject), std::move(payload), {}, std::move(done));
  }

  // An ordered push consumer on `filter` (wildcards allowed) of `stream`: every message from
  // `start_seq` on (std::nullopt: only those stored after the consumer exists), in stream
  // order, without gaps or repeats; libnats recreates the consumer itself when it misses one.
  // `ready` gets the id for unsubscribe() once the consumer exists. When the stream itself is
  // gone (a lone NATS node restarted: memory storage), libnats cannot recreate the consumer:
  // it says so through on_async_error ("error recreating ordered consumer ... stream not
  // found") and nothing more arrives, even once the stream is back (seen over 14 s with
  // libnats 3.4.1): the caller ensures the stream and subscribes again.
  void subscribe_ordered(std::string stream, std::string filter, std::optional<std::uint64_t> start_seq,
                         std::function<void(nats_stream_message)> on_message, completion<id> ready);
  void unsubscribe(id subscription);

  void ensure_bucket(nats_bucket_config config, completion<void> done);
  // Writes `value` only if `key` has none (or was deleted): exactly one of several racing
  // creators, on any node, gets `created`; the others get `taken`, never an error.
  void kv_create(std::string bucket, std::string key, std::string value, completion<nats_kv_create_outcome> done);
  void kv_put(std::string bucket, std::string key, std::string value, completion<std::uint64_t> done);
  void kv_get(std::string bucket, std::string key, completion<std::optional<nats_kv_entry>> done);
  void kv_delete(std::string bucket, std::string key, completion<void> done);
  // Every key under `prefix` (dot-separated tokens: "rooms.lobby" watches "rooms.lobby.>";
  // empty watches the whole bucket): the current values, then caught_up, then every put and
  // delete as it happens.
  void kv_watch(std::string bucket, std::string prefix, std::function<void(nats_kv_watch_event)> on_event,
                completion<id> ready);
  void kv_unwatch(id watch);

  // Finishes the worker's queue, stops watches and consumers, closes the connection and
  // frees every libnats object in the order libnats needs. Publishes still waiting for an ack
  // are dropped. Blocks (up to about request_timeout when NATS is away): call it at shutdown
  // only, or let the destructor. Nothing is reported after it returns.
  void close();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace parley_tools
