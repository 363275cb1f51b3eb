// EventStream: one GET /v1/events connection, beside the request/response Session.
//
// The Session that reads the request creates it and subscribes it (the router admits it: token,
// live view on, a slot free), answers what was read before it, then hands it the socket: from
// then on this object is the connection. It writes the response header, then each frame its
// feed gives, one write at a time, each within http.read_timeout_ms (a client that stops reading
// is cut off; its feed's bounded mailbox, not the kernel, absorbs the backlog, so it is told
// what it lost), until the feed is finished or the client goes away. Nothing more is parsed:
// what the client sends is read and dropped, only to see it close.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "http/connection.h"

namespace vigil::http {

class EventStream final : public Connection {
 public:
  EventStream(ServerCore& core, std::shared_ptr<Inbox> inbox, Executor executor);
  ~EventStream() override;  // unsubscribes; a started stream counts its connection closed

  // Subscribes to the live view; false, with the answer to give in `refusal` (401, 404, 503),
  // when the router refuses it.
  bool subscribe(const Request& req, Response& refusal);
  // Takes the connection over (nothing pending on `stream`): registers with the server, writes
  // the response header, then frames.
  void start(Stream&& stream);

  Executor executor() override { return executor_; }
  // Ends the feed with a last frame saying vigil is shutting down; closes once it is written.
  void shutdown_gracefully() override;
  void force_close() override { close(); }
  void wake() override { pump(); }

 private:
  std::shared_ptr<EventStream> self() {
    return std::static_pointer_cast<EventStream>(shared_from_this());
  }
  void pump();  // writes the next frame, if any; closes once the feed is finished
  void write_frame();
  void watch_peer();
  void close();

  ServerCore& core_;
  const std::shared_ptr<Inbox> inbox_;  // of this connection's io thread
  const Executor executor_;
  std::shared_ptr<EventFeed> feed_;
  std::optional<Stream> stream_;  // from start()
  beast::flat_buffer buffer_;     // what the client sends, dropped
  std::string frame_;             // the frame being written
  bool writing_ = false;
  bool closed_ = false;
};

}  // namespace vigil::http
