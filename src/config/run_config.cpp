#include "mvadapter/config/run_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "mvadapter/clip/clip_config.h"
#include "mvadapter/config/config_tree.h"
#include "mvadapter/core/enum_names.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/strings.h"
#include "mvadapter/model/precision.h"

namespace mva {

namespace fs = std::filesystem;

namespace {

/// The key being read and where its value came from, for error messages.
struct Where {
  const std::string& key;
  const std::string& origin;
};

[[noreturn]] void fail(const Where& w, const std::string& what) {
  throw ConfigError(w.origin, w.key, what);
}

std::string describe(const YAML::Node& n) {
  if (n.IsScalar()) return fmt::format("'{}'", n.Scalar());
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a map";
  return "an empty value";
}

const std::string& scalar(const YAML::Node& n, const Where& w, const char* expected) {
  if (!n.IsScalar()) fail(w, fmt::format("expected {}, got {}", expected, describe(n)));
  return n.Scalar();
}

int64_t parse_int(const YAML::Node& n, const Where& w, const char* expected = "an integer") {
  const auto& s = scalar(n, w, expected);
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(b, e, v);
  if (b == e || ec != std::errc() || ptr != e) {
    fail(w, fmt::format("expected {}, got '{}'", expected, s));
  }
  return v;
}

double parse_double(const YAML::Node& n, const Where& w) {
  const auto& s = scalar(n, w, "a number");
  char* end = nullptr;
  const double v = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) {
    fail(w, fmt::format("expected a number, got '{}'", s));
  }
  return v;
}

bool parse_bool(const YAML::Node& n, const Where& w) {
  const auto s = ascii_lower(scalar(n, w, "true or false"));
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail(w, fmt::format("expected true or false, got '{}'", n.Scalar()));
}

/// Strings: null is empty; `${ENV}` references are expanded here, at load time.
std::string parse_string(const YAML::Node& n, const Where& w) {
  if (n.IsNull()) return "";
  return expand_env(scalar(n, w, "a string"), fmt::format("{}: {}", w.origin, w.key));
}

std::string format_double(double v) {
  auto s = fmt::format("{}", v);  // shortest text that reads back as the same double
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string join(const std::vector<std::string>& items) {
  return fmt::format("{}", fmt::join(items, ", "));
}

/// One config key: how to read it into a RunConfig and how to write it back.
struct Field {
  std::string key;
  std::function<void(RunConfig&, const YAML::Node&, const Where&)> read;
  std::function<void(YAML::Emitter&, RunConfig&)> write;
};

template <typename Get>
Field int_field(std::string key, Get get, int64_t lo,
                int64_t hi = std::numeric_limits<int64_t>::max()) {
  return {key,
          [get, lo, hi](RunConfig& c, const YAML::Node& n, const Where& w) {
            const auto v = parse_int(n, w);
            if (v < lo || v > hi) {
              fail(w, hi == std::numeric_limits<int64_t>::max()
                          ? fmt::format("{} is out of range (expected >= {})", v, lo)
                          : fmt::format("{} is out of range (expected {} to {})", v, lo, hi));
            }
            get(c) = v;
          },
          [get](YAML::Emitter& out, RunConfig& c) { out << static_cast<long long>(get(c)); }};
}

/// An integer >= lo, or unset: an empty value or null (~) reads as unset, which is written as ~.
template <typename Get>
Field optional_int_field(std::string key, Get get, int64_t lo) {
  return {key,
          [get, lo](RunConfig& c, const YAML::Node& n, const Where& w) {
            if (n.IsNull()) {
              get(c).reset();
              return;
            }
            const auto v = parse_int(n, w);
            if (v < lo) fail(w, fmt::format("{} is out of range (expected >= {} or ~)", v, lo));
            get(c) = v;
          },
          [get](YAML::Emitter& out, RunConfig& c) {
            if (get(c)) {
              out << static_cast<long long>(*get(c));
            } else {
              out << YAML::Null;
            }
          }};
}

/// A number in [lo, hi], or (lo, hi] when `lo_open`, or [lo, hi) when `hi_open`.
template <typename Get>
Field num_field(std::string key, Get get, double lo, bool lo_open = false,
                double hi = std::numeric_limits<double>::infinity(), bool hi_open = false) {
  return {key,
          [=](RunConfig& c, const YAML::Node& n, const Where& w) {
            const auto v = parse_double(n, w);
            const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
            if (!ok) {
              const auto low = fmt::format("{} {}", lo_open ? ">" : ">=", format_double(lo));
              fail(w,
                   std::isinf(hi)
                       ? fmt::format("{} is out of range (expected {})", format_double(v), low)
                       : fmt::format("{} is out of range (expected {} and {} {})", format_double(v),
                                     low, hi_open ? "<" : "<=", format_double(hi)));
            }
            get(c) = v;
          },
          [get](YAML::Emitter& out, RunConfig& c) { out << format_double(get(c)); }};
}

template <typename Get>
Field bool_field(std::string key, Get get) {
  return {key,
          [get](RunConfig& c, const YAML::Node& n, const Where& w) { get(c) = parse_bool(n, w); },
          [get](YAML::Emitter& out, RunConfig& c) { out << (get(c) ? "true" : "false"); }};
}

/// Free text or a path (`T` = std::string or fs::path), written quoted and `$`-escaped.
template <typename Get>
Field string_field(std::string key, Get get) {
  return {key,
          [get](RunConfig& c, const YAML::Node& n, const Where& w) { get(c) = parse_string(n, w); },
          [get](YAML::Emitter& out, RunConfig& c) {
            out << YAML::DoubleQuoted << escape_env(fs::path(get(c)).string());
          }};
}

/// A string that must be one of `choices` (names another layer parses).
template <typename Get>
Field choice_field(std::string key, Get get, std::vector<std::string> choices) {
  return {key,
          [get, choices](RunConfig& c, const YAML::Node& n, const Where& w) {
            const auto v = parse_string(n, w);
            if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
              fail(w, fmt::format("'{}' is not one of: {}", v, join(choices)));
            }
            get(c) = v;
          },
          [get](YAML::Emitter& out, RunConfig& c) { out << get(c); }};
}

/// The enumeration type a field accessor refers to.
template <typename Get>
using FieldType = std::decay_t<decltype(std::declval<Get>()(std::declval<RunConfig&>()))>;

/// One value of an enumeration, read and written through its name table (enum_names).
template <typename Get>
Field enum_field(std::string key, Get get) {
  using E = FieldType<Get>;
  return {key,
          [get](RunConfig& c, const YAML::Node& n, const Where& w) {
            const auto v = parse_string(n, w);
            const auto value = enum_from_name<E>(v);
            if (!value) fail(w, fmt::format("'{}' is not one of: {}", v, enum_choices<E>()));
            get(c) = *value;
          },
          [get](YAML::Emitter& out, RunConfig& c) { out << enum_name(get(c)); }};
}

/// An integer >= lo, or `auto` (stored as `auto_value`, which must be below lo).
template <typename Get>
Field auto_int_field(std::string key, Get get, int64_t lo, int64_t auto_value) {
  return {key,
          [get, lo, auto_value](RunConfig& c, const YAML::Node& n, const Where& w) {
            if (n.IsScalar() && ascii_lower(n.Scalar()) == "auto") {
              get(c) = auto_value;
              return;
            }
            const auto v = parse_int(n, w, "auto or an integer");
            if (v < lo) fail(w, fmt::format("{} is out of range (expected auto or >= {})", v, lo));
            get(c) = v;
          },
          [get, auto_value](YAML::Emitter& out, RunConfig& c) {
            if (get(c) == auto_value) {
              out << "auto";
            } else {
              out << static_cast<long long>(get(c));
            }
          }};
}

/// A list of integers >= lo; a single integer is a one-element list, an empty value an empty one.
template <typename Get>
Field int_list_field(std::string key, Get get, int64_t lo) {
  return {key,
          [get, lo](RunConfig& c, const YAML::Node& n, const Where& w) {
            std::vector<int64_t> v;
            if (n.IsScalar()) {
              v.push_back(parse_int(n, w));
            } else if (n.IsSequence()) {
              for (const auto& item : n) {
                if (!item.IsScalar()) {
                  fail(w, fmt::format("expected a list of integers, got {} in it", describe(item)));
                }
                v.push_back(parse_int(item, w));
              }
            } else if (!n.IsNull()) {
              fail(w, fmt::format("expected a list of integers, got {}", describe(n)));
            }
            for (auto x : v) {
              if (x < lo) fail(w, fmt::format("{} is out of range (expected >= {})", x, lo));
            }
            get(c) = std::move(v);
          },
          [get](YAML::Emitter& out, RunConfig& c) {
            out << YAML::Flow << YAML::BeginSeq;
            for (auto x : get(c)) out << static_cast<long long>(x);
            out << YAML::EndSeq;
          }};
}

/// A list of distinct values of an enumeration, by name; a single name is a one-element list.
template <typename Get>
Field enum_list_field(std::string key, Get get) {
  using E = typename FieldType<Get>::value_type;
  return {key,
          [get](RunConfig& c, const YAML::Node& n, const Where& w) {
            std::vector<std::string> names;
            if (n.IsScalar()) {
              names.push_back(parse_string(n, w));
            } else if (n.IsSequence()) {
              for (const auto& item : n) names.push_back(parse_string(item, w));
            } else if (!n.IsNull()) {
              fail(w, fmt::format("expected a list of {}, got {}", enum_choices<E>(), describe(n)));
            }
            std::vector<E> v;
            for (const auto& name : names) {
              const auto value = enum_from_name<E>(name);
              if (!value) fail(w, fmt::format("'{}' is not one of: {}", name, enum_choices<E>()));
              if (std::find(v.begin(), v.end(), *value) != v.end()) {
                fail(w, fmt::format("'{}' is listed twice", name));
              }
              v.push_back(*value);
            }
            get(c) = std::move(v);
          },
          [get](YAML::Emitter& out, RunConfig& c) {
            out << YAML::Flow << YAML::BeginSeq;
            for (const auto& x : get(c)) out << enum_name(x);
            out << YAML::EndSeq;
          }};
}

/// Video calibration: "c", "p", "cp" or "" (also the official list form [c, p]).
template <typename Get>
Field temporal_field(std::string key, Get get) {
  return {key,
          [get](RunConfig& c, const YAML::Node& n, const Where& w) {
            std::string v;
            if (n.IsSequence()) {
              for (const auto& item : n) v += parse_string(item, w);
            } else {
              v = parse_string(n, w);
            }
            const auto value = parse_temporal_calibration(v);
            if (!value) {
              fail(w, fmt::format("'{}' is not one of: c, p, cp, \"\" (calibrate the CLS token, "
                                  "the patches, both, or neither)",
                                  v));
            }
            get(c) = *value;
          },
          [get](YAML::Emitter& out, RunConfig& c) {
            out << YAML::DoubleQuoted << enum_name(get(c));
          }};
}

/// Adam's (beta1, beta2), each in [0, 1).
template <typename Get>
Field betas_field(std::string key, Get get) {
  return {
      key,
      [get](RunConfig& c, const YAML::Node& n, const Where& w) {
        if (!n.IsSequence() || n.size() != 2) {
          fail(w,
               fmt::format("expected a list of two numbers [beta1, beta2], got {}", describe(n)));
        }
        for (size_t i = 0; i < 2; ++i) {
          const auto v = parse_double(n[i], w);
          if (v < 0.0 || v >= 1.0) {
            fail(w, fmt::format("{} is out of range (expected >= 0 and < 1)", format_double(v)));
          }
          get(c)[i] = v;
        }
      },
      [get](YAML::Emitter& out, RunConfig& c) {
        out << YAML::Flow << YAML::BeginSeq << format_double(get(c)[0]) << format_double(get(c)[1])
            << YAML::EndSeq;
      }};
}

/// "cpu", "cuda" or "cuda:N".
template <typename Get>
Field device_field(std::string key, Get get) {
  return {key,
          [get](RunConfig& c, const YAML::Node& n, const Where& w) {
            const auto v = parse_string(n, w);
            if (!device_from_name(v))
              fail(w, fmt::format("'{}' is not a device (expected cpu, cuda or cuda:N)", v));
            get(c) = v;
          },
          [get](YAML::Emitter& out, RunConfig& c) { out << get(c); }};
}

// A key and the RunConfig member it sets are the same dotted path, so one spelling gives both.
// clang-format off
#define KEY(path) #path, [](RunConfig& c) -> auto& { return c.path; }
// clang-format on

/// Every key, in to_yaml order (a section's keys are contiguous).
const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = [] {
    const double kAny = -std::numeric_limits<double>::infinity();
    // clang-format off
    return std::vector<Field>{
        string_field(KEY(name)),

        string_field(KEY(model.clip)),
        string_field(KEY(model.arch)),
        enum_field(KEY(model.trainable)),
        bool_field(KEY(model.train_clip_biases)),
        bool_field(KEY(model.use_adapters)),
        enum_field(KEY(model.head)),
        int_field(KEY(model.head_layers), 1),

        bool_field(KEY(adapters.video.enabled)),
        enum_field(KEY(adapters.video.type)),
        int_list_field(KEY(adapters.video.layers), 0),
        enum_field(KEY(adapters.video.insertion)),
        int_field(KEY(adapters.video.mid_dim), 1),
        int_field(KEY(adapters.video.heads), 1),
        num_field(KEY(adapters.video.scale), kAny),
        temporal_field(KEY(adapters.video.temporal)),
        int_field(KEY(adapters.video.calibration_dim), 1),
        enum_field(KEY(adapters.video.activation)),
        bool_field(KEY(adapters.video.input_norm)),
        int_list_field(KEY(adapters.video.kernel), 1),

        bool_field(KEY(adapters.text.enabled)),
        enum_field(KEY(adapters.text.type)),
        int_list_field(KEY(adapters.text.layers), 0),
        enum_field(KEY(adapters.text.insertion)),
        int_field(KEY(adapters.text.mid_dim), 1),
        int_field(KEY(adapters.text.heads), 1),
        num_field(KEY(adapters.text.scale), kAny),
        enum_field(KEY(adapters.text.activation)),
        bool_field(KEY(adapters.text.input_norm)),

        enum_field(KEY(adapters.tying.mode)),
        int_list_field(KEY(adapters.tying.layers), 0),
        int_field(KEY(adapters.tying.factor_dim), 1),
        enum_field(KEY(adapters.tying.position)),
        int_field(KEY(adapters.tying.kron_k), 1),

        int_field(KEY(adapters.lora.rank), 0),
        num_field(KEY(adapters.lora.alpha), 0.0, /*lo_open=*/true),
        num_field(KEY(adapters.lora.dropout), 0.0, false, 1.0, /*hi_open=*/true),
        enum_list_field(KEY(adapters.lora.targets)),
        enum_field(KEY(adapters.lora.towers)),
        int_field(KEY(adapters.cm_share_dim), 0),

        choice_field(KEY(data.dataset), dataset_formats()),
        string_field(KEY(data.root)),
        string_field(KEY(data.videos)),
        string_field(KEY(data.train_split)),
        string_field(KEY(data.test_split)),
        int_field(KEY(data.frames), 1),
        // [SOT] + at least one token + [EOT]; CLIP's text positional embedding has 77 rows.
        int_field(KEY(data.words), 3, 77),
        enum_field(KEY(data.sampling)),
        int_field(KEY(data.size), 1),
        num_field(KEY(data.fps), 0.0, /*lo_open=*/true),
        enum_field(KEY(data.caption_sampling)),
        int_field(KEY(data.workers), 1),
        int_field(KEY(data.prefetch), 0),
        enum_field(KEY(data.on_error)),
        optional_int_field(KEY(data.shuffle_seed), 0),

        int_field(KEY(train.epochs), 0),
        int_field(KEY(train.batch_size), 1),
        num_field(KEY(train.lr), 0.0),
        num_field(KEY(train.clip_lr), 0.0),
        num_field(KEY(train.weight_decay), 0.0),
        betas_field(KEY(train.betas)),
        num_field(KEY(train.eps), 0.0, /*lo_open=*/true),
        num_field(KEY(train.warmup), 0.0, false, 1.0, /*hi_open=*/true),
        enum_field(KEY(train.schedule)),
        num_field(KEY(train.grad_clip), 0.0),
        num_field(KEY(train.max_grad_norm), 0.0),
        enum_field(KEY(train.optimizer)),
        int_field(KEY(train.grad_accum), 1),
        enum_field(KEY(train.precision)),
        enum_field(KEY(train.master_weights)),
        int_field(KEY(train.seed), 0),
        int_field(KEY(train.threads), 0),
        device_field(KEY(train.device)),
        string_field(KEY(train.output_dir)),
        int_field(KEY(train.log_every), 1),
        bool_field(KEY(train.save_every_epoch)),
        auto_int_field(KEY(train.save_every_steps), 0, kAutoSaveInterval),
        enum_field(KEY(train.on_nonfinite)),
        int_field(KEY(train.emulate_world_size), 0),
        bool_field(KEY(train.grad_cache)),
        bool_field(KEY(train.deterministic)),
        bool_field(KEY(train.activation_checkpointing)),

        int_field(KEY(eval.batch_size), 1),
        enum_field(KEY(eval.convention)),
        bool_field(KEY(eval.dsl)),
        int_field(KEY(eval.chunk), 1),
        bool_field(KEY(eval.every_epoch)),

        enum_field(KEY(dist.backend)),
        num_field(KEY(dist.timeout_s), 0.0, /*lo_open=*/true),
        bool_field(KEY(dist.log_all_ranks)),
    };
    // clang-format on
  }();
  return kFields;
}

#undef KEY

const Field* find_field(const std::string& key) {
  for (const auto& f : fields()) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

/// Every proper prefix of a key: "adapters", "adapters.video", ...
const std::set<std::string>& sections() {
  static const std::set<std::string> kSections = [] {
    std::set<std::string> s;
    for (const auto& f : fields()) {
      for (auto dot = f.key.find('.'); dot != std::string::npos; dot = f.key.find('.', dot + 1)) {
        s.insert(f.key.substr(0, dot));
      }
    }
    return s;
  }();
  return kSections;
}

/// The direct children of `section` ("" = top level), for messages.
std::vector<std::string> children(const std::string& section) {
  std::vector<std::string> out;
  const auto prefix = section.empty() ? std::string() : section + ".";
  for (const auto& f : fields()) {
    if (f.key.compare(0, prefix.size(), prefix) != 0) continue;
    const auto rest = f.key.substr(prefix.size());
    const auto child = rest.substr(0, rest.find('.'));
    if (std::find(out.begin(), out.end(), child) == out.end()) out.push_back(child);
  }
  return out;
}

[[noreturn]] void unknown_key(const std::string& key, const std::string& origin) {
  std::vector<std::string> candidates = run_config_keys();
  candidates.insert(candidates.end(), sections().begin(), sections().end());
  const auto best = closest_match(key, candidates);
  const auto dot = key.rfind('.');
  const auto parent = dot == std::string::npos ? std::string() : key.substr(0, dot);
  // A suggestion helps only when it is near the misspelt word itself, not the whole dotted key.
  const auto leaf = key.size() - (dot == std::string::npos ? 0 : dot + 1);
  if (!best.empty() && edit_distance(key, best) <= std::max<std::size_t>(2, leaf / 2)) {
    throw ConfigError(origin, key, fmt::format("unknown key (did you mean {}?)", best));
  }
  if (sections().count(parent)) {
    throw ConfigError(
        origin, key,
        fmt::format("unknown key (valid keys under {}: {})", parent, join(children(parent))));
  }
  throw ConfigError(origin, key,
                    fmt::format("unknown key (valid top-level keys: {})", join(children(""))));
}

void read_section(RunConfig& c, const YAML::Node& map, const std::string& prefix,
                  const ConfigTree& tree) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    const auto key = prefix.empty() ? it->first.Scalar() : prefix + "." + it->first.Scalar();
    const auto origin = tree.origin_of(key);
    if (const auto* f = find_field(key)) {
      f->read(c, it->second, Where{key, origin});
    } else if (sections().count(key)) {
      if (it->second.IsNull()) continue;  // "eval:" with nothing under it
      if (!it->second.IsMap()) {
        fail(Where{key, origin}, fmt::format("expected a section with keys {}, got {}",
                                             join(children(key)), describe(it->second)));
      }
      read_section(c, it->second, key, tree);
    } else if (key == "base") {
      // Files lose their base: key when loaded, so this one came from --set.
      fail(Where{key, origin}, "only a config file can name bases (base: [files...])");
    } else {
      unknown_key(key, origin);
    }
  }
}

std::vector<std::string> split_choices(const std::string& dataset) {
  if (dataset == "msrvtt") return {"train", "9k", "7k", "val", "test", "jsfusion"};
  return {"train", "val", "test"};
}

bool is_file_format(const std::string& dataset) {
  return dataset == "unified" || dataset == "jsonl" || dataset == "csv";
}

/// Checks that involve several keys, and fills what is derived (name, output_dir, seq_len).
void finish(RunConfig& c, const ConfigTree& tree) {
  auto where = [&tree](const std::string& key) {
    return std::pair<std::string, std::string>(key, tree.origin_of(key));
  };
  auto check = [&](bool ok, const std::string& key, const std::string& what) {
    if (ok) return;
    const auto [k, o] = where(key);
    fail(Where{k, o}, what);
  };

  if (c.name.empty()) c.name = fs::path(tree.source).stem().string();
  if (c.name.empty()) c.name = "run";
  check(std::all_of(c.name.begin(), c.name.end(),
                    [](unsigned char ch) {
                      return std::isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
                    }),
        "name",
        fmt::format("'{}' must hold only letters, digits, '.', '_' and '-' (it names the run "
                    "directory)",
                    c.name));
  if (c.train.output_dir.empty()) c.train.output_dir = fs::path("runs") / c.name;

  c.adapters.video.seq_len = c.data.frames;
  c.adapters.text.seq_len = c.data.words;

  ClipConfig geometry;
  try {
    geometry = ClipConfig::named(c.model.arch);
  } catch (const Error&) {
    check(false, "model.arch",
          fmt::format("'{}' is not one of: ViT-B/32, ViT-B/16, ViT-L/14, Tiny-32", c.model.arch));
  }
  check(c.model.trainable != TrainableSet::kAdapters || c.model.use_adapters, "model.trainable",
        "adapters needs model.use_adapters: true (without adapters, train none, full or bitfit)");

  check(!c.adapters.lora.enabled() || c.model.use_adapters, "adapters.lora.rank",
        "LoRA needs model.use_adapters: true (it is installed with the adapters section; disable "
        "the bottleneck adapters with adapters.video.enabled/adapters.text.enabled: false)");
  if (c.model.use_adapters) {
    const auto& a = c.adapters;
    check(!a.lora.enabled() || !a.lora.targets.empty(), "adapters.lora.targets",
          "LoRA needs at least one of q, k, v, o");
    for (const auto* branch : {"video", "text"}) {
      const auto& b = std::string(branch) == "video" ? a.video : a.text;
      if (!b.enabled) continue;
      const auto p = fmt::format("adapters.{}.", branch);
      check(b.type != AdapterType::kMv || b.mid_dim % b.heads == 0, p + "heads",
            fmt::format("{} heads do not divide mid_dim {}", b.heads, b.mid_dim));
      check(std::set<int64_t>(b.layers.begin(), b.layers.end()).size() == b.layers.size(),
            p + "layers", "a block is listed twice");
    }
    if (a.tying.mode != TyingMode::kNone) {
      check(a.video.enabled && a.text.enabled, "adapters.tying.mode",
            fmt::format("{} tying needs adapters in both branches (adapters.video.enabled and "
                        "adapters.text.enabled), or mode none",
                        to_string(a.tying.mode)));
      check(std::set<int64_t>(a.tying.layers.begin(), a.tying.layers.end()).size() ==
                a.tying.layers.size(),
            "adapters.tying.layers", "a block is listed twice");
      for (auto l : a.tying.layers) {
        check(a.video.has_adapter(l) && a.text.has_adapter(l), "adapters.tying.layers",
              fmt::format("block {} has no adapter in both branches (see adapters.video.layers and "
                          "adapters.text.layers)",
                          l));
      }
    }
    if (c.model.clip.empty()) {
      // Random weights of model.arch: the geometry is known, so check the adapters against it.
      try {
        a.validate(geometry.vision_width, geometry.transformer_width, geometry.vision_layers,
                   geometry.transformer_layers);
      } catch (const ConfigError& e) {
        throw ConfigError(tree.origin_of(e.key()), e.key(),
                          fmt::format("{} (model.arch {})", e.problem(), c.model.arch));
      }
    }
  }

  const auto splits = split_choices(c.data.dataset);
  for (const auto* key : {"data.train_split", "data.test_split"}) {
    const auto& v = std::string(key) == "data.train_split" ? c.data.train_split : c.data.test_split;
    if (is_file_format(c.data.dataset)) {
      check(!v.empty(), key,
            fmt::format("expected the name of a {} file inside data.root", c.data.dataset));
    } else {
      check(std::find(splits.begin(), splits.end(), v) != splits.end(), key,
            fmt::format("'{}' is not a split of {} (expected one of: {})", v, c.data.dataset,
                        join(splits)));
    }
  }

  check(c.train.batch_size % c.train.grad_accum == 0, "train.grad_accum",
        fmt::format("{} does not divide train.batch_size {}", c.train.grad_accum,
                    c.train.batch_size));
  check(c.train.precision != Precision::kFp16 || !device_from_name(c.train.device)->is_cpu(),
        "train.precision",
        "fp16 needs a CUDA device (train.device: cuda); on the CPU use fp32 or bf16");
}

RunConfig build(const ConfigTree& tree_in, const std::vector<std::string>& overrides) {
  ConfigTree tree = tree_in;
  for (const auto& o : overrides) apply_override(tree, o);
  RunConfig c;
  read_section(c, tree.root, "", tree);
  finish(c, tree);
  return c;
}

DatasetSpec dataset_spec(const RunConfig& c, const std::string& split) {
  DatasetSpec s;
  s.format = c.data.dataset;
  s.videos = c.data.videos;
  if (is_file_format(c.data.dataset)) {
    s.annotations = c.data.root / split;
    s.split = fs::path(split).stem().string();
    return s;
  }
  s.annotations = c.data.root;
  s.split = split;
  if (c.data.dataset == "msrvtt") {
    if (split == "9k" || split == "7k") {
      s.split = "train";
      s.msrvtt_train_csv = fmt::format("MSRVTT_train.{}.csv", split);
    } else if (split == "jsfusion") {
      s.split = "test";
    }
  }
  return s;
}

LoaderOptions loader_options(const RunConfig& c) {
  LoaderOptions o;
  o.clip.frames = c.data.frames;
  o.clip.sampling = c.data.sampling;
  o.clip.transform.size = c.data.size;
  o.clip.decode.sample_fps = c.data.fps;
  o.max_words = c.data.words;
  o.threads = static_cast<int>(c.data.workers);
  o.seed = static_cast<uint64_t>(c.data.shuffle_seed.value_or(c.train.seed));
  o.on_error = c.data.on_error;
  return o;
}

}  // namespace

const std::vector<std::string>& run_config_keys() {
  static const std::vector<std::string> kKeys = [] {
    std::vector<std::string> k;
    for (const auto& f : fields()) k.push_back(f.key);
    return k;
  }();
  return kKeys;
}

RunConfig load_run_config(const fs::path& path, const std::vector<std::string>& overrides) {
  return build(load_config_tree(path), overrides);
}

RunConfig parse_run_config(const std::string& text, const std::string& source,
                           const std::vector<std::string>& overrides) {
  return build(parse_config_tree(text, source), overrides);
}

std::string to_yaml(const RunConfig& cfg) {
  RunConfig c = cfg;  // the field accessors take a mutable config
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::Comment("mvadapter run configuration, resolved: every key, no base, no ${ENV}");
  out << YAML::BeginMap;
  std::vector<std::string> open;
  for (const auto& f : fields()) {
    std::vector<std::string> parts;
    std::stringstream ss(f.key);
    for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
    size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) {
      ++common;
    }
    for (; open.size() > common; open.pop_back()) out << YAML::EndMap;
    for (size_t i = common; i + 1 < parts.size(); ++i) {
      out << YAML::Key << parts[i] << YAML::Value << YAML::BeginMap;
      open.push_back(parts[i]);
    }
    out << YAML::Key << parts.back() << YAML::Value;
    f.write(out, c);
  }
  for (; !open.empty(); open.pop_back()) out << YAML::EndMap;
  out << YAML::EndMap;
  if (!out.good()) throw Error(fmt::format("to_yaml: {}", out.GetLastError()));
  return std::string(out.c_str()) + "\n";
}

RetrievalModelConfig to_retrieval_model_config(const RunConfig& cfg) {
  RetrievalModelConfig m;
  m.adapters = cfg.adapters;
  m.adapters.video.seq_len = cfg.data.frames;
  m.adapters.text.seq_len = cfg.data.words;
  m.use_adapters = cfg.model.use_adapters;
  m.trainable = cfg.model.trainable;
  m.train_clip_biases = cfg.model.train_clip_biases;
  m.head = cfg.model.head;
  m.head_layers = cfg.model.head_layers;
  return m;
}

DatasetSpec train_dataset_spec(const RunConfig& cfg) {
  auto s = dataset_spec(cfg, cfg.data.train_split);
  s.sampling = cfg.data.caption_sampling;
  return s;
}

DatasetSpec test_dataset_spec(const RunConfig& cfg) {
  return dataset_spec(cfg, cfg.data.test_split);
}

LoaderOptions train_loader_options(const RunConfig& cfg, int rank, int world_size) {
  auto o = loader_options(cfg);
  o.mode = cfg.data.caption_sampling == CaptionSampling::kOneCaptionPerVideo
               ? LoaderMode::kVideoCaption
               : LoaderMode::kCaptions;
  // train.batch_size is the global batch, as in the official configs: the same recipe on any
  // number of processes.
  const int64_t parts = cfg.train.grad_accum * world_size;
  if (cfg.train.batch_size % parts != 0) {
    throw ConfigError("", "train.batch_size",
                      fmt::format("{} is the global batch and must divide into WORLD_SIZE x "
                                  "train.grad_accum = {} x {} equal micro-batches",
                                  cfg.train.batch_size, world_size, cfg.train.grad_accum));
  }
  o.batch_size = cfg.train.batch_size / parts;
  o.rank = rank;
  o.world_size = world_size;
  o.prefetch = cfg.data.prefetch * o.batch_size;
  o.shuffle = true;
  return o;
}

LoaderOptions eval_loader_options(const RunConfig& cfg) {
  auto o = loader_options(cfg);
  o.mode = LoaderMode::kVideos;
  o.batch_size = cfg.eval.batch_size;
  o.prefetch = cfg.data.prefetch * o.batch_size;
  o.shuffle = false;
  return o;
}

MetricsOptions metrics_options(const RunConfig& cfg) {
  MetricsOptions m;
  m.convention = cfg.eval.convention;
  m.chunk_size = cfg.eval.chunk;
  m.dsl = cfg.eval.dsl;
  return m;
}

}  // namespace mva
