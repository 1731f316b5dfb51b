#!/usr/bin/python3
"""The Python reference pipeline for decode_bench: cv2 (FFmpeg) + PIL + numpy, as the
CLIP4Clip / MV-Adapter data loaders do it, on the same clips with the same frame choice.

Per clip: decode sequentially, keep the 1-fps frames (int(s * fps)) as RGB, choose F with
floor(i * n / F), PIL bicubic resize of the short side + centre crop, ToTensor + Normalize with
CLIP's mean/std (numpy float32), zero-pad to F. Workers are processes (a DataLoader with
num_workers = N), since Python threads would share the interpreter lock.

    /usr/bin/python3 bench/decode_bench_python.py [--videos DIR] [--repeat R] [--workers 1,2]
"""
import argparse
import glob
import multiprocessing as mp
import os
import resource
import time

import cv2
import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32).reshape(3, 1, 1)
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32).reshape(3, 1, 1)
FRAMES, SIZE = 12, 224


def load_video_clip(path):
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    fps = cap.get(cv2.CAP_PROP_FPS)
    one_fps, i, s = [], 0, 0
    while cap.grab():
        if i == int(s * fps):
            ok, bgr = cap.retrieve()
            one_fps.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            s += 1
        i += 1
    n = len(one_fps)
    picked = [k * n // FRAMES for k in range(FRAMES)] if n > FRAMES else list(range(n))
    out = np.zeros((FRAMES, 3, SIZE, SIZE), np.float32)
    for j, k in enumerate(picked):
        img = Image.fromarray(one_fps[k])
        w, h = img.size
        if w >= h:
            nw, nh = int(round(SIZE * w / h)), SIZE
        else:
            nw, nh = SIZE, int(round(SIZE * h / w))
        img = img.resize((nw, nh), Image.BICUBIC)
        left, top = int(round((nw - SIZE) / 2.0)), int(round((nh - SIZE) / 2.0))
        img = img.crop((left, top, left + SIZE, top + SIZE))
        x = np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0
        out[j] = (x - MEAN) / STD
    return out


def cpu_seconds():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--videos", default=os.path.join(here, "..", "tests", "fixtures", "video", "videos"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.videos, "*.mp4"))) * args.repeat
    load_video_clip(files[0])  # warm-up
    for workers in [int(w) for w in args.workers.split(",")]:
        c0, t0 = cpu_seconds(), time.perf_counter()
        if workers == 1:
            clips = [load_video_clip(f) for f in files]
        else:
            with mp.get_context("fork").Pool(workers) as pool:
                clips = pool.map(load_video_clip, files, chunksize=1)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds() - c0
        print(f"python workers={workers} clips={len(clips)} frames={FRAMES} size={SIZE} "
              f"wall={wall:.2f}s cpu={cpu:.2f}s cpu/clip={1e3 * cpu / len(clips):.0f}ms "
              f"clips/s={len(clips) / wall:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
