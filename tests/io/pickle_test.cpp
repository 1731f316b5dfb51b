#include "mvadapter/io/pickle.h"

#include <fstream>

#include "mvadapter/core/error.h"
#include "mvadapter/io/csv.h"
#include "test_support.h"

namespace mva {
namespace {

using test::fixture_path;
using test::temp_dir;
using Json = nlohmann::ordered_json;

#define BYTES(lit) std::string(lit, sizeof(lit) - 1)

std::filesystem::path write_bytes(const std::filesystem::path& dir, const std::string& name,
                                  const std::string& bytes) {
  auto path = dir / name;
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  return path;
}

std::filesystem::path msvd(const std::string& name) {
  return fixture_path("annotations/msvd") / name;
}

class PickleProtocol : public ::testing::TestWithParam<int> {};

TEST_P(PickleProtocol, RawCaptionsMatchTheExpectedJsonInOrder) {
  const auto file = msvd(fmt::format("raw-captions.proto{}.pkl", GetParam()));
  const Json got = read_pickle(file);
  const Json want = Json::parse(read_file_bytes(msvd("raw-captions.expected.json")));
  EXPECT_EQ(got, want);  // ordered_json: key order (Python insertion order) must match too
  ASSERT_TRUE(got.is_object());
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.begin().key(), "-4wsuPCjDBc_5_15");
  // The memo (BINGET / MEMOIZE) repeats words: "a" appears twice in each caption.
  EXPECT_EQ(got["-7KMZQEsJW4_205_208"][2],
            Json::parse(R"(["a","man","is","riding","a","bike","2"])"));
  EXPECT_EQ(got["-7KMZQEsJW4_205_208"][3][0].get<std::string>(), "caf\xc3\xa9");
}

INSTANTIATE_TEST_SUITE_P(Protocols, PickleProtocol, ::testing::Values(2, 3, 4));

TEST(Pickle, ReadsScalarsTuplesAndBytes) {
  // pickle.dumps({'i': [1, -2, 300, 70000, 2**40, -2**63, 255, 65535, -1], 't': (None, True,
  // False), 'f': 1.5, 'y': b'xy', 'e': (), 't1': (7,), 'n': -0.25}, protocol=4)
  const std::string bytes = BYTES(
      "\x80\x04\x95\x72\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x69\x94\x5d\x94\x28\x4b"
      "\x01\x4a\xfe\xff\xff\xff\x4d\x2c\x01\x4a\x70\x11\x01\x00\x8a\x06\x00\x00\x00\x00\x00\x01"
      "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x4b\xff\x4d\xff\xff\x4a\xff\xff\xff\xff\x65\x8c"
      "\x01\x74\x94\x4e\x88\x89\x87\x94\x8c\x01\x66\x94\x47\x3f\xf8\x00\x00\x00\x00\x00\x00\x8c"
      "\x01\x79\x94\x43\x02\x78\x79\x94\x8c\x01\x65\x94\x29\x8c\x02\x74\x31\x94\x4b\x07\x85\x94"
      "\x8c\x01\x6e\x94\x47\xbf\xd0\x00\x00\x00\x00\x00\x00\x75\x2e");
  const Json got = parse_pickle(bytes, "scalars.pkl");
  std::vector<std::string> keys;
  for (auto it = got.begin(); it != got.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"i", "t", "f", "y", "e", "t1", "n"}));
  const std::vector<int64_t> ints = got["i"].get<std::vector<int64_t>>();
  EXPECT_EQ(ints,
            (std::vector<int64_t>{1, -2, 300, 70000, int64_t{1} << 40, INT64_MIN, 255, 65535, -1}));
  EXPECT_EQ(got["t"], Json::parse("[null, true, false]"));
  EXPECT_DOUBLE_EQ(got["f"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(got["n"].get<double>(), -0.25);
  ASSERT_TRUE(got["y"].is_binary());
  // As a plain vector: clang finds two operator== for the binary container against a vector.
  const std::vector<uint8_t>& y = got["y"].get_binary();
  EXPECT_EQ(y, (std::vector<uint8_t>{'x', 'y'}));
  EXPECT_EQ(got["e"], Json::array());
  EXPECT_EQ(got["t1"], Json::parse("[7]"));
}

TEST(Pickle, SharedListKeepsReferenceSemantics) {
  // x = ['w']; pickle.dumps({'a': x, 'b': x}, protocol=2): 'b' is BINGET of the list stored
  // empty, before 'w' was appended; Python sees ['w'] in both.
  const std::string p2 = BYTES(
      "\x80\x02\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x5d\x71\x02\x58\x01\x00\x00\x00"
      "\x77\x71\x03\x61\x58\x01\x00\x00\x00\x62\x71\x04\x68\x02\x75\x2e");
  const std::string p4 = BYTES(
      "\x80\x04\x95\x16\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x8c\x01"
      "\x77\x94\x61\x8c\x01\x62\x94\x68\x02\x75\x2e");
  const Json want = Json::parse(R"({"a": ["w"], "b": ["w"]})");
  EXPECT_EQ(parse_pickle(p2, "p2"), want);
  EXPECT_EQ(parse_pickle(p4, "p4"), want);
}

TEST(Pickle, TruncatedStringNamesFileOffsetAndOpcode) {
  auto dir = temp_dir("pickle");
  // BINUNICODE '-4wsuPCjDBc_5_15' starts at byte 6 and needs 4 + 16 bytes; cut at 15.
  const std::string full = read_file_bytes(msvd("raw-captions.proto2.pkl"));
  const auto file = write_bytes(dir, "cut.pkl", full.substr(0, 15));
  EXPECT_ERROR_CONTAINS(read_pickle(file),
                        file.string() + ": byte 6: opcode 0x58 ('X' BINUNICODE): truncated");
}

TEST(Pickle, TruncatedFrameIsReportedAtTheFrame) {
  auto dir = temp_dir("pickle");
  const std::string full = read_file_bytes(msvd("raw-captions.proto4.pkl"));
  const auto file = write_bytes(dir, "cut4.pkl", full.substr(0, 100));
  EXPECT_ERROR_CONTAINS(read_pickle(file), "cut4.pkl: byte 2: opcode 0x95 (FRAME): truncated");
}

TEST(Pickle, EveryTruncationIsAnErrorNotACrash) {
  for (int proto : {2, 3, 4}) {
    const std::string full = read_file_bytes(msvd(fmt::format("raw-captions.proto{}.pkl", proto)));
    for (size_t n = 0; n < full.size(); ++n) {
      // The STOP opcode is the last byte: every shorter prefix must fail with a located error.
      EXPECT_ERROR_CONTAINS(parse_pickle(full.substr(0, n), "cut.pkl"), "cut.pkl: byte ");
    }
  }
}

TEST(Pickle, MissingStopIsAnError) {
  const std::string full = read_file_bytes(msvd("raw-captions.proto2.pkl"));
  // Byte 27 is just past the first complete BINUNICODE.
  EXPECT_ERROR_CONTAINS(parse_pickle(full.substr(0, 27), "nostop.pkl"),
                        "nostop.pkl: byte 27: the pickle ends without a STOP opcode");
  EXPECT_ERROR_CONTAINS(parse_pickle("", "empty.pkl"), "empty.pkl: byte 0");
}

TEST(Pickle, UnknownOpcodeNamesOffsetAndByte) {
  auto dir = temp_dir("pickle");
  const auto file = write_bytes(dir, "bad.pkl", BYTES("\x80\x02}q\x00\xff."));
  EXPECT_ERROR_CONTAINS(read_pickle(file),
                        file.string() + ": byte 5: opcode 0xff (not a pickle opcode)");
}

TEST(Pickle, ClassInstancesAreRejectedByName) {
  // pickle.dumps({'s': {1}}, protocol=2) builds the set through GLOBAL __builtin__.set.
  const std::string bytes = BYTES(
      "\x80\x02\x7d\x71\x00\x58\x01\x00\x00\x00\x73\x71\x01\x63\x5f\x5f\x62\x75\x69\x6c\x74\x69"
      "\x6e\x5f\x5f\x0a\x73\x65\x74\x0a\x71\x02\x5d\x71\x03\x4b\x01\x61\x85\x71\x04\x52\x71\x05"
      "\x73\x2e");
  EXPECT_ERROR_CONTAINS(parse_pickle(bytes, "set.pkl"),
                        "set.pkl: byte 13: opcode 0x63 ('c' GLOBAL): global '__builtin__.set' "
                        "is not allowed: only plain data");
}

// What a hostile pickle looks like: pickle.dumps(Evil(), protocol=2) with
// Evil.__reduce__ = lambda self: (os.system, ('echo owned',)).
const std::string kOsSystem = BYTES(
    "\x80\x02"
    "cposix\nsystem\nq\x00X\x0a\x00\x00\x00"
    "echo ownedq\x01\x85q\x02Rq\x03.");

TEST(Pickle, CodeExecutionGlobalsAreRejectedByNameInBothModes) {
  EXPECT_ERROR_CONTAINS(parse_pickle(kOsSystem, "evil.pkl"),
                        "evil.pkl: byte 2: opcode 0x63 ('c' GLOBAL): global 'posix.system' is "
                        "not allowed");
  int reads = 0;
  const StorageReader reader = [&](const std::string&, torch::ScalarType, int64_t) {
    ++reads;
    return torch::Tensor();
  };
  EXPECT_ERROR_CONTAINS(parse_torch_pickle(kOsSystem, "evil.pkl", reader),
                        "global 'posix.system' is not allowed: a checkpoint may refer only to "
                        "collections.OrderedDict");
  EXPECT_EQ(reads, 0);
}

// A torch.save-style data.pkl, written opcode by opcode (protocol 2, as torch.save does).
std::string str_op(const std::string& s) {
  std::string out = "X";
  for (int k = 0; k < 4; ++k) out += static_cast<char>((s.size() >> (8 * k)) & 0xff);
  return out + s;
}
std::string int_op(int v) {  // BININT1
  return std::string("K") + static_cast<char>(v);
}
// _rebuild_tensor_v2(storage `key` of `numel` floats, offset, (size,), (stride,), False, {})
std::string tensor_op(const std::string& key, int numel, int offset, int size, int stride) {
  return "ctorch._utils\n_rebuild_tensor_v2\n((" + str_op("storage") + "ctorch\nFloatStorage\n" +
         str_op(key) + str_op("cpu") + int_op(numel) + "tQ" + int_op(offset) + int_op(size) +
         "\x85" + int_op(stride) +
         "\x85\x89"
         "ccollections\nOrderedDict\n)RtR";
}
std::string state_dict_pickle(const std::string& entries) {
  return "\x80\x02"
         "ccollections\nOrderedDict\n)R(" +
         entries + "u.";
}

TEST(TorchPickle, RebuildsTensorsAsViewsOfTheirStorageReadOncePerKey) {
  std::vector<std::string> keys;
  const StorageReader reader = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    keys.push_back(key);
    EXPECT_EQ(dtype, torch::kFloat32);
    return torch::arange(numel, torch::TensorOptions().dtype(dtype));
  };
  // Two tensors share storage '0' (4 floats): a = s[1:3], b = s[0::2].
  const auto got = parse_torch_pickle(state_dict_pickle(str_op("a") + tensor_op("0", 4, 1, 2, 1) +
                                                        str_op("b") + tensor_op("0", 4, 0, 2, 2)),
                                      "sd.pkl", reader);
  ASSERT_EQ(got.tensors.size(), 2u);
  EXPECT_TRUE(got.tensors.at("a").equal(torch::tensor({1.0f, 2.0f})));
  EXPECT_TRUE(got.tensors.at("b").equal(torch::tensor({0.0f, 2.0f})));
  EXPECT_EQ(keys, (std::vector<std::string>{"0"}));
}

TEST(TorchPickle, TensorReachingBeyondItsStorageIsRefused) {
  const StorageReader reader = [](const std::string&, torch::ScalarType dtype, int64_t numel) {
    return torch::zeros({numel}, torch::TensorOptions().dtype(dtype));
  };
  // 3 elements at stride 2 from offset 0 need 5; the storage has 4.
  EXPECT_ERROR_CONTAINS(
      parse_torch_pickle(state_dict_pickle(str_op("w") + tensor_op("0", 4, 0, 3, 2)), "sd.pkl",
                         reader),
      "tensor of size 3 (stride 2, offset 0) reaches beyond its storage of 4 elements");
  EXPECT_ERROR_CONTAINS(
      parse_torch_pickle(state_dict_pickle(str_op("w") + tensor_op("0", 4, 4, 1, 1)), "sd.pkl",
                         reader),
      "reaches beyond its storage");
}

TEST(TorchPickle, StorageOfTheWrongSizeFromTheReaderIsRefused) {
  const StorageReader short_reader = [](const std::string&, torch::ScalarType dtype, int64_t) {
    return torch::zeros({1}, torch::TensorOptions().dtype(dtype));
  };
  EXPECT_ERROR_CONTAINS(
      parse_torch_pickle(state_dict_pickle(str_op("w") + tensor_op("0", 4, 0, 1, 1)), "sd.pkl",
                         short_reader),
      "storage '0': the archive's record does not hold 4 Float elements");
}

TEST(Pickle, NonStringDictKeysAreRejected) {
  // pickle.dumps({1: 2}, protocol=2)
  EXPECT_ERROR_CONTAINS(
      parse_pickle(BYTES("\x80\x02\x7d\x71\x00\x4b\x01\x4b\x02\x73\x2e"), "k.pkl"),
      "dict key of type int");
}

TEST(Pickle, MalformedStacksAreErrorsNotCrashes) {
  EXPECT_ERROR_CONTAINS(parse_pickle(BYTES("\x80\x02\x61."), "s.pkl"),
                        "byte 2: opcode 0x61 ('a' APPEND)");
  EXPECT_ERROR_CONTAINS(parse_pickle(BYTES("\x80\x02\x65."), "m.pkl"), "no MARK");
  EXPECT_ERROR_CONTAINS(parse_pickle(BYTES("\x80\x02h\x05."), "g.pkl"),
                        "memo key 5 was never stored");
  EXPECT_ERROR_CONTAINS(parse_pickle(BYTES("\x80\x02K\x00K\x01K\x02s."), "d.pkl"),
                        "expected a dict below the items, found a int");
  EXPECT_ERROR_CONTAINS(parse_pickle(BYTES("\x80\x09N."), "p.pkl"), "protocol 9");
  // LONG1 with 9 bytes does not fit in int64.
  EXPECT_ERROR_CONTAINS(
      parse_pickle(BYTES("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."), "l.pkl"),
      "does not fit in 64 bits");
}

// Also the regression test of a fuzzing finding (tests/fuzz, pickle): the objects of such a
// cycle leaked (a LeakSanitizer report in the sanitizer build, tests/sanitizers) until the
// unpickler cut their links.
TEST(Pickle, SelfContainingListIsAnErrorNotARecursion) {
  // l = []; l.append(l); pickle.dumps(l, protocol=2) == b'\x80\x02]q\x00h\x00a.'
  EXPECT_ERROR_CONTAINS(parse_pickle(BYTES("\x80\x02]q\x00h\x00"
                                           "a."),
                                     "self.pkl"),
                        "contains itself");
}

TEST(Pickle, MissingFileNamesThePath) {
  EXPECT_ERROR_CONTAINS(read_pickle("/nonexistent/raw-captions.pkl"),
                        "/nonexistent/raw-captions.pkl: cannot open");
}

}  // namespace
}  // namespace mva
