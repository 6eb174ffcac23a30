"""Build script for fastnn's one compiled extension, ``fastnn._core``.

The extension is ``fastnn/_core.pyx`` (Cython wrappers) plus every C file under
``src_c/``. OpenMP is found by compiling, linking and running a tiny program
with the compiler that will build the extension; when no flag works (or
``FASTNN_NO_OPENMP=1`` is set) fastnn is built serial, with a warning.

ISA-specific kernels (AVX2, AVX-512) carry their own ``target`` attributes in
the source, so the whole extension is compiled for the baseline architecture
and never with ``-march=native``: one wheel runs on any CPU of its platform and
picks its kernels at run time.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
SRC_C = ROOT / "src_c"

OPENMP_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d\n", omp_get_max_threads());
    return n > 0 ? 0 : 1;
}
"""

# (compile flags, link flags) to try, in order, per compiler family.
OPENMP_CANDIDATES = {
    "msvc": [(["/openmp"], [])],
    "unix": [
        (["-fopenmp"], ["-fopenmp"]),                 # gcc, clang with libomp installed
        (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),  # Apple clang + Homebrew libomp
    ],
}


def _probe_openmp(compiler):
    """Return (compile_args, link_args) that build and run an OpenMP program, or None."""
    if os.environ.get("FASTNN_NO_OPENMP", "") not in ("", "0"):
        print("fastnn: FASTNN_NO_OPENMP is set, building serial kernels")
        return None
    family = "msvc" if compiler.compiler_type == "msvc" else "unix"
    for cflags, lflags in OPENMP_CANDIDATES[family]:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "probe.c"
            src.write_text(OPENMP_PROBE)
            try:
                objs = compiler.compile([str(src)], output_dir=tmp, extra_postargs=cflags)
                exe = str(Path(tmp) / "probe")
                compiler.link_executable(objs, exe, extra_postargs=lflags)
                if sys.platform == "win32":
                    exe += ".exe"
                subprocess.run([exe], check=True, capture_output=True, timeout=60)
            except Exception:  # noqa: BLE001 - any failure means "this flag does not work"
                continue
        print(f"fastnn: building with OpenMP ({' '.join(cflags)})")
        return cflags, lflags
    warnings.warn(
        "fastnn: no working OpenMP found for this compiler; building serial kernels "
        "(fastnn will run on one core). Install an OpenMP runtime (e.g. libomp) to enable threads.",
        stacklevel=1,
    )
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        unix = self.compiler.compiler_type != "msvc"
        base = ["-O3"] if unix else ["/O2"]
        if unix:
            # Keep IEEE semantics: no -ffast-math (NaN checks, erf/exp accuracy).
            base += ["-fno-strict-aliasing", "-Wall", "-Wno-unused-function", "-Wno-unknown-pragmas"]
        omp = _probe_openmp(self.compiler)
        for ext in self.extensions:
            ext.extra_compile_args = base + (omp[0] if omp else []) + ext.extra_compile_args
            ext.extra_link_args = (omp[1] if omp else []) + ext.extra_link_args
            if os.environ.get("FASTNN_SANITIZE"):
                # Debug builds for sanitizer runs: ASan + UBSan, abort on the first report.
                san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                       "-fno-omit-frame-pointer", "-g", "-O1"]
                ext.extra_compile_args += san
                ext.extra_link_args += san
        super().build_extensions()


c_sources = sorted(str(p.relative_to(ROOT)) for p in SRC_C.rglob("*.c"))

extensions = [
    Extension(
        "fastnn._core",
        sources=["fastnn/_core.pyx"] + c_sources,
        include_dirs=[str(SRC_C), np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # Headers and type-generic .inc bodies: a change to any of them rebuilds the extension.
        depends=sorted(str(p.relative_to(ROOT)) for ext in ("*.h", "*.inc") for p in SRC_C.rglob(ext))
        + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "fastnn").glob("*.pxi")),
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=[str(ROOT / "fastnn")],
        compiler_directives={"language_level": 3},
    ),
    cmdclass={"build_ext": BuildExt},
)
