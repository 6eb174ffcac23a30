"""``fastnn bench``: run the benchmark sections, print one table, write JSON and a PNG chart.

The header names the machine (CPU model, logical CPUs, threads, kernel set); the footer
gives the peak resident memory of the process. Every ratio is computed from times measured
in this one process (see :mod:`fastnn.bench.kernels` for the timing method).
"""
from __future__ import annotations

import contextlib
import importlib
import json
import math
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, TextIO

from .kernels import SECTIONS, BenchConfig, run_kernel_benchmarks
from .machine import machine_info, peak_memory_mib

__all__ = ["run", "format_time", "format_table", "run_steps", "write_plot"]


def format_time(s: Optional[float]) -> str:
    """Seconds as a short human string (ns/µs/ms/s)."""
    if s is None or not math.isfinite(s):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _ratio(r: Optional[float]) -> str:
    return "—" if r is None else f"{r:.2f}×"


def format_table(results: List[Dict[str, Any]], peers: Sequence[str]) -> str:
    """A Markdown table: one row per case, time per call per implementation and fastnn's speed-up."""
    head = ["case", "fastnn"]
    for p in peers:
        head += [p, f"fastnn speed-up vs {p}"]
    head.append("GFLOP/s fastnn")
    rows = [head, ["---"] * len(head)]
    for r in results:
        t = r.get("times_s", {})
        row = [r["case"] + ("" if r.get("match", True) else " (RESULTS DIFFER)"), format_time(t.get("fastnn"))]
        for p in peers:
            row += [format_time(t.get(p)), _ratio(r.get(f"speedup_vs_{p}"))]
        g = r.get("gflops", {}).get("fastnn")
        row.append(f"{g:.0f}" if g is not None else "")
        rows.append(row)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)


def run_steps(quick: bool, torch: bool, threads: Optional[int]) -> Dict[str, Any]:
    """Call ``fastnn.bench.steps.run_step_benchmarks`` when that module exists; else a note."""
    try:
        mod = importlib.import_module("fastnn.bench.steps")
    except ModuleNotFoundError as e:
        if e.name not in ("fastnn.bench.steps",):
            raise
        return {"available": False, "note": "fastnn.bench.steps is not in this fastnn version: "
                                            "training-step comparisons skipped"}
    fn = getattr(mod, "run_step_benchmarks", None)
    if fn is None:
        return {"available": False, "note": "fastnn.bench.steps has no run_step_benchmarks(): skipped"}
    from .. import get_num_threads
    kwargs: Dict[str, Any] = {"threads": threads or get_num_threads()}
    if quick:  # the overhead-bound networks only, few blocks: a smoke test, not a measurement
        kwargs.update(sizes=["tiny_xor", "tiny_flip", "small"], repeats=3)
    if not torch:
        kwargs["impls"] = ["fastnn-plan", "fastnn-epoch", "fastnn-fit", "fastnn-fit-e1", "fastnn-eager", "numpy", "jax"]
    rows = fn(**kwargs)
    return {"available": True, "results": rows,
            "text": mod.format_rows(rows) if hasattr(mod, "format_rows") else None}


def _steps_text(steps: Dict[str, Any]) -> str:
    if steps.get("text"):
        return steps["text"]
    res = steps.get("results")
    if isinstance(res, str):
        return res
    if isinstance(res, list) and res and all(isinstance(r, dict) and "case" in r for r in res):
        peers = [p for p in ("numpy", "torch") if any(p in r.get("times_s", {}) for r in res)]
        return format_table(res, peers)
    try:
        return json.dumps(res, indent=2, default=str)
    except (TypeError, ValueError):
        return repr(res)


def write_plot(results: List[Dict[str, Any]], peers: Sequence[str], path: str, title: str) -> None:
    """Horizontal bar chart of fastnn's speed-up per case and peer (needs matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cases = [r["case"] for r in results]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(cases) * max(1, len(peers)) + 1.5))
    height = 0.8 / max(1, len(peers))
    for i, p in enumerate(peers):
        vals = [r.get(f"speedup_vs_{p}", float("nan")) for r in results]
        ax.barh([j + i * height for j in range(len(cases))], vals, height=height, label=f"vs {p}")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks([j + height * (len(peers) - 1) / 2 for j in range(len(cases))])
    ax.set_yticklabels(cases)
    ax.invert_yaxis()
    ax.set_xlabel("fastnn speed-up (peer time / fastnn time; > 1: fastnn faster)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@contextlib.contextmanager
def _thread_limits(threads: Optional[int], torch_on: bool):
    """fastnn, PyTorch and (through threadpoolctl, if installed) NumPy's BLAS on ``threads`` threads."""
    from .. import _core
    notes: List[str] = []
    if threads is None:
        yield notes
        return
    old = _core.get_num_threads()
    _core.set_num_threads(threads)
    torch = None
    if torch_on:
        try:
            import torch
            old_torch = torch.get_num_threads()
            torch.set_num_threads(threads)
        except Exception:  # noqa: BLE001 - optional
            torch = None
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            notes.append("threadpoolctl not installed: NumPy's BLAS keeps its own thread count "
                         "(set OPENBLAS_NUM_THREADS to match)")
            yield notes
        else:
            with threadpool_limits(limits=threads, user_api="blas"):
                yield notes
    finally:
        _core.set_num_threads(old)
        if torch is not None:
            torch.set_num_threads(old_torch)


def run(quick: bool = False, threads: Optional[int] = None, json_path: Optional[str] = None,
        plot_path: Optional[str] = None, torch: bool = True, steps: bool = True,
        sections: Optional[Sequence[str]] = None, file: Optional[TextIO] = None) -> int:
    """Run the benchmarks, print the report (to ``file``, default stdout); returns an exit status."""
    out = file if file is not None else sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    t_start = time.perf_counter()
    wanted = list(sections) if sections else list(SECTIONS) + ["contended", "steps"]
    with _thread_limits(threads, torch) as notes:
        m = machine_info(torch=torch)
        peers = ["numpy"] + (["torch"] if m.get("torch") else [])
        say(f"fastnn {m['fastnn']} bench{' (quick)' if quick else ''}")
        load = (f", load average {m['load_average'][0]:.2f}" if m.get("load_average") else "")
        say(f"machine: {m['cpu']}, {m['cpu_count']} logical CPUs, {m['platform']}{load}")
        if m.get("load_average") and m["cpu_count"] and m["load_average"][0] > 0.5 * m["cpu_count"]:
            say("note: other processes are using the CPUs; times will be noisy")
        say(f"fastnn: {m['threads']} thread(s), OpenMP {'on' if m['openmp'] else 'off'}, kernels {m['kernels']} "
            f"(available: {', '.join(m['available_kernels'])})")
        say(f"peers: NumPy {m['numpy']}" + (f", PyTorch {m['torch']} ({m['torch_threads']} threads)"
                                            if m.get("torch") else (", PyTorch not installed" if torch else ", PyTorch skipped (--no-torch)")))
        for n in notes:
            say(f"note: {n}")
        cfg = BenchConfig(quick=quick, torch=torch)
        say(f"timing: median of {cfg.blocks} blocks (each ≥ {cfg.block_s * 1e3:g} ms) after warm-up, "
            f"{cfg.pause_s:g} s pause between implementations; float32")
        say()
        kernel_sections = [s for s in SECTIONS if s in wanted]
        results = run_kernel_benchmarks(sections=kernel_sections, cfg=cfg,
                                        progress=lambda s: print(f"  running {s} ...", file=sys.stderr,
                                                                 flush=True)) if kernel_sections else []
        if results:
            say("## Kernels (time per call; speed-up = peer time / fastnn time)")
            say(format_table(results, peers))
            say()
        contended: List[Dict[str, Any]] = []
        if "contended" in wanted:
            from .contended import format_contended, run_contended
            contended = run_contended(cfg, threads=2, progress=lambda s: print(f"  running {s} ...",
                                                                             file=sys.stderr, flush=True))
            say("## Contended (2 threads, float32; ratios > 1: fastnn faster / no loss)")
            say("interleaved: fastnn and NumPy in alternating blocks of 3 calls, no pause; busy core: "
                "beside a busy-loop process pinned to one CPU; idle: as in the kernels table")
            say(format_contended(contended))
            say()
        step_res: Dict[str, Any] = {"available": False, "note": "not requested"}
        if steps and "steps" in wanted:
            step_res = run_steps(quick, torch, threads)
            say("## Training steps")
            say(step_res["note"] if not step_res["available"] else _steps_text(step_res))
            say()
        loop_res: Dict[str, Any] = {"available": False, "note": "not requested"}
        if "loop" in wanted:  # fastnn.bench.loop: the README's PyTorch-style loop per step
            from . import loop
            loop_rows = loop.run_loop_benchmarks(repeats=3 if quick else 7, threads=threads or m["threads"],
                                                 impls=None if torch else ["fastnn-loop", "fastnn-plan", "numpy"])
            loop_res = {"available": True, "results": loop_rows}
            say("## The PyTorch-style loop (per step; loop x = peer time / loop time)")
            say(loop.format_rows(loop_rows))
            say()
    peak = peak_memory_mib()
    elapsed = time.perf_counter() - t_start
    say(f"peak memory (max RSS): {peak:.0f} MiB; bench wall time {elapsed:.1f} s")
    bad = [r["case"] for r in results + contended if not r.get("match", True)]
    if bad:
        say(f"WARNING: fastnn's results differ from NumPy's for: {', '.join(bad)}")

    payload = {"machine": m, "settings": {**cfg.as_dict(), "threads": threads, "sections": wanted},
                "peers": peers, "results": results, "contended": contended, "steps": step_res, "loop": loop_res,
               "peak_memory_mib": peak, "elapsed_s": elapsed}
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, default=str)
        say(f"wrote {json_path}")
    if plot_path:
        title = f"fastnn {m['fastnn']} on {m['cpu']}, {m['threads']} thread(s), kernels {m['kernels']}"
        write_plot(results, peers, plot_path, title)
        say(f"wrote {plot_path}")
    return 1 if bad else 0
