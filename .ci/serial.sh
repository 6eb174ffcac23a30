#!/usr/bin/env bash
# Build fastnn without OpenMP (FASTNN_NO_OPENMP=1: the serial kernels a compiler without OpenMP
# gets) in a throw-away copy of the tree and run a subset of the tests under it: the kernels
# against the reference, the optimizers, plans, fit and determinism.
#
#   .ci/serial.sh [pytest args...]     (no test paths given: the subset below)
#   FASTNN_SERIAL_KEEP=1 keeps the temporary build tree (its path is printed).
#
# Runs in about 2-4 minutes on 2 cores (build included).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastnn-serial.XXXXXX")"
[ -n "${FASTNN_SERIAL_KEEP:-}" ] && echo "serial.sh: keeping $WORK" || trap 'rm -rf "$WORK"' EXIT
tar -C "$ROOT" --exclude=./build --exclude='./.venv*' --exclude='*.so' --exclude='*.o' \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis --exclude=.git \
    --exclude=./fastnn/_core.c -cf - . | tar -C "$WORK" -xf -

echo "serial.sh: building without OpenMP in $WORK"
(cd "$WORK" && FASTNN_NO_OPENMP=1 "$PY" setup.py build_ext --inplace -q >"$WORK/build.log" 2>&1) || {
    cat "$WORK/build.log" >&2
    exit 1
}

HAVE_PATHS=0
for a in "$@"; do case "$a" in -*) ;; *) HAVE_PATHS=1 ;; esac; done
if [ "$HAVE_PATHS" -eq 0 ]; then
    set -- "$@" tests/test_ops_activations.py tests/test_ops_layers.py tests/test_ops_linalg.py \
        tests/test_ops_losses.py tests/test_ops_optim.py tests/test_gemm_kernels.py tests/test_optimizers.py \
        tests/test_plan.py tests/test_plan_optim.py tests/test_fit.py tests/test_determinism.py \
        tests/test_layout.py tests/test_info.py
fi

cd "$WORK"
"$PY" -c "import fastnn._core as c, sys; sys.exit('serial.sh: the build has OpenMP' if c.has_openmp() else 0)"
HYPOTHESIS_PROFILE=ci "$PY" -m pytest -q -x -p no:cacheprovider "$@"
echo "serial.sh: serial build passes"
