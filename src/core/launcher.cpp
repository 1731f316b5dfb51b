#include "mvadapter/core/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>

#include <fmt/format.h>

#include "mvadapter/core/error.h"

extern char** environ;

namespace mva {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kSelf = "mvadapter: ";
// Exits are noticed by asking waitid between polls: a rank's pipes can stay open after it dies
// (a descendant holding them), so EOF alone is no signal. A tenth of a second is quick for a
// person and costs nothing.
constexpr int kPollMs = 100;
// Once every rank is reaped, output still buffered in the pipes is read for at most this long;
// only a descendant that left the rank's process group can keep a pipe open past it.
constexpr std::chrono::milliseconds kDrainAfterExit{2000};
// A "line" longer than this without a terminator is relayed in pieces, so a rank writing
// binary junk cannot grow the launcher's memory without bound.
constexpr size_t kMaxLine = size_t{1} << 20;

// The signal handler's only link to the call in progress: the write end of its self-pipe.
volatile sig_atomic_t g_wake_fd = -1;
std::atomic<bool> g_launching{false};

extern "C" void on_launcher_signal(int sig) {
  const int saved = errno;
  const auto byte = static_cast<unsigned char>(sig);
  if (g_wake_fd >= 0) {
    [[maybe_unused]] ssize_t n = ::write(g_wake_fd, &byte, 1);  // a full pipe has woken us already
  }
  errno = saved;
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read, write;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error(fmt::format("launcher: cannot create a pipe: {}", std::strerror(errno)));
  }
  return {Fd(fds[0]), Fd(fds[1])};
}

// Owns SIGINT and SIGTERM for the duration of one launch: each arrival becomes a byte on a
// self-pipe that the poll loop watches. A signal the caller ignores (SIG_IGN, e.g. a job started
// with nohup or `&` from a script) stays ignored, as it would for a single process.
class SignalCapture {
 public:
  SignalCapture() {
    if (g_launching.exchange(true)) {
      throw Error("launch_local_ranks: another launch is running in this process");
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      g_launching = false;
      throw Error(fmt::format("launcher: cannot create a pipe: {}", std::strerror(errno)));
    }
    read_ = Fd(fds[0]);
    write_ = Fd(fds[1]);
    g_wake_fd = write_.get();
    for (size_t i = 0; i < std::size(kSignals); ++i) {
      struct sigaction current {};
      ::sigaction(kSignals[i], nullptr, &current);
      if (current.sa_handler == SIG_IGN) continue;
      struct sigaction sa {};
      sa.sa_handler = on_launcher_signal;
      sa.sa_flags = SA_RESTART;
      sigemptyset(&sa.sa_mask);
      ::sigaction(kSignals[i], &sa, &old_[i]);
      installed_[i] = true;
    }
    // With SIGCHLD ignored the kernel reaps the ranks itself and their exit statuses are lost.
    struct sigaction chld {};
    ::sigaction(SIGCHLD, nullptr, &chld);
    if (chld.sa_handler == SIG_IGN) {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      ::sigaction(SIGCHLD, &dfl, &old_chld_);
      chld_reset_ = true;
    }
  }
  ~SignalCapture() {
    for (size_t i = 0; i < std::size(kSignals); ++i) {
      if (installed_[i]) ::sigaction(kSignals[i], &old_[i], nullptr);
    }
    if (chld_reset_) ::sigaction(SIGCHLD, &old_chld_, nullptr);
    g_wake_fd = -1;
    g_launching = false;
  }
  SignalCapture(const SignalCapture&) = delete;
  SignalCapture& operator=(const SignalCapture&) = delete;

  int fd() const { return read_.get(); }

  // In a freshly forked child, before exec: our handler must not run there (it would wake the
  // parent's loop), so the caught signals go back to their default action. Async-signal-safe.
  void reset_in_child() const {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (size_t i = 0; i < std::size(kSignals); ++i) {
      if (installed_[i]) ::sigaction(kSignals[i], &dfl, nullptr);
    }
  }

 private:
  static constexpr int kSignals[] = {SIGINT, SIGTERM};
  Fd read_, write_;
  struct sigaction old_[2] {};
  bool installed_[2] = {false, false};
  struct sigaction old_chld_ {};
  bool chld_reset_ = false;
};

struct Stream {
  Fd fd;
  std::string pending;
};

struct Rank {
  pid_t pid = -1;
  bool running = false;  // started and not yet reaped
  Stream out, err;
};

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report it
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// Hands every complete line of `pending` to `emit` with its terminator and keeps the rest.
// '\r' ends a line too (a progress redraw), "\r\n" is one terminator; at EOF a last partial line
// gets a '\n' so the next prefix starts a line of its own.
template <typename Emit>
void split_lines(std::string& pending, bool eof, Emit&& emit) {
  size_t start = 0;
  for (size_t i = 0; i < pending.size(); ++i) {
    const char c = pending[i];
    if (c == '\n') {
      emit(std::string_view(pending).substr(start, i + 1 - start));
      start = i + 1;
    } else if (c == '\r') {
      if (i + 1 < pending.size()) {
        if (pending[i + 1] == '\n') ++i;
      } else if (!eof) {
        break;  // a '\n' may come with the next read
      }
      emit(std::string_view(pending).substr(start, i + 1 - start));
      start = i + 1;
    }
  }
  pending.erase(0, start);
  if (!pending.empty() && (eof || pending.size() > kMaxLine)) {
    pending += '\n';
    emit(pending);
    pending.clear();
  }
}

std::string describe_exit(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    return "was killed by " + signal_name(WTERMSIG(wait_status));
  }
  return fmt::format("exited with status {}", WEXITSTATUS(wait_status));
}

int shell_status(int wait_status) {
  return WIFSIGNALED(wait_status) ? 128 + WTERMSIG(wait_status) : WEXITSTATUS(wait_status);
}

void set_variable(std::vector<std::pair<std::string, std::string>>& vars, const std::string& key,
                  const std::string& value) {
  auto it = std::find_if(vars.begin(), vars.end(), [&](const auto& kv) { return kv.first == key; });
  if (it != vars.end()) {
    it->second = value;
  } else {
    vars.emplace_back(key, value);
  }
}

std::string variable(const char* key) {
  const char* v = std::getenv(key);
  return v == nullptr ? std::string() : std::string(v);
}

// One launch: the ranks, their pipes and the loop that relays output and watches exits.
class Launch {
 public:
  Launch(const LaunchOptions& opts, const SignalCapture& signals)
      : opts_(opts), signals_(signals) {
    ranks_.resize(static_cast<size_t>(opts.nproc));
    out_ = opts.out ? opts.out : [](std::string_view s) { write_all(STDOUT_FILENO, s); };
    err_ = opts.err ? opts.err : [](std::string_view s) { write_all(STDERR_FILENO, s); };
  }

  // Whatever path leaves the call (an exception included), no rank outlives it.
  ~Launch() {
    for (auto& r : ranks_) {
      if (!r.running) continue;
      ::kill(-r.pid, SIGKILL);
      int st = 0;
      while (::waitpid(r.pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  Launch(const Launch&) = delete;
  Launch& operator=(const Launch&) = delete;

  void start_all() {
    std::vector<std::pair<std::string, std::string>> vars;
    set_variable(vars, "MASTER_ADDR", "127.0.0.1");
    std::string port = variable("MASTER_PORT");
    if (port.empty()) port = std::to_string(free_loopback_port());
    set_variable(vars, "MASTER_PORT", port);
    set_variable(vars, "WORLD_SIZE", std::to_string(opts_.nproc));
    set_variable(vars, "LOCAL_WORLD_SIZE", std::to_string(opts_.nproc));
    const bool threads_given =
        !variable("MVA_THREADS").empty() ||
        std::any_of(opts_.env.begin(), opts_.env.end(),
                    [](const auto& kv) { return kv.first == "MVA_THREADS"; });
    if (opts_.threads_per_rank > 0 && !threads_given) {
      set_variable(vars, "MVA_THREADS", std::to_string(opts_.threads_per_rank));
    }
    for (const auto& [k, v] : opts_.env) set_variable(vars, k, v);
    // Buffered text of the caller would otherwise come out after the ranks' first lines.
    std::fflush(nullptr);
    for (int i = 0; i < opts_.nproc; ++i) {
      auto rank_vars = vars;
      set_variable(rank_vars, "RANK", std::to_string(i));
      set_variable(rank_vars, "LOCAL_RANK", std::to_string(i));
      start(static_cast<size_t>(i), rank_vars);
    }
  }

  int run() {
    while (true) {
      std::vector<pollfd> fds{{signals_.fd(), POLLIN, 0}};
      std::vector<std::pair<size_t, bool>> owner{{0, false}};  // rank, is stderr
      for (size_t i = 0; i < ranks_.size(); ++i) {
        for (bool is_err : {false, true}) {
          if (int fd = stream(i, is_err).fd.get(); fd >= 0) {
            fds.push_back({fd, POLLIN, 0});
            owner.emplace_back(i, is_err);
          }
        }
      }
      const bool any_running =
          std::any_of(ranks_.begin(), ranks_.end(), [](const Rank& r) { return r.running; });
      if (!any_running) {
        const auto now = Clock::now();
        if (fds.size() == 1) break;
        if (!drain_until_) drain_until_ = now + kDrainAfterExit;
        if (now >= *drain_until_) break;
      }
      int timeout = kPollMs;
      if (kill_at_) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(*kill_at_ - Clock::now());
        timeout = static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, kPollMs));
      }
      if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
        throw Error(fmt::format("launcher: poll failed: {}", std::strerror(errno)));
      }
      if (fds[0].revents != 0) take_signals();
      for (size_t j = 1; j < fds.size(); ++j) {
        if (fds[j].revents != 0) read_stream(owner[j].first, owner[j].second);
      }
      reap();
      if (kill_at_ && Clock::now() >= *kill_at_) {
        kill_at_.reset();
        for (size_t i = 0; i < ranks_.size(); ++i) {
          if (!ranks_[i].running) continue;
          say(fmt::format("rank {} (pid {}) still running {:g} s after SIGTERM; sending SIGKILL", i,
                          ranks_[i].pid, static_cast<double>(opts_.grace.count()) / 1000.0));
          ::kill(-ranks_[i].pid, SIGKILL);
        }
      }
    }
    for (size_t i = 0; i < ranks_.size(); ++i) {
      for (bool is_err : {false, true}) finish_stream(i, is_err);
    }
    return status_;
  }

 private:
  Stream& stream(size_t rank, bool is_err) {
    return is_err ? ranks_[rank].err : ranks_[rank].out;
  }

  void say(const std::string& line) { err_(fmt::format("{}{}\n", kSelf, line)); }

  void start(size_t index, const std::vector<std::pair<std::string, std::string>>& vars) {
    // Everything the child needs is built here: between fork and exec only async-signal-safe
    // calls are allowed (the caller may have threads, e.g. LibTorch's pools).
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view kv(*e);
      const auto key = kv.substr(0, kv.find('='));
      const bool replaced =
          std::any_of(vars.begin(), vars.end(), [&](const auto& v) { return v.first == key; });
      if (!replaced) env_strings.emplace_back(kv);
    }
    for (const auto& [k, v] : vars) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp, argv;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = opts_.args;
    if (args.empty()) args.push_back(opts_.program);
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    const char* program = opts_.program.c_str();

    Pipe out = make_pipe(), err = make_pipe(), exec_status = make_pipe();
    const pid_t parent = ::getpid();
    sigset_t all, old;
    sigfillset(&all);
    // Blocked across fork so no signal runs our handler in the child before it resets it.
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    const pid_t pid = ::fork();
    if (pid == 0) {
      signals_.reset_in_child();
      sigset_t none;
      sigemptyset(&none);
      ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
      // Its own process group: a Ctrl-C at the terminal reaches the launcher only, which passes
      // it on exactly once (a trainer takes a second SIGINT as "die now"); and stopping a rank
      // stops whatever it started too.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(126);  // the launcher died before prctl took hold
      const int null_fd = ::open("/dev/null", O_RDONLY);
      if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
      ::dup2(out.write.get(), STDOUT_FILENO);
      ::dup2(err.write.get(), STDERR_FILENO);
      ::execve(program, argv.data(), envp.data());
      const int e = errno;
      [[maybe_unused]] ssize_t n = ::write(exec_status.write.get(), &e, sizeof e);
      ::_exit(127);
    }
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) {
      throw Error(fmt::format("launcher: cannot start rank {}: fork failed: {}", index,
                              std::strerror(fork_errno)));
    }
    // The parent sets the group too, so signals to -pid reach the rank even if they are sent
    // before the child got to run.
    ::setpgid(pid, pid);
    Rank& r = ranks_[index];
    r.pid = pid;
    r.running = true;
    out.write.reset();
    err.write.reset();
    exec_status.write.reset();
    // EOF without data: exec succeeded (the CLOEXEC pipe closed); an errno: it failed.
    int exec_errno = 0;
    ssize_t got = 0;
    do {
      got = ::read(exec_status.read.get(), &exec_errno, sizeof exec_errno);
    } while (got < 0 && errno == EINTR);
    if (got == static_cast<ssize_t>(sizeof exec_errno)) {
      int st = 0;
      while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      r.running = false;
      throw Error(fmt::format("launcher: cannot run {}: {}", opts_.program,
                              std::strerror(exec_errno)));
    }
    ::fcntl(out.read.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(err.read.get(), F_SETFL, O_NONBLOCK);
    r.out.fd = std::move(out.read);
    r.err.fd = std::move(err.read);
  }

  void take_signals() {
    unsigned char buf[32];
    ssize_t n = 0;
    while ((n = ::read(signals_.fd(), buf, sizeof buf)) > 0) {
      for (ssize_t k = 0; k < n; ++k) {
        const int sig = buf[k];
        if (interrupts_++ == 0) {
          say(fmt::format("got {}; passing it on to every rank (a second one kills them)",
                          signal_name(sig)));
          signal_running(sig);
        } else {
          say(fmt::format("got {} again; killing every rank", signal_name(sig)));
          signal_running(SIGKILL);
        }
      }
    }
  }

  void signal_running(int sig) {
    for (const auto& r : ranks_) {
      if (r.running) ::kill(-r.pid, sig);
    }
  }

  // Reads what is there now (the fd is non-blocking); at EOF relays the rest and closes.
  void read_stream(size_t rank, bool is_err) {
    Stream& s = stream(rank, is_err);
    if (s.fd.get() < 0) return;
    char buf[65536];
    while (true) {
      const ssize_t n = ::read(s.fd.get(), buf, sizeof buf);
      if (n > 0) {
        s.pending.append(buf, static_cast<size_t>(n));
        relay(rank, is_err, false);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      finish_stream(rank, is_err);
      return;
    }
  }

  void relay(size_t rank, bool is_err, bool eof) {
    const OutputSink& sink = is_err ? err_ : out_;
    const std::string prefix = fmt::format("[rank {}] ", rank);
    split_lines(stream(rank, is_err).pending, eof,
                [&](std::string_view line) { sink(prefix + std::string(line)); });
  }

  void finish_stream(size_t rank, bool is_err) {
    relay(rank, is_err, true);
    stream(rank, is_err).fd.reset();
  }

  void reap() {
    for (size_t i = 0; i < ranks_.size(); ++i) {
      Rank& r = ranks_[i];
      if (!r.running) continue;
      siginfo_t info{};
      // WNOWAIT keeps the zombie, so its pid (the group id) cannot be reused while the group is
      // cleared of anything the rank left behind, which would hold its pipes open.
      if (::waitid(P_PID, static_cast<id_t>(r.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno == EINTR) continue;
        r.running = false;  // not ours to signal any more
        throw Error(fmt::format(
            "launcher: rank {} (pid {}) was reaped elsewhere ({}); its exit status is unknown", i,
            r.pid, std::strerror(errno)));
      }
      if (info.si_pid != r.pid) continue;
      ::kill(-r.pid, SIGKILL);
      int st = 0;
      while (::waitpid(r.pid, &st, 0) < 0 && errno == EINTR) {
      }
      r.running = false;
      // Its last words (often the reason it failed) come before the launcher's line about it.
      read_stream(i, false);
      read_stream(i, true);
      const int status = shell_status(st);
      if (status == 0 || failed_) continue;
      failed_ = true;
      status_ = status;
      const bool others = std::any_of(ranks_.begin(), ranks_.end(),
                                      [](const Rank& o) { return o.running; });
      // After an interrupt the ranks are stopping on their own; SIGTERM would cut short the
      // state they are saving.
      const bool stop_others = others && interrupts_ == 0;
      say(fmt::format("rank {} (pid {}) {}{}", i, r.pid, describe_exit(st),
                      stop_others ? "; stopping the other ranks" : ""));
      if (stop_others) {
        signal_running(SIGTERM);
        kill_at_ = Clock::now() + opts_.grace;
      }
    }
  }

  const LaunchOptions& opts_;
  const SignalCapture& signals_;
  OutputSink out_, err_;
  std::vector<Rank> ranks_;
  int interrupts_ = 0;
  bool failed_ = false;
  int status_ = 0;
  std::optional<Clock::time_point> kill_at_;
  std::optional<Clock::time_point> drain_until_;
};

}  // namespace

int launch_local_ranks(const LaunchOptions& opts) {
  if (opts.nproc < 1) {
    throw Error(fmt::format("launcher: nproc = {}: expected at least 1", opts.nproc));
  }
  if (opts.program.empty()) throw Error("launcher: no program to run");
  SignalCapture signals;
  Launch launch(opts, signals);
  launch.start_all();
  return launch.run();
}

int free_loopback_port() {
  Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) {
    throw Error(fmt::format("launcher: cannot open a socket: {}", std::strerror(errno)));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw Error(fmt::format("launcher: cannot find a free port on 127.0.0.1: {}",
                            std::strerror(errno)));
  }
  return ntohs(addr.sin_port);
}

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig); abbrev != nullptr) {
    return std::string("SIG") + abbrev;
  }
  return fmt::format("signal {}", sig);
}

std::vector<std::string> without_option(const std::vector<std::string>& args,
                                        std::string_view name) {
  std::vector<std::string> kept;
  const std::string with_value = std::string(name) + "=";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {  // the rest is positional, whatever it looks like
      kept.insert(kept.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    if (args[i] == name) {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind(with_value, 0) == 0) continue;
    kept.push_back(args[i]);
  }
  return kept;
}

std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (!in) throw Error("/proc/self/cmdline: cannot read this process's arguments");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  while (start < all.size()) {
    const size_t end = all.find('\0', start);
    if (end == std::string::npos) {
      args.push_back(all.substr(start));
      break;
    }
    args.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

}  // namespace mva
