#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mvadapter/data/video_loader.h"

namespace mva {

/// A PNG grid of a clip's crops, `columns` per row, each labelled with its source frame index and
/// its time in seconds (`sample_fps`: the decoder's frames per second), so a person can check the
/// sampling and the crop at a glance (`frames --sheet`, `serve`). Throws Error in a build without
/// video support.
std::vector<uint8_t> contact_sheet_png(const ClipFrames& clip, int columns, double sample_fps);

/// contact_sheet_png written to `path`; throws Error naming the path when it cannot be written.
void write_contact_sheet(const std::filesystem::path& path, const ClipFrames& clip, int columns,
                         double sample_fps);

}  // namespace mva
