// The CSV, TSV and list annotation readers on arbitrary bytes. The first byte picks the reader;
// the rest is its file, or its two files separated by "\n%%\n" (fuzz_support.h, split_files).
#include "annotation_readers.h"

namespace {

using mva::fuzz::spec;
using mva::fuzz::write_file;

// MSR-VTT test: MSRVTT_JSFUSION_test.csv (RFC 4180 quoting).
void msrvtt_test(const std::filesystem::path& dir, std::string_view a,
                 std::optional<std::string_view>) {
  write_file(dir, "MSRVTT_JSFUSION_test.csv", a);
  mva::read_msrvtt(spec("msrvtt", "test", dir));
}

// MSVD: test_list.txt, then raw-captions.pkl.
void msvd(const std::filesystem::path& dir, std::string_view a, std::optional<std::string_view> b) {
  write_file(dir, "test_list.txt", a);
  if (b) write_file(dir, "raw-captions.pkl", *b);
  mva::read_msvd(spec("msvd", "test", dir));
}

// LSMDC: the tab-separated test file.
void lsmdc(const std::filesystem::path& dir, std::string_view a, std::optional<std::string_view>) {
  write_file(dir, "LSMDC16_challenge_1000_publictect.csv", a);
  mva::read_lsmdc(spec("lsmdc", "test", dir));
}

void caption_csv(const std::filesystem::path& dir, std::string_view a,
                 std::optional<std::string_view>) {
  mva::read_caption_csv(spec("csv", "test", write_file(dir, "captions.csv", a)));
}

constexpr std::array<mva::fuzz::AnnotationReader, 4> kReaders = {msrvtt_test, msvd, lsmdc,
                                                                 caption_csv};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mva::fuzz::run_annotation_reader(kReaders, data, size);
}
