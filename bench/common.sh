# Shared by the bench/*.sh scripts: sourced, not run. Strict mode, the repository root as the
# working folder, and $work, a temporary folder removed on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bench_now() { date +%s.%N; }
# Seconds since $1 (a bench_now value), one decimal.
bench_since() { awk -v a="$1" -v b="$(bench_now)" 'BEGIN {printf "%.1f", b - a}'; }
# The median of the arguments (the lower middle one for an even count).
bench_median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# $1 / $2, two decimals.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# Writes the synthetic Shapes data with binary $1 to $work/shapes and points DEMO_DIR (which the
# configs/synthetic files read) at $work.
bench_shapes() {
  "$1" synth --out "$work/shapes" --seed 0 >/dev/null
  export DEMO_DIR="$work"
}
