// SPDX-License-Identifier: MIT
// nats_link over libnats 3.4: a worker thread for the blocking calls, a thread per KV watch
// (3.4 has no callback watcher), and asio::post for everything a user sees.
#include "nats_link.hpp"

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace parley_tools {

std::vector<std::string> split_server_urls(std::string_view list) {
  std::vector<std::string> urls;
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto url = list.substr(0, comma);
    while (!url.empty() && (url.front() == ' ' || url.front() == '\t')) url.remove_prefix(1);
    while (!url.empty() && (url.back() == ' ' || url.back() == '\t')) url.remove_suffix(1);
    if (!url.empty()) urls.emplace_back(url);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return urls;
}

namespace {

// libnats keeps its last error per thread: read it on the thread that failed, right away.
std::string describe(std::string_view what, natsStatus s, jsErrCode js_code = static_cast<jsErrCode>(0)) {
  std::string text{what};
  text += ": ";
  text += natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last != nullptr && *last != '\0') {
    text += " (";
    text += last;
    text += ")";
  }
  if (js_code != 0) text += " [JetStream error " + std::to_string(static_cast<int>(js_code)) + "]";
  return text;
}

nats_result<void> ok() { return {}; }
tl::unexpected<std::string> fail(std::string text) { return tl::unexpected<std::string>(std::move(text)); }

// One thread running jobs in order: the blocking libnats calls, off every asio thread.
class worker {
 public:
  worker() : thread_([this] { run(); }) {}
  ~worker() { stop(); }
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  void post(std::function<void()> job) {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    wake_.notify_one();
  }
  // Runs what is queued, then ends the thread.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

}  // namespace

struct subscription_context {
  nats_link::state* link = nullptr;
  std::function<void(nats_stream_message)> on_message;
  natsSubscription* sub = nullptr;
  std::mutex mutex;
  std::condition_variable finished_cv;
  bool finished = false;  // libnats' on-complete: no message callback runs or will run
};

struct watch_context {
  kvWatcher* watcher = nullptr;
  std::thread thread;
};

struct nats_link::state : std::enable_shared_from_this<nats_link::state> {
  explicit state(asio::io_context& io_context) : io(io_context) {}

  asio::io_context& io;
  std::function<void(nats_connection_event)> on_event;  // set before connect, read on io only
  std::function<void(std::string)> on_error;            // likewise
  bool connected = false;                                // io thread only
  bool closed = false;                                   // io thread only

  // Owned by the worker thread: created and destroyed there only. publish() also reads
  // `js` on the io thread, which is safe once connect's completion (posted after it was
  // set) has run there; close() destroys it only after the worker has stopped taking jobs.
  natsOptions* options = nullptr;
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  std::int64_t request_timeout_ms = 5000;
  std::map<std::string, kvStore*, std::less<>> buckets;
  std::map<id, std::unique_ptr<subscription_context>> subscriptions;
  std::map<id, std::unique_ptr<watch_context>> watches;
  std::atomic<id> next_id{1};

  // Publishes waiting for their ack, by the natsMsg libnats hands back to the ack handler
  // (it keeps that very message until then). Filled on the io thread, emptied on libnats'.
  std::mutex pending_mutex;
  std::unordered_map<const natsMsg*, completion<std::uint64_t>> pending;

  std::mutex closed_mutex;
  std::condition_variable closed_cv;
  bool connection_closed = false;

  worker jobs;  // last: destroyed (joined) first

  // Hands `fn` to the io thread, unless the link is gone by the time it runs there.
  template <class F>
  void deliver(F&& fn) {
    asio::post(io, [weak = weak_from_this(), fn = std::forward<F>(fn)]() mutable {
      if (auto self = weak.lock(); self && !self->closed) fn();
    });
  }
  template <class T>
  void complete(completion<T> done, nats_result<T> result) {
    deliver([done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
  }
  template <class T, class Job>
  void run_on_worker(completion<T> done, Job job) {
    jobs.post([this, done = std::move(done), job = std::move(job)]() mutable {
      if (connection == nullptr) {
        complete<T>(std::move(done), fail("NATS: not connected"));
        return;
      }
      complete<T>(std::move(done), job());
    });
  }

  void connection_event(nats_connection_event e) {
    deliver([this, e] {
      if (on_event) on_event(e);
    });
  }

  nats_result<kvStore*> bucket(std::string_view name) {
    auto it = buckets.find(name);
    if (it == buckets.end()) return fail("NATS KV: bucket " + std::string(name) + " not ensured on this link");
    return it->second;
  }

  void shut_down();  // on the worker, as its last job
};

namespace {

void on_disconnected(natsConnection*, void* closure) {
  static_cast<nats_link::state*>(closure)->connection_event(nats_connection_event::disconnected);
}
void on_reconnected(natsConnection*, void* closure) {
  static_cast<nats_link::state*>(closure)->connection_event(nats_connection_event::reconnected);
}
void on_closed(natsConnection*, void* closure) {
  auto* st = static_cast<nats_link::state*>(closure);
  st->connection_event(nats_connection_event::closed);
  std::lock_guard lock(st->closed_mutex);
  st->connection_closed = true;
  st->closed_cv.notify_all();
}

void on_libnats_error(natsConnection*, natsSubscription* sub, natsStatus s, void* closure) {
  auto* st = static_cast<nats_link::state*>(closure);
  std::string text = describe("NATS", s);
  if (sub != nullptr) {
    const char* subject = natsSubscription_GetSubject(sub);
    text += " on the subscription to ";
    text += subject != nullptr ? subject : "?";
  }
  st->deliver([st, text = std::move(text)]() mutable {
    if (st->on_error) st->on_error(std::move(text));
  });
}

void on_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
  auto* st = static_cast<nats_link::state*>(closure);
  nats_link::completion<std::uint64_t> done;
  {
    std::lock_guard lock(st->pending_mutex);
    auto it = st->pending.find(msg);
    if (it != st->pending.end()) {
      done = std::move(it->second);
      st->pending.erase(it);
    }
  }
  // With an ack handler the message is ours again, whatever the outcome. Freed only once its
  // entry is gone from `pending`, so a new message at the same address cannot be mistaken for it.
  natsMsg_Destroy(msg);
  if (!done) return;
  if (ack != nullptr) {
    st->complete<std::uint64_t>(std::move(done), ack->Sequence);
  } else {
    std::string text = "NATS publish: ";
    const char* status = error != nullptr ? natsStatus_GetText(error->Err) : "no ack";
    text += status;
    if (error != nullptr && error->ErrText != nullptr && std::string_view(error->ErrText) != status) {
      text += " (";
      text += error->ErrText;
      text += ")";
    }
    if (error != nullptr && error->ErrCode != 0)
      text += " [JetStream error " + std::to_string(static_cast<int>(error->ErrCode)) + "]";
    st->complete<std::uint64_t>(std::move(done), fail(std::move(text)));
  }
}

nats_headers read_headers(natsMsg* msg) {
  nats_headers headers;
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) != NATS_OK) return headers;
  for (int i = 0; i < count; ++i) {
    const char** values = nullptr;
    int n = 0;
    if (natsMsgHeader_Values(msg, keys[i], &values, &n) != NATS_OK) continue;
    for (int j = 0; j < n; ++j) headers.emplace_back(keys[i], values[j]);
    std::free(static_cast<void*>(values));
  }
  std::free(static_cast<void*>(keys));
  return headers;
}

// On a libnats delivery thread: copy out what the user needs, free the message, post.
void on_stream_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* ctx = static_cast<subscription_context*>(closure);
  nats_stream_message m;
  m.subject = natsMsg_GetSubject(msg);
  m.payload.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
    m.seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
  }
  m.headers = read_headers(msg);
  natsMsg_Destroy(msg);
  ctx->link->deliver([ctx, m = std::move(m)]() mutable {
    // The context outlives this: unsubscribe() frees it in a handler posted after every message.
    ctx->on_message(std::move(m));
  });
}

void on_subscription_complete(void* closure) {
  auto* ctx = static_cast<subscription_context*>(closure);
  std::lock_guard lock(ctx->mutex);
  ctx->finished = true;
  ctx->finished_cv.notify_all();
}

}  // namespace

nats_link::nats_link(asio::io_context& io) : state_(std::make_shared<state>(io)) {}

nats_link::~nats_link() { close(); }

void nats_link::on_connection_event(std::function<void(nats_connection_event)> handler) {
  state_->on_event = std::move(handler);
}

void nats_link::on_async_error(std::function<void(std::string)> handler) { state_->on_error = std::move(handler); }

void nats_link::connect(nats_options options, completion<void> done) {
  state* st = state_.get();
  st->jobs.post([st, options = std::move(options), done = std::move(done)]() mutable {
    if (st->connection != nullptr) {
      st->complete<void>(std::move(done), fail("NATS: already connected"));
      return;
    }
    auto result = [&]() -> nats_result<void> {
      if (options.servers.empty()) return fail("NATS: no server URL");
      natsStatus s = natsOptions_Create(&st->options);
      if (s != NATS_OK) return fail(describe("NATS options", s));
      std::vector<const char*> urls;
      for (const auto& u : options.servers) urls.push_back(u.c_str());
      s = natsOptions_SetServers(st->options, urls.data(), static_cast<int>(urls.size()));
      if (s == NATS_OK && !options.token.empty()) s = natsOptions_SetToken(st->options, options.token.c_str());
      if (s == NATS_OK && !options.credentials_file.empty())
        s = natsOptions_SetUserCredentialsFromFiles(st->options, options.credentials_file.c_str(), nullptr);
      if (s == NATS_OK) s = natsOptions_SetName(st->options, options.name.c_str());
      if (s == NATS_OK) s = natsOptions_SetMaxReconnect(st->options, -1);
      if (s == NATS_OK) s = natsOptions_SetReconnectWait(st->options, options.reconnect_wait.count());
      if (s == NATS_OK) s = natsOptions_SetTimeout(st->options, options.request_timeout.count());
      if (s == NATS_OK) s = natsOptions_SetSendAsap(st->options, options.send_asap);
      if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(st->options, on_disconnected, st);
      if (s == NATS_OK) s = natsOptions_SetReconnectedCB(st->options, on_reconnected, st);
      if (s == NATS_OK) s = natsOptions_SetClosedCB(st->options, on_closed, st);
      if (s == NATS_OK) s = natsOptions_SetErrorHandler(st->options, on_libnats_error, st);
      if (s != NATS_OK) return fail(describe("NATS options", s));
      s = natsConnection_Connect(&st->connection, st->options);
      if (s != NATS_OK) {
        st->connection = nullptr;
        return fail(describe("NATS connect", s));
      }
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = options.request_timeout.count();
      jo.PublishAsync.AckHandler = on_ack;
      jo.PublishAsync.AckHandlerClosure = st;
      // publish() runs on an asio thread: past this many acks outstanding it fails after a
      // millisecond instead of stalling there.
      jo.PublishAsync.MaxPending = 65536;
      jo.PublishAsync.StallWait = 1;
      st->request_timeout_ms = options.request_timeout.count();
      s = natsConnection_JetStream(&st->js, st->connection, &jo);
      if (s != NATS_OK) return fail(describe("NATS JetStream context", s));
      return ok();
    }();
    if (result) {
      // Flag it on the io thread, before `done` runs there.
      st->deliver([st] { st->connected = true; });
    } else {
      // Back to unconnected, so a later connect() starts clean and no job sees half a link.
      jsCtx_Destroy(st->js);
      st->js = nullptr;
      if (st->connection != nullptr) natsConnection_Close(st->connection);
      natsConnection_Destroy(st->connection);
      st->connection = nullptr;
      natsOptions_Destroy(st->options);
      st->options = nullptr;
    }
    st->complete<void>(std::move(done), std::move(result));
  });
}

void nats_link::ensure_stream(nats_stream_config config, completion<void> done) {
  state* st = state_.get();
  st->run_on_worker<void>(std::move(done), [st, config = std::move(config)]() -> nats_result<void> {
    std::vector<const char*> subjects;
    for (const auto& s : config.subjects) subjects.push_back(s.c_str());
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = config.name.c_str();
    sc.Subjects = subjects.data();
    sc.SubjectsLen = static_cast<int>(subjects.size());
    sc.Storage = js_MemoryStorage;
    sc.MaxAge = std::chrono::duration_cast<std::chrono::nanoseconds>(config.max_age).count();
    sc.MaxMsgsPerSubject = config.max_msgs_per_subject;
    sc.Replicas = config.replicas;
    jsErrCode code = static_cast<jsErrCode>(0);
    jsStreamInfo* info = nullptr;
    natsStatus s = js_AddStream(&info, st->js, &sc, nullptr, &code);
    if (s != NATS_OK && code == JSStreamNameExistErr) {
      // Same name, another configuration (an older node's): make it ours.
      code = static_cast<jsErrCode>(0);
      s = js_UpdateStream(&info, st->js, &sc, nullptr, &code);
    }
    jsStreamInfo_Destroy(info);
    if (s != NATS_OK) return fail(describe("NATS stream " + config.name, s, code));
    return ok();
  });
}

void nats_link::publish(std::string subject, std::string payload, nats_headers headers,
                        completion<std::uint64_t> done) {
  state* st = state_.get();
  if (!st->connected || st->closed) {
    st->complete<std::uint64_t>(std::move(done), fail("NATS publish: not connected"));
    return;
  }
  natsMsg* msg = nullptr;
  natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, payload.data(), static_cast<int>(payload.size()));
  for (const auto& [key, value] : headers)
    if (s == NATS_OK) s = natsMsgHeader_Add(msg, key.c_str(), value.c_str());
  if (s != NATS_OK) {
    natsMsg_Destroy(msg);
    st->complete<std::uint64_t>(std::move(done), fail(describe("NATS publish " + subject, s)));
    return;
  }
  // In the table before libnats has it: its ack may arrive before js_PublishMsgAsync returns.
  const natsMsg* key = msg;
  {
    std::lock_guard lock(st->pending_mutex);
    st->pending.emplace(key, std::move(done));
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = st->request_timeout_ms;
  s = js_PublishMsgAsync(st->js, &msg, &po);
  if (s != NATS_OK) {
    // libnats took ownership only on success (it then sets msg to NULL).
    std::string text = describe("NATS publish " + subject, s);
    natsMsg_Destroy(msg);
    completion<std::uint64_t> failed;
    {
      std::lock_guard lock(st->pending_mutex);
      auto it = st->pending.find(key);
      if (it != st->pending.end()) {
        failed = std::move(it->second);
        st->pending.erase(it);
      }
    }
    if (failed) st->complete<std::uint64_t>(std::move(failed), fail(std::move(text)));
  }
}

void nats_link::subscribe_ordered(std::string stream, std::string filter, std::optional<std::uint64_t> start_seq,
                                  std::function<void(nats_stream_message)> on_message, completion<id> ready) {
  state* st = state_.get();
  st->run_on_worker<id>(std::move(ready), [st, stream = std::move(stream), filter = std::move(filter), start_seq,
                                           on_message = std::move(on_message)]() mutable -> nats_result<id> {
    auto ctx = std::make_unique<subscription_context>();
    ctx->link = st;
    ctx->on_message = std::move(on_message);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Ordered = true;
    if (start_seq) {
      so.Config.DeliverPolicy = js_DeliverByStartSequence;
      so.Config.OptStartSeq = *start_seq;
    } else {
      so.Config.DeliverPolicy = js_DeliverNew;
    }
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s =
        js_Subscribe(&ctx->sub, st->js, filter.c_str(), on_stream_message, ctx.get(), nullptr, &so, &code);
    if (s != NATS_OK) return fail(describe("NATS ordered consumer on " + filter, s, code));
    s = natsSubscription_SetOnCompleteCB(ctx->sub, on_subscription_complete, ctx.get());
    if (s != NATS_OK) {
      auto text = describe("NATS ordered consumer on " + filter, s);
      natsSubscription_Unsubscribe(ctx->sub);
      natsSubscription_Destroy(ctx->sub);
      return fail(std::move(text));
    }
    const id i = st->next_id++;
    st->subscriptions.emplace(i, std::move(ctx));
    return i;
  });
}

namespace {

// On the worker: after this no callback of the subscription runs or will run.
void end_subscription(subscription_context& ctx, std::int64_t timeout_ms) {
  natsSubscription_Unsubscribe(ctx.sub);
  std::unique_lock lock(ctx.mutex);
  ctx.finished_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return ctx.finished; });
}

}  // namespace

void nats_link::unsubscribe(id subscription) {
  state* st = state_.get();
  st->jobs.post([st, subscription] {
    auto it = st->subscriptions.find(subscription);
    if (it == st->subscriptions.end()) return;
    end_subscription(*it->second, st->request_timeout_ms);
    natsSubscription_Destroy(it->second->sub);
    // Messages already posted to the io thread refer to the context: free it there, after them.
    auto ctx = std::shared_ptr<subscription_context>(std::move(it->second));
    st->subscriptions.erase(it);
    asio::post(st->io, [ctx] {});
  });
}

void nats_link::ensure_bucket(nats_bucket_config config, completion<void> done) {
  state* st = state_.get();
  st->run_on_worker<void>(std::move(done), [st, config = std::move(config)]() -> nats_result<void> {
    if (st->buckets.count(config.name) != 0) return ok();
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = config.name.c_str();
    kc.History = 1;
    // Nanoseconds in libnats 3.4: it copies TTL into the stream's MaxAge as it is (later
    // releases document milliseconds; a millisecond count here is refused, "max age needs to be >= 100ms").
    kc.TTL = std::chrono::duration_cast<std::chrono::nanoseconds>(config.ttl).count();
    kc.StorageType = js_MemoryStorage;
    kc.Replicas = config.replicas;
    kvStore* kv = nullptr;
    // Creates the bucket, or binds to it when one of that name exists (another node made it).
    natsStatus s = js_CreateKeyValue(&kv, st->js, &kc);
    if (s != NATS_OK) return fail(describe("NATS KV bucket " + config.name, s));
    st->buckets.emplace(config.name, kv);
    return ok();
  });
}

void nats_link::kv_create(std::string bucket, std::string key, std::string value,
                          completion<nats_kv_create_outcome> done) {
  state* st = state_.get();
  st->run_on_worker<nats_kv_create_outcome>(
      std::move(done),
      [st, bucket = std::move(bucket), key = std::move(key),
       value = std::move(value)]() -> nats_result<nats_kv_create_outcome> {
        auto kv = st->bucket(bucket);
        if (!kv) return fail(kv.error());
        natsStatus s = kvStore_Create(nullptr, *kv, key.c_str(), value.data(), static_cast<int>(value.size()));
        if (s == NATS_OK) return nats_kv_create_outcome::created;
        // libnats 3.4 reports "the key has a value" only as NATS_ERR with JetStream's text for
        // error 10071 in the thread's last error ("wrong last sequence: N"); kvStore_Create
        // hands back no jsErrCode.
        std::string text = describe("NATS KV create " + bucket + "/" + key, s);
        if (s == NATS_ERR && text.find("wrong last sequence") != std::string::npos) return nats_kv_create_outcome::taken;
        return fail(std::move(text));
      });
}

void nats_link::kv_put(std::string bucket, std::string key, std::string value, completion<std::uint64_t> done) {
  state* st = state_.get();
  st->run_on_worker<std::uint64_t>(
      std::move(done),
      [st, bucket = std::move(bucket), key = std::move(key), value = std::move(value)]() -> nats_result<std::uint64_t> {
        auto kv = st->bucket(bucket);
        if (!kv) return fail(kv.error());
        std::uint64_t revision = 0;
        natsStatus s = kvStore_Put(&revision, *kv, key.c_str(), value.data(), static_cast<int>(value.size()));
        if (s != NATS_OK) return fail(describe("NATS KV put " + bucket + "/" + key, s));
        return revision;
      });
}

namespace {

nats_kv_entry to_entry(kvEntry* e) {
  nats_kv_entry entry;
  entry.key = kvEntry_Key(e);
  const auto op = kvEntry_Operation(e);
  entry.deleted = op == kvOp_Delete || op == kvOp_Purge;
  if (!entry.deleted && kvEntry_ValueLen(e) > 0)
    entry.value.assign(static_cast<const char*>(kvEntry_Value(e)), static_cast<std::size_t>(kvEntry_ValueLen(e)));
  entry.revision = kvEntry_Revision(e);
  return entry;
}

}  // namespace

void nats_link::kv_get(std::string bucket, std::string key, completion<std::optional<nats_kv_entry>> done) {
  state* st = state_.get();
  st->run_on_worker<std::optional<nats_kv_entry>>(
      std::move(done),
      [st, bucket = std::move(bucket), key = std::move(key)]() -> nats_result<std::optional<nats_kv_entry>> {
        auto kv = st->bucket(bucket);
        if (!kv) return fail(kv.error());
        kvEntry* e = nullptr;
        natsStatus s = kvStore_Get(&e, *kv, key.c_str());
        // A deleted key is NATS_NOT_FOUND too: libnats hides the marker from Get.
        if (s == NATS_NOT_FOUND) return std::optional<nats_kv_entry>{};
        if (s != NATS_OK) return fail(describe("NATS KV get " + bucket + "/" + key, s));
        auto entry = to_entry(e);
        kvEntry_Destroy(e);
        return std::optional<nats_kv_entry>{std::move(entry)};
      });
}

void nats_link::kv_delete(std::string bucket, std::string key, completion<void> done) {
  state* st = state_.get();
  st->run_on_worker<void>(std::move(done),
                          [st, bucket = std::move(bucket), key = std::move(key)]() -> nats_result<void> {
                            auto kv = st->bucket(bucket);
                            if (!kv) return fail(kv.error());
                            natsStatus s = kvStore_Delete(*kv, key.c_str());
                            if (s != NATS_OK) return fail(describe("NATS KV delete " + bucket + "/" + key, s));
                            return ok();
                          });
}

void nats_link::kv_watch(std::string bucket, std::string prefix, std::function<void(nats_kv_watch_event)> on_event,
                         completion<id> ready) {
  state* st = state_.get();
  st->run_on_worker<id>(std::move(ready), [st, bucket = std::move(bucket), prefix = std::move(prefix),
                                           on_event = std::move(on_event)]() mutable -> nats_result<id> {
    auto kv = st->bucket(bucket);
    if (!kv) return fail(kv.error());
    const std::string keys = prefix.empty() ? std::string(">") : prefix + ".>";
    auto ctx = std::make_unique<watch_context>();
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    natsStatus s = kvStore_Watch(&ctx->watcher, *kv, keys.c_str(), &wo);
    if (s != NATS_OK) return fail(describe("NATS KV watch " + bucket + "/" + keys, s));
    // libnats 3.4 offers only a blocking kvWatcher_Next: one thread per watch waits on it,
    // until kv_unwatch()'s kvWatcher_Stop makes it return NATS_ILLEGAL_STATE.
    ctx->thread = std::thread([st, w = ctx->watcher, on_event = std::move(on_event)] {
      for (;;) {
        kvEntry* e = nullptr;
        natsStatus ws = kvWatcher_Next(&e, w, 60'000);
        if (ws == NATS_TIMEOUT) continue;
        if (ws != NATS_OK) return;
        nats_kv_watch_event event;
        if (e != nullptr) {
          event.entry = to_entry(e);
          kvEntry_Destroy(e);
        }
        st->deliver([on_event, event = std::move(event)]() mutable { on_event(std::move(event)); });
      }
    });
    const id i = st->next_id++;
    st->watches.emplace(i, std::move(ctx));
    return i;
  });
}

namespace {

void end_watch(watch_context& ctx) {
  kvWatcher_Stop(ctx.watcher);
  if (ctx.thread.joinable()) ctx.thread.join();
  kvWatcher_Destroy(ctx.watcher);
}

}  // namespace

void nats_link::kv_unwatch(id watch) {
  state* st = state_.get();
  st->jobs.post([st, watch] {
    auto it = st->watches.find(watch);
    if (it == st->watches.end()) return;
    end_watch(*it->second);
    st->watches.erase(it);
  });
}

// Children before parents: watchers and consumers, then KV stores, then the connection
// (closed and its closed callback seen, so libnats calls nothing of ours any more), then the
// JetStream context, the connection object and the options.
void nats_link::state::shut_down() {
  for (auto& [i, w] : watches) end_watch(*w);
  watches.clear();
  for (auto& [i, s] : subscriptions) end_subscription(*s, request_timeout_ms);
  for (auto& [i, s] : subscriptions) natsSubscription_Destroy(s->sub);
  for (auto& [name, kv] : buckets) kvStore_Destroy(kv);
  buckets.clear();
  if (connection != nullptr) {
    natsConnection_Close(connection);
    std::unique_lock lock(closed_mutex);
    closed_cv.wait_for(lock, std::chrono::milliseconds(request_timeout_ms), [&] { return connection_closed; });
  }
  // Subscription contexts only now: the connection's close could still have been delivering.
  subscriptions.clear();
  jsCtx_Destroy(js);
  js = nullptr;
  natsConnection_Destroy(connection);
  connection = nullptr;
  natsOptions_Destroy(options);
  options = nullptr;
  std::lock_guard lock(pending_mutex);
  pending.clear();
}

void nats_link::close() {
  if (!state_ || state_->closed) return;
  state* st = state_.get();
  // Nothing more reaches the user, even what libnats reports while closing.
  st->closed = true;
  st->connected = false;
  st->jobs.post([st] { st->shut_down(); });
  st->jobs.stop();
}

}  // namespace parley_tools
