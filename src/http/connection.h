// What the HTTP server's connections share: the io types, the Connection base of a plain HTTP
// connection (Session, server.cpp) and of an event stream (EventStream, event_stream.h), the
// per-io-thread Inbox that brings answers and wake-ups to them, and the ServerCore that owns
// the router, the stats and the registry of open connections. Internal to src/http.
#pragma once

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "http/event_streams.h"
#include "http/http_config.h"
#include "http/http_deps.h"
#include "http/http_stats.h"
#include "http/responses.h"
#include "http/router.h"

namespace vigil::http {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
// Each io thread runs its own io_context, and a connection lives on one of them: its handlers
// never run concurrently, so there are no strands, and executors are plain pointers (no
// type-erased, reference-counted copies per operation).
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using Stream = beast::basic_stream<tcp, Executor>;
using Timer = net::basic_waitable_timer<steady, net::wait_traits<steady>, Executor>;

inline constexpr size_t kReadChunk = 4096;

// One client connection on one io thread. Every method runs on that thread.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  virtual ~Connection() = default;
  virtual Executor executor() = 0;
  // Server stop, phase 1: finish what was read, then close.
  virtual void shutdown_gracefully() = 0;
  // Server stop, phase 2; or displaced at http.max_connections.
  virtual void force_close() = 0;
  // Request `seq` is answered (from the Inbox).
  virtual void answer(uint64_t /*seq*/, Response /*res*/) {}
  // An event stream has a frame to write (from the Inbox).
  virtual void wake() {}
};

// Hands answers from scoring worker threads (and event-stream wake-ups) to one io thread's
// connections. A worker appends under a short lock; only the first item since the io thread last
// drained posts to the io_context, so the answers a batch completes for this thread cost one
// hand-off (one wake-up), not one each. An answer given on the io thread itself (a batch scored
// inline, a route that answers at once) goes to its connection at once: a post would cost a
// turn of the io loop. Wake-ups are always posted (an event stream's feed may wake it from
// inside its own pump). Before open() and after close() it drops everything, so
// nothing is posted to an io_context that is gone. Completions hold a shared_ptr to it (never an
// executor, which must not outlive its io_context).
class Inbox : public std::enable_shared_from_this<Inbox> {
 public:
  void open(net::io_context& ioc) {
    std::lock_guard<std::mutex> lock(mutex_);
    ioc_ = &ioc;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    ioc_ = nullptr;
    items_.clear();
  }
  // Request `seq` of `connection` is answered `res` (any thread).
  void answer(std::weak_ptr<Connection> connection, uint64_t seq, Response res) {
    put(Item{std::move(connection), seq, std::move(res)});
  }
  // The event stream `connection` has a frame to write (any thread).
  void wake(std::weak_ptr<Connection> connection) {
    put(Item{std::move(connection), 0, std::nullopt});
  }

 private:
  struct Item {
    std::weak_ptr<Connection> connection;
    uint64_t seq = 0;
    std::optional<Response> res;  // none: a wake-up
  };
  void put(Item item) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (ioc_ == nullptr) return;
    if (item.res && ioc_->get_executor().running_in_this_thread()) {
      lock.unlock();
      deliver(item);
      return;
    }
    items_.push_back(std::move(item));
    if (scheduled_) return;
    scheduled_ = true;
    net::post(*ioc_, [self = shared_from_this()] { self->drain(); });
  }
  void drain() {  // on the io thread
    {
      std::lock_guard<std::mutex> lock(mutex_);
      draining_.swap(items_);
      scheduled_ = false;
    }
    for (Item& item : draining_) deliver(item);
    draining_.clear();
  }
  static void deliver(Item& item) {  // on the io thread
    if (auto connection = item.connection.lock()) {
      if (item.res) {
        connection->answer(item.seq, std::move(*item.res));
      } else {
        connection->wake();
      }
    }
  }

  std::mutex mutex_;
  net::io_context* ioc_ = nullptr;  // guarded by mutex_
  std::vector<Item> items_;         // guarded by mutex_
  bool scheduled_ = false;          // guarded by mutex_: a drain is posted and has not swapped
  std::vector<Item> draining_;      // io thread only
};

// What connections share; owned by HttpServer::Impl and outliving every Connection
// (connections die on the io threads or, at the latest, while the io_context is destroyed).
struct ServerCore {
  ServerCore(const HttpConfig& c, HttpDeps deps)
      : config(c),
        log(logger("http")),
        stats(*deps.registry),
        events(deps.events),
        router(c, std::move(deps)) {}

  const HttpConfig config;
  const std::shared_ptr<spdlog::logger> log;
  HttpStats stats;
  EventStreams* const events;  // null: no live view
  Router router;

  struct Entry {
    std::weak_ptr<Connection> connection;
    Executor executor;  // the connection's io thread
    steady::time_point accepted;
    bool awaiting_header = true;  // no whole request header read yet: may be displaced
    bool displaced = false;       // picked to make room; its close is on its way
    bool closing = false;         // closed on its own (a timeout, the client): never displaced
  };
  std::mutex sessions_mutex;
  std::condition_variable sessions_cv;
  std::unordered_map<const Connection*, Entry> sessions;  // guarded by sessions_mutex
  // Entries displaced or closing and not yet removed (a connection is removed when its last
  // handler lets go of it, later than its close); guarded by sessions_mutex.
  size_t leaving = 0;

  // Registers a connection (accepted, or an event stream taking over one).
  void add(const std::shared_ptr<Connection>& c, bool awaiting_header) {
    std::lock_guard<std::mutex> lock(sessions_mutex);
    Entry e{c, c->executor(), steady::now()};
    e.awaiting_header = awaiting_header;
    sessions.insert_or_assign(c.get(), std::move(e));
  }
  size_t session_count() {
    std::lock_guard<std::mutex> lock(sessions_mutex);
    return sessions.size();
  }
  void remove(const Connection* s) {
    std::lock_guard<std::mutex> lock(sessions_mutex);
    auto it = sessions.find(s);
    if (it == sessions.end()) return;
    if (it->second.displaced || it->second.closing) --leaving;
    sessions.erase(it);
    sessions_cv.notify_all();
  }
  // The connection closes on its own: from here on it is not picked to make room, and no longer
  // counts against the cap. Whether it had been picked already: its close then counts as a
  // displacement, not as what closed it here (a header timeout racing the accept that picked
  // it, on another io thread, counted it twice before).
  bool closing(const Connection* s) {
    std::lock_guard<std::mutex> lock(sessions_mutex);
    auto it = sessions.find(s);
    if (it == sessions.end()) return false;
    Entry& e = it->second;
    if (!e.displaced && !e.closing) ++leaving;
    e.closing = true;
    return e.displaced;
  }
  // The connection has sent a whole request header: it is no longer displaced at the cap.
  void header_received(const Connection* s) {
    std::lock_guard<std::mutex> lock(sessions_mutex);
    if (auto it = sessions.find(s); it != sessions.end()) it->second.awaiting_header = false;
  }
  // Whether a new connection may be admitted under http.max_connections. At the cap the oldest
  // connection still waiting for its first whole header is picked and returned in `displace`
  // (the caller closes it on its io thread); when every connection has sent one, false. The
  // displaced one counts as gone from here on, so connections stay within the cap plus the
  // closes still on their way. O(connections) per admission at the cap, which a flood at the cap
  // pays per accept: 1,024 entries scanned, microseconds, against a TCP handshake.
  bool admit(std::optional<Entry>& displace) {
    std::lock_guard<std::mutex> lock(sessions_mutex);
    if (sessions.size() - leaving < config.max_connections) return true;
    Entry* oldest = nullptr;
    for (auto& [_, e] : sessions) {
      if (e.awaiting_header && !e.displaced && !e.closing &&
          (oldest == nullptr || e.accepted < oldest->accepted))
        oldest = &e;
    }
    if (oldest == nullptr) return false;
    oldest->displaced = true;
    ++leaving;
    displace = *oldest;
    return true;
  }
};

}  // namespace vigil::http
