// The HTTP side-port over real sockets (loopback, ephemeral ports): every route and error code,
// keep-alive, pipelining, body limit, read/idle/request timeouts, connection cap, auth,
// graceful and forced stop, completions that outlive their connection or the server.
#include "http/server.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "http/connection.h"
#include "http/event_streams.h"
#include "http/http_stats.h"
#include "http/http_test_util.h"
#include "http/prometheus_text.h"
#include "scoring/model_manager.h"
#include "support/http_client.h"

namespace vigil::http::test {
namespace {

using bhttp::verb;
using std::chrono::milliseconds;
using testing::HttpClient;
using testing::wait_until;

std::string one_instance(float base = 0.1f, const std::string& id = {}) {
  return R"({"instances":[)" +
         (id.empty() ? array_instance(row_values(base)) : named_instance(row_values(base), id)) +
         "]}";
}

std::string infer_one() {
  std::string data = array_instance(row_values(0.2f));
  return R"({"id":"x","inputs":[{"name":"features","shape":[1,30],"datatype":"FP32","data":)" +
         data + "}]}";
}

HttpConfig test_config() {
  HttpConfig c;
  c.address = "127.0.0.1";
  c.port = 0;
  c.threads = 2;
  c.read_timeout = milliseconds(2000);
  c.idle_timeout = milliseconds(5000);
  c.request_timeout = milliseconds(5000);
  return c;
}

struct Server {
  explicit Server(HttpConfig c = test_config(), StackOptions o = {})
      : stack(std::make_unique<ScoringStack>(o)), config(c) {
    server = std::make_unique<HttpServer>(config, stack->deps());
    auto st = server->start();
    EXPECT_TRUE(st.ok()) << st.message();
  }
  ~Server() {
    server.reset();  // stop HTTP first, then the batcher (the order main uses)
    stack.reset();
  }
  uint16_t port() const { return server->port(); }

  std::unique_ptr<ScoringStack> stack;
  HttpConfig config;
  std::unique_ptr<HttpServer> server;
};

// ---------------------------------------------------------------------------------------------

TEST(HttpServer, ServesEveryRouteAndErrorCodeOverASocket) {
  HttpConfig c = test_config();
  c.auth_token = "tok";
  Server s(c);
  const HttpClient::Headers auth{{"Authorization", "Bearer tok"}};
  struct Case {
    verb method;
    std::string target;
    std::string body;
    HttpClient::Headers headers;
    unsigned status;
  } cases[] = {
      {verb::post, "/predict", one_instance(0.1f, "t-1"), auth, 200},
      {verb::post, "/v2/models/fake/infer", infer_one(), auth, 200},
      {verb::post, "/v2/models/fake/versions/1/infer", infer_one(), auth, 200},
      {verb::get, "/v2", "", {}, 200},
      {verb::get, "/v2/health/live", "", {}, 200},
      {verb::get, "/v2/health/ready", "", {}, 200},
      {verb::get, "/v2/models/fake", "", {}, 200},
      {verb::get, "/v2/models/fake/ready", "", {}, 200},
      {verb::get, "/v2/models/fake/versions/1", "", {}, 200},
      {verb::get, "/v2/models/fake/versions/1/ready", "", {}, 200},
      {verb::get, "/health", "", {}, 200},
      {verb::get, "/ready", "", {}, 200},
      {verb::get, "/model/info", "", {}, 200},
      {verb::get, "/metrics", "", {}, 200},
      {verb::get, "/openapi.json", "", {}, 200},
      {verb::post, "/predict", "{oops", auth, 400},
      {verb::post, "/predict", one_instance(), {}, 401},
      {verb::get, "/nowhere", "", {}, 404},
      {verb::get, "/v2/models/other", "", {}, 404},
      {verb::put, "/predict", one_instance(), auth, 405},
      {verb::post, "/predict", R"({"instances":[[1,2,3]]})", auth, 422},
  };
  HttpClient client(s.port());  // all on one keep-alive connection
  for (const auto& c : cases) {
    auto res = client.request(c.method, c.target, c.body, c.headers);
    EXPECT_EQ(res.result_int(), c.status) << c.target << " -> " << res.body();
    EXPECT_TRUE(res.keep_alive()) << c.target;
    if (c.status >= 400) {
      EXPECT_FALSE(error_of(res).empty()) << c.target;
    }
  }
  auto metrics = client.request(verb::get, "/metrics");
  EXPECT_NE(metrics.body().find(R"(vigil_http_requests_total{route="/predict",code="200"} 1)"),
            std::string::npos)
      << metrics.body();
  EXPECT_NE(metrics.body().find(R"(vigil_http_requests_total{route="unmatched",code="404"} 1)"),
            std::string::npos);
  EXPECT_NE(metrics.body().find(R"(vigil_http_request_duration_seconds_bucket{route="/predict")"),
            std::string::npos);
  // The delivery stage's seam saw the instance with a transaction id (right after the answer).
  ASSERT_TRUE(vigil::testing::wait_until([&] { return !s.stack->sink.records().empty(); },
                                         std::chrono::seconds(5)));
  ASSERT_EQ(s.stack->sink.records().size(), 1u);
  EXPECT_EQ(s.stack->sink.records()[0].transaction_id, "t-1");
}

// While the batcher is idle, the io thread scores what it read itself (no hand-off to a worker
// and back); the first request of a model goes through a worker, which times the forward.
TEST(HttpServer, RequestsAreScoredOnTheIoThreadWhileTheBatcherIsIdleOnceAWorkerTimedTheModel) {
  Server s;
  auto& inline_rows =
      s.stack->registry.counter("vigil_requests_scored_inline_total", "", {{"model", "fake"}});
  HttpClient client(s.port());
  auto first = client.request(verb::post, "/predict", one_instance());
  ASSERT_EQ(first.result_int(), 200u) << first.body();
  EXPECT_EQ(inline_rows.value(), 0u) << "the model was not timed yet";
  for (int i = 0; i < 5; ++i) {
    auto res = client.request(verb::post, "/predict", one_instance());
    ASSERT_EQ(res.result_int(), 200u) << res.body();
    EXPECT_EQ(res.body(), first.body()) << "the same row, the same answer either way";
  }
  EXPECT_EQ(inline_rows.value(), 5u);
  EXPECT_EQ(s.stack->model->rows_scored(), 6u);
}

TEST(HttpServer, KeepAliveServesSeveralRequestsOnOneConnection) {
  Server s;
  HttpClient client(s.port());
  for (int i = 0; i < 20; ++i) {
    auto res = client.request(verb::post, "/predict", one_instance(0.01f * i));
    ASSERT_EQ(res.result_int(), 200u) << res.body();
    EXPECT_TRUE(res.keep_alive());
    EXPECT_NEAR(
        parse_json(res.body()).at("predictions").as_array()[0].at("score").to_number<double>(),
        expected_score(row_values(0.01f * i)), 1e-6);
  }
  EXPECT_EQ(s.server->stats().connections(), 1.0);
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  Server s;
  HttpClient client(s.port());
  std::string burst;
  for (int i = 0; i < 6; ++i) {
    burst += HttpClient::wire(
        HttpClient::make(verb::post, "/predict", one_instance(0.1f, "p" + std::to_string(i))));
  }
  burst += HttpClient::wire(HttpClient::make(verb::get, "/health"));
  ASSERT_FALSE(client.write_raw(burst));
  for (int i = 0; i < 6; ++i) {
    HttpClient::Response res;
    ASSERT_FALSE(client.read(res));
    ASSERT_EQ(res.result_int(), 200u);
    EXPECT_EQ(
        parse_json(res.body()).at("predictions").as_array()[0].at("transaction_id").as_string(),
        "p" + std::to_string(i));
  }
  HttpClient::Response res;
  ASSERT_FALSE(client.read(res));
  EXPECT_EQ(res.body(), R"({"status":"ok"})");
}

// More pipelined requests than a connection keeps in flight (kMaxPipelinedRequests) in one read,
// scored on the io thread: the answers are written during the inline batch, which lets the
// connection parse its next buffered requests at once; they must join a later batch, none lost,
// all in order. (Short rows, so that one 4 KiB read holds more than the cap.)
TEST(HttpServer, PipelinedRequestsBeyondTheInFlightCapScoredInlineAreAllAnsweredInOrder) {
  Server s;
  auto& inline_rows =
      s.stack->registry.counter("vigil_requests_scored_inline_total", "", {{"model", "fake"}});
  HttpClient client(s.port());
  ASSERT_EQ(client.request(verb::post, "/predict", one_instance()).result_int(), 200u);
  const int n = 4 * static_cast<int>(kMaxPipelinedRequests);
  auto row = [](int i) {
    std::vector<float> r(30, 0.0f);
    r[0] = static_cast<float>(i);
    return r;
  };
  std::string burst;
  for (int i = 0; i < n; ++i) {
    std::string body = "{\"instances\":[[" + std::to_string(i);
    for (int f = 1; f < 30; ++f) body += ",0";
    burst += HttpClient::wire(HttpClient::make(verb::post, "/predict", body + "]]}"));
  }
  ASSERT_LT(burst.size() / n * (kMaxPipelinedRequests + 1), kReadChunk) << "rows too long";
  ASSERT_FALSE(client.write_raw(burst));
  for (int i = 0; i < n; ++i) {
    HttpClient::Response res;
    ASSERT_FALSE(client.read(res)) << "answer " << i;
    ASSERT_EQ(res.result_int(), 200u) << res.body();
    EXPECT_NEAR(
        parse_json(res.body()).at("predictions").as_array()[0].at("score").to_number<double>(),
        expected_score(row(i)), 1e-6)
        << "answer " << i;
  }
  EXPECT_EQ(s.stack->model->rows_scored(), static_cast<size_t>(n) + 1);
  EXPECT_GT(inline_rows.value(), 0u);
}

// Answers larger than the socket takes at once (200 pipelined 26 kB answers, 5 MB, to a client
// that reads nothing for a while): each is written from where the socket stopped taking it,
// whole and in order, once the client reads.
TEST(HttpServer, AnswersTheSocketCannotTakeAtOnceArriveWholeAndInOrder) {
  HttpConfig c = test_config();
  c.read_timeout = milliseconds(10000);  // also the write's: a sanitizer build reads slowly
  Server s(c);
  HttpClient client(s.port());
  const HttpClient::Response one = client.request(verb::get, "/openapi.json");
  ASSERT_EQ(one.result_int(), 200u);
  ASSERT_GT(one.body().size(), 16'000u);
  constexpr size_t kAnswers = 200;
  std::string burst;
  for (size_t i = 0; i < kAnswers; ++i) {
    burst += HttpClient::wire(HttpClient::make(verb::get, "/openapi.json"));
  }
  ASSERT_FALSE(client.write_raw(burst));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server's sends fill up
  for (size_t i = 0; i < kAnswers; ++i) {
    HttpClient::Response res;
    ASSERT_FALSE(client.read(res)) << i;
    ASSERT_EQ(res.result_int(), 200u) << i;
    EXPECT_EQ(res.body(), one.body()) << i;
  }
  EXPECT_EQ(client.request(verb::get, "/health").result_int(), 200u);
}

TEST(HttpServer, AClientTricklingItsBodyIsCutOffByTheReadTimeout) {
  HttpConfig c = test_config();
  c.read_timeout = milliseconds(300);
  Server s(c);
  HttpClient client(s.port());
  const std::string body = one_instance();
  ASSERT_FALSE(
      client.write_raw("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n"));
  const auto start = std::chrono::steady_clock::now();
  bool cut = false;
  for (size_t i = 0; i < body.size(); ++i) {  // one byte every 50 ms: 40+ s to send it all
    if (client.write_raw(body.substr(i, 1))) {
      cut = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
    if (std::chrono::steady_clock::now() - start > milliseconds(1500)) break;
  }
  // Either a write already failed or the server has closed (no response is owed).
  EXPECT_TRUE(cut || client.wait_closed(milliseconds(2000)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(4000));
  EXPECT_TRUE(
      wait_until([&] { return s.server->stats().read_timeouts() == 1; }, milliseconds(2000)));
  EXPECT_EQ(s.stack->model->rows_scored(), 0u);
}

TEST(HttpServer, ABodyOverTheLimitIs413FromTheHeadersAlone) {
  HttpConfig c = test_config();
  c.max_body_bytes = 1024;
  Server s(c);
  HttpClient client(s.port());
  // Announce 64 MiB, send only the headers and a few bytes: the answer must not wait for more.
  ASSERT_FALSE(client.write_raw(
      "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n{\"instances\":["));
  HttpClient::Response res;
  ASSERT_FALSE(client.read(res, milliseconds(2000)));
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(error_of(res), "request body exceeds http.max_body_bytes (1024 bytes)");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(client.wait_closed(milliseconds(2000)));

  // A body that only turns out too large while it streams (chunked) is cut at the limit too.
  HttpClient chunked(s.port());
  const std::string chunk(2000, ' ');
  std::ostringstream os;
  os << "POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     << std::hex << chunk.size() << "\r\n"
     << chunk << "\r\n";
  ASSERT_FALSE(chunked.write_raw(os.str()));
  ASSERT_FALSE(chunked.read(res, milliseconds(2000)));
  EXPECT_EQ(res.result_int(), 413u);

  // Within the limit is fine.
  HttpClient ok(s.port());
  EXPECT_EQ(ok.request(verb::post, "/predict", one_instance()).result_int(), 200u);
}

TEST(HttpServer, AnIdleKeepAliveConnectionIsClosed) {
  HttpConfig c = test_config();
  c.idle_timeout = milliseconds(200);
  Server s(c);
  HttpClient client(s.port());
  ASSERT_EQ(client.request(verb::get, "/health").result_int(), 200u);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.wait_closed(milliseconds(3000)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(150));
  EXPECT_TRUE(
      wait_until([&] { return s.server->stats().connections() == 0.0; }, milliseconds(2000)));
  EXPECT_EQ(s.server->stats().read_timeouts(), 0u);  // idling is not a read timeout
}

TEST(HttpServer, TheIdleTimeoutDoesNotCutARequestBeingScored) {
  HttpConfig c = test_config();
  c.idle_timeout = milliseconds(100);
  StackOptions o;
  o.model.delay = milliseconds(300);
  Server s(c, o);
  HttpClient client(s.port());
  EXPECT_EQ(client.request(verb::post, "/predict", one_instance()).result_int(), 200u);
}

TEST(HttpServer, MalformedHttpIs400AndClosesTheConnection) {
  Server s;
  HttpClient client(s.port());
  ASSERT_FALSE(client.write_raw("GARBAGE\r\n\r\n"));
  HttpClient::Response res;
  ASSERT_FALSE(client.read(res));
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_NE(error_of(res).find("malformed HTTP request"), std::string::npos);
  EXPECT_TRUE(client.wait_closed(milliseconds(2000)));
}

TEST(HttpServer, QueueFullIs503WithRetryAfter) {
  StackOptions o;
  o.model.delay = milliseconds(200);
  o.queue = {4, 0.75, 0.5};
  o.batcher = {1, std::chrono::microseconds(0), 1};
  Server s(test_config(), o);
  HttpClient client(s.port());
  std::string eight = R"({"instances":[)";
  for (int i = 0; i < 8; ++i) eight += (i ? "," : "") + array_instance(row_values(0.1f));
  eight += "]}";
  auto res = client.request(verb::post, "/predict", eight);
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_TRUE(res.keep_alive());
  ASSERT_TRUE(wait_until([&] { return s.stack->queue.depth() == 0; }, milliseconds(10000)));
  EXPECT_EQ(client.request(verb::post, "/predict", one_instance()).result_int(), 200u);
}

TEST(HttpServer, WhileShuttingDownScoringIs503AndNotReady) {
  Server s;
  HttpClient client(s.port());
  s.server->begin_shutdown();
  auto res = client.request(verb::post, "/predict", one_instance());
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  res = client.request(verb::get, "/ready");
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_NE(res.body().find("shutting down"), std::string::npos);
  EXPECT_EQ(client.request(verb::get, "/health").result_int(), 200u);
}

TEST(HttpServer, ScoringRoutesNeedTheBearerToken) {
  HttpConfig c = test_config();
  c.auth_token = "tok";
  Server s(c);
  HttpClient client(s.port());
  auto res = client.request(verb::post, "/predict", one_instance());
  EXPECT_EQ(res.result_int(), 401u);
  EXPECT_EQ(res[bhttp::field::www_authenticate], "Bearer");
  EXPECT_EQ(client.request(verb::post, "/v2/models/fake/infer", infer_one()).result_int(), 401u);
  EXPECT_EQ(
      client.request(verb::post, "/predict", one_instance(), {{"Authorization", "Bearer tok"}})
          .result_int(),
      200u);
  EXPECT_EQ(client.request(verb::get, "/metrics").result_int(), 200u);
}

// The request-timeout tests' server: its one worker takes `delay` per forward (batches formed
// without waiting), and an unanswered request gets a 503 after `request_timeout`.
Server slow_model_server(milliseconds request_timeout, milliseconds delay) {
  HttpConfig c = test_config();
  c.request_timeout = request_timeout;
  StackOptions o;
  o.model.delay = delay;
  o.batcher = {64, std::chrono::microseconds(0), 1};
  return Server(c, o);
}

TEST(HttpServer, ARequestNotScoredInTimeIs503AndTheLateScoreIsDropped) {
  Server s = slow_model_server(milliseconds(100), milliseconds(400));
  HttpClient client(s.port());
  auto res = client.request(verb::post, "/predict", one_instance());
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_NE(error_of(res).find("http.request_timeout_ms (100 ms)"), std::string::npos);
  EXPECT_EQ(s.server->stats().request_timeouts(), 1u);
  // The late completion arrives and is ignored; the connection keeps working.
  ASSERT_TRUE(wait_until([&] { return s.stack->model->rows_scored() == 1; }, milliseconds(5000)));
  EXPECT_EQ(client.request(verb::get, "/health").body(), R"({"status":"ok"})");
}

TEST(HttpServer, EachRequestGetsItsOwnTimeoutCountedFromWhenItWasRead) {
  // One timer per connection, armed for the oldest unanswered request: a request read after an
  // earlier, answered one still gets its full request_timeout (not what was left of the
  // earlier one's), and then its 503.
  Server s = slow_model_server(milliseconds(300), milliseconds(1500));
  HttpClient client(s.port());
  EXPECT_EQ(client.request(verb::get, "/health").result_int(), 200u);  // arms the timer
  std::this_thread::sleep_for(milliseconds(200));
  const auto sent = std::chrono::steady_clock::now();
  auto res = client.request(verb::post, "/predict", one_instance());
  const auto waited = std::chrono::steady_clock::now() - sent;
  EXPECT_EQ(res.result_int(), 503u) << res.body();
  EXPECT_NE(error_of(res).find("http.request_timeout_ms (300 ms)"), std::string::npos);
  EXPECT_GE(waited, milliseconds(250)) << "timed out on the earlier request's deadline";
  EXPECT_EQ(s.server->stats().request_timeouts(), 1u);
}

TEST(HttpServer, PipelinedRequestsThatTimeOutTogetherAreEachAnswered503InOrder) {
  // Their deadlines pass together; each 503 is written as soon as it is given, which takes its
  // slot off the connection while the others are still being answered.
  Server s = slow_model_server(milliseconds(300), milliseconds(3000));
  HttpClient client(s.port());
  const int n = 4;
  std::string burst;
  for (int i = 0; i < n; ++i) {
    burst += HttpClient::wire(HttpClient::make(verb::post, "/predict", one_instance(0.1f * i)));
  }
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_FALSE(client.write_raw(burst));
  for (int i = 0; i < n; ++i) {
    HttpClient::Response res;
    ASSERT_FALSE(client.read(res)) << "answer " << i;
    EXPECT_EQ(res.result_int(), 503u) << "answer " << i << ": " << res.body();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - sent, milliseconds(2500))
      << "a 503 waited for the model instead of its deadline";
  EXPECT_EQ(s.server->stats().request_timeouts(), static_cast<uint64_t>(n));
}

TEST(HttpServer, ConnectionsOverTheCapAreClosedAtOnce) {
  HttpConfig c = test_config();
  c.max_connections = 2;
  Server s(c);
  HttpClient a(s.port()), b(s.port());
  ASSERT_EQ(a.request(verb::get, "/health").result_int(), 200u);
  ASSERT_EQ(b.request(verb::get, "/health").result_int(), 200u);
  HttpClient third(s.port());
  EXPECT_TRUE(third.wait_closed(milliseconds(2000)));
  EXPECT_EQ(s.server->stats().rejected_connections(), 1u);
  EXPECT_EQ(s.server->stats().connections(), 2.0);
  a.close();
  ASSERT_TRUE(
      wait_until([&] { return s.server->stats().connections() == 1.0; }, milliseconds(2000)));
  HttpClient fourth(s.port());
  EXPECT_EQ(fourth.request(verb::get, "/health").result_int(), 200u);
}

TEST(HttpServer, TheBoundPortIsWrittenToThePortFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("vigil_http_port_" + std::to_string(::getpid()) + ".txt");
  HttpConfig c = test_config();
  c.port_file = path.string();
  Server s(c);
  ASSERT_NE(s.port(), 0);
  std::ifstream f(path);
  int port = 0;
  f >> port;
  EXPECT_EQ(port, s.port());
  std::filesystem::remove(path);
}

TEST(HttpServer, StartFailsWithAClearErrorWhenThePortIsTaken) {
  Server first;
  HttpConfig c = test_config();
  c.port = first.port();
  ScoringStack stack;
  HttpServer second(c, stack.deps());
  auto st = second.start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot listen on 127.0.0.1:" + std::to_string(c.port)),
            std::string::npos)
      << st.message();
}

TEST(HttpServer, StopLetsRequestsInFlightFinishThenCloses) {
  StackOptions o;
  o.model.delay = milliseconds(300);
  Server s(test_config(), o);
  HttpClient client(s.port());
  ASSERT_FALSE(client.write(HttpClient::make(verb::post, "/predict", one_instance())));
  ASSERT_TRUE(wait_until([&] { return s.stack->model->forwards() == 1; }, milliseconds(5000)));
  std::thread stopper([&] { s.server->stop(milliseconds(5000)); });
  HttpClient::Response res;
  EXPECT_FALSE(client.read(res));
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  EXPECT_FALSE(res.keep_alive());  // Connection: close
  EXPECT_TRUE(client.wait_closed(milliseconds(3000)));
  stopper.join();
  HttpClient late(s.port());  // nobody listens any more
  EXPECT_TRUE(late.connect_error() || late.wait_closed(milliseconds(1000)));
  s.server->stop();  // idempotent
}

TEST(HttpServer, CompletionsAfterTheServerIsGoneAreHarmless) {
  StackOptions o;
  o.model.delay = milliseconds(300);
  o.batcher = {1, std::chrono::microseconds(0), 1};
  auto stack = std::make_unique<ScoringStack>(o);
  {
    HttpServer server(test_config(), stack->deps());
    ASSERT_TRUE(server.start().ok());
    HttpClient client(server.port());
    const std::string row = array_instance(row_values(0.1f));
    ASSERT_FALSE(client.write(HttpClient::make(
        verb::post, "/predict", R"({"instances":[)" + row + "," + row + "," + row + "]}")));
    ASSERT_TRUE(wait_until([&] { return stack->model->forwards() >= 1; }, milliseconds(5000)));
    server.stop(milliseconds(0));  // forced: the three rows are still being scored, one by one
  }                                // server destroyed
  // The batcher completes them now, into a server that no longer exists.
  ASSERT_TRUE(wait_until([&] { return stack->model->rows_scored() == 3; }, milliseconds(5000)));
  stack.reset();
}

TEST(HttpServer, MetricsOverASocketPassPromtool) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "no promtool";
  Server s;
  HttpClient client(s.port());
  client.request(verb::post, "/predict", one_instance());
  client.request(verb::get, "/nowhere");
  auto res = client.request(verb::get, "/metrics");
  ASSERT_EQ(res.result_int(), 200u);
  const auto path = std::filesystem::temp_directory_path() /
                    ("vigil_http_metrics_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(path) << res.body();
  const std::string cmd =
      "promtool check metrics < " + path.string() + " > " + path.string() + ".out 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream f(path.string() + ".out");
  std::string out((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << out;
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + ".out");
}

// ---------------------------------------------------------------------------------------------
// The edge under abuse: unbounded reads, idle-socket floods

// Resident memory of this process (the server runs in it), in bytes.
size_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

TEST(HttpServer, AChunkSizeLineOrTrailerThatNeverEndsIsCutOffWithoutGrowingMemory) {
  HttpConfig c = test_config();
  c.read_timeout = milliseconds(30000);  // the bound must come from the buffer, not a timer
  c.header_timeout = milliseconds(30000);
  Server s(c);
  const std::string head =
      "POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  struct Case {
    const char* what;
    std::string prefix;
    char filler;
  } cases[] = {
      {"chunk-size line of hex digits", head + "1", '0'},
      {"chunk extension", head + "1;ext=", 'a'},
      {"trailer", head + "1\r\nx\r\n0\r\nX-Trailer: ", 'a'},
  };
  constexpr size_t kFlood = 32u << 20;  // what the client tries to send: 32 MiB
  constexpr long kGrowthAllowed = 4 << 20;
  for (const Case& k : cases) {
    const std::string block(64 * 1024, k.filler);
    const long before = static_cast<long>(resident_bytes());
    HttpClient client(s.port(), milliseconds(5000));
    bool cut = static_cast<bool>(client.write_raw(k.prefix));
    for (size_t sent = 0; !cut && sent < kFlood; sent += block.size()) {
      cut = static_cast<bool>(client.write_raw(block));
    }
    const long grown = static_cast<long>(resident_bytes()) - before;
    EXPECT_LT(grown, kGrowthAllowed) << k.what << ": resident memory grew by " << grown;
    EXPECT_TRUE(cut || client.wait_closed(milliseconds(3000))) << k.what;
  }
  // And the server goes on serving.
  HttpClient ok(s.port());
  EXPECT_EQ(ok.request(verb::post, "/predict", one_instance()).result_int(), 200u);
}

TEST(HttpServer, AHeaderLongerThanTheLimitIs400AndClosesTheConnection) {
  Server s;
  HttpClient client(s.port());
  ASSERT_FALSE(client.write_raw(
      "GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(20 * 1024, 'a') + "\r\n\r\n"));
  HttpClient::Response res;
  ASSERT_FALSE(client.read(res, milliseconds(2000)));
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(client.wait_closed(milliseconds(2000)));
}

TEST(HttpServer, AConnectionThatSendsNoWholeHeaderIsClosedAfterTheHeaderTimeout) {
  HttpConfig c = test_config();
  c.header_timeout = milliseconds(300);
  c.idle_timeout = milliseconds(60000);
  c.read_timeout = milliseconds(10000);
  Server s(c);
  HttpClient kept(s.port());
  ASSERT_EQ(kept.request(verb::get, "/health").result_int(), 200u);

  const auto start = std::chrono::steady_clock::now();
  HttpClient silent(s.port()), partial(s.port());
  ASSERT_FALSE(partial.write_raw("GET /health HTTP/1.1\r\nHost: x\r\n"));  // never ends
  EXPECT_TRUE(silent.wait_closed(milliseconds(3000)));
  EXPECT_TRUE(partial.wait_closed(milliseconds(3000)));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, milliseconds(250));
  EXPECT_LT(waited, milliseconds(3000));  // not the idle timeout (60 s)
  EXPECT_TRUE(
      wait_until([&] { return s.server->stats().header_timeouts() == 2; }, milliseconds(2000)));
  EXPECT_EQ(s.server->stats().read_timeouts(), 0u);

  // A keep-alive connection waits between requests under the idle timeout (it outlived the
  // header timeout above), and its next header is timed from that header's first byte.
  EXPECT_EQ(kept.request(verb::get, "/health").result_int(), 200u);
  ASSERT_FALSE(kept.write_raw("GET /health HTTP/1.1\r\n"));
  EXPECT_TRUE(kept.wait_closed(milliseconds(3000)));
  EXPECT_TRUE(
      wait_until([&] { return s.server->stats().header_timeouts() == 3; }, milliseconds(2000)));
}

TEST(HttpServer, AtTheConnectionCapANewConnectionDisplacesTheOldestWithoutAHeader) {
  HttpConfig c = test_config();
  c.max_connections = 3;
  c.header_timeout = milliseconds(60000);  // only displacement frees slots here
  Server s(c);
  HttpClient busy(s.port());
  ASSERT_EQ(busy.request(verb::get, "/health").result_int(), 200u);
  HttpClient oldest(s.port());
  ASSERT_TRUE(
      wait_until([&] { return s.server->stats().connections() == 2.0; }, milliseconds(2000)));
  HttpClient newer(s.port());
  ASSERT_TRUE(
      wait_until([&] { return s.server->stats().connections() == 3.0; }, milliseconds(2000)));

  HttpClient probe(s.port());
  EXPECT_EQ(probe.request(verb::get, "/health").result_int(), 200u);
  EXPECT_TRUE(oldest.wait_closed(milliseconds(2000)));
  EXPECT_EQ(s.server->stats().displaced_connections(), 1u);
  EXPECT_TRUE(  // busy, newer, probe
      wait_until([&] { return s.server->stats().connections() == 3.0; }, milliseconds(2000)));

  HttpClient probe2(s.port());  // displaces `newer`
  EXPECT_EQ(probe2.request(verb::get, "/health").result_int(), 200u);
  EXPECT_TRUE(newer.wait_closed(milliseconds(2000)));
  EXPECT_EQ(s.server->stats().displaced_connections(), 2u);

  // Every connection has sent a header: a new one is closed at once, nobody is displaced.
  ASSERT_TRUE(
      wait_until([&] { return s.server->stats().connections() == 3.0; }, milliseconds(2000)));
  HttpClient over(s.port());
  EXPECT_TRUE(over.wait_closed(milliseconds(2000)));
  EXPECT_EQ(s.server->stats().rejected_connections(), 1u);
  EXPECT_EQ(busy.request(verb::get, "/health").result_int(), 200u);
}

void raise_open_files_limit(rlim_t want) {
  rlimit r{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &r), 0);
  if (r.rlim_cur >= want) return;
  r.rlim_cur = std::min(want, r.rlim_max);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &r), 0);
  ASSERT_GE(r.rlim_cur, want) << "the hard limit of open files is too low for this test";
}

TEST(HttpServer, ProbesAnswerWhileAFloodOfIdleSocketsHoldsEveryConnectionSlot) {
  constexpr size_t kFlood = 1100;            // over the default http.max_connections (1,024)
  raise_open_files_limit(2 * kFlood + 256);  // both ends live in this process
  HttpConfig c = test_config();
  c.max_connections = 1024;
  c.header_timeout = milliseconds(300);
  c.idle_timeout = milliseconds(60000);
  Server s(c);

  namespace net = boost::asio;
  net::io_context ioc;
  std::vector<net::ip::tcp::socket> flood;
  flood.reserve(kFlood);
  const net::ip::tcp::endpoint server(net::ip::make_address("127.0.0.1"), s.port());
  for (size_t i = 0; i < kFlood; ++i) {
    boost::system::error_code ec;
    flood.emplace_back(ioc).connect(server, ec);
    ASSERT_FALSE(ec) << "connection " << i << ": " << ec.message();
  }

  // The client holds every socket open: the probes still get in, at once.
  for (const char* target : {"/health", "/ready"}) {
    const auto start = std::chrono::steady_clock::now();
    HttpClient probe(s.port(), milliseconds(2000));
    EXPECT_EQ(probe.request(verb::get, target).result_int(), 200u) << target;
    EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000)) << target;
  }
  // The server has closed every socket of the flood: displaced at the cap or timed out.
  EXPECT_TRUE(wait_until(
      [&] {
        const auto& st = s.server->stats();
        return st.header_timeouts() + st.displaced_connections() == kFlood &&
               st.connections() == 0.0;
      },
      milliseconds(5000)))
      << s.server->stats().header_timeouts() << " timed out, "
      << s.server->stats().displaced_connections() << " displaced, "
      << s.server->stats().connections() << " open";
  EXPECT_EQ(s.server->stats().rejected_connections(), 0u);
  HttpClient after(s.port());
  EXPECT_EQ(after.request(verb::get, "/health").result_int(), 200u);
}

// A connection that closes on its own (its header timeout) stays registered until its last
// handler lets go of it. An accept on another io thread in that window picked it to make room:
// counted as timed out and as displaced (the flood test above saw 1,101 closes of 1,100 sockets
// once, under load), and a live idle socket kept beyond the cap. Driven here in that order.
TEST(HttpServer, AConnectionClosingOnItsOwnIsNotPickedToMakeRoomAndCountsOnce) {
  struct IdleConnection final : Connection {
    explicit IdleConnection(Executor e) : ex(std::move(e)) {}
    Executor executor() override { return ex; }
    void shutdown_gracefully() override {}
    void force_close() override {}
    Executor ex;
  };
  ScoringStack stack;
  HttpConfig c = test_config();
  c.max_connections = 2;
  ServerCore core(c, stack.deps());
  boost::asio::io_context ioc;
  auto oldest = std::make_shared<IdleConnection>(ioc.get_executor());
  auto idle = std::make_shared<IdleConnection>(ioc.get_executor());
  core.add(oldest, /*awaiting_header=*/true);
  std::this_thread::sleep_for(milliseconds(2));  // accepted strictly later
  core.add(idle, /*awaiting_header=*/true);

  // The oldest times out: not displaced before, so its timeout is what counts.
  EXPECT_FALSE(core.closing(oldest.get()));
  // A new connection: the closing one makes room of its own, nobody is displaced.
  std::optional<ServerCore::Entry> displace;
  ASSERT_TRUE(core.admit(displace));
  EXPECT_FALSE(displace.has_value());
  auto newest = std::make_shared<IdleConnection>(ioc.get_executor());
  core.add(newest, /*awaiting_header=*/true);
  // At the cap again: the oldest idle one still open is picked, never the closing one.
  ASSERT_TRUE(core.admit(displace));
  ASSERT_TRUE(displace.has_value());
  EXPECT_EQ(displace->connection.lock(), idle);
  // Its own timeout, racing the displacement, is told it was displaced: counted once.
  EXPECT_TRUE(core.closing(idle.get()));
  core.remove(oldest.get());
  core.remove(idle.get());
  EXPECT_EQ(core.session_count(), 1u);
  EXPECT_EQ(core.leaving, 0u);
}

// ---------------------------------------------------------------------------------------------
// Who may do what, and what anyone can read

// A server on `stack` whose deps are adjusted by `adjust` first.
struct CustomServer {
  CustomServer(HttpConfig c, ScoringStack& stack, const std::function<void(HttpDeps&)>& adjust) {
    HttpDeps deps = stack.deps();
    adjust(deps);
    server = std::make_unique<HttpServer>(c, std::move(deps));
    auto st = server->start();
    EXPECT_TRUE(st.ok()) << st.message();
  }
  uint16_t port() const { return server->port(); }
  std::unique_ptr<HttpServer> server;
};

scoring::ModelConfig fake_repository_config() {
  scoring::ModelConfig m;
  m.name = "fake";
  return m;
}

TEST(HttpServer, RepositoryRoutesTakeOnlyTheAdminToken) {
  ScoringStack stack;
  scoring::ModelManager models(
      fake_repository_config(), 64,
      [](const scoring::ModelInfo&) -> Result<std::shared_ptr<scoring::Model>> {
        return Result<std::shared_ptr<scoring::Model>>::Error("not in this test");
      },
      stack.registry);
  const std::string admin_routes[] = {"/v2/repository/index", "/v2/repository/models/fake/load",
                                      "/v2/repository/models/fake/unload"};
  const HttpClient::Headers none, scoring_token{{"Authorization", "Bearer score-tok"}},
      admin_token{{"Authorization", "Bearer admin+tok/="}},
      wrong{{"Authorization", "Bearer admin+tok/"}};
  const std::vector<std::pair<const char*, HttpClient::Headers>> every_credential = {
      {"none", none}, {"scoring token", scoring_token}, {"admin token", admin_token}};

  HttpConfig c = test_config();
  c.auth_token = "score-tok";
  {  // No admin token configured: the repository API is off, whatever is given.
    CustomServer s(c, stack, [&](HttpDeps& d) { d.models = {&models}; });
    HttpClient client(s.port());
    for (const auto& target : admin_routes) {
      for (const auto& [what, headers] : every_credential) {
        auto res = client.request(verb::post, target, "", headers);
        EXPECT_EQ(res.result_int(), 403u) << target << " with " << what << ": " << res.body();
        EXPECT_NE(error_of(res).find("http.admin_token"), std::string::npos) << target;
      }
    }
  }
  c.admin_token = "admin+tok/=";
  CustomServer s(c, stack, [&](HttpDeps& d) { d.models = {&models}; });
  HttpClient client(s.port());
  for (const auto& target : admin_routes) {
    auto res = client.request(verb::post, target, "", none);
    EXPECT_EQ(res.result_int(), 401u) << target << ": " << res.body();
    EXPECT_EQ(res[bhttp::field::www_authenticate], R"(Bearer realm="vigil-admin")") << target;
    for (const auto& headers : {scoring_token, wrong}) {
      res = client.request(verb::post, target, "", headers);
      EXPECT_EQ(res.result_int(), 403u) << target << ": " << res.body();
      for (const char* token : {"score-tok", "admin+tok"}) {
        EXPECT_EQ(res.body().find(token), std::string::npos) << "a token echoed: " << res.body();
      }
    }
  }
  // The admin token opens them (the index of this empty repository is empty) ...
  auto index = client.request(verb::post, "/v2/repository/index", "", admin_token);
  EXPECT_EQ(index.result_int(), 200u) << index.body();
  EXPECT_EQ(index.body(), "[]");
  // ... and nothing else: scoring takes the scoring token only.
  EXPECT_EQ(client.request(verb::post, "/predict", one_instance(), admin_token).result_int(), 401u);
  EXPECT_EQ(client.request(verb::post, "/predict", one_instance(), scoring_token).result_int(),
            200u);
}

// The live view as the server sees it: a page and feeds that hold one frame (src/live is tested
// on its own, and end to end in tests/integration/live_view_test.cpp).
class OneFrameFeed final : public EventFeed {
 public:
  bool take(std::string& frame) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (frames_.empty()) return false;
    frame = frames_.front();
    frames_.erase(frames_.begin());
    return true;
  }
  bool finished() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return ended_ && frames_.empty();
  }
  void end(const std::string& why) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!std::exchange(ended_, true)) frames_.push_back("event: end\ndata: " + why + "\n\n");
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> frames_{"retry: 2000\n\n"};
  bool ended_ = false;
};

class FakeEventStreams final : public EventStreams {
 public:
  std::shared_ptr<EventFeed> subscribe(std::function<void()>) override {
    std::lock_guard<std::mutex> lock(mutex_);
    feeds_.push_back(std::make_shared<OneFrameFeed>());
    return feeds_.back();
  }
  void unsubscribe(const std::shared_ptr<EventFeed>& feed) override {
    std::lock_guard<std::mutex> lock(mutex_);
    feeds_.erase(std::remove(feeds_.begin(), feeds_.end(), feed), feeds_.end());
  }
  std::string_view page() const override { return "<!doctype html><title>live</title>"; }
  size_t open() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return feeds_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<EventFeed>> feeds_;
};

// Sends GET `target` on a new connection and returns the response's status line and headers
// (the live stream never ends, so its body is not read).
std::string response_head(uint16_t port, const std::string& target) {
  HttpClient client(port, milliseconds(2000));
  if (client.write_raw("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")) return "write failed";
  std::string head;
  const auto ec = client.read_until(head, "\r\n\r\n");
  return ec ? "read failed: " + ec.message() : head.substr(0, head.find("\r\n\r\n"));
}

TEST(HttpServer, TheLiveStreamTakesABase64TokenFromThePageQueryString) {
  ScoringStack stack;
  HttpConfig c = test_config();
  c.auth_token = "Ab+/cd==";  // base64: '+', '/' and '='
  FakeEventStreams live;
  CustomServer s(c, stack, [&](HttpDeps& d) { d.events = &live; });
  // What the live page sends: encodeURIComponent(token).
  EXPECT_EQ(response_head(s.port(), "/v1/events?access_token=Ab%2B%2Fcd%3D%3D").substr(0, 15),
            "HTTP/1.1 200 OK");
  // A token pasted as is: '+' is a plus (RFC 3986), not a space.
  EXPECT_EQ(response_head(s.port(), "/v1/events?x=1&access_token=Ab+/cd==").substr(0, 15),
            "HTTP/1.1 200 OK");
  for (const std::string wrong : {"Ab%20%2Fcd%3D%3D", "Ab%2B%2Fcd%3D", "Ab", "", "Ab%2"}) {
    EXPECT_EQ(response_head(s.port(), "/v1/events?access_token=" + wrong).substr(0, 25),
              "HTTP/1.1 401 Unauthorized")
        << wrong;
  }
  // Query parameters of the scoring routes are decoded the same way.
  HttpClient client(s.port());
  auto res = client.request(verb::post, "/predict?explain=%74rue&top_k=%32", one_instance(),
                            {{"Authorization", "Bearer Ab+/cd=="}});
  EXPECT_EQ(res.result_int(), 422u) << res.body();  // the fake model has no baseline: asked
  EXPECT_NE(error_of(res).find("no baseline"), std::string::npos) << res.body();
}

// The stream is handed from the connection that read its request to an EventStream: the
// answers pipelined before it are written first, then the stream's header and frames; a
// graceful stop ends it with its feed's last frame, and the feed is released.
TEST(HttpServer, AnEventStreamFollowsThePipelinedAnswersAndEndsWithItsLastFrameOnStop) {
  ScoringStack stack;
  FakeEventStreams live;
  CustomServer s(test_config(), stack, [&](HttpDeps& d) { d.events = &live; });
  HttpClient client(s.port(), milliseconds(3000));
  ASSERT_FALSE(
      client.write_raw("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got;
  auto ec = client.read_until(got, "retry: 2000\n\n");
  ASSERT_FALSE(ec) << ec.message() << ": " << got;
  const size_t health = got.find("HTTP/1.1 200 OK");
  const size_t stream = got.find("Content-Type: text/event-stream");
  ASSERT_NE(health, std::string::npos) << got;
  ASSERT_NE(stream, std::string::npos) << got;
  EXPECT_LT(health, stream) << "the answer read first is written first";
  EXPECT_EQ(live.open(), 1u);
  s.server->stop(milliseconds(2000));
  ec = client.read_until(got, "event: end\ndata: vigil is shutting down\n\n");
  EXPECT_FALSE(ec) << ec.message() << ": " << got;
  EXPECT_EQ(live.open(), 0u) << "the stream's feed is released once it ended";
}

TEST(HttpServer, UnauthenticatedAnswersCarryNoModelPath) {
  ScoringStack stack;
  auto served = std::make_shared<scoring::ModelInfo>(*stack.batcher.model_info());
  served->path = "/srv/secret-models/fake/1/model.pt";
  auto shadow = std::make_shared<scoring::ModelInfo>(*served);
  shadow->version = "2";
  shadow->path = "/srv/secret-models/fake/2/model.pt";
  HttpConfig c = test_config();
  c.auth_token = "tok";
  auto model_info = [served](size_t) -> std::shared_ptr<const scoring::ModelInfo> {
    return served;
  };
  FakeEventStreams live;
  scoring::ModelManager models(
      fake_repository_config(), 64,
      [](const scoring::ModelInfo&) -> Result<std::shared_ptr<scoring::Model>> {
        return Result<std::shared_ptr<scoring::Model>>::Error("not in this test");
      },
      stack.registry);
  CustomServer s(c, stack, [&](HttpDeps& d) {
    d.model_info = model_info;
    d.shadow_info = [shadow](size_t) -> std::shared_ptr<const scoring::ModelInfo> {
      return shadow;
    };
    d.events = &live;
    d.models = {&models};
  });
  HttpClient client(s.port());
  for (const std::string target :
       {"/", "/health", "/ready", "/metrics", "/openapi.json", "/model/info", "/v2",
        "/v2/health/live", "/v2/health/ready", "/v2/models/fake", "/v2/models/fake/ready",
        "/v2/models/fake/versions/1", "/v2/models/fake/versions/1/ready"}) {
    auto res = client.request(verb::get, target);
    EXPECT_EQ(res.result_int(), 200u) << target << ": " << res.body();
    EXPECT_EQ(res.body().find("secret-models"), std::string::npos) << target << ": " << res.body();
  }
  // GET /v2 lists the repository extension it serves.
  auto v2 = parse_json(client.request(verb::get, "/v2").body());
  ASSERT_EQ(v2.at("extensions").as_array().size(), 1u);
  EXPECT_EQ(v2.at("extensions").as_array()[0].as_string(), "model_repository");
}

}  // namespace
}  // namespace vigil::http::test
