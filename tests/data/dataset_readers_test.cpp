#include "mvadapter/data/dataset_readers.h"

#include <fstream>

#include <sys/resource.h>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

namespace fs = std::filesystem;
using test::fixture_path;
using test::temp_dir;
using Strings = std::vector<std::string>;

fs::path annotations(const std::string& dataset) {
  return fixture_path("annotations/" + dataset);
}

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p).put('x');
}

fs::path write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  return path;
}

// A writable copy of a fixture folder, for malformed variants.
fs::path copy_fixture(const std::string& dataset) {
  auto dir = temp_dir("ann_" + dataset);
  fs::copy(annotations(dataset), dir, fs::copy_options::recursive);
  return dir;
}

DatasetSpec spec(const std::string& format, const std::string& split, const fs::path& ann,
                 const fs::path& videos = {}) {
  DatasetSpec s;
  s.format = format;
  s.split = split;
  s.annotations = ann;
  s.videos = videos;
  return s;
}

Strings ids(const Manifest& m) {
  Strings out;
  for (const auto& v : m.videos) out.push_back(v.id);
  return out;
}

Strings texts(const Manifest& m) {
  Strings out;
  for (const auto& c : m.captions) out.push_back(c.text);
  return out;
}

std::vector<int64_t> caption_videos(const Manifest& m) {
  std::vector<int64_t> out;
  for (const auto& c : m.captions) out.push_back(c.video);
  return out;
}

std::string msrvtt_caption(int k, int video) {
  return "caption " + std::to_string(k) + " for video" + std::to_string(video) +
         " with a person, \"quoted\" and commas";
}

// ---- MSR-VTT ------------------------------------------------------------------------------------

TEST(MsrvttReader, Train9kHasEveryCaptionOfTheCsvVideosInJsonOrder) {
  const Manifest m = read_dataset(spec("msrvtt", "train", annotations("msrvtt")));
  EXPECT_EQ(m.dataset, "msrvtt");
  EXPECT_EQ(m.split, "train");
  // MSRVTT_train.9k.csv lists video0..video7; the JSON has 3 captions for each.
  EXPECT_EQ(ids(m), (Strings{"video0", "video1", "video2", "video3", "video4", "video5", "video6",
                             "video7"}));
  ASSERT_EQ(m.captions.size(), 24u);
  EXPECT_EQ(m.captions[0].text, msrvtt_caption(0, 0));
  EXPECT_EQ(m.captions[5].text, msrvtt_caption(2, 1));
  EXPECT_EQ(m.captions[5].video, 1);
  EXPECT_EQ(m.captions[23].text, msrvtt_caption(2, 7));
  EXPECT_EQ(m.captions[23].video, 7);
  EXPECT_EQ(m.sampling, CaptionSampling::kEveryCaption);
  // Whole files: the JSON's start/end times locate the clip in YouTube, not in the file.
  EXPECT_EQ(m.videos[0].start_s, -1.0);
  EXPECT_EQ(m.videos[0].end_s, -1.0);
}

TEST(MsrvttReader, Train7kAndOneCaptionPerVideoMode) {
  auto s = spec("msrvtt", "train", annotations("msrvtt"));
  s.msrvtt_train_csv = "MSRVTT_train.7k.csv";
  s.sampling = CaptionSampling::kOneCaptionPerVideo;
  const Manifest m = read_dataset(s);
  EXPECT_EQ(ids(m), (Strings{"video0", "video1", "video2", "video3", "video4", "video5"}));
  EXPECT_EQ(m.captions.size(), 18u);
  EXPECT_EQ(m.sampling, CaptionSampling::kOneCaptionPerVideo);
  const auto per_video = m.captions_per_video();
  EXPECT_EQ(per_video[4], (std::vector<int64_t>{12, 13, 14}));
}

TEST(MsrvttReader, Test1kAReadsQuotedSentences) {
  const Manifest m = read_dataset(spec("msrvtt", "test", annotations("msrvtt")));
  EXPECT_EQ(ids(m), (Strings{"video8", "video9", "video10", "video11"}));
  EXPECT_EQ(texts(m), (Strings{"a person is connecting something to system 0",
                               "a person is connecting something to system 1",
                               "a person is connecting something to system 2",
                               "a quoted sentence, with a comma"}));
  EXPECT_EQ(caption_videos(m), (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(MsrvttReader, FindsMp4ThenWebmAndLeavesMissingToTheLoader) {
  auto videos = temp_dir("msrvtt_videos");
  touch(videos / "video8.webm");
  touch(videos / "video9.mp4");
  touch(videos / "video9.webm");
  touch(videos / "video10.mp4");
  const Manifest m = read_dataset(spec("msrvtt", "test", annotations("msrvtt"), videos));
  EXPECT_EQ(m.videos[0].path, videos / "video8.webm");
  EXPECT_EQ(m.videos[1].path, videos / "video9.mp4");
  EXPECT_EQ(m.videos[2].path, videos / "video10.mp4");
  EXPECT_EQ(m.videos[3].path, videos / "video11.mp4");  // not there: the conventional name
  EXPECT_FALSE(m.videos[3].frame_folder);
  EXPECT_EQ(check_videos_exist(m), (std::vector<int64_t>{3}));

  auto strict = spec("msrvtt", "test", annotations("msrvtt"), videos);
  strict.require_videos = true;
  EXPECT_ERROR_CONTAINS(read_dataset(strict), "msrvtt/test: 1 of 4 videos not found");
  EXPECT_ERROR_CONTAINS(read_dataset(strict), "video11");
}

TEST(DropMissingVideos, RemovesMissingVideosWithTheirCaptionsAndRenumbers) {
  auto dir = temp_dir("drop_missing");
  touch(dir / "a.mp4");
  touch(dir / "c.mp4");
  touch(dir / "frames_d" / "000001.jpg");
  Manifest m;
  for (const std::string id : {"a", "b", "c", "d", "e"}) {
    VideoEntry v;
    v.id = id;
    v.path = id == "d" ? dir / "frames_d" : dir / (id + ".mp4");
    v.frame_folder = id == "d";
    m.videos.push_back(v);
  }
  m.captions = {{1, "b0"}, {0, "a0"}, {2, "c0"}, {1, "b1"}, {4, "e0"}, {3, "d0"}, {2, "c1"}};
  EXPECT_EQ(drop_missing_videos(m), 2);  // b and e
  EXPECT_EQ(ids(m), (Strings{"a", "c", "d"}));
  EXPECT_EQ(texts(m), (Strings{"a0", "c0", "d0", "c1"}));
  EXPECT_EQ(caption_videos(m), (std::vector<int64_t>{0, 1, 2, 1}));
  EXPECT_EQ(drop_missing_videos(m), 0);  // nothing left to drop
  EXPECT_EQ(m.captions.size(), 4u);
}

TEST(MsrvttReader, Mp4WinsOverAviOfTheSameName) {
  // The contrast to MSVD/LSMDC below: MSR-VTT ships .mp4, so .mp4 stays first.
  auto videos = temp_dir("msrvtt_avi");
  touch(videos / "video8.avi");
  touch(videos / "video8.mp4");
  const Manifest m = read_dataset(spec("msrvtt", "test", annotations("msrvtt"), videos));
  EXPECT_EQ(m.videos[0].path, videos / "video8.mp4");
}

TEST(MsrvttReader, CsvWithQuotedCommasAndEscapedQuotes) {
  auto dir = temp_dir("msrvtt_quoted");
  write_text(dir / "MSRVTT_JSFUSION_test.csv",
             "key,vid_key,video_id,sentence\n"
             "ret0,msr1,video1,\"a man, a plan\"\n"
             "ret1,msr2,video2,\"he said \"\"go\"\"\"\n"
             "ret2,msr3,video3,\"two\nlines\"\n");
  const Manifest m = read_dataset(spec("msrvtt", "test", dir));
  EXPECT_EQ(ids(m), (Strings{"video1", "video2", "video3"}));
  EXPECT_EQ(texts(m), (Strings{"a man, a plan", "he said \"go\"", "two\nlines"}));
}

TEST(MsrvttReader, MalformedFilesNameFileLineAndField) {
  auto dir = temp_dir("msrvtt_bad");
  write_text(dir / "MSRVTT_JSFUSION_test.csv", "key,vid_key,video_id\nret0,msr1,video1\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msrvtt", "test", dir)),
                        "MSRVTT_JSFUSION_test.csv line 1: no column 'sentence'");
  write_text(dir / "MSRVTT_JSFUSION_test.csv",
             "key,vid_key,video_id,sentence\nret0,msr1,video1,s\nret1,msr2,video2\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msrvtt", "test", dir)),
                        "MSRVTT_JSFUSION_test.csv line 3: expected 4 fields");

  write_text(dir / "MSRVTT_train.9k.csv", "video_id\nvideo0\nvideo1\n");
  write_text(dir / "MSRVTT_data.json",
             "{\"sentences\": [{\"video_id\": \"video0\", \"caption\": \"ok\"},\n"
             "                {\"video_id\": \"video1\", \"caption\": 7}]}\n");
  EXPECT_ERROR_CONTAINS(
      read_dataset(spec("msrvtt", "train", dir)),
      "MSRVTT_data.json: field sentences[1].caption: expected a string, got number");
  write_text(dir / "MSRVTT_data.json",
             "{\"sentences\": [{\"video_id\": \"video0\", \"caption\": \"ok\"}]}\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msrvtt", "train", dir)),
                        "MSRVTT_train.9k.csv line 3: video 'video1' has no caption");
  write_text(dir / "MSRVTT_data.json", "{\"sentences\": [\n  {\"video_id\": \"video0\",\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msrvtt", "train", dir)), "MSRVTT_data.json line 3");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msrvtt", "train", dir)), "invalid JSON");
  write_text(dir / "MSRVTT_data.json", "{\"videos\": []}");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msrvtt", "train", dir)),
                        "MSRVTT_data.json: missing field 'sentences'");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msrvtt", "full", dir)), "msrvtt: unknown split 'full'");
}

// The MSVD fixtures hold raw-captions.proto{2,3,4}.pkl; the reader wants raw-captions.pkl.
fs::path msvd_dir(int protocol = 4) {
  auto dir = copy_fixture("msvd");
  fs::copy_file(dir / ("raw-captions.proto" + std::to_string(protocol) + ".pkl"),
                dir / "raw-captions.pkl");
  return dir;
}

// ---- MSVD ---------------------------------------------------------------------------------------

TEST(MsvdReader, TrainJoinsWordsInListOrder) {
  const Manifest m = read_dataset(spec("msvd", "train", msvd_dir()));
  EXPECT_EQ(ids(m), (Strings{"-4wsuPCjDBc_5_15", "-7KMZQEsJW4_205_208", "-8y1Q0rA3n8_108_115"}));
  ASSERT_EQ(m.captions.size(), 10u);  // 2 + 4 + 4
  EXPECT_EQ(caption_videos(m), (std::vector<int64_t>{0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(m.captions[0].text, "a man is riding a bike 0");
  EXPECT_EQ(m.captions[5].text, "caf\xc3\xa9 na\xc3\xafve d\xc3\xa9j\xc3\xa0 vu");
  EXPECT_EQ(m.captions[9].text, "a man is riding a bike 3");
}

TEST(MsvdReader, TestIsMultiCaption) {
  const Manifest m = read_dataset(spec("msvd", "test", msvd_dir()));
  EXPECT_EQ(ids(m), (Strings{"00jrXRMlZOY_0_10", "02Z-kuB3IaM_2_13"}));
  const auto per_video = m.captions_per_video();
  EXPECT_EQ(per_video[0].size(), 5u);
  EXPECT_EQ(per_video[1].size(), 6u);
  EXPECT_EQ(m.captions.back().text, "a man is riding a bike 5");
  const Manifest val = read_dataset(spec("msvd", "val", msvd_dir()));
  EXPECT_EQ(ids(val), (Strings{"00jrXRMlZOY_0_10"}));
  EXPECT_EQ(val.captions.size(), 5u);
}

TEST(MsvdReader, FindsVideosRecursivelyAndFrameFolders) {
  auto videos = temp_dir("msvd_videos");
  touch(videos / "YouTubeClips" / "00jrXRMlZOY_0_10.avi");
  touch(videos / "frames" / "02Z-kuB3IaM_2_13" / "000001.jpg");
  const Manifest m = read_dataset(spec("msvd", "test", msvd_dir(), videos));
  EXPECT_EQ(m.videos[0].path, videos / "YouTubeClips" / "00jrXRMlZOY_0_10.avi");
  EXPECT_FALSE(m.videos[0].frame_folder);
  EXPECT_EQ(m.videos[1].path, videos / "frames" / "02Z-kuB3IaM_2_13");
  EXPECT_TRUE(m.videos[1].frame_folder);
  EXPECT_TRUE(check_videos_exist(m).empty());
}

TEST(MsvdReader, AviWinsOverAConvertedMp4OfTheSameName) {
  auto videos = temp_dir("msvd_avi_mp4");
  touch(videos / "YouTubeClips" / "00jrXRMlZOY_0_10.avi");
  touch(videos / "mp4" / "00jrXRMlZOY_0_10.mp4");
  touch(videos / "mp4" / "02Z-kuB3IaM_2_13.mp4");  // only an .mp4: still found
  const Manifest m = read_dataset(spec("msvd", "test", msvd_dir(), videos));
  EXPECT_EQ(m.videos[0].path, videos / "YouTubeClips" / "00jrXRMlZOY_0_10.avi")
      << "the official release's .avi should win over a converted .mp4";
  EXPECT_EQ(m.videos[1].path, videos / "mp4" / "02Z-kuB3IaM_2_13.mp4");
}

TEST(MsvdReader, EachPickleProtocolGivesTheSameManifest) {
  for (int proto : {2, 3, 4}) {
    const auto dir = msvd_dir(proto);
    const Manifest m = read_dataset(spec("msvd", "train", dir));
    EXPECT_EQ(m.captions.size(), 10u) << "protocol " << proto;
    EXPECT_EQ(m.captions[5].text, "caf\xc3\xa9 na\xc3\xafve d\xc3\xa9j\xc3\xa0 vu")
        << "protocol " << proto;
  }
}

TEST(MsvdReader, MalformedInputsAreNamed) {
  auto dir = msvd_dir();
  write_text(dir / "test_list.txt", "00jrXRMlZOY_0_10\nnot_in_pickle\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msvd", "test", dir)),
                        "test_list.txt line 2: video 'not_in_pickle' has no captions in");
  write_text(dir / "test_list.txt", "00jrXRMlZOY_0_10\n\n00jrXRMlZOY_0_10\n");
  EXPECT_ERROR_CONTAINS(
      read_dataset(spec("msvd", "test", dir)),
      "test_list.txt line 3: video '00jrXRMlZOY_0_10' is listed twice (first on line 1)");
  const std::string pkl = (dir / "raw-captions.proto2.pkl").string();
  {
    std::ifstream in(pkl, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_text(dir / "raw-captions.pkl", bytes.substr(0, 15));
  }
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msvd", "train", dir)),
                        "raw-captions.pkl: byte 6: opcode 0x58 ('X' BINUNICODE): truncated");
  // {'-4wsuPCjDBc_5_15': [['a', 1]]} (protocol 2): a caption word that is not a string.
  write_text(dir / "raw-captions.pkl",
             std::string("\x80\x02\x7d\x71\x00\x58\x10\x00\x00\x00\x2d\x34\x77\x73\x75\x50"
                         "\x43\x6a\x44\x42\x63\x5f\x35\x5f\x31\x35\x71\x01\x5d\x71\x02\x5d"
                         "\x71\x03\x28\x58\x01\x00\x00\x00\x61\x71\x04\x4b\x01\x65\x61\x73"
                         "\x2e",
                         49));
  write_text(dir / "train_list.txt", "-4wsuPCjDBc_5_15\n");
  EXPECT_ERROR_CONTAINS(
      read_dataset(spec("msvd", "train", dir)),
      "raw-captions.pkl: field [\"-4wsuPCjDBc_5_15\"][0][1]: expected a string, got number");
}

// ---- LSMDC --------------------------------------------------------------------------------------

TEST(LsmdcReader, RepeatedClipIdsShareOneVideo) {
  const Manifest m = read_dataset(spec("lsmdc", "train", annotations("lsmdc")));
  EXPECT_EQ(ids(m), (Strings{"0001_American_Beauty_00.00.51.926-00.00.54.129",
                             "0001_American_Beauty_00.01.00.000-00.01.03.500"}));
  EXPECT_EQ(texts(m), (Strings{"Someone is in bed, asleep.", "SOMEONE turns over.",
                               "He gets up \"slowly\"."}));
  EXPECT_EQ(caption_videos(m), (std::vector<int64_t>{0, 0, 1}));
}

TEST(LsmdcReader, ValAndTestSplits) {
  const Manifest val = read_dataset(spec("lsmdc", "val", annotations("lsmdc")));
  EXPECT_EQ(ids(val), (Strings{"0002_As_Good_As_It_Gets_00.00.10.000-00.00.12.000"}));
  EXPECT_EQ(texts(val), (Strings{"Someone walks."}));
  const Manifest test = read_dataset(spec("lsmdc", "test", annotations("lsmdc")));
  EXPECT_EQ(ids(test), (Strings{"3086_UGLY_TRUTH_00.23.20.000-00.23.28.886",
                                "3086_UGLY_TRUTH_00.23.21.000-00.23.28.886",
                                "3086_UGLY_TRUTH_00.23.22.000-00.23.28.886"}));
  EXPECT_EQ(test.captions[2].text, "SOMEONE stands below, hands on her hips 2.");
}

TEST(LsmdcReader, ClipsAreFoundInMovieFolders) {
  auto videos = temp_dir("lsmdc_videos");
  touch(videos / "0001_American_Beauty" / "0001_American_Beauty_00.00.51.926-00.00.54.129.avi");
  const Manifest m = read_dataset(spec("lsmdc", "train", annotations("lsmdc"), videos));
  EXPECT_EQ(m.videos[0].path,
            videos / "0001_American_Beauty" / "0001_American_Beauty_00.00.51.926-00.00.54.129.avi");
  EXPECT_EQ(check_videos_exist(m), (std::vector<int64_t>{1}));
}

TEST(LsmdcReader, AviWinsOverAConvertedMp4OfTheSameName) {
  auto videos = temp_dir("lsmdc_avi_mp4");
  const std::string clip = "0001_American_Beauty_00.00.51.926-00.00.54.129";
  touch(videos / "0001_American_Beauty" / (clip + ".mp4"));
  touch(videos / "0001_American_Beauty" / (clip + ".avi"));
  const Manifest m = read_dataset(spec("lsmdc", "train", annotations("lsmdc"), videos));
  EXPECT_EQ(m.videos[0].path, videos / "0001_American_Beauty" / (clip + ".avi"));
}

TEST(LsmdcReader, WrongFieldCountNamesTheLine) {
  auto dir = temp_dir("lsmdc_bad");
  write_text(dir / "LSMDC16_annos_val.csv",
             "clip_a\t1\t2\t3\t4\tok.\nclip_b\t1\t2\t3\tmissing one\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("lsmdc", "val", dir)),
                        "LSMDC16_annos_val.csv line 2: expected 6 tab-separated fields");
}

// ---- DiDeMo -------------------------------------------------------------------------------------

TEST(DidemoReader, ParagraphsInFileOrderWithTheAnnotatedWindow) {
  const Manifest m = read_dataset(spec("didemo", "test", annotations("didemo")));
  // Videos in order of first appearance in test_data.json, not in test_list.txt order.
  EXPECT_EQ(ids(m), (Strings{"12090392@N02_13482799053_87ef417396.mov",
                             "10015567@N08_3655084291_d8b58466fa.mp4"}));
  EXPECT_EQ(texts(m), (Strings{"the dog jumps into the pool 0 the dog jumps into the pool 1",
                               "the dog jumps into the pool 0 the dog jumps into the pool 1 the "
                               "dog jumps into the pool 2"}));
  EXPECT_EQ(caption_videos(m), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(m.videos[0].start_s, 0.0);
  EXPECT_EQ(m.videos[0].end_s, 31.0);
}

TEST(DidemoReader, ListFiltersMomentsAndFilesMatchByFullName) {
  auto dir = copy_fixture("didemo");
  write_text(dir / "test_list.txt", "10015567@N08_3655084291_d8b58466fa.mp4\n");
  auto videos = temp_dir("didemo_videos");
  touch(videos / "a" / "10015567@N08_3655084291_d8b58466fa.mp4");
  touch(videos / "10015567@N08_3655084291_d8b58466fa.mov");  // same stem, other name
  const Manifest m = read_dataset(spec("didemo", "test", dir, videos));
  EXPECT_EQ(ids(m), (Strings{"10015567@N08_3655084291_d8b58466fa.mp4"}));
  EXPECT_EQ(m.videos[0].path, videos / "a" / "10015567@N08_3655084291_d8b58466fa.mp4");
}

TEST(DidemoReader, FindsTheIdWithAVideoExtensionAddedAndTheStem) {
  const std::string mov = "12090392@N02_13482799053_87ef417396";  // id "<mov>.mov"
  const std::string mp4 = "10015567@N08_3655084291_d8b58466fa";   // id "<mp4>.mp4"
  // As download_videos_AWS.py saves them: "<id>.mp4".
  auto aws = temp_dir("didemo_aws");
  touch(aws / (mov + ".mov.mp4"));
  touch(aws / (mp4 + ".mp4.mp4"));
  const Manifest m = read_dataset(spec("didemo", "test", annotations("didemo"), aws));
  ASSERT_EQ(ids(m), (Strings{mov + ".mov", mp4 + ".mp4"}));
  EXPECT_EQ(m.videos[0].path, aws / (mov + ".mov.mp4"));
  EXPECT_EQ(m.videos[1].path, aws / (mp4 + ".mp4.mp4"));
  EXPECT_TRUE(check_videos_exist(m).empty());

  // The file as named wins, then "<id>.<ext>", then "<stem>.<ext>".
  auto mixed = temp_dir("didemo_mixed");
  touch(mixed / (mov + ".mov"));
  touch(mixed / (mov + ".mov.mp4"));
  touch(mixed / (mov + ".mp4"));
  touch(mixed / (mp4 + ".mp4.webm"));
  touch(mixed / (mp4 + ".webm"));
  const Manifest both = read_dataset(spec("didemo", "test", annotations("didemo"), mixed));
  EXPECT_EQ(both.videos[0].path, mixed / (mov + ".mov"));
  EXPECT_EQ(both.videos[1].path, mixed / (mp4 + ".mp4.webm"));

  // Only the stem with another extension.
  auto renamed = temp_dir("didemo_renamed");
  touch(renamed / "sub" / (mov + ".mp4"));
  const Manifest r = read_dataset(spec("didemo", "test", annotations("didemo"), renamed));
  EXPECT_EQ(r.videos[0].path, renamed / "sub" / (mov + ".mp4"));
  EXPECT_EQ(check_videos_exist(r), (std::vector<int64_t>{1}));
}

TEST(DidemoReader, WrongTypesAndMissingFieldsAreNamed) {
  auto dir = copy_fixture("didemo");
  write_text(dir / "test_data.json",
             R"([{"annotation_id": 0, "video": "12090392@N02_13482799053_87ef417396.mov"}])");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("didemo", "test", dir)),
                        "test_data.json: field [0]: missing field 'description'");
  write_text(dir / "test_data.json", R"({"video": "x"})");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("didemo", "test", dir)),
                        "test_data.json: expected a list, got object");
}

// ---- ActivityNet --------------------------------------------------------------------------------

TEST(ActivitynetReader, ParagraphsAndCeiledDuration) {
  for (const std::string split : {"val", "test"}) {
    const Manifest m = read_dataset(spec("activitynet", split, annotations("activitynet")));
    EXPECT_EQ(m.split, split);
    EXPECT_EQ(ids(m), (Strings{"v_QOlSCBRmfWY", "v_ehGHCYKzyZ8"}));
    EXPECT_EQ(texts(m), (Strings{"A young woman is seen standing in a room and leads into her "
                                 "dancing. The girl dances around the room. She continues dancing.",
                                 "Two men play tennis."}));
    EXPECT_EQ(m.videos[0].start_s, 0.0);
    EXPECT_EQ(m.videos[0].end_s, 83.0);  // ceil(82.73)
    EXPECT_EQ(m.videos[1].end_s, 62.0);  // ceil(61.72)
  }
}

TEST(ActivitynetReader, FilesWithAndWithoutThePrefix) {
  auto videos = temp_dir("anet_videos");
  touch(videos / "v1-2" / "QOlSCBRmfWY.mp4");
  touch(videos / "v_ehGHCYKzyZ8.mkv");
  const Manifest m = read_dataset(spec("activitynet", "val", annotations("activitynet"), videos));
  EXPECT_EQ(m.videos[0].path, videos / "v1-2" / "QOlSCBRmfWY.mp4");
  EXPECT_EQ(m.videos[1].path, videos / "v_ehGHCYKzyZ8.mkv");
  EXPECT_TRUE(check_videos_exist(m).empty());
}

TEST(ActivitynetReader, IdsFileOrdersAndFilters) {
  auto dir = copy_fixture("activitynet");
  write_text(dir / "val_ids.json", R"(["v_ehGHCYKzyZ8", "v_notcaptioned", "v_QOlSCBRmfWY"])");
  const Manifest m = read_dataset(spec("activitynet", "val", dir));
  EXPECT_EQ(ids(m), (Strings{"v_ehGHCYKzyZ8", "v_QOlSCBRmfWY"}));
  fs::remove(dir / "val_ids.json");  // without an ids file: the JSON's order
  EXPECT_EQ(ids(read_dataset(spec("activitynet", "val", dir))),
            (Strings{"v_QOlSCBRmfWY", "v_ehGHCYKzyZ8"}));
}

TEST(ActivitynetReader, WrongTypesAreNamedWithTheirPath) {
  auto dir = copy_fixture("activitynet");
  write_text(dir / "val_1.json", R"({"v_a": {"duration": 5, "sentences": "not a list"}})");
  write_text(dir / "val_ids.json", R"(["v_a"])");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("activitynet", "val", dir)),
                        "val_1.json: field v_a.sentences: expected a list, got string");
  write_text(dir / "val_1.json", R"({"v_a": {"duration": null, "sentences": ["x"]}})");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("activitynet", "val", dir)),
                        "val_1.json: field v_a.duration: expected a number, got null");
  write_text(dir / "val_1.json", R"({"v_a": {"duration": 3, "sentences": ["x", 4]}})");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("activitynet", "val", dir)),
                        "val_1.json: field v_a.sentences[1]: expected a string, got number");
  write_text(dir / "val_ids.json", R"(["v_a", 3])");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("activitynet", "val", dir)),
                        "val_ids.json: field [1]: expected a string, got number");
}

// ---- the official unified JSON ------------------------------------------------------------------

TEST(UnifiedReader, GroupsItemsByVidWithSortedFrames) {
  auto root = temp_dir("unified");
  const auto file = write_text(root / "msrvtt" / "split" / "c4c_test.json",
                               R"([{"caption": "a dog runs", "id": 0, "vid": "video0",
           "frames": ["frames/video0/000002.jpg", "frames/video0/000001.jpg"]},
          {"caption": "a dog plays", "id": 1, "vid": "video0",
           "frames": ["frames/video0/000001.jpg", "frames/video0/000002.jpg"]},
          {"caption": ["c1", "c2"], "id": 2, "vid": "video1",
           "frames": ["frames/video1/000001.jpg"]}])");
  touch(root / "frames" / "video0" / "000001.jpg");
  touch(root / "frames" / "video0" / "000002.jpg");
  const Manifest m = read_dataset(spec("unified", "test", file, root));
  EXPECT_EQ(ids(m), (Strings{"video0", "video1"}));
  EXPECT_EQ(texts(m), (Strings{"a dog runs", "a dog plays", "c1", "c2"}));
  EXPECT_EQ(caption_videos(m), (std::vector<int64_t>{0, 0, 1, 1}));
  ASSERT_EQ(m.videos[0].frames.size(), 2u);
  EXPECT_EQ(m.videos[0].frames[0], root / "frames" / "video0" / "000001.jpg");
  EXPECT_EQ(m.videos[0].frames[1], root / "frames" / "video0" / "000002.jpg");
  EXPECT_TRUE(m.videos[0].frame_folder);
  EXPECT_EQ(m.videos[0].path, root / "frames" / "video0");
  EXPECT_EQ(check_videos_exist(m), (std::vector<int64_t>{1}));
}

TEST(UnifiedReader, InconsistentOrMistypedItemsAreNamed) {
  auto dir = temp_dir("unified_bad");
  const auto file =
      write_text(dir / "u.json", R"([{"caption": "a", "vid": "v", "frames": ["x.jpg"]},
      {"caption": "b", "vid": "v", "frames": ["y.jpg"]}])");
  EXPECT_ERROR_CONTAINS(
      read_dataset(spec("unified", "train", file)),
      "u.json: field [1].frames: differs from the frames of vid 'v' given at [0]");
  write_text(file, R"([{"caption": 3, "vid": "v", "frames": ["x.jpg"]}])");
  EXPECT_ERROR_CONTAINS(
      read_dataset(spec("unified", "train", file)),
      "u.json: field [0].caption: expected a string or a list of strings, got number");
  write_text(file, R"([{"caption": "a", "vid": "v", "frames": []}])");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("unified", "train", file)),
                        "u.json: field [0].frames: expected at least one frame");
}

// ---- users' own data ----------------------------------------------------------------------------

TEST(JsonlReader, CaptionAndCaptionsWithRelativePaths) {
  auto dir = temp_dir("jsonl");
  const auto file =
      write_text(dir / "data.jsonl",
                 "{\"video\": \"clips/a.mp4\", \"caption\": \"first\"}\n"
                 "\n"
                 "{\"video\": \"clips/b.mp4\", \"captions\": [\"b1\", \"b2\"], "
                 "\"start\": 1.5, \"end\": 4}\n"
                 "{\"video\": \"/abs/c.mp4\", \"caption\": \"third\", \"id\": \"c\"}\n"
                 "{\"video\": \"clips/a.mp4\", \"caption\": \"again\"}\n");
  const Manifest m = read_dataset(spec("jsonl", "train", file));
  EXPECT_EQ(ids(m), (Strings{"clips/a.mp4", "clips/b.mp4", "c"}));
  EXPECT_EQ(texts(m), (Strings{"first", "b1", "b2", "third", "again"}));
  EXPECT_EQ(caption_videos(m), (std::vector<int64_t>{0, 1, 1, 2, 0}));
  EXPECT_EQ(m.videos[0].path, dir / "clips" / "a.mp4");  // relative to the file's folder
  EXPECT_EQ(m.videos[1].start_s, 1.5);
  EXPECT_EQ(m.videos[1].end_s, 4.0);
  EXPECT_EQ(m.videos[2].path, fs::path("/abs/c.mp4"));

  const Manifest rooted = read_dataset(spec("jsonl", "train", file, "/data/videos"));
  EXPECT_EQ(rooted.videos[0].path, fs::path("/data/videos/clips/a.mp4"));
}

TEST(JsonlReader, BadLinesNameTheirLineNumber) {
  auto dir = temp_dir("jsonl_bad");
  const auto file =
      write_text(dir / "d.jsonl", "{\"video\": \"a.mp4\", \"caption\": \"x\"}\n{\"video\": \n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("jsonl", "train", file)), "d.jsonl line 2 column");
  write_text(file, "{\"video\": \"a.mp4\", \"caption\": \"x\"}\n{\"video\": \"b.mp4\"}\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("jsonl", "train", file)),
                        "d.jsonl line 2: expected \"caption\" (a string) or \"captions\"");
  write_text(file, "{\"video\": \"a.mp4\", \"caption\": [\"x\"]}\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("jsonl", "train", file)),
                        "d.jsonl line 1: field caption: expected a string, got array");
  write_text(file,
             "{\"video\": \"a.mp4\", \"caption\": \"x\", \"start\": 1}\n"
             "{\"video\": \"a.mp4\", \"caption\": \"y\", \"start\": 2}\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("jsonl", "train", file)),
                        "d.jsonl line 2: video id 'a.mp4' was given as");
}

TEST(CaptionCsvReader, HeaderColumnsInAnyOrder) {
  auto dir = temp_dir("csv_user");
  const auto file = write_text(dir / "d.csv",
                               "caption,video,start,end\n"
                               "\"a cat, sitting\",v/cat.mp4,,\n"
                               "\"the \"\"same\"\" cat\",v/cat.mp4,,\n"
                               "a dog,v/dog.mp4,2,5.5\n");
  const Manifest m = read_dataset(spec("csv", "val", file));
  EXPECT_EQ(m.split, "val");
  EXPECT_EQ(ids(m), (Strings{"v/cat.mp4", "v/dog.mp4"}));
  EXPECT_EQ(texts(m), (Strings{"a cat, sitting", "the \"same\" cat", "a dog"}));
  EXPECT_EQ(m.videos[0].start_s, -1.0);
  EXPECT_EQ(m.videos[1].start_s, 2.0);
  EXPECT_EQ(m.videos[1].end_s, 5.5);
  EXPECT_EQ(m.videos[1].path, dir / "v" / "dog.mp4");
}

TEST(CaptionCsvReader, BadRowsAreNamed) {
  auto dir = temp_dir("csv_user_bad");
  const auto file = write_text(dir / "d.csv", "video,text\na.mp4,x\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("csv", "train", file)),
                        "d.csv line 1: no column 'caption' in the header (columns: video, text)");
  write_text(file, "video,caption,start\na.mp4,x,soon\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("csv", "train", file)),
                        "d.csv line 2: column start: expected a number of seconds");
  write_text(file, "video,caption\na.mp4,x\nb.mp4,\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("csv", "train", file)), "d.csv line 3: empty caption");
}

// ---- dispatch -----------------------------------------------------------------------------------

// Every annotation file of every dataset replaced, one at a time, by binary garbage: each read
// that uses the file fails with an Error naming it (never a crash or a silent empty split).
TEST(ReadDataset, BinaryGarbageInAnyAnnotationFileIsAnErrorNamingIt) {
  std::string garbage;
  uint32_t state = 7;
  for (int i = 0; i < 4096; ++i) {
    state = state * 1103515245u + 12345u;
    garbage += static_cast<char>(state >> 24);
  }
  for (const std::string dataset : {"msrvtt", "msvd", "lsmdc", "didemo", "activitynet"}) {
    int named = 0;
    for (const auto& file : fs::directory_iterator(annotations(dataset))) {
      const std::string name = file.path().filename().string();
      if (name.find(".expected.") != std::string::npos) continue;  // test data, not read
      SCOPED_TRACE(dataset + "/" + name);
      auto dir = dataset == "msvd" ? msvd_dir() : copy_fixture(dataset);
      write_text(dir / name, garbage);
      for (const char* split : {"train", "val", "test"}) {
        try {
          read_dataset(spec(dataset, split, dir));
        } catch (const Error& e) {
          const std::string msg = e.what();
          if (msg.find(name) != std::string::npos) {
            ++named;
          } else {
            // Another file the fixture lacks for that split: named too.
            EXPECT_NE(msg.find(": cannot open"), std::string::npos) << msg;
          }
        }
      }
      fs::remove_all(dir);
    }
    EXPECT_GT(named, 0) << dataset;
  }
  // The user formats: JSONL, CSV and unified JSON.
  auto dir = temp_dir("garbage_user");
  for (const std::string format : {"jsonl", "csv", "unified"}) {
    const auto file = write_text(dir / ("data." + format), garbage);
    EXPECT_ERROR_CONTAINS(read_dataset(spec(format, "train", file)), file.string());
  }
  fs::remove_all(dir);
}

TEST(ReadDataset, EmptyAndNonUtf8CaptionsAreNamedOrRepaired) {
  auto dir = temp_dir("captions_odd");
  auto file = write_text(dir / "d.jsonl", "{\"video\": \"a.mp4\", \"caption\": \"  \"}\n");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("jsonl", "train", file)),
                        "d.jsonl line 1: empty caption");
  // Latin-1 bytes in a CSV (not UTF-8): read, kept as bytes; the tokenizer's fix_text repairs or
  // replaces them (text_fix_test), so no caption is lost or crashes the loader.
  file = write_text(dir / "d.csv", "video,caption\na.mp4,caf\xe9 au lait\n");
  const Manifest m = read_dataset(spec("csv", "train", file));
  ASSERT_EQ(m.captions.size(), 1u);
  EXPECT_EQ(m.captions[0].text, "caf\xe9 au lait");
  fs::remove_all(dir);
}

// 10^6 captions (a JSONL file of 40 MB): read in memory linear in the file, not more.
TEST(ReadDataset, AMillionCaptionsReadInBoundedMemory) {
  auto dir = temp_dir("million");
  const auto file = dir / "d.jsonl";
  {
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < 1000000; ++i) {
      out << "{\"video\": \"v" << i % 1000 << ".mp4\", \"caption\": \"caption number " << i
          << "\"}\n";
    }
  }
  struct rusage before {};
  getrusage(RUSAGE_SELF, &before);
  const Manifest m = read_dataset(spec("jsonl", "train", file));
  struct rusage after {};
  getrusage(RUSAGE_SELF, &after);
  EXPECT_EQ(m.captions.size(), 1000000u);
  EXPECT_EQ(m.videos.size(), 1000u);
  // ru_maxrss is in KiB: the peak may rise by the file's size and the captions, not by GBs.
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 1024 * 1024) << "KiB";
  fs::remove_all(dir);
}

TEST(ReadDataset, UnknownFormatListsTheKnownOnes) {
  EXPECT_ERROR_CONTAINS(
      read_dataset(spec("youcook", "train", "/x")),
      "dataset format 'youcook' is unknown (expected one of: msrvtt, msvd, lsmdc, "
      "didemo, activitynet, unified, jsonl, csv)");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("msvd", "dev", annotations("msvd"))),
                        "msvd: unknown split 'dev'");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("lsmdc", "", annotations("lsmdc"))),
                        "lsmdc: unknown split '' (expected one of: train, val, test)");
  EXPECT_ERROR_CONTAINS(read_dataset(spec("didemo", "train", annotations("didemo"))),
                        "train_list.txt: cannot open");
}

}  // namespace
}  // namespace mva
