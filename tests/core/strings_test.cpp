#include "mvadapter/core/strings.h"

#include <gtest/gtest.h>

namespace mva {
namespace {

TEST(Strings, AsciiLowerLowersLettersOnly) {
  EXPECT_EQ(ascii_lower("MP4"), "mp4");
  EXPECT_EQ(ascii_lower("Yes"), "yes");
  EXPECT_EQ(ascii_lower("a-Z_0.9@[`{"), "a-z_0.9@[`{");  // neighbours of the letter ranges
  EXPECT_EQ(ascii_lower(""), "");
  // UTF-8 "Ä.MOV" (0xC3 0x84): the multibyte letter stays, the ASCII part is lowered.
  EXPECT_EQ(ascii_lower("\xC3\x84.MOV"), "\xC3\x84.mov");
}

}  // namespace
}  // namespace mva
