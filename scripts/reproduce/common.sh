# Shared part of scripts/reproduce/<dataset>.sh; sourced by them, not run on its own.
#
# It checks the inputs, builds mvadapter when the binary is missing, trains one config on one
# benchmark and prints our T2V/V2T R@1/5/10, MdR and MnR under both conventions (standard and
# official), the best epoch of each criterion and the paper's numbers.
#
# Environment (the dataset scripts document the same):
#   DATA_ROOT     required: the folder holding <dataset>/annotations and <dataset>/videos
#                 (layout, downloads and pitfalls: docs/datasets.md)
#   CLIP_WEIGHTS  required: OpenAI's ViT-B-16.pt (ViT-B-32.pt for a *_vit_b32 config)
#   CONFIG        the config to train (default configs/<dataset>/mv_adapter_vit_b16.yaml)
#   RUN_DIR       the run directory (default runs/reproduce/<dataset>/<config stem>[_seed<SEED>])
#   SEED          sets train.seed (the paper reports the mean over seeds 0, 42 and 123)
#   DEVICE        cpu | cuda | cuda:N (default: the config's train.device)
#   BUILD_DIR     where scripts/bootstrap.sh builds (default build); MVADAPTER: a binary to use
#   COMPARE_ONLY  1: only print the table of an existing RUN_DIR (no data or weights needed)
# Relative paths are taken from the directory the script is started in. Extra arguments go to
# `mvadapter train` unchanged (e.g. --set train.batch_size=64). A run that stops (Ctrl-C, a
# crash) continues from its saved state when the same command is run again.
#
# The dataset script sets, before sourcing this file:
#   DATASET           msrvtt | msvd | lsmdc | didemo | activitynet (the folder under configs/)
#   DATASET_LABEL     the benchmark and its split, for the table title
#   ANNOTATION_FILES  array: files that must exist in $DATA_ROOT/$DATASET/annotations
#   PAPER             associative array: config method (config stem without _vit_bNN) ->
#                     "source|T2V R@1 R@5 R@10 V2T R@1 R@5 R@10|tunable params %" ("-" = not
#                     reported), all from the paper's tables on CLIP ViT-B/16

REPRO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

repro_die() {
  echo "error: $*" >&2
  exit 2
}

# An absolute path for $1 taken from the caller's directory (the file need not exist).
repro_abspath() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$REPRO_CALLER_DIR" "$1" ;;
  esac
}

repro_check_data() {
  if [ -z "${DATA_ROOT:-}" ]; then
    repro_die "DATA_ROOT is not set. Set it to the folder that holds $DATASET/annotations and" \
      "$DATASET/videos, e.g. DATA_ROOT=/data/video-retrieval $0 (where the files come from and" \
      "the exact layout: docs/datasets.md)."
  fi
  DATA_ROOT=$(repro_abspath "$DATA_ROOT")
  [ -d "$DATA_ROOT" ] || repro_die "DATA_ROOT=$DATA_ROOT is not a directory (see docs/datasets.md)."
  local ann="$DATA_ROOT/$DATASET/annotations" vid="$DATA_ROOT/$DATASET/videos" missing=() f
  [ -d "$ann" ] || repro_die "$ann does not exist: $DATASET_LABEL needs its annotation files" \
    "there (${ANNOTATION_FILES[*]}); see docs/datasets.md."
  for f in "${ANNOTATION_FILES[@]}"; do
    [ -f "$ann/$f" ] || missing+=("$f")
  done
  [ ${#missing[@]} -eq 0 ] || repro_die "$ann lacks ${missing[*]} (expected:" \
    "${ANNOTATION_FILES[*]}); see docs/datasets.md."
  [ -d "$vid" ] || repro_die "$vid does not exist: put the $DATASET videos there" \
    "(see docs/datasets.md)."
  export DATA_ROOT
}

repro_check_weights() {
  if [ -z "${CLIP_WEIGHTS:-}" ]; then
    repro_die "CLIP_WEIGHTS is not set. Set it to OpenAI's released CLIP file for the config's" \
      "backbone (ViT-B-16.pt for *_vit_b16 configs; download links: README.md, 'CLIP weights')."
  fi
  CLIP_WEIGHTS=$(repro_abspath "$CLIP_WEIGHTS")
  [ -f "$CLIP_WEIGHTS" ] || repro_die "CLIP_WEIGHTS=$CLIP_WEIGHTS is not a file."
}

repro_binary() {
  BUILD_DIR=$(repro_abspath "${BUILD_DIR:-$REPRO_ROOT/build}")
  BIN=${MVADAPTER:-$BUILD_DIR/mvadapter}
  BIN=$(repro_abspath "$BIN")
  if [ ! -x "$BIN" ]; then
    [ -z "${MVADAPTER:-}" ] || repro_die "MVADAPTER=$BIN is not an executable."
    echo "== $BIN is missing: building it with scripts/bootstrap.sh $BUILD_DIR"
    bash "$REPRO_ROOT/scripts/bootstrap.sh" "$BUILD_DIR"
    [ -x "$BIN" ] || repro_die "the build did not produce $BIN."
  fi
}

# Prints the comparison table of $RUN_DIR/results.json.
repro_compare() {
  local results="$RUN_DIR/results.json" py=/usr/bin/python3
  [ -f "$results" ] || repro_die "$results does not exist (the run has not evaluated yet)."
  [ -x "$py" ] || py=$(command -v python3 || true)
  if [ -z "$py" ]; then
    echo "(no python3 to print the table: the numbers are in $results)"
    return 0
  fi
  local method=${CONFIG_STEM%_vit_b*} paper_method paper_row
  paper_method=$method
  paper_row=${PAPER[$method]:-}
  if [ -z "$paper_row" ]; then
    paper_method=mv_adapter
    paper_row=${PAPER[mv_adapter]}
  fi
  "$py" - "$results" "$DATASET_LABEL" "$CONFIG_STEM" "$method" "$paper_method" "$paper_row" \
    "$RUN_DIR" <<'PY'
import json
import sys

path, label, stem, method, paper_method, paper_row, run_dir = sys.argv[1:8]
with open(path) as f:
    r = json.load(f)

def num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

def cells(m):
    out = []
    for d in ("t2v", "v2t"):
        x = (m or {}).get(d) or {}
        out += [num(x.get(k)) for k in ("R1", "R5", "R10", "MdR", "MnR")]
    return out

def fmt(v, sign=False):
    if v is None:
        return "-"
    return ("{:+.1f}" if sign else "{:.1f}").format(v)

def line(name, vals, sign=False):
    t = " ".join("{:>6}".format(fmt(v, sign)) for v in vals[:5])
    v = " ".join("{:>6}".format(fmt(v, sign)) for v in vals[5:])
    return "{:<36} {}   | {}".format(name, t, v)

source, numbers, paper_percent = paper_row.split("|")
p = [None if x == "-" else float(x) for x in numbers.split()]
paper = [p[0], p[1], p[2], None, None, p[3], p[4], p[5], None, None]  # no MdR/MnR in the paper

arch = r.get("arch") or ("ViT-B/32" if stem.endswith("_vit_b32") else "ViT-B/16")
print()
print("{}: {} on CLIP {}".format(label, stem, arch))
print("run: {} (report.html there)".format(run_dir))
print()
print("{:<36} {:^34}   | {:^34}".format("", "text -> video", "video -> text"))
head = " ".join("{:>6}".format(h) for h in ("R@1", "R@5", "R@10", "MdR", "MnR"))
print("{:<36} {}   | {}".format("", head, head))
rows = []
# final_epoch: results.json of older runs lack it; their final evaluation followed epochs_done.
done = r.get("final_epoch", r.get("epochs_done", r.get("epochs")))
# Each result under eval.convention ("final", "best") and the official code's ("..._official").
for key, when in (("final", done), ("best", r.get("best_epoch"))):
    if key == "best" and not when:
        continue
    for suffix in ("", "_official"):
        m = r.get(key + suffix)
        if isinstance(m, dict):
            rows.append(("ours, {}{}, {}".format(
                key, " (epoch {})".format(when) if when is not None else "",
                m.get("convention", "?")), cells(m)))
for name, vals in rows:
    print(line(name, vals))
paper_name = {"mv_adapter": "MV-Adapter", "full_finetune": "full fine-tuning",
              "bottleneck_seq": "Adapt_seq", "bottleneck_par": "Adapt_par",
              "no_ta": "MV-Adapter w/o TA", "no_cmt": "MV-Adapter w/o CMT"}.get(paper_method,
                                                                                paper_method)
print(line("paper {} ({})".format(paper_name, source), paper))
comparable = paper_method == method and arch == "ViT-B/16"
if rows and comparable:
    ours = rows[0][1]
    diff = [None if a is None or b is None else a - b for a, b in zip(ours, paper)]
    print(line("ours final - paper", diff, sign=True))
print()
by = r.get("best_by_metric")
if isinstance(by, dict) and by:
    names = (("t2v_r1", "T2V R@1"), ("v2t_r1", "V2T R@1"), ("t2v_sum", "T2V sum"),
             ("v2t_sum", "V2T sum"), ("sum", "sum"))
    parts = ["{} {} (epoch {})".format(label, fmt(num((by.get(k) or {}).get("value"))),
                                       (by.get(k) or {}).get("epoch", "-"))
             for k, label in names if k in by]
    print("Best epoch by criterion (the official runner's log_best): " + ", ".join(parts) + ".")
    print()
if not comparable:
    if arch != "ViT-B/16":
        print("The paper reports CLIP ViT-B/16 only: its row is for orientation, not a target.")
    else:
        print("The paper has no row for '{}': MV-Adapter's is shown for orientation.".format(method))
final = r.get("final") or r.get("best") or {}
dsl = "on (T = {})".format(final.get("dsl_temperature")) if final.get("dsl") else "off"
print("Conventions: 'standard' = CLIP4Clip's (MdR/MnR 1-based), 'official' = MV-Adapter's get_rank"
      " (0-based); both rank the videos for V2T (each by its best caption), so their R@K agree;"
      " 'caption_ranking' ranks every caption. Dual softmax {}.".format(dsl))
print("The paper reports the mean of seeds 0, 42 and 123 and no MdR/MnR. 'best' is the epoch with"
      " the highest T2V R@1, chosen on the test split as the official code does; the difference"
      " row uses the final epoch.")
tp, pct = r.get("trainable_params"), num(r.get("percent_of_clip"))
if tp is not None and pct is not None:
    paper_pct = ""
    if comparable:
        paper_pct = " (paper: {})".format(
            "not reported" if paper_percent == "-" else paper_percent + " %")
    print("Trainable parameters: {:,} = {:.2f} % of CLIP{}.".format(int(tp), pct, paper_pct))
if r.get("finished") is False:
    print("NOTE: the run has not finished ({} of {} epochs); run the script again to continue."
          .format(r.get("epochs_done"), r.get("epochs")))
PY
}

# The whole job: checks, build, train (or resume), table. "$@": extra `mvadapter train` arguments.
repro_main() {
  set -euo pipefail
  REPRO_CALLER_DIR=$(pwd)
  CONFIG=$(repro_abspath "${CONFIG:-$REPRO_ROOT/configs/$DATASET/mv_adapter_vit_b16.yaml}")
  [ -f "$CONFIG" ] || repro_die "CONFIG=$CONFIG does not exist (the configs: configs/README.md)."
  CONFIG_STEM=$(basename "$CONFIG" .yaml)
  local default_run="$REPRO_ROOT/runs/reproduce/$DATASET/$CONFIG_STEM${SEED:+_seed$SEED}"
  RUN_DIR=$(repro_abspath "${RUN_DIR:-$default_run}")

  if [ "${COMPARE_ONLY:-0}" = 1 ]; then
    repro_compare
    return 0
  fi
  repro_check_data
  repro_check_weights
  repro_binary
  cd "$REPRO_ROOT"

  local args=(train "$CONFIG" --set "model.clip=$CLIP_WEIGHTS" --set "train.output_dir=$RUN_DIR")
  [ -z "${SEED:-}" ] || args+=(--set "train.seed=$SEED")
  [ -z "${DEVICE:-}" ] || args+=(--device "$DEVICE")
  if [ -f "$RUN_DIR/results.json" ] && grep -q '"finished": *true' "$RUN_DIR/results.json"; then
    echo "== $RUN_DIR has finished already (delete it, or set RUN_DIR, to train again)"
  else
    if [ -f "$RUN_DIR/state/train_state.safetensors" ]; then
      echo "== continuing the stopped run in $RUN_DIR"
      args+=(--resume "$RUN_DIR")
    fi
    args+=("$@")
    echo "== $BIN ${args[*]}"
    local rc=0
    "$BIN" "${args[@]}" || rc=$?
    if [ $rc -ne 0 ]; then
      echo "error: training stopped (exit $rc); the same command continues it from $RUN_DIR" >&2
      exit $rc
    fi
  fi
  repro_compare
}
