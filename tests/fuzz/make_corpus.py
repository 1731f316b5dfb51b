#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ from the repository's fixtures and
configs (plus a few hand-made inputs for formats without a fixture). Run from anywhere; it
replaces each corpus folder. Standard library only."""
import json
import math
import pathlib
import pickle
import shutil
import struct
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
OUT = ROOT / "tests" / "fuzz" / "corpus"
SEP = b"\n%%\n"  # fuzz_support.h, split_files


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    """tensors: name -> (dtype, shape, raw bytes)."""
    header, blob = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def unit_rows(n, d):
    rows = []
    for i in range(n):
        r = [math.sin(i * 7 + j + 1) for j in range(d)]
        norm = math.sqrt(sum(x * x for x in r))
        rows += [x / norm for x in r]
    return rows


for t in ["safetensors", "pickle", "clip_tokenizer", "annotations_json", "annotations_text",
          "config_yaml", "embedding_index"]:
    shutil.rmtree(OUT / t, ignore_errors=True)

# safetensors: small valid files over the dtypes, and the first 2 KB of the tiny fixture's files
# (header plus a little data: offsets then point past the end, as in a truncated download).
put("safetensors", "f32_metadata", safetensors({"w": ("F32", [2, 3], f32(range(6)))}, {"k": "v"}))
put("safetensors", "dtypes", safetensors({
    "a": ("F16", [2], b"\x00\x3c\x00\x40"), "b": ("BF16", [1], b"\x80\x3f"),
    "c": ("I64", [1], struct.pack("<q", -5)), "d": ("U8", [3], b"\x01\x02\x03"),
    "e": ("BOOL", [2], b"\x00\x01"), "f": ("F64", [], struct.pack("<d", 1.5)),
    "g": ("I32", [0, 4], b"")}))
for f in ["adapter.safetensors", "io.safetensors"]:
    put("safetensors", f"truncated_{f}", (FIX / "mv_adapter_tiny" / f).read_bytes()[:2048])

# embedding_index: what save_index writes (tensor "embeddings", metadata "mvadapter.index").
def index(kind, n, d, texts):
    meta = {"kind": kind, "dim": d, "ids": [f"video{i}" + ("#0" if texts else "") for i in range(n)],
            "info": {"config": "configs/msrvtt/mv_adapter_vit_b16.yaml"}}
    if texts:
        meta["texts"] = [f"a caption {i}" for i in range(n)]
    return safetensors({"embeddings": ("F32", [n, d], f32(unit_rows(n, d)))},
                       {"mvadapter.index": json.dumps(meta)})
put("embedding_index", "videos", index("videos", 3, 4, False))
put("embedding_index", "captions", index("captions", 2, 8, True))

# pickle: MSVD's caption pickles (protocols 2-4), plain data over every protocol, and the data.pkl
# of the official checkpoint fixture (class instances and persistent ids: rejected with an Error).
for f in sorted((FIX / "annotations" / "msvd").glob("*.pkl")):
    put("pickle", f.name, f.read_bytes())
shared = ["shared"]
value = {"a": [1, -2, 3.5, None, True], "b": (b"\x00\xff", "caf\u00e9"), "c": {"n": 2**40},
         "s": [shared, shared]}
for proto in range(2, 6):
    put("pickle", f"plain_proto{proto}", pickle.dumps(value, protocol=proto))
with zipfile.ZipFile(FIX / "mv_adapter_tiny" / "adapter_official.pth") as z:
    name = next(n for n in z.namelist() if n.endswith("data.pkl"))
    put("pickle", "official_data.pkl", z.read(name))

# clip_tokenizer: the texts of the tokenizer and ftfy fixtures, a few per file.
texts = [c["text"] for c in json.loads((FIX / "tokenizer.json").read_text())["cases"]]
texts += [c["original"] for c in json.loads((FIX / "ftfy_cases.json").read_text())["cases"]]
for i in range(0, len(texts), 8):
    put("clip_tokenizer", f"texts_{i // 8:02d}", "\n".join(texts[i:i + 8]))

# annotations_json: first byte picks the reader (annotations_json_fuzz.cpp, kReaders).
A = FIX / "annotations"
put("annotations_json", "msrvtt_train", b"\x00" + (A / "msrvtt/MSRVTT_data.json").read_bytes() + SEP
    + (A / "msrvtt/MSRVTT_train.9k.csv").read_bytes())
put("annotations_json", "didemo", b"\x01" + (A / "didemo/test_data.json").read_bytes() + SEP
    + (A / "didemo/test_list.txt").read_bytes())
put("annotations_json", "activitynet", b"\x02" + (A / "activitynet/val_1.json").read_bytes() + SEP
    + (A / "activitynet/val_ids.json").read_bytes())
put("annotations_json", "unified", b"\x03" + json.dumps([
    {"caption": "a dog runs", "id": 0, "vid": "video0", "frames": ["video0/2.jpg", "video0/1.jpg"]},
    {"caption": ["a cat", "a cat sleeps"], "id": 1, "vid": "video1", "frames": ["video1/1.jpg"]},
    {"caption": "a dog again", "id": 2, "vid": "video0", "frames": ["video0/1.jpg", "video0/2.jpg"]}]).encode())
put("annotations_json", "jsonl", b"\x04" + b"\n".join([
    b'{"video": "a.mp4", "caption": "a dog", "start": 1.5, "end": 4}',
    b'',
    b'{"video": "clips/b.mp4", "captions": ["x", "y"], "id": "b"}',
    b'{"video": "a.mp4", "caption": "again", "start": 1.5, "end": 4}']))

# annotations_text: first byte picks the reader (annotations_text_fuzz.cpp, kReaders).
put("annotations_text", "msrvtt_test", b"\x00" + (A / "msrvtt/MSRVTT_JSFUSION_test.csv").read_bytes())
put("annotations_text", "msvd", b"\x01" + (A / "msvd/test_list.txt").read_bytes() + SEP
    + (A / "msvd/raw-captions.proto2.pkl").read_bytes())
put("annotations_text", "lsmdc", b"\x02" + (A / "lsmdc/LSMDC16_challenge_1000_publictect.csv").read_bytes())
put("annotations_text", "lsmdc_train", b"\x02" + (A / "lsmdc/LSMDC16_annos_training.csv").read_bytes())
put("annotations_text", "caption_csv", b"\x03" + b'id,video,caption,start,end\r\n'
    b'a,a.mp4,"a dog, running",0,2.5\r\nb,clips/b.mp4,"say ""hi""",,\r\na,a.mp4,again,0,2.5\r\n')

# config_yaml: the shipped configs (their base: files are not beside them in the scratch folder,
# so the base-less ones go through the whole loader), one with a --set override after the
# separator.
for f in sorted((ROOT / "configs").rglob("*.yaml")):
    if f.parent.name in ("base", "msrvtt", "synthetic"):
        put("config_yaml", f"{f.parent.name}_{f.stem}", f.read_bytes())
put("config_yaml", "override", b"train:\n  lr: 1e-4\n  epochs: 5\nmodel: {arch: ViT-B/16}\n" + SEP
    + b"train.lr=[1, {a: 2}]")
put("config_yaml", "env", b"data:\n  root: ${MVA_DATA:-/data}/msrvtt\n  raw: $${HOME}\n")
