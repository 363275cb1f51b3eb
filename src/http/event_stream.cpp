#include "http/event_stream.h"

#include <boost/asio/write.hpp>
#include <utility>

namespace vigil::http {

namespace {
constexpr int kStreamSendBuffer = 64 * 1024;  // SO_SNDBUF: frames are a few KiB
}  // namespace

EventStream::EventStream(ServerCore& core, std::shared_ptr<Inbox> inbox, Executor executor)
    : core_(core), inbox_(std::move(inbox)), executor_(executor) {}

EventStream::~EventStream() {
  if (feed_) core_.events->unsubscribe(feed_);
  if (stream_) {
    core_.stats.connection_closed();
    core_.remove(this);
  }
}

bool EventStream::subscribe(const Request& req, Response& refusal) {
  auto wake = [inbox = inbox_, weak = weak_from_this()] { inbox->wake(weak); };
  feed_ = core_.router.subscribe_events(req, std::move(wake), refusal);
  return feed_ != nullptr;
}

void EventStream::start(Stream&& stream) {
  stream_.emplace(std::move(stream));
  core_.add(shared_from_this(), /*awaiting_header=*/false);
  // A small kernel buffer bounds what a stalled client pins there.
  beast::error_code ignored;
  stream_->socket().set_option(net::socket_base::send_buffer_size(kStreamSendBuffer), ignored);
  frame_ = std::string("HTTP/1.1 200 OK\r\nServer: ") + server_version() +
           "\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
           "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n";
  write_frame();
  watch_peer();
}

void EventStream::shutdown_gracefully() {
  if (feed_) feed_->end("vigil is shutting down");
  pump();
}

void EventStream::pump() {
  if (!stream_ || writing_ || closed_) return;
  if (feed_->take(frame_)) return write_frame();
  if (feed_->finished()) close();  // the client sends nothing more: no linger
}

void EventStream::write_frame() {
  writing_ = true;
  stream_->expires_after(core_.config.read_timeout);
  net::async_write(*stream_, net::buffer(frame_), [self = self()](beast::error_code ec, size_t) {
    self->writing_ = false;
    if (ec) return self->close();
    self->stream_->expires_never();
    self->pump();
  });
}

// Reads (and drops) what the client sends, on the bare socket (outside the stream's write
// timeout), to see it go away.
void EventStream::watch_peer() {
  buffer_.consume(buffer_.size());
  stream_->socket().async_read_some(buffer_.prepare(kReadChunk),
                                    [self = self()](beast::error_code ec, size_t) {
                                      if (ec) return self->close();
                                      self->watch_peer();
                                    });
}

void EventStream::close() {
  if (closed_) return;
  closed_ = true;
  if (feed_) {
    core_.events->unsubscribe(feed_);
    feed_.reset();
  }
  if (!stream_) return;
  beast::error_code ignored;
  stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_->close();
}

}  // namespace vigil::http
