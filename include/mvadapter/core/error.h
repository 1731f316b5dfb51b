#pragma once
#include <stdexcept>
#include <string>
#include <utility>

namespace mva {

/// The one exception the library throws: its message names the file or field at fault and what
/// was expected. The CLI catches it once, prints the message on one line and exits 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// An Error in one configuration value. The message reads "<source>: <key>: <problem>" (without
/// "<source>: " when the source is not known), and the parts stay available as data, so code that
/// needs the key (to find where it was set, to point at a CLI option) never re-parses the text.
class ConfigError : public Error {
 public:
  /// `source`: "file:line", "--set", or "" where the value's origin is not known (a config built
  /// in code, checked by a lower layer); `key`: the dotted key ("adapters.video.mid_dim").
  ConfigError(std::string source, std::string key, std::string problem)
      : Error(compose(source, key, problem)),
        source_(std::move(source)),
        key_(std::move(key)),
        problem_(std::move(problem)) {}

  /// Where the value came from: "file:line", "--set", or "".
  const std::string& source() const { return source_; }
  /// The dotted key at fault.
  const std::string& key() const { return key_; }
  /// What is wrong, without source and key.
  const std::string& problem() const { return problem_; }

 private:
  static std::string compose(const std::string& source, const std::string& key,
                             const std::string& problem) {
    return (source.empty() ? std::string() : source + ": ") + key + ": " + problem;
  }

  std::string source_, key_, problem_;
};

}  // namespace mva
