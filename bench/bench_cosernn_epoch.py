"""CoSeRNN training time per epoch on the synthetic listening log at its default scale (10k
users x ~100 sessions): the paper's LSTM on ``torch.nn.LSTM`` (``--cell lstm``, the default) and
on seqrec_ext's fused ``lstm_sequence`` (``--cell fused-lstm``, the same model), a GRU on
the fused ``gru_sequence`` (``--cell gru``) and on ``torch.nn.GRU`` (same cell, for the op's own
share), and the fused GRU with the two options beyond the paper (``--context-memory``,
``--track-loss 0.03``). One training step = forward, backward and Adam on a batch of users; the
same batches for every variant, taking turns; median seconds per step, times the number of
batches in an epoch (the training pass; `seqrec cosernn train` adds a validation forward pass
over all users after each epoch).

    python bench/bench_cosernn_epoch.py [--users 10000] [--steps 15] [--threads 1] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

from seqrec.cosernn.listening import sessionize_listening
from seqrec.cosernn.model import CoSeRNN, CoSeRNNConfig, training_candidates, training_objective
from seqrec.cosernn.sequences import build_user_sequences
from seqrec.cosernn.synthetic import synthetic_listening

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_facts  # noqa: E402


class TorchGRULayer(nn.Module):
    """``torch.nn.GRU`` in the place of the fused layer (padding after the real steps, as there)."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden, batch_first=True)

    def forward(self, x, lengths):
        return self.gru(x)[0]


def make_model(variant: str, n_devices: int, n_sources: int) -> CoSeRNN:
    torch.manual_seed(0)
    extras = dict(context_memory=True, track_loss=0.03) if variant == "gru+" else {}
    cell = {"torch-gru": "gru", "gru+": "gru"}.get(variant, variant)
    model = CoSeRNN(CoSeRNNConfig(n_devices=n_devices, n_sources=n_sources, cell=cell, **extras))
    if variant == "torch-gru":
        model.rnn_pos = TorchGRULayer(model.config.fc, model.config.hidden)
        model.rnn_neg = TorchGRULayer(model.config.fc, model.config.hidden)
    return model


def synthetic_sequences(n_users: int):
    """The synthetic listening log of ``n_users`` users as CoSeRNN's training sequences (the
    last 14 days test, the 5 before validation): (sequences, the planted item vectors of the
    sequences' items, devices, stream sources, sessions)."""
    log, planted = synthetic_listening(n_users=n_users)
    sessions = sessionize_listening(log)
    ids = np.unique(sessions.items[sessions.items >= 0])
    n_devices, n_sources = int(sessions.devices.max()) + 1, int(sessions.sources.max()) + 1
    seqs = build_user_sequences(
        sessions, planted[ids], ids, n_devices=n_devices, n_sources=n_sources, test_days=14, valid_days=5
    )
    return seqs, planted[ids], n_devices, n_sources, sessions.n_sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    parser.add_argument("--batch-size", type=int, default=CoSeRNNConfig(n_devices=1, n_sources=1).batch_size)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(run_facts(torch.device("cpu"), args.steps))
    t0 = time.perf_counter()
    seqs, vectors, n_devices, n_sources, n_sessions = synthetic_sequences(args.users)
    print(
        f"data: {seqs.n_users} users, {n_sessions} sessions, longest user {int(seqs.lengths.max())} "
        f"sessions ({time.perf_counter() - t0:.0f} s to generate)"
    )
    batch_size = args.batch_size
    candidates, vectors = training_candidates(seqs), torch.from_numpy(vectors)
    indices = itertools.islice(seqs.batch_indices(batch_size, torch.Generator().manual_seed(0)), args.steps + 2)
    variants = {
        "LSTM, torch.nn.LSTM (--cell lstm)": "lstm",
        "LSTM, fused lstm_sequence (--cell fused-lstm)": "fused-lstm",
        "GRU, fused gru_sequence (--cell gru)": "gru",
        "GRU, torch.nn.GRU": "torch-gru",
        "GRU fused, --context-memory --track-loss 0.03": "gru+",
    }
    models = {name: make_model(v, n_devices, n_sources) for name, v in variants.items()}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=5e-4) for name, m in models.items()}
    samples = {name: [] for name in variants}
    for i, index in enumerate(indices):
        batch = seqs.select(index)
        for name, model in models.items():
            start = time.perf_counter()
            u, u_hat = model.embed(batch, with_u_hat=True)
            c = model.config
            rows = candidates[index, : u.shape[1]]
            loss, _, _ = training_objective(u, batch, c.track_loss, rows, vectors, c.pathway_loss, u_hat)
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            if i >= 2:  # the first two steps warm up
                samples[name].append(time.perf_counter() - start)
    n_batches = -(-seqs.n_users // batch_size)
    default = statistics.median(samples["LSTM, torch.nn.LSTM (--cell lstm)"])
    print(f"\n{batch_size} users a step; epoch = {n_batches} steps\n")
    print("| model | s / step | s / epoch | vs the default (nn.LSTM) |")
    print("|---|---:|---:|---:|")
    for name, ts in samples.items():
        t = statistics.median(ts)
        print(f"| {name} | {t:.3f} | {t * n_batches:.0f} | {t / default:.2f}x |")


if __name__ == "__main__":
    main()
