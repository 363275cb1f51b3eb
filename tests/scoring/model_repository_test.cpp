// A model of raw transactions: its features.yaml is checked on load against what model.yaml
// records (the spec hash it was trained on, its inputs).
#include "scoring/model_repository.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "features/feature_spec.h"

namespace vigil::scoring {
namespace {

namespace fs = std::filesystem;

class ModelRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = fs::temp_directory_path() /
            ("vigil-repo-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(repo_);
    fs::create_directories(repo_ / "vel" / "1");
    std::ofstream(repo_ / "vel" / "1" / "model.pt") << "not read by load_model_info";
    std::ofstream(repo_ / "vel" / "features.yaml") << "windows_days: [1, 7]\n";
    spec_ = features::parse_feature_spec("windows_days: [1, 7]\n", "x").value();
  }
  void TearDown() override { fs::remove_all(repo_); }

  void write_model_yaml(const std::vector<std::string>& inputs, const std::string& hash) {
    std::ofstream y(repo_ / "vel" / "model.yaml");
    y << "name: vel\ninputs:\n";
    for (const auto& n : inputs) y << "- " << n << "\n";
    if (!hash.empty()) y << "feature_spec_hash: '" << hash << "'\n";
  }

  fs::path repo_;
  features::FeatureSpec spec_;
};

TEST_F(ModelRepositoryTest, AModelOfItsSpecsFeaturesUnderItsHashLoads) {
  write_model_yaml(spec_.output_names(), spec_.hash());
  auto info = load_model_info(repo_.string(), "vel");
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(info->feature_spec_hash, spec_.hash());
  EXPECT_EQ(info->feature_spec_path, (repo_ / "vel" / "features.yaml").string());
}

TEST_F(ModelRepositoryTest, AModelTrainedOnAnotherSpecIsRefusedNamingBothHashes) {
  write_model_yaml(spec_.output_names(), "fnv1a64:0000000000000000");
  auto info = load_model_info(repo_.string(), "vel");
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.error().find("trained on feature spec fnv1a64:0000000000000000"),
            std::string::npos)
      << info.error();
  EXPECT_NE(info.error().find(spec_.hash()), std::string::npos) << info.error();
}

TEST_F(ModelRepositoryTest, AModelWithoutTheSpecHashOrWithOtherInputsIsRefused) {
  std::vector<std::string> wrong = spec_.output_names();
  std::swap(wrong[1], wrong[2]);
  write_model_yaml(wrong, "");
  auto info = load_model_info(repo_.string(), "vel");
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.error().find("has no feature_spec_hash"), std::string::npos) << info.error();
  EXPECT_NE(info.error().find("'inputs' must be the features of"), std::string::npos)
      << info.error();
}

TEST_F(ModelRepositoryTest, ASpecHashWithoutAFeaturesFileIsRefused) {
  write_model_yaml(spec_.output_names(), spec_.hash());
  fs::remove(repo_ / "vel" / "features.yaml");
  auto info = load_model_info(repo_.string(), "vel");
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.error().find("but there is no"), std::string::npos) << info.error();
}

TEST_F(ModelRepositoryTest, AModelOfTerminalFeaturesLoadsWithItsSpec) {
  const std::string text = "windows_days: [1, 7]\nterminal:\n  windows_days: [1]\n";
  std::ofstream(repo_ / "vel" / "features.yaml") << text;
  const auto spec = features::parse_feature_spec(text, "x").value();
  write_model_yaml(spec.output_names(), spec.hash());
  auto info = load_model_info(repo_.string(), "vel");
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(info->feature_spec_hash, spec.hash());
  EXPECT_EQ(info->input_names.back(), "terminal_risk_1d");
}

}  // namespace
}  // namespace vigil::scoring
