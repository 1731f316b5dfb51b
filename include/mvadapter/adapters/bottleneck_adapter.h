#pragma once
#include <torch/nn.h>

#include "mvadapter/adapters/adapter_config.h"
#include "mvadapter/adapters/cross_modal_tying.h"
#include "mvadapter/adapters/projection.h"
#include "mvadapter/clip/transformer.h"

namespace mva {

/// Plain bottleneck adapter (AdaptFormer / "Down&Up" ablation): scale · up(act(down(x))), on
/// every token, optionally tied. Used by both branches in the baselines.
class BottleneckAdapterImpl : public MlpAdapterImpl {
 public:
  BottleneckAdapterImpl(int64_t width, const BranchAdapterConfig& cfg, const TyingConfig& tying,
                        torch::Tensor shared, bool video_init);
  torch::Tensor forward(const torch::Tensor& x, const AdapterContext& ctx) override;

  Projection down{nullptr};
  torch::nn::Linear up{nullptr};

 private:
  BranchTying tying_;
  double scale_;
  bool relu_;
};
TORCH_MODULE(BottleneckAdapter);

}  // namespace mva
