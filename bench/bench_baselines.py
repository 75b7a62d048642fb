"""The session-based baselines on the synthetic benchmark log (the evaluation benchmark's:
199k training events, 21.9k items, 4,509 test predictions) at one thread: each one's fit and
evaluation time, its table's non-zeros (what its memory is bounded by, besides one
(block, items) score block), and its accuracy in the conservative and standard tie modes.

    python bench/bench_baselines.py [--baselines sr v-sknn] [--threads 1] [--block-rows 512] [--gru4rec-epochs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_facts  # noqa: E402


def main() -> None:
    from seqrec.baselines import BASELINES, build_baseline, evaluate_baseline
    from seqrec.gru4rec.data import time_split
    from seqrec.gru4rec.synthetic import synthetic_events

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baselines", nargs="+", choices=tuple(BASELINES), default=list(BASELINES))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--block-rows", type=int, default=512)
    p.add_argument("--gru4rec-epochs", type=int, default=0, help="also GRU4Rec (default settings), this many epochs")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(run_facts(torch.device("cpu"), 1))
    train, test = time_split(synthetic_events(205_000, 25_000, zipf=0.8, seed=123), test_days=2.0, source="synthetic")
    print(
        f"synthetic log: {train.n_events} training events, {train.n_items} items; "
        f"{test.n_events - test.n_sessions} test predictions; {args.threads} thread(s)\n"
    )
    print("| baseline | fit s | evaluate s | table non-zeros | Recall@20 (cons.) | MRR@20 (cons.) | Recall@20 (std.) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.baselines:
        start = time.perf_counter()
        model = build_baseline(name).fit(train)
        fitted = time.perf_counter()
        metrics = evaluate_baseline(
            model,
            test,
            ks=(20,),
            modes=("conservative", "standard"),
            popularity=train.item_counts(),
            block_rows=args.block_rows,
        )
        done = time.perf_counter()
        table = getattr(model, "table", None)
        nnz = table.nnz if table is not None else getattr(getattr(model, "sets", None), "n_events", 0)
        res = metrics.result()
        print(
            f"| {model.name} | {fitted - start:.2f} | {done - fitted:.2f} | {nnz:,} | "
            f"{res['conservative']['Recall@20']:.4f} | {res['conservative']['MRR@20']:.4f} | "
            f"{res['standard']['Recall@20']:.4f} |",
            flush=True,
        )
    if args.gru4rec_epochs:
        from seqrec.gru4rec import GRU4Rec, GRU4RecConfig

        start = time.perf_counter()
        model = GRU4Rec(train.n_items, GRU4RecConfig())
        for _ in range(args.gru4rec_epochs):
            model.train_epoch(train, threads=args.threads)
        fitted = time.perf_counter()
        metrics = model.evaluate(test, ks=(20,), modes=("conservative", "standard"), lists=False)
        res = metrics.result()
        print(
            f"| GRU4Rec ({args.gru4rec_epochs} epochs) | {fitted - start:.2f} | {time.perf_counter() - fitted:.2f} | "
            f"{sum(t.numel() for t in model.parameter_tensors().values()):,} parameters | "
            f"{res['conservative']['Recall@20']:.4f} | {res['conservative']['MRR@20']:.4f} | "
            f"{res['standard']['Recall@20']:.4f} |"
        )


if __name__ == "__main__":
    main()
