# Sourced before running anything built with -DMVA_SANITIZE=ON or -DMVA_FUZZ=ON (scripts/fuzz.sh,
# .ci/run): every report ends the process with a non-zero status, so a test or a fuzz run cannot
# pass with one. The build already compiles UBSan with -fno-sanitize-recover; ASan halts on the
# first error by default. Leak checking stays on, with the known leaks of the libraries we link
# suppressed by name (lsan.supp) rather than turned off.
_mva_sanitizers_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$_mva_sanitizers_dir/lsan.supp:print_suppressions=0}
unset _mva_sanitizers_dir
