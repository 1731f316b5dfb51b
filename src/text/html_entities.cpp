#include "html_entities.h"

#include <algorithm>
#include <iterator>

namespace mva::detail {
namespace {

constexpr HtmlEntity kEntities[] = {
#include "html_entities.inc"
};

}  // namespace

const HtmlEntity* html5_entities_begin() {
  return std::begin(kEntities);
}

const HtmlEntity* html5_entities_end() {
  return std::end(kEntities);
}

const std::string_view* find_html5_entity(std::string_view name) {
  auto it = std::lower_bound(std::begin(kEntities), std::end(kEntities), name,
                             [](const HtmlEntity& e, std::string_view n) { return e.name < n; });
  return it != std::end(kEntities) && it->name == name ? &it->value : nullptr;
}

}  // namespace mva::detail
