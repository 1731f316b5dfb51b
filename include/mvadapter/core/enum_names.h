#pragma once
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mvadapter/core/error.h"

namespace mva {

/// One value of an enumeration and the word configs, files and messages use for it.
template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

/// The name table of an enumeration E: each layer that defines an option enum declares, next to
/// it, `constexpr std::array<EnumName<E>, N> enum_names(E)` (found by argument-dependent lookup;
/// the argument only selects the table). Its order is the order messages list the choices in.
/// Every function below reads that one table, so a name is spelt in exactly one place.
template <typename E>
constexpr auto enum_table() {
  return enum_names(E{});
}

/// The value named `name` (exact, case-sensitive), or nullopt.
template <typename E>
std::optional<E> enum_from_name(std::string_view name) {
  for (const auto& entry : enum_table<E>()) {
    if (entry.name == name) return entry.value;
  }
  return std::nullopt;
}

/// The name of `value`. Throws Error for a value outside the table (a cast integer).
template <typename E>
std::string enum_name(E value) {
  for (const auto& entry : enum_table<E>()) {
    if (entry.value == value) return std::string(entry.name);
  }
  throw Error("enum_name: a value of an enumeration has no name (" +
              std::to_string(static_cast<long long>(value)) + ")");
}

/// Every name of E, in table order.
template <typename E>
std::vector<std::string> enum_name_list() {
  std::vector<std::string> out;
  for (const auto& entry : enum_table<E>()) out.emplace_back(entry.name);
  return out;
}

/// The names of E joined for a message: "a, b, c" (`last` = ", ") or "a, b or c" (`last` =
/// " or ").
template <typename E>
std::string enum_choices(std::string_view last = ", ") {
  const auto table = enum_table<E>();
  std::string out;
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (i > 0) out += i + 1 == table.size() ? last : std::string_view(", ");
    out += table[i].name;
  }
  return out;
}

/// The value named `name`; otherwise throws Error "<field>: '<name>' is not one of: a, b, c".
template <typename E>
E parse_enum(std::string_view name, std::string_view field) {
  if (auto v = enum_from_name<E>(name)) return *v;
  throw Error(std::string(field) + ": '" + std::string(name) +
              "' is not one of: " + enum_choices<E>());
}

}  // namespace mva
