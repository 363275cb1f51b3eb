// The model lifecycle on a real repository folder with the real TorchScript loader: versions
// copied in while the manager watches, broken ones, and the repository API.
#include "scoring/model_manager.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "scoring/torch_model.h"
#include "support/wait.h"

namespace vigil::scoring {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
const std::string kSource = VIGIL_SOURCE_DIR;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class ModelManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = fs::temp_directory_path() /
            ("vigil-models-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(repo_);
    fs::create_directories(repo_ / "fraud_mlp" / "1");
    fs::copy_file(kSource + "/models/fraud_mlp/model.yaml", repo_ / "fraud_mlp" / "model.yaml");
    fs::copy_file(kSource + "/models/fraud_mlp/1/model.pt", repo_ / "fraud_mlp" / "1" / "model.pt");
    v2_bytes_ = read_file(kSource + "/tests/data/fraud_mlp_v2/model.pt");
    ASSERT_GT(v2_bytes_.size(), 1000u);
  }
  void TearDown() override {
    if (manager_) manager_->stop();
    fs::remove_all(repo_);
  }

  // A manager watching the temporary repository every 50 ms, swapping into a real batcher.
  void start(ModelConfig c = {}) {
    c.repository = repo_.string();
    c.name = "fraud_mlp";
    c.device = "cpu";
    if (c.reload_interval == ModelConfig{}.reload_interval) c.reload_interval = milliseconds(50);
    if (c.stable == ModelConfig{}.stable) c.stable = milliseconds(400);
    manager_ = std::make_unique<ModelManager>(
        c, 32,
        [](const ModelInfo& info) {
          return load_torch_model(info, {"cpu", 1, 8});
        },
        registry_);
    Status st = manager_->load_initial();
    ASSERT_TRUE(st.ok()) << st.message();
    batcher_ = std::make_unique<Batcher>(BatcherConfig{}, queue_, manager_->served(),
                                         SteadyClock::instance(), registry_);
    batcher_->set_shadow(manager_->shadow());
    manager_->start(batcher_.get());
  }

  void write_version(int v, const std::string& bytes) {
    const fs::path dir = repo_ / "fraud_mlp" / std::to_string(v);
    fs::create_directories(dir);
    std::ofstream(dir / "model.pt", std::ios::binary) << bytes;
  }

  std::string served() { return batcher_->model_info()->version; }
  double metric(const std::string& name, const metrics::Labels& labels = {}) {
    return registry_.counter(name, "", labels).value();
  }
  std::string reason_of(const std::string& version) {
    for (const auto& s : manager_->index()) {
      if (s.version == version) return s.state + ": " + s.reason;
    }
    return "absent";
  }

  // An API call's answer: its code and its message (what was done, or why not).
  struct Answer {
    StatusCode code;
    std::string message;
  };
  Answer call(bool load, const std::string& version, bool shadow = false) {
    std::promise<Answer> p;
    auto done = [&p](const ModelManager::Reply& r) {
      p.set_value(r.ok() ? Answer{StatusCode::kOk, *r} : Answer{r.status().code(), r.error()});
    };
    if (load) {
      manager_->load(version, shadow, done);
    } else {
      manager_->unload(version, done);
    }
    return p.get_future().get();
  }

  fs::path repo_;
  std::string v2_bytes_;
  metrics::Registry registry_;
  ScoringQueue queue_{QueueConfig{}, SteadyClock::instance(), registry_};
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<Batcher> batcher_;
};

TEST_F(ModelManagerTest, AHalfCopiedVersionIsNotLoadedAndIsServedOnceItsFileStopsChanging) {
  start();
  ASSERT_EQ(served(), "1");
  // Copy version 2 in slowly: a chunk every 100 ms, for longer than the 400 ms stability wait.
  const fs::path dir = repo_ / "fraud_mlp" / "2";
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "model.pt", std::ios::binary);
    const size_t chunk = v2_bytes_.size() / 12 + 1;
    for (size_t at = 0; at < v2_bytes_.size(); at += chunk) {
      out.write(v2_bytes_.data() + at, std::min(chunk, v2_bytes_.size() - at));
      out.flush();
      std::this_thread::sleep_for(milliseconds(100));
      EXPECT_EQ(served(), "1") << "served a half-copied version";
      EXPECT_EQ(metric("vigil_model_loads_total", {{"result", "refused"}, {"model", "fraud_mlp"}}),
                0.0)
          << "tried to load a half-copied version";
    }
  }
  EXPECT_NE(reason_of("2").find("being copied"), std::string::npos) << reason_of("2");
  ASSERT_TRUE(testing::wait_until([&] { return served() == "2"; }, milliseconds(10000)))
      << reason_of("2");
  EXPECT_EQ(reason_of("2"), "READY: serving");
  EXPECT_EQ(metric("vigil_model_loads_total", {{"result", "refused"}, {"model", "fraud_mlp"}}),
            0.0);
  EXPECT_EQ(registry_.gauge("vigil_model_version", "", {{"model", "fraud_mlp"}}).value(), 2.0);
}

TEST_F(ModelManagerTest, ABrokenVersionIsRefusedWithItsReasonAndTheServedOneStays) {
  start();
  write_version(3, "this is not TorchScript");
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return metric("vigil_model_loads_total", {{"result", "refused"}, {"model", "fraud_mlp"}}) ==
               1.0;
      },
      milliseconds(10000)));
  EXPECT_EQ(served(), "1");
  const std::string why = reason_of("3");
  EXPECT_NE(why.find("UNAVAILABLE: refused: "), std::string::npos) << why;
  EXPECT_NE(why.find("cannot load TorchScript model"), std::string::npos) << why;
  // Not tried again while the file stays the same.
  std::this_thread::sleep_for(milliseconds(700));
  EXPECT_EQ(metric("vigil_model_loads_total", {{"result", "refused"}, {"model", "fraud_mlp"}}),
            1.0);
  // The API refuses it too, with the reason, and version 1 stays served.
  auto r = call(true, "3");
  EXPECT_EQ(r.code, StatusCode::kInvalidArgument);
  EXPECT_NE(r.message.find("cannot load TorchScript model"), std::string::npos) << r.message;
  EXPECT_EQ(served(), "1");
  // A fixed file is picked up.
  write_version(3, v2_bytes_);
  ASSERT_TRUE(testing::wait_until([&] { return served() == "3"; }, milliseconds(10000)))
      << reason_of("3");
}

TEST_F(ModelManagerTest, TheRepositoryApiRollsBackUnloadsAndShadows) {
  write_version(2, v2_bytes_);
  start();
  ASSERT_EQ(served(), "2");  // the highest at start-up

  auto r = call(true, "1");  // roll back
  EXPECT_EQ(r.code, StatusCode::kOk) << r.message;
  EXPECT_EQ(served(), "1");
  std::this_thread::sleep_for(milliseconds(800));  // the watcher does not undo a rollback
  EXPECT_EQ(served(), "1");
  EXPECT_EQ(reason_of("2"), "UNAVAILABLE: unloaded by request");

  r = call(false, "");  // the only servable version left
  EXPECT_EQ(r.code, StatusCode::kFailedPrecondition) << r.message;
  EXPECT_EQ(served(), "1");

  r = call(true, "2", /*shadow=*/false);
  EXPECT_EQ(r.code, StatusCode::kOk) << r.message;
  EXPECT_EQ(served(), "2");

  r = call(true, "1", /*shadow=*/true);
  EXPECT_EQ(r.code, StatusCode::kOk) << r.message;
  ASSERT_NE(batcher_->shadow_info(), nullptr);
  EXPECT_EQ(batcher_->shadow_info()->version, "1");
  EXPECT_EQ(reason_of("1"), "READY: shadow");
  r = call(true, "2", /*shadow=*/true);
  EXPECT_EQ(r.code, StatusCode::kFailedPrecondition) << "the served version as its own shadow";

  r = call(false, "1");
  EXPECT_EQ(r.code, StatusCode::kOk) << r.message;
  EXPECT_EQ(batcher_->shadow_info(), nullptr);
  EXPECT_EQ(served(), "2");

  EXPECT_EQ(call(true, "7").code, StatusCode::kNotFound);
  EXPECT_EQ(call(false, "9").code, StatusCode::kNotFound);
  EXPECT_EQ(call(true, "x").code, StatusCode::kNotFound);
}

TEST_F(ModelManagerTest, APinnedVersionIsNeverLeftByItself) {
  ModelConfig c;
  c.version = "1";
  start(c);
  write_version(2, v2_bytes_);
  std::this_thread::sleep_for(milliseconds(1000));
  EXPECT_EQ(served(), "1");
  EXPECT_NE(reason_of("2").find("not loaded"), std::string::npos) << reason_of("2");
}

TEST_F(ModelManagerTest, StartUpSkipsABrokenNewestVersionAndServesTheNextOne) {
  write_version(5, "garbage");
  start();
  EXPECT_EQ(served(), "1");
  EXPECT_NE(reason_of("5").find("refused"), std::string::npos) << reason_of("5");
}

}  // namespace
}  // namespace vigil::scoring
