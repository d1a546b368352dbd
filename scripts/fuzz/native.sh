#!/bin/sh
# libFuzzer with AddressSanitizer and UBSan over convkit's native targets (native/fuzz/fuzz_*.cpp):
# builds them with clang into build-fuzz/ (CONVKIT_FUZZ=ON; clang is needed here only, never by
# npm install or CI), then fuzzes each target in turn for SECONDS (default 300), one process at a
# time, starting from its regression corpus native/fuzz/corpus/<target>/. New interesting inputs
# stay in build-fuzz/corpus/<target>/; a crashing input is copied into the regression corpus as
# crash-<hash>, which ctest then replays on every build (fuzz_<target>_corpus).
#
#   scripts/fuzz/native.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz/native.sh 600 ops
set -eu
cd "$(dirname "$0")/../.."
seconds=${1:-300}
[ $# -gt 0 ] && shift
targets=${*:-$(ls native/fuzz/fuzz_*.cpp | sed 's|native/fuzz/fuzz_||; s|\.cpp$||')}
CXX=${CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "native.sh: $CXX not found (apt-get install clang)"; exit 2; }

cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=Release \
  -DCONVKIT_FUZZ=ON -DCONVKIT_CUDA=OFF -DCONVKIT_TESTS=OFF >/dev/null
status=0
for t in $targets; do
  ninja -C build-fuzz "fuzz_$t"
  rm -rf "build-fuzz/artifacts/$t"
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
  echo "== fuzz_$t for ${seconds}s"
  # The ops target's tensors are small, so an allocation past 512 MB came from unchecked sizes.
  # A net may legitimately ask for gigabytes of weights (2^24 filters): those inputs run in a
  # forked child and are dropped when they pass the limit, while crashes still stop the run.
  extra=""
  [ "$t" = net ] && extra="-fork=1 -ignore_ooms=1"
  # shellcheck disable=SC2086
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "build-fuzz/fuzz_$t" "build-fuzz/corpus/$t" "native/fuzz/corpus/$t" $extra \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=20 -max_len=4096 \
    -artifact_prefix="build-fuzz/artifacts/$t/" -print_final_stats=1 2>"build-fuzz/fuzz_$t.log" || true
  # The artifacts decide: fork mode exits non-zero for ignored out-of-memory inputs too.
  ls "build-fuzz/artifacts/$t" | grep -Eq '^(crash|leak|timeout)-' && status=1
  [ "$t" != net ] && ls "build-fuzz/artifacts/$t" | grep -q '^oom-' && status=1
  grep -E "^stat::(number_of_executed_units|peak_rss_mb|new_units_added)|^(==[0-9]+==ERROR|SUMMARY)|runtime error|^INFO: fuzzed for" "build-fuzz/fuzz_$t.log" || true
  grep -E "^#[0-9]+:? " "build-fuzz/fuzz_$t.log" | tail -1  # the last progress line: executions, coverage
  # Crashes and leaks become regression inputs; out-of-memory and timeout inputs are not replayable.
  for f in "build-fuzz/artifacts/$t"/crash-* "build-fuzz/artifacts/$t"/leak-*; do
    [ -f "$f" ] || continue
    cp "$f" "native/fuzz/corpus/$t/$(basename "$f")"
    echo "   kept $(basename "$f") in native/fuzz/corpus/$t/ (ctest replays it)"
  done
done
exit $status
