#pragma once
#include <string>

namespace mva {

/// The current UTC time as ISO 8601 ("2026-11-27T02:51:07Z"), the form every written record
/// (results.json, checkpoint and index metadata) carries.
std::string utc_now();

/// The current UTC time for people to read ("2026-11-27 02:51:07 UTC"), as reports show it.
std::string utc_now_readable();

}  // namespace mva
