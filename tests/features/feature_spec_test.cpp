#include "features/feature_spec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vigil::features {
namespace {

TEST(FeatureSpecTest, TheDefaultsAreTheHandbookBaselineFeatures) {
  auto spec = parse_feature_spec("entity: customer_id\n", "features.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error();
  EXPECT_EQ(spec->output_names(),
            (std::vector<std::string>{"tx_amount", "tx_during_weekend", "tx_during_night",
                                      "customer_nb_tx_1d", "customer_avg_amount_1d",
                                      "customer_nb_tx_7d", "customer_avg_amount_7d",
                                      "customer_nb_tx_30d", "customer_avg_amount_30d"}));
  EXPECT_EQ(spec->longest_window_ms(), 30LL * 86'400'000);
}

TEST(FeatureSpecTest, EveryProblemIsListedNamingItsKey) {
  auto spec = parse_feature_spec(
      "entity: ''\nwindows_days: [7, 1, 0]\ncalendar: maybe\nallowed_lateness_ms: -5\n"
      "max_entities_per_partition: 0\ncolour: blue\n[1, 2]: 3\n",
      "models/fraud_velocity/features.yaml");
  ASSERT_FALSE(spec.ok());
  const std::string& e = spec.error();
  for (const char* key :
       {"'entity'", "'windows_days' must be increasing", "'windows_days' [2] = 0 is outside",
        "'calendar'", "'allowed_lateness_ms'", "'max_entities_per_partition'",
        "'colour' is not a known key"}) {
    EXPECT_NE(e.find(key), std::string::npos) << "no " << key << " in:\n" << e;
  }
  EXPECT_NE(e.find("models/fraud_velocity/features.yaml: "), std::string::npos);
}

TEST(FeatureSpecTest, AHistorySpanOverFortyNineDaysIsRefusedNamingTheKeyAndTheLimit) {
  EXPECT_TRUE(
      parse_feature_spec("windows_days: [1, 7, 45]\nallowed_lateness_ms: 345600000\n", "a").ok())
      << "45 days plus 4 days of lateness: 49 days";
  auto late = parse_feature_spec("windows_days: [1, 7, 45]\nallowed_lateness_ms: 345600001\n", "b");
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().find("'allowed_lateness_ms' plus the longest window must be at most 49 "
                              "days"),
            std::string::npos)
      << late.error();
  auto wide = parse_feature_spec("windows_days: [1, 90]\n", "c");
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.error().find("'windows_days' [1] = 90 is outside [1, 49]"), std::string::npos)
      << wide.error();
}

TEST(FeatureSpecTest, TheHashFollowsTheMeaningNotTheFormatting) {
  auto a = parse_feature_spec("entity: customer_id\nwindows_days: [1, 7, 30]\n", "a");
  auto b = parse_feature_spec("# same meaning\nwindows_days:\n  - 1\n  - 7\n  - 30\n", "b");
  auto c = parse_feature_spec("windows_days: [1, 7, 31]\n", "c");
  auto d = parse_feature_spec("max_entities_per_partition: 10\n", "d");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_EQ(a->hash(), b->hash());
  EXPECT_NE(a->hash(), c->hash());
  EXPECT_EQ(a->hash(), d->hash()) << "the cap bounds memory; it is not part of the meaning";
  EXPECT_EQ(a->hash().rfind("fnv1a64:", 0), 0u);
  EXPECT_EQ(a->hash().size(), 8u + 16u);
}

TEST(FeatureSpecTest, ALatenessBeyondAYearIsRefused) {
  auto spec = parse_feature_spec("allowed_lateness_ms: 9223372036854775807\n", "f");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.error().find("'allowed_lateness_ms' must be within"), std::string::npos)
      << spec.error();
}

TEST(FeatureSpecTest, TerminalFeaturesFollowTheCustomerOnesWindowByWindow) {
  auto spec = parse_feature_spec(
      "windows_days: [1]\nterminal:\n  field: terminal_id\n  delay_days: 7\n"
      "  windows_days: [1, 30]\n",
      "features.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error();
  ASSERT_TRUE(spec->terminal.has_value());
  EXPECT_EQ(spec->terminal->windows.delay_days, 7);
  EXPECT_EQ(
      spec->output_names(),
      (std::vector<std::string>{"tx_amount", "tx_during_weekend", "tx_during_night",
                                "customer_nb_tx_1d", "customer_avg_amount_1d", "terminal_nb_tx_1d",
                                "terminal_risk_1d", "terminal_nb_tx_30d", "terminal_risk_30d"}));
  EXPECT_EQ(spec->entity_feature_count(), 5u);
}

TEST(FeatureSpecTest, ASpecWithoutTerminalFeaturesKeepsItsHash) {
  // fraud_velocity's model.yaml records this hash: the terminal block must not change it.
  auto spec =
      load_feature_spec(std::string(VIGIL_SOURCE_DIR) + "/models/fraud_velocity/features.yaml");
  ASSERT_TRUE(spec.ok()) << spec.error();
  ASSERT_FALSE(spec->terminal.has_value());
  const std::string before = spec->hash();
  spec->terminal = FeatureSpec::Terminal{};
  EXPECT_NE(spec->hash(), before);
  spec->terminal.reset();
  EXPECT_EQ(spec->hash(), before);
  EXPECT_EQ(spec->canonical().find("terminal"), std::string::npos);
}

TEST(FeatureSpecTest, EveryTerminalProblemIsListedNamingItsKey) {
  auto spec = parse_feature_spec(
      "terminal:\n  field: ''\n  prefix: customer\n  delay_days: -1\n"
      "  windows_days: [30, 7]\n  colour: red\n",
      "features.yaml");
  ASSERT_FALSE(spec.ok());
  for (const char* key :
       {"'terminal.field'", "'terminal.prefix' must differ", "'terminal.delay_days' must be within",
        "'terminal.windows_days' must be increasing", "'terminal.colour' is not a known key"}) {
    EXPECT_NE(spec.error().find(key), std::string::npos) << key << " in:\n" << spec.error();
  }
  auto far = parse_feature_spec("terminal:\n  delay_days: 300\n  windows_days: [100]\n", "f");
  ASSERT_FALSE(far.ok());
  EXPECT_NE(far.error().find("plus delay_days must be at most 366"), std::string::npos)
      << far.error();
  auto scalar = parse_feature_spec("terminal: yes\n", "f");
  ASSERT_FALSE(scalar.ok());
  EXPECT_NE(scalar.error().find("'terminal' must be a mapping"), std::string::npos);
}

TEST(FeatureSpecTest, AMissingFileIsNotFound) {
  auto spec = load_feature_spec("/nonexistent/features.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace vigil::features
