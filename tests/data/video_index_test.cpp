#include "mvadapter/data/video_index.h"

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
  const VideoIndex index(root, /*recursive=*/true, VideoIndex::default_extensions(), {"clipA"});
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
