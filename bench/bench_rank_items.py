"""Full-catalogue ranking: the fused rank_items op against the dense path (the whole (B, N)
score matrix, then comparisons per tie mode, or torch.topk), for evaluation (the targets' ranks
in GRU4Rec's three tie modes) and recommendation (top-20), as the catalogue grows; time and the
peak memory each path adds, measured in one run.

    python bench/bench_rank_items.py [--device cpu|cuda] [--repeats 5] [--threads 1] [--items 21700 100000 1000000]

B = 512 rows (GRU4Rec's evaluation batch), H = 100. Ratios are dense time / fused time. First,
a whole GRU4Rec.evaluate (one epoch trained, default settings) on a synthetic log of ~21k
items: the fused path against the dense one (evaluate(dense=True)), with their metrics
compared, against the published implementation's evaluation (bench/published_gru4rec.py) and
against the scoring product alone (``--evaluation-only``: that line alone).
"""

from __future__ import annotations

import os
import sys

import torch

import seqrec_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import op_bench_parser, peak_extra_bytes, run_facts, time_interleaved  # noqa: E402

B, H, K = 512, 100, 20
MODES = ("standard", "conservative", "median")


def dense_ranks(h, table, bias, targets):
    """Today's evaluation: the score matrix, then one comparison pass per tie mode (as
    seqrec.metrics.target_ranks does)."""
    scores = h @ table.t() + bias
    t = scores.gather(1, targets.unsqueeze(1))
    out = []
    for mode in MODES:
        above = (scores > t).sum(1).double()
        at_least = (scores >= t).sum(1).double()
        out.append({"standard": 1 + above, "conservative": at_least, "median": (1 + above + at_least) / 2}[mode])
    return out


def fused_ranks(h, table, bias, targets):
    r = seqrec_ext.rank_items(h, table, bias, targets=targets)
    return [r.ranks(mode) for mode in MODES]


def dense_top(h, table, bias):
    return torch.topk(h @ table.t() + bias, K, dim=1)


def fused_top(h, table, bias):
    return seqrec_ext.rank_items(h, table, bias, k=K)


def inputs(N, device):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(B, H, generator=g).to(device)
    table = (torch.randn(N, H, generator=g) * 0.1).to(device)
    bias = torch.randn(N, generator=g).to(device)
    targets = torch.randint(0, N, (B,), generator=g).to(device)
    return h, table, bias, targets


def evaluation(device, repeats):
    """A whole GRU4Rec.evaluate against the published implementation's evaluation (bench/
    published_gru4rec.py, which follows it: session-parallel batches of 512, the dense score
    matrix; its cost does not depend on the parameters' values) and against the scoring work
    alone (one (predictions, H) x (H, items) product: the ceiling)."""
    from published_gru4rec import PublishedGRU4Rec

    from seqrec.gru4rec import GRU4Rec, GRU4RecConfig
    from seqrec.gru4rec.data import time_split
    from seqrec.gru4rec.synthetic import synthetic_events

    train, test = time_split(synthetic_events(205_000, 25_000, zipf=0.8, seed=123), test_days=2.0, source="synthetic")
    model = GRU4Rec(train.n_items, GRU4RecConfig(), device=device)
    model.train_epoch(train)
    fused, dense = model.evaluate(test, lists=False), model.evaluate(test, dense=True, lists=False)
    published = PublishedGRU4Rec(train.n_items, (model.config.hidden,)).to(device)
    n_predictions = int(test.n_events - test.n_sessions)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_predictions, model.config.hidden, generator=g).to(device)
    table, bias = model.params.out_table, model.params.out_bias
    t = time_interleaved(
        {
            "published": lambda: published.evaluate(test.items.to(device), test.offsets.to(device), batch_size=512),
            # Recall and MRR, as the published evaluation computes (and then also the top-20 lists'
            # coverage, popularity and Gini, as seqrec's command line reports them)
            "dense": lambda: model.evaluate(test, dense=True, lists=False),
            "fused": lambda: model.evaluate(test, lists=False),
            "fused + lists": lambda: model.evaluate(test),
            "scoring product": lambda: torch.addmm(bias, x, table.t()),
        },
        device,
        repeats=repeats,
        warmup=1,
    )
    print(
        f"GRU4Rec.evaluate, {train.n_items:,} items, {n_predictions:,} predictions, {torch.get_num_threads()} "
        f"thread(s): the published evaluation {t['published']:.3f} s, seqrec dense {t['dense']:.3f} s, seqrec "
        f"fused {t['fused']:.3f} s: {t['published'] / t['fused']:.2f}x the published; the scoring product alone "
        f"{t['scoring product']:.3f} s (fused evaluation / product: {t['fused'] / t['scoring product']:.2f}); "
        f"with the top-20 lists' metrics too {t['fused + lists']:.3f} s; "
        f"metrics of fused and dense equal in all tie modes: {fused.result() == dense.result()} (Recall@20 "
        f"{fused.result()['standard']['Recall@20']:.4f})"
    )


def peak_mib(N, call):
    setup = f"""
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from bench_rank_items import *
h, table, bias, targets = inputs({N}, torch.device("cpu"))
"""
    return peak_extra_bytes(setup, call) / 2**20


def main():
    parser = op_bench_parser(__doc__, repeats=5)
    parser.add_argument("--items", type=int, nargs="+", default=[21_700, 100_000, 1_000_000])
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--evaluation-only", action="store_true", help="the whole evaluation, not the op grid")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(run_facts(args.device, args.repeats))
    print()
    evaluation(args.device, args.repeats)
    if args.evaluation_only:
        return
    print()
    print(
        "| items N | dense ranks ms | fused ranks ms | speed-up | dense top-20 ms | fused top-20 ms | speed-up "
        "| dense peak MiB | fused peak MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for N in args.items:
        h, table, bias, targets = inputs(N, args.device)
        for a, b in zip(dense_ranks(h, table, bias, targets), fused_ranks(h, table, bias, targets)):
            assert torch.equal(a, b) or (a - b).abs().max() <= 1, "the two paths disagree beyond rounding ties"
        t = time_interleaved(
            {
                "dense ranks": lambda: dense_ranks(h, table, bias, targets),
                "fused ranks": lambda: fused_ranks(h, table, bias, targets),
                "dense top": lambda: dense_top(h, table, bias),
                "fused top": lambda: fused_top(h, table, bias),
            },
            args.device,
            repeats=args.repeats,
            warmup=1,
        )
        peaks = ""
        if args.device.type == "cpu":
            dense = peak_mib(N, "dense_ranks(h, table, bias, targets)")
            fused = peak_mib(N, "fused_ranks(h, table, bias, targets)")
            peaks = f"{dense:.0f} | {fused:.0f}"
        print(
            f"| {N:,} | {t['dense ranks'] * 1e3:.1f} | {t['fused ranks'] * 1e3:.1f} "
            f"| {t['dense ranks'] / t['fused ranks']:.2f}x | {t['dense top'] * 1e3:.1f} | {t['fused top'] * 1e3:.1f} "
            f"| {t['dense top'] / t['fused top']:.2f}x | {peaks} |"
        )


if __name__ == "__main__":
    main()
