#pragma once
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace mva {

/// A YAML configuration after `base:` inheritance and `--set` overrides, remembering where each
/// key came from so that errors can name the file and line that set it.
struct ConfigTree {
  /// The merged document: always a map (an empty file gives an empty map). No `base:` key.
  YAML::Node root;
  /// Dotted key ("train.lr") -> "file:line" of the value that won, or "--set".
  std::map<std::string, std::string> origins;
  /// The file (or text source name) the tree was loaded from.
  std::string source;

  /// Where `key` was set: its own origin, else that of its nearest enclosing section, else
  /// `source` (for keys that only have their default).
  std::string origin_of(const std::string& key) const;
};

/// Loads `path` and, recursively, the files its top-level `base:` names: one path or a list of
/// paths, each relative to the folder of the file that names it. Bases are merged in order (a
/// later base overrides an earlier one) and the file itself overrides them all. Merging is
/// recursive for maps (key by key); lists and scalars are replaced whole. Throws Error naming the
/// file (and line) for unreadable or malformed YAML, a non-map document, a duplicate key, a
/// missing base file or a cycle of bases.
ConfigTree load_config_tree(const std::filesystem::path& path);

/// As load_config_tree for YAML text; `source` names it in messages and relative `base:` paths
/// resolve against the current directory.
ConfigTree parse_config_tree(const std::string& text, const std::string& source);

/// Applies one override "a.b.c=value". The value is parsed as YAML, so it can be a scalar
/// (`1e-5`, `true`, `text`), a flow list (`[9,10,11]`) or a flow map (merged like a base); an
/// empty value is an empty string. Sections on the way are created. Throws Error naming the
/// override when it has no '=', an empty key part, or a value that is not valid YAML.
void apply_override(ConfigTree& tree, const std::string& assignment);

/// `over` merged onto `base`: maps key by key (recursively), anything else replaced by `over`;
/// a null `over` leaves a map `base` as it is. The result shares no nodes with the inputs.
YAML::Node merge_yaml(const YAML::Node& base, const YAML::Node& over);

/// Expands `${NAME}` (empty when NAME is unset) and `${NAME:-default}` (default when NAME is
/// unset or empty) from the environment; `$${` stands for a literal `${`; any other `$` is kept.
/// Throws Error naming `field` for an unterminated `${` or an invalid variable name.
std::string expand_env(const std::string& value, const std::string& field);
/// Escapes every `${` of `value` so that expand_env gives `value` back.
std::string escape_env(const std::string& value);

/// Levenshtein distance (insertions, deletions, substitutions; bytes).
std::size_t edit_distance(const std::string& a, const std::string& b);
/// The candidate closest to `word` by edit distance (the first one on ties); "" if none.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace mva
