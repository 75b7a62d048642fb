"""Training speed on a quiet machine and on one where another process keeps a core busy: GRU4Rec
steps (bpr-max B=32 H=100 with the shared embedding; cross-entropy + logQ B=240 H=512, the
Rees46 preset) and a slice of a CoSeRNN epoch, each at 1 thread, at all the cores' threads,
and with the trainers' default (a ThreadTuner timing the steps). The busy core is a helper
process this benchmark starts and stops itself (a Python busy loop). Events/s (GRU4Rec) or
users/s (CoSeRNN), and each setting against the best setting of its row, in one run.

    python bench/bench_contention.py [--seconds 12] [--repeats 2]

Each (state, workload, setting) runs for about --seconds of steps on a fresh model; the
settings take turns, --repeats times, and the median is shown.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import time

import torch

from seqrec.cosernn.model import CoSeRNN, CoSeRNNConfig, training_objective
from seqrec.gru4rec import PRESET_COMMON, PRESETS, GRU4Rec, GRU4RecConfig
from seqrec.gru4rec.data import time_split
from seqrec.gru4rec.synthetic import synthetic_events
from seqrec_ext.threads import ThreadTuner, available_cores

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cosernn_epoch import synthetic_sequences  # noqa: E402
from common import run_facts  # noqa: E402


def gru4rec_steps(train, **kw):
    def run():
        model = GRU4Rec(train.n_items, GRU4RecConfig(**kw))
        while True:  # epochs until the time is up
            for events, _ in model.train_steps(train):
                yield events

    return run


def cosernn_steps(seqs, n_devices, n_sources):
    def run():
        torch.manual_seed(0)
        # the fused GRU cell and separate input layers, as when the table in docs was measured
        config = CoSeRNNConfig(n_devices=n_devices, n_sources=n_sources, cell="gru", shared_input=False)
        model = CoSeRNN(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
        for index in itertools.cycle(list(seqs.batch_indices(64, torch.Generator().manual_seed(0)))):
            batch = seqs.select(index)
            loss, _, _ = training_objective(model.embed(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            yield batch.n_users

    return run


def measure(run, threads, seconds: float) -> float:
    """Events per second of `run`'s steps for about `seconds`, under a ThreadTuner(threads)."""
    steps = run()
    events = 0
    with ThreadTuner(threads) as tuner:
        start = time.perf_counter()
        for n in steps:
            tuner.step(n)
            events += n
            if time.perf_counter() - start >= seconds:
                break
        elapsed = time.perf_counter() - start
    return events / elapsed


class BusyCore:
    """A helper process spinning on one core while the block runs."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cosernn-users", type=int, default=600)
    args = parser.parse_args()
    cores = available_cores()
    print(run_facts(torch.device("cpu"), args.repeats))
    train, _ = time_split(synthetic_events(200_000, 20_000, seed=123), test_days=0.5, source="synthetic")
    seqs, _, n_devices, n_sources, _ = synthetic_sequences(args.cosernn_users)
    workloads = {
        "GRU4Rec bpr-max B=32 H=100 (events/s)": gru4rec_steps(train),
        "GRU4Rec rees46 B=240 H=512 (events/s)": gru4rec_steps(train, **PRESET_COMMON, **PRESETS["rees46"]),
        f"CoSeRNN, {seqs.n_users} users, 64 a step (users/s)": cosernn_steps(seqs, n_devices, n_sources),
    }
    settings = {"1 thread": 1, f"{cores} threads": cores, "default (timed)": None}
    print(f"{cores} cores in the affinity mask; about {args.seconds:.0f} s a measurement; median of {args.repeats}\n")
    print("| machine | workload | " + " | ".join(settings) + " | default / best |")
    print("|---|---|" + "---:|" * len(settings) + "---:|")
    for state in ("quiet", "one core busy"):
        for name, run in workloads.items():
            samples = {s: [] for s in settings}
            for _ in range(args.repeats):
                for label, threads in settings.items():
                    if state == "quiet":
                        samples[label].append(measure(run, threads, args.seconds))
                    else:
                        with BusyCore():
                            samples[label].append(measure(run, threads, args.seconds))
            rate = {label: statistics.median(v) for label, v in samples.items()}
            best = max(rate.values())
            cells = " | ".join(f"{rate[label]:.0f} ({rate[label] / best:.0%})" for label in settings)
            print(f"| {state} | {name} | {cells} | {rate['default (timed)'] / best:.0%} |", flush=True)


if __name__ == "__main__":
    main()
