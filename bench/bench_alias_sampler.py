"""Alias sampler benchmark: table build time and draws/s against torch.multinomial and against
searchsorted on a cumulative sum (how the reference GRU4Rec samples), in one run.

    python bench/bench_alias_sampler.py [--device cpu|cuda] [--repeats 5]

Prints a Markdown table; ratios are (baseline time) / (alias time), > 1 is faster.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import torch

import seqrec_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import op_bench_parser  # noqa: E402


def timeit(fn, device, repeats):
    """Median wall time of fn() over `repeats` runs after one warm-up."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def zipf_counts(n_items, generator):
    ranks = torch.randperm(n_items, generator=generator).double() + 1
    return (1e6 / ranks.pow(1.1)).floor() + 1


def main():
    parser = op_bench_parser(__doc__, repeats=5)
    parser.add_argument("--items", type=int, nargs="+", default=[10**3, 10**5, 10**6])
    parser.add_argument("--draws", type=int, nargs="+", default=[2048, 10**6])
    parser.add_argument("--alpha", type=float, default=0.75)
    args = parser.parse_args()
    device = args.device
    g = torch.Generator().manual_seed(0)

    print(
        f"seqrec_ext {seqrec_ext.__version__}, torch {torch.__version__}, device {device}, "
        f"threads {torch.get_num_threads()}, alpha {args.alpha}, median of {args.repeats}"
    )
    print()
    print(
        "| N items | n draws | alias build ms | alias draw ms | Mdraws/s | multinomial ms | searchsorted ms "
        "| vs multinomial | vs searchsorted |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n_items in args.items:
        counts = zipf_counts(n_items, g)
        weights = counts.pow(args.alpha).to(device)
        t_build = timeit(lambda: seqrec_ext.alias_build(weights), device, args.repeats)
        prob, alias = seqrec_ext.alias_build(weights)
        p = (weights / weights.sum()).float()
        cdf = torch.cumsum(p, 0)
        for n in args.draws:
            t_alias = timeit(lambda: seqrec_ext.alias_draw(prob, alias, n), device, args.repeats)
            t_multi = timeit(lambda: torch.multinomial(p, n, replacement=True), device, args.repeats)
            # the reference GRU4Rec: uniform draws looked up in the cumulative distribution
            t_search = timeit(
                lambda: torch.searchsorted(cdf, torch.rand(n, device=device) * cdf[-1]).clamp_(max=n_items - 1),
                device,
                args.repeats,
            )
            print(
                f"| {n_items:,} | {n:,} | {t_build * 1e3:.2f} | {t_alias * 1e3:.3f} | {n / t_alias / 1e6:.0f} "
                f"| {t_multi * 1e3:.2f} | {t_search * 1e3:.2f} | {t_multi / t_alias:.1f}x | {t_search / t_alias:.1f}x |"
            )


if __name__ == "__main__":
    main()
