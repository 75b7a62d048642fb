"""CoSeRNN retrieval over a large track space: exact top-k by cosine (the fused ranking op,
streamed over the catalogue) against faiss's approximate indexes (HNSW, IVF): time per query
batch, index build time, and recall@k against exact, measured in one run.

    python bench/bench_cosernn_retrieval.py [--items 100000 1000000] [--users 1000] [--repeats 3]

Track vectors: D = 40 (word2vec's size in the paper), 2000 planted "genres" with spread, users
near a genre (what a CoSeRNN embedding looks like to the index). Speed-ups are exact / approximate.
"""

from __future__ import annotations

import os
import sys
import time

import torch

from seqrec.cosernn.retrieval import AnnIndex, exact_top_k, recall_at_k

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import op_bench_parser, run_facts, time_interleaved  # noqa: E402

D, K = 40, 100


def vectors(n, seed, genres=2000):
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(genres, D, generator=g)
    g.manual_seed(seed)
    return centres[torch.randint(0, genres, (n,), generator=g)] + 0.5 * torch.randn(n, D, generator=g)


def main():
    parser = op_bench_parser(__doc__, repeats=3)
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    print(run_facts(args.device, args.repeats))
    print()
    print("| tracks N | method | build s | query batch ms | speed-up | recall@10 | recall@100 |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for N in args.items:
        items, users = vectors(N, 1), vectors(args.users, 2)
        exact, _ = exact_top_k(users, items, K)
        t_exact = time_interleaved({"exact": lambda: exact_top_k(users, items, K)}, args.device, args.repeats, 1, 1)
        print(f"| {N:,} | exact (rank_items) | - | {t_exact['exact'] * 1e3:.0f} | 1.00x | 1.000 | 1.000 |")
        for kind, options in (("hnsw", dict(ef_search=256)), ("ivf", dict(nprobe=32))):
            start = time.perf_counter()
            index = AnnIndex(items, kind, **options)
            build = time.perf_counter() - start
            ids, _ = index.search(users, K)
            t = time_interleaved({kind: lambda: index.search(users, K)}, args.device, args.repeats, 1, 1)[kind]
            print(
                f"| {N:,} | faiss {kind} {options} | {build:.1f} | {t * 1e3:.0f} | {t_exact['exact'] / t:.1f}x "
                f"| {recall_at_k(ids[:, :10], exact[:, :10]):.3f} | {recall_at_k(ids, exact):.3f} |"
            )


if __name__ == "__main__":
    main()
