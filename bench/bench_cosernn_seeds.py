"""CoSeRNN's results table over several synthetic logs and model seeds: G generator seeds
(``--data-seed``) x M model seeds (``--seed``), each run a `seqrec cosernn train` in its own
process (``prepare`` once per log, then ``train --prepared`` per model seed, so that the
word2vec item space is learned once per log; ``--no-prepare``: ``train --dataset synthetic``
each run). A failing command stops the benchmark with its output. Prints every run's table
as it finishes, then per approach and column the mean ± standard deviation and the min–max
over the runs, and for each CoSeRNN row in how many runs it beat the best baseline of the
column (oracles excluded; for the mean ranks, lower is better).

    python bench/bench_cosernn_seeds.py [--data-seeds 0 1 2] [--model-seeds 0 1 2]
        [--synthetic-users 2000] [--max-epochs 10] [--train-args "--cell gru --hidden 200"]
        [--keep FOLDER]
    python bench/bench_cosernn_seeds.py --summarize FOLDER

Small default scale (2,000 users, 10 epochs): a run takes minutes on two cores. Options the
train command does not know are its business: ``--train-args`` is passed through as given.

Model variants side by side: ``--variant "" --variant=--current-source`` (``=`` for options
without a space, which argparse would take for its own) trains each of them (its options added to ``--train-args``) on every log and model seed; a run's table
then holds the baselines once and one CoSeRNN row per variant (rows named by the model's
settings, so the variants must differ in them). Their results files are
``results-data{G}-model{M}-v{I}.md``, one run per (G, M) for ``--summarize``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_facts  # noqa: E402

LOWER_IS_BETTER = ("Rank",)


def seqrec(*args: str) -> List[str]:
    return [sys.executable, "-m", "seqrec.cli", "cosernn", *args]


def run(cmd: List[str]) -> str:
    """Run a command: its output; on failure, stop the benchmark with its output."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(cmd)}")
    return done.stdout


def parse_table(text: str) -> Dict[str, Dict[str, float]]:
    """The rows of a results table whose cells are all numbers: {approach: {column: value}}."""
    rows: Dict[str, Dict[str, float]] = {}
    columns: List[str] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "Model":
            columns = cells[1:]
            continue
        if not columns or len(cells) != len(columns) + 1:
            continue
        try:
            values = [float(c) for c in cells[1:]]
        except ValueError:  # the separator, the relative gains, the confidence intervals
            continue
        rows[cells[0]] = dict(zip(columns, values))
    return rows


def best_baseline(rows: Dict[str, Dict[str, float]], column: str) -> float:
    baselines = [r[column] for name, r in rows.items() if not name.startswith(("CoSeRNN", "Oracle"))]
    if not baselines:
        return float("nan")
    return min(baselines) if column.startswith(LOWER_IS_BETTER) else max(baselines)


def summary(runs: List[Dict[str, Dict[str, float]]], only: Optional[List[str]] = None, brief: bool = False) -> str:
    """Markdown: mean ± std (min–max; ``brief``: without) per approach and column (``only``: these
    columns), and the CoSeRNN win counts."""
    names = list(dict.fromkeys(name for r in runs for name in r))
    names = sorted(names, key=lambda n: n.startswith("Oracle"))  # the oracles last (stable: others in order)
    columns = list(dict.fromkeys(c for r in runs for row in r.values() for c in row))
    if only:
        unknown = [c for c in only if c not in columns]
        if unknown:
            raise SystemExit(f"no column {', '.join(unknown)}; the columns are: {', '.join(columns)}")
        columns = list(only)
    lines = ["| Model | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name in names:
        cells = []
        for c in columns:
            values = [r[name][c] for r in runs if name in r and c in r[name]]
            if not values:
                cells.append("–")
                continue
            digits = 3 if c.startswith(LOWER_IS_BETTER) else 4
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cell = f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"
            cells.append(cell if brief else f"{cell} ({min(values):.{digits}f}–{max(values):.{digits}f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in [n for n in names if n.startswith("CoSeRNN")]:
        cells = []
        for c in columns:
            wins = total = 0
            for r in runs:
                if name in r and c in r[name]:
                    best = best_baseline(r, c)
                    better = r[name][c] < best if c.startswith(LOWER_IS_BETTER) else r[name][c] > best
                    wins, total = wins + int(better), total + 1
            cells.append(f"{wins}/{total}")
        lines.append(f"| {name}: runs ahead of the best baseline | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the synthetic log")
    parser.add_argument("--model-seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the model")
    parser.add_argument("--synthetic-users", type=int, default=2000)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--item-vectors", default="word2vec", choices=["word2vec", "planted"])
    parser.add_argument("--train-args", default="", help="more options of 'seqrec cosernn train', as one string")
    parser.add_argument(
        "--variant",
        dest="variants",
        action="append",
        metavar="ARGS",
        help="a model variant: more train options in one string ('' = --train-args alone); repeatable",
    )
    parser.add_argument(
        "--no-prepare",
        action="store_true",
        help="train every run from the synthetic log itself (no 'prepare'; word2vec again each run)",
    )
    parser.add_argument(
        "--keep", default=None, help="folder for the prepared data and the results (default: a temporary one)"
    )
    parser.add_argument("--columns", nargs="+", metavar="COLUMN", help="summarise only these columns")
    parser.add_argument("--brief", action="store_true", help="mean ± std only, without the min–max")
    parser.add_argument(
        "--summarize",
        metavar="FOLDER",
        help="run nothing: the summary of the results files a --keep folder holds (e.g. of runs split "
        "over several processes)",
    )
    args = parser.parse_args()
    if args.summarize:
        names = sorted(n for n in os.listdir(args.summarize) if n.startswith("results-data") and n.endswith(".md"))
        if not names:
            raise SystemExit(f"{args.summarize}: no results-data*.md files")
        grouped: Dict[str, Dict[str, Dict[str, float]]] = {}  # a run's variants into one table
        for name in names:
            with open(os.path.join(args.summarize, name), encoding="utf-8") as f:
                grouped.setdefault(name[:-3].split("-v")[0], {}).update(parse_table(f.read()))
        runs = list(grouped.values())
        print(f"{len(runs)} runs ({', '.join(grouped)}): mean ± std (min–max)\n")
        print(summary(runs, args.columns, args.brief))
        return
    print(run_facts(torch.device("cpu"), len(args.data_seeds) * len(args.model_seeds)))
    extra = shlex.split(args.train_args)
    args.variants = args.variants or [""]
    runs: List[Dict[str, Dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or tmp
        os.makedirs(folder, exist_ok=True)
        direct = args.no_prepare
        for g in args.data_seeds:
            data = [
                "--dataset",
                "synthetic",
                "--synthetic-users",
                str(args.synthetic_users),
                "--data-seed",
                str(g),
                "--item-vectors",
                args.item_vectors,
            ]
            prepared = os.path.join(folder, f"prepared-data{g}.pt")
            if not direct:
                t0 = time.perf_counter()
                run(seqrec("prepare", *data, "--out", prepared))
                print(f"\ndata seed {g}: prepared in {time.perf_counter() - t0:.0f} s", flush=True)
            for m in args.model_seeds:
                merged: Dict[str, Dict[str, float]] = {}
                for i, variant in enumerate(args.variants):
                    suffix = f"-v{i}" if len(args.variants) > 1 else ""
                    results = os.path.join(folder, f"results-data{g}-model{m}{suffix}.md")
                    t0 = time.perf_counter()
                    options = ["--seed", str(m), "--max-epochs", str(args.max_epochs), "--results", results, "--quiet"]
                    cmd = seqrec(
                        "train",
                        *(data if direct else ["--prepared", prepared]),
                        *options,
                        *extra,
                        *shlex.split(variant),
                    )
                    run(cmd)
                    with open(results, encoding="utf-8") as f:
                        text = f.read()
                    rows = parse_table(text)
                    if not rows:
                        raise SystemExit(f"no results table in {results}")
                    if any(name in merged and name.startswith("CoSeRNN") for name in rows):
                        raise SystemExit(f"variant {variant!r}: its CoSeRNN row has the name of an earlier variant's")
                    merged.update(rows)
                    print(f"\ndata seed {g}, model seed {m} ({time.perf_counter() - t0:.0f} s): {shlex.join(cmd[1:])}")
                    print(text.strip(), flush=True)
                runs.append(merged)
    print(
        f"\n{len(runs)} runs ({len(args.data_seeds)} logs x {len(args.model_seeds)} model seeds, "
        f"{args.synthetic_users} users, at most {args.max_epochs} epochs): mean ± std (min–max)\n"
    )
    print(summary(runs, args.columns, args.brief))


if __name__ == "__main__":
    main()
