#!/usr/bin/env bash
# Ours beside the official code, back to back in one run: for each arch, mva_bench and
# official_bench.py with the same batch/frames/words/steps/threads (MV-Adapter training in fp32
# and bf16, no-grad encoding), then our full fine-tuning (memory), then the 2048³ matmul peak.
# Prints the machine, the load, every JSON line and the ratios, each saying which way it points.
#   MVA_REF_SRC=/work/ref-mvadapter bench/compare_official.sh [BUILD=build] [ARCHS="b32 b16"]
# Environment: STEPS (3), BATCH (2), FRAMES (12), WORDS (32), THREADS (2); BF16_ARCHS (b32): the
# archs our bf16 step runs for (without avx512_bf16/AMX it is ~9x slower than fp32: ViT-B/16
# would take ~12 min); BOTH_POOLS_ARCHS (b32): the archs the official code also runs with
# torch.set_num_threads(THREADS) as its runner would, beside the same thread policy as ours
# (torch 1 thread, OpenBLAS's pool the THREADS cores: src/core/runtime.cpp); CKPT_ARCHS (b32):
# the archs ours also runs with train.activation_checkpointing (memory for one more forward);
# ROUNDS (1): alternating pairs of the fp32 adapter step, ours then official, whose ratios and
# their median the summary adds (the machine's speed moves between runs).
source "$(dirname "$0")/common.sh"
BIN="${1:-build}/bench/mva_bench"
ARCHS="${2:-b32 b16}"
: "${MVA_REF_SRC:?set MVA_REF_SRC to a checkout of the official MV-Adapter code}"
export MVA_REF_SRC
shape=(--batch "${BATCH:-2}" --frames "${FRAMES:-12}" --words "${WORDS:-32}"
  --steps "${STEPS:-3}" --threads "${THREADS:-2}")

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
flags=$(grep -m1 '^flags' /proc/cpuinfo)
for f in avx2 avx512f avx512_bf16 amx_bf16 amx_tile; do
  if grep -qw "$f" <<<"$flags"; then echo -n "$f: yes  "; else echo -n "$f: no  "; fi
done
echo
echo "load before: $(uptime)"
echo "command: MVA_REF_SRC=$MVA_REF_SRC bench/compare_official.sh ${1:-build} \"$ARCHS\" (${shape[*]})"

ours() { "$BIN" "${shape[@]}" "$@"; }
official() { /usr/bin/python3 bench/official_bench.py "${shape[@]}" "$@" 2>"$work/official.err"; }

for arch in $ARCHS; do
  ours --arch "$arch" --mode adapter --precision fp32 | tee "$work/$arch.ours.fp32"
  gflop=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["gflop_per_step"])' \
    <"$work/$arch.ours.fp32")
  official --arch "$arch" --mode adapter --precision fp32 --gflop-per-step "$gflop" \
    --intra-op-threads 1 | tee "$work/$arch.official.fp32"
  # More alternating pairs (ROUNDS): this machine's speed moves between runs, so one pair's
  # ratio can be off by 20 %; the summary prints every pair's ratio and their median.
  for r in $(seq 2 "${ROUNDS:-1}"); do
    ours --arch "$arch" --mode adapter --precision fp32 | tee "$work/$arch.ours.fp32.r$r"
    official --arch "$arch" --mode adapter --precision fp32 --gflop-per-step "$gflop" \
      --intra-op-threads 1 | tee "$work/$arch.official.fp32.r$r"
  done
  if grep -qw "$arch" <<<"${BOTH_POOLS_ARCHS-b32}"; then
    official --arch "$arch" --mode adapter --precision fp32 --gflop-per-step "$gflop" |
      tee "$work/$arch.official.fp32.both_pools"
  fi
  if grep -qw "$arch" <<<"${BF16_ARCHS-b32}"; then
    ours --arch "$arch" --mode adapter --precision bf16 | tee "$work/$arch.ours.bf16"
  fi
  official --arch "$arch" --mode adapter --precision bf16 --gflop-per-step "$gflop" \
    --intra-op-threads 1 | tee "$work/$arch.official.bf16"
  ours --arch "$arch" --mode full --precision fp32 | tee "$work/$arch.ours.full"
  if grep -qw "$arch" <<<"${CKPT_ARCHS-b32}"; then
    ours --arch "$arch" --mode adapter --precision fp32 --set train.activation_checkpointing=true |
      tee "$work/$arch.ours.ckpt"
  fi
done
ours --mode matmul | tee "$work/matmul"
echo "load after: $(uptime)"

/usr/bin/python3 - "$work" $ARCHS <<'EOF'
import json, sys
work, archs = sys.argv[1], sys.argv[2:]
def load(name):
    try:
        with open(f"{work}/{name}") as f:
            return json.loads(f.read())
    except FileNotFoundError:  # a run left out (BF16_ARCHS, BOTH_POOLS_ARCHS)
        return {}
def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"
for arch in archs:
    o32, f32 = load(f"{arch}.ours.fp32"), load(f"{arch}.official.fp32")
    o16, f16 = load(f"{arch}.ours.bf16"), load(f"{arch}.official.bf16")
    full = load(f"{arch}.ours.full")
    print(f"{o32['arch']}:")
    print(f"  fp32 train step, ours / official (lower is better, target <= 0.3): "
          f"{ratio(o32['train_step_s'], f32.get('train_step_s'))}")
    print(f"  eval videos/s, ours / official (higher is better, target >= 3): "
          f"{ratio(o32['eval_videos_per_s'], f32.get('eval_videos_per_s'))}")
    print(f"  peak RSS, ours / official (lower is better, target <= 0.7): "
          f"{ratio(o32['peak_rss_mib'], f32['peak_rss_mib'])}")
    print(f"  peak RSS, ours adapter / ours full fine-tuning (target <= 0.6): "
          f"{ratio(o32['peak_rss_mib'], full['peak_rss_mib'])}")
    ckpt = load(f"{arch}.ours.ckpt")
    if ckpt:
        print(f"  with train.activation_checkpointing: peak RSS ours / official "
              f"{ratio(ckpt['peak_rss_mib'], f32['peak_rss_mib'])}, / ours full "
              f"{ratio(ckpt['peak_rss_mib'], full['peak_rss_mib'])}; step ours / official "
              f"{ratio(ckpt['train_step_s'], f32.get('train_step_s'))}")
    pairs = [(o32, f32)]
    while load(f"{arch}.ours.fp32.r{len(pairs) + 1}"):
        r = len(pairs) + 1
        pairs.append((load(f"{arch}.ours.fp32.r{r}"), load(f"{arch}.official.fp32.r{r}")))
    if len(pairs) > 1:
        steps = [o["train_step_s"] / f["train_step_s"] for o, f in pairs
                 if o.get("train_step_s") and f.get("train_step_s")]
        evals = [o["eval_videos_per_s"] / f["eval_videos_per_s"] for o, f in pairs
                 if o.get("eval_videos_per_s") and f.get("eval_videos_per_s")]
        med = lambda v: sorted(v)[len(v) // 2] if v else float("nan")
        print(f"  {len(pairs)} alternating pairs: step ours / official "
              f"{', '.join(f'{x:.2f}' for x in steps)} (median {med(steps):.2f}); eval "
              f"{', '.join(f'{x:.2f}' for x in evals)} (median {med(evals):.2f})")
    both = load(f"{arch}.official.fp32.both_pools")
    if both:
        print(f"  fp32 train step, ours / official with torch.set_num_threads as its runner "
              f"(lower is better): {ratio(o32['train_step_s'], both.get('train_step_s'))}; eval "
              f"ours / that: {ratio(o32['eval_videos_per_s'], both.get('eval_videos_per_s'))}")
    print(f"  train step, ours fp32 / ours bf16 (bf16 speed-up, target >= 1.6 on AVX512-BF16/AMX): "
          f"{ratio(o32['train_step_s'], o16.get('train_step_s'))}")
    print(f"  official bf16: {f16.get('error') or 'ran, step ' + str(f16['train_step_s']) + ' s'}")
m = load("matmul")
print(f"matmul 2048^3 peak: fp32 {m['matmul_fp32_gflops']:.1f} GFLOP/s, "
      f"bf16 {m['matmul_bf16_gflops']:.1f} GFLOP/s")
EOF
