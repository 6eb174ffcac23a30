#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment and use it from outside the
# source tree: `fastnn info`, a short `fastnn train`, `fastnn bench --quick`, an import smoke
# test, and checks that the wheel holds the compiled extension, py.typed and the digits .npz.
#
#   .ci/wheel_check.sh                 # build + check (about 2-3 minutes on 2 cores)
#   WHEEL=dist/x.whl .ci/wheel_check.sh   # check an existing wheel (e.g. from cibuildwheel)
#   FASTNN_NO_OPENMP=1 .ci/wheel_check.sh # serial build; checks that `fastnn info` says so
#   RUN_TESTS=1 .ci/wheel_check.sh     # also run the test suite against the installed wheel
#   OUTDIR=dist .ci/wheel_check.sh     # keep the built wheel there
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastnn-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS

if [[ -z "${WHEEL:-}" ]]; then
    # Build from a clean copy of the tree (tracked and new files; no build/, *.so, _core.c):
    # setuptools would otherwise reuse ./build from an in-place build, whatever FASTNN_NO_OPENMP says.
    echo "== building the wheel (python -m build --wheel) from a clean copy"
    mkdir "$WORK/src"
    (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$WORK/src")
    rm -f "$WORK/src/fastnn/_build_config.py"
    "$PY" -m build --wheel --outdir "$WORK/dist" "$WORK/src" > "$WORK/build.log" 2>&1 \
        || { tail -40 "$WORK/build.log"; exit 1; }
    grep -E "^fastnn: " "$WORK/build.log" || true
    WHEEL="$(ls "$WORK"/dist/*.whl)"
    if [[ -n "${OUTDIR:-}" ]]; then
        mkdir -p "$OUTDIR" && cp "$WHEEL" "$OUTDIR/"
    fi
fi
echo "== wheel: $(basename "$WHEEL")"

echo "== contents"
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = {"py.typed": "fastnn/py.typed", "digits data": "fastnn/datasets/digits.npz",
        "build record": "fastnn/_build_config.py", "CLI": "fastnn/__main__.py"}
missing = [what for what, path in need.items() if path not in names]
ext = [n for n in names if n.startswith("fastnn/_core.") and n.endswith((".so", ".pyd"))]
if not ext:
    missing.append("compiled extension fastnn/_core.*")
if missing:
    sys.exit(f"wheel is missing: {', '.join(missing)}")
stray = [n for n in names if n.endswith((".pyx", ".pxi")) or n.startswith(("tests/", "src_c/"))]
if stray:
    sys.exit(f"wheel holds build-only files: {stray[:5]}")
print(f"ok: {len(names)} files, extension {ext[0]}, py.typed, digits.npz, _build_config.py")
EOF

echo "== fresh venv"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q "$WHEEL" ${EXTRA_PIP:-}
cd "$WORK"   # outside the source tree: imports must come from the installed wheel

"$VPY" - <<'EOF'
import os, numpy as np, fastnn
from fastnn import nn
loc = os.path.dirname(fastnn.__file__)
assert "site-packages" in loc, f"fastnn imported from {loc}, not the installed wheel"
X, y = fastnn.datasets.load_digits("test")
model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
out = model(X)
assert out.shape == (len(X), 10) and np.isfinite(np.asarray(out)).all()
a = np.arange(6, dtype=np.float32).reshape(2, 3)
np.testing.assert_allclose(fastnn.ops.matmul(a, a.T), a @ a.T)
print(f"import smoke test ok: fastnn {fastnn.__version__} from {loc}")
EOF

echo "== fastnn info"
"$WORK/venv/bin/fastnn" info
if [[ "${FASTNN_NO_OPENMP:-0}" != "0" ]]; then
    "$VPY" -m fastnn info | grep -q "OpenMP       off" || { echo "FASTNN_NO_OPENMP=1 but info reports OpenMP"; exit 1; }
    echo "ok: serial build reported"
fi

echo "== fastnn train --epochs 2 --quiet"
"$VPY" -m fastnn train --epochs 2 --quiet

echo "== fastnn bench --quick"
"$VPY" -m fastnn bench --quick --json "$WORK/bench.json" > "$WORK/bench.txt" 2>&1 \
    || { cat "$WORK/bench.txt"; exit 1; }
head -4 "$WORK/bench.txt"; tail -2 "$WORK/bench.txt"

if [[ "${RUN_TESTS:-0}" != "0" ]]; then
    echo "== test suite against the installed wheel"
    "$VPY" -m pip install -q pytest hypothesis threadpoolctl
    cp -r "$ROOT/tests" "$WORK/tests"
    "$VPY" -m pytest -q -p no:cacheprovider "$WORK/tests"
fi

echo "== wheel check passed in $((SECONDS - start)) s"
