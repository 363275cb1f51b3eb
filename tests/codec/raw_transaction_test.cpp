#include "codec/raw_transaction.h"

#include <gtest/gtest.h>

#include <climits>
#include <string>

namespace vigil::codec {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

struct RawTransactionTest : ::testing::Test {
  RawTransactionDecoder decoder{RawFields{}, 4096};
  RawTransaction out;
  DecodeStatus decode(const std::string& json, int64_t reference = kNow) {
    return decoder.decode(json, reference, out);
  }
};

TEST_F(RawTransactionTest, AWellFormedTransactionIsReadWithExtraFieldsIgnored) {
  auto st =
      decode(R"({"transaction_id":"T1","customer_id":"C42","terminal_id":"M7","amount":57.25,)"
             R"("event_time_ms":1699999999000,"tx_fraud":0,"note":{"a":[1,2]}})");
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(out.transaction_id, "T1");
  EXPECT_EQ(out.entity, "C42");
  EXPECT_EQ(out.terminal_id, "M7");
  EXPECT_EQ(out.amount, 57.25);
  EXPECT_EQ(out.event_time_ms, 1699999999000);
}

TEST_F(RawTransactionTest, EachBadFieldIsRefusedWithItsReasonNamingTheField) {
  struct Case {
    const char* json;
    DecodeError code;
    const char* names;
  };
  const Case cases[] = {
      {R"({"transaction_id":"T","amount":1,"event_time_ms":1})", DecodeError::kMissingField,
       "'customer_id'"},
      {R"({"transaction_id":"T","customer_id":"","amount":1,"event_time_ms":1})",
       DecodeError::kMissingField, "'customer_id'"},
      {R"({"transaction_id":"T","customer_id":"C","event_time_ms":1})", DecodeError::kMissingField,
       "'amount'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":-0.01,"event_time_ms":1})",
       DecodeError::kOutOfRange, "'amount'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":1e39,"event_time_ms":1})",
       DecodeError::kOutOfRange, "'amount'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":1,"event_time_ms":-1})",
       DecodeError::kOutOfRange, "'event_time_ms'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":NaN,"event_time_ms":1})",
       DecodeError::kNonFinite, "'amount'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":1e999,"event_time_ms":1})",
       DecodeError::kNonFinite, "'amount'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":"12","event_time_ms":1})",
       DecodeError::kWrongType, "'amount'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":1})", DecodeError::kMissingField,
       "'event_time_ms'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":1,"event_time_ms":1.5})",
       DecodeError::kWrongType, "'event_time_ms'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":1,"event_time_ms":1700086400001})",
       DecodeError::kOutOfRange, "'event_time_ms'"},
      {R"({"transaction_id":"T","customer_id":7,"amount":1,"event_time_ms":1})",
       DecodeError::kWrongType, "'customer_id'"},
      {R"({"customer_id":"C","amount":1,"event_time_ms":1})", DecodeError::kBadTransactionId,
       "'transaction_id'"},
      {R"({"transaction_id":"T","customer_id":"C","amount":1,"event_time_ms":1,"x":nul})",
       DecodeError::kMalformedJson, "x"},
      {R"([1,2])", DecodeError::kWrongType, "object"},
  };
  for (const auto& c : cases) {
    auto st = decode(c.json);
    EXPECT_EQ(st.code, c.code) << c.json << ": " << st.message;
    EXPECT_NE(st.message.find(c.names), std::string::npos) << c.json << ": " << st.message;
  }
}

TEST_F(RawTransactionTest, TheFutureLimitIsRelativeToTheRecordsOwnTimestamp) {
  const std::string json =
      R"({"transaction_id":"T","customer_id":"C","amount":1,"event_time_ms":1700086400000})";
  EXPECT_TRUE(decode(json).ok()) << "exactly one day after is allowed";
  EXPECT_FALSE(decode(json, kNow - 1).ok());
  EXPECT_TRUE(decode(json, INT64_MIN).ok()) << "no reference: no limit";
}

TEST_F(RawTransactionTest, TheSpecNamesTheFields) {
  RawFields f;
  f.entity = "card";
  f.time = "ts";
  f.amount = "value";
  RawTransactionDecoder d(f, 4096);
  ASSERT_TRUE(d.decode(R"({"transaction_id":"T","card":"K1","value":3.5,"ts":5})", kNow, out).ok());
  EXPECT_EQ(out.entity, "K1");
  auto st = d.decode(R"({"transaction_id":"T","customer_id":"K1","value":3.5,"ts":5})", kNow, out);
  EXPECT_EQ(st.code, DecodeError::kMissingField);
  EXPECT_NE(st.message.find("'card'"), std::string::npos);
}

}  // namespace
}  // namespace vigil::codec
