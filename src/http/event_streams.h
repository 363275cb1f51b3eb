// The live view as the HTTP edge sees it: a page (GET /, GET /ui) and streams of server-sent
// events (GET /v1/events). src/live implements it; the edge moves frames and never reads them.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace vigil::http {

// One subscriber's stream of frames. Thread-safe.
class EventFeed {
 public:
  virtual ~EventFeed() = default;
  // Moves the next whole SSE frame ("event: ...\ndata: ...\n\n") into `frame`; false when
  // there is none (the feed then calls its wake callback when one comes).
  virtual bool take(std::string& frame) = 0;
  // True once the stream is over and its last frame was taken.
  virtual bool finished() const = 0;
  // Ends the stream with a last frame saying why.
  virtual void end(const std::string& why) = 0;
};

// Thread-safe.
class EventStreams {
 public:
  virtual ~EventStreams() = default;
  // A new stream whose `wake` (which must not block) is called when a frame arrives after
  // take() found none; null when no slot is free (or the streams are stopped).
  virtual std::shared_ptr<EventFeed> subscribe(std::function<void()> wake) = 0;
  virtual void unsubscribe(const std::shared_ptr<EventFeed>& feed) = 0;
  // The HTML document served by GET / and GET /ui.
  virtual std::string_view page() const = 0;
};

}  // namespace vigil::http
