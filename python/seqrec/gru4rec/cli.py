"""GRU4Rec's command line: ``seqrec gru4rec train|evaluate``.

seqrec gru4rec train --dataset ml-100k --epochs 3 --save model.pt
seqrec gru4rec train --dataset events.tsv --loss cross-entropy --logq 1 --layers 512 ...
seqrec gru4rec train --dataset events.parquet --epochs 5
seqrec gru4rec evaluate --load model.pt --dataset ml-100k
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields

import numpy as np

from seqrec_ext.sampled_loss import LOSSES

from ..cli_options import add_threads_option
from .data import build_sessions, read_events, time_split
from .datasets import BUILTIN, load_builtin
from .model import EMBEDDINGS, PRESET_COMMON, PRESETS, GRU4Rec, GRU4RecConfig, load_checkpoint, save_checkpoint

# instacart: every user's last order falls on day 0 (datasets.load_instacart), so one day tests those
DEFAULT_TEST_DAYS = {"ml-100k": 14.0, "movielens": 90.0, "instacart": 1.0}


def _events(dataset: str):
    if dataset in BUILTIN:
        return load_builtin(dataset)
    if not os.path.exists(dataset):
        raise SystemExit(f"--dataset {dataset!r}: neither a file nor a built-in data set ({', '.join(BUILTIN)})")
    return read_events(dataset)


def _split(args):
    events = _events(args.dataset)
    test_days = args.test_days if args.test_days is not None else DEFAULT_TEST_DAYS.get(args.dataset, 1.0)
    return time_split(events, test_days=test_days, source=args.dataset)


def layer_sizes(text: str) -> tuple:
    """--layers: one size or several, comma-separated, each >= 1 (checked before any data is read)."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes >= 1 such as 100 or 100,100, got {text!r}")
    return sizes


def _add_model_options(p: argparse.ArgumentParser) -> None:
    d = GRU4RecConfig()
    p.add_argument(
        "--layers",
        "--hidden",
        dest="layer_sizes",
        type=layer_sizes,
        default=None,
        help=f"GRU layer sizes, bottom first: 100 or 100,100 (default {d.hidden})",
    )
    p.set_defaults(hidden=d.hidden, layers=d.layers)
    p.add_argument("--loss", default=d.loss, choices=LOSSES)
    p.add_argument("--bpreg", type=float, default=d.bpreg)
    p.add_argument("--elu-param", type=float, default=d.elu_param)
    p.add_argument("--logq", type=float, default=d.logq)
    p.add_argument("--n-sample", type=int, default=d.n_sample)
    p.add_argument("--sample-alpha", type=float, default=d.sample_alpha)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--dropout-p-embed", dest="dropout_embed", type=float, default=d.dropout_embed)
    p.add_argument("--dropout-p-hidden", dest="dropout_hidden", type=float, default=d.dropout_hidden)
    p.add_argument("--learning-rate", type=float, default=d.learning_rate)
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--embedding", default=d.embedding, choices=EMBEDDINGS)
    p.add_argument("--embedding-size", type=int, default=d.embedding_size)
    p.add_argument(
        "--reset-after",
        dest="reset_after",
        action="store_const",
        const=True,
        default=None,
        help="torch.nn.GRUCell's cell (the default with an embedding)",
    )
    p.add_argument(
        "--reset-before",
        dest="reset_after",
        action="store_const",
        const=False,
        help="GRU4Rec's own cell (the default for --embedding none)",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="the best hyper-parameters GRU4Rec's authors published for this data set "
        "(options given on the command line override them)",
    )
    p.add_argument("--seed", type=int, default=d.seed)


def _print_metrics(model, test, batch_size) -> None:
    metrics = model.evaluate(test, batch_size=batch_size)
    print(metrics.table())


def train(args) -> int:
    train_set, test_set = _split(args)
    if args.layer_sizes is not None:
        *args.layers, args.hidden = args.layer_sizes
    config = GRU4RecConfig(**{f.name: getattr(args, f.name) for f in fields(GRU4RecConfig)})
    first_epoch = 0
    if args.resume:
        if not args.save or not os.path.exists(args.save):
            raise SystemExit("--resume needs --save pointing at an existing checkpoint")
        model, first_epoch, item_ids = load_checkpoint(args.save, device=args.device)
        if not np.array_equal(item_ids, train_set.item_ids):
            raise SystemExit(f"{args.save}: the checkpoint's items do not match the training data")
        print(f"resuming from {args.save} after epoch {first_epoch}")
    else:
        model = GRU4Rec(train_set.n_items, config, device=args.device)
    print(
        f"train: {train_set.n_sessions} sessions, {train_set.n_events} events, {train_set.n_items} items; "
        f"test: {test_set.n_sessions} sessions, {test_set.n_events} events"
    )
    from tqdm import tqdm

    for epoch in range(first_epoch, args.epochs):
        bar = tqdm(
            total=train_set.n_events - train_set.n_sessions,
            desc=f"epoch {epoch + 1}",
            unit="ev",
            disable=args.quiet,
            mininterval=0.5,
        )

        def progress(n, loss, bar=bar):
            bar.update(n)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

        try:
            stats = model.train_epoch(train_set, progress=progress, threads=args.threads)
        except FloatingPointError as err:
            bar.close()
            kept = f"; the last good checkpoint is {args.save}" if args.save and os.path.exists(args.save) else ""
            print(f"stopped: {err}{kept}", file=sys.stderr)
            return 2
        bar.close()
        print(
            f"epoch {epoch + 1}: loss {stats['loss']:.4f}, {stats['events_per_s']:.0f} events/s, "
            f"{stats['threads']} thread{'s' if stats['threads'] > 1 else ''}"
        )
        if args.save:
            save_checkpoint(model, args.save, epoch=epoch + 1, item_ids=train_set.item_ids)
    _print_metrics(model, test_set, args.eval_batch_size)
    return 0


def evaluate(args) -> int:
    model, epoch, item_ids = load_checkpoint(args.load, device=args.device)
    events = _events(args.dataset)
    if args.test_days == 0:
        test_set = build_sessions(events, item_ids=item_ids, source=args.dataset)
    else:
        _, test_set = _split(args)
        if not np.array_equal(test_set.item_ids, item_ids):
            test_set = build_sessions(events, item_ids=item_ids, source=args.dataset)
    print(f"{args.load} (epoch {epoch}); test: {test_set.n_sessions} sessions, {test_set.n_events} events")
    _print_metrics(model, test_set, args.eval_batch_size)
    return 0


def add_parser(models) -> argparse.ArgumentParser:
    """``seqrec gru4rec train|evaluate`` under ``models``; returns the train parser (see
    use_preset)."""
    g = models.add_parser("gru4rec", help="GRU4Rec").add_subparsers(dest="command", required=True)
    t = g.add_parser("train", help="train, then evaluate on the test split")
    e = g.add_parser("evaluate", help="evaluate a saved model")
    for p in (t, e):
        p.add_argument(
            "--dataset",
            required=True,
            help="a GRU4Rec TSV file, a .parquet file (SessionId, ItemId, Time columns; needs pandas and "
            f"pyarrow) or one of: {', '.join(BUILTIN)}",
        )
        p.add_argument(
            "--test-days",
            type=float,
            default=None,
            help="sessions ending in the last N days are the test set "
            "(default 1; ml-100k 14, movielens 90, instacart 1)",
        )
        p.add_argument("--device", default="cpu")
        p.add_argument("--eval-batch-size", type=int, default=512)
    _add_model_options(t)
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--save", help="checkpoint written (atomically) after every epoch")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue from --save up to --epochs (the model options come from the checkpoint)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_option(t)
    e.add_argument("--load", required=True)
    return t


def use_preset(train_parser: argparse.ArgumentParser, name: str) -> None:
    """Make a preset's values the train parser's defaults (the command line's options, parsed
    again, go on top)."""
    train_parser.set_defaults(**PRESET_COMMON, **PRESETS[name])


def run(args) -> int:
    return train(args) if args.command == "train" else evaluate(args)
