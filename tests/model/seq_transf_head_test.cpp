// CLIP4Clip's seqTransf head: the frame mask, the start from CLIP's text tower, and the head as a
// RetrievalModel's video pooling. Golden tensors: tests/model/seqtransf_reference_test.cpp.
#include "mvadapter/model/seq_transf_head.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/model/retrieval_model.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(SeqTransfHead, PaddedFramesChangeNothingForRealFrames) {
  torch::manual_seed(0);
  SeqTransfHead head(64, 2, 16);
  auto frames = torch::randn({2, 5, 64});
  auto mask = torch::tensor({{1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}});
  auto out = head->forward(frames, mask);
  auto changed = frames.clone();
  changed.slice(1, 3) = 100.0 * torch::randn({2, 2, 64});  // video 0's padding, and video 1
  auto out2 = head->forward(changed, mask);
  EXPECT_TENSOR_NEAR(out2[0].slice(0, 0, 3), out[0].slice(0, 0, 3), 1e-6);
  EXPECT_GT(test::relative_error(out2[1], out[1]), 1e-2) << "real frames do change the output";
  EXPECT_TENSOR_NEAR(RetrievalModelImpl::pool_frames(out2, mask)[0],
                     RetrievalModelImpl::pool_frames(out, mask)[0], 1e-6);
  // Without padding the same three frames give the same output as the padded video.
  auto alone = head->forward(frames[0].slice(0, 0, 3).unsqueeze(0), torch::ones({1, 3}));
  EXPECT_TENSOR_NEAR(alone[0], out[0].slice(0, 0, 3), 1e-5);
}

TEST(SeqTransfHead, AddsTheOriginalFramesNotThePositions) {
  torch::manual_seed(0);
  SeqTransfHead head(64, 1, 8);
  {
    // With a zero c_proj and out_proj the transformer is the identity: out = frames + pos + frames.
    torch::NoGradGuard no_grad;
    auto b = head->transformer->block(0);
    b->attn->out_proj->weight.zero_();
    b->attn->out_proj->bias.zero_();
    b->mlp->c_proj->weight.zero_();
    b->mlp->c_proj->bias.zero_();
  }
  auto frames = torch::randn({1, 3, 64});
  auto out = head->forward(frames, torch::ones({1, 3}));
  auto pos = head->frame_position_embeddings->weight.slice(0, 0, 3);
  EXPECT_TENSOR_NEAR(out[0], 2 * frames[0] + pos, 1e-6);
}

TEST(SeqTransfHead, StartsFromClipsTextPositionsAndFirstBlocks) {
  torch::manual_seed(0);
  auto clip = make_random_clip(ClipConfig::named("Tiny-32"));  // text width = embed dim = 128
  SeqTransfHead head(128, 2, clip->config().context_length);
  ASSERT_TRUE(head->can_init_from_clip(*clip));
  head->init_from_clip(*clip);
  EXPECT_TRUE(torch::equal(head->frame_position_embeddings->weight, clip->positional_embedding));
  for (int64_t i = 0; i < 2; ++i) {
    auto src = clip->transformer->block(i)->named_parameters();
    auto dst = head->transformer->block(i)->named_parameters();
    EXPECT_EQ(dst.size(), src.size());
    for (const auto& p : dst) EXPECT_TRUE(torch::equal(p.value(), src[p.key()])) << i << p.key();
  }
  // More head blocks than text blocks, or another width: CLIP cannot seed it.
  EXPECT_FALSE(SeqTransfHead(128, 5, 16)->can_init_from_clip(*clip));
  EXPECT_FALSE(SeqTransfHead(64, 1, 16)->can_init_from_clip(*clip));
  EXPECT_ERROR_CONTAINS(SeqTransfHead(64, 1, 16)->init_from_clip(*clip), "cannot start from");
}

TEST(SeqTransfHead, RetrievalModelSeedsTheHeadAndTrainsOnlyIt) {
  torch::manual_seed(0);
  auto clip = make_random_clip(ClipConfig::named("Tiny-32"));
  RetrievalModelConfig cfg;
  cfg.adapters.video.enabled = cfg.adapters.text.enabled = false;
  cfg.adapters.tying.mode = TyingMode::kNone;
  cfg.train_clip_biases = false;
  cfg.head = VideoHead::kSeqTransf;
  cfg.head_layers = 3;
  RetrievalModel model(clip, cfg);
  ASSERT_TRUE(model->head);
  EXPECT_TRUE(torch::equal(model->head->frame_position_embeddings->weight,
                           model->clip->positional_embedding));
  int64_t head_params = 0;
  for (const auto& p : model->named_parameters()) {
    const bool in_head = p.key().rfind("head.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), in_head) << p.key();
    if (in_head) {
      head_params += p.value().numel();
      EXPECT_TRUE(is_adapter_tensor(p.key())) << p.key();
    }
  }
  // P·W + layers·(12 W² + 13 W), CLIP4Clip's count (meta.json of the fixture).
  EXPECT_EQ(head_params, 16 * 128 + 3 * (12 * 128 * 128 + 13 * 128));
  EXPECT_EQ(parameter_report(*model).trainable, head_params);
}

TEST(SeqTransfHead, AFewStepsOnTheTinyFixtureModelLowerTheLoss) {
  torch::manual_seed(0);
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModelConfig cfg;
  cfg.adapters.video.enabled = cfg.adapters.text.enabled = false;
  cfg.adapters.tying.mode = TyingMode::kNone;
  cfg.train_clip_biases = false;
  cfg.head = VideoHead::kSeqTransf;
  cfg.head_layers = 2;
  // The fixture CLIP's text width (128) is not its embed dim (32): the head keeps CLIP4Clip's
  // constructor init, which is what this test trains from.
  RetrievalModel model(load_clip(fx.dir / "clip.safetensors"), cfg);
  std::vector<torch::Tensor> params;
  for (const auto& p : model->parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  ASSERT_FALSE(params.empty());
  torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-3));
  const auto& video = fx.io.at("in.video");
  const auto& mask = fx.io.at("in.v_mask");
  const auto& text = fx.io.at("in.text");
  std::vector<double> losses;
  for (int step = 0; step < 8; ++step) {
    opt.zero_grad();
    auto loss =
        contrastive_loss(model->logits(model->embed_texts(text), model->embed_videos(video, mask)));
    loss.backward();
    opt.step();
    losses.push_back(loss.item<double>());
  }
  EXPECT_LT(losses.back(), losses.front() - 1e-3) << fmt::format("{}", fmt::join(losses, ", "));
}

}  // namespace
}  // namespace mva
