"""Sparse-row Adagrad with momentum: the fused op against the reference (unique + index_add +
gathers/scatters in eager PyTorch) on the rows a GRU4Rec step touches, for two catalogue sizes,
measured in one run. The cost must not depend on the catalogue size.

    python bench/bench_adagrad_momentum.py [--device cpu|cuda] [--repeats 30]
"""

from __future__ import annotations

import os
import sys

import torch

import seqrec_ext
from seqrec_ext import reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import op_bench_parser, run_facts, time_interleaved  # noqa: E402


def main():
    parser = op_bench_parser(__doc__, repeats=30)
    args = parser.parse_args()
    device = args.device
    print(run_facts(device, args.repeats))
    print()
    print("| items N | D | touched rows K | fused µs | reference µs | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    g = torch.Generator().manual_seed(0)
    for N in (20_000, 1_000_000):
        for D, K in ((100, 2080), (224, 2128)):
            state = [torch.randn(N, D, generator=g).to(device) for _ in range(3)]
            state[1].abs_()
            indices = torch.randint(0, N, (K,), generator=g).to(device)
            grads = torch.randn(K, D, generator=g).to(device)
            t = time_interleaved(
                {
                    "fused": lambda: seqrec_ext.sparse_adagrad_momentum_(*state, indices, grads, lr=0.05, momentum=0.4),
                    "reference": lambda: reference.sparse_adagrad_momentum_(
                        *state, indices, grads, lr=0.05, momentum=0.4
                    ),
                },
                device,
                repeats=args.repeats,
            )
            print(
                f"| {N:,} | {D} | {K} | {t['fused'] * 1e6:.0f} | {t['reference'] * 1e6:.0f} "
                f"| {t['reference'] / t['fused']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
