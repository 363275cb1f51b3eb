#include "codec/event_decoder.h"

#include <gtest/gtest.h>

namespace vigil::codec {
namespace {

std::vector<std::string> names() {
  std::vector<std::string> n{"Time"};
  for (int i = 1; i <= 28; ++i) n.push_back("V" + std::to_string(i));
  n.push_back("Amount");
  return n;
}

// {"transaction_id":"t-1","features":{...}} with every feature = its index, with edits.
std::string object_event(const std::string& extra_features = "", const std::string& skip = "",
                         const std::string& id = "\"t-1\"") {
  std::string f;
  auto n = names();
  for (size_t i = 0; i < n.size(); ++i) {
    if (n[i] == skip) continue;
    f += (f.empty() ? "" : ",") + ("\"" + n[i] + "\":" + std::to_string(i) + ".5");
  }
  f += extra_features;
  return "{\"transaction_id\":" + id + ",\"features\":{" + f + "}}";
}

std::string array_event(int count) {
  std::string f;
  for (int i = 0; i < count; ++i) f += (i ? "," : "") + std::to_string(i);
  return "{\"transaction_id\":\"t-2\",\"features\":[" + f + "]}";
}

struct DecoderTest : ::testing::Test {
  FeatureSchema schema{names()};
  EventDecoder decoder{schema, 4096};
  DecodedEvent out;
  DecodeStatus decode(const std::string& json) { return decoder.decode(json, out); }
};

TEST_F(DecoderTest, DecodesNamedFeaturesIntoModelOrder) {
  auto st = decode(object_event());
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(out.transaction_id, "t-1");
  ASSERT_EQ(out.features.size(), 30u);
  for (size_t i = 0; i < 30; ++i) EXPECT_FLOAT_EQ(out.features[i], static_cast<float>(i) + 0.5f);
  EXPECT_FALSE(out.event_time_ms.has_value());
}

TEST_F(DecoderTest, DecodesAnArrayInModelOrderAndTheEventTime) {
  std::string e = array_event(30);
  e.insert(e.size() - 1, ",\"event_time_ms\":1700000000123,\"source\":{\"ignored\":[1,2]}");
  auto st = decode(e);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_FLOAT_EQ(out.features[29], 29.0f);
  EXPECT_EQ(out.event_time_ms.value(), 1700000000123);
}

TEST_F(DecoderTest, RejectsMalformedJson) {
  auto st = decode("{\"transaction_id\":\"t\",\"features\":[1,2");
  EXPECT_EQ(st.code, DecodeError::kMalformedJson);
  EXPECT_NE(st.message.find("malformed JSON"), std::string::npos);
  EXPECT_EQ(decode("not json").code, DecodeError::kMalformedJson);
  EXPECT_EQ(decode("").code, DecodeError::kMalformedJson);
}

TEST_F(DecoderTest, RejectsMalformedJsonInsideAnIgnoredField) {
  std::string e = array_event(30);
  e.insert(1, "\"note\":nul,");
  EXPECT_EQ(decode(e).code, DecodeError::kMalformedJson) << e;
  e = array_event(30);
  e.insert(e.size() - 1, ",\"meta\":{\"a\":[1,tru]}");
  EXPECT_EQ(decode(e).code, DecodeError::kMalformedJson) << e;
}

TEST_F(DecoderTest, RejectsANonObjectEvent) {
  EXPECT_EQ(decode("[1,2,3]").code, DecodeError::kWrongType);
}

TEST_F(DecoderTest, RejectsAMissingFeatureNamingIt) {
  auto st = decode(object_event("", "V3"));
  EXPECT_EQ(st.code, DecodeError::kMissingFeature);
  EXPECT_EQ(st.message, "features: missing feature 'V3'");
}

TEST_F(DecoderTest, ListsEveryMissingFeature) {
  auto st = decode("{\"transaction_id\":\"x\",\"features\":{\"Time\":1}}");
  EXPECT_EQ(st.code, DecodeError::kMissingFeature);
  EXPECT_NE(st.message.find("'V1', 'V2'"), std::string::npos);
  EXPECT_NE(st.message.find("'Amount'"), std::string::npos);
}

TEST_F(DecoderTest, RejectsAnUnknownFeatureNamingIt) {
  auto st = decode(object_event(",\"colour\":1"));
  EXPECT_EQ(st.code, DecodeError::kUnknownFeature);
  EXPECT_EQ(st.message, "features: unknown feature 'colour'");
}

TEST_F(DecoderTest, RejectsADuplicateFeatureNamingIt) {
  auto st = decode(object_event(",\"V7\":1"));
  EXPECT_EQ(st.code, DecodeError::kDuplicateFeature);
  EXPECT_EQ(st.message, "features: duplicate feature 'V7'");
}

TEST_F(DecoderTest, RejectsANonNumericFeatureNamingItAndTheType) {
  std::string e = object_event("", "Amount");
  e.insert(e.size() - 2, ",\"Amount\":\"12.5\"");
  auto st = decode(e);
  EXPECT_EQ(st.code, DecodeError::kWrongType);
  EXPECT_EQ(st.message, "features: feature 'Amount' must be a number, got string");
  e = object_event("", "V1");
  e.insert(e.size() - 2, ",\"V1\":null");
  EXPECT_EQ(decode(e).code, DecodeError::kWrongType);
}

TEST_F(DecoderTest, RejectsNaNAndInfinityLiterals) {
  for (const char* bad : {"NaN", "Infinity", "-Infinity"}) {
    std::string e = object_event("", "V2");
    e.insert(e.size() - 2, std::string(",\"V2\":") + bad);
    auto st = decode(e);
    EXPECT_EQ(st.code, DecodeError::kNonFinite) << bad << ": " << st.message;
    EXPECT_NE(st.message.find("'V2'"), std::string::npos) << st.message;
  }
}

TEST_F(DecoderTest, RejectsNumbersOutsideTheFloat32Range) {
  std::string e = object_event("", "V2");
  e.insert(e.size() - 2, ",\"V2\":1e39");
  EXPECT_EQ(decode(e).code, DecodeError::kNonFinite);
  e = object_event("", "V2");
  e.insert(e.size() - 2, ",\"V2\":1e400");
  EXPECT_EQ(decode(e).code, DecodeError::kNonFinite);
}

TEST_F(DecoderTest, RejectsAnArrayOfTheWrongLength) {
  auto st = decode(array_event(29));
  EXPECT_EQ(st.code, DecodeError::kWrongCount);
  EXPECT_EQ(st.message, "features must have 30 values in model order, got 29");
  EXPECT_EQ(decode(array_event(31)).code, DecodeError::kWrongCount);
}

TEST_F(DecoderTest, RejectsANonNumericArrayElementNamingItsIndex) {
  std::string e =
      "{\"transaction_id\":\"t\",\"features\":[0,1,2,\"x\"" + std::string(26 * 2, ' ') + "]}";
  auto st = decode(e);
  EXPECT_EQ(st.code, DecodeError::kWrongType);
  EXPECT_EQ(st.message, "features[3] must be a number, got string");
}

TEST_F(DecoderTest, RejectsAMissingOrBadTransactionId) {
  std::string no_id = array_event(30);
  no_id.replace(no_id.find("\"transaction_id\":\"t-2\","), 23, "");
  auto st = decode(no_id);
  EXPECT_EQ(st.code, DecodeError::kBadTransactionId) << no_id;
  EXPECT_EQ(st.message, "missing field 'transaction_id'");
  EXPECT_EQ(decode(object_event("", "", "42")).code, DecodeError::kBadTransactionId);
  EXPECT_EQ(decode(object_event("", "", "\"\"")).code, DecodeError::kBadTransactionId);
  EXPECT_EQ(decode(object_event("", "", "\"" + std::string(300, 'x') + "\"")).code,
            DecodeError::kBadTransactionId);
}

TEST_F(DecoderTest, RejectsMissingFeaturesField) {
  auto st = decode("{\"transaction_id\":\"t\"}");
  EXPECT_EQ(st.code, DecodeError::kMissingFeature);
  EXPECT_EQ(st.message, "missing field 'features'");
}

TEST_F(DecoderTest, RejectsAnOversizedEventWithoutParsingIt) {
  auto st = decode(std::string(5000, ' '));
  EXPECT_EQ(st.code, DecodeError::kTooLarge);
  EXPECT_EQ(st.message, "event is 5000 bytes, limit is 4096");
}

TEST_F(DecoderTest, RejectsABadEventTime) {
  std::string e = array_event(30);
  e.insert(e.size() - 1, ",\"event_time_ms\":\"yesterday\"");
  EXPECT_EQ(decode(e).code, DecodeError::kWrongType);
}

TEST_F(DecoderTest, DecoderIsReusableAfterAnError) {
  EXPECT_FALSE(decode("{oops").ok());
  EXPECT_TRUE(decode(object_event()).ok());
}

TEST(DecodeErrorNames, AreStableSnakeCase) {
  EXPECT_STREQ(to_string(DecodeError::kMalformedJson), "malformed_json");
  EXPECT_STREQ(to_string(DecodeError::kNonFinite), "non_finite");
}

}  // namespace
}  // namespace vigil::codec
