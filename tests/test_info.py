"""fastnn.info() / show_info(): the facts match the running extension; threadpoolctl sees fastnn's OpenMP."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

import fastnn
from fastnn import _core
from fastnn.info import format_info, info, show_info


def test_info_dict_matches_the_extension():
    d = info()
    json.dumps(d)  # serialisable as is
    assert d["version"] == fastnn.__version__
    assert d["numpy"] == np.__version__
    assert d["threads"] == fastnn.get_num_threads()
    assert d["openmp"]["enabled"] == _core.has_openmp()
    assert d["kernels"]["active"] == _core.gemm_kernel_name()
    assert d["kernels"]["available"] == list(_core.gemm_available_kernels())
    assert d["kernels"]["active"] in d["kernels"]["available"]
    assert d["kernels"]["block_sizes"]["float32"]["MR"] >= 1
    assert d["dtypes"] == ["float32", "float64"]
    assert os.path.samefile(d["location"], os.path.dirname(fastnn.__file__))


def test_info_follows_set_num_threads():
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert info()["threads"] == 1
    finally:
        fastnn.set_num_threads(before)


def test_build_config_agrees_with_the_binary():
    build = info()["build"]
    if not build:
        pytest.skip("fastnn/_build_config.py absent (extension not built by fastnn's setup.py)")
    # setup.py records whether it compiled with OpenMP; the binary says whether it was.
    assert build["openmp"] == _core.has_openmp()
    assert build["compiler_type"] in ("unix", "msvc", "mingw32", "cygwin")
    assert "-march" not in build["extra_compile_args"]  # baseline ISA; kernels pick AVX at run time
    if build.get("no_openmp_env") not in ("", "0", None):
        assert not _core.has_openmp()


def test_openmp_library_found_when_enabled():
    d = info()
    if d["openmp"]["enabled"] and os.path.exists("/proc/self/maps"):
        assert d["openmp"]["library"] is not None
        assert "omp" in os.path.basename(d["openmp"]["library"])
    if not d["openmp"]["enabled"]:
        assert "off (serial build" in format_info(d)


def test_show_info_prints_the_report():
    buf = io.StringIO()
    show_info(file=buf)
    text = buf.getvalue()
    assert text.startswith(f"fastnn {fastnn.__version__}")
    assert f"kernels      {_core.gemm_kernel_name()}" in text


def test_threadpoolctl_sees_and_limits_fastnn_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _core.has_openmp():
        pytest.skip("serial build: no OpenMP pool to see")
    ours = info()["openmp"]["library"]
    pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp"]
    assert pools, "threadpoolctl found no OpenMP runtime although fastnn was built with OpenMP"
    if ours is not None:
        assert any(os.path.realpath(p["filepath"]) == os.path.realpath(ours) for p in pools)
    before = fastnn.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastnn.get_num_threads() == 1
        # A kernel still runs (and matches the reference) under the limit.
        a = np.arange(12, dtype=np.float32).reshape(3, 4)
        np.testing.assert_allclose(fastnn.ops.matmul(a, a.T), a @ a.T, rtol=1e-6)
    assert fastnn.get_num_threads() == before


def test_extension_is_built_for_the_baseline_isa():
    """No host-specific ISA flags in the build: a wheel must run on any CPU of its platform,
    with faster kernels chosen at run time (the AVX kernels carry their own target attributes)."""
    from fastnn import _build_config
    flags = _build_config.extra_compile_args.split()
    assert not [f for f in flags if f.startswith(("-march", "-mcpu", "-mtune", "-mavx", "-mfma", "/arch:"))]
    kernels = fastnn._core.gemm_available_kernels()
    assert "portable" in kernels  # the baseline path exists whatever the CPU
