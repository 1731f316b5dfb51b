#include "mvadapter/core/enum_names.h"

#include <gtest/gtest.h>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

// A table in the shape every option enum of the library declares beside itself.
enum class Fruit { kApple, kBloodOrange, kPear };
constexpr std::array<EnumName<Fruit>, 3> enum_names(Fruit) {
  return {
      {{Fruit::kApple, "apple"}, {Fruit::kBloodOrange, "blood_orange"}, {Fruit::kPear, "pear"}}};
}

enum class Switch { kOff, kOn };
constexpr std::array<EnumName<Switch>, 2> enum_names(Switch) {
  return {{{Switch::kOff, "off"}, {Switch::kOn, "on"}}};
}

TEST(EnumNames, ParsesEveryNameToItsValue) {
  EXPECT_EQ(parse_enum<Fruit>("apple", "f"), Fruit::kApple);
  EXPECT_EQ(parse_enum<Fruit>("blood_orange", "f"), Fruit::kBloodOrange);
  EXPECT_EQ(parse_enum<Fruit>("pear", "f"), Fruit::kPear);
  EXPECT_EQ(enum_from_name<Switch>("on"), Switch::kOn);
}

TEST(EnumNames, NamesAreExactAndCaseSensitive) {
  EXPECT_FALSE(enum_from_name<Fruit>("Apple"));
  EXPECT_FALSE(enum_from_name<Fruit>("apple "));
  EXPECT_FALSE(enum_from_name<Fruit>("appl"));
  EXPECT_FALSE(enum_from_name<Fruit>(""));
  // A name of another enumeration is not one of this one's.
  EXPECT_FALSE(enum_from_name<Fruit>("on"));
}

TEST(EnumNames, PrintsTheNameParseReadsBack) {
  EXPECT_EQ(enum_name(Fruit::kBloodOrange), "blood_orange");
  EXPECT_EQ(enum_name(Switch::kOff), "off");
  for (auto f : {Fruit::kApple, Fruit::kBloodOrange, Fruit::kPear}) {
    EXPECT_EQ(parse_enum<Fruit>(enum_name(f), "f"), f);
  }
}

TEST(EnumNames, AValueOutsideTheTableIsAnErrorNotAnEmptyName) {
  EXPECT_ERROR_CONTAINS(enum_name(static_cast<Fruit>(7)), "has no name (7)");
}

TEST(EnumNames, ChoicesListTheNamesInTableOrder) {
  EXPECT_EQ(enum_choices<Fruit>(), "apple, blood_orange, pear");
  EXPECT_EQ(enum_choices<Fruit>(" or "), "apple, blood_orange or pear");
  EXPECT_EQ(enum_choices<Switch>(" or "), "off or on");
  EXPECT_EQ(enum_name_list<Fruit>(), (std::vector<std::string>{"apple", "blood_orange", "pear"}));
}

TEST(EnumNames, UnknownNameErrorNamesTheFieldTheWordAndEveryChoice) {
  try {
    parse_enum<Fruit>("plum", "basket.fruit");
    FAIL() << "plum accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "basket.fruit: 'plum' is not one of: apple, blood_orange, pear");
  }
}

TEST(ConfigError, CarriesSourceKeyAndProblemAndComposesTheMessage) {
  const ConfigError e("x.yaml:3", "train.lr", "-1 is out of range");
  EXPECT_EQ(e.source(), "x.yaml:3");
  EXPECT_EQ(e.key(), "train.lr");
  EXPECT_EQ(e.problem(), "-1 is out of range");
  EXPECT_STREQ(e.what(), "x.yaml:3: train.lr: -1 is out of range");
  // Without a source (a lower layer's check) the message starts at the key.
  EXPECT_STREQ(ConfigError("", "adapters.lora.rank", "-1 is negative").what(),
               "adapters.lora.rank: -1 is negative");
  // Caught as the library's one exception type by code that does not need the parts.
  EXPECT_THROW(throw ConfigError("--set", "k", "p"), Error);
}

}  // namespace
}  // namespace mva
