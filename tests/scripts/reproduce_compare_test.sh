#!/usr/bin/env bash
# scripts/reproduce/<dataset>.sh with COMPARE_ONLY=1 on a hand-made results.json: the table has
# our final and best rows under both conventions (standard, official), the best epoch of each
# criterion and the paper's row; a results.json without the official keys (an older run) still
# prints its standard rows.
#   tests/scripts/reproduce_compare_test.sh
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
metrics() {  # $1 convention, $2 MdR, $3 MnR
  printf '{"t2v":{"R1":48.1,"R5":77.5,"R10":86.0,"MdR":%s,"MnR":%s},' "$2" "$3"
  printf '"v2t":{"R1":70.2,"R5":92.0,"R10":95.9,"MdR":%s,"MnR":%s},' "$2" "$3"
  printf '"num_captions":27763,"num_videos":670,"convention":"%s","dsl":false}' "$1"
}
mkdir -p "$tmp/new" "$tmp/old"
cat >"$tmp/new/results.json" <<JSON
{"arch":"ViT-B/16","epochs":5,"epochs_done":5,"finished":true,"best_epoch":4,"final_epoch":5,
 "final":$(metrics standard 2.0 12.5),"final_official":$(metrics official 1.0 11.5),
 "best":$(metrics standard 2.0 12.5),"best_official":$(metrics official 1.0 11.5),
 "best_by_metric":{"t2v_r1":{"epoch":4,"value":48.1},"v2t_r1":{"epoch":3,"value":70.9},
   "t2v_sum":{"epoch":4,"value":211.6},"v2t_sum":{"epoch":5,"value":258.1},
   "sum":{"epoch":4,"value":469.7}}}
JSON
COMPARE_ONLY=1 RUN_DIR="$tmp/new" bash "$src/scripts/reproduce/msvd.sh" >"$tmp/out" 2>&1 ||
  { cat "$tmp/out"; fail "COMPARE_ONLY run failed"; }
expect() { grep -qF -- "$1" "$tmp/out" || { cat "$tmp/out"; fail "no line with: $1"; }; }
expect "ours, final (epoch 5), standard        48.1   77.5   86.0    2.0   12.5"
expect "ours, final (epoch 5), official        48.1   77.5   86.0    1.0   11.5"
expect "ours, best (epoch 4), standard"
expect "ours, best (epoch 4), official"
expect "paper MV-Adapter (Table 2)             49.4   78.3   87.0      -      -"
expect "ours final - paper                     -1.3"
expect "T2V R@1 48.1 (epoch 4), V2T R@1 70.9 (epoch 3), T2V sum 211.6 (epoch 4), V2T sum 258.1 (epoch 5), sum 469.7 (epoch 4)"

cat >"$tmp/old/results.json" <<JSON
{"arch":"ViT-B/16","epochs_done":5,"best_epoch":4,
 "final":$(metrics standard 2.0 12.5),"best":$(metrics standard 2.0 12.5)}
JSON
COMPARE_ONLY=1 RUN_DIR="$tmp/old" bash "$src/scripts/reproduce/msvd.sh" >"$tmp/out" 2>&1 ||
  { cat "$tmp/out"; fail "COMPARE_ONLY run on an older results.json failed"; }
expect "ours, final (epoch 5), standard"
if grep -q "official  " "$tmp/out" || grep -q "Best epoch by criterion" "$tmp/out"; then
  cat "$tmp/out"; fail "rows for keys the older results.json does not have"
fi
echo ok
