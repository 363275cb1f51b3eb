#include "sinks/score_record.h"

#include <gtest/gtest.h>

#include <charconv>
#include <string>
#include <vector>

#include "common/json_text.h"

namespace vigil::sinks {
namespace {

std::string quoted(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(JsonString, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(quoted("a\"b\\c\n\t\x01"), "\"a\\\"b\\\\c\\n\\t\\u0001\"");
}

TEST(JsonString, KeepsWellFormedUtf8) {
  EXPECT_EQ(quoted("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
}

TEST(JsonString, ReplacesBytesThatAreNotUtf8SoTheJsonStaysValid) {
  EXPECT_EQ(quoted("caf\xE9"), "\"caf\xEF\xBF\xBD\"");                            // Latin-1 byte
  EXPECT_EQ(quoted("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");                  // overlong '/'
  EXPECT_EQ(quoted("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // surrogate
  EXPECT_EQ(quoted("\xE2\x82"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");                  // truncated
}

std::string number(double v) {
  std::string out;
  append_number(out, v);
  return out;
}
std::string number(float v) {
  std::string out;
  append_number(out, v);
  return out;
}
template <typename T>
std::string to_chars_text(T v) {
  char buf[64];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

TEST(JsonNumber, WholeNumbersReadTheSameAsTheShortestRoundTripText) {
  // The integer fast path must not change a byte: every whole number it takes, in both types.
  for (int i = -99999; i <= 99999; ++i) {
    ASSERT_EQ(number(static_cast<float>(i)), to_chars_text(static_cast<float>(i))) << i;
    ASSERT_EQ(number(static_cast<double>(i)), to_chars_text(static_cast<double>(i))) << i;
  }
  EXPECT_EQ(number(-0.0f), "-0");
  EXPECT_EQ(number(100000.0f), "1e+05");  // beyond the fast path: scientific is shorter
  EXPECT_EQ(number(57.25f), "57.25");
  EXPECT_EQ(number(0.1f), "0.1");  // the float's shortest text, not the double's
}

TEST(FeatureKeys, EscapesEachNameOnceAndFollowsAChangeOfNames) {
  FeatureKeys keys;
  const std::vector<std::string> a = {"tx_amount", "say \"hi\""};
  const std::string* k = keys.keys_of(a);
  EXPECT_EQ(k[0], "\"tx_amount\":");
  EXPECT_EQ(k[1], "\"say \\\"hi\\\"\":");
  EXPECT_EQ(keys.keys_of(a), k);  // the same names: the same keys, not escaped again
  const std::vector<std::string> b = {"customer_nb_tx_1d"};
  EXPECT_EQ(keys.keys_of(b)[0], "\"customer_nb_tx_1d\":");
}

std::string record(int64_t event_time_ms, ScoreSource source, const ReasonField* reasons = nullptr,
                   size_t n = 0) {
  std::string out;
  append_score_json(out, "t-1", 0.25f, false, "fraud_mlp", "1", 1700000000000, event_time_ms,
                    source, reasons, n);
  return out;
}

TEST(ScoreRecordJson, HasEveryFieldAndOmitsAnUnknownEventTime) {
  EXPECT_EQ(record(-1, ScoreSource::kHttp),
            "{\"transaction_id\":\"t-1\",\"score\":0.25,\"is_fraud\":false,\"model_name\":"
            "\"fraud_mlp\",\"model_version\":\"1\",\"scored_at_ms\":1700000000000,"
            "\"source\":\"http\"}");
  EXPECT_NE(record(42, ScoreSource::kHttp).find(",\"event_time_ms\":42,"), std::string::npos);
  EXPECT_NE(record(42, ScoreSource::kKafka).find(",\"source\":\"kafka\"}"), std::string::npos);
}

TEST(ScoreRecordJson, ReasonCodesCloseTheRecordInRankOrder) {
  const ReasonField reasons[] = {{"V14", 0.3125f}, {"V4", -0.5f}};
  std::string out = "prefix:";  // appended: what is there stays
  append_score_json(out, "t-2", 0.75f, true, "fraud_mlp", "2", 5, 4, ScoreSource::kHttp, reasons,
                    2);
  EXPECT_EQ(out,
            "prefix:{\"transaction_id\":\"t-2\",\"score\":0.75,\"is_fraud\":true,\"model_name\":"
            "\"fraud_mlp\",\"model_version\":\"2\",\"scored_at_ms\":5,\"event_time_ms\":4,"
            "\"source\":\"http\",\"reasons\":[{\"feature\":\"V14\",\"contribution\":0.3125},{"
            "\"feature\":\"V4\","
            "\"contribution\":-0.5}]}");
}

TEST(ScoreRecordJson, ComputedFeaturesCloseTheRecordWithTheSpecAndTheHistory) {
  const std::vector<std::string> names = {"tx_amount", "customer_nb_tx_1d"};
  const float values[] = {57.25f, 3.0f};
  FeatureKeys keys;
  FeatureFields f;
  f.keys = keys.keys_of(names);
  f.values = values;
  f.count = 2;
  f.spec_hash = "fnv1a64:00000000000000ab";
  f.partial = true;
  std::string out;
  append_score_json(out, "t-3", 0.5f, false, "fraud_velocity", "1", 5, 4, ScoreSource::kKafka,
                    nullptr, 0, &f);
  EXPECT_EQ(out,
            "{\"transaction_id\":\"t-3\",\"score\":0.5,\"is_fraud\":false,\"model_name\":"
            "\"fraud_velocity\",\"model_version\":\"1\",\"scored_at_ms\":5,\"event_time_ms\":4,"
            "\"source\":\"kafka\",\"features\":{\"tx_amount\":57.25,\"customer_nb_tx_1d\":3},"
            "\"feature_spec\":\"fnv1a64:00000000000000ab\",\"history\":\"partial\"}");
}

TEST(ScoreRecordJson, RecordsAppendedToAByteBufferAreTheStringFormsBytes) {
  const std::vector<std::string> names = {"tx_amount", "customer_avg_amount_7d"};
  FeatureKeys keys;
  const ReasonField reasons[] = {{"V14", 0.3125f}};
  std::string expected;
  ByteBuffer buffer;
  // Enough records to grow the buffer several times: each lands after the ones before it.
  for (int i = 0; i < 200; ++i) {
    const float values[] = {static_cast<float>(i) + 0.25f, 1.0f / static_cast<float>(i + 1)};
    FeatureFields f;
    f.keys = keys.keys_of(names);
    f.values = values;
    f.count = 2;
    f.spec_hash = "fnv1a64:00000000000000ab";
    f.partial = i % 2 == 0;
    const std::string id = "t-" + std::to_string(i);
    const int64_t event_time = i % 3 == 0 ? -1 : i;
    append_score_json(expected, id, 0.5f / static_cast<float>(i + 1), i % 5 == 0, "m", "1", i,
                      event_time, ScoreSource::kKafka, reasons, i % 2, &f);
    append_score_json(buffer, id, 0.5f / static_cast<float>(i + 1), i % 5 == 0, "m", "1", i,
                      event_time, ScoreSource::kKafka, reasons, i % 2, &f);
    ASSERT_EQ(buffer.view(), expected) << "record " << i;
  }
}

TEST(ShadowRecordJson, CarriesBothScoresBothVersionsAndWhetherTheyAgree) {
  std::string out;
  append_shadow_json(out, "t-3", 0.5f, 0.25f, false, "fraud_mlp", "1", "2", 7, -1);
  EXPECT_EQ(out,
            "{\"transaction_id\":\"t-3\",\"score\":0.5,\"shadow_score\":0.25,\"agree\":false,"
            "\"model_name\":\"fraud_mlp\",\"model_version\":\"1\",\"shadow_version\":\"2\","
            "\"scored_at_ms\":7}");
}

}  // namespace
}  // namespace vigil::sinks
