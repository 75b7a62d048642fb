"""Alias sampler benchmark: table build time and draws/s against torch.multinomial and against
searchsorted on a cumulative sum (how the reference GRU4Rec samples), in one run.

    python bench/bench_alias_sampler.py [--device cpu|cuda] [--repeats 5] [--threads 1]

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


def timeit(fns, device, repeats):
    """Median wall time of each of ``fns`` over ``repeats`` calls after one warm-up call, each
    function's calls back to back: the steady state of a loop that draws every step, whose
    output memory the allocator hands back warm (interleaving the functions would charge each
    call the first-touch page faults of fresh memory instead: about 4 ms for 10^6 ids here)."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    for fn in fns:
        fn()
        sync()
        spent = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            spent.append(time.perf_counter() - t0)
        times.append(statistics.median(spent))
    return times


def zipf_counts(n_items, generator):
    ranks = torch.randperm(n_items, generator=generator).double() + 1
    return (1e6 / ranks.pow(1.1)).floor() + 1


def main():
    parser = op_bench_parser(__doc__, repeats=5)
    parser.add_argument("--items", type=int, nargs="+", default=[10**3, 10**5, 10**6])
    parser.add_argument("--draws", type=int, nargs="+", default=[2048, 10**6])
    parser.add_argument("--alpha", type=float, default=0.75)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
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
        (t_build,) = timeit([lambda: seqrec_ext.alias_build(weights)], device, args.repeats)
        prob, alias = seqrec_ext.alias_build(weights)
        p = (weights / weights.sum()).float()
        cdf = torch.cumsum(p, 0)
        for n in args.draws:
            # the reference GRU4Rec: uniform draws looked up in the cumulative distribution
            t_alias, t_multi, t_search = timeit(
                [
                    lambda: seqrec_ext.alias_draw(prob, alias, n),
                    lambda: torch.multinomial(p, n, replacement=True),
                    lambda: torch.searchsorted(cdf, torch.rand(n, device=device) * cdf[-1]).clamp_(max=n_items - 1),
                ],
                device,
                args.repeats,
            )
            print(
                f"| {n_items:,} | {n:,} | {t_build * 1e3:.2f} | {t_alias * 1e3:.3f} | {n / t_alias / 1e6:.0f} "
                f"| {t_multi * 1e3:.2f} | {t_search * 1e3:.2f} | {t_multi / t_alias:.1f}x | {t_search / t_alias:.1f}x |"
            )


if __name__ == "__main__":
    main()
