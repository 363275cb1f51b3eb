// vigil-fault-harness: an embedded Kafka (librdkafka mock cluster) that takes fault commands
// on stdin, so that vigil can run against it as a separate process — and be killed for real —
// while a test or a person breaks the brokers under it.
//
//   vigil-fault-harness [--brokers N] [--topic NAME:PARTITIONS]... [--bootstrap-file PATH]
//
// Prints "bootstrap <host:port,...>" on stdout once the cluster and its topics exist (and
// writes the address to --bootstrap-file), then reads one command per line from stdin and
// answers each with one line, "ok" or "error <why>" (see fault_commands.h). "quit", or the
// end of stdin, destroys the cluster and exits 0. Logs go to stderr.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/files.h"
#include "fault_commands.h"
#include "kafka/embedded_cluster.h"

namespace {

constexpr const char* kFooter =
    "Prints 'bootstrap <address>', then answers each stdin line with 'ok' or 'error <why>':\n"
    "  down <broker>|all, up <broker>|all, errors <ApiKey> <count> <error>, clear <ApiKey>,\n"
    "  rtt <broker>|all <ms>, help, quit";

struct Options {
  int brokers = 3;
  std::vector<vigil::kafka::TopicSpec> topics;
  std::string bootstrap_file;
};

// "NAME:PARTITIONS" with partitions >= 1; nothing when the text is not that.
std::optional<vigil::kafka::TopicSpec> parse_topic(const std::string& value) {
  const auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  const std::string n = value.substr(colon + 1);
  char* end = nullptr;
  const long partitions = std::strtol(n.c_str(), &end, 10);
  if (n.empty() || *end != '\0' || partitions < 1 || partitions > std::numeric_limits<int>::max()) {
    return std::nullopt;
  }
  return vigil::kafka::TopicSpec{value.substr(0, colon), static_cast<int>(partitions)};
}

// Declares the flags on `app`, bound to `o` and to `topics` (the --topic texts, checked here
// and turned into o.topics after parsing).
void add_flags(CLI::App& app, Options& o, std::vector<std::string>& topics) {
  app.footer(kFooter);
  app.add_option("--brokers", o.brokers, "mock brokers, 1..32")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(1, 32).description(""));
  app.add_option("--topic", topics,
                 "topic to create; repeatable [default: transactions, scores\n"
                 "and transactions.dlq with 6 partitions each]")
      ->type_name("NAME:PARTITIONS")
      ->allow_extra_args(false)  // one topic per --topic
      ->check(CLI::Validator(
          [](std::string& v) {
            if (parse_topic(v)) return std::string();
            return "'" + v + "' is not NAME:PARTITIONS (partitions >= 1)";
          },
          ""));
  app.add_option("--bootstrap-file", o.bootstrap_file, "also write the bootstrap address to PATH")
      ->type_name("PATH");
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  std::vector<std::string> topics;
  CLI::App app(
      "vigil-fault-harness: an embedded Kafka (librdkafka mock cluster) that takes fault\n"
      "commands on stdin.\n",
      "vigil-fault-harness");
  add_flags(app, options, topics);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints the help on stdout and exits 0; any other problem is named on stderr.
    return app.exit(e) == 0 ? 0 : 2;
  }
  for (const auto& t : topics) options.topics.push_back(*parse_topic(t));
  if (options.topics.empty()) {
    options.topics = {{"transactions", 6}, {"scores", 6}, {"transactions.dlq", 6}};
  }
  auto cluster = vigil::kafka::EmbeddedCluster::start(options.brokers, options.topics);
  if (!cluster) {
    std::fprintf(stderr, "vigil-fault-harness: %s\n", cluster.error().c_str());
    return 1;
  }
  const std::string bootstrap = (*cluster)->bootstrap();
  if (!options.bootstrap_file.empty() &&
      !vigil::write_file_atomically(options.bootstrap_file, bootstrap + "\n").ok()) {
    std::fprintf(stderr, "vigil-fault-harness: cannot write '%s'\n",
                 options.bootstrap_file.c_str());
    return 1;
  }
  for (const auto& t : options.topics) {
    std::fprintf(stderr, "vigil-fault-harness: topic %s (%d partitions)\n", t.name.c_str(),
                 t.partitions);
  }
  std::cout << "bootstrap " << bootstrap << std::endl;  // endl: the reader waits for it

  vigil::tools::FaultCommands commands((*cluster)->mock(), options.brokers);
  for (std::string line; std::getline(std::cin, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (line == "quit" || line == "quit\r") {
      std::cout << "ok" << std::endl;
      break;
    }
    const std::string answer = commands.execute(line);
    std::fprintf(stderr, "vigil-fault-harness: %s -> %s\n", line.c_str(), answer.c_str());
    std::cout << answer << std::endl;
  }
  return 0;
}
