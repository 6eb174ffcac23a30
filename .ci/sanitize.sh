#!/usr/bin/env bash
# Build fastnn's C extension with AddressSanitizer + UndefinedBehaviorSanitizer in a
# throw-away copy of the tree and run the kernel tests under it; any report fails.
#
#   .ci/sanitize.sh [pytest args...]     (no test paths given: the kernel and fuzz test files)
#   FASTNN_SANITIZE_KEEP=1 keeps the temporary build tree (its path is printed).
#
# - setup.py honours FASTNN_SANITIZE=1 (-fsanitize=address,undefined,
#   -fno-sanitize-recover=undefined, -O1 -g); the copy keeps the normal in-place
#   build of this checkout untouched.
# - CPython itself is not instrumented, so libasan is LD_PRELOADed (it must be the
#   first runtime loaded). Leak detection is off: Python's own allocator keeps memory
#   until exit by design, which LeakSanitizer would report; tests/test_memory.py
#   covers fastnn's leaks instead.
# - UBSan aborts on the first report (halt_on_error + no-recover build); ASan aborts
#   on the first error by default. The script also greps the log, so a report that
#   did not abort still fails it.
# The kernel, fuzz, plan, fit and determinism tests. Runs in about 4-6 minutes on 2 cores
# (build included).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
CC="${CC:-gcc}"
. "$ROOT/.ci/lib.sh"

LIBASAN="$("$CC" -print-file-name=libasan.so)"
if [ ! -e "$LIBASAN" ]; then
    echo "sanitize.sh: $CC has no libasan.so; cannot run the sanitizer build" >&2
    exit 1
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastnn-sanitize.XXXXXX")"
[ -n "${FASTNN_SANITIZE_KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
copy_sources

echo "sanitize.sh: building with -fsanitize=address,undefined in $WORK"
build_copy FASTNN_SANITIZE=1 CC="$CC"

# Test files/ids given? Otherwise the kernel tests (plus any pytest options given).
if ! has_test_paths "$@"; then
    set -- "$@" tests/test_ops_activations.py tests/test_ops_layers.py tests/test_ops_linalg.py \
        tests/test_ops_losses.py tests/test_ops_optim.py tests/test_gemm_kernels.py \
        tests/test_layers.py tests/test_fuzz_ops.py tests/test_fuzz_modules.py tests/test_concurrency.py \
        tests/test_plan.py tests/test_plan_optim.py tests/test_fit.py tests/test_determinism.py
fi

LOG="$WORK/sanitize.log"
set +e
(
    cd "$WORK"
    export LD_PRELOAD="$LIBASAN"
    # allocator_may_return_null: a 4 TiB request (tests/test_fuzz_ops.py) must fail like malloc does.
    # Reports go to files as well: pytest captures fd 2, and a report that aborts the
    # process mid-test would otherwise vanish with the capture buffer.
    export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:log_path=$WORK/asan"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$WORK/ubsan"
    export FASTNN_SANITIZE=1            # tests skip cases that are known UB (see tests/test_fuzz_ops.py)
    export HYPOTHESIS_PROFILE=ci
    export OMP_NUM_THREADS=2            # exercise the parallel paths
    # RSS-growth tests are meaningless under ASan (freed memory sits in its quarantine).
    "$PY" -m pytest -q -x -p no:cacheprovider -k "not memory_growth" "$@"
) 2>&1 | tee "$LOG"
STATUS=${PIPESTATUS[0]}
set -e
for f in "$WORK"/asan.* "$WORK"/ubsan.*; do
    [ -e "$f" ] && { echo "---- $f"; cat "$f"; } >>"$LOG" && cat "$f"
done

if grep -qE "ERROR: AddressSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$LOG"; then
    echo "sanitize.sh: sanitizer reports found (see above)" >&2
    exit 1
fi
if [ "$STATUS" -ne 0 ]; then
    echo "sanitize.sh: tests failed under the sanitizers (status $STATUS)" >&2
    exit "$STATUS"
fi
echo "sanitize.sh: clean (no ASan/UBSan reports)"
