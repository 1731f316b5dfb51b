#!/usr/bin/python3
"""The official MV-Adapter timed as mva_bench times ours; prints one JSON line with its keys.

Imports the official modules at run time from the checkout MVA_REF_SRC names (the official code
has no licence: nothing of it is copied here). Builds its BaselineModel with the msrvtt config's
adapters and random weights of the ViT-B/32 or ViT-B/16 geometry, then times BaselineModel.forward
(tokenisation, encoders, all-gather, symmetric CrossEn loss), backward, the runner's global clip,
BertAdam from init_optimizer with the msrvtt groups, and the logit_scale clamp: the body of
runner/retrieval_runner.py's training loop, in one process (a gloo group of one, no DDP wrapper).
Then no-grad video encoding (get_visual_output) in eval mode.

Differences forced by the CPU, reported rather than hidden:
- convert_weights (fp16 Linear/Conv weights) is not applied: CPU fp16 matmuls do not exist in
  torch 1.13, so fp32 runs use the model as built before that cast and training_type fp32 (the
  official `fp32=True` option).
- bf16 runs set training_type to bfloat16, so the official forward's own autocast is a CPU bf16
  autocast; whatever that raises is printed as "error" in the JSON line.
- mmengine (absent here) is replaced by the three names the modules import: Registry,
  BaseModel (= nn.Module) and runner.amp.autocast (= torch.autocast on the CPU, as mmengine's on a
  machine without CUDA; its dtype=float32, which mmengine rejects on the CPU, as no autocast). ftfy (absent) by its fix_text as the identity (captions are ASCII).
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
import types


def install_stubs():
    import torch
    from torch import nn

    class Registry:
        def __init__(self, name, locations=None):
            self.modules = {}

        def register_module(self):
            def register(cls):
                self.modules[cls.__name__] = cls
                return cls
            return register

        def get(self, name):
            return self.modules[name]

    def autocast(device_type=None, dtype=None, enabled=True, cache_enabled=None):
        # mmengine asserts bf16 on the CPU; the official autocast(dtype=float32) means "none".
        if dtype == torch.float32:
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=False)
        return torch.autocast(device_type="cpu", dtype=dtype, enabled=enabled)

    mods = {name: types.ModuleType(name) for name in
            ["mmengine", "mmengine.registry", "mmengine.model", "mmengine.runner",
             "mmengine.runner.amp", "ftfy"]}
    mods["mmengine.registry"].Registry = Registry
    mods["mmengine.model"].BaseModel = nn.Module
    mods["mmengine.runner.amp"].autocast = autocast
    mods["ftfy"].fix_text = lambda text: text
    sys.modules.update(mods)


class AttrDict(dict):
    """The part of mmengine's ConfigDict that init_optimizer uses (cfg.key, cfg.get)."""
    __getattr__ = dict.__getitem__

    def __setattr__(self, key, value):
        self[key] = value


def config_dict(path):
    """The plain assignments of an official config file (mmengine's _base_ merge done by hand)."""
    ns = {}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), ns)
    return ns


# OpenAI's geometry of the two releases, as load_clip reads it off the weights.
GEOMETRY = {"b32": dict(patch=32), "b16": dict(patch=16)}


def build_model(src, arch, frames, words):
    import torch
    from torch import nn
    from modules.modeling import BaselineModel
    from modules.module_clip import CLIP
    from modules.tokenization_clip import SimpleTokenizer
    from modules.until_module import CrossEn

    cfg = config_dict(os.path.join(src, "configs/msrvtt/msrvtt.py"))
    adapter = cfg["model"]["adapter"]
    adapter["visual"]["mlp"]["seq_len"] = frames
    adapter["text"]["mlp"]["seq_len"] = words
    # BaselineModel.__init__ reads the weights file; the same fields without it.
    model = BaselineModel.__new__(BaselineModel)
    nn.Module.__init__(model)
    model.tokenizer = SimpleTokenizer(os.path.join(src, "modules/bpe_simple_vocab_16e6.txt.gz"))
    model.epoch, model.checkpoint, model.max_words = 0, None, words
    model.clip = CLIP(512, 224, 12, 768, GEOMETRY[arch]["patch"], 77, 49408, 512, 8, 12,
                      adapter).float()
    model.fp32, model.training_type = True, torch.float32
    model.loss_fct = CrossEn()
    # Parameters CLIP leaves uninitialised (torch.empty) and would take from the weights file.
    clip = model.clip
    nn.init.normal_(clip.token_embedding.weight, std=0.02)
    nn.init.normal_(clip.positional_embedding, std=0.01)
    nn.init.normal_(clip.text_projection, std=512 ** -0.5)
    clip.logit_scale.data.fill_(math.log(1 / 0.07))
    return model


def build_optimizer(src, model, total_steps, full):
    from optimizer import build as official_build
    official_build.my_log = lambda *args, **kwargs: None  # its logger needs the runner's setup
    base = config_dict(os.path.join(src, "configs/retrieval_base_cfg.py"))["optimizer"]
    child = config_dict(os.path.join(src, "configs/msrvtt/_adapter_base.py"))
    opt_cfg = AttrDict(base)
    if not full:
        for key, value in child["optimizer"].items():
            opt_cfg[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return official_build.init_optimizer(opt_cfg, model, total_steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=["b32", "b16"], default="b32")
    ap.add_argument("--mode", choices=["adapter", "eval"], default="adapter")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--words", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--intra-op-threads", type=int, default=None,
                    help="torch.set_num_threads (default --threads, as a user sets it; 1 = "
                    "our thread policy: OpenBLAS's own pool takes the cores, runtime.cpp)")
    ap.add_argument("--profile", default=None,
                    help="after timing, profile one more train step and write its op table here")
    ap.add_argument("--gflop-per-step", type=float, default=None,
                    help="mva_bench's count for the same shapes (one formula, in mva_bench.cpp)")
    args = ap.parse_args()

    src = os.environ.get("MVA_REF_SRC")
    if not src or not os.path.isdir(os.path.join(src, "modules")):
        sys.exit("official_bench: set MVA_REF_SRC to a checkout of the official MV-Adapter code")
    sys.path.insert(0, src)
    install_stubs()
    import torch
    import torch.distributed as dist
    import numpy as np

    intra_op = args.threads if args.intra_op_threads is None else args.intra_op_threads
    torch.set_num_threads(intra_op)
    torch.manual_seed(0)
    store = tempfile.NamedTemporaryFile(prefix="official_bench_", delete=False).name
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)

    out = dict(arch="ViT-B/32" if args.arch == "b32" else "ViT-B/16", mode=args.mode,
               precision=args.precision, threads=args.threads, intra_op_threads=torch.get_num_threads(),
               batch=args.batch,
               frames=args.frames, words=args.words, implementation="official")
    model = build_model(src, args.arch, args.frames, args.words)
    if args.precision == "bf16":
        model.training_type = torch.bfloat16
    videos = [torch.randn(args.frames, 3, 224, 224) for _ in range(args.batch)]
    v_mask = torch.ones(args.batch, args.frames, dtype=torch.long)
    words = "a man is cooking pasta in a kitchen while a dog watches him from the door".split()
    caption = " ".join(words * 3)  # longer than max_words: every caption fills its L tokens
    batch = dict(video_batch=videos, caption_batch=[caption] * args.batch, v_mask=v_mask)

    out["train_step_s"] = None
    try:
        if args.mode == "adapter":
            model.train()
            opt = build_optimizer(src, model, args.steps + 1, full=False)

            def step():
                # runner/retrieval_runner.py, one iteration
                loss = model(batch)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad()
                torch.clamp_(model.clip.logit_scale.data, max=np.log(100))

            step()
            times = []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
            out["train_step_s"] = statistics.median(times)
            if args.profile:
                with torch.autograd.profiler.profile() as prof:
                    step()
                with open(args.profile, "w") as f:
                    f.write(prof.key_averages().table(sort_by="self_cpu_time_total",
                                                      row_limit=40))
            opt.zero_grad()

        model.eval()
        video = torch.stack(videos).reshape(-1, 3, 224, 224)

        def encode():
            with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16,
                                                 enabled=args.precision == "bf16"):
                return model.get_visual_output(video, v_mask)

        encode()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            encode()
            times.append(time.perf_counter() - t0)
        out["eval_videos_per_s"] = args.batch / statistics.median(times)
    except Exception as e:  # reported in the line: the official code under this setting fails
        out["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out["total_params"] = sum(p.numel() for p in model.parameters())
    out["gflop_per_step"] = args.gflop_per_step
    seconds = out["train_step_s"] if args.mode == "adapter" else (
        args.batch / out["eval_videos_per_s"] if out.get("eval_videos_per_s") else None)
    out["achieved_gflops"] = (args.gflop_per_step / seconds
                              if args.gflop_per_step and seconds else None)
    print(json.dumps(out))
    dist.destroy_process_group()
    if os.path.exists(store):  # gloo may remove it itself
        os.unlink(store)


if __name__ == "__main__":
    main()
