#include "config/app_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace vigil::config {
namespace {

Result<AppConfig> load(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  CommandLine cmd;
  return load_config(args, env, cmd);
}

std::string write_yaml(const std::string& text) {
  auto p = std::filesystem::temp_directory_path() /
           ("vigil-config-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::hash<std::string>{}(text)) + ".yaml");
  std::ofstream(p) << text;
  return p.string();
}

TEST(Config, DefaultsMatchTheDocumentedContract) {
  auto c = load({});
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->model.repository, "models");
  EXPECT_EQ(c->model.name, "fraud_mlp");
  EXPECT_EQ(c->model.device, "auto");
  EXPECT_EQ(c->kafka.brokers, "embedded");
  EXPECT_EQ(c->kafka.group_id, "vigil");
  EXPECT_EQ(c->kafka.input_topic, "transactions");
  EXPECT_EQ(c->kafka.output_topic, "scores");
  EXPECT_EQ(c->kafka.dlq_topic, "transactions.dlq");
  EXPECT_EQ(c->redis.url, "redis://127.0.0.1:6379");
  EXPECT_EQ(c->redis.ttl_s, 86400);
  EXPECT_EQ(c->http.port, 8080);
  EXPECT_EQ(c->shutdown_grace.count(), 10000);
}

TEST(Config, FlagsOverrideEnvironmentWhichOverridesTheFile) {
  auto file = write_yaml(
      "kafka:\n  brokers: from-file:9092\n  group_id: file-group\n"
      "scoring:\n  max_batch_size: 64\n");
  auto c = load({"--config", file, "--kafka.brokers=from-flag:9092"},
                {{"VIGIL_KAFKA_BROKERS", "from-env:9092"}, {"VIGIL_KAFKA_GROUP_ID", "env-group"}});
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->kafka.brokers, "from-flag:9092");
  EXPECT_EQ(c->kafka.group_id, "env-group");
  EXPECT_EQ(c->scoring.max_batch_size, 64u);
}

TEST(Config, UnitsAreInTheKeyNames) {
  auto c = load({"--scoring.max_delay_us=750", "--shutdown_grace_ms=2500"});
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->scoring.max_delay.count(), 750);
  EXPECT_EQ(c->shutdown_grace.count(), 2500);
}

TEST(Config, PassesLibrdkafkaPropertiesThrough) {
  auto file = write_yaml("kafka:\n  consumer:\n    fetch.wait.max.ms: 50\n");
  auto c = load({"--config", file, "--kafka.producer.linger.ms=2"});
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->kafka.consumer.at("fetch.wait.max.ms"), "50");
  EXPECT_EQ(c->kafka.producer.at("linger.ms"), "2");
}

TEST(Config, LibrdkafkaPropertiesComeFromTheEnvironmentWithUnderscoresForDots) {
  auto file = write_yaml("kafka:\n  consumer:\n    session.timeout.ms: 45000\n");
  auto c = load({"--config", file, "--kafka.producer.acks=1"},
                {{"VIGIL_KAFKA_CONSUMER_SESSION_TIMEOUT_MS", "6000"},
                 {"VIGIL_KAFKA_CONSUMER_GROUP_INSTANCE_ID", "vigil-7f9c-0"},
                 {"VIGIL_KAFKA_PRODUCER_SASL_PASSWORD", "pw"},
                 {"VIGIL_KAFKA_PRODUCER_ACKS", "all"},
                 {"VIGIL_KAFKA_CONSUMER_SOME__UNDERSCORED_NAME", "x"},
                 {"VIGIL_KAFKA_CONSUMERS_NOT_A_PASSTHROUGH", "y"}});
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->kafka.consumer.at("session.timeout.ms"), "6000");  // environment over the file
  EXPECT_EQ(c->kafka.consumer.at("group.instance.id"), "vigil-7f9c-0");
  EXPECT_EQ(c->kafka.consumer.at("some_underscored.name"), "x");
  EXPECT_EQ(c->kafka.producer.at("sasl.password"), "pw");
  EXPECT_EQ(c->kafka.producer.at("acks"), "1");                      // flags over the environment
  EXPECT_EQ(c->kafka.consumer.at("heartbeat.interval.ms"), "1500");  // the shipped default
  EXPECT_EQ(c->kafka.consumer.size(), 4u);

  auto managed = load({}, {{"VIGIL_KAFKA_CONSUMER_GROUP_ID", "x"}});
  ASSERT_FALSE(managed.ok());
  EXPECT_NE(managed.error().find("kafka.consumer.group.id is managed by vigil"), std::string::npos)
      << managed.error();
}

TEST(Config, ListsEveryErrorAtOnce) {
  auto file = write_yaml("scoring:\n  max_batch_size: 0\n  bogus: 1\nredis:\n  url: http://x\n");
  auto c = load({"--config", file, "--http.port=70000", "--model.device=tpu",
                 "--scoring.workers=abc", "--kafka.consumer.group.id=x"},
                {{"VIGIL_REDIS_TTL_S", "-5"}});
  ASSERT_FALSE(c.ok());
  const std::string& e = c.error();
  for (const char* expected :
       {"unknown key 'scoring.bogus'", "scoring.max_batch_size must be within",
        "redis.url must start with redis://", "http.port must be within",
        "model.device must be cpu, cuda, cuda:N or auto", "'abc' is not a valid number",
        "redis.ttl_s must be >= 1", "kafka.consumer.group.id is managed by vigil"}) {
    EXPECT_NE(e.find(expected), std::string::npos) << "missing: " << expected << "\nin:\n" << e;
  }
}

TEST(Config, ModelsServedBesideTheDefaultAreAListOfNamesOrAStar) {
  auto c = load({"--model.also_serve= fraud_velocity ,fraud_mlp,, fraud_terminal"});
  ASSERT_TRUE(c.ok()) << c.error();
  // Blanks and the default model itself are left out.
  EXPECT_EQ(c->model.also_served(), (std::vector<std::string>{"fraud_velocity", "fraud_terminal"}));
  EXPECT_EQ(load({"--model.also_serve=*"})->model.also_served(), std::vector<std::string>{"*"});
  auto bad = load({"--model.also_serve=a,*,../x,a"});
  ASSERT_FALSE(bad.ok());
  for (const char* expected :
       {"model.also_serve: * stands alone", "model.also_serve: '../x' is not a model name",
        "model.also_serve: 'a' is listed twice"}) {
    EXPECT_NE(bad.error().find(expected), std::string::npos) << expected << "\n" << bad.error();
  }
}

TEST(Config, ModelsBesideTheDefaultHaveTheirOwnPinsAndShadows) {
  auto c = load({"--model.also_serve=fraud_velocity,fraud_terminal",
                 "--model.also_versions=fraud_velocity=1",
                 "--model.also_shadow_versions= "
                 "fraud_velocity = 2, fraud_terminal=3",
                 "--model.version=4"});
  ASSERT_TRUE(c.ok()) << c.error();
  const auto velocity = c->model.for_model("fraud_velocity");
  EXPECT_EQ(velocity.name, "fraud_velocity");
  EXPECT_EQ(velocity.version, "1");
  EXPECT_EQ(velocity.shadow_version, "2");
  const auto terminal = c->model.for_model("fraud_terminal");
  EXPECT_EQ(terminal.version, "") << "follows its highest, not model.version";
  EXPECT_EQ(terminal.shadow_version, "3");
  EXPECT_EQ(c->model.for_model("fraud_mlp").version, "4");
  auto bad = load({"--model.also_serve=a", "--model.also_versions=a=1,b=2,c",
                   "--model.also_shadow_versions=a=1,fraud_mlp=3"});
  ASSERT_FALSE(bad.ok());
  for (const char* expected : {"model.also_versions: 'b' is not in model.also_serve",
                               "model.also_versions: 'c' is not name=version",
                               "model.also_shadow_versions: a's shadow must differ",
                               "model.also_shadow_versions: 'fraud_mlp' is model.name"}) {
    EXPECT_NE(bad.error().find(expected), std::string::npos) << expected << "\n" << bad.error();
  }
}

TEST(Config, RoutesMapMoreTopicsToModelsServedEachWithItsOutputAndGroup) {
  auto c = load({"--model.also_serve=fraud_velocity",
                 "--kafka.routes= transactions.raw=fraud_velocity:scores.velocity ,"
                 "transactions.eu=fraud_mlp"});
  ASSERT_TRUE(c.ok()) << c.error();
  const auto routes = c->kafka.all_routes();
  ASSERT_EQ(routes.size(), 3u);
  // kafka.input_topic first, scored by model.name, consumed as the group itself.
  EXPECT_EQ(routes[0].input_topic, "transactions");
  EXPECT_EQ(routes[0].model, "");
  EXPECT_EQ(routes[0].output_topic, "scores");
  EXPECT_EQ(routes[0].group_id, "vigil");
  EXPECT_EQ(routes[1].input_topic, "transactions.raw");
  EXPECT_EQ(routes[1].model, "fraud_velocity");
  EXPECT_EQ(routes[1].output_topic, "scores.velocity");
  EXPECT_EQ(routes[1].group_id, "vigil.transactions.raw");
  EXPECT_EQ(routes[2].model, "fraud_mlp");
  EXPECT_EQ(routes[2].output_topic, "scores") << "kafka.output_topic by default";
  // With every model of the repository served, which ones exist is known only at start.
  EXPECT_TRUE(load({"--model.also_serve=*", "--kafka.routes=t2=anything"}).ok());
  // Without Kafka the routes are not read.
  EXPECT_TRUE(load({"--kafka.enabled=false", "--kafka.routes=t2=unknown"}).ok());

  auto bad =
      load({"--kafka.routes=t2=unknown,transactions=fraud_mlp,scores.x=fraud_mlp:t2,"
            "nomodel,bad topic=fraud_mlp,t3=fraud_mlp:,t4=fraud_mlp:transactions,"
            "t5=fraud_mlp:fraud.reports,reports=fraud_mlp:s2"});
  ASSERT_FALSE(bad.ok());
  for (const char* expected :
       {"kafka.routes: 't2' is scored by 'unknown', which is not served",
        "kafka.routes: 'transactions' is consumed twice",
        "kafka.routes: 't2' is a topic vigil writes",
        "kafka.routes: 'nomodel' is not topic=model[:output_topic]",
        "kafka.routes: 'bad topic=fraud_mlp' does not start with a topic name",
        "kafka.routes: 't3=fraud_mlp:' has no valid output topic",
        "kafka.routes: kafka.input_topic 'transactions' is a route's output",
        "kafka.routes: 't5''s output 'fraud.reports' is the dead-letter, shadow or reports topic",
        "kafka.routes: 'reports' would be consumed as group <group_id>.reports"}) {
    EXPECT_NE(bad.error().find(expected), std::string::npos) << expected << "\n" << bad.error();
  }
}

TEST(Config, RefusesACooperativeAssignorTheRebalanceCallbackCannotHandle) {
  auto c = load({"--kafka.consumer.partition.assignment.strategy=cooperative-sticky"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("partition.assignment.strategy 'cooperative-sticky' is not supported"),
            std::string::npos)
      << c.error();
  EXPECT_TRUE(load({"--kafka.consumer.partition.assignment.strategy=roundrobin"}).ok());
}

TEST(Config, UnreadableFileIsAnError) {
  auto c = load({"--config", "/nonexistent/vigil.yaml"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("cannot read config file"), std::string::npos);
}

TEST(Config, ShippedConfigFileIsValid) {
  auto c = load({"--config", std::string(VIGIL_SOURCE_DIR) + "/config/vigil.yaml"});
  ASSERT_TRUE(c.ok()) << c.error();
}

TEST(Config, EffectiveConfigRedactsSecrets) {
  auto c = load({"--http.auth_token=s3cret", "--redis.url=redis://:pw@localhost:6379",
                 "--kafka.consumer.ssl.key.pem=PRIVATEKEY", "--kafka.producer.sasl.password=pw2"},
                {{"VIGIL_KAFKA_CONSUMER_SASL_PASSWORD", "envpw"}});
  ASSERT_TRUE(c.ok()) << c.error();
  std::string all;
  for (const auto& line : describe(*c)) all += line + "\n";
  EXPECT_EQ(all.find("s3cret"), std::string::npos);
  EXPECT_EQ(all.find(":pw@"), std::string::npos);
  EXPECT_EQ(all.find("PRIVATEKEY"), std::string::npos);
  EXPECT_EQ(all.find("pw2"), std::string::npos);
  EXPECT_EQ(all.find("envpw"), std::string::npos);
  EXPECT_NE(all.find("kafka.consumer.sasl.password = <redacted>"), std::string::npos) << all;
  EXPECT_NE(all.find("http.auth_token = <redacted>"), std::string::npos);
}

TEST(Config, EveryKeyIsDocumentedWithAUnitMatchingItsName) {
  for (const auto& d : option_docs()) {
    EXPECT_FALSE(d.description.empty()) << d.key;
    for (const char* unit : {"ms", "us", "s"}) {  // a duration's unit is the key's suffix
      const std::string suffix = std::string("_") + unit;
      const bool named = d.key.size() > suffix.size() &&
                         d.key.compare(d.key.size() - suffix.size(), suffix.size(), suffix) == 0;
      EXPECT_EQ(named, d.unit == unit) << d.key << " has unit '" << d.unit << "'";
    }
  }
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// config/vigil.yaml, the README's table and --help are generated from the fields' declarations:
// a key added, renamed or re-described in a struct without regenerating them fails here.
TEST(Config, ShippedConfigFileIsGeneratedFromTheStructs) {
  const std::string shipped = read_text(std::string(VIGIL_SOURCE_DIR) + "/config/vigil.yaml");
  EXPECT_EQ(shipped, default_config_yaml())
      << "config/vigil.yaml drifted from the config structs; regenerate it with\n"
         "  build/release/vigil --print-default-config > config/vigil.yaml";
  // And it loads to exactly the defaults.
  auto loaded = load({"--config", std::string(VIGIL_SOURCE_DIR) + "/config/vigil.yaml"});
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  const AppConfig defaults;
  EXPECT_EQ(describe(*loaded), describe(defaults));
}

TEST(Config, ReadmeTableIsGeneratedFromTheStructs) {
  const std::string readme = read_text(std::string(VIGIL_SOURCE_DIR) + "/README.md");
  const std::string begin = "<!-- config-table:begin -->\n", end = "<!-- config-table:end -->";
  const auto b = readme.find(begin), e = readme.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  EXPECT_EQ(readme.substr(b + begin.size(), e - b - begin.size()), config_table_markdown())
      << "README.md's table drifted from the config structs; regenerate it with\n"
         "  build/release/vigil --print-config-table";
}

}  // namespace
}  // namespace vigil::config
