"""Where a second thread starts to pay, per op: each CPU op at a grid of sizes around its
parallel grain, timed at one thread and at all the cores' threads (interleaved medians). A
grain is right when the ops stay on one thread (ratio ~1.0) while a second one would not help,
and split as soon as it does; a ratio well above 1.0 at a small size means the op fans out
for crumbs (a barrier costs more than the work it shares).

    python bench/bench_grain.py [--repeats 40]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_facts, time_interleaved  # noqa: E402

from seqrec_ext.threads import available_cores  # noqa: E402


def at_threads(fn, threads):
    def run():
        torch.set_num_threads(threads)
        fn()

    return run


def cases():
    g = torch.Generator().manual_seed(0)
    ops = torch.ops.seqrec
    # the GRU gate passes (with their matrix product): rows x hidden units
    for B, H in ((8, 64), (32, 100), (64, 100), (64, 400), (240, 512)):
        gi, h = torch.randn(B, 3 * H, generator=g), torch.randn(B, H, generator=g)
        w, b = torch.randn(3 * H, H, generator=g) * 0.1, torch.zeros(3 * H)
        yield "gru_step", f"B={B} H={H}", B * H, lambda gi=gi, h=h, w=w, b=b: ops.gru_step(gi, h, w, b, b, True)
    # the sampled loss's row passes (with its matrix product): rows x columns, H = 100
    for B, M in ((8, 264), (32, 544), (32, 2080), (80, 2128), (240, 2288)):
        h, rows = torch.randn(B, 100, generator=g) * 0.1, torch.randn(M, 100, generator=g) * 0.1
        yield (
            "sampled_ranking_loss",
            f"B={B} M={M}",
            B * M,
            lambda h=h, rows=rows: ops.sampled_ranking_loss(h, rows, None, None, None, "bpr-max", 1.0, 0.5, "mean"),
        )
    # the sparse update: touched rows x width, a 20k-row table
    for U, D in ((32, 100), (256, 100), (2080, 1), (2080, 100), (2288, 512)):
        param, acc, mom = (torch.randn(20_000, D, generator=g).abs() for _ in range(3))
        idx, grad = torch.randint(0, 20_000, (U,), generator=g), torch.randn(U, D, generator=g)
        yield (
            "sparse_adagrad_momentum_",
            f"U={U} D={D}",
            U * D,
            lambda p=param, a=acc, m=mom, i=idx, gr=grad: ops.sparse_adagrad_momentum_(p, a, m, i, gr, 0.05, 0.4, 1e-6),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    n = available_cores()
    print(run_facts(torch.device("cpu"), args.repeats))
    print(f"\n| op | shape | elements | 1 thread us | {n} threads us | speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    for op, shape, elements, fn in cases():
        t = time_interleaved(
            {"1": at_threads(fn, 1), "n": at_threads(fn, n)}, torch.device("cpu"), repeats=args.repeats, inner=5
        )
        print(
            f"| {op} | {shape} | {elements} | {1e6 * t['1']:.1f} | {1e6 * t['n']:.1f} | {t['1'] / t['n']:.2f}x |",
            flush=True,
        )
    torch.set_num_threads(n)


if __name__ == "__main__":
    main()
