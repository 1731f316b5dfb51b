#include <cstdio>
#include <string>

#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/model/baseline_reference.h"
#include "mvadapter/model/reference_check.h"
#include "mvadapter/train/reference_replay.h"

namespace mva::cli {

void add_verify_reference_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "verify-reference",
      "Rebuild the official model of a golden-tensor folder (config.json, CLIP and adapter "
      "weights, io.safetensors), run its forward and backward, and print the worst error of "
      "every output and gradient. When the folder has train_steps.safetensors or "
      "dist_steps.safetensors, also replay those official training steps (BertAdam, clips, "
      "warm-up, logit clamp; W ranks emulated in one process) and print the worst error of the "
      "per-step losses, grad norms and final weights. A baseline fixture folder (meta.json naming "
      "the method, io.safetensors: tests/fixtures/baselines/<method>) checks that one module "
      "against its authors' code instead. Exits 1 when any exceeds the tolerance.");
  struct Opts {
    std::string dir;
    double tolerance = 1e-4;
    std::string precision = "fp64";
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("DIR", o->dir,
                  "folder laid out like tests/fixtures/mv_adapter_tiny or "
                  "tests/fixtures/baselines/<method>")
      ->required();
  cmd->add_option("--tolerance", o->tolerance, "largest relative error accepted")
      ->capture_default_str();
  cmd->add_option("--precision", o->precision, "fp64 (exact maths) or fp32 (the training path)")
      ->check(CLI::IsMember({"fp64", "fp32"}))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "intra-op threads (0 = all cores)");
  cmd->callback([o] {
    set_threads(o->threads);
    if (is_baseline_fixture(o->dir)) {
      auto report = check_baseline_reference(o->dir, o->tolerance, o->precision);
      std::fputs(report.to_string().c_str(), stdout);
      if (!report.ok()) {
        throw Error(o->dir + ": differs from the authors' reference (see the FAIL lines above)");
      }
      return;
    }
    auto report = verify_reference(o->dir, o->tolerance, o->precision);
    std::fputs(report.to_string().c_str(), stdout);
    bool ok = report.ok();
    for (const auto& fixture : training_fixtures_in(o->dir)) {
      ReplayOptions replay;
      replay.precision = o->precision;
      replay.tolerance = o->tolerance;
      auto steps = replay_training_steps(o->dir, fixture, replay);
      std::fputs(("\n" + steps.to_string()).c_str(), stdout);
      ok = ok && steps.ok();
    }
    if (!ok) throw Error(o->dir + ": differs from the reference (see the FAIL lines above)");
  });
}

}  // namespace mva::cli
