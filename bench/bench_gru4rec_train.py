"""GRU4Rec training throughput and accuracy against the published GRU4Rec trainer: one epoch on a
synthetic log (~200k events, ~20k items, power-law popularity, a learnable next-item signal)
for (a) seqrec's GRU4Rec on the fused ops and (b) bench/published_gru4rec.py, a plain-PyTorch
re-implementation of the published trainer that uses nothing of seqrec (nn.GRUCell, sparse
nn.Embedding tables, autograd, the published optimizer rule and sampler); same data,
hyper-parameters and seeds, each with its own negatives and initial parameters (as two users
would run them). One thread unless --threads says otherwise.

    python bench/bench_gru4rec_train.py [--seeds 0 1 2] [--events 200000] [--floors] [--only rees46]

The two epochs run in 50 interleaved slices (see interleaved_epochs): this shared machine's
speed drifts by tens of percent over minutes, and a ratio of two epochs run one after the
other measured the drift as much as the code. Accuracy: Recall@20 and MRR@20 of next-item
prediction on the test split, ties counted conservatively, each trainer's model evaluated by
its own code; mean over the seeds with the spread (min..max) shown.

--floors adds, per configuration and in the same run, what no implementation of this training
step can go below on this machine: the step's matrix products alone (torch.mm at the step's
shapes, forward and backward, scores not recomputed) and its optimizer update alone (the fused
sparse Adagrad-with-momentum op on the rows a step touches), against seqrec's step time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from seqrec.gru4rec import PRESET_COMMON, PRESETS, GRU4Rec, GRU4RecConfig
from seqrec.gru4rec.data import time_split
from seqrec.gru4rec.synthetic import synthetic_events

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import published_gru4rec as published  # noqa: E402
from common import run_facts, time_interleaved  # noqa: E402

import seqrec_ext  # noqa: E402

CONFIGS = [
    # GRU4RecConfig's defaults: the published model (shared embedding), bpr-max, B=32, H=100, 2048 negatives
    ("bpr-max B=32 H=100 shared", {}),
    ("retailrocket (bpr-max B=80 H=224)", {**PRESET_COMMON, **PRESETS["retailrocket"]}),
    ("rees46 (xe+logQ B=240 H=512)", {**PRESET_COMMON, **PRESETS["rees46"]}),
    ("bpr-max B=32 H=100 none", {"embedding": "none"}),
]


def published_run(cfg: GRU4RecConfig, train, generator: torch.Generator):
    """The published trainer's model, optimizer and epoch (a generator of each step's events)."""
    model = published.PublishedGRU4Rec(train.n_items, cfg.sizes, cfg.embedding, cfg.embedding_size, generator=generator)
    opt = published.AdagradMomentum(list(model.parameters()), lr=cfg.learning_rate, momentum=cfg.momentum)
    counts = train.item_counts()
    sampler = published.CumulativeSampler(counts, cfg.sample_alpha, cfg.n_sample, generator=generator)
    steps = published.train_steps(
        model,
        opt,
        train.items,
        train.offsets,
        batch_size=cfg.batch_size,
        loss=cfg.loss,
        negatives=sampler if cfg.n_sample > 0 else None,
        bpreg=cfg.bpreg,
        elu_param=cfg.elu_param,
        logq=cfg.logq,
        sample_alpha=cfg.sample_alpha,
        log_counts=counts.clamp(min=1).log().float(),
        dropout_embed=cfg.dropout_embed,
        dropout_hidden=cfg.dropout_hidden,
    )
    return model, (events for events, _ in steps)


def interleaved_epochs(ours, ref, n_events: int, slices: int = 50) -> tuple[float, float]:
    """Events/s of two training epochs (generators yielding each step's events) run in turns:
    each runs until it has done the next 1/slices of the epoch's events, then the other, so
    that both see the machine in the same state (this shared machine's speed drifts by tens
    of percent over minutes). Seconds are summed over each one's own turns."""
    seconds, done = [0.0, 0.0], [0, 0]
    gens = [ours, ref]
    for k in range(1, slices + 1):
        goal = n_events * k // slices if k < slices else float("inf")
        for i in (0, 1):
            start = time.perf_counter()
            for events in gens[i]:
                done[i] += events
                if done[i] >= goal:
                    break
            seconds[i] += time.perf_counter() - start
    return done[0] / seconds[0], done[1] / seconds[1]


def step_floors(cfg: GRU4RecConfig, n_items: int, repeats: int = 50) -> tuple[float, float]:
    """Seconds per step of (a) the matrix products a GRU4Rec step with the shared embedding
    cannot avoid: the input projection ``x W_in``, ``h W_hh^T`` (as one product; GRUCell's cell
    needs one), the scores ``h' W^T`` of the B + S output rows, their two backward products,
    the gradients of ``W_hh``, ``W_in`` and of the input rows (one-step truncated
    backpropagation needs no gradient for the previous state); and (b) the fused optimizer on
    the rows and parameters a step touches (2B + S rows of the shared table and B + S biases,
    W_hh, W_in and the two biases). Medians, interleaved."""
    B, H, M = cfg.batch_size, cfg.hidden, cfg.batch_size + cfg.n_sample
    g = torch.Generator().manual_seed(0)
    x, h, w_hh, w_in = (
        torch.randn(B, H, generator=g),
        torch.randn(B, H, generator=g),
        torch.randn(3 * H, H, generator=g),
        torch.randn(H, 3 * H, generator=g),
    )
    rows, d_scores, d_gates = (
        torch.randn(M, H, generator=g),
        torch.randn(B, M, generator=g),
        torch.randn(B, 3 * H, generator=g),
    )
    outs = [
        torch.empty(B, 3 * H),
        torch.empty(B, 3 * H),
        torch.empty(B, M),
        torch.empty(B, H),
        torch.empty(M, H),
        torch.empty(3 * H, H),
        torch.empty(H, 3 * H),
        torch.empty(B, H),
    ]

    def products():
        torch.mm(x, w_in, out=outs[0])  # gi = x W_in
        torch.mm(h, w_hh.t(), out=outs[1])  # gh = h W_hh^T
        torch.mm(h, rows.t(), out=outs[2])  # scores R = h' W^T
        torch.mm(d_scores, rows, out=outs[3])  # dL/dh' = dR W
        torch.mm(d_scores.t(), h, out=outs[4])  # dL/dW = dR^T h'
        torch.mm(d_gates.t(), h, out=outs[5])  # dL/dW_hh
        torch.mm(x.t(), d_gates, out=outs[6])  # dL/dW_in
        torch.mm(d_gates, w_in.t(), out=outs[7])  # dL/dx

    tables = {"out_table": (n_items, H, B + M), "out_bias": (n_items, 1, M)}
    state = {
        k: [torch.randn(n, d, generator=g).abs() for _ in range(3)]
        + [torch.randint(0, n, (k_,), generator=g), torch.randn(k_, d, generator=g)]
        for k, (n, d, k_) in tables.items()
    }
    dense = [
        [torch.randn(*shape, generator=g).abs() for _ in range(4)]
        for shape in ((3 * H, H), (H, 3 * H), (3 * H,), (3 * H,))
    ]

    def optimizer():
        for param, acc, mom, idx, grad in state.values():
            seqrec_ext.sparse_adagrad_momentum_(param, acc, mom, idx, grad, lr=cfg.learning_rate, momentum=cfg.momentum)
        for param, acc, mom, grad in dense:
            seqrec_ext.adagrad_momentum_(param, acc, mom, grad, lr=cfg.learning_rate, momentum=cfg.momentum)

    t = time_interleaved({"products": products, "optimizer": optimizer}, torch.device("cpu"), repeats=repeats, inner=5)
    return t["products"], t["optimizer"]


def spread(values) -> str:
    return f"{statistics.mean(values):.4f} ({min(values):.3f}..{max(values):.3f})"


def epochs_parser(doc: str) -> argparse.ArgumentParser:
    """The options of the GRU4Rec epoch benchmarks: seeds, the synthetic log's size, threads."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="", help="run only the configurations whose name contains this")
    return parser


def synthetic_split(args):
    """(train, test) of the synthetic log the options ask for, the thread count set and the
    machine's facts printed."""
    torch.set_num_threads(args.threads)
    events = synthetic_events(args.events, args.items, seed=123)
    print(run_facts(torch.device("cpu"), 1))
    return time_split(events, test_days=0.5, source="synthetic")


def main():
    parser = epochs_parser(__doc__)
    parser.add_argument(
        "--floors", action="store_true", help="also measure the step's unavoidable matrix products and optimizer update"
    )
    args = parser.parse_args()
    train, test = synthetic_split(args)
    print(
        f"synthetic: train {train.n_events} events / {train.n_items} items / {train.n_sessions} sessions; "
        f"test {test.n_events} events; one epoch; seeds {args.seeds}; Recall@20 / MRR@20 conservative, "
        "mean (min..max) over the seeds"
    )
    print()
    floors = []
    n_pairs = train.n_events - train.n_sessions  # the (input, target) pairs an epoch trains on
    print(
        "| config | seqrec events/s | published events/s | speed-up | seqrec R@20 | published R@20 "
        "| seqrec MRR@20 | published MRR@20 | R@20 rel. diff | MRR@20 rel. diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, kw in CONFIGS:
        if args.only not in name:
            continue
        rows = []
        for seed in args.seeds:
            cfg = GRU4RecConfig(**kw, seed=seed)
            ours = GRU4Rec(train.n_items, cfg)
            theirs, their_steps = published_run(cfg, train, torch.Generator().manual_seed(1000 + seed))
            ours_eps, ref_eps = interleaved_epochs(
                (events for events, _ in ours.train_steps(train)), their_steps, n_pairs
            )
            m_ours = ours.evaluate(test).result()["conservative"]
            m_ref = theirs.evaluate(test.items, test.offsets)["conservative"]
            rows.append((ours_eps, ref_eps, m_ours["Recall@20"], m_ref["Recall@20"], m_ours["MRR@20"], m_ref["MRR@20"]))
        cols = list(zip(*rows))
        mean = [statistics.mean(col) for col in cols]
        if args.floors:
            floors.append((name, cfg, mean[0], *step_floors(cfg, train.n_items)))
        print(
            f"| {name} | {mean[0]:.0f} | {mean[1]:.0f} | {mean[0] / mean[1]:.2f}x | {spread(cols[2])} "
            f"| {spread(cols[3])} | {spread(cols[4])} | {spread(cols[5])} | {100 * (mean[2] / mean[3] - 1):+.1f}% "
            f"| {100 * (mean[4] / mean[5] - 1):+.1f}% |",
            flush=True,
        )
    if floors:
        print()
        print("| config | seqrec ms/step | matrix products ms | optimizer ms | products + optimizer | seqrec / floor |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, cfg, ours_eps, t_products, t_opt in floors:
            ours_ms, floor = 1e3 * cfg.batch_size / ours_eps, 1e3 * (t_products + t_opt)
            print(
                f"| {name} | {ours_ms:.2f} | {1e3 * t_products:.2f} | {1e3 * t_opt:.2f} | {floor:.2f} "
                f"| {ours_ms / floor:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
