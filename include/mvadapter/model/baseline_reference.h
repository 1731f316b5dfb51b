#pragma once
#include <filesystem>
#include <string>

#include "mvadapter/model/reference_check.h"

namespace mva {

/// True when `dir` holds a baseline fixture (a meta.json naming the method), not the
/// mv_adapter_tiny layout.
bool is_baseline_fixture(const std::filesystem::path& dir);

/// Checks one baseline module against the golden tensors its authors' code wrote
/// (tests/fixtures/baselines/<method>: meta.json with the method and sizes, io.safetensors with
/// `in.*`, `out.*`, `grad.in.*`, `param.<authors' name>`, `grad.<authors' name>`). Builds our
/// module with the fixture's sizes, loads the parameters by the authors' names, runs the forward
/// and the backward of the fixture's loss `sum(out.y * in.loss_weight)` in `precision` ("fp64" or
/// "fp32") and compares the output, the loss, the input gradient and every parameter gradient.
/// Methods: convpass, st_adapter; any other is an Error naming the known ones.
ReferenceReport check_baseline_reference(const std::filesystem::path& dir, double tolerance = 1e-4,
                                         const std::string& precision = "fp64");

}  // namespace mva
