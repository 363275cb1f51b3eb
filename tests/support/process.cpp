#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace vigil::testing {

namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

ExitStatus decode(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) {
    s.exited = true;
    s.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.signal = WTERMSIG(status);
  }
  return s;
}

}  // namespace

std::string ExitStatus::to_string() const {
  if (exited) return "exit " + std::to_string(code);
  return "signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
}

Result<std::unique_ptr<Process>> Process::Spawn(const std::string& binary,
                                                const std::vector<std::string>& args,
                                                ProcessOptions options) {
  using R = Result<std::unique_ptr<Process>>;
  std::unique_ptr<Process> p(new Process(std::move(options)));
  const ProcessOptions& o = p->options_;

  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is built before fork: the child may only make async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), o.env.begin(), o.env.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int log_fd = -1;
  if (!o.log_path.empty()) {
    log_fd = ::open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return R::Error("open " + o.log_path + ": " + std::strerror(errno));
  }
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, exec_pipe[2] = {-1, -1};
  auto close_all = [&] {
    for (int* fd : {&log_fd, &in_pipe[0], &in_pipe[1], &out_pipe[0], &out_pipe[1], &exec_pipe[0],
                    &exec_pipe[1]}) {
      close_fd(*fd);
    }
  };
  if ((o.pipe_stdin && ::pipe2(in_pipe, O_CLOEXEC) != 0) ||
      (o.pipe_stdout && ::pipe2(out_pipe, O_CLOEXEC) != 0) || ::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    const std::string e = std::strerror(errno);
    close_all();
    return R::Error("pipe: " + e);
  }

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const std::string e = std::strerror(errno);
    close_all();
    return R::Error("fork: " + e);
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);  // the test died before prctl
    if (in_pipe[0] >= 0) ::dup2(in_pipe[0], STDIN_FILENO);
    if (out_pipe[1] >= 0) {
      ::dup2(out_pipe[1], STDOUT_FILENO);
    } else if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
    }
    if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
    // Signals blocked in the test (gtest blocks none, but a harness may) must not stay
    // blocked in the child: vigil takes SIGTERM with sigtimedwait and would still work, but
    // other programs would not.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Descriptors the test opened without O_CLOEXEC (hiredis and librdkafka sockets) must not
    // live on in the child: a copy of a client socket there keeps that connection half open.
    // All but the exec pipe, which reports a failed exec.
    const unsigned keep = static_cast<unsigned>(exec_pipe[1]);
    if ((keep > 3 && ::close_range(3, keep - 1, 0) != 0) || ::close_range(keep + 1, ~0U, 0) != 0) {
      for (int fd = 3; fd < 4096; ++fd) {
        if (fd != exec_pipe[1]) ::close(fd);
      }
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    const int err = errno;
    (void)!::write(exec_pipe[1], &err, sizeof err);
    ::_exit(127);
  }
  close_fd(log_fd);
  close_fd(in_pipe[0]);
  close_fd(out_pipe[1]);
  close_fd(exec_pipe[1]);
  p->pid_ = pid;
  p->stdin_fd_ = in_pipe[1];
  p->stdout_fd_ = out_pipe[0];
  // The exec pipe closes on a successful exec (O_CLOEXEC) or carries the exec errno.
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  close_fd(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    p->reap(true);
    return R::Error("cannot execute " + binary + ": " + std::strerror(exec_errno));
  }
  return R(std::move(p));
}

Process::~Process() {
  close_fd(stdin_fd_);
  close_fd(stdout_fd_);
  if (pid_ > 0) kill();
}

void Process::reap(bool block) {
  if (pid_ <= 0) return;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_ = decode(status);
    pid_ = -1;
  } else if (r < 0 && errno == ECHILD) {
    exit_ = ExitStatus{};
    pid_ = -1;
  }
}

bool Process::running() {
  reap(false);
  return pid_ > 0;
}

Status Process::signal(int sig) {
  if (!running()) return Status::Error("process already ended: " + exit_->to_string());
  if (::kill(pid_, sig) != 0) return Status::Error(std::string("kill: ") + std::strerror(errno));
  return Status::Ok();
}

Status Process::sigterm() {
  return signal(SIGTERM);
}

ExitStatus Process::kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
  return exit_.value_or(ExitStatus{});
}

std::optional<ExitStatus> Process::wait(milliseconds deadline) {
  const auto until = steady::now() + deadline;
  milliseconds poll{1};
  while (running()) {
    const auto now = steady::now();
    if (now >= until) return std::nullopt;
    std::this_thread::sleep_for(std::min<steady::duration>(poll, until - now));
    poll = std::min(poll * 2, milliseconds(20));
  }
  return exit_;
}

Status Process::write_line(const std::string& line) {
  if (stdin_fd_ < 0) return Status::Error("stdin is not piped (or was closed)");
  const std::string data = line + "\n";
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(stdin_fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Error(std::string("write to stdin: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void Process::close_stdin() {
  close_fd(stdin_fd_);
}

Result<std::string> Process::read_line(milliseconds deadline) {
  if (stdout_fd_ < 0) return Result<std::string>::Error("stdout is not piped");
  const auto until = steady::now() + deadline;
  for (;;) {
    if (auto nl = stdout_buffer_.find('\n'); nl != std::string::npos) {
      std::string line = stdout_buffer_.substr(0, nl);
      stdout_buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<milliseconds>(until - steady::now());
    if (left.count() <= 0) return Result<std::string>::Error("no line within the deadline");
    pollfd pfd{stdout_fd_, POLLIN, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Result<std::string>::Error(std::string("poll: ") + std::strerror(errno));
    if (r == 0) continue;
    char buf[4096];
    const ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Result<std::string>::Error("end of the child's stdout");
    stdout_buffer_.append(buf, static_cast<size_t>(n));
  }
}

std::string Process::log_tail(size_t max_bytes) const {
  if (options_.log_path.empty()) return "";
  std::ifstream in(options_.log_path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

Result<int> read_port_file(const std::string& path, milliseconds deadline, Process* process) {
  const auto until = steady::now() + deadline;
  milliseconds poll{2};
  for (;;) {
    {
      std::ifstream in(path);
      long port = 0;
      std::string rest;
      if (in >> port && port > 0 && port < 65536) return static_cast<int>(port);
    }
    if (process && !process->running()) {
      return Result<int>::Error("process ended (" + process->exit_status()->to_string() +
                                ") before writing " + path);
    }
    if (steady::now() >= until) {
      return Result<int>::Error("no port in " + path + " within " +
                                std::to_string(deadline.count()) + " ms");
    }
    std::this_thread::sleep_for(poll);
    poll = std::min(poll * 2, milliseconds(50));
  }
}

Result<std::string> make_temp_dir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Result<std::string>::Error("mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  return tmpl;
}

}  // namespace vigil::testing
