"""GRU4Rec's training step in bfloat16 against float32: one epoch of seqrec's GRU4Rec per
precision on the synthetic log of bench_gru4rec_train.py (~200k events, ~20k items), the two
epochs interleaved in slices (both see the machine in the same state), the same seeds and
initial parameters; then Recall@20 / MRR@20 of each model on the test split (ties counted
conservatively), mean over the seeds with the spread (min..max).

    python bench/bench_gru4rec_precision.py [--seeds 0 1 2] [--threads 1] [--only rees46] [--device cuda]

--precision bf16 rounds the operands of the step's large matrix products (the input
projection, the B x M scores and their two gradient products) to bfloat16 and accumulates in
float32; the GRU, the losses, the optimizer and the parameters stay float32. The speed-up is
what the CPU's (or GPU's) bfloat16 products give: on a CPU without bfloat16 instructions
expect none.
"""

from __future__ import annotations

import os
import statistics
import sys

from seqrec.gru4rec import GRU4Rec, GRU4RecConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gru4rec_train import CONFIGS, epochs_parser, interleaved_epochs, spread, synthetic_split  # noqa: E402


def main():
    parser = epochs_parser(__doc__)
    parser.add_argument("--device", default="cpu", help="where the models train (cuda: the tensor cores' bfloat16)")
    args = parser.parse_args()
    train, test = synthetic_split(args)
    print(
        f"device {args.device}; synthetic: train {train.n_events} events / {train.n_items} items; test {test.n_events} events; one "
        f"epoch per precision, interleaved; seeds {args.seeds}; Recall@20 / MRR@20 conservative, mean (min..max)"
    )
    print()
    print("| config | fp32 events/s | bf16 events/s | speed-up | fp32 R@20 | bf16 R@20 | fp32 MRR@20 | bf16 MRR@20 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    n_pairs = train.n_events - train.n_sessions
    for name, kw in CONFIGS:
        if args.only not in name:
            continue
        rows = []
        for seed in args.seeds:
            fp32 = GRU4Rec(train.n_items, GRU4RecConfig(**kw, seed=seed), device=args.device)
            bf16 = GRU4Rec(train.n_items, GRU4RecConfig(**kw, seed=seed, precision="bf16"), device=args.device)
            eps = interleaved_epochs(
                (n for n, _ in fp32.train_steps(train)), (n for n, _ in bf16.train_steps(train)), n_pairs
            )
            metrics = [m.evaluate(test).result()["conservative"] for m in (fp32, bf16)]
            rows.append((*eps, *(m["Recall@20"] for m in metrics), *(m["MRR@20"] for m in metrics)))
        cols = list(zip(*rows))
        mean = [statistics.mean(col) for col in cols]
        print(
            f"| {name} | {mean[0]:.0f} | {mean[1]:.0f} | {mean[1] / mean[0]:.2f}x | {spread(cols[2])} "
            f"| {spread(cols[3])} | {spread(cols[4])} | {spread(cols[5])} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
