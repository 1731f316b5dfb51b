#include "mvadapter/data/video_loader.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {
namespace {

// splitmix64: a small, portable generator, so an order is the same with every standard library
// (std::uniform_int_distribution is not specified bit for bit).
struct StreamRng {
  uint64_t state;
  explicit StreamRng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t range) {  // uniform in [0, range) by rejection
    const uint64_t limit =
        std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % range;
    uint64_t x = next();
    while (x >= limit) x = next();
    return x % range;
  }
};

uint64_t stream_seed(uint64_t seed, int64_t epoch, uint64_t purpose) {
  StreamRng r(seed ^ (0x632BE59BD9B4E019ull * (static_cast<uint64_t>(epoch) + 1)) ^
              (purpose << 56));
  return r.next();
}

}  // namespace

ClipFrames load_video_clip(const VideoEntry& video, const ClipOptions& opts) {
  if (opts.frames < 1) throw Error(fmt::format("clip: frames = {} must be >= 1", opts.frames));
  const auto decoded = read_video(
      video, [&](int64_t n) { return sample_frames(n, opts.frames, opts.sampling); }, opts.decode);
  if (decoded.frames.empty()) {
    throw Error(fmt::format("{}: no frames in {} (window [{}, {}] s)", video.path.string(),
                            video.id.empty() ? "the video" : video.id, video.start_s, video.end_s));
  }
  const int64_t size = opts.transform.size;
  ClipFrames out;
  out.frames = torch::zeros({opts.frames, 3, size, size}, torch::kUInt8);
  out.mask = torch::zeros({opts.frames}, torch::kInt64);
  auto* mask = out.mask.data_ptr<int64_t>();
  for (size_t i = 0; i < decoded.frames.size(); ++i) {
    out.frames[static_cast<int64_t>(i)].copy_(
        resize_center_crop(decoded.frames[i], opts.transform));
    mask[i] = 1;
  }
  out.positions = decoded.positions;
  for (auto p : decoded.positions) out.source_index.push_back(decoded.sample_index[p]);
  out.num_sampled = decoded.num_sampled();
  out.decoded_frames = decoded.decoded_frames;
  out.fps = decoded.fps;
  return out;
}

OnError parse_on_error(const std::string& name) {
  if (auto v = enum_from_name<OnError>(name)) return *v;
  throw Error(fmt::format("on_error '{}': expected {}", name, enum_choices<OnError>(" or ")));
}

VideoLoader::VideoLoader(Manifest manifest, LoaderOptions opts, TokenizeFn tokenize)
    : manifest_(std::move(manifest)), opts_(std::move(opts)), tokenize_(std::move(tokenize)) {
  if (opts_.batch_size < 1) throw Error(fmt::format("loader: batch_size {} < 1", opts_.batch_size));
  if (opts_.threads < 1) throw Error(fmt::format("loader: threads {} < 1", opts_.threads));
  if (opts_.clip.frames < 1) throw Error(fmt::format("loader: frames {} < 1", opts_.clip.frames));
  if (opts_.max_words < 0) throw Error(fmt::format("loader: max_words {} < 0", opts_.max_words));
  if (opts_.world_size < 1 || opts_.rank < 0 || opts_.rank >= opts_.world_size) {
    throw Error(fmt::format("loader: rank {} is not in [0, world_size = {})", opts_.rank,
                            opts_.world_size));
  }
  if (opts_.mode != LoaderMode::kVideos && !tokenize_) {
    throw Error("loader: caption modes need a tokenize function");
  }
  captions_of_video_ = manifest_.captions_per_video();
  window_ =
      std::max<int64_t>(opts_.prefetch > 0 ? opts_.prefetch : 2 * opts_.batch_size, opts_.threads);
}

VideoLoader::~VideoLoader() {
  stop_workers();
}

std::vector<std::pair<int64_t, int64_t>> VideoLoader::epoch_order(int64_t epoch) const {
  std::vector<std::pair<int64_t, int64_t>> items;
  switch (opts_.mode) {
    case LoaderMode::kCaptions:
      for (size_t c = 0; c < manifest_.captions.size(); ++c) {
        items.emplace_back(static_cast<int64_t>(c), manifest_.captions[c].video);
      }
      break;
    case LoaderMode::kVideoCaption: {
      StreamRng pick(stream_seed(opts_.seed, epoch, 2));
      for (size_t v = 0; v < captions_of_video_.size(); ++v) {
        const auto& caps = captions_of_video_[v];
        if (caps.empty()) continue;  // nothing to pair it with
        items.emplace_back(caps[pick.below(caps.size())], static_cast<int64_t>(v));
      }
      break;
    }
    case LoaderMode::kVideos:
      for (size_t v = 0; v < manifest_.videos.size(); ++v) {
        items.emplace_back(-1, static_cast<int64_t>(v));
      }
      break;
  }
  if (opts_.shuffle && opts_.mode != LoaderMode::kVideos && items.size() > 1) {
    StreamRng rng(stream_seed(opts_.seed, epoch, 1));
    for (size_t i = items.size() - 1; i > 0; --i) std::swap(items[i], items[rng.below(i + 1)]);
  }
  if (opts_.world_size == 1 || items.empty()) return items;
  const auto world = static_cast<size_t>(opts_.world_size);
  const auto rank = static_cast<size_t>(opts_.rank);
  std::vector<std::pair<int64_t, int64_t>> shard;
  if (opts_.mode == LoaderMode::kVideos) {
    // Evaluation: contiguous shards that cover every video exactly once (the last may be short).
    const size_t per = (items.size() + world - 1) / world;
    for (size_t i = rank * per; i < std::min(items.size(), (rank + 1) * per); ++i) {
      shard.push_back(items[i]);
    }
    return shard;
  }
  // Training: the global order is cut into global batches of batch_size x world samples, and
  // rank r takes the r-th slice of each, so a step sees the same samples whatever the number of
  // ranks (and a run can resume on another number). Ranks step in lockstep, so the tail is
  // dropped (drop_last) or padded by wrapping around, as DistributedSampler does.
  const auto b = static_cast<size_t>(opts_.batch_size);
  const size_t global = b * world;
  const size_t total = opts_.drop_last ? items.size() / global * global
                                       : (items.size() + global - 1) / global * global;
  for (size_t start = 0; start < total; start += global) {
    for (size_t i = start + rank * b; i < start + (rank + 1) * b; ++i) {
      shard.push_back(items[i % items.size()]);
    }
  }
  return shard;
}

int64_t VideoLoader::samples_per_epoch() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<int64_t>(order_.size());
}

int64_t VideoLoader::position() const {
  std::lock_guard<std::mutex> lk(mu_);
  return cursor_;
}

LoaderStats VideoLoader::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void VideoLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lk(mu_);
  stopping_ = false;
  results_.clear();
}

void VideoLoader::start_epoch(int64_t epoch, int64_t start) {
  stop_workers();
  const auto order = epoch_order(epoch);
  {
    std::lock_guard<std::mutex> lk(mu_);
    order_.clear();
    for (const auto& [caption, video] : order) order_.push_back(Sample{caption, video});
    const auto n = static_cast<int64_t>(order_.size());
    cursor_ = next_claim_ = std::clamp<int64_t>(start, 0, n);
  }
  for (int i = 0; i < opts_.threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

VideoLoader::Result VideoLoader::decode_sample(const Sample& s) {
  Result r;
  const auto& video = manifest_.videos[static_cast<size_t>(s.video)];
  try {
    auto clip = load_video_clip(video, opts_.clip);
    r.frames = std::move(clip.frames);
    r.mask = std::move(clip.mask);
  } catch (const std::exception& e) {
    // mva::Error names the path; an OpenCV or LibTorch exception from inside the decoder is a
    // failure of this video too, not a reason to take the run down.
    r.error = dynamic_cast<const Error*>(&e) != nullptr
                  ? e.what()
                  : fmt::format("{}: {}", video.path.string(), e.what());
    return r;
  }
  if (s.caption >= 0) {
    try {
      const auto ids = tokenize_(manifest_.captions[static_cast<size_t>(s.caption)].text);
      if (static_cast<int64_t>(ids.size()) > opts_.max_words) {
        throw Error(fmt::format("caption {}: the tokenizer gave {} ids, more than max_words = {}",
                                s.caption, ids.size(), opts_.max_words));
      }
      r.tokens = torch::zeros({opts_.max_words}, torch::kInt64);
      std::copy(ids.begin(), ids.end(), r.tokens.data_ptr<int64_t>());
    } catch (const std::exception& e) {
      r.fatal = true;
      r.error = e.what();
      return r;
    }
  }
  r.ok = true;
  return r;
}

void VideoLoader::worker_loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    const auto n = static_cast<int64_t>(order_.size());
    cv_work_.wait(lk,
                  [&] { return stopping_ || next_claim_ >= n || next_claim_ < cursor_ + window_; });
    if (stopping_ || next_claim_ >= n) return;
    const int64_t pos = next_claim_++;
    stats_.max_in_flight = std::max(stats_.max_in_flight, next_claim_ - cursor_);
    const Sample s = order_[static_cast<size_t>(pos)];
    Result r;
    if (auto bad = bad_videos_.find(s.video); bad != bad_videos_.end()) {
      r.error = bad->second;  // failed before: do not decode it again
    } else {
      lk.unlock();
      r = decode_sample(s);
      lk.lock();
      if (!r.ok && !r.fatal) bad_videos_.emplace(s.video, r.error);
    }
    results_.emplace(pos, std::move(r));
    cv_result_.notify_all();
  }
}

std::optional<VideoBatch> VideoLoader::next() {
  std::vector<Result> items;
  std::vector<Sample> samples;
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (workers_.empty()) throw Error("loader: next() called before start_epoch()");
    const auto n = static_cast<int64_t>(order_.size());
    while (static_cast<int64_t>(items.size()) < opts_.batch_size && cursor_ < n) {
      cv_result_.wait(lk, [&] { return results_.count(cursor_) != 0; });
      auto node = results_.extract(cursor_);
      const Sample s = order_[static_cast<size_t>(cursor_)];
      ++cursor_;
      cv_work_.notify_all();
      Result r = std::move(node.mapped());
      if (r.ok) {
        items.push_back(std::move(r));
        samples.push_back(s);
        continue;
      }
      if (r.fatal) {
        lk.unlock();
        stop_workers();
        throw Error(r.error);
      }
      const auto& video = manifest_.videos[static_cast<size_t>(s.video)];
      if (opts_.on_error == OnError::kFail) {
        lk.unlock();
        stop_workers();
        throw Error(
            fmt::format("video {} ({}) failed: {}", video.id, video.path.string(), r.error));
      }
      ++stats_.samples_skipped;
      if (reported_.insert(s.video).second) {
        stats_.failed_videos.push_back(s.video);
        spdlog::warn("skipping video {} ({}): {}", video.id, video.path.string(), r.error);
      }
    }
    if (items.empty() ||
        (opts_.drop_last && static_cast<int64_t>(items.size()) < opts_.batch_size)) {
      return std::nullopt;
    }
    stats_.samples_done += static_cast<int64_t>(items.size());
    ++stats_.batches_done;
  }

  const auto b = static_cast<int64_t>(items.size());
  std::vector<torch::Tensor> frames, masks, tokens;
  for (auto& r : items) {
    frames.push_back(r.frames);
    masks.push_back(r.mask);
    if (r.tokens.defined()) tokens.push_back(r.tokens);
  }
  VideoBatch batch;
  batch.frame_mask = torch::stack(masks);
  // uint8 until it reaches the model's device: a quarter of the bytes to copy, and the copy can
  // run asynchronously from page-locked memory.
  batch.frames = torch::stack(frames);
  if (opts_.pin_memory) batch.frames = batch.frames.pin_memory();
  batch.token_ids = tokens.empty() ? torch::zeros({b, 0}, torch::kInt64) : torch::stack(tokens);
  batch.caption_index = torch::empty({b}, torch::kInt64);
  batch.video_index = torch::empty({b}, torch::kInt64);
  for (int64_t i = 0; i < b; ++i) {
    batch.caption_index[i] = samples[static_cast<size_t>(i)].caption;
    batch.video_index[i] = samples[static_cast<size_t>(i)].video;
  }
  return batch;
}

torch::Tensor model_frames(const VideoBatch& batch, torch::Device device) {
  const bool async = batch.frames.is_pinned() && device.is_cuda();
  auto frames = normalize_clip(batch.frames.to(device, /*non_blocking=*/async));
  auto mask = batch.frame_mask.to(device, /*non_blocking=*/false);
  // The reference pads after normalising, with zeros: a padded frame is 0, not -mean/std.
  return frames.masked_fill_((mask == 0).view({mask.size(0), -1, 1, 1, 1}), 0.0);
}

}  // namespace mva
