"""seqrec's GRU4Rec beside RecBole's on MovieLens 100K in RecBole's leave-one-out protocol with
full ranking: the same split (seqrec's --recbole-order reproduces RecBole's, user by user), each
model at its best validation epoch; test Recall / MRR / NDCG at 10 and 20 and the wall time to
the best validation epoch, one thread each.

    python bench/bench_vs_recbole.py --recbole-python /path/to/recbole-venv/bin/python \\
        [--recbole-batch-sizes 256 32] [--recbole-epochs 5] [--seqrec-grid default ce]

RecBole runs in its own venv (``bench/recbole_gru4rec.py``: RecBole 1.2.1 needs numpy < 2;
``pip install --no-deps recbole==1.2.1`` plus ``numpy<2 pandas<2.3 setuptools<81`` and the
dependencies it asks for). ``--recbole-json FILE ...`` reuses results written earlier by that
script instead of running it. seqrec's grid is a few named settings (SEQREC_GRID), each trained
with validation after every epoch (MRR@10, patience 3, at most 15 epochs) and its best epoch
restored; a setting's wall time to its best epoch is the training and validation time up to it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

METRICS = ("recall@10", "recall@20", "mrr@10", "mrr@20", "ndcg@10", "ndcg@20")
SEQREC_GRID = {
    "default": [],
    "ce": ["--loss", "cross-entropy", "--logq", "1"],
    "ce-b64": ["--loss", "cross-entropy", "--logq", "1", "--batch-size", "64"],
    "ce-momentum": ["--loss", "cross-entropy", "--logq", "1", "--momentum", "0.3"],
    "ce-dropout": ["--loss", "cross-entropy", "--logq", "1", "--dropout-p-embed", "0.3", "--dropout-p-hidden", "0.3"],
    "bpr-dropout": ["--dropout-p-embed", "0.3", "--dropout-p-hidden", "0.3"],
}


def run_seqrec(name: str, options: list, threads: int) -> dict:
    """One seqrec setting: its test metrics at the best validation epoch and the wall time to it."""
    from seqrec.cli import main

    folder = tempfile.mkdtemp()
    log, save = os.path.join(folder, "m.jsonl"), os.path.join(folder, "m.pt")
    argv = ["gru4rec", "train", "--dataset", "ml-100k", "--protocol", "leave-one-out", "--recbole-order"]
    argv += ["--epochs", "15", "--patience", "3", "--valid-metric", "mrr@10", "--quiet", "--threads", str(threads)]
    argv += ["--save", save, "--log", log, *options]
    if main(argv) != 0:
        raise SystemExit(f"seqrec {name} failed")
    lines = [json.loads(line) for line in open(log)]
    best = max(range(len(lines)), key=lambda i: (lines[i]["valid"]["mrr@10"], -i))
    from seqrec.gru4rec import load_checkpoint
    from seqrec.gru4rec.datasets import load_ml100k
    from seqrec.gru4rec.protocols import leave_one_out

    model, epoch, item_ids = load_checkpoint(save)
    _, _, test = leave_one_out(load_ml100k(), item_ids=item_ids, recbole_order=True)
    metrics = model.evaluate(test, ks=(10, 20), modes=("conservative",), lists=False)
    return {
        "test": {m: metrics.value(m.split("@")[0], int(m.split("@")[1]), "conservative") for m in METRICS},
        "best_epoch": epoch,
        "valid_mrr@10": lines[best]["valid"]["mrr@10"],
        "wall_s_to_best": lines[best]["wall_s"],
    }


def run_recbole(python: str, batch_size: int, epochs: int, threads: int) -> dict:
    out = os.path.join(tempfile.mkdtemp(), "recbole.json")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recbole_gru4rec.py")
    cmd = [python, script, out, "--batch-size", str(batch_size), "--epochs", str(epochs), "--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"RecBole failed:\n{done.stderr[-3000:]}")
    with open(out) as f:
        return json.load(f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recbole-python", default=os.environ.get("SEQREC_RECBOLE_PYTHON"))
    p.add_argument("--recbole-json", nargs="+", default=[], metavar="FILE")
    p.add_argument("--recbole-batch-sizes", nargs="+", type=int, default=[256, 32])
    p.add_argument("--recbole-epochs", type=int, default=5)
    p.add_argument("--seqrec-grid", nargs="+", choices=tuple(SEQREC_GRID), default=list(SEQREC_GRID))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    rows = []
    for path in args.recbole_json:
        with open(path) as f:
            r = json.load(f)
        rows.append((f"RecBole GRU4Rec, batch {r['settings']['batch_size']}", r))
    if args.recbole_python:
        for batch in args.recbole_batch_sizes:
            rows.append(
                (
                    f"RecBole GRU4Rec, batch {batch}",
                    run_recbole(args.recbole_python, batch, args.recbole_epochs, args.threads),
                )
            )
    for name in args.seqrec_grid:
        rows.append((f"seqrec GRU4Rec, {name}", run_seqrec(name, SEQREC_GRID[name], args.threads)))
    print(
        "| model | "
        + " | ".join(m.replace("recall", "Recall").replace("mrr", "MRR").replace("ndcg", "NDCG") for m in METRICS)
        + " | valid MRR@10 | best epoch | s to best |"
    )
    print("|---|" + "---:|" * (len(METRICS) + 3))
    for name, r in rows:
        cells = [f"{r['test'][m]:.4f}" for m in METRICS]
        valid = r["valid_mrr@10"] if "valid_mrr@10" in r else r["epochs"][r["best_epoch"] - 1]["valid"]["mrr@10"]
        cells.append(f"{valid:.4f}")
        print(f"| {name} | " + " | ".join(cells) + f" | {r['best_epoch']} | {r['wall_s_to_best']:.1f} |")
    ours = [(r["valid_mrr@10"], name) for name, r in rows if name.startswith("seqrec")]
    if ours:
        print(f"\nseqrec's pick on validation MRR@10: {max(ours)[1]}")


if __name__ == "__main__":
    main()
