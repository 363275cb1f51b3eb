// vigil: wires the components together. Nothing else lives here.
#include <cstdio>
#include <string>
#include <vector>

#include "app/allocator.h"
#include "app/demo.h"
#include "app/logging.h"
#include "app/service.h"
#include "config/app_config.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "dev"
#endif

namespace {

void print_help() {
  std::printf(
      "vigil %s: real-time transaction scoring (Kafka in, Kafka + Redis out, HTTP side-port)\n\n"
      "usage: vigil [--config FILE] [--key=value ...] [--print-config] [--help] [--version]\n"
      "             [--print-default-config] [--print-config-table]\n\n"
      "Every key can be set in the YAML file, as an environment variable (VIGIL_ + the key in\n"
      "upper case with dots as underscores, e.g. VIGIL_KAFKA_BROKERS), or as a flag; flags win\n"
      "over the environment, which wins over the file.\n\nkeys:\n",
      VIGIL_VERSION);
  for (const auto& d : vigil::config::option_docs()) {
    std::string extra;
    if (!d.default_value.empty()) extra += "default: " + d.default_value;
    if (!d.unit.empty()) extra += (extra.empty() ? "" : ", ") + std::string("unit: ") + d.unit;
    std::printf("  %-32s %s%s\n", d.key.c_str(), d.description.c_str(),
                extra.empty() ? "" : (" [" + extra + "]").c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  // First, before any thread or large allocation.
  const std::string allocator = vigil::app::tune_allocator();
  std::vector<std::string> args(argv + 1, argv + argc);
  vigil::config::CommandLine cmd;
  auto cfg = vigil::config::load_config(args, vigil::config::process_environment(), cmd);
  if (cmd.help) {
    print_help();
    return 0;
  }
  if (cmd.print_default_config) {
    std::fputs(vigil::config::default_config_yaml().c_str(), stdout);
    return 0;
  }
  if (cmd.print_config_table) {
    std::fputs(vigil::config::config_table_markdown().c_str(), stdout);
    return 0;
  }
  if (cmd.version) {
    std::printf("vigil %s\n", VIGIL_VERSION);
    return 0;
  }
  if (!cfg) {
    std::fprintf(stderr, "vigil: refusing to start, the configuration has errors:\n");
    std::string e = cfg.error();
    size_t pos = 0;
    while (pos <= e.size()) {
      size_t nl = e.find('\n', pos);
      if (nl == std::string::npos) nl = e.size();
      std::fprintf(stderr, "  - %s\n", e.substr(pos, nl - pos).c_str());
      pos = nl + 1;
    }
    return 2;
  }
  vigil::init_logging(cfg->log_level);
  if (cmd.print_config) {
    for (const auto& line : vigil::config::describe(*cfg)) std::printf("%s\n", line.c_str());
    return 0;
  }
  auto log = vigil::logger("vigil");
  log->info("vigil {} starting, mode={}", VIGIL_VERSION, cfg->mode);
  log->info("{}", allocator);
  for (const auto& line : vigil::config::describe(*cfg)) log->debug("config: {}", line);
  if (cfg->mode == "demo") return vigil::app::run_demo(*cfg);
  return vigil::app::run_service(*cfg);
}
