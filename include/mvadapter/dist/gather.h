#pragma once
#include <torch/types.h>

namespace mva {

class ProcessGroup;

/// Autograd-aware all-gather of a [b, ...] tensor that every rank holds with the same b: the
/// forward returns [W·b, ...], the ranks' rows in rank order; the backward returns this rank's
/// rows of the gradient summed over ranks, times `grad_scale`. With every rank computing the same
/// loss over the gathered rows and the trainable gradients averaged over ranks afterwards, the
/// update is exactly what one process computes with the whole batch (DESIGN.md §8), also for
/// parameters used after the gather (logit_scale).
///
/// `grad_scale` = 1/W' reproduces the official runs on W' GPUs, whose gather returns only the
/// local slice of the gradient before DDP averages (`train.emulate_world_size`). `group` null
/// means one process: the forward is the identity and only the gradient scale applies.
torch::Tensor gather_rows(const torch::Tensor& x, ProcessGroup* group, double grad_scale = 1.0);

}  // namespace mva
