#pragma once
// Inputs shared by the tests that run the CLI end to end on the real fixture clips.
#include <filesystem>
#include <string>
#include <vector>

namespace mva::test {

/// Writes the tiny fixture CLIP (tests/fixtures/mv_adapter_tiny: width 128, 2 layers, 32 px,
/// D = 32) with its token table grown to the full BPE vocabulary, so real captions can be
/// encoded; the extra rows are random (seed 0).
void write_full_vocab_tiny_clip(const std::filesystem::path& out);

/// File names of the 8 real MSR-VTT fixture clips (tests/fixtures/video/videos), sorted.
std::vector<std::string> fixture_clip_files();

}  // namespace mva::test
