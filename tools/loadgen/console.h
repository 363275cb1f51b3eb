// stderr, shared by the live progress line and diagnostics (ours and librdkafka's).
#pragma once

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <string>

namespace vigil::loadgen {

// On a terminal the progress line is rewritten in place with '\r'; a diagnostic first clears
// it so that the two never share a line. Elsewhere (a pipe, a CI log) every progress update is
// a plain line. Thread-safe: librdkafka's callbacks print from the threads that poll.
class Console {
 public:
  static void progress(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu());
    if (is_tty()) {
      // Cut to the terminal's width: a wrapped line could not be rewritten in place.
      winsize ws{};
      const size_t width = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1
                               ? ws.ws_col - 1
                               : line.size();
      std::fprintf(stderr, "\r%s\033[K", line.substr(0, width).c_str());
      progress_shown() = true;
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

  static void message(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu());
    end_progress_locked();
    std::fprintf(stderr, "vigil-loadgen: %s\n", line.c_str());
    std::fflush(stderr);
  }

  // Moves past the progress line (before the summary is printed).
  static void end_progress() {
    std::lock_guard<std::mutex> lock(mu());
    end_progress_locked();
  }

 private:
  static void end_progress_locked() {
    if (progress_shown()) std::fputc('\n', stderr);
    progress_shown() = false;
  }
  static bool is_tty() {
    static const bool tty = ::isatty(STDERR_FILENO) == 1;
    return tty;
  }
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static bool& progress_shown() {
    static bool shown = false;
    return shown;
  }
};

}  // namespace vigil::loadgen
