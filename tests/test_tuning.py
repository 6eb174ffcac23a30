"""The tuning table (src_c/tuning.h): its defaults are what `fastnn info` shows; FASTNN_TUNING sets
any field at start-up (checked in subprocesses), fields that only move work between threads or
equivalent code paths keep every bit, the others stay deterministic for 1, 2 and 3 threads; bad
keys and values warn and keep the default; FASTNN_GEMM_BLOCKS / FASTNN_GEMM_SCHEDULE still work.
(FASTNN_KERNELS=portable reaching the GEMM, optimizer and plans: test_layout.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn
from fastnn import _core
from fastnn.info import format_info, info

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = str(ROOT / "tests" / "_tuning_workload.py")
OVERRIDES = ("FASTNN_TUNING", "FASTNN_KERNELS", "FASTNN_GEMM_BLOCKS", "FASTNN_GEMM_SCHEDULE", "FASTNN_GEMM_VERBOSE")

DEFAULTS = {"par_min_work": 131072, "reduce_block": 4096, "opt_tile": 2048, "vm_block": 2048,
            "plan_direct_work": 262144, "gemm_par_min_work": 2097152, "gemm_small_work": 16384,
            "gemm_small_rows": 4, "gemm_small_skinny": 16777216, "gemm_mc": 0, "gemm_kc": 0, "gemm_nc": 0,
            "gemm_schedule": "dynamic"}
# Only where work runs changes: every bit stays (tuning.h "Bits: same").
NEUTRAL = ("par_min_work=1024,opt_tile=4096,vm_block=500,gemm_par_min_work=65536,gemm_mc=48,gemm_nc=256,"
           "gemm_schedule=static")


def _env(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(overrides)
    return env


def _python(args, **overrides):
    res = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(**overrides), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _workload(**overrides):
    res = _python([WORKLOAD], **overrides)
    return json.loads(res.stdout.strip().splitlines()[-1]), res.stderr


def _table(**overrides):
    res = _python(["-c", "import json, fastnn._core as c; print(json.dumps(c.tuning()))"], **overrides)
    return json.loads(res.stdout), res.stderr


@pytest.fixture(scope="module")
def default_run():
    return _workload()


def test_defaults_are_what_fastnn_info_shows():
    table, stderr = _table()
    assert stderr == ""
    assert {k: table["values"][k] for k in DEFAULTS} == DEFAULTS
    assert table["overridden"] == {} and set(table["from_cpu"]) == {"l1", "l2", "l3"}
    report = _python(["-m", "fastnn", "info"]).stdout
    for name, value in table["values"].items():
        assert f" {name}={value} " in report.replace("\n", " ") + " ", name
    assert "overrides: none set" in report


def test_info_reports_the_table_this_process_reads():
    t = info()["tuning"]
    assert t["table"] == _core.tuning()["values"] and t["overridden"] == _core.tuning()["overridden"]
    th = _core.parallel_thresholds()
    assert th["elementwise"] == t["table"]["par_min_work"] and th["gemm"] == t["table"]["gemm_par_min_work"]
    caches = _core.gemm_block_sizes()["cache_bytes"]
    assert [caches[k] for k in ("L1d", "L2", "L3")] == [t["table"][k] for k in ("l1", "l2", "l3")]
    assert t["plan_kernels"] in ("avx512+avx2", "avx2+fma", "portable")
    assert f"gemm_schedule={t['table']['gemm_schedule']}" in format_info()


def test_neutral_overrides_keep_every_bit(default_run):
    base, _ = default_run
    run, stderr = _workload(FASTNN_TUNING=NEUTRAL)
    assert stderr == ""
    values = run["table"]["values"]
    assert (values["par_min_work"], values["opt_tile"], values["vm_block"], values["gemm_schedule"]) == \
        (1024, 4096, 500, "static")
    assert run["table"]["overridden"] == {kv.split("=")[0]: "FASTNN_TUNING" for kv in NEUTRAL.split(",")}
    assert not set(run["table"]["overridden"]) & set(run["table"]["changes_results"])
    assert len(set(base["digests"].values())) == 1  # the default run: same bits for 1, 2, 3 threads
    assert run["digests"] == base["digests"]


def test_neutral_overrides_keep_every_bit_on_the_portable_kernels():
    plain, _ = _workload(FASTNN_KERNELS="portable")
    tuned, _ = _workload(FASTNN_KERNELS="portable", FASTNN_TUNING=NEUTRAL)
    assert plain["kernels"] == tuned["kernels"] == "portable"
    assert len(set(plain["digests"].values())) == 1
    assert tuned["digests"] == plain["digests"]


@pytest.mark.parametrize("setting", ["reduce_block=1000", "gemm_kc=64", "plan_direct_work=0"])
def test_order_changing_overrides_stay_deterministic_across_threads(default_run, setting):
    base, _ = default_run
    run, stderr = _workload(FASTNN_TUNING=setting)
    key, value = setting.split("=")
    assert stderr == "" and run["table"]["values"][key] == int(value)
    assert key in run["table"]["changes_results"]
    assert len(set(run["digests"].values())) == 1, run["digests"]  # 1, 2 and 3 threads: same bits
    assert run["digests"] != base["digests"]  # and the field reached the kernels


def test_bad_keys_and_values_warn_and_keep_the_default():
    setting = " nosuch=1, opt_tile=100,reduce_block=abc ,par_min_work=-5,gemm_kc=,vm_block=1K,,l2=3G5,opt_tile"
    table, stderr = _table(FASTNN_TUNING=setting)
    assert "unknown key 'nosuch'" in stderr
    for bad in ("opt_tile=100 ", "reduce_block=abc ", "par_min_work=-5 ", "gemm_kc= ", "l2=3G5 ", "opt_tile= "):
        assert bad + "is not valid" in stderr, (bad, stderr)
    values = table["values"]
    assert (values["opt_tile"], values["reduce_block"], values["par_min_work"], values["gemm_kc"]) == \
        (2048, 4096, 131072, 0)
    assert values["vm_block"] == 1024  # the valid pair in the same string still applies
    assert table["overridden"] == {"vm_block": "FASTNN_TUNING"}


def test_older_overrides_keep_working_and_fastnn_tuning_wins():
    code = ("import json, fastnn._core as c; "
            "print(json.dumps([c.tuning(), c.gemm_block_sizes(), c.gemm_schedule()]))")
    out = _python(["-c", code], FASTNN_GEMM_BLOCKS="96,128,1024", FASTNN_GEMM_SCHEDULE="static")
    table, blocks, schedule = json.loads(out.stdout)
    assert out.stderr == "" and schedule == "static"
    f32 = blocks["float32"]
    assert f32["KC"] == 128 and f32["MC"] >= 96 and f32["MC"] % f32["MR"] == 0 and f32["NC"] >= 1024
    assert table["overridden"] == {"gemm_mc": "FASTNN_GEMM_BLOCKS", "gemm_kc": "FASTNN_GEMM_BLOCKS",
                                   "gemm_nc": "FASTNN_GEMM_BLOCKS", "gemm_schedule": "FASTNN_GEMM_SCHEDULE"}
    out = _python(["-c", code], FASTNN_GEMM_BLOCKS="96,128,1024", FASTNN_TUNING="gemm_kc=256")
    table, blocks, _ = json.loads(out.stdout)
    assert blocks["float32"]["KC"] == 256 and table["overridden"]["gemm_kc"] == "FASTNN_TUNING"
    out = _python(["-c", code], FASTNN_GEMM_BLOCKS="1,2", FASTNN_GEMM_SCHEDULE="sometimes")
    table, _, schedule = json.loads(out.stdout)
    assert "FASTNN_GEMM_BLOCKS=1,2" in out.stderr and "FASTNN_GEMM_SCHEDULE: gemm_schedule=sometimes" in out.stderr
    assert table["overridden"] == {} and schedule == "dynamic"

