#!/usr/bin/env bash
# Build fastnn without OpenMP (FASTNN_NO_OPENMP=1: the serial kernels a compiler without OpenMP
# gets) in a throw-away copy of the tree and run a subset of the tests under it: the kernels
# against the reference, plans and determinism.
#
#   .ci/serial.sh [pytest args...]     (no test paths given: the subset below)
#   FASTNN_SERIAL_KEEP=1 keeps the temporary build tree (its path is printed).
#
# Measured: 9.6 min with a larger subset on 2 cores shared with ~7 other builds (build ~5 min of
# it); this subset should take ~3-4 min on an idle 2-core runner.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
. "$ROOT/.ci/lib.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastnn-serial.XXXXXX")"
[ -n "${FASTNN_SERIAL_KEEP:-}" ] && echo "serial.sh: keeping $WORK" || trap 'rm -rf "$WORK"' EXIT
copy_sources

echo "serial.sh: building without OpenMP in $WORK"
build_copy FASTNN_NO_OPENMP=1

if ! has_test_paths "$@"; then
    # The kernels whose serial build differs most (GEMM, reductions, optimizer passes), the plans,
    # determinism and the build facts; the full suite already ran on the OpenMP build.
    set -- "$@" tests/test_ops_linalg.py tests/test_ops_losses.py tests/test_ops_optim.py \
        tests/test_plan.py tests/test_determinism.py tests/test_layout.py tests/test_info.py
fi

cd "$WORK"
"$PY" -c "import fastnn._core as c, sys; sys.exit('serial.sh: the build has OpenMP' if c.has_openmp() else 0)"
HYPOTHESIS_PROFILE=ci "$PY" -m pytest -q -x -p no:cacheprovider "$@"
echo "serial.sh: serial build passes"
