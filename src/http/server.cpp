#include "http/server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <deque>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "common/files.h"
#include "http/connection.h"
#include "http/event_stream.h"
#include "http/inline_batch.h"

namespace vigil::http {

namespace bhttp = beast::http;

namespace {

constexpr size_t kHeaderLimit = 16 * 1024;  // request line + headers
// What a connection buffers before parsing, at most. Beast's parser takes body bytes out of the
// buffer as they come (into the body, capped by http.max_body_bytes), but waits for a whole
// chunk-size line (with its extensions) or a whole trailer section in the buffer, and bounds
// neither: without this cap a client that never ends one grows the buffer for as long as
// http.read_timeout_ms lets it. Past the cap the read fails with http::error::buffer_overflow
// (400, then close). It also bounds what pipelining reads ahead.
constexpr size_t kMaxBufferedBytes = kHeaderLimit + kReadChunk;
// After the last response of a connection, the send side is shut and whatever the client still
// sends (the rest of a refused body) is read and dropped for a moment, so that closing does not
// reset the connection before the client has read the response.
constexpr std::chrono::milliseconds kLingerTime{500};
constexpr size_t kLingerBytes = 256 * 1024;
constexpr std::chrono::milliseconds kForcedCloseWait{500};

// One io thread: its io_context, run by it alone, and the inbox of its connections.
struct IoThread {
  net::io_context ioc{1};  // concurrency hint: one thread
  net::executor_work_guard<Executor> work{ioc.get_executor()};
  const std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
  std::unique_ptr<InlineBatch> inline_batch;  // with HttpDeps::batcher
  std::thread thread;
};

bool is_http_parse_error(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

// One connection, on one io thread. It is kept alive by the operations and the timer it has
// pending, never by scoring completions (they hold a weak_ptr and come in through its thread's
// Inbox), so it can die while its requests are still being scored.
class Session final : public Connection {
 public:
  Session(Socket&& socket, ServerCore& core, std::shared_ptr<Inbox> inbox,
          InlineBatch* inline_batch)
      : core_(core),
        inbox_(std::move(inbox)),
        inline_batch_(inline_batch),
        stream_(std::move(socket)),
        deadline_timer_(stream_.get_executor()),
        header_deadline_(steady::now() + core_.config.header_timeout) {
    core_.stats.connection_opened();
  }
  ~Session() override {
    if (!handed_over_) core_.stats.connection_closed();  // else the event stream counts it
    core_.remove(this);
  }

  Executor executor() override { return executor_; }

  void start() {
    net::dispatch(executor_, [self = self()] {
      // For the writes tried at once (flush): a non-blocking socket says would_block where a
      // blocking one would stall the io thread. Without it every write is asynchronous.
      beast::error_code ec;
      self->stream_.socket().non_blocking(true, ec);
      self->write_at_once_ = !ec;
      self->maybe_read();
    });
  }

  // Server stop, phase 1: read nothing more, answer what was read (the last answer says
  // Connection: close), then close. An event stream not started yet is ended (its last frame
  // says why); one started already is told too.
  void shutdown_gracefully() override {
    if (auto stream = handed_to_.lock()) return stream->shutdown_gracefully();
    if (pending_stream_) pending_stream_->shutdown_gracefully();
    no_more_requests_ = true;
    if (reading_ && !writing_) cancel_read();
    if (!reading_ && !writing_ && slots_.empty()) close();
  }

  void force_close() override {
    if (auto stream = handed_to_.lock()) return stream->force_close();
    close();
  }

  void answer(uint64_t seq, Response res) override { fill(seq, std::move(res)); }

  // Records the answer to request `seq` unless it has one already (a late completion after
  // the deadline), then writes what can be written in order.
  void fill(uint64_t seq, Response res) {
    Slot* s = find(seq);
    if (s == nullptr || s->response) return;
    s->response = std::move(res);
    core_.stats.request_answered(s->route, s->response->result_int(), steady::now() - s->started);
    flush();
  }

 private:
  std::shared_ptr<Session> self() { return std::static_pointer_cast<Session>(shared_from_this()); }

  // A request read and not yet answered, in arrival order.
  struct Slot {
    uint64_t seq = 0;
    RouteId route = RouteId::kUnmatched;
    steady::time_point started;
    steady::time_point deadline;  // started + http.request_timeout
    unsigned version = 11;
    std::optional<Response> response;  // set once answered
    bool stream = false;               // GET /v1/events admitted: streamed once at the front
  };

  // -- reading -------------------------------------------------------------------------------

  // Requests already buffered are parsed, answered and written without a turn of the io loop
  // where they can be (parse_buffered, an answer given at once, a write the socket takes whole),
  // and each of those steps may call maybe_read again: a call made while one is running only
  // asks the running one to look again, so pipelined requests are taken in a loop, not in a
  // recursion as deep as the buffer holds requests.
  void maybe_read() {
    if (in_maybe_read_) {
      read_again_ = true;
      return;
    }
    in_maybe_read_ = true;
    do {
      read_again_ = false;
      read_next();
    } while (read_again_);
    in_maybe_read_ = false;
  }

  void read_next() {
    if (reading_ || no_more_requests_ || closed_) return;
    if (slots_.size() >= kMaxPipelinedRequests) return;  // resumes after a write
    // Nothing buffered and answers pending: write them before waiting for more, so that the
    // idle timeout only runs while nothing is in flight.
    if (buffer_.size() == 0 && !slots_.empty()) return;
    reading_ = true;
    if (buffer_.size() == 0) {
      // A new connection has http.header_timeout_ms from its accept for its first header; a
      // keep-alive one may idle for http.idle_timeout_ms before the next request begins.
      if (header_seen_) {
        stream_.expires_after(core_.config.idle_timeout);
      } else {
        stream_.expires_at(header_deadline_);
      }
      stream_.async_read_some(buffer_.prepare(kReadChunk),
                              beast::bind_front_handler(&Session::on_first_bytes, self()));
    } else {
      read_header();
    }
  }

  void on_first_bytes(beast::error_code ec, size_t n) {
    if (ec) return on_read_error(ec, header_seen_ ? ReadPhase::kIdle : ReadPhase::kHeader);
    buffer_.commit(n);
    read_header();
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(core_.config.max_body_bytes);
    // The header within http.header_timeout_ms (counted from the accept for the first request,
    // from its first byte for the next ones), the whole request within http.read_timeout_ms
    // from its first byte: a trickling client is cut off either way.
    const steady::time_point now = steady::now();
    if (header_seen_) header_deadline_ = now + core_.config.header_timeout;
    request_deadline_ = now + core_.config.read_timeout;
    if (parse_buffered()) return;
    stream_.expires_at(std::min(header_deadline_, request_deadline_));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, self()));
  }

  // Parses what the buffer holds. Returns false, having consumed nothing, when it holds no whole
  // header; otherwise goes on as a completed async_read_header would (on_header: the request
  // taken, its body read on, or the parse error answered). A request that came in one piece, the
  // usual case, so costs no asynchronous read (whose completion, even at once, is posted: one
  // more turn of the io loop, with its epoll_wait, per request).
  bool parse_buffered() {
    beast::error_code ec;
    parser_->eager(true);
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec || n == 0) break;
    }
    if (ec == bhttp::error::need_more) ec = {};
    if (!ec && !parser_->is_header_done()) return false;
    on_header(ec, 0);
    return true;
  }

  void on_header(beast::error_code ec, size_t) {
    if (ec) {
      const bool header_late = header_deadline_ <= request_deadline_;
      return on_read_error(ec, header_late ? ReadPhase::kHeader : ReadPhase::kBody);
    }
    if (!header_seen_) {
      header_seen_ = true;
      core_.header_received(this);
    }
    if (parser_->is_done()) return on_request();
    stream_.expires_at(request_deadline_);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_body, self()));
  }

  void on_body(beast::error_code ec, size_t) {
    if (ec) return on_read_error(ec, ReadPhase::kBody);
    on_request();
  }

  void on_request() {
    reading_ = false;
    Request req = parser_->release();
    parser_.reset();
    if (!req.keep_alive()) no_more_requests_ = true;
    RouteMatch route = match_route(req.target());
    const uint64_t seq = add_slot(route.id, req.version());
    if (route.id == RouteId::kEvents && req.method() == bhttp::verb::get) {
      return open_stream(seq, req);
    }
    core_.router.handle(route, std::move(req), respond_for(seq), inline_batch_);
    maybe_read();
  }

  // Where a read failed: waiting for a keep-alive connection's next request, reading a header
  // (or a new connection's first bytes), or reading a body.
  enum class ReadPhase { kIdle, kHeader, kBody };

  void on_read_error(beast::error_code ec, ReadPhase phase) {
    reading_ = false;
    no_more_requests_ = true;
    if (closed_) return;
    if (ec == bhttp::error::body_limit) {
      const auto& header = parser_->get();
      const uint64_t seq = add_slot(match_route(header.target()).id, header.version());
      fill(seq, error_response(413, "request body exceeds http.max_body_bytes (" +
                                        std::to_string(core_.config.max_body_bytes) + " bytes)"));
      return;
    }
    if (ec == beast::error::timeout) {             // the stream has closed the socket already
      const bool displaced = core_.closing(this);  // then counted as displaced already
      if (phase == ReadPhase::kHeader && !displaced) {
        core_.stats.header_timed_out();
        core_.log->debug("http: request header not read within {} ms, connection closed",
                         core_.config.header_timeout.count());
      } else if (phase == ReadPhase::kBody) {
        core_.stats.read_timed_out();
        core_.log->debug("http: request not read within {} ms, connection closed",
                         core_.config.read_timeout.count());
      }
      return close();
    }
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted) {
      // The client is done sending (or we stopped reading): answer what was read, then close.
      if (slots_.empty() && !writing_) close();
      return;
    }
    if (ec == bhttp::error::buffer_overflow || ec == bhttp::error::header_limit) {
      const uint64_t seq = add_slot(RouteId::kUnmatched, 11);
      fill(seq, error_response(400, "request header, chunk-size line or trailer longer than " +
                                        std::to_string(kHeaderLimit) + " bytes"));
      return;
    }
    if (is_http_parse_error(ec) && ec != bhttp::error::partial_message) {
      const uint64_t seq = add_slot(RouteId::kUnmatched, 11);
      fill(seq, error_response(400, "malformed HTTP request: " + ec.message()));
      return;
    }
    close();  // reset, partial message: nobody to answer
  }

  void cancel_read() {
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
  }

  // -- answering -----------------------------------------------------------------------------

  uint64_t add_slot(RouteId route, unsigned version) {
    Slot& s = slots_.emplace_back();
    s.seq = next_seq_++;
    s.route = route;
    s.started = steady::now();
    s.deadline = s.started + core_.config.request_timeout;
    s.version = version;
    if (!deadline_armed_) arm_deadline(s.deadline);
    return s.seq;
  }

  Slot* find(uint64_t seq) {
    if (slots_.empty() || seq < slots_.front().seq) return nullptr;
    const uint64_t i = seq - slots_.front().seq;
    return i < slots_.size() ? &slots_[i] : nullptr;
  }

  // The Respond handed to the router: may run on a scoring worker thread, after this session
  // or the whole server is gone. Holds only a weak reference to the session.
  Respond respond_for(uint64_t seq) {
    return [inbox = inbox_, weak = weak_from_this(), seq](Response res) {
      inbox->answer(weak, seq, std::move(res));
    };
  }

  // http.request_timeout: one timer per connection, armed for the oldest unanswered request
  // (the earliest deadline) and not touched when requests are answered in time, so a busy
  // connection pays one timer wait per timeout period, not one per request.
  void arm_deadline(steady::time_point at) {
    deadline_armed_ = true;
    deadline_timer_.expires_at(at);
    deadline_timer_.async_wait([self = self()](beast::error_code ec) {
      self->deadline_armed_ = false;
      if (!ec && !self->closed_) self->on_deadlines();
    });
  }

  void on_deadlines() {
    const steady::time_point now = steady::now();
    std::optional<steady::time_point> next;
    // The late ones first, answered after: an answer may be written at once, which removes its
    // slot (and those answered behind it) from slots_.
    std::vector<uint64_t> late;
    for (const Slot& s : slots_) {
      if (s.response || s.stream) continue;
      if (s.deadline > now) {
        next = next ? std::min(*next, s.deadline) : s.deadline;
      } else {
        late.push_back(s.seq);
      }
    }
    for (const uint64_t seq : late) {
      core_.stats.request_timed_out();
      fill(seq, error_response(503, "not answered within http.request_timeout_ms (" +
                                        std::to_string(core_.config.request_timeout.count()) +
                                        " ms), retry later"));
    }
    if (next && !closed_) arm_deadline(*next);
  }

  void flush() {
    if (writing_ || closed_ || slots_.empty()) return;
    if (slots_.front().stream) return start_stream();
    if (!slots_.front().response) return;
    Slot& s = slots_.front();
    Response& res = *s.response;
    // The last answer before the connection closes says so.
    const bool last = no_more_requests_ && slots_.size() == 1;
    res.version(s.version);
    res.keep_alive(!last);
    res.prepare_payload();
    writing_ = true;
    // The answer in one buffer, one send: Beast's serializer hands the socket a buffer per
    // field (a send of ten pieces), and walking them cost more than the copy (measured with
    // perf at 256 connections).
    wire_.clear();
    append_wire(res, wire_);
    // Written at once where the socket takes it (the socket is non-blocking for this): an
    // asynchronous write that completes at once still posts its completion, one more turn of the
    // io loop per answer. What the socket does not take is written asynchronously, from where
    // it stopped.
    size_t sent = 0;
    if (write_at_once_) {
      beast::error_code ec;
      sent = stream_.socket().write_some(net::buffer(wire_), ec);  // 0 on an error
      if (ec != net::error::would_block && (ec || sent == wire_.size())) return on_write(ec, sent);
    }
    stream_.expires_after(core_.config.read_timeout);
    net::async_write(stream_, net::buffer(wire_.data() + sent, wire_.size() - sent),
                     beast::bind_front_handler(&Session::on_write, self()));
  }

  void on_write(beast::error_code ec, size_t) {
    writing_ = false;
    if (ec) return close();
    const bool keep_alive = slots_.front().response->keep_alive();
    slots_.pop_front();
    if (!keep_alive || (no_more_requests_ && slots_.empty())) {
      if (reading_) cancel_read();
      return linger_close();
    }
    if (no_more_requests_ && reading_) cancel_read();
    flush();
    maybe_read();
  }

  // -- event streams (GET /v1/events) ---------------------------------------------------------
  // The stream is the connection's last answer: nothing more is read. Once the answers before
  // it are written, the EventStream takes the socket over and this session ends.

  void open_stream(uint64_t seq, const Request& req) {
    auto stream = std::make_shared<EventStream>(core_, inbox_, executor_);
    Response refusal;
    if (!stream->subscribe(req, refusal)) {
      fill(seq, std::move(refusal));
      maybe_read();
      return;
    }
    pending_stream_ = std::move(stream);
    no_more_requests_ = true;
    find(seq)->stream = true;  // a stream has no request timeout
    flush();
  }

  void start_stream() {
    const Slot& s = slots_.front();
    core_.stats.request_answered(s.route, 200, steady::now() - s.started);
    slots_.pop_front();  // the last slot: nothing was read after it
    handed_over_ = true;
    closed_ = true;  // nothing is pending on stream_: no read (the last request is read), no
    deadline_timer_.cancel();  // write (flush() found none), and this timer is cancelled
    std::shared_ptr<EventStream> stream = std::move(pending_stream_);
    handed_to_ = stream;
    stream->start(std::move(stream_));
  }

  // -- closing -------------------------------------------------------------------------------

  void linger_close() {
    if (closed_) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec || reading_) return close();
    stream_.expires_after(kLingerTime);
    linger_read();
  }

  void linger_read() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = self()](beast::error_code ec, size_t n) {
                              self->linger_bytes_ += n;
                              if (ec || self->linger_bytes_ > kLingerBytes) return self->close();
                              self->linger_read();
                            });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    core_.closing(this);  // not displaced from here on: it is on its way out
    no_more_requests_ = true;
    pending_stream_.reset();   // not started: unsubscribes
    deadline_timer_.cancel();  // releases this session
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  ServerCore& core_;
  const std::shared_ptr<Inbox> inbox_;  // of this connection's io thread
  InlineBatch* const inline_batch_;     // of this connection's io thread; may be null
  Stream stream_;
  const Executor executor_ = stream_.get_executor();
  Timer deadline_timer_;  // http.request_timeout of the oldest unanswered request
  bool deadline_armed_ = false;
  steady::time_point header_deadline_;   // of the request being read (or the first one)
  steady::time_point request_deadline_;  // http.read_timeout of the request being read
  bool header_seen_ = false;             // a whole request header has been read
  beast::flat_buffer buffer_{kMaxBufferedBytes};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::deque<Slot> slots_;
  std::string wire_;  // the answer being written, as it goes on the wire (capacity kept)
  uint64_t next_seq_ = 0;
  bool reading_ = false;
  bool writing_ = false;
  bool write_at_once_ = false;     // the socket is non-blocking: flush tries a write at once
  bool in_maybe_read_ = false;     // maybe_read is running (further up the stack)
  bool read_again_ = false;        // and was called again meanwhile
  bool no_more_requests_ = false;  // client closed, asked to close, an error, or server stop
  bool closed_ = false;
  size_t linger_bytes_ = 0;
  std::shared_ptr<EventStream> pending_stream_;  // GET /v1/events admitted, not started
  std::weak_ptr<EventStream> handed_to_;         // started: it has the socket now
  bool handed_over_ = false;
};

Status write_port_file(const std::string& path, uint16_t port) {
  Status st = write_file_atomically(path, std::to_string(port) + "\n");
  return st.ok() ? st : Status::Error("http.port_file: " + st.message());
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct HttpServer::Impl {
  Impl(const HttpConfig& config, HttpDeps deps)
      : batcher(deps.batcher), queue(deps.queue), core(config, std::move(deps)) {
    const int n = std::max(1, config.threads);
    for (int i = 0; i < n; ++i) {
      auto t = std::make_unique<IoThread>();
      if (batcher != nullptr) {
        t->inline_batch = std::make_unique<InlineBatch>(
            *batcher, *queue,
            [ioc = &t->ioc](std::function<void()> fn) { net::post(*ioc, std::move(fn)); });
      }
      io.push_back(std::move(t));
    }
    acceptor.emplace(io[0]->ioc);
    accept_retry.emplace(io[0]->ioc);
  }

  // Accepts on the first io thread; each connection goes to the next io thread in turn.
  void do_accept() {
    IoThread& target = *io[next_io++ % io.size()];
    acceptor->async_accept(target.ioc, [this, &target](beast::error_code ec, Socket s) {
      if (!accepting) return;
      if (ec) {
        // Out of file descriptors and the like: do not spin, try again shortly.
        core.log->warn("http: accept failed: {}", ec.message());
        accept_retry->expires_after(std::chrono::milliseconds(100));
        accept_retry->async_wait([this](beast::error_code e) {
          if (!e && accepting) do_accept();
        });
        return;
      }
      on_accept(std::move(s), target);
      do_accept();
    });
  }

  // At http.max_connections a connection that has not sent a whole header yet (an idle socket
  // of a flood, most likely) makes room for the new one, the oldest first: probes and real
  // clients, which send their request at once, keep getting in while such sockets hold every
  // slot, and a flood only displaces itself. Connections that have sent a header are never
  // displaced: the new one is closed at once instead.
  void on_accept(Socket socket, IoThread& target) {
    std::optional<ServerCore::Entry> displace;
    if (!core.admit(displace)) {
      core.stats.connection_rejected();
      beast::error_code ignored;
      socket.close(ignored);
      return;
    }
    if (displace) {
      core.stats.connection_displaced();
      net::post(displace->executor, [w = displace->connection] {
        if (auto c = w.lock()) c->force_close();
      });
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto session =
        std::make_shared<Session>(std::move(socket), core, target.inbox, target.inline_batch.get());
    core.add(session, /*awaiting_header=*/true);
    session->start();
  }

  void run_io(IoThread& t) {
    while (true) {
      try {
        t.ioc.run();
        return;
      } catch (const std::exception& e) {  // none is expected; keep the thread serving
        core.log->error("http: io thread caught an exception: {}", e.what());
      }
    }
  }

  // Posts `fn(session)` to every connection's io thread; returns how many there were.
  template <class Fn>
  size_t for_each_session(Fn fn) {
    std::lock_guard<std::mutex> lock(core.sessions_mutex);
    for (auto& [_, entry] : core.sessions) {
      net::post(entry.executor, [w = entry.connection, fn] {
        if (auto c = w.lock()) fn(*c);
      });
    }
    return core.sessions.size();
  }

  bool wait_sessions_gone(steady::time_point deadline) {
    std::unique_lock<std::mutex> lock(core.sessions_mutex);
    return core.sessions_cv.wait_until(lock, deadline, [&] { return core.sessions.empty(); });
  }

  // Declaration order is destruction order reversed: the acceptor before the io_contexts, and
  // they (with the handlers and sessions they may still hold) before the core sessions use.
  scoring::Batcher* const batcher;  // HttpDeps::batcher: scores inline while idle; may be null
  scoring::ScoringQueue* const queue;
  ServerCore core;
  std::vector<std::unique_ptr<IoThread>> io;  // http.threads of them
  std::optional<tcp::acceptor> acceptor;      // on io[0]
  std::optional<net::steady_timer> accept_retry;
  size_t next_io = 0;  // on io[0]'s thread
  std::atomic<bool> accepting{false};
  std::atomic<uint16_t> port{0};
  std::mutex lifecycle_mutex;
  bool started = false;
  bool stopped = false;
};

HttpServer::HttpServer(const HttpConfig& config, HttpDeps deps)
    : impl_(std::make_unique<Impl>(config, std::move(deps))) {}

HttpServer::~HttpServer() {
  stop(std::chrono::milliseconds(0));
}

Status HttpServer::start() {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mutex);
  if (impl_->started || impl_->stopped) return Status::Error("http: server already started");
  const auto& config = impl_->core.config;
  const std::string where = config.address + ":" + std::to_string(config.port);
  try {
    const tcp::endpoint endpoint(net::ip::make_address(config.address),
                                 static_cast<uint16_t>(config.port));
    auto& a = *impl_->acceptor;
    a.open(endpoint.protocol());
    a.set_option(net::socket_base::reuse_address(true));
    a.bind(endpoint);
    a.listen(net::socket_base::max_listen_connections);
    impl_->port = a.local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    return Status::Error("http: cannot listen on " + where + ": " + e.code().message());
  }
  if (!config.port_file.empty()) {
    if (auto st = write_port_file(config.port_file, impl_->port); !st.ok()) return st;
  }
  impl_->started = true;
  for (auto& t : impl_->io) t->inbox->open(t->ioc);
  impl_->accepting = true;
  impl_->do_accept();
  for (auto& t : impl_->io) {
    IoThread& io = *t;
    io.thread = std::thread([this, &io] { impl_->run_io(io); });
  }
  impl_->core.log->info("http: listening on {}:{} ({} io threads, auth {}, repository API {})",
                        config.address, impl_->port.load(), impl_->io.size(),
                        config.auth_token.empty() ? "off" : "on",
                        config.admin_token.empty() ? "off" : "on (admin token)");
  return Status::Ok();
}

uint16_t HttpServer::port() const {
  return impl_->port.load();
}

void HttpServer::begin_shutdown() {
  impl_->core.router.begin_shutdown();
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(impl_->lifecycle_mutex);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->core.router.begin_shutdown();
  if (!impl_->started) return;
  Impl& m = *impl_;

  // Stop accepting (on the acceptor's io thread, and wait for it).
  std::promise<void> acceptor_closed;
  net::post(m.acceptor->get_executor(), [&] {
    m.accepting = false;
    beast::error_code ignored;
    m.acceptor->close(ignored);
    m.accept_retry->cancel();
    acceptor_closed.set_value();
  });
  acceptor_closed.get_future().wait();

  // Graceful: connections answer what they have read, then close.
  const size_t open = m.for_each_session([](Connection& c) { c.shutdown_gracefully(); });
  bool drained = m.wait_sessions_gone(steady::now() + grace);
  if (!drained) {
    m.core.log->warn("http: {} of {} connections still open after {} ms, closing them",
                     m.core.session_count(), open, grace.count());
    m.for_each_session([](Connection& c) { c.force_close(); });
    drained = m.wait_sessions_gone(steady::now() + kForcedCloseWait);
  }

  // From here no completion reaches the io_context; then the threads end.
  for (auto& t : m.io) {
    t->inbox->close();
    t->work.reset();
    t->ioc.stop();
  }
  for (auto& t : m.io) t->thread.join();
  m.core.log->info("http: stopped{}", drained ? "" : " (some connections were cut)");
}

Router& HttpServer::router() {
  return impl_->core.router;
}

const HttpStats& HttpServer::stats() const {
  return impl_->core.stats;
}

}  // namespace vigil::http
