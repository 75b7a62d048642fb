"""CoSeRNN's learning curves: validation cosine every few Adam updates, for the recurrent pathway
alone (the long-term embedding ablated) and for the whole model, under the earlier start
(nn.Linear's default initialisation, no warm-up), with each of the two changes alone, and with
both (the defaults); Latent Cross beside them, trained the same way. Also, at every point, what
the pathway's output u^ is made of: the norm of its mean over a fixed batch of sessions (its
constant part), the mean distance of a session's u^ from that mean (its input-dependent part),
and the share of the combining layers' ReLU units that are zero for every session of the batch.

    python bench/bench_cosernn_learning.py [--synthetic-users 1000] [--updates 300] [--every 25]
        [--json curves.json] [--png docs/cosernn-learning.png] [--variants NAME ...]

One process, one thread (``--threads``); the variants run one after another on the same
prepared log and batch order (seeded). The PNG needs matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from seqrec.cosernn.evaluate import baseline_predictor, evaluate_all, item_counts
from seqrec.cosernn.learned_baselines import build_learned_baseline
from seqrec.cosernn.listening import sessionize_listening
from seqrec.cosernn.model import CoSeRNN, CoSeRNNConfig, mean_cosine, training_objective
from seqrec.cosernn.sequences import TRAIN, VALID, build_session_sequences
from seqrec.cosernn.synthetic import SYNTHETIC_LOGS
from seqrec.cosernn.train import warmed_up

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_facts  # noqa: E402

EARLIER = {"init": "torch", "warmup": 0, "pathway_loss": 0.0}
# name: (model, its settings); "pathway" rows ablate the long-term embedding
VARIANTS = {
    "pathway, earlier start": ("cosernn", {"ablate": "long-term", **EARLIER}),
    "pathway, He init": ("cosernn", {"ablate": "long-term", "warmup": 0}),
    "pathway, warm-up": ("cosernn", {"ablate": "long-term", "init": "torch"}),
    "pathway, He init + warm-up": ("cosernn", {"ablate": "long-term"}),
    "full, earlier start": ("cosernn", EARLIER),
    "full, He init": ("cosernn", {"warmup": 0, "pathway_loss": 0.0}),
    "full, He init + warm-up": ("cosernn", {"pathway_loss": 0.0}),
    "full, He init + warm-up + pathway loss (the defaults)": ("cosernn", {}),
    "Latent Cross": ("Latent Cross", {}),
}


def data(args):
    log, planted = SYNTHETIC_LOGS[args.dataset](n_users=args.synthetic_users, seed=args.data_seed)
    sessions = sessionize_listening(log)
    ids = np.unique(sessions.items[sessions.items >= 0])
    seqs = build_session_sequences(
        sessions, planted[ids], ids, n_devices=3, n_sources=3, test_days=14, valid_days=5, source=args.dataset
    )
    return seqs.most_recent(400), torch.from_numpy(planted[ids])


def inside(model, batch) -> dict:
    """u^'s constant part, its input-dependent part, the combining layers' dead units."""
    if not isinstance(model, CoSeRNN):
        return {}
    seen = {}
    hooks = [
        model.to_embedding.register_forward_hook(lambda m, i, o: seen.__setitem__("u_hat", o.detach())),
        model.combine.register_forward_hook(lambda m, i, o: seen.__setitem__("combine", o.detach())),
    ]
    model.eval()
    with torch.no_grad():
        model.embed(batch)
    for hook in hooks:
        hook.remove()
    real = batch.mask & batch.has_pos
    u_hat = seen["u_hat"][real]
    mean = u_hat.mean(0)
    return {
        "u_hat_constant": float(mean.norm()),
        "u_hat_spread": float((u_hat - mean).norm(dim=-1).mean()),
        "dead_combine_units": float((seen["combine"][real] <= 0).all(0).float().mean()),
    }


def curve(name: str, seqs, args, probe) -> list:
    kind, settings = VARIANTS[name]
    torch.manual_seed(args.seed)
    if kind == "cosernn":
        config = CoSeRNNConfig(n_devices=3, n_sources=3, learning_rate=args.learning_rate, **settings)
        model, warmup = CoSeRNN(config), config.warmup
    else:  # trained with the defaults' warm-up, as the learned baselines are
        model, warmup = build_learned_baseline(kind, seqs.n_features, seqs.users), CoSeRNNConfig(1, 1).warmup
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    generator = torch.Generator().manual_seed(args.seed)
    points = [{"updates": 0, "valid_cosine": mean_cosine(model, seqs, VALID), **inside(model, probe)}]
    updates, start = 0, time.perf_counter()
    while updates < args.updates:
        for index in seqs.batch_indices(args.batch_size, generator, True):
            batch = seqs.select(index)
            model.train()
            u, u_hat = model.embed(batch, with_u_hat=True) if kind == "cosernn" else (model.embed(batch), None)
            weight = model.config.pathway_loss if kind == "cosernn" else 0.0
            objective, _, n = training_objective(u, batch, pathway_loss=weight, u_hat=u_hat)
            if n == 0:
                continue
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            for group in optimizer.param_groups:
                group["lr"] = warmed_up(args.learning_rate, warmup, updates)
            optimizer.step()
            updates += 1
            if updates % args.every == 0 or updates == args.updates:
                points.append(
                    {"updates": updates, "valid_cosine": mean_cosine(model, seqs, VALID), **inside(model, probe)}
                )
            if updates >= args.updates:
                break
    last = points[-1]
    print(
        f"{name:28s} valid cosine at "
        + ", ".join(f"{p['updates']}: {p['valid_cosine']:.3f}" for p in points if p["updates"] % 100 == 0)
        + (f"; u^ constant {last['u_hat_constant']:.2f}, spread {last['u_hat_spread']:.2f}" if len(last) > 2 else "")
        + f" ({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    return points


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, prefix, title in (
        (axes[0], "pathway", "recurrent pathway alone (long-term ablated)"),
        (axes[1], "full", "whole model"),
    ):
        for name, points in result["curves"].items():
            if name.startswith(prefix) or name == "Latent Cross":
                style = "--" if name == "Latent Cross" else "-"
                ax.plot([p["updates"] for p in points], [p["valid_cosine"] for p in points], style, label=name)
        for base, colour in (("Last, any cxt", "grey"), ("Avg, any cxt", "black")):
            ax.axhline(result["baselines"][base], color=colour, linestyle=":", label=base)
        ax.set_title(title)
        ax.set_xlabel("Adam updates")
        ax.set_ylim(0.3, 0.85)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("validation mean cosine")
    fig.suptitle(result["title"], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"saved {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic", choices=tuple(SYNTHETIC_LOGS))
    p.add_argument("--synthetic-users", type=int, default=1000)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--every", type=int, default=25)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    p.add_argument("--json")
    p.add_argument("--png")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(run_facts(torch.device("cpu"), 1))
    seqs, vectors = data(args)
    baselines = evaluate_all(
        {"b": baseline_predictor(vectors, item_counts(seqs, len(vectors), TRAIN))}, seqs, seqs.split == VALID, vectors
    )
    baselines = {k: v["Cosine"] for k, v in baselines.items() if not k.startswith("Oracle")}
    print("validation cosine of the baselines: " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()))
    probe = next(iter(seqs.batches(256, buckets=True)))
    curves = {name: curve(name, seqs, args, probe) for name in args.variants}
    result = {
        "title": f"{args.dataset} log, {seqs.n_users} users (data seed {args.data_seed}), batches of "
        f"{args.batch_size} users, Adam lr {args.learning_rate:g}, model seed {args.seed}",
        "baselines": baselines,
        "curves": curves,
        "args": vars(args),
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    if args.png:
        plot(result, args.png)


if __name__ == "__main__":
    main()
