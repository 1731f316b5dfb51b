#include "mvadapter/io/fault_inject.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "mvadapter/core/error.h"

namespace mva::detail {
namespace {

namespace fs = std::filesystem;

enum class Action { kKillDuringWrite, kEnospc, kReadonly, kNonfiniteLoss };

struct Entry {
  Action action;
  int64_t n = 1;
  std::string file;               // empty: any file
  int64_t seen = 0;               // matching writes opened so far
  std::optional<fs::path> armed;  // the write this entry acts on, once it has been opened
};

struct Injection {
  std::mutex mutex;
  bool loaded = false;
  std::vector<Entry> entries;
  std::function<void(WriteStage, const fs::path&)> observer;
};

Injection& injection() {
  static Injection state;
  return state;
}

std::vector<Entry> parse(std::string_view spec) {
  const auto bad = [&](const std::string& why) {
    return Error(fmt::format(
        "MVA_FAULT_INJECT={}: {} (expected ACTION[:N][@FILE], ACTION one of kill_during_write, "
        "enospc, readonly, nonfinite_loss)",
        spec, why));
  };
  std::vector<Entry> out;
  size_t begin = 0;
  while (begin < spec.size()) {
    size_t end = spec.find(',', begin);
    if (end == std::string_view::npos) end = spec.size();
    std::string item(spec.substr(begin, end - begin));
    begin = end + 1;
    if (item.empty()) continue;
    Entry e{};
    if (const auto at = item.find('@'); at != std::string::npos) {
      e.file = item.substr(at + 1);
      item.resize(at);
    }
    std::string name = item;
    if (const auto colon = item.find(':'); colon != std::string::npos) {
      name = item.substr(0, colon);
      const std::string count = item.substr(colon + 1);
      char* stop = nullptr;
      e.n = std::strtoll(count.c_str(), &stop, 10);
      if (count.empty() || *stop != '\0' || e.n < 1)
        throw bad(fmt::format("'{}' is not a count >= 1", count));
    }
    if (name == "kill_during_write") {
      e.action = Action::kKillDuringWrite;
    } else if (name == "enospc") {
      e.action = Action::kEnospc;
    } else if (name == "readonly") {
      e.action = Action::kReadonly;
    } else if (name == "nonfinite_loss") {
      e.action = Action::kNonfiniteLoss;
    } else {
      throw bad(fmt::format("unknown action '{}'", name));
    }
    out.push_back(std::move(e));
  }
  return out;
}

// The caller holds the mutex.
std::vector<Entry>& entries(Injection& s) {
  if (!s.loaded) {
    const char* env = std::getenv("MVA_FAULT_INJECT");
    s.entries = parse(env == nullptr ? "" : env);
    s.loaded = true;
  }
  return s.entries;
}

// The stage at which an action strikes.
WriteStage stage_of(Action a) {
  switch (a) {
    case Action::kReadonly:
      return WriteStage::kOpen;
    case Action::kEnospc:
      return WriteStage::kWrite;
    default:
      return WriteStage::kFileSynced;
  }
}

}  // namespace

int write_fault(WriteStage stage, const fs::path& path) {
  auto& s = injection();
  std::function<void(WriteStage, const fs::path&)> observer;
  int err = 0;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    observer = s.observer;
    for (auto& e : entries(s)) {
      if (e.action == Action::kNonfiniteLoss) continue;
      if (stage == WriteStage::kOpen && (e.file.empty() || path.filename() == e.file) &&
          ++e.seen == e.n) {
        e.armed = path;
      }
      if (!e.armed || *e.armed != path || stage != stage_of(e.action)) continue;
      e.armed.reset();
      if (e.action == Action::kKillDuringWrite) {
        std::raise(SIGKILL);
      }
      err = e.action == Action::kEnospc ? ENOSPC : EROFS;
    }
  }
  if (observer) observer(stage, path);
  return err;
}

bool nonfinite_loss_injected(int64_t step) {
  auto& s = injection();
  std::lock_guard<std::mutex> lock(s.mutex);
  for (const auto& e : entries(s)) {
    if (e.action == Action::kNonfiniteLoss && e.n == step) return true;
  }
  return false;
}

void set_fault_injection(std::string_view spec) {
  auto entries = parse(spec);
  auto& s = injection();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.entries = std::move(entries);
  s.loaded = true;
}

void set_write_observer(std::function<void(WriteStage, const fs::path&)> observer) {
  auto& s = injection();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.observer = std::move(observer);
}

}  // namespace mva::detail
