// A child process for process-level tests: spawn a program with arguments, signal it (SIGTERM,
// SIGKILL), wait for it with a deadline, talk to it line by line over stdin/stdout pipes, and
// read the port file it writes.
//
// The child's stderr (and its stdout unless piped) goes to a log file, so that a failing test
// can show what the process said (log_tail). The child gets PR_SET_PDEATHSIG=SIGKILL, so a
// crashed test leaves nothing running; Linux ties that to the thread that forks, so spawn
// from a thread that outlives the child (the test's own thread). Not thread-safe: one owner
// drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace vigil::testing {

struct ProcessOptions {
  std::string log_path;          // stderr (and stdout unless piped) appended here; empty: inherited
  bool pipe_stdin = false;       // write_line() feeds the child's stdin
  bool pipe_stdout = false;      // read_line() reads the child's stdout
  std::vector<std::string> env;  // extra NAME=value entries for the child's environment
};

// How a process ended.
struct ExitStatus {
  bool exited = false;  // exited by itself: `code` holds the exit status
  int code = -1;
  int signal = 0;  // killed by this signal (when !exited)
  bool ok() const { return exited && code == 0; }
  std::string to_string() const;  // "exit 0", "signal 9 (Killed)"
};

class Process {
 public:
  // Starts `binary` (a path, or a name looked up in PATH) with `args` (argv[1..]). Fails when
  // the program cannot be executed.
  static Result<std::unique_ptr<Process>> Spawn(const std::string& binary,
                                                const std::vector<std::string>& args,
                                                ProcessOptions options = {});
  ~Process();  // SIGKILL and reap if it still runs
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return options_.log_path; }

  // Whether it still runs (reaps it without blocking when it has exited).
  bool running();
  Status signal(int sig);
  Status sigterm();
  // SIGKILL and reap: a crash, no chance to clean up. Returns how it ended.
  ExitStatus kill();
  // Waits up to `deadline` for the process to end; nullopt when it still runs then.
  std::optional<ExitStatus> wait(std::chrono::milliseconds deadline);
  // How it ended, once it has (after running() == false or wait()).
  const std::optional<ExitStatus>& exit_status() const { return exit_; }

  // Writes `line` + '\n' to the child's stdin (pipe_stdin).
  Status write_line(const std::string& line);
  // Closes the child's stdin (it reads end of file).
  void close_stdin();
  // Reads one line (without '\n') from the child's stdout (pipe_stdout), waiting up to
  // `deadline`; an error on timeout or end of file.
  Result<std::string> read_line(std::chrono::milliseconds deadline);

  // The last `max_bytes` of the log file.
  std::string log_tail(size_t max_bytes = 4000) const;

 private:
  explicit Process(ProcessOptions options) : options_(std::move(options)) {}
  void reap(bool block);

  const ProcessOptions options_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string stdout_buffer_;
  std::optional<ExitStatus> exit_;
};

// Waits until `path` holds a whole number (a port file written by a starting server) and
// returns it. Stops early, with an error, when `process` (if given) exits meanwhile.
Result<int> read_port_file(const std::string& path, std::chrono::milliseconds deadline,
                           Process* process = nullptr);

// A fresh directory under $TMPDIR (or /tmp) named <prefix>XXXXXX.
Result<std::string> make_temp_dir(const std::string& prefix);

}  // namespace vigil::testing
