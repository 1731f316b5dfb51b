#!/usr/bin/env bash
# ctest -L package: the installed package as a user gets it. Installs this build tree into a
# staging prefix and moves it elsewhere (the package must not depend on where it was installed),
# checks the files and the installed `mvadapter` (its version, and that it reads the installed BPE
# vocabulary), checks find_package's version rule, then builds examples/ against the package and
# runs both examples on the fixture clips:
#   - custom_training_loop: its loss must go down, and it saves adapter weights;
#   - embed_and_search with those weights: every video must rank itself first, its tokenizer must
#     read the package's vocabulary, and its caption -> video R@1 must be the one the training
#     program's evaluation reported (the same model, ranked by two routes).
#   package_test.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
rm -rf "$3"
mkdir -p "$3"
work=$(cd "$3" && pwd)
fail() {
  echo "package test: $*" >&2
  exit 1
}
t0=$(date +%s)
cmake --install "$build" --prefix "$work/staging" >"$work/install.log"
mv "$work/staging" "$work/prefix"
prefix=$work/prefix
for f in bin/mvadapter include/mvadapter/mvadapter.h include/mvadapter/core/version.h \
  include/mvadapter/api/retriever.h share/mvadapter/bpe_simple_vocab_16e6.txt.gz \
  lib/cmake/mvadapter/mvadapterConfig.cmake lib/cmake/mvadapter/mvadapterConfigVersion.cmake \
  lib/cmake/mvadapter/mvadapterTargets.cmake; do
  [ -e "$prefix/$f" ] || fail "$f was not installed"
done
# Private headers of the text layer stay private.
[ ! -e "$prefix/include/mvadapter/text/unicode.h" ] || fail "a private header was installed"

# The installed program, run from elsewhere: its version and the vocabulary next to it (the
# configured prefix is not where it now lives, and the source tree comes last in the lookup).
out=$(cd "$work" && "$prefix/bin/mvadapter" version)
echo "$out"
grep -q "^mvadapter 0\.2\.0$" <<<"$out" || fail "mvadapter version does not say 0.2.0"
grep -qF "vocabulary: $prefix/share/mvadapter/bpe_simple_vocab_16e6.txt.gz" <<<"$out" ||
  fail "the installed mvadapter does not read the installed vocabulary"
ids=$(cd "$work" && "$prefix/bin/mvadapter" tokenize "a dog")
echo "$ids"
grep -q "320" <<<"$ids" || fail "tokenize 'a dog' lacks the id of 'a' (320): $ids"

# The same with the source tree's assets/ out of sight (a private mount namespace hides it behind
# an empty tmpfs), where the machine allows one (root, or user namespaces).
if unshare -m --propagation private true 2>/dev/null; then
  hidden=$(unshare -m --propagation private sh -c \
    "mount -t tmpfs none '$src/assets' && cd '$work' && '$prefix/bin/mvadapter' tokenize 'a dog'")
  [ "$hidden" = "$ids" ] || fail "without the source tree's assets, tokenize gave '$hidden'"
  echo "without the source tree's assets/: $hidden"
else
  echo "(no mount namespace here: the run without the source tree's assets/ is skipped)"
fi

# find_package's version rule: 0.2 is found, 0.3 (a newer API) and 1.0 are not.
for want in 0.2 0.3 1.0; do
  mkdir -p "$work/find_$want"
  cat >"$work/find_$want/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(find_check LANGUAGES CXX)
find_package(mvadapter $want REQUIRED)
CMAKE
  if cmake -S "$work/find_$want" -B "$work/find_$want/build" -DCMAKE_PREFIX_PATH="$prefix" \
    >"$work/find_$want.log" 2>&1; then
    [ "$want" = 0.2 ] || fail "find_package(mvadapter $want) accepted version 0.2.0"
  else
    [ "$want" != 0.2 ] || { cat "$work/find_$want.log"; fail "find_package(mvadapter 0.2) failed"; }
  fi
done
t1=$(date +%s)

cmake -S "$src/examples" -B "$work/examples" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/examples_configure.log" || { cat "$work/examples_configure.log"; fail "configure"; }
cmake --build "$work/examples" -j "${MVA_BUILD_JOBS:-2}"
t2=$(date +%s)

videos=$src/tests/fixtures/video/videos
train_out=$(cd "$work" && "$work/examples/custom_training_loop" "$videos" "$work/adapter.safetensors")
echo "$train_out"
read -r first last < <(sed -n 's/^loss: first epoch \([0-9.]*\), last epoch \([0-9.]*\)$/\1 \2/p' <<<"$train_out")
[ -n "${first:-}" ] || fail "custom_training_loop printed no loss line"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' ||
  fail "the loss did not go down ($first -> $last)"
[ -f "$work/adapter.safetensors" ] || fail "custom_training_loop saved no weights"
trained_r1=$(sed -n 's/^text -> video R@1: .* before training, \([0-9.]*\) after$/\1/p' <<<"$train_out")

search_out=$(cd "$work" && "$work/examples/embed_and_search" "$videos" "$work/adapter.safetensors")
echo "$search_out"
n=$(ls "$videos" | wc -l)
grep -q "^indexed $n videos" <<<"$search_out" || fail "embed_and_search did not index $n videos"
grep -q "^video -> video: $n of $n videos rank themselves first$" <<<"$search_out" ||
  fail "a video did not rank itself first"
grep -qF "vocabulary: $prefix/share/mvadapter/bpe_simple_vocab_16e6.txt.gz" <<<"$search_out" ||
  fail "the example does not read the package's vocabulary"
correct=$(sed -n 's/^caption -> video R@1: \([0-9]*\) of .*/\1/p' <<<"$search_out")
want=$(awk -v r="$trained_r1" -v n="$n" 'BEGIN { printf "%d", r * n / 100 + 0.5 }')
[ "$correct" = "$want" ] ||
  fail "embed_and_search ranks $correct of $n captions first, the evaluation said R@1 $trained_r1"
t3=$(date +%s)
echo "package test: install + checks $((t1 - t0)) s, examples built in $((t2 - t1)) s, run in $((t3 - t2)) s"
