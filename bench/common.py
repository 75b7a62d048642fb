"""Timing helpers shared by the benchmarks: interleaved repeats (so that a noisy neighbour
slows every contender alike), medians, and this machine's large-GEMM rate."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    fns: Dict[str, Callable[[], object]], device: torch.device, repeats: int = 30, inner: int = 1, warmup: int = 3
) -> Dict[str, float]:
    """Median seconds per call of each function; the functions take turns, `inner` calls a turn."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            sync(device)
            samples[name].append((time.perf_counter() - t0) / inner)
    return {name: statistics.median(ts) for name, ts in samples.items()}


def gemm_gflops(device: torch.device, n: int = 2048, dtype=torch.float32) -> float:
    """GFLOP/s of one large square matrix product: the practical ceiling for the ops."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = time_interleaved({"mm": lambda: torch.mm(a, b)}, device, repeats=5)["mm"]
    return 2 * n**3 / t / 1e9


_PEAK_SNIPPET = r"""
import json, sys, torch, seqrec_ext
from seqrec_ext import reference
def hwm_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
{setup}
before = hwm_kib()
{run}
print(json.dumps({{"peak_extra_bytes": (hwm_kib() - before) * 1024}}))
"""


def peak_extra_bytes(setup: str, run: str) -> int:
    """Peak resident memory that `run` adds after `setup`, measured in a fresh process (CPU)."""
    import json
    import subprocess
    import sys

    code = _PEAK_SNIPPET.format(setup=setup, run=run)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_bytes"]


def run_facts(device: torch.device, repeats: int, gemm_rate: float = None) -> str:
    """The line every benchmark prints first: versions, device, threads, GEMM rate, repeats."""
    import seqrec_ext

    gemm = f"; large GEMM (2048^3 float32): {gemm_rate:.0f} GFLOP/s" if gemm_rate is not None else ""
    return (
        f"seqrec_ext {seqrec_ext.__version__}, torch {torch.__version__}, device {device}, "
        f"threads {torch.get_num_threads()}{gemm}; median of {repeats}, interleaved"
    )


def op_bench_parser(doc: str, repeats: int) -> argparse.ArgumentParser:
    """The command line every op benchmark starts from: ``--device`` (a torch.device) and
    ``--repeats``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", type=torch.device, default="cpu")
    parser.add_argument("--repeats", type=int, default=repeats)
    return parser
