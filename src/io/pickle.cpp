#include "mvadapter/io/pickle.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {
namespace {

using Json = nlohmann::ordered_json;

// Python objects are references: a list reached again through the memo (BINGET) is the same
// list, later appends included. Values are therefore shared nodes until the final conversion.
struct PyObject;
using PyRef = std::shared_ptr<PyObject>;

struct PyObject {
  // kGlobal, kStorage and kTensor exist only while reading a torch.save archive's data.pkl.
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kStr,
    kBytes,
    kList,
    kTuple,
    kDict,
    kGlobal,
    kStorage,
    kTensor
  };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;                                 // str (UTF-8), bytes, or a global's name
  torch::Tensor t;                               // a storage (1-D) or a tensor
  std::vector<PyRef> items;                      // list, tuple
  std::vector<std::pair<PyRef, PyRef>> entries;  // dict, in insertion order
  size_t offset = 0;                             // byte offset of the opcode that made it
};

const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(':
      return "MARK";
    case '.':
      return "STOP";
    case '0':
      return "POP";
    case '1':
      return "POP_MARK";
    case '2':
      return "DUP";
    case 'F':
      return "FLOAT";
    case 'I':
      return "INT";
    case 'J':
      return "BININT";
    case 'K':
      return "BININT1";
    case 'L':
      return "LONG";
    case 'M':
      return "BININT2";
    case 'N':
      return "NONE";
    case 'P':
      return "PERSID";
    case 'Q':
      return "BINPERSID";
    case 'R':
      return "REDUCE";
    case 'S':
      return "STRING";
    case 'T':
      return "BINSTRING";
    case 'U':
      return "SHORT_BINSTRING";
    case 'V':
      return "UNICODE";
    case 'X':
      return "BINUNICODE";
    case 'a':
      return "APPEND";
    case 'b':
      return "BUILD";
    case 'c':
      return "GLOBAL";
    case 'd':
      return "DICT";
    case '}':
      return "EMPTY_DICT";
    case 'e':
      return "APPENDS";
    case 'g':
      return "GET";
    case 'h':
      return "BINGET";
    case 'i':
      return "INST";
    case 'j':
      return "LONG_BINGET";
    case 'l':
      return "LIST";
    case ']':
      return "EMPTY_LIST";
    case 'o':
      return "OBJ";
    case 'p':
      return "PUT";
    case 'q':
      return "BINPUT";
    case 'r':
      return "LONG_BINPUT";
    case 's':
      return "SETITEM";
    case 't':
      return "TUPLE";
    case ')':
      return "EMPTY_TUPLE";
    case 'u':
      return "SETITEMS";
    case 'G':
      return "BINFLOAT";
    case 'B':
      return "BINBYTES";
    case 'C':
      return "SHORT_BINBYTES";
    case 0x80:
      return "PROTO";
    case 0x81:
      return "NEWOBJ";
    case 0x82:
      return "EXT1";
    case 0x83:
      return "EXT2";
    case 0x84:
      return "EXT4";
    case 0x85:
      return "TUPLE1";
    case 0x86:
      return "TUPLE2";
    case 0x87:
      return "TUPLE3";
    case 0x88:
      return "NEWTRUE";
    case 0x89:
      return "NEWFALSE";
    case 0x8a:
      return "LONG1";
    case 0x8b:
      return "LONG4";
    case 0x8c:
      return "SHORT_BINUNICODE";
    case 0x8d:
      return "BINUNICODE8";
    case 0x8e:
      return "BINBYTES8";
    case 0x8f:
      return "EMPTY_SET";
    case 0x90:
      return "ADDITEMS";
    case 0x91:
      return "FROZENSET";
    case 0x92:
      return "NEWOBJ_EX";
    case 0x93:
      return "STACK_GLOBAL";
    case 0x94:
      return "MEMOIZE";
    case 0x95:
      return "FRAME";
    case 0x96:
      return "BYTEARRAY8";
    case 0x97:
      return "NEXT_BUFFER";
    case 0x98:
      return "READONLY_BUFFER";
    default:
      return nullptr;
  }
}

std::string describe_opcode(uint8_t op) {
  const char* name = opcode_name(op);
  if (name == nullptr) return fmt::format("0x{:02x} (not a pickle opcode)", op);
  if (op >= 0x20 && op < 0x7f)
    return fmt::format("0x{:02x} ('{}' {})", op, static_cast<char>(op), name);
  return fmt::format("0x{:02x} ({})", op, name);
}

const char* kind_name(PyObject::Kind k) {
  switch (k) {
    case PyObject::Kind::kNone:
      return "None";
    case PyObject::Kind::kBool:
      return "bool";
    case PyObject::Kind::kInt:
      return "int";
    case PyObject::Kind::kFloat:
      return "float";
    case PyObject::Kind::kStr:
      return "str";
    case PyObject::Kind::kBytes:
      return "bytes";
    case PyObject::Kind::kList:
      return "list";
    case PyObject::Kind::kTuple:
      return "tuple";
    case PyObject::Kind::kDict:
      return "dict";
    case PyObject::Kind::kGlobal:
      return "global";
    case PyObject::Kind::kStorage:
      return "storage";
    case PyObject::Kind::kTensor:
      return "tensor";
  }
  return "?";
}

// The only globals a torch.save'd dictionary of tensors refers to. Anything else (os.system,
// builtins.eval, a model class) is how a hostile pickle runs code, and is refused by name.
const std::map<std::string, torch::ScalarType>& storage_globals() {
  static const std::map<std::string, torch::ScalarType> kStorages = {
      {"torch.DoubleStorage", torch::kFloat64}, {"torch.FloatStorage", torch::kFloat32},
      {"torch.HalfStorage", torch::kFloat16},   {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},     {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},    {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},     {"torch.BoolStorage", torch::kBool},
  };
  return kStorages;
}

constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";

bool is_allowed_global(const std::string& name) {
  return name == kOrderedDict || name == kRebuildTensor || name == kRebuildParameter ||
         storage_globals().count(name) != 0;
}

class Unpickler {
 public:
  /// `read_storage` null: plain data only (no globals, no persistent ids).
  Unpickler(std::string_view data, const std::string& name, const StorageReader* read_storage)
      : data_(data), name_(name), read_storage_(read_storage) {}
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;
  // A pickle can make a container hold itself (APPEND of a memoised list to that list): shared
  // pointers alone would never free such a cycle. Every object is also owned here, and their
  // links are cut when the unpickler goes, so results and errors alike free everything.
  ~Unpickler() {
    for (auto& obj : made_) {
      obj->items.clear();
      obj->entries.clear();
    }
  }

  PyRef run() {
    while (pos_ < data_.size()) {
      op_offset_ = pos_;
      op_ = static_cast<uint8_t>(data_[pos_++]);
      if (op_ == '.') {
        if (stack_.empty()) fail("STOP with an empty stack");
        return stack_.back();
      }
      step();
    }
    throw Error(fmt::format("{}: byte {}: the pickle ends without a STOP opcode (truncated file?)",
                            name_, data_.size()));
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(
        fmt::format("{}: byte {}: opcode {}: {}", name_, op_offset_, describe_opcode(op_), what));
  }

  const char* take(uint64_t n) {
    if (n > data_.size() - pos_) {
      fail(fmt::format("truncated: needs {} more bytes at byte {}, only {} left", n, pos_,
                       data_.size() - pos_));
    }
    const char* p = data_.data() + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }

  uint64_t little_endian(int bytes) {
    const auto* p = reinterpret_cast<const unsigned char*>(take(static_cast<uint64_t>(bytes)));
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | p[k];
    return v;
  }

  std::string read_line() {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos) fail("truncated: no newline ends the argument");
    std::string line(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return line;
  }

  PyRef make(PyObject::Kind kind) {
    auto obj = std::make_shared<PyObject>();
    obj->kind = kind;
    obj->offset = op_offset_;
    made_.push_back(obj);
    return obj;
  }

  void push(PyRef obj) { stack_.push_back(std::move(obj)); }

  PyRef pop() {
    if (stack_.size() <= stack_floor()) fail("the stack is empty (malformed pickle)");
    PyRef obj = std::move(stack_.back());
    stack_.pop_back();
    return obj;
  }

  PyRef& top() {
    if (stack_.size() <= stack_floor()) fail("the stack is empty (malformed pickle)");
    return stack_.back();
  }

  size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }

  std::vector<PyRef> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to (malformed pickle)");
    const size_t start = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> items(std::make_move_iterator(stack_.begin() + static_cast<long>(start)),
                             std::make_move_iterator(stack_.end()));
    stack_.resize(start);
    return items;
  }

  PyRef& top_of_kind(PyObject::Kind kind) {
    PyRef& obj = top();
    if (obj->kind != kind) {
      fail(fmt::format("expected a {} below the items, found a {}", kind_name(kind),
                       kind_name(obj->kind)));
    }
    return obj;
  }

  void push_string(PyObject::Kind kind, uint64_t length) {
    auto obj = make(kind);
    const char* p = take(length);
    obj->s.assign(p, static_cast<size_t>(length));
    push(std::move(obj));
  }

  void push_int(int64_t v) {
    auto obj = make(PyObject::Kind::kInt);
    obj->i = v;
    push(std::move(obj));
  }

  // LONG1/LONG4: little-endian two's complement of `n` bytes.
  void push_long(uint64_t n) {
    if (n > 8) {
      take(n);  // report truncation first: it is the likelier fault
      fail(fmt::format("an int of {} bytes does not fit in 64 bits", n));
    }
    const auto* p = reinterpret_cast<const unsigned char*>(take(n));
    uint64_t v = 0;
    for (uint64_t k = n; k-- > 0;) v = (v << 8) | p[k];
    if (n > 0 && n < 8 && (p[n - 1] & 0x80) != 0) v |= ~uint64_t{0} << (8 * n);
    push_int(static_cast<int64_t>(v));
  }

  void push_tuple(std::vector<PyRef> items) {
    auto obj = make(PyObject::Kind::kTuple);
    obj->items = std::move(items);
    push(std::move(obj));
  }

  void memo_put(uint64_t key) { memo_[key] = top(); }

  void memo_get(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail(fmt::format("memo key {} was never stored", key));
    push(it->second);
  }

  uint64_t parse_decimal(const std::string& text) {
    uint64_t v = 0;
    if (text.empty()) fail("expected a decimal memo key, got an empty line");
    for (char c : text) {
      if (c < '0' || c > '9') fail(fmt::format("expected a decimal memo key, got '{}'", text));
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return v;
  }

  void set_items(PyRef& dict, std::vector<PyRef>& items) {
    if (items.size() % 2 != 0)
      fail(fmt::format("odd number of items ({}) for key/value pairs", items.size()));
    for (size_t k = 0; k < items.size(); k += 2) {
      dict->entries.emplace_back(std::move(items[k]), std::move(items[k + 1]));
    }
  }

  void step() {
    switch (op_) {
      case 0x80: {  // PROTO
        const auto proto = little_endian(1);
        if (proto > 5) fail(fmt::format("protocol {} is newer than the supported 2 to 5", proto));
        break;
      }
      case 0x95: {  // FRAME: frames are transparent, but a frame beyond the end means truncation
        const auto length = little_endian(8);
        if (length > data_.size() - pos_) {
          fail(fmt::format("truncated: the frame announces {} bytes, only {} left", length,
                           data_.size() - pos_));
        }
        break;
      }
      case '(':
        marks_.push_back(stack_.size());
        break;
      case '1':
        pop_mark();
        break;
      case '0':  // POP: as CPython, an empty segment above a MARK pops the mark itself
        if (stack_.size() > stack_floor()) {
          stack_.pop_back();
        } else {
          pop_mark();
        }
        break;
      case '2':
        push(top());
        break;
      case '}':
        push(make(PyObject::Kind::kDict));
        break;
      case ']':
        push(make(PyObject::Kind::kList));
        break;
      case ')':
        push(make(PyObject::Kind::kTuple));
        break;
      case 'N':
        push(make(PyObject::Kind::kNone));
        break;
      case 0x88:
      case 0x89: {
        auto obj = make(PyObject::Kind::kBool);
        obj->b = op_ == 0x88;
        push(std::move(obj));
        break;
      }
      case 'J':
        push_int(static_cast<int32_t>(static_cast<uint32_t>(little_endian(4))));
        break;
      case 'K':
        push_int(static_cast<int64_t>(little_endian(1)));
        break;
      case 'M':
        push_int(static_cast<int64_t>(little_endian(2)));
        break;
      case 0x8a:
        push_long(little_endian(1));
        break;
      case 0x8b: {
        const auto n = static_cast<int32_t>(static_cast<uint32_t>(little_endian(4)));
        if (n < 0) fail(fmt::format("negative length {}", n));
        push_long(static_cast<uint64_t>(n));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        const auto* p = reinterpret_cast<const unsigned char*>(take(8));
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];
        auto obj = make(PyObject::Kind::kFloat);
        std::memcpy(&obj->f, &bits, sizeof bits);
        push(std::move(obj));
        break;
      }
      case 'X':
        push_string(PyObject::Kind::kStr, little_endian(4));
        break;
      case 0x8c:
        push_string(PyObject::Kind::kStr, little_endian(1));
        break;
      case 0x8d:
        push_string(PyObject::Kind::kStr, little_endian(8));
        break;
      case 'T': {  // BINSTRING: a Python 2 str, read as text
        const auto n = static_cast<int32_t>(static_cast<uint32_t>(little_endian(4)));
        if (n < 0) fail(fmt::format("negative length {}", n));
        push_string(PyObject::Kind::kStr, static_cast<uint64_t>(n));
        break;
      }
      case 'U':
        push_string(PyObject::Kind::kStr, little_endian(1));
        break;
      case 'B':
        push_string(PyObject::Kind::kBytes, little_endian(4));
        break;
      case 'C':
        push_string(PyObject::Kind::kBytes, little_endian(1));
        break;
      case 0x8e:
        push_string(PyObject::Kind::kBytes, little_endian(8));
        break;
      case 0x85:
      case 0x86:
      case 0x87: {
        const size_t n = static_cast<size_t>(op_ - 0x84);
        if (stack_.size() < stack_floor() + n) fail(fmt::format("needs {} items on the stack", n));
        std::vector<PyRef> items(stack_.end() - static_cast<long>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push_tuple(std::move(items));
        break;
      }
      case 't':
        push_tuple(pop_mark());
        break;
      case 'l': {
        auto obj = make(PyObject::Kind::kList);
        obj->items = pop_mark();
        push(std::move(obj));
        break;
      }
      case 'd': {
        auto items = pop_mark();
        auto obj = make(PyObject::Kind::kDict);
        set_items(obj, items);
        push(std::move(obj));
        break;
      }
      case 'a': {
        PyRef value = pop();
        top_of_kind(PyObject::Kind::kList)->items.push_back(std::move(value));
        break;
      }
      case 'e': {
        auto items = pop_mark();
        auto& list = top_of_kind(PyObject::Kind::kList)->items;
        for (auto& item : items) list.push_back(std::move(item));
        break;
      }
      case 's': {
        PyRef value = pop();
        PyRef key = pop();
        top_of_kind(PyObject::Kind::kDict)->entries.emplace_back(std::move(key), std::move(value));
        break;
      }
      case 'u': {
        auto items = pop_mark();
        set_items(top_of_kind(PyObject::Kind::kDict), items);
        break;
      }
      case 0x94:
        memo_put(memo_.size());
        break;
      case 'q':
        memo_put(little_endian(1));
        break;
      case 'r':
        memo_put(little_endian(4));
        break;
      case 'p':
        memo_put(parse_decimal(read_line()));
        break;
      case 'h':
        memo_get(little_endian(1));
        break;
      case 'j':
        memo_get(little_endian(4));
        break;
      case 'g':
        memo_get(parse_decimal(read_line()));
        break;
      case 'c': {  // GLOBAL: "module\nname\n"
        std::string module = read_line();
        push_global(module + "." + read_line());
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PyRef qualname = pop();
        PyRef module = pop();
        if (module->kind != PyObject::Kind::kStr || qualname->kind != PyObject::Kind::kStr)
          fail("expected the module and the name as two str");
        push_global(module->s + "." + qualname->s);
        break;
      }
      case 'R':
        reduce();
        break;
      case 'Q': {  // BINPERSID: a reference to a storage record of the archive
        PyRef pid = pop();
        push(load_storage(*pid));
        break;
      }
      case 'b': {  // BUILD: OrderedDict's state (a state dict's _metadata) carries no tensors
        PyRef state = pop();
        if (top()->kind != PyObject::Kind::kDict)
          fail(fmt::format("BUILD of a {} is not allowed (only OrderedDict state)",
                           kind_name(top()->kind)));
        break;
      }
      default:
        if (opcode_name(op_) != nullptr) {
          fail(
              "not supported: only dict, list, tuple, str, bytes, int, float, bool and None "
              "pickled with protocol 2 or later can be read");
        }
        fail("unknown opcode (corrupt file, or not a pickle)");
    }
  }

  void push_global(const std::string& qualified) {
    if (read_storage_ == nullptr) {
      fail(
          fmt::format("global '{}' is not allowed: only plain data (dict, list, tuple, str, "
                      "bytes, int, float, bool, None) can be read from this pickle",
                      qualified));
    }
    if (!is_allowed_global(qualified)) {
      fail(
          fmt::format("global '{}' is not allowed: a checkpoint may refer only to {}, {}, {} "
                      "and torch.<Type>Storage (a pickle that names anything else can run "
                      "code when Python loads it)",
                      qualified, kOrderedDict, kRebuildTensor, kRebuildParameter));
    }
    auto obj = make(PyObject::Kind::kGlobal);
    obj->s = qualified;
    push(std::move(obj));
  }

  int64_t int_arg(const PyObject& o, const char* what) {
    if (o.kind != PyObject::Kind::kInt)
      fail(fmt::format("{}: expected an int, found a {}", what, kind_name(o.kind)));
    return o.i;
  }

  std::vector<int64_t> int_tuple(const PyObject& o, const char* what) {
    if (o.kind != PyObject::Kind::kTuple)
      fail(fmt::format("{}: expected a tuple of ints, found a {}", what, kind_name(o.kind)));
    std::vector<int64_t> out;
    for (const auto& item : o.items) {
      const int64_t v = int_arg(*item, what);
      if (v < 0) fail(fmt::format("{}: negative value {}", what, v));
      out.push_back(v);
    }
    return out;
  }

  // ('storage', torch.<Type>Storage, key, location, numel): read once per key, as torch.load.
  PyRef load_storage(const PyObject& pid) {
    if (read_storage_ == nullptr) fail("persistent ids are not allowed in a plain-data pickle");
    if (pid.kind != PyObject::Kind::kTuple || pid.items.size() != 5 ||
        pid.items[0]->kind != PyObject::Kind::kStr || pid.items[0]->s != "storage" ||
        pid.items[1]->kind != PyObject::Kind::kGlobal ||
        pid.items[2]->kind != PyObject::Kind::kStr) {
      fail("expected the persistent id ('storage', torch.<Type>Storage, key, location, numel)");
    }
    const auto type = storage_globals().find(pid.items[1]->s);
    if (type == storage_globals().end())
      fail(fmt::format("'{}' is not a storage type", pid.items[1]->s));
    const std::string& key = pid.items[2]->s;
    const int64_t numel = int_arg(*pid.items[4], "storage size");
    if (numel < 0) fail(fmt::format("storage '{}': negative size {}", key, numel));
    auto cached = storages_.find(key);
    if (cached != storages_.end()) {
      if (cached->second->t.scalar_type() != type->second || cached->second->t.numel() != numel)
        fail(fmt::format("storage '{}' is referred to with two different types or sizes", key));
      return cached->second;
    }
    auto obj = make(PyObject::Kind::kStorage);
    obj->t = (*read_storage_)(key, type->second, numel);
    if (obj->t.scalar_type() != type->second || obj->t.dim() != 1 || obj->t.numel() != numel)
      fail(fmt::format("storage '{}': the archive's record does not hold {} {} elements", key,
                       numel, c10::toString(type->second)));
    storages_.emplace(key, obj);
    return obj;
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]): a view
  // of the storage, every element of which must lie inside it.
  PyRef rebuild_tensor(const std::vector<PyRef>& args) {
    if (args.size() < 4 || args[0]->kind != PyObject::Kind::kStorage)
      fail("_rebuild_tensor_v2 expects (storage, offset, size, stride, ...)");
    const torch::Tensor& storage = args[0]->t;
    const int64_t offset = int_arg(*args[1], "tensor offset");
    const auto size = int_tuple(*args[2], "tensor size");
    const auto stride = int_tuple(*args[3], "tensor stride");
    if (offset < 0) fail(fmt::format("negative tensor offset {}", offset));
    if (size.size() != stride.size())
      fail(fmt::format("tensor size has {} dimensions, stride {}", size.size(), stride.size()));
    // The last element's index, in 128 bits so that hostile sizes cannot wrap around.
    __int128 last = offset;
    bool empty = false;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] == 0) empty = true;
      last += static_cast<__int128>(size[d] > 0 ? size[d] - 1 : 0) * stride[d];
    }
    if (!empty && last >= storage.numel()) {
      fail(
          fmt::format("tensor of size {} (stride {}, offset {}) reaches beyond its storage of "
                      "{} elements",
                      fmt::join(size, "x"), fmt::join(stride, ","), offset, storage.numel()));
    }
    auto obj = make(PyObject::Kind::kTensor);
    obj->t =
        empty ? torch::empty(size, storage.options()) : storage.as_strided(size, stride, offset);
    return obj;
  }

  void reduce() {
    PyRef args = pop();
    PyRef callable = pop();
    if (callable->kind != PyObject::Kind::kGlobal)
      fail(fmt::format("REDUCE of a {} (only an allowed global can be called)",
                       kind_name(callable->kind)));
    if (args->kind != PyObject::Kind::kTuple)
      fail(fmt::format("REDUCE arguments: expected a tuple, found a {}", kind_name(args->kind)));
    const std::string& fn = callable->s;
    if (fn == kOrderedDict) {
      if (!args->items.empty()) fail("OrderedDict(...) with arguments is not supported");
      push(make(PyObject::Kind::kDict));
    } else if (fn == kRebuildTensor) {
      push(rebuild_tensor(args->items));
    } else if (fn == kRebuildParameter) {
      if (args->items.empty() || args->items[0]->kind != PyObject::Kind::kTensor)
        fail("_rebuild_parameter expects (tensor, requires_grad, hooks)");
      push(args->items[0]);
    } else {
      fail(fmt::format("'{}' cannot be called", fn));
    }
  }

  std::string_view data_;
  const std::string& name_;
  const StorageReader* read_storage_;
  std::map<std::string, PyRef> storages_;
  size_t pos_ = 0;
  size_t op_offset_ = 0;
  uint8_t op_ = 0;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;  // stack sizes at each MARK
  std::unordered_map<uint64_t, PyRef> memo_;
  std::vector<PyRef> made_;  // every object, for the destructor
};

constexpr int kMaxDepth = 1000;

Json to_json(const PyObject& obj, const std::string& name,
             std::unordered_set<const PyObject*>& open, int depth) {
  using Kind = PyObject::Kind;
  switch (obj.kind) {
    case Kind::kNone:
      return nullptr;
    case Kind::kBool:
      return obj.b;
    case Kind::kInt:
      return obj.i;
    case Kind::kFloat:
      return obj.f;
    case Kind::kStr:
      return obj.s;
    case Kind::kBytes:
      return Json::binary(std::vector<uint8_t>(obj.s.begin(), obj.s.end()));
    case Kind::kGlobal:
    case Kind::kStorage:
    case Kind::kTensor:  // only a torch archive's reader makes these, and it does not get here
      throw Error(fmt::format("{}: byte {}: a {} cannot be converted to JSON", name, obj.offset,
                              kind_name(obj.kind)));
    default:
      break;
  }
  if (depth > kMaxDepth) {
    throw Error(fmt::format("{}: byte {}: containers nested deeper than {} levels", name,
                            obj.offset, kMaxDepth));
  }
  if (!open.insert(&obj).second) {
    throw Error(fmt::format("{}: byte {}: a {} contains itself; JSON cannot represent that", name,
                            obj.offset, kind_name(obj.kind)));
  }
  Json out;
  if (obj.kind == Kind::kDict) {
    out = Json::object();
    for (const auto& [key, value] : obj.entries) {
      if (key->kind != Kind::kStr) {
        throw Error(
            fmt::format("{}: byte {}: dict key of type {} (created at byte {}); only str "
                        "keys are supported",
                        name, obj.offset, kind_name(key->kind), key->offset));
      }
      out[key->s] =
          to_json(*value, name, open, depth + 1);  // a repeated key overwrites, as in Python
    }
  } else {
    out = Json::array();
    for (const auto& item : obj.items) out.push_back(to_json(*item, name, open, depth + 1));
  }
  open.erase(&obj);
  return out;
}

}  // namespace

nlohmann::ordered_json parse_pickle(std::string_view bytes, const std::string& name) {
  Unpickler unpickler(bytes, name, nullptr);
  PyRef root = unpickler.run();
  std::unordered_set<const PyObject*> open;
  return to_json(*root, name, open, 0);
}

TorchPickle parse_torch_pickle(std::string_view bytes, const std::string& name,
                               const StorageReader& read_storage) {
  Unpickler unpickler(bytes, name, &read_storage);
  PyRef root = unpickler.run();
  if (root->kind != PyObject::Kind::kDict) {
    throw Error(fmt::format("{}: expected a dictionary of tensors, found a {}", name,
                            kind_name(root->kind)));
  }
  TorchPickle out;
  for (const auto& [key, value] : root->entries) {
    if (key->kind != PyObject::Kind::kStr) continue;
    if (value->kind == PyObject::Kind::kTensor) {
      out.tensors[key->s] = value->t;
    } else if (value->kind == PyObject::Kind::kDict) {
      TensorMap& inner = out.nested[key->s];
      for (const auto& [k, v] : value->entries) {
        if (k->kind == PyObject::Kind::kStr && v->kind == PyObject::Kind::kTensor)
          inner[k->s] = v->t;
      }
    }
  }
  return out;
}

nlohmann::ordered_json read_pickle(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw Error(fmt::format("{}: cannot open: {}", file.string(), std::strerror(errno)));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(fmt::format("{}: read error", file.string()));
  return parse_pickle(buffer.str(), file.string());
}

}  // namespace mva
