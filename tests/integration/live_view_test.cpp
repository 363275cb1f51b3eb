// The live view over real sockets, on a real service (embedded Kafka, real redis-server, the
// real model): a /v1/events subscriber sees the figures move and the high scores appear; a
// subscriber that stops reading loses updates, is told so, and slows neither scoring nor the
// other subscribers; shutdown ends every stream with a last frame; admission (token, cap).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <thread>

#include "support/http_client.h"
#include "support/service_fixture.h"
#include "support/wait.h"

namespace vigil {
namespace {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// A raw-socket /v1/events client: it reads only when asked, so it can also stall.
class SseClient {
 public:
  // `receive_buffer` > 0 shrinks SO_RCVBUF (set before connecting, so the window stays small).
  SseClient(uint16_t port, const std::string& target, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (connected_) connected_ = ::send(fd_, req.data(), req.size(), 0) == ssize_t(req.size());
  }
  ~SseClient() { ::close(fd_); }
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  bool connected() const { return connected_; }
  bool eof() const { return eof_; }
  const std::string& text() const { return text_; }

  // Reads until `done(text())` or EOF or `timeout`; returns done(text()).
  template <class Done>
  bool read_until(Done done, milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    while (!done(text_) && !eof_) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        eof_ = true;
        break;
      }
      text_.append(buf, static_cast<size_t>(n));
    }
    return done(text_);
  }

  // The data of every complete "stats" frame read so far, parsed.
  std::vector<json::object> stats() const {
    std::vector<json::object> out;
    size_t at = 0;
    const std::string head = "event: stats\ndata: ";
    while ((at = text_.find(head, at)) != std::string::npos) {
      const size_t begin = at + head.size();
      const size_t end = text_.find("\n\n", begin);
      if (end == std::string::npos) break;
      out.push_back(json::parse(text_.substr(begin, end - begin)).as_object());
      at = end;
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string text_;
};

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class LiveViewTest : public testing::ServiceFixture {
 protected:
  void SetUp() override {
    start_cluster_and_redis({{"transactions", 3}, {"scores", 3}, {"transactions.dlq", 3}});
  }

  config::AppConfig config() const {
    config::AppConfig c = base_config();
    testing::enable_test_http(c);
    c.http.events_interval = milliseconds(100);
    c.scoring.workers = 1;
    return c;
  }

  // The reference rows as events, `copies` times over; how many score at or above 0.98.
  size_t produce_reference(int copies, const std::string& prefix) {
    std::vector<std::pair<std::string, std::string>> events;
    size_t high = 0;
    for (int c = 0; c < copies; ++c) {
      for (size_t i = 0; i < ref_.rows.size(); ++i) {
        const std::string id = prefix + std::to_string(c) + "-" + std::to_string(i);
        events.emplace_back(id, testing::reference_event(ref_, i, id, true));
        if (ref_.scores[i] >= 0.98) ++high;
      }
    }
    EXPECT_TRUE(testing::produce_all(cluster_->bootstrap(), "transactions", events).ok());
    return high;
  }
};

TEST_F(LiveViewTest, ASubscriberSeesTheFiguresMoveAndTheHighScoresAppear) {
  auto service = start_service(config());
  ASSERT_NE(service, nullptr);
  const uint16_t port = static_cast<uint16_t>(service->http_port());
  SseClient events(port, "/v1/events");
  ASSERT_TRUE(events.connected());
  ASSERT_TRUE(events.read_until(
      [](const std::string& t) { return t.find("event: stats") != t.npos; }, milliseconds(5000)))
      << events.text();
  EXPECT_EQ(events.text().rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << events.text();
  EXPECT_NE(events.text().find("Content-Type: text/event-stream\r\n"), std::string::npos);

  const size_t high = produce_reference(2, "live-");
  ASSERT_GT(high, 0u) << "the reference data has rows above the threshold";
  const double total = 2.0 * static_cast<double>(ref_.rows.size());
  // Every event scored, every high score shown, and every delivered score's end-to-end latency
  // counted in some interval (deliveries are confirmed after scoring, maybe an interval later).
  auto scored_all = [&](const std::string&) {
    const auto s = events.stats();
    double delivered = 0;
    for (const auto& f : s) delivered += f.at("end_to_end_ms").at("count").to_number<double>();
    return !s.empty() && s.back().at("scored_total").to_number<double>() >= total &&
           s.back().at("high_scores_total").to_number<double>() >= static_cast<double>(high) &&
           delivered >= total;
  };
  ASSERT_TRUE(events.read_until(scored_all, milliseconds(30000))) << events.text().substr(0, 4000);

  const auto frames = events.stats();
  double peak_scored = 0, peak_events_in = 0;
  bool saw_e2e = false;
  for (const auto& f : frames) {
    peak_scored = std::max(peak_scored, f.at("scored_per_s").to_number<double>());
    peak_events_in = std::max(peak_events_in, f.at("events_in_per_s").to_number<double>());
    if (!f.at("end_to_end_ms").at("p99").is_null()) saw_e2e = true;
  }
  EXPECT_GT(peak_scored, 0.0);
  EXPECT_GT(peak_events_in, 0.0);
  EXPECT_TRUE(saw_e2e) << "no interval had end-to-end latencies";
  const json::object& last = frames.back();
  EXPECT_EQ(last.at("model").at("version").as_string(), "1");
  EXPECT_EQ(last.at("partitions").at("assigned").to_number<double>(), 3.0);
  const auto& shown = last.at("high_scores").as_array();
  ASSERT_FALSE(shown.empty());
  for (const auto& h : shown) {
    EXPECT_GE(h.at("score").to_number<double>(), 0.98);
    EXPECT_EQ(h.at("transaction_id").as_string().find("live-"), 0u);
    EXPECT_EQ(h.at("origin").as_string(), "kafka");
  }
  service->stop();
}

TEST_F(LiveViewTest, AStalledSubscriberLosesUpdatesIsToldAndSlowsNothingElse) {
  config::AppConfig c = config();
  c.http.events_interval = milliseconds(50);
  c.http.read_timeout = milliseconds(60000);  // the stalled client is not cut off meanwhile
  auto service = start_service(c);
  ASSERT_NE(service, nullptr);
  const uint16_t port = static_cast<uint16_t>(service->http_port());
  SseClient stalled(port, "/v1/events", /*receive_buffer=*/2048);
  SseClient healthy(port, "/v1/events");
  ASSERT_TRUE(stalled.connected() && healthy.connected());
  auto& dropped = service->registry().counter("vigil_http_event_updates_dropped_total", "");

  // Scoring goes on while the stalled client's kernel buffers fill and then its mailbox
  // overflows: every event is scored, and the healthy stream keeps receiving updates.
  const size_t high = produce_reference(10, "stall-");
  const double total = 10.0 * static_cast<double>(ref_.rows.size());
  ASSERT_TRUE(healthy.read_until(
      [&](const std::string&) {
        const auto s = healthy.stats();
        return !s.empty() && s.back().at("scored_total").to_number<double>() >= total &&
               s.back().at("high_scores_total").to_number<double>() >= static_cast<double>(high);
      },
      milliseconds(60000)));
  ASSERT_TRUE(healthy.read_until([&](const std::string&) { return dropped.value() > 0; },
                                 milliseconds(60000)))
      << "the stalled stream never overflowed its mailbox";
  // Updates keep flowing to the healthy stream while the other one stays stalled.
  const size_t before = healthy.stats().size();
  ASSERT_TRUE(
      healthy.read_until([&](const std::string&) { return healthy.stats().size() >= before + 10; },
                         milliseconds(10000)));
  EXPECT_EQ(count_of(healthy.text(), "event: dropped"), 0u) << "the healthy stream lost updates";

  // The stalled client reads at last: it is told how many updates it lost.
  ASSERT_TRUE(stalled.read_until(
      [](const std::string& t) {
        const auto at = t.find("event: dropped\ndata: ");
        return at != t.npos && t.find("\n\n", at) != t.npos;
      },
      milliseconds(20000)))
      << stalled.text().size() << " bytes read";
  const auto at = stalled.text().find("event: dropped\ndata: ") + 21;
  const auto told = json::parse(stalled.text().substr(at, stalled.text().find("\n\n", at) - at));
  EXPECT_GT(told.at("dropped").to_number<double>(), 0.0);
  EXPECT_GT(
      service->registry()
          .counter("vigil_requests_scored_total", "", {{"origin", "kafka"}, {"model", "fraud_mlp"}})
          .value(),
      0.0);
  service->stop();
}

TEST_F(LiveViewTest, ShutdownEndsEveryStreamWithALastFrame) {
  auto service = start_service(config());
  ASSERT_NE(service, nullptr);
  const uint16_t port = static_cast<uint16_t>(service->http_port());
  SseClient a(port, "/v1/events");
  SseClient b(port, "/v1/events");
  for (SseClient* s : {&a, &b}) {
    ASSERT_TRUE(s->read_until([](const std::string& t) { return t.find("event: stats") != t.npos; },
                              milliseconds(5000)));
  }
  const auto started = steady::now();
  std::thread stopper([&] { service->stop(); });
  for (SseClient* s : {&a, &b}) {
    s->read_until([](const std::string&) { return false; }, milliseconds(10000));  // to EOF
    EXPECT_TRUE(s->eof()) << "the stream was not closed";
    EXPECT_NE(s->text().find("event: end\ndata: {\"why\":\"vigil is shutting down\"}\n\n"),
              std::string::npos)
        << s->text().substr(s->text().size() > 500 ? s->text().size() - 500 : 0);
  }
  stopper.join();
  EXPECT_LT(steady::now() - started, std::chrono::seconds(10));
}

TEST_F(LiveViewTest, ThePageAndTheStreamAreAdmittedLikeTheOtherRoutes) {
  config::AppConfig c = config();
  c.http.auth_token = "s3cret";
  c.http.max_event_subscribers = 1;
  auto service = start_service(c);
  ASSERT_NE(service, nullptr);
  const uint16_t port = static_cast<uint16_t>(service->http_port());
  testing::HttpClient http(port);
  auto page = http.request(bhttp::verb::get, "/");
  ASSERT_EQ(page.result_int(), 200);
  EXPECT_EQ(page[bhttp::field::content_type], "text/html; charset=utf-8");
  EXPECT_NE(page.body().find("new EventSource(\"/v1/events\""), std::string::npos);
  EXPECT_EQ(page.body().find("http://"), std::string::npos) << "the page fetches nothing else";
  EXPECT_EQ(page.body().find("https://"), std::string::npos) << "the page fetches nothing else";

  auto refused = http.request(bhttp::verb::get, "/v1/events");
  EXPECT_EQ(refused.result_int(), 401) << refused.body();
  SseClient first(port, "/v1/events?access_token=s3cret");
  ASSERT_TRUE(first.read_until(
      [](const std::string& t) { return t.find("event: stats") != t.npos; }, milliseconds(5000)))
      << first.text();
  testing::HttpClient second(port);
  auto full =
      second.request(bhttp::verb::get, "/v1/events", "", {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(full.result_int(), 503) << full.body();
  EXPECT_NE(full.body().find("http.max_event_subscribers = 1"), std::string::npos) << full.body();
  EXPECT_EQ(full[bhttp::field::retry_after], "1");
  EXPECT_EQ(service->registry().gauge("vigil_http_event_subscribers", "").value(), 1.0);
  service->stop();
}

}  // namespace
}  // namespace vigil
