#include "mvadapter/config/config_tree.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "mvadapter/core/error.h"

namespace mva {

namespace fs = std::filesystem;

namespace {

std::string join_key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string at_line(const std::string& file, const YAML::Mark& mark) {
  return mark.is_null() ? file : fmt::format("{}:{}", file, mark.line + 1);
}

YAML::Node parse_yaml(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(fmt::format("{}: invalid YAML: {}", at_line(source, e.mark), e.msg));
  }
}

/// Records "file:line" for every key of `map` (recursively) and rejects keys YAML would silently
/// shadow: yaml-cpp keeps duplicate keys and lookups see only the first.
void record_origins(const YAML::Node& map, const std::string& prefix, const std::string& file,
                    std::map<std::string, std::string>& origins) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const auto where = at_line(file, it->first.Mark());
    if (!it->first.IsScalar()) {
      throw Error(fmt::format("{}: {}: a key must be a plain word, not a list or map", where,
                              prefix.empty() ? "(top level)" : prefix));
    }
    const auto key = join_key(prefix, it->first.Scalar());
    if (!seen.insert(it->first.Scalar()).second) {
      throw Error(fmt::format("{}: {}: the key appears twice in this section", where, key));
    }
    origins[key] = where;
    if (it->second.IsMap()) record_origins(it->second, key, file, origins);
  }
}

std::vector<std::string> base_list(const YAML::Node& base, const std::string& where) {
  std::vector<std::string> out;
  if (base.IsScalar()) {
    out.push_back(base.Scalar());
  } else if (base.IsSequence()) {
    for (const auto& b : base) {
      if (!b.IsScalar()) {
        throw Error(fmt::format("{}: base: expected a path or a list of paths", where));
      }
      out.push_back(b.Scalar());
    }
  } else if (!base.IsNull()) {
    throw Error(fmt::format("{}: base: expected a path or a list of paths", where));
  }
  for (const auto& b : out) {
    if (trim(b).empty()) throw Error(fmt::format("{}: base: an empty path", where));
  }
  return out;
}

ConfigTree load_file(const fs::path& path, std::vector<fs::path>& stack,
                     const std::string& named_by);

/// Builds the tree of one document whose relative bases resolve against `dir`.
ConfigTree build_tree(const YAML::Node& doc, const std::string& source, const fs::path& dir,
                      std::vector<fs::path>& stack) {
  if (doc.IsDefined() && !doc.IsNull() && !doc.IsMap()) {
    throw Error(
        fmt::format("{}: expected a map of sections (model, adapters, data, train, eval) "
                    "at the top level",
                    source));
  }
  ConfigTree tree;
  tree.source = source;
  tree.root = YAML::Node(YAML::NodeType::Map);
  if (!doc.IsMap()) return tree;

  std::map<std::string, std::string> own_origins;
  record_origins(doc, "", source, own_origins);

  YAML::Node own(YAML::NodeType::Map);
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const auto key = it->first.Scalar();
    if (key != "base") {
      own[key] = YAML::Clone(it->second);
      continue;
    }
    const auto where = at_line(source, it->first.Mark());
    for (const auto& b : base_list(it->second, where)) {
      const fs::path p = (dir / b).lexically_normal();
      if (!fs::exists(p)) {
        throw Error(
            fmt::format("{}: base: '{}' does not exist (looked for {})", where, b, p.string()));
      }
      auto base = load_file(p, stack, where);
      tree.root.reset(merge_yaml(tree.root, base.root));
      for (const auto& [k, v] : base.origins) tree.origins[k] = v;
    }
  }
  own_origins.erase("base");
  tree.root.reset(merge_yaml(tree.root, own));
  for (const auto& [k, v] : own_origins) tree.origins[k] = v;
  return tree;
}

ConfigTree load_file(const fs::path& path, std::vector<fs::path>& stack,
                     const std::string& named_by) {
  std::error_code ec;
  auto canon = fs::weakly_canonical(path, ec);
  if (ec) canon = fs::absolute(path).lexically_normal();
  if (std::find(stack.begin(), stack.end(), canon) != stack.end()) {
    std::string chain;
    for (const auto& p : stack) chain += p.filename().string() + " -> ";
    throw Error(
        fmt::format("{}: base: cycle of bases {}{}", named_by, chain, canon.filename().string()));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot read the config file", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  const auto doc = parse_yaml(text.str(), path.string());

  stack.push_back(canon);
  auto tree = build_tree(doc, path.string(), path.parent_path(), stack);
  stack.pop_back();
  return tree;
}

}  // namespace

std::string ConfigTree::origin_of(const std::string& key) const {
  std::string k = key;
  while (true) {
    auto it = origins.find(k);
    if (it != origins.end()) return it->second;
    const auto dot = k.rfind('.');
    if (dot == std::string::npos) break;
    k.resize(dot);
  }
  return source;
}

ConfigTree load_config_tree(const fs::path& path) {
  std::vector<fs::path> stack;
  return load_file(path, stack, path.string());
}

ConfigTree parse_config_tree(const std::string& text, const std::string& source) {
  std::vector<fs::path> stack;
  return build_tree(parse_yaml(text, source), source, fs::path("."), stack);
}

void apply_override(ConfigTree& tree, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos) {
    throw Error(fmt::format("--set {}: expected key.path=value", assignment));
  }
  const auto key = trim(assignment.substr(0, eq));
  const auto value = trim(assignment.substr(eq + 1));
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
  if (parts.empty() || key.back() == '.' ||
      std::any_of(parts.begin(), parts.end(), [](const auto& p) { return p.empty(); })) {
    throw Error(
        fmt::format("--set {}: '{}' is not a dotted key such as train.lr", assignment, key));
  }

  const YAML::Node parsed =
      value.empty() ? YAML::Node(std::string()) : parse_yaml(value, "--set " + assignment);
  std::map<std::string, std::string> nested;
  if (parsed.IsMap()) record_origins(parsed, key, "--set", nested);
  YAML::Node patch = parsed;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    YAML::Node m(YAML::NodeType::Map);
    m[*it] = patch;
    patch.reset(m);  // rebind; plain assignment would rewrite the node `m` now holds
  }
  tree.root.reset(merge_yaml(tree.root, patch));

  // Sections created on the way belong to the override too, so an unknown one is blamed on it.
  std::string prefix;
  for (const auto& part : parts) {
    prefix = join_key(prefix, part);
    if (!tree.origins.count(prefix)) tree.origins[prefix] = "--set";
  }
  tree.origins[key] = "--set";
  for (const auto& entry : nested) tree.origins[entry.first] = "--set";
}

YAML::Node merge_yaml(const YAML::Node& base, const YAML::Node& over) {
  if (base.IsMap() && (!over.IsDefined() || over.IsNull())) return YAML::Clone(base);
  if (!base.IsMap() || !over.IsMap()) return YAML::Clone(over);
  YAML::Node out(YAML::NodeType::Map);
  for (auto it = base.begin(); it != base.end(); ++it) {
    out[it->first.Scalar()] = YAML::Clone(it->second);
  }
  for (auto it = over.begin(); it != over.end(); ++it) {
    const auto key = it->first.Scalar();
    const YAML::Node& const_out = out;  // a const lookup does not insert the key
    const YAML::Node existing = const_out[key];
    if (existing.IsDefined()) {
      out[key] = merge_yaml(existing, it->second);
    } else {
      out[key] = YAML::Clone(it->second);
    }
  }
  return out;
}

std::string expand_env(const std::string& value, const std::string& field) {
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    if (value.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (value.compare(i, 2, "${") != 0) {
      out += value[i++];
      continue;
    }
    const auto close = value.find('}', i + 2);
    if (close == std::string::npos) {
      throw Error(fmt::format("{}: unterminated '${{' in '{}' (write $${{ for a literal ${{)",
                              field, value));
    }
    const auto inner = value.substr(i + 2, close - i - 2);
    const auto sep = inner.find(":-");
    const auto name = inner.substr(0, sep);
    const bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                       });
    if (!valid) {
      throw Error(
          fmt::format("{}: '${{{}}}' in '{}' is not an environment variable reference "
                      "(expected ${{NAME}} or ${{NAME:-default}})",
                      field, inner, value));
    }
    const char* env = std::getenv(name.c_str());
    if (sep != std::string::npos && (env == nullptr || *env == '\0')) {
      out += inner.substr(sep + 2);
    } else if (env != nullptr) {
      out += env;
    }
    i = close + 1;
  }
  return out;
}

std::string escape_env(const std::string& value) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value.compare(i, 2, "${") == 0) out += '$';
    out += value[i];
  }
  return out;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    const auto d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

}  // namespace mva
