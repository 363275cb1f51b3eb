// vigil-fault-harness as a process: it prints its bootstrap address, answers every command
// line with "ok" or "error <why>", and its faults really reach Kafka clients.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "faults/fault_fixture.h"
#include "support/kafka_test_util.h"

namespace vigil::faults {
namespace {

class FaultHarnessTest : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    testing::ProcessOptions po;
    po.log_path = dir_ + "/harness.log";
    po.pipe_stdin = po.pipe_stdout = true;
    auto h = testing::Process::Spawn(
        harness_binary(),
        {"--brokers", "3", "--topic", "transactions:2", "--bootstrap-file", dir_ + "/bootstrap"},
        po);
    ASSERT_TRUE(h.ok()) << h.error();
    harness_ = std::move(h.value());
    auto line = harness_->read_line(milliseconds(10000));
    ASSERT_TRUE(line.ok()) << line.error() << "\n" << harness_->log_tail();
    ASSERT_EQ(line->rfind("bootstrap ", 0), 0u) << *line;
    bootstrap_ = line->substr(10);
  }

  std::string command(const std::string& line) {
    EXPECT_TRUE(harness_->write_line(line).ok());
    auto answer = harness_->read_line(milliseconds(5000));
    return answer.ok() ? *answer : "no answer: " + answer.error();
  }

  std::unique_ptr<testing::Process> harness_;
  std::string bootstrap_;
};

TEST_F(FaultHarnessTest, AnswersEveryCommandWithOkOrAnError) {
  EXPECT_EQ(std::count(bootstrap_.begin(), bootstrap_.end(), ','), 2) << bootstrap_;
  std::ifstream file(dir_ + "/bootstrap");
  std::string written;
  std::getline(file, written);
  EXPECT_EQ(written, bootstrap_);

  EXPECT_EQ(command("down 2"), "ok");
  EXPECT_EQ(command("up 2"), "ok");
  EXPECT_EQ(command("down all"), "ok");
  EXPECT_EQ(command("up all"), "ok");
  EXPECT_EQ(command("errors Produce 2 NOT_LEADER_FOR_PARTITION"), "ok");
  EXPECT_EQ(command("errors 8 1 RD_KAFKA_RESP_ERR__TRANSPORT"), "ok");
  EXPECT_EQ(command("errors JoinGroupRequest 1 7"), "ok");  // REQUEST_TIMED_OUT by code
  EXPECT_EQ(command("clear JoinGroup"), "ok");
  EXPECT_EQ(command("rtt all 5"), "ok");
  EXPECT_EQ(command("rtt 1 0"), "ok");
  EXPECT_EQ(command("help").rfind("ok commands:", 0), 0u);

  EXPECT_EQ(command("down 4"), "error broker must be 'all' or 1..3, got '4'");
  EXPECT_EQ(command("errors Bogus 1 _TRANSPORT"), "error unknown ApiKey 'Bogus'");
  EXPECT_EQ(command("errors Fetch 0 _TRANSPORT"), "error count must be 1..1000000, got '0'");
  EXPECT_EQ(command("errors Fetch 1 NO_SUCH_ERROR"), "error unknown error 'NO_SUCH_ERROR'");
  EXPECT_EQ(command("rtt all -1"), "error rtt must be 0..3600000 ms, got '-1'");
  EXPECT_EQ(command("up"), "error wrong number of arguments for 'up' (try: help)");
  EXPECT_EQ(command("reboot"), "error unknown command 'reboot' (try: help)");

  EXPECT_EQ(command("quit"), "ok");
  auto st = harness_->wait(milliseconds(10000));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->ok()) << st->to_string();
}

TEST_F(FaultHarnessTest, InjectedProduceErrorsAreRetriedAndBrokersComeBack) {
  // The pushed errors are retriable: an idempotent producer gets every record through.
  EXPECT_EQ(command("errors Produce 3 NOT_LEADER_FOR_PARTITION"), "ok");
  EXPECT_EQ(command("rtt all 20"), "ok");
  const Records first = make_events(ref_, "h-", 0, 200);
  {
    PacedProducer producer(bootstrap_, "transactions", first, 5000);
    ASSERT_TRUE(producer.wait_done(milliseconds(30000)).ok());
  }
  // All brokers down: nothing is acknowledged; up again: everything is.
  EXPECT_EQ(command("down all"), "ok");
  const Records second = make_events(ref_, "h-", 200, 300);
  PacedProducer producer(bootstrap_, "transactions", second, 5000);
  EXPECT_FALSE(producer.wait_done(milliseconds(1500)).ok());
  EXPECT_EQ(producer.acknowledged(), 0u);
  EXPECT_EQ(command("up all"), "ok");
  ASSERT_TRUE(producer.wait_done(milliseconds(60000)).ok());
  auto all = read_all(bootstrap_, "transactions");
  ASSERT_TRUE(all.ok()) << all.error();
  Records inputs = first;
  inputs.insert(inputs.end(), second.begin(), second.end());
  Tally t = count(inputs, *all, {});
  EXPECT_EQ(t.scored, 300u);  // here: input records on the topic, by id
  EXPECT_EQ(t.duplicates, 0u) << "the idempotent producer wrote a record twice";
}

}  // namespace
}  // namespace vigil::faults
