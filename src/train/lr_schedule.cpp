#include "mvadapter/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "mvadapter/core/error.h"

namespace mva {

ScheduleKind parse_schedule_kind(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<ScheduleKind>(name)) return *v;
  throw Error(fmt::format("{}: unknown schedule '{}', expected {}", field, name,
                          enum_choices<ScheduleKind>(" or ")));
}

std::string to_string(ScheduleKind kind) {
  return enum_name(kind);
}

double lr_factor(int64_t step, int64_t total_steps, double warmup, ScheduleKind kind) {
  if (total_steps <= 0) {
    throw Error(fmt::format("lr schedule: total_steps is {}, expected > 0", total_steps));
  }
  if (step < 0) throw Error(fmt::format("lr schedule: step is {}, expected >= 0", step));
  if (!(warmup >= 0.0 && warmup < 1.0)) {
    throw Error(fmt::format("lr schedule: warmup is {}, expected a fraction in [0, 1)", warmup));
  }
  const double x = static_cast<double>(step) / static_cast<double>(total_steps);
  if (x < warmup) return x / warmup;
  switch (kind) {
    case ScheduleKind::kCosine:
      return 0.5 * (1.0 + std::cos(M_PI * x));
    case ScheduleKind::kLinear:
      return std::max((x - 1.0) / (warmup - 1.0), 0.0);
    case ScheduleKind::kConstant:
      return 1.0;
  }
  return 1.0;
}

}  // namespace mva
