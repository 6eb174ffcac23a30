#!/usr/bin/env bash
# A short training run (every layer, AdamW and SGD, fit with validation, save/load round trip)
# under valgrind memcheck; any invalid access, use of uninitialised memory in fastnn/NumPy/libgomp,
# or definite leak fails it.
#
#   .ci/valgrind.sh          (uses the in-place build; builds it first if missing)
#
# Without valgrind: fails under CI=true (.ci/run installs it), else skipped (exit 0, with a message).
# - PYTHONMALLOC=malloc: every Python allocation goes through malloc, so memcheck sees it
#   (pymalloc's arenas would hide errors and produce false reports).
# - .ci/valgrind.supp suppresses CPython 3.11's own uninitialised-value reports (innermost frame
#   in libpython); see the file for why it cannot hide a fastnn error.
# - The interpreter is resolved to the real binary (sys.executable): valgrind does not follow
#   a pyenv/venv shim script's exec.
# - OMP_NUM_THREADS=2 and sizes above the kernels' thresholds, so the OpenMP paths run too.
# Takes about 30-60 s.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"

if ! command -v valgrind >/dev/null 2>&1; then
    if [ "${CI:-}" = "true" ]; then  # CI installs it (.ci/run): missing there is a failure, not a pass
        echo "valgrind.sh: valgrind is not installed, and CI=true: failing" >&2
        exit 1
    fi
    echo "valgrind.sh: valgrind is not installed; skipping (outside CI)"
    exit 0
fi
if ! ls fastnn/_core*.so >/dev/null 2>&1; then
    "$PY" setup.py build_ext --inplace -q
fi
REAL_PY="$("$PY" -c 'import sys; print(sys.executable)')"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastnn-valgrind.XXXXXX")"
[ -n "${FASTNN_VALGRIND_KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/train.py" <<'PYEOF'
"""A short training run for valgrind: every layer, two optimizers, fit, save/load."""
import os
import tempfile

import numpy as np

import fastnn
from fastnn import nn, optim

fastnn.manual_seed(0)
r = np.random.default_rng(0)
X = r.standard_normal((96, 32)).astype(np.float32)
y = r.integers(0, 5, 96)
model = nn.Sequential(nn.Linear(32, 512), nn.BatchNorm1d(512), nn.GELU(), nn.Dropout(0.2),
                      nn.Linear(512, 64), nn.LayerNorm(64), nn.Tanh(), nn.Linear(64, 5))
opt = optim.AdamW(model.parameters(), lr=1e-3, amsgrad=True)
hist = fastnn.fit(model, nn.CrossEntropyLoss(label_smoothing=0.1), opt, X, y, epochs=2, batch_size=64,
                  validation_data=(X[:20], y[:20]), verbose=0)
opt2 = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
for loss_fn, target in ((nn.MSELoss(), np.zeros((64, 5), np.float32)),
                        (nn.BCEWithLogitsLoss(), np.ones((64, 5), np.float32))):
    opt2.zero_grad()
    loss_fn(model(X[:64]), target).backward()
    opt2.step()
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "ck.fnn")
    fastnn.save({"model": model, "optimizer": opt}, path)
    m2 = fastnn.load(path)["model"]
    m2.eval()
    model.eval()
    assert np.array_equal(np.asarray(m2(X)), np.asarray(model(X)))
print("valgrind training run ok; losses", hist.history["loss"])
PYEOF

echo "valgrind.sh: running a short training run under memcheck ($REAL_PY)"
set +e
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONMALLOC=malloc OMP_NUM_THREADS=2 \
    valgrind --tool=memcheck --error-exitcode=99 --suppressions="$ROOT/.ci/valgrind.supp" \
    --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --num-callers=30 "$REAL_PY" "$WORK/train.py" >"$WORK/log" 2>&1
STATUS=$?
set -e
grep -E "valgrind training run ok|ERROR SUMMARY|definitely lost" "$WORK/log" || true
if [ "$STATUS" -ne 0 ]; then
    cat "$WORK/log" >&2
    echo "valgrind.sh: memcheck reported errors (status $STATUS)" >&2
    exit 1
fi
echo "valgrind.sh: clean"
