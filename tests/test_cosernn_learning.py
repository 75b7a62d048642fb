"""CoSeRNN learns what it exists to learn, within a fixed budget of Adam updates:

* its recurrent pathway alone (the long-term embedding ablated) beats the previous session's
  vector ("Last, any cxt") on the paper-calibrated synthetic log; with the initialisation and
  schedule of before (nn.Linear's default init, no warm-up) it stalls below it, which is the
  failure this guards against (docs/cosernn.md, "Why the recurrent pathway did not learn");
* on the log with strong planted context and sequence structure (``synthetic-strong``), the
  full model beats every heuristic baseline and JODIE (trained with the same budget) on the
  cosine it trains on and on MRR@20. RRN and Latent Cross are level with it at this size
  (200 users; docs/cosernn.md has the numbers), so they are not part of the test.
"""

import numpy as np
import pytest
import torch

from seqrec.cosernn.evaluate import baseline_predictor, evaluate_all, item_counts
from seqrec.cosernn.learned_baselines import train_learned_baseline
from seqrec.cosernn.listening import sessionize_listening
from seqrec.cosernn.model import CoSeRNNConfig, mean_cosine, model_predictor
from seqrec.cosernn.sequences import TEST, VALID, build_session_sequences
from seqrec.cosernn.synthetic import SYNTHETIC_LOGS
from seqrec.cosernn.train import train

# a small model and budget: the whole module trains in about a minute on one thread
SIZES = dict(hidden=100, fc=100)
UPDATES = 250
BATCH = 16
LEARNING_RATE = 2e-3


def _log(name: str, n_users: int = 200):
    log, planted = SYNTHETIC_LOGS[name](n_users=n_users, n_items=1000, seed=0)
    sessions = sessionize_listening(log)
    ids = np.unique(sessions.items[sessions.items >= 0])
    seqs = build_session_sequences(
        sessions, planted[ids], ids, n_devices=3, n_sources=3, test_days=14, valid_days=5, source=name
    )
    return seqs, torch.from_numpy(planted[ids])


def _config(**settings) -> CoSeRNNConfig:
    return CoSeRNNConfig(
        n_devices=3,
        n_sources=3,
        batch_size=BATCH,
        learning_rate=LEARNING_RATE,
        max_updates=UPDATES,
        max_epochs=10_000,
        patience=10_000,
        **SIZES,
        **settings,
    )


def _baselines(seqs, vectors, mask) -> dict:
    predictor = baseline_predictor(vectors, item_counts(seqs, len(vectors)))
    results = evaluate_all({"baselines": predictor}, seqs, mask, vectors)
    return {k: v for k, v in results.items() if not k.startswith("Oracle")}


@pytest.fixture(scope="module")
def calibrated():
    return _log("synthetic")


def test_the_recurrent_pathway_alone_beats_the_last_session(calibrated):
    seqs, vectors = calibrated
    last = _baselines(seqs, vectors, seqs.split == VALID)["Last, any cxt"]["Cosine"]
    model, history = train(seqs, _config(ablate="long-term"), threads=1, log=lambda line: None)
    assert history[-1]["updates"] == UPDATES
    ours = mean_cosine(model, seqs, VALID)
    assert ours > last + 0.02, (ours, last)
    # the same budget under the earlier start: u^ collapses onto the mean session vector
    stalled, _ = train(seqs, _config(ablate="long-term", init="torch", warmup=0), threads=1, log=lambda line: None)
    assert mean_cosine(stalled, seqs, VALID) < last


def test_beats_the_heuristics_and_jodie_on_the_planted_structure():
    seqs, vectors = _log("synthetic-strong")
    mask = seqs.split == TEST
    config = _config()
    model, _ = train(seqs, config, threads=1, log=lambda line: None)
    jodie = train_learned_baseline(
        "JODIE",
        seqs,
        epochs=config.max_epochs,
        batch_size=BATCH,
        learning_rate=LEARNING_RATE,
        patience=config.patience,
        warmup=config.warmup,
        max_updates=UPDATES,
        hidden=SIZES["hidden"],
    )
    assert jodie.history[-1]["updates"] == UPDATES
    results = evaluate_all({"CoSeRNN": model_predictor(model), "JODIE": model_predictor(jodie)}, seqs, mask, vectors)
    results.update(_baselines(seqs, vectors, mask))
    ours = results.pop("CoSeRNN")
    assert len(results) == 6
    for name, theirs in results.items():
        assert ours["Cosine"] > theirs["Cosine"], (name, ours["Cosine"], theirs["Cosine"])
        assert ours["MRR@20"] > theirs["MRR@20"], (name, ours["MRR@20"], theirs["MRR@20"])
