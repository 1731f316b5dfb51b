// The JSON annotation readers on arbitrary bytes. The first byte picks the reader; the rest is its
// file, or its two files separated by "\n%%\n" (fuzz_support.h, split_files).
#include "annotation_readers.h"

namespace {

using mva::fuzz::spec;
using mva::fuzz::write_file;

// MSR-VTT train: MSRVTT_data.json, then the train CSV naming the videos.
void msrvtt_train(const std::filesystem::path& dir, std::string_view a,
                  std::optional<std::string_view> b) {
  write_file(dir, "MSRVTT_data.json", a);
  if (b) write_file(dir, "MSRVTT_train.9k.csv", *b);
  mva::read_msrvtt(spec("msrvtt", "train", dir));
}

// DiDeMo: test_data.json, then test_list.txt.
void didemo(const std::filesystem::path& dir, std::string_view a,
            std::optional<std::string_view> b) {
  write_file(dir, "test_data.json", a);
  if (b) write_file(dir, "test_list.txt", *b);
  mva::read_didemo(spec("didemo", "test", dir));
}

// ActivityNet: val_1.json, then the optional val_ids.json.
void activitynet(const std::filesystem::path& dir, std::string_view a,
                 std::optional<std::string_view> b) {
  write_file(dir, "val_1.json", a);
  if (b) write_file(dir, "val_ids.json", *b);
  mva::read_activitynet(spec("activitynet", "val", dir));
}

void unified(const std::filesystem::path& dir, std::string_view a,
             std::optional<std::string_view>) {
  mva::read_unified_json(spec("unified", "test", write_file(dir, "unified.json", a)));
}

void jsonl(const std::filesystem::path& dir, std::string_view a, std::optional<std::string_view>) {
  mva::read_jsonl(spec("jsonl", "test", write_file(dir, "captions.jsonl", a)));
}

constexpr std::array<mva::fuzz::AnnotationReader, 5> kReaders = {msrvtt_train, didemo, activitynet,
                                                                 unified, jsonl};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mva::fuzz::run_annotation_reader(kReaders, data, size);
}
