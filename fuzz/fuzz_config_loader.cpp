// libFuzzer target: config::load_config over all three sources at once.
//
// Input layout: the bytes up to the first NUL are the YAML file (written to a temp file and
// passed as --config); each further NUL-separated item (at most kMaxItems) is either an
// environment variable ("VIGIL_X=y") or a command-line argument ("--key=value", "--key value";
// "key=value" gets the "--" prepended). Items that would name another config file are dropped:
// the file under test is the one the fuzzer wrote.
//
// What must hold, besides "no crash, no uncaught exception, no sanitizer report":
//   - refused => a non-empty message;
//   - loaded  => AppConfig::validate() finds nothing (unless --help/--version), and describe()
//                redacts the secrets (http.auth_token; a password in redis.url).
// Any violation aborts, so libFuzzer keeps the input.
//
// Inputs naming a device or kernel file (/dev/, /proc/, /sys/) are skipped: config files and
// http.auth_token_file are the operator's, and reading /dev/zero or /dev/stdin would only
// measure the fuzzer's patience.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/app_config.h"

namespace {

constexpr size_t kMaxItems = 8;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_config_loader: %s\n", what.c_str());
  std::abort();
}

// The YAML file every input is written to: one per process, removed at exit. On tmpfs when
// there is one: rewriting a file on a disk-backed /tmp costs milliseconds (the truncation),
// which would cap the fuzzer at a few hundred inputs a second.
const std::string& yaml_path() {
  static const std::string path = [] {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string dir = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
    if (access("/dev/shm", W_OK) == 0) dir = "/dev/shm";
    std::string templ = dir + "/vigil-fuzz-config-XXXXXX";
    const int fd = mkstemp(templ.data());
    if (fd < 0) fail("cannot create a temp file in " + dir);
    close(fd);
    static std::string to_remove;
    to_remove = templ;
    std::atexit([] { unlink(to_remove.c_str()); });
    return templ;
  }();
  return path;
}

void write_file(const std::string& path, std::string_view text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) fail("cannot write " + path);
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), f) != text.size()) {
    fail("cannot write " + path);
  }
  std::fclose(f);
}

bool names_another_config(std::string_view arg) {
  return arg == "--config" || arg == "-c" || arg.rfind("--config=", 0) == 0;
}

void check_loaded(const vigil::config::AppConfig& c, const vigil::config::CommandLine& cmd) {
  const auto problems = c.validate();
  // --help and --version skip validation on purpose: they print and exit.
  if (!problems.empty() && !cmd.help && !cmd.version) {
    fail("loaded a configuration that validate() refuses: " + problems[0]);
  }
  for (const auto& line : vigil::config::describe(c)) {
    if (line.rfind("http.auth_token = ", 0) == 0 && !c.http.auth_token.empty() &&
        line != "http.auth_token = <redacted>") {
      fail("describe() shows the auth token: " + line);
    }
    if (line.rfind("redis.url = ", 0) == 0 && c.redis.url.find('@') != std::string::npos &&
        line.rfind("redis.url = redis://<redacted>@", 0) != 0) {
      fail("describe() shows the redis password: " + line);
    }
  }
}

// Not checked: that the message has one line per error. Errors quote the offending key or
// value, which may itself hold a newline.
void check_refused(const std::string& message) {
  if (message.empty()) fail("refused without a message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const char* dir : {"/dev/", "/proc/", "/sys/"}) {
    if (input.find(dir) != std::string_view::npos) return -1;  // not added to the corpus
  }

  const size_t nul = input.find('\0');
  write_file(yaml_path(), input.substr(0, nul));

  std::vector<std::string> args{"--config", yaml_path()};
  std::map<std::string, std::string> env;
  std::string_view rest =
      nul == std::string_view::npos ? std::string_view{} : input.substr(nul + 1);
  for (size_t n = 0; n < kMaxItems && !rest.empty(); ++n) {
    const size_t end = rest.find('\0');
    const std::string_view item = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    const size_t eq = item.find('=');
    if (item.rfind("VIGIL_", 0) == 0 && eq != std::string_view::npos) {
      env[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
    } else if (!names_another_config(item)) {
      args.push_back(item.rfind("-", 0) == 0 ? std::string(item) : "--" + std::string(item));
    }
  }

  vigil::config::CommandLine cmd;
  const auto result = vigil::config::load_config(args, env, cmd);
  if (result.ok()) {
    check_loaded(*result, cmd);
  } else {
    check_refused(result.error());
  }
  return 0;
}
