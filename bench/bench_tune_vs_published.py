"""How many of a finished `seqrec gru4rec tune` search's trials the published GRU4Rec trainer
(its faithful plain-PyTorch re-implementation, bench/published_gru4rec.py) would have finished in
the same time: both trainers train each trial's parameters on the search's data in turns, one
thread, over a fraction of an epoch; then the best parameters over one whole epoch. A published
trial's time is the seqrec trial's, its training part scaled by the measured ratio.

    python bench/bench_tune_vs_published.py STUDY.db STUDY_NAME EPOCHS FRACTION
    (docs/gru4rec-workflow.md: runs/gru4rec-tune/ml100k.db ml100k-bpr-max 2 0.25)
"""

import os
import sys

import optuna
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gru4rec_train import interleaved_epochs, published_run  # noqa: E402

from seqrec.gru4rec import GRU4Rec, GRU4RecConfig
from seqrec.gru4rec.data import split_events_by_time, time_split
from seqrec.gru4rec.datasets import load_builtin

storage, name, epochs, fraction = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
torch.set_num_threads(1)
train_events, _ = split_events_by_time(load_builtin("ml-100k"), 14)  # the test split stays out
fit, _ = time_split(train_events, 14)  # what each trial trained on (the last 14 days validate)
pairs = fit.n_events - fit.n_sessions
FIELDS = {
    "layers": "hidden",
    "batch-size": "batch_size",
    "learning-rate": "learning_rate",
    "dropout-p-embed": "dropout_embed",
    "dropout-p-hidden": "dropout_hidden",
    "momentum": "momentum",
    "sample-alpha": "sample_alpha",
    "bpreg": "bpreg",
    "elu-param": "elu_param",
}


def first(steps, n):  # the steps of an epoch's first n events
    done = 0
    for events in steps:
        yield events
        done += events
        if done >= n:
            return


def speeds(cfg, n, slices):  # events/s of seqrec and of the published trainer, in turns
    ours = GRU4Rec(fit.n_items, cfg)
    _, theirs = published_run(cfg, fit, torch.Generator().manual_seed(1))
    return interleaved_epochs(first((e for e, _ in ours.train_steps(fit)), n), first(theirs, n), n, slices)


study = optuna.load_study(study_name=name, storage=f"sqlite:///{storage}")
trials = [t for t in study.trials if t.state.name == "COMPLETE"]
search = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
print(f"{len(trials)} trials in {search:.0f} s; each timed on the first {fraction:.0%} of an epoch of {pairs} events")
print("| trial | seqrec events/s | published events/s | speed-up | trial s | published trial s (est.) |")
print("|---:|---:|---:|---:|---:|---:|")
published_total, fit_in = 0.0, 0
for t in trials:
    cfg = GRU4RecConfig(**{FIELDS[k]: round(v, 12) for k, v in t.params.items()})
    ours, theirs = speeds(cfg, int(pairs * fraction), 10)
    train_s = epochs * pairs / t.user_attrs["events_per_s"]  # its training time in the search
    theirs_s = t.user_attrs["seconds"] + train_s * (ours / theirs - 1)  # the rest (set-up, evaluation) as seqrec's
    published_total += theirs_s
    fit_in += published_total <= search
    print(
        f"| {t.number} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f}x | {t.user_attrs['seconds']:.1f} | {theirs_s:.1f} |",
        flush=True,
    )
print(
    f"published trainer: the {len(trials)} trials in {published_total:.0f} s (est.); "
    f"{fit_in} of them done within the search's {search:.0f} s"
)
best = max(trials, key=lambda t: t.value)
ours, theirs = speeds(GRU4RecConfig(**{FIELDS[k]: round(v, 12) for k, v in best.params.items()}), pairs, 20)
print(
    f"best (trial {best.number}), one whole epoch each: seqrec {ours:.0f} events/s, published {theirs:.0f} events/s, "
    f"{ours / theirs:.2f}x"
)
