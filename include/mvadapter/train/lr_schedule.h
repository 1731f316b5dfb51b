#pragma once
#include <cstdint>
#include <string>

#include "mvadapter/core/enum_names.h"

namespace mva {

/// The shape of the learning rate after the linear warm-up (the official BertAdam schedules).
enum class ScheduleKind {
  kCosine,    ///< 0.5·(1 + cos(π·x)) over GLOBAL progress x (official `warmup_cosine`)
  kLinear,    ///< (x - 1)/(warmup - 1), floored at 0 (official `warmup_linear`)
  kConstant,  ///< 1 (official `warmup_constant`)
};
/// cosine, linear, constant (`train.schedule`).
constexpr std::array<EnumName<ScheduleKind>, 3> enum_names(ScheduleKind) {
  return {{{ScheduleKind::kCosine, "cosine"},
           {ScheduleKind::kLinear, "linear"},
           {ScheduleKind::kConstant, "constant"}}};
}

/// "cosine" | "linear" | "constant" -> ScheduleKind; throws Error naming `field` otherwise.
ScheduleKind parse_schedule_kind(const std::string& name, const std::string& field);
std::string to_string(ScheduleKind kind);

/// The factor the base learning rate is multiplied by for the update that follows `step` updates
/// already taken (0 for the very first one), with x = step / total_steps: x / warmup while
/// x < warmup, then the shape of `kind`. `warmup` is a fraction of total_steps in [0, 1).
/// Because the cosine runs over the whole of x, it is 0.5·(1 + cos(π·warmup)) (≈ 0.976 for 0.1)
/// right after the warm-up, as in the official code. Throws Error for total_steps <= 0, step < 0
/// or warmup outside [0, 1).
double lr_factor(int64_t step, int64_t total_steps, double warmup, ScheduleKind kind);

}  // namespace mva
