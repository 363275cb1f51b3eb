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
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "fault_commands.h"
#include "kafka/embedded_cluster.h"

namespace {

constexpr const char* kUsage =
    "usage: vigil-fault-harness [--brokers N] [--topic NAME:PARTITIONS]... "
    "[--bootstrap-file PATH]\n"
    "  --brokers N              mock brokers (default 3)\n"
    "  --topic NAME:PARTITIONS  topic to create; repeatable (default: transactions, scores and\n"
    "                           transactions.dlq with 6 partitions each)\n"
    "  --bootstrap-file PATH    also write the bootstrap address to PATH\n"
    "Prints 'bootstrap <address>', then answers each stdin line with 'ok' or 'error <why>':\n"
    "  down <broker>|all, up <broker>|all, errors <ApiKey> <count> <error>, clear <ApiKey>,\n"
    "  rtt <broker>|all <ms>, help, quit\n";

struct Options {
  int brokers = 3;
  std::vector<vigil::kafka::TopicSpec> topics;
  std::string bootstrap_file;
};

// Accepts "--name value" and "--name=value". Returns false (with a message) on bad flags.
bool parse_options(int argc, char** argv, Options& o, std::string& error) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_value = false;
    if (auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
      has_value = true;
    }
    if (flag == "--help" || flag == "-h") {
      error.clear();
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        error = flag + " needs a value";
        return false;
      }
      value = argv[++i];
    }
    if (flag == "--brokers") {
      try {
        size_t used = 0;
        o.brokers = std::stoi(value, &used);
        if (used != value.size() || o.brokers < 1 || o.brokers > 32) throw std::exception();
      } catch (...) {
        error = "--brokers must be 1..32, got '" + value + "'";
        return false;
      }
    } else if (flag == "--topic") {
      const auto colon = value.rfind(':');
      vigil::kafka::TopicSpec t;
      t.name = value.substr(0, colon);
      try {
        size_t used = 0;
        const std::string n = colon == std::string::npos ? "" : value.substr(colon + 1);
        t.partitions = std::stoi(n, &used);
        if (used != n.size() || t.partitions < 1 || t.name.empty()) throw std::exception();
      } catch (...) {
        error = "--topic must be NAME:PARTITIONS (partitions >= 1), got '" + value + "'";
        return false;
      }
      o.topics.push_back(t);
    } else if (flag == "--bootstrap-file") {
      o.bootstrap_file = value;
    } else {
      error = "unknown flag '" + flag + "'";
      return false;
    }
  }
  if (o.topics.empty()) o.topics = {{"transactions", 6}, {"scores", 6}, {"transactions.dlq", 6}};
  return true;
}

bool write_file_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!(f << content)) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  std::string error;
  if (!parse_options(argc, argv, options, error)) {
    std::fprintf(error.empty() ? stdout : stderr, "%s%s%s", error.c_str(),
                 error.empty() ? "" : "\n", kUsage);
    return error.empty() ? 0 : 2;
  }
  auto cluster = vigil::kafka::EmbeddedCluster::start(options.brokers, options.topics);
  if (!cluster) {
    std::fprintf(stderr, "vigil-fault-harness: %s\n", cluster.error().c_str());
    return 1;
  }
  const std::string bootstrap = (*cluster)->bootstrap();
  if (!options.bootstrap_file.empty() &&
      !write_file_atomically(options.bootstrap_file, bootstrap + "\n")) {
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
