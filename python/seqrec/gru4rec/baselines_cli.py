"""``seqrec gru4rec baselines``: the simple baselines (seqrec.baselines) fitted on the training
data and evaluated on the test targets of the same split, protocol and metrics as ``train`` and
``evaluate``, in one table -- with a saved GRU4Rec's row beside them (``--load``).

    seqrec gru4rec baselines --dataset ml-100k
    seqrec gru4rec baselines --dataset train.tsv --test test.tsv --baselines sr v-sknn --load model.pt
    seqrec gru4rec baselines --dataset ml-100k --protocol leave-one-out --cutoffs 10 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..baselines import BASELINES, build_baseline, evaluate_baseline
from ..cli_options import whole_number
from ..metrics import DEFAULT_CUTOFFS


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--baselines",
        nargs="+",
        choices=tuple(BASELINES),
        default=None,
        metavar="NAME",
        help=f"which to fit and evaluate (default all: {', '.join(BASELINES)})",
    )
    p.add_argument("--load", help="also evaluate this saved GRU4Rec (trained on the same training data) in the table")
    p.add_argument("--sr-steps", type=whole_number, default=10, help="SR: the longest distance of a rule (default 10)")
    p.add_argument("--item-knn-alpha", type=float, default=0.5, help="item-kNN: the similarity's alpha (default 0.5)")
    p.add_argument(
        "--item-knn-lambda", type=float, default=20.0, help="item-kNN: the similarity's regularisation (default 20)"
    )
    p.add_argument("--knn-k", type=whole_number, default=100, help="SKNN, V-SKNN: neighbours (default 100)")
    p.add_argument(
        "--knn-sample-size",
        type=whole_number,
        default=1000,
        help="SKNN, V-SKNN: the most recent sessions sharing an item that are candidates (default 1000)",
    )
    p.add_argument("--no-idf", action="store_true", help="V-SKNN without IDF weighting")
    p.add_argument("--quiet", action="store_true", help="no line per baseline as it finishes")


def _params(args) -> dict:
    return {
        "sr": {"steps": args.sr_steps},
        "item-knn": {"alpha": args.item_knn_alpha, "regularization": args.item_knn_lambda},
        "sknn": {"k": args.knn_k, "sample_size": args.knn_sample_size},
        "v-sknn": {"k": args.knn_k, "sample_size": args.knn_sample_size, "idf": not args.no_idf},
    }


def run(args) -> int:
    from .checkpoint import load_checkpoint
    from .cli import _data, _describe, _negatives
    from .tune import evaluation_threads

    names = list(dict.fromkeys(args.baselines or BASELINES))
    params = _params(args)
    for name in names:  # every parameter checked before any data is read
        try:
            build_baseline(name, **params.get(name, {}))
        except ValueError as err:
            raise SystemExit(f"{name}: {err}") from None
    if _negatives(args) is not None:
        raise SystemExit("baselines rank against the whole catalogue: --protocol time or leave-one-out")
    model = None
    if args.load:
        model, epoch, item_ids = load_checkpoint(args.load, device=args.device)
    _, train_set, tests = _data(args)
    if model is not None and not np.array_equal(item_ids, train_set.item_ids):
        raise SystemExit(
            f"{args.load}: its items are not the training data's (train it on the same --dataset and split)"
        )
    _describe(train_set, tests)
    ks = tuple(dict.fromkeys(args.cutoffs)) if args.cutoffs else DEFAULT_CUTOFFS
    ties = args.ties[0] if args.ties else "conservative"
    popularity = train_set.item_counts()
    for test_name, test in tests:
        rows = []
        with evaluation_threads(args.threads):
            for name in names:
                start = time.perf_counter()
                baseline = build_baseline(name, **params.get(name, {})).fit(train_set)
                fitted = time.perf_counter()
                metrics = evaluate_baseline(baseline, test, ks=ks, modes=(ties,), popularity=popularity)
                rows.append((baseline.name, metrics, fitted - start, time.perf_counter() - fitted))
                if not args.quiet:
                    print(
                        f"{baseline.name}: fitted in {fitted - start:.1f} s, evaluated in {rows[-1][3]:.1f} s",
                        flush=True,
                    )
            if model is not None:
                start = time.perf_counter()
                metrics = model.evaluate(
                    test, batch_size=args.eval_batch_size, ks=ks, modes=(ties,), popularity=popularity
                )
                rows.append((f"GRU4Rec ({args.load}, epoch {epoch})", metrics, None, time.perf_counter() - start))
        if test_name is not None:
            print(f"\n{test_name}:")
        print(table(rows, ks, ties))
    return 0


def table(rows, ks, ties: str) -> str:
    """One row per model: Recall, MRR and NDCG at the cut-offs in the tie mode, coverage and
    popularity of the lists at the largest cut-off, and the seconds to fit and to evaluate."""
    top = max(ks)
    accuracy = [f"{m}@{k}" for m in ("Recall", "MRR", "NDCG") for k in ks]
    head = [*accuracy, f"Coverage@{top}", f"Popularity@{top}", "fit s", "evaluate s"]
    lines = [
        f"{rows[0][1].n} predictions; ties ranked the {ties} way (a target scoring as the items a baseline does "
        "not score ranks below them all)",
        "",
        "| model | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(head),
    ]
    for name, metrics, fit_s, eval_s in rows:
        res = metrics.result()[ties]
        listed = metrics.lists.result() if metrics.lists is not None else {}
        cut = min(top, metrics.lists.ks[-1]) if metrics.lists is not None else top
        cells = [f"{res[c]:.4f}" for c in accuracy]
        cells.append(f"{listed.get(f'Coverage@{cut}', float('nan')):.4f}")
        cells.append(f"{listed.get(f'Popularity@{cut}', float('nan')):.1f}")
        cells.append("" if fit_s is None else f"{fit_s:.1f}")
        cells.append(f"{eval_s:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
