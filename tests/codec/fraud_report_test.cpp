#include "codec/fraud_report.h"

#include <gtest/gtest.h>

#include <climits>
#include <string>

namespace vigil::codec {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

struct FraudReportTest : ::testing::Test {
  FraudReportDecoder decoder{4096};
  FraudReport out;
  DecodeStatus decode(const std::string& json, int64_t reference = kNow) {
    return decoder.decode(json, reference, out);
  }
};

TEST_F(FraudReportTest, AWellFormedReportIsReadWithExtraFieldsIgnored) {
  auto st =
      decode(R"({"transaction_id":"T1","customer_id":"C42","terminal_id":"M7",)"
             R"("event_time_ms":1699000000000,"reported_at_ms":1699600000000,"is_fraud":true,)"
             R"("source":{"kind":"chargeback"}})");
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(out.transaction_id, "T1");
  EXPECT_EQ(out.customer_id, "C42");
  EXPECT_EQ(out.terminal_id, "M7");
  EXPECT_EQ(out.event_time_ms, 1699000000000);
  EXPECT_EQ(out.reported_at_ms, 1699600000000);
  EXPECT_TRUE(out.is_fraud);
  // customer_id may be left out.
  st = decode(R"({"transaction_id":"T2","terminal_id":"M7","event_time_ms":1,)"
              R"("reported_at_ms":2,"is_fraud":false})");
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(out.customer_id, "");
  EXPECT_FALSE(out.is_fraud);
}

TEST_F(FraudReportTest, EachBadFieldIsRefusedWithItsReasonNamingTheField) {
  struct Case {
    const char* json;
    DecodeError code;
    const char* names;
  };
  const Case cases[] = {
      {R"({"terminal_id":"M","event_time_ms":1,"reported_at_ms":2,"is_fraud":true})",
       DecodeError::kBadTransactionId, "transaction_id"},
      {R"({"transaction_id":"","terminal_id":"M","event_time_ms":1,"reported_at_ms":2,)"
       R"("is_fraud":true})",
       DecodeError::kBadTransactionId, "transaction_id"},
      {R"({"transaction_id":"T","event_time_ms":1,"reported_at_ms":2,"is_fraud":true})",
       DecodeError::kMissingField, "terminal_id"},
      {R"({"transaction_id":"T","terminal_id":"","event_time_ms":1,"reported_at_ms":2,)"
       R"("is_fraud":true})",
       DecodeError::kMissingField, "terminal_id"},
      {R"({"transaction_id":"T","terminal_id":"M","reported_at_ms":2,"is_fraud":true})",
       DecodeError::kMissingField, "event_time_ms"},
      {R"({"transaction_id":"T","terminal_id":"M","event_time_ms":1,"is_fraud":true})",
       DecodeError::kMissingField, "reported_at_ms"},
      {R"({"transaction_id":"T","terminal_id":"M","event_time_ms":1,"reported_at_ms":2})",
       DecodeError::kMissingField, "is_fraud"},
      {R"({"transaction_id":"T","terminal_id":7,"event_time_ms":1,"reported_at_ms":2,)"
       R"("is_fraud":true})",
       DecodeError::kWrongType, "terminal_id"},
      {R"({"transaction_id":"T","terminal_id":"M","event_time_ms":"1","reported_at_ms":2,)"
       R"("is_fraud":true})",
       DecodeError::kWrongType, "event_time_ms"},
      {R"({"transaction_id":"T","terminal_id":"M","event_time_ms":1,"reported_at_ms":2.5,)"
       R"("is_fraud":true})",
       DecodeError::kWrongType, "reported_at_ms"},
      {R"({"transaction_id":"T","terminal_id":"M","event_time_ms":1,"reported_at_ms":2,)"
       R"("is_fraud":1})",
       DecodeError::kWrongType, "is_fraud"},
      {R"({"transaction_id":"T","terminal_id":"M","event_time_ms":-1,"reported_at_ms":2,)"
       R"("is_fraud":true})",
       DecodeError::kOutOfRange, "event_time_ms"},
      {R"({"transaction_id":"T","terminal_id":"M","event_time_ms":5,"reported_at_ms":4,)"
       R"("is_fraud":true})",
       DecodeError::kOutOfRange, "reported_at_ms"},
      {R"({"transaction_id":"T","terminal_id":"M","event_time_ms":1,)"
       R"("reported_at_ms":1700086400001,"is_fraud":true})",
       DecodeError::kOutOfRange, "reported_at_ms"},
      {R"({"transaction_id":"T","terminal_id":"M","event_time_ms":1,"reported_at_ms":2,)"
       R"("is_fraud":true)",
       DecodeError::kMalformedJson, "malformed"},
      {R"(["T"])", DecodeError::kWrongType, "object"},
  };
  for (const Case& c : cases) {
    const DecodeStatus st = decode(c.json);
    EXPECT_EQ(st.code, c.code) << c.json << ": " << st.message;
    EXPECT_NE(st.message.find(c.names), std::string::npos) << c.json << ": " << st.message;
  }
}

TEST_F(FraudReportTest, TheFutureLimitIsSkippedWithoutAReferenceTime) {
  const std::string json = R"({"transaction_id":"T","terminal_id":"M","event_time_ms":1,)"
                           R"("reported_at_ms":1800000000000,"is_fraud":true})";
  EXPECT_EQ(decode(json).code, DecodeError::kOutOfRange);
  EXPECT_TRUE(decode(json, INT64_MIN).ok());
}

}  // namespace
}  // namespace vigil::codec
