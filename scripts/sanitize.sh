#!/bin/sh
# convkit's native code under sanitizers. npm test runs the asan and tsan steps (about four
# minutes of builds and runs on a 2-core machine); train and fuzz are longer, run by hand.
# Steps (default: all, in this order):
#
#   asan   build-asan/: the addon and the ctest suite with CONVKIT_SANITIZE=address,undefined
#          (cmake-js, CUDA off), then ctest.
#   tsan   build-tsan/: the ctest suite with CONVKIT_SANITIZE=thread (plain cmake: node itself is
#          not built for ThreadSanitizer), then ctest. The thread pool, the streams' task queues
#          and tensors freed while their kernels run (test_core_concurrency) are what it watches.
#   train  a short training run of the seeds' MNIST model through node with the ASan addon:
#          node is not instrumented, so libasan is preloaded and leak checking is off (node's own
#          allocations at exit are not convkit's):
#            LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
#            CONVKIT_ADDON=build-asan/Release/convkit.node node scripts/sanitize-train.js
#   fuzz   the hostile-input fuzzer (scripts/fuzz) against the ASan addon: CASES cases (2000).
#
#   scripts/sanitize.sh [asan|tsan|train|fuzz]...
set -eu
cd "$(dirname "$0")/.."
steps=${*:-asan tsan train fuzz}
jobs=${JOBS:-2}
libasan=$(gcc -print-file-name=libasan.so)
failed=""

for step in $steps; do
  echo "=== sanitize: $step"
  case $step in
    asan)
      npx cmake-js compile -O build-asan -p "$jobs" --CDCONVKIT_SANITIZE=address,undefined --CDCONVKIT_CUDA=OFF
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure || failed="$failed asan"
      ;;
    tsan)
      cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVKIT_SANITIZE=thread -DCONVKIT_CUDA=OFF >/dev/null
      ninja -C build-tsan -j "$jobs"
      TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --test-dir build-tsan --output-on-failure || failed="$failed tsan"
      ;;
    train)
      [ -f dist/index.js ] || npx tsc -p tsconfig.json
      LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 CONVKIT_ADDON=build-asan/Release/convkit.node \
        node scripts/sanitize-train.js || failed="$failed train"
      ;;
    fuzz)
      node scripts/fuzz/run.js --asan build-asan/Release/convkit.node --cases "${CASES:-2000}" --seed "${SEED:-1}" \
        || failed="$failed fuzz"
      ;;
    *) echo "sanitize.sh: unknown step '$step' (asan, tsan, train, fuzz)"; exit 2 ;;
  esac
done
if [ -n "$failed" ]; then
  echo "sanitize: failed:$failed"
  exit 1
fi
echo "sanitize: all steps passed ($steps)"
