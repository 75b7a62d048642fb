"""Command line: ``seqrec cosernn train|evaluate``.

    seqrec cosernn train --dataset synthetic --save cosernn.pt --results results.md
    seqrec cosernn train --dataset log.tsv --cell lstm --hidden 400
    seqrec cosernn evaluate --load cosernn.pt --dataset synthetic

Pipeline: listening log -> sessions (20-minute gap, first 10 tracks) -> item vectors (word2vec
over the sessions before the test period, or the synthetic generator's planted vectors) ->
per-user sequences -> training with early stopping on the validation period -> the test
period's Table 2 (CoSeRNN, the baselines and the oracles), printed and saved.
"""
from __future__ import annotations

import os
from dataclasses import fields

import numpy as np
import torch

from .cosernn import CoSeRNNConfig, load_checkpoint, predict, train
from .cosernn_data import TEST, TRAIN, build_user_sequences
from .cosernn_eval import baseline_predictions, evaluate, results_table, track_candidates
from .item_embeddings import word2vec_item_vectors
from .listening import ListeningLog, read_listening_tsv, sessionize_listening
from .listening_datasets import LISTENING_BUILTIN, ml100k_listening, movielens_listening
from .listening_synthetic import synthetic_listening

# (test days, validation days): the paper's two weeks and five days on the synthetic log's
# two months; MovieLens spans months (ml-100k) to years (latest-small)
DEFAULT_DAYS = {"synthetic": (14.0, 5.0), "ml-100k": (30.0, 15.0), "movielens": (365.0, 180.0)}


def _log(args) -> tuple[ListeningLog, np.ndarray | None]:
    if args.dataset == "synthetic":
        return synthetic_listening(n_users=args.synthetic_users, seed=args.data_seed)
    if args.dataset == "ml-100k":
        return ml100k_listening(), None
    if args.dataset == "movielens":
        return movielens_listening(), None
    if not os.path.exists(args.dataset):
        raise SystemExit(f"--dataset {args.dataset!r}: neither a file nor a built-in data set "
                         f"({', '.join(LISTENING_BUILTIN)})")
    return read_listening_tsv(args.dataset), None


def prepare(args, item_ids=None, item_vectors=None, n_devices=None, n_sources=None):
    """Sessions and per-user sequences; item vectors learned here unless given."""
    log, planted = _log(args)
    sessions = sessionize_listening(log, source=args.dataset)
    test_days, valid_days = DEFAULT_DAYS.get(args.dataset, (14.0, 5.0))
    test_days = args.test_days if args.test_days is not None else test_days
    valid_days = args.valid_days if args.valid_days is not None else valid_days
    n_devices = n_devices or int(log.devices.max()) + 1
    n_sources = n_sources or int(log.sources.max()) + 1
    if item_vectors is None:
        item_ids = np.unique(log.items)
        if args.item_vectors == "planted":
            if planted is None:
                raise SystemExit("--item-vectors planted: only the synthetic data set has planted vectors")
            item_vectors = planted[item_ids]
        else:
            cutoff = sessions.starts.max() - test_days * 86400.0
            before = sessions.items[sessions.starts <= cutoff]
            dense = [np.searchsorted(item_ids, row[row >= 0]) for row in before]
            item_vectors = word2vec_item_vectors(dense, len(item_ids), seed=args.seed)
    seqs = build_user_sequences(sessions, item_vectors, item_ids, n_devices=n_devices, n_sources=n_sources,
                                test_days=test_days, valid_days=valid_days, source=args.dataset)
    return seqs, item_ids, np.asarray(item_vectors, dtype=np.float32), n_devices, n_sources


def report(model, seqs, item_vectors: np.ndarray, results_path: str | None, seed: int = 0) -> dict:
    vectors = torch.from_numpy(item_vectors)
    train_items = seqs.items[(seqs.split == TRAIN)[..., None] & (seqs.items >= 0)]
    counts = torch.bincount(train_items, minlength=len(vectors))
    preds = baseline_predictions(seqs, vectors, counts, seed=seed)
    preds[f"CoSeRNN ({model.config.cell})"] = predict(model, seqs)
    mask = seqs.split == TEST
    candidates = track_candidates(seqs, mask)
    order = [k for k in preds if not k.startswith("Oracle")] + ["Oracle half", "Oracle full"]
    results = {name: evaluate(preds[name], seqs, mask, vectors, candidates) for name in order}
    table = results_table(results)
    print(table)
    if results_path:
        with open(results_path, "w", encoding="utf-8") as f:
            f.write(table + "\n")
        print(f"saved {results_path}")
    return results


def cmd_train(args) -> int:
    seqs, item_ids, item_vectors, n_devices, n_sources = prepare(args)
    split_sizes = [int(((seqs.split == k) & seqs.has_pos).sum()) for k in range(3)]
    print(f"{seqs.n_users} users; sessions with a played track: train {split_sizes[0]}, "
          f"validation {split_sizes[1]}, test {split_sizes[2]}; {len(item_ids)} items")
    config = CoSeRNNConfig(n_devices=n_devices, n_sources=n_sources,
                           **{f.name: getattr(args, f.name) for f in fields(CoSeRNNConfig)
                              if f.name not in ("n_devices", "n_sources", "dim")})
    from tqdm import tqdm

    bar = tqdm(total=seqs.n_users, unit="user", disable=args.quiet, mininterval=0.5)

    def progress(n, cosine):
        bar.update(n)
        bar.set_postfix(cos=f"{cosine:.4f}", refresh=False)

    def log(line):
        bar.write(line)
        bar.reset()

    extra = dict(item_ids=torch.from_numpy(item_ids), item_vectors=torch.from_numpy(item_vectors))
    model, _ = train(seqs, config, device=args.device, progress=progress, log=log, compile=args.compile,
                     save=args.save, checkpoint_extra=extra)
    bar.close()
    report(model, seqs, item_vectors, args.results, args.seed)
    return 0


def cmd_evaluate(args) -> int:
    model, payload = load_checkpoint(args.load, device=args.device)
    seqs, _, item_vectors, _, _ = prepare(args, payload["item_ids"].numpy(), payload["item_vectors"].numpy(),
                                          model.config.n_devices, model.config.n_sources)
    report(model, seqs, item_vectors, args.results, model.config.seed)
    return 0


def add_parser(models) -> None:
    c = models.add_parser("cosernn", help="CoSeRNN").add_subparsers(dest="command", required=True)
    t = c.add_parser("train", help="train with early stopping, then evaluate on the test period")
    e = c.add_parser("evaluate", help="evaluate a saved model")
    for p in (t, e):
        p.add_argument("--dataset", required=True,
                       help=f"a listening-log TSV ({', '.join(('user', 'item', 'timestamp', 'skipped', 'device', 'source'))}) "
                            f"or one of: {', '.join(LISTENING_BUILTIN)}")
        p.add_argument("--test-days", type=float, default=None, help="sessions starting in the last N days are the test set")
        p.add_argument("--valid-days", type=float, default=None, help="the N days before the test set are validation")
        p.add_argument("--synthetic-users", type=int, default=500)
        p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic log")
        p.add_argument("--item-vectors", default="word2vec", choices=["word2vec", "planted"])
        p.add_argument("--device", default="cpu")
        p.add_argument("--results", default="cosernn-results.md", help="where the results table is saved ('' = not saved)")
    d = CoSeRNNConfig(n_devices=1, n_sources=1)
    t.add_argument("--cell", default=d.cell, choices=["gru", "lstm"], help="gru: the fused gru_sequence op")
    t.add_argument("--hidden", type=int, default=d.hidden, help="recurrent layer size (paper: 100-400)")
    t.add_argument("--fc", type=int, default=d.fc, help="fully connected layer size (paper: 200)")
    t.add_argument("--learning-rate", type=float, default=d.learning_rate)
    t.add_argument("--batch-size", type=int, default=d.batch_size, help="users per batch")
    t.add_argument("--max-epochs", type=int, default=d.max_epochs)
    t.add_argument("--patience", type=int, default=d.patience, help="early stopping: epochs without validation gain")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--save", help="checkpoint of the best model so far, written atomically after every epoch")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    e.add_argument("--load", required=True)


def run(args) -> int:
    return cmd_train(args) if args.command == "train" else cmd_evaluate(args)

