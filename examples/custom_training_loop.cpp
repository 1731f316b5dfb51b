// A training loop of your own on the library's parts: the model and the data loader built in
// code, the library's contrastive loss and optimiser groups, then the library's evaluation.
//   custom_training_loop VIDEO_DIR OUT_CHECKPOINT
// Each video of VIDEO_DIR gets one caption, "video <file name>"; the loop trains MV-Adapter on
// those pairs, evaluates text -> video retrieval on the same pairs before and after, and saves
// the adapter weights (embed_and_search loads them).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <mvadapter/mvadapter.h>
#include <torch/torch.h>

#include "example_config.h"

namespace fs = std::filesystem;

namespace {

// One caption per video file: the data a dataset reader would otherwise produce.
mva::Manifest manifest_of(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  mva::Manifest m;
  m.dataset = "example";
  m.split = "train";
  for (const auto& f : files) {
    mva::VideoEntry video;
    video.id = f.stem().string();
    video.path = f;
    m.captions.push_back({static_cast<int64_t>(m.videos.size()), "video " + video.id});
    m.videos.push_back(video);
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s VIDEO_DIR OUT_CHECKPOINT\n", argv[0]);
    return 2;
  }
  try {
    mva::set_threads(1);
    const mva::RunConfig cfg = example_config();
    const mva::Manifest pairs = manifest_of(argv[1]);

    mva::RetrievalModel model = mva::build_model(cfg);
    auto tokenize = mva::make_tokenize_fn(std::make_shared<const mva::ClipTokenizer>(),
                                          cfg.data.words, model->clip->config().vocab_size);
    mva::LoaderOptions loader_opts = mva::train_loader_options(cfg);
    mva::VideoLoader loader(pairs, loader_opts, tokenize);
    mva::Evaluator evaluator(pairs, mva::evaluator_options(cfg), tokenize);
    const double r1_before = evaluator.evaluate(*model).metrics.t2v.r1;

    // The official optimiser groups (adapters / CLIP biases, decay / no decay), warm-up + cosine
    // over every step of the run.
    const int64_t steps_per_epoch =
        (static_cast<int64_t>(pairs.captions.size()) + loader_opts.batch_size - 1) /
        loader_opts.batch_size;
    mva::OptimizerOptions opt_opts = mva::trainer_options(cfg, "").optimizer;
    mva::Optimizer optimizer(*model, opt_opts, cfg.train.epochs * steps_per_epoch);
    std::printf("trainable parameters: %lld\n",
                static_cast<long long>(mva::parameter_report(*model).trainable));

    std::vector<double> epoch_loss;
    for (int64_t epoch = 0; epoch < cfg.train.epochs; ++epoch) {
      model->train();
      loader.start_epoch(epoch);
      double sum = 0.0;
      int64_t batches = 0;
      while (auto batch = loader.next()) {
        auto video = model->embed_videos(mva::model_frames(*batch, torch::kCPU), batch->frame_mask);
        auto text = model->embed_texts(batch->token_ids);
        auto loss = mva::contrastive_loss(model->logits(text, video));
        optimizer.zero_grad();
        loss.backward();
        mva::clip_grad_norm(optimizer.parameters(), cfg.train.grad_clip);
        optimizer.step();
        mva::clamp_logit_scale(*model);
        sum += loss.item<double>();
        ++batches;
      }
      epoch_loss.push_back(sum / static_cast<double>(std::max<int64_t>(batches, 1)));
      std::printf("epoch %lld: loss %.4f\n", static_cast<long long>(epoch + 1), epoch_loss.back());
    }

    const mva::EvalResult after = evaluator.evaluate(*model);
    std::printf("loss: first epoch %.4f, last epoch %.4f\n", epoch_loss.front(), epoch_loss.back());
    std::printf("text -> video R@1: %.1f before training, %.1f after\n", r1_before,
                after.metrics.t2v.r1);
    std::printf("%s", after.tables().c_str());
    // With the run config and the backbone recorded, the checkpoint alone rebuilds this model
    // (mva::Retriever::from_checkpoint).
    mva::save_adapter_weights(*model, argv[2], mva::checkpoint_provenance(cfg, *model->clip));
    std::printf("adapter weights: %s\n", argv[2]);
  } catch (const std::exception& e) {  // mva::Error, and the file system's errors
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
