#pragma once
// Python's html.entities.html5 table (not installed), shared by html_unescape and ftfy's
// unescape_html in text_fix.cpp.
#include <string_view>

namespace mva::detail {

struct HtmlEntity {
  std::string_view name;   ///< without '&', with the ';' when the reference needs it ("amp;")
  std::string_view value;  ///< UTF-8
};

/// Every entry of html.entities.html5, sorted by name (bytes).
const HtmlEntity* html5_entities_begin();
const HtmlEntity* html5_entities_end();

/// The value of html.entities.html5[name], or nullptr.
const std::string_view* find_html5_entity(std::string_view name);

}  // namespace mva::detail
