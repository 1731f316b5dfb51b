#include "mvadapter/core/clock.h"

#include <ctime>
#include <regex>

#include <gtest/gtest.h>

namespace mva {
namespace {

TEST(Clock, IsoAndReadableFormsOfTheCurrentUtcTime) {
  const std::time_t before = std::time(nullptr);
  const auto iso = utc_now();
  ASSERT_TRUE(std::regex_match(iso, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"))) << iso;
  // Parsing it back as UTC lands within a few seconds of time(): the field order and zone are
  // right.
  std::tm tm{};
  ASSERT_NE(strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm), nullptr);
  EXPECT_LE(std::abs(static_cast<long>(timegm(&tm) - before)), 5L);
  const auto readable = utc_now_readable();
  EXPECT_TRUE(std::regex_match(readable, std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC)")))
      << readable;
}

}  // namespace
}  // namespace mva
