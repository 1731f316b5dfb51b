#include "mvadapter/data/video_index.h"

#include <cctype>
#include <fstream>

#include "test_support.h"

namespace mva {
namespace {

namespace fs = std::filesystem;
using test::temp_dir;

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p).put('x');
}

TEST(VideoIndex, PrefersEarlierExtensionsAndIgnoresOtherFiles) {
  auto root = temp_dir("vindex");
  touch(root / "video7.webm");
  touch(root / "video7.mp4");
  touch(root / "video8.WEBM");
  touch(root / "video9.txt");
  touch(root / "sub" / "video10.mp4");
  const VideoIndex flat(root, /*recursive=*/false);
  ASSERT_NE(flat.find_stem("video7"), nullptr);
  EXPECT_EQ(*flat.find_stem("video7"), root / "video7.mp4");
  ASSERT_NE(flat.find_stem("video8"), nullptr);  // extension case does not matter
  EXPECT_EQ(*flat.find_stem("video8"), root / "video8.WEBM");
  EXPECT_EQ(flat.find_stem("video9"), nullptr);
  EXPECT_EQ(flat.find_stem("video10"), nullptr);  // not recursive
  EXPECT_EQ(flat.size(), 3u);

  const VideoIndex deep(root, /*recursive=*/true);
  ASSERT_NE(deep.find_stem("video10"), nullptr);
  EXPECT_EQ(*deep.find_stem("video10"), root / "sub" / "video10.mp4");
  ASSERT_NE(deep.find_name("video7.webm"), nullptr);
  EXPECT_EQ(*deep.find_name("video7.webm"), root / "video7.webm");
}

TEST(VideoIndex, IndexesExactlyTheFilesIsVideoFileAccepts) {
  // One list serves the index and `mvadapter preprocess` (is_video_file): a file one of them
  // takes as a video the other takes too, including the rarer containers.
  auto root = temp_dir("vindex_exts");
  size_t k = 0;
  for (const auto& ext : video_extensions()) {
    const fs::path p = root / ("clip" + std::to_string(k++) + "." + ext);
    touch(p);
    EXPECT_TRUE(is_video_file(p)) << p;
    std::string upper = ext;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_TRUE(is_video_file(root / ("UPPER." + upper))) << ext;
  }
  touch(root / "clip_wmv.wmv");
  touch(root / "clip_ogv.ogv");
  touch(root / "notes.txt");
  touch(root / "no_extension");
  const VideoIndex index(root, /*recursive=*/false);
  EXPECT_EQ(index.size(), video_extensions().size() + 2);
  EXPECT_NE(index.find_stem("clip_wmv"), nullptr);
  EXPECT_NE(index.find_stem("clip_ogv"), nullptr);
  EXPECT_FALSE(is_video_file(root / "notes.txt"));
  EXPECT_FALSE(is_video_file(root / "no_extension"));
  EXPECT_FALSE(is_video_file(root / "frames.jpg"));
}

TEST(VideoIndex, StemKeepsDotsBeforeTheExtension) {
  auto root = temp_dir("vindex");
  touch(root / "0001_American_Beauty" / "0001_American_Beauty_00.00.51.926-00.00.54.129.avi");
  const VideoIndex index(root, /*recursive=*/true);
  EXPECT_NE(index.find_stem("0001_American_Beauty_00.00.51.926-00.00.54.129"), nullptr);
}

TEST(VideoIndex, FrameFoldersAreRecordedAndNotDescended) {
  auto root = temp_dir("vindex");
  touch(root / "frames" / "clipA" / "000001.jpg");
  touch(root / "frames" / "clipA" / "inner.mp4");  // inside a frame folder: not indexed
  const VideoIndex index(root, /*recursive=*/true, video_extensions(), {"clipA"});
  ASSERT_NE(index.find_frame_folder("clipA"), nullptr);
  EXPECT_EQ(*index.find_frame_folder("clipA"), root / "frames" / "clipA");
  EXPECT_EQ(index.find_stem("inner"), nullptr);
}

TEST(VideoIndex, MissingRootIsEmptyNotAnError) {
  const VideoIndex index("/nonexistent/videos", /*recursive=*/true);
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.find_stem("video0"), nullptr);
}

}  // namespace
}  // namespace mva
