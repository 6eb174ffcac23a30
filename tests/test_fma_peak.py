"""The FMA-ceiling probe's report (``_core.fma_peak``): single-core and all-core figures, by
wall-clock and by CPU time, every run, the spread and the load, on each kernel set; bad
arguments are refused. (Its numbers are not asserted against anything: no timing asserts.)"""
import math

import pytest

from fastnn import _core

KERNELS = _core.gemm_available_kernels()


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("threads", [1, 2])
def test_report_on_each_kernel_set(kernels, threads):
    before = _core.gemm_kernel_name()
    _core.set_gemm_kernels(kernels)
    try:
        r = _core.fma_peak(0.02, runs=3, threads=threads)
    finally:
        _core.set_gemm_kernels(before)
    assert r["kernels"] == kernels and r["threads"] == threads
    assert len(r["single_core_runs"]) == 3 and len(r["all_core_runs"]) == 3
    assert r["single_core"] == max(r["single_core_runs"]) > 0
    assert r["all_core"] == max(r["all_core_runs"]) > 0
    for key in ("single_core_cpu", "all_core_cpu"):
        assert math.isfinite(r[key]) and r[key] > 0
    for key in ("single_core_spread", "all_core_spread"):
        assert 0 <= r[key] < 1
    assert isinstance(r["quiet"], bool)
    before_load, after_load = r["load_average"]
    if before_load is not None:
        assert len(before_load) == 3 and len(after_load) == 3


def test_bad_arguments_are_refused():
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="^seconds: expected a positive duration"):
            _core.fma_peak(bad)
    with pytest.raises(ValueError, match="^runs:"):
        _core.fma_peak(0.01, runs=0)
    with pytest.raises(ValueError, match="^threads:"):
        _core.fma_peak(0.01, threads=0)
