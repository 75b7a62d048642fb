"""GRU4Rec's command line: ``seqrec gru4rec train|evaluate|tune|recommend``.

seqrec gru4rec train --dataset ml-100k --epochs 3 --save model.pt
seqrec gru4rec train --dataset events.tsv --loss cross-entropy --logq 1 --layers 512 ...
seqrec gru4rec train --dataset events.parquet --epochs 5
seqrec gru4rec train --dataset train.tsv --test test1.tsv test2.tsv --cutoffs 1 5 10 20 --ties conservative
seqrec gru4rec train --dataset train.tsv --item-key item_id --session-key session_id --time-key ts ...
seqrec gru4rec train --params best.toml --dataset train.tsv --test test.tsv --epochs 10
seqrec gru4rec evaluate --load model.pt --dataset ml-100k
seqrec gru4rec evaluate --load model.pt --test test1.tsv test2.tsv
seqrec gru4rec tune --dataset ml-100k --space bpr-max --trials 30 --epochs 2 --storage study.db
seqrec gru4rec recommend --load model.pt --items 12,55,7 -k 20
torchrun --nproc-per-node 2 -m seqrec gru4rec train --dataset events.tsv --save model.pt  (data-parallel)
seqrec gru4rec recommend --load model.pt --input sessions.tsv --output recs.tsv --skip-unknown
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields

import numpy as np
import torch

from seqrec_ext.sampled_loss import LOSSES

from ..checkpoints import open_atomically, refuse_overwriting
from ..cli_options import (
    SCORING_THREADS,
    add_dist_timeout_option,
    add_metric_log_options,
    add_threads_option,
    days,
    device,
    positive_days,
    seconds,
    whole_number,
)
from ..metric_log import MetricLog
from ..metrics import DEFAULT_CUTOFFS, TIE_MODES
from . import baselines_cli
from .checkpoint import load_checkpoint, load_for_resume, save_checkpoint
from .config import PRECISIONS, PRESET_COMMON, PRESETS, GRU4RecConfig
from .data import ColumnKeys, build_sessions, read_events, split_events_by_time, time_split
from .datasets import BUILTIN, load_builtin
from .model import EMBEDDING_MODES, GRU4Rec
from .params import ParamsParser, option_index, write_params
from .protocols import PROTOCOLS, eval_negatives, leave_one_out, sessionize_users
from .tune import evaluation_threads

DEFAULT_SESSION_GAP = 3600.0  # seconds: a user's events further apart start a new session
# instacart: every user's last order falls on day 0 (datasets.load_instacart), so one day tests those
DEFAULT_TEST_DAYS = {"ml-100k": 14.0, "movielens": 90.0, "instacart": 1.0}


def _events(source: str, option: str, keys: ColumnKeys = ColumnKeys()):
    if source in BUILTIN:
        return load_builtin(source)
    if not os.path.exists(source):
        raise SystemExit(f"{option} {source!r}: neither a file nor a built-in data set ({', '.join(BUILTIN)})")
    return read_events(source, keys)


def _keys(args) -> ColumnKeys:
    return ColumnKeys(args.session_key, args.item_key, args.time_key)


def _load(args, source: str, option: str):
    """The events of a data option: with --user-key a user log (its user column read where the
    session column would be), made into sessions at --session-gap under the time protocol (a
    built-in data set with users too, when --session-gap is given); under leave-one-out the
    users' sequences are kept whole."""
    keys = _keys(args)
    user_key = getattr(args, "user_key", None)
    if user_key and source in BUILTIN:
        raise SystemExit(f"--user-key names a column of a file; the built-in {source} knows its users")
    if user_key:
        keys = ColumnKeys(user_key, keys.item, keys.time)
    events = _events(source, option, keys)
    if user_key:
        events.user_ids = events.session_ids.copy()
    gap = getattr(args, "session_gap", None)
    if getattr(args, "protocol", "time") == "time" and (user_key or gap is not None):
        if events.user_ids is None:
            raise SystemExit(f"--session-gap: {source} has no users (name its user column with --user-key)")
        events = sessionize_users(events, DEFAULT_SESSION_GAP if gap is None else gap)
    return events


def _leave_one_out(args, item_ids=None):
    """(training, validation, test) sessions of --dataset under leave-one-out (or sampled)."""
    for option, value in (("--test", args.test), ("--test-days", args.test_days)):
        if value is not None:
            raise SystemExit(
                f"{option} does not go with --protocol {args.protocol}: the split holds out each user's last events"
            )
    try:
        events = _load(args, args.dataset, "--dataset")
        return leave_one_out(events, source=args.dataset, item_ids=item_ids, recbole_order=args.recbole_order)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def _check_protocol_options(args) -> None:
    """Protocol options that do not go together, refused before any data is read."""
    negatives = _negatives(args)
    if args.protocol != "time" and args.session_gap is not None:
        raise SystemExit(
            f"--session-gap cuts sessions under --protocol time; {args.protocol} uses whole user sequences"
        )
    if negatives is not None:
        kind, n = negatives
        ks = list(args.cutoffs or DEFAULT_CUTOFFS)
        if getattr(args, "valid_metric", None):
            ks.append(args.valid_metric[1])
        if getattr(args, "command", None) == "tune":
            ks.append(args.cutoff)
        if max(ks) > n + 1:
            raise SystemExit(f"cut-off {max(ks)}: a target is ranked among {n + 1} items (--eval-negatives {kind}:{n})")
    if getattr(args, "recbole_order", False) and args.protocol == "time":
        raise SystemExit(
            "--recbole-order orders the leave-one-out split: it goes with --protocol leave-one-out or sampled"
        )


def _negatives(args):
    """The sampled ranking's (kind, n) under --protocol sampled (default uniform:100), else None."""
    if args.protocol != "sampled":
        if args.eval_negatives is not None:
            raise SystemExit("--eval-negatives goes with --protocol sampled")
        return None
    return args.eval_negatives or ("uniform", 100)


def _test_days(args, days) -> float:
    return days if days is not None else DEFAULT_TEST_DAYS.get(args.dataset, 1.0)


def _data(args):
    """(training events, training sessions, [(test file or None, test sessions)]): --dataset
    and its time split, or all of --dataset and each --test file, its items mapped as in the
    training data (events of other items dropped, then sessions shorter than 2)."""
    if args.protocol != "time":
        train_set, _, test_set = _leave_one_out(args)
        return None, train_set, [(None, test_set)]
    events = _load(args, args.dataset, "--dataset")
    if args.test:
        if args.test_days is not None:
            raise SystemExit("--test-days splits --dataset into training and test data; with --test all of it trains")
        train_set = build_sessions(events, source=args.dataset)
        tests = [
            (p, build_sessions(_load(args, p, "--test"), item_ids=train_set.item_ids, source=p)) for p in args.test
        ]
        return events, train_set, tests
    train_events, test_events = split_events_by_time(events, _test_days(args, args.test_days), source=args.dataset)
    train_set = build_sessions(train_events, source=f"{args.dataset} (train split)")
    test_set = build_sessions(test_events, item_ids=train_set.item_ids, source=f"{args.dataset} (test split)")
    return train_events, train_set, [(None, test_set)]


def _describe(train_set, tests) -> None:
    line = f"train: {train_set.n_sessions} sessions, {train_set.n_events} events, {train_set.n_items} items"
    if tests[0][1].last_only:
        print(f"{line}; test: the last event of {tests[0][1].n_sessions} users (leave-one-out)")
        return
    if tests[0][0] is None:
        test = tests[0][1]
        print(f"{line}; test: {test.n_sessions} sessions, {test.n_events} events")
        return
    print(line)
    _describe_tests(tests)


def _describe_tests(tests) -> None:
    for name, test in tests:
        print(f"test {name}: {test.n_sessions} sessions, {test.n_events} events (of items seen in training)")


def layer_sizes(text: str) -> tuple:
    """--layers: one size or several, comma-separated, each >= 1 (checked before any data is read)."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected sizes >= 1 such as 100 or 100,100, got {text!r}")
    return sizes


def _add_model_options(p: argparse.ArgumentParser) -> set:
    """The model's options; returns their dests."""
    before = {a.dest for a in p._actions}
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
    p.add_argument("--embedding", default=d.embedding, choices=EMBEDDING_MODES)
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
    p.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default=d.precision,
        help="bf16: the training step's large matrix products in bfloat16 (float32 accumulation, "
        "parameters and all other arithmetic float32; one GRU layer)",
    )
    return {a.dest for a in p._actions} - before


def _add_data_options(p: ParamsParser, *, dataset_required: bool) -> None:
    p.add_argument(
        "--dataset",
        required=dataset_required,
        help="a GRU4Rec TSV file, a .parquet file (SessionId, ItemId, Time columns, or those --session-key, "
        f"--item-key and --time-key name; parquet needs pandas and pyarrow) or one of: {', '.join(BUILTIN)}",
    )
    p.add_argument(
        "--test",
        nargs="+",
        metavar="FILE",
        help="test files (TSV or parquet), each evaluated on its own, items mapped as in the training data "
        "(events of other items dropped); instead of the time split of --dataset",
    )
    p.add_argument(
        "--test-days",
        type=days,
        default=None,
        help="sessions ending in the last N days are the test set (default 1; ml-100k 14, movielens 90, instacart 1)",
    )
    p.add_argument("--session-key", default="SessionId", help="the session column of the files (default SessionId)")
    p.add_argument("--item-key", default="ItemId", help="the item column of the files (default ItemId)")
    p.add_argument("--time-key", default="Time", help="the time column of the files (default Time)")
    p.add_argument(
        "--user-key",
        help="a user log: the files' user column (no session column needed); sessions are cut at --session-gap "
        "(time protocol), or each user's sequence is one (leave-one-out)",
    )
    p.add_argument(
        "--session-gap",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=f"a user's events this far apart or more start a new session (default {DEFAULT_SESSION_GAP:g}; "
        "with --user-key, or to re-cut a built-in data set's sessions)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="time",
        help="time: the test sessions are those ending in the last --test-days (or --test files); leave-one-out: "
        "each user's last event is the test target, the one before it the validation target (as RecBole), full "
        "ranking; sampled: the same split, each target ranked against --eval-negatives (overstates accuracy)",
    )
    p.add_argument(
        "--recbole-order",
        action="store_true",
        help="leave-one-out: order each user's events as RecBole 1.2.1 does (timestamps min-max normalised and "
        "compared in float32: events about a second apart tie and keep the file's order), for its exact split",
    )
    p.add_argument(
        "--eval-negatives",
        type=eval_negatives,
        default=None,
        metavar="KIND:N",
        help="--protocol sampled: uniform:N or popularity:N negatives per target (default uniform:100)",
    )
    p.add_argument("--device", type=device, default="cpu")
    p.add_argument("--eval-batch-size", type=whole_number, default=512)
    p.add_argument(
        "--cutoffs",
        nargs="+",
        type=whole_number,
        metavar="K",
        default=None,
        help=f"Recall@K and MRR@K at these cut-offs (default {' '.join(map(str, DEFAULT_CUTOFFS))})",
    )
    p.add_argument(
        "--ties",
        nargs="+",
        choices=TIE_MODES,
        default=None,
        help="how ties with the target's score rank: the tie modes to report (default: all three)",
    )
    p.add_params_option()


def _config(args) -> GRU4RecConfig:
    values = {f.name: getattr(args, f.name) for f in fields(GRU4RecConfig)}
    if args.layer_sizes is not None:
        *layers, values["hidden"] = args.layer_sizes
        values["layers"] = tuple(layers)
    return GRU4RecConfig(**values)


def _report(model, tests, args, popularity=None) -> None:
    """One table per test set: the --cutoffs in the --ties modes (at --threads where given),
    then coverage, popularity (``popularity``: the training counts, where known) and Gini of
    the top-k lists."""

    ks = tuple(dict.fromkeys(args.cutoffs)) if args.cutoffs else DEFAULT_CUTOFFS
    modes = tuple(dict.fromkeys(args.ties)) if args.ties else None
    negatives = _negatives(args)
    if negatives is not None:
        kind, n = negatives
        if max(ks) > n + 1:
            raise SystemExit(
                f"--cutoffs {max(ks)}: a target is ranked among {n + 1} items (--eval-negatives {kind}:{n})"
            )
        print(
            f"SAMPLED ranking: each target against {n} {kind} negatives outside its sequence -- it overstates "
            "accuracy and is not comparable with full-catalogue ranking"
        )
    for name, test in tests:
        with evaluation_threads(args.threads):
            metrics = model.evaluate(
                test, batch_size=args.eval_batch_size, ks=ks, modes=modes, popularity=popularity, negatives=negatives
            )
        if name is not None:
            print(f"\n{name}:")
        print(metrics.table())


def _validation_data(args):
    """(training sessions, validation sessions, tests) with --valid-days or --valid: the
    validation sessions are the training data's last --valid-days (as tune carves them) or the
    --valid file; the model's catalogue is the items of what it trains on, and the validation
    and test sessions are mapped to it."""
    if args.protocol != "time":
        if args.valid_days is not None or args.valid is not None:
            raise SystemExit(
                f"--protocol {args.protocol} validates on each user's validation target: no --valid-days / --valid"
            )
        train_set, valid_set, test_set = _leave_one_out(args)
        if valid_set is None:
            raise SystemExit(f"{args.dataset}: no user has three events, so there is no validation target")
        return train_set, valid_set, [(None, test_set)]
    events = _load(args, args.dataset, "--dataset")
    if args.test:
        if args.test_days is not None:
            raise SystemExit("--test-days splits --dataset into training and test data; with --test all of it trains")
        train_events, test_sources = events, [(p, _load(args, p, "--test")) for p in args.test]
    else:
        train_events, test_events = split_events_by_time(events, _test_days(args, args.test_days), source=args.dataset)
        test_sources = [(None, test_events)]
    if args.valid is not None:
        fit_set = build_sessions(train_events, source=args.dataset)
        valid_set = build_sessions(_load(args, args.valid, "--valid"), item_ids=fit_set.item_ids, source=args.valid)
    else:
        fit_set, valid_set = time_split(
            train_events, test_days=args.valid_days, source=f"{args.dataset} (training data)"
        )
    tests = [
        (p, build_sessions(e, item_ids=fit_set.item_ids, source=p or f"{args.dataset} (test split)"))
        for p, e in test_sources
    ]
    return fit_set, valid_set, tests


def _early_stopping(args):
    """The run's EarlyStopping record from --valid-metric, --ties and --patience (None without
    --valid-days / --valid)."""
    from .early_stopping import EarlyStopping

    if args.valid_days is None and args.valid is None and args.protocol == "time":
        given = [o for o, v in (("--patience", args.patience), ("--valid-metric", args.valid_metric)) if v is not None]
        if given:
            raise SystemExit(
                f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} --valid-days N or --valid FILE"
            )
        return None
    if args.valid_days is not None and args.valid is not None:
        raise SystemExit("give --valid-days or --valid, not both")
    measure, k = args.valid_metric or ("recall", 20)
    # conservative unless --ties says otherwise, as tune (docs/gru4rec-workflow.md)
    return EarlyStopping(measure, k, args.ties[0] if args.ties else "conservative", args.patience)


def _broadcast_stop(stop: bool, n_processes: int) -> bool:
    """Rank 0's decision to stop, known to every process of a torchrun."""
    if n_processes == 1:
        return stop
    import torch.distributed as dist

    flag = [stop]
    dist.broadcast_object_list(flag, src=0)
    return bool(flag[0])


def _fit(model, train_set, args, first_epoch: int = 0, world=(0, 1), valid=None, validation=None, log=None) -> int:
    """Epochs first_epoch..args.epochs with a progress bar, a checkpoint after each with --save;
    returns 2 when a loss turns non-finite, else 0. ``world``: (rank, processes) under torchrun:
    this process trains on its shard, data-parallel (seqrec.gru4rec.distributed); rank 0 alone
    prints, validates and writes the checkpoints. ``valid`` and ``validation`` (an
    early_stopping.EarlyStopping): evaluate on ``valid`` after every epoch, keep the best epoch
    and stop when its patience is spent (the best model is restored by the caller). ``log``: a
    seqrec.metric_log.MetricLog."""
    from tqdm import tqdm

    rank, n_processes = world
    steps_options, data = {}, train_set
    if n_processes > 1:
        data = train_set.shard(rank, n_processes)
    if first_epoch >= args.epochs and rank == 0:
        print(f"already trained {first_epoch} epochs (--epochs {args.epochs}): raise --epochs to train on")
    if validation is not None and _broadcast_stop(validation.stopped, n_processes):
        if rank == 0:
            print(
                f"no gain on validation for {validation.epochs_without_gain} epoch(s) since the best (epoch "
                f"{validation.best_epoch}): with --patience {validation.patience} there is nothing to resume "
                "(a larger --patience goes on)"
            )
        return 0
    for epoch in range(first_epoch, args.epochs):
        if n_processes > 1:
            from .distributed import DataParallelStep

            # each process's negatives and dropout from its own stream, the same for a resumed epoch
            model.generator.manual_seed(model.config.seed + 1_000_003 * epoch + rank)
            steps_options = dict(counts=train_set.item_counts(), step=DataParallelStep(model))
        bar = tqdm(
            total=train_set.n_events - train_set.n_sessions,
            desc=f"epoch {epoch + 1}",
            unit="ev",
            disable=args.quiet or rank > 0,
            mininterval=0.5,
        )

        def progress(n, loss, bar=bar):
            bar.update(n)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

        try:
            stats = model.train_epoch(data, progress=progress, threads=args.threads, **steps_options)
        except FloatingPointError as err:
            bar.close()
            kept = f"; the last good checkpoint is {args.save}" if args.save and os.path.exists(args.save) else ""
            print(f"stopped: {err}{kept}", file=sys.stderr)
            return 2
        bar.close()
        stop = False
        if rank == 0:
            processes = f" x {n_processes} processes" if n_processes > 1 else ""
            line = (
                f"epoch {epoch + 1}: loss {stats['loss']:.4f}, {stats['events_per_s']:.0f} events/s, "
                f"{stats['threads']} thread{'s' if stats['threads'] > 1 else ''}{processes}"
            )
            record = {k: stats[k] for k in ("loss", "events_per_s", "threads", "seconds")}
            if validation is not None:
                with evaluation_threads(args.threads):
                    values = validation.evaluate(
                        model, valid, args.eval_batch_size, _negatives(args), train_set.item_counts()
                    )
                best = validation.record(model, values[validation.label])
                line += f"; validation {validation.label} {values[validation.label]:.4f}" + (" (best)" if best else "")
                record.update(valid=values, best_epoch=validation.best_epoch)
                stop = validation.stopped
            print(line, flush=True)
            if log is not None:
                log.write(epoch + 1, **record)
            if args.save:
                save_checkpoint(
                    model,
                    args.save,
                    epoch=epoch + 1,
                    item_ids=train_set.item_ids,
                    world_size=n_processes,
                    validation=validation,
                )
        if validation is not None and _broadcast_stop(stop, n_processes):
            break
    return 0


def train(args) -> int:
    from ..distributed import init, world_from_env
    from .early_stopping import restore, validation_data_key

    inputs = (args.dataset, *(args.test or ()), args.valid, getattr(args, "params", None))
    refuse_overwriting(args.save, "--save", inputs)
    if args.save and args.log and os.path.abspath(args.save) == os.path.abspath(args.log):
        raise SystemExit(f"--log {args.log}: the same file as --save; choose another")
    rank, n_processes = world_from_env()
    if n_processes > 1:  # launched by torchrun: data-parallel
        rank, n_processes = init(args.device, args.dist_timeout)
    config = _config(args)  # every setting checked before any data is read
    validation = _early_stopping(args)
    valid_set = None
    if validation is not None:
        train_set, valid_set, tests = _validation_data(args)
        validation.data = validation_data_key(train_set, valid_set)
    else:
        _, train_set, tests = _data(args)
    first_epoch = 0
    if args.resume:
        if not args.save or not os.path.exists(args.save):
            raise SystemExit("--resume needs --save pointing at an existing checkpoint")
        model, first_epoch, item_ids, saved_validation = load_for_resume(args.save, device=args.device)
        if (saved_validation is None) != (validation is None):
            raise SystemExit(
                f"{args.save} was trained with validation: resume it with the same --valid-days, --valid or --protocol"
                if saved_validation is not None
                else f"{args.save} was trained without validation: resume it without --valid-days / --valid"
            )
        if not np.array_equal(item_ids, train_set.item_ids):
            raise SystemExit(f"{args.save}: the checkpoint's items do not match the training data")
        if model.world_size != n_processes:
            raise SystemExit(
                f"{args.save} was trained by {model.world_size} process(es), this run has {n_processes}: "
                "resume with the same number (torchrun --nproc-per-node), or start a new run"
            )
        if validation is not None:
            if (saved_validation.label, saved_validation.ties) != (validation.label, validation.ties):
                raise SystemExit(
                    f"{args.save} was validated on {saved_validation.label} ({saved_validation.ties} ties): "
                    "resume it with the same --valid-metric and --ties"
                )
            if saved_validation.data is not None and saved_validation.data != validation.data:
                raise SystemExit(
                    f"{args.save} was validated on other data ({saved_validation.data}; now {validation.data}): "
                    "resume it with the same data, split and validation options"
                )
            saved_validation.patience = validation.patience  # the patience may change
            validation = saved_validation
        if rank == 0:
            print(f"resuming from {args.save} after epoch {first_epoch}")
    else:
        model = GRU4Rec(train_set.n_items, config, device=args.device)  # the same seed: the same replica everywhere
        model.item_ids = train_set.item_ids
    if rank == 0:
        _describe(train_set, tests)
        if validation is not None:
            how = (
                f"--valid {args.valid}"
                if args.valid
                else f"the last {args.valid_days:g} days of the training data"
                if args.valid_days is not None
                else "each user's second-to-last event"
            )
            patience = f", patience {validation.patience}" if validation.patience else ""
            print(
                f"validation ({how}): {valid_set.n_sessions} sessions, {valid_set.n_predictions} targets; "
                f"{validation.label} ({validation.ties} ties) after every epoch{patience}"
            )
    log = MetricLog(args.log, args.tensorboard, append=args.resume, inputs=(*inputs, args.save)) if rank == 0 else None
    try:
        code = _fit(model, train_set, args, first_epoch, (rank, n_processes), valid_set, validation, log)
    finally:
        if log is not None:
            log.close()
    if n_processes > 1:
        import torch.distributed as dist

        dist.destroy_process_group()  # (rank 0's evaluation below is its own)
    if code or rank > 0:
        return code
    if validation is not None and validation.best is not None:
        restore(model, validation.best)
        print(validation.summary())
    _report(model, tests, args, train_set.item_counts())
    return 0


def evaluate(args) -> int:
    model, epoch, item_ids = load_checkpoint(args.load, device=args.device)
    if args.protocol != "time":
        if args.dataset is None:
            raise SystemExit(f"evaluate --protocol {args.protocol} needs --dataset (the log it splits)")
        train_set, _, test_set = _leave_one_out(args, item_ids)
        print(f"{args.load} (epoch {epoch}); test: the last event of {test_set.n_sessions} users (leave-one-out)")
        _report(model, [(None, test_set)], args, train_set.item_counts())
        return 0
    if args.test:
        tests = [(p, build_sessions(_load(args, p, "--test"), item_ids=item_ids, source=p)) for p in args.test]
        unused = " and ".join(
            o for o, v in (("--dataset", args.dataset), ("--test-days", args.test_days)) if v is not None
        )
        print(f"{args.load} (epoch {epoch})" + (f"; {unused} not used: --test names the data" if unused else ""))
        _describe_tests(tests)
        _report(model, tests, args)
        return 0
    if args.dataset is None:
        raise SystemExit("evaluate: give --dataset (its test split; all of it with --test-days 0) or --test FILE ...")
    events = _load(args, args.dataset, "--dataset")
    if args.test_days == 0:
        test_set = build_sessions(events, item_ids=item_ids, source=args.dataset)
    else:
        train_events, test_events = split_events_by_time(events, _test_days(args, args.test_days), source=args.dataset)
        test_set = build_sessions(test_events, item_ids=item_ids, source=f"{args.dataset} (test split)")
        order = np.argsort(item_ids)  # the training split's count of each catalogue item
        seen = train_events.item_ids[np.isin(train_events.item_ids, item_ids)]
        dense = order[np.searchsorted(item_ids[order], seen)]
        popularity = torch.from_numpy(np.bincount(dense, minlength=len(item_ids)))
    print(f"{args.load} (epoch {epoch}); test: {test_set.n_sessions} sessions, {test_set.n_events} events")
    _report(model, [(None, test_set)], args, popularity if args.test_days != 0 else None)
    return 0


def tune(args) -> int:
    from . import tune as tuning

    parser = args.tune_parser
    _, space = tuning.read_space(args.space, parser, args.tunable)  # a bad space fails before any work
    optuna = tuning.import_optuna()
    if args.protocol != "time":  # the search validates on each user's validation target
        if args.valid_days is not None:
            raise SystemExit(f"--protocol {args.protocol} validates on each user's validation target: no --valid-days")
        train_set, valid_set, test_set = _leave_one_out(args)
        if valid_set is None:
            raise SystemExit(f"{args.dataset}: no user has three events, so there is no validation target")
        fit_set, tests, valid_days = train_set, [(None, test_set)], None
    else:
        train_events, train_set, tests = _data(args)
        valid_days = _test_days(args, args.valid_days)
        fit_set, valid_set = time_split(train_events, test_days=valid_days, source=f"{args.dataset} (training data)")
    # conservative unless --ties says otherwise: standard ties score a saturated model (every item
    # at the same score) as perfect, and a search finds such models (docs/gru4rec-workflow.md)
    ties = args.ties[0] if args.ties else "conservative"
    where = (
        f"sessions ending in the last {valid_days:g} days of the training data"
        if valid_days is not None
        else "each user's second-to-last event"
    )
    print(
        f"search on {fit_set.n_sessions} sessions, {fit_set.n_events} events, {fit_set.n_items} items; validation "
        f"({where}): {valid_set.n_sessions} sessions, {valid_set.n_predictions} targets; "
        f"{args.metric}@{args.cutoff} ({ties} ties); space {args.space}"
    )
    given = [p.name for p in space if getattr(args, p.dest) != parser.get_default(p.dest)]
    if given:
        print(
            f"note: the space sets {', '.join(given)}: the value given for {'it' if len(given) == 1 else 'them'} is not used"
        )
    searched = {p.dest for p in space}
    setup = {
        "space": [p.describe() for p in space],
        "metric": args.metric,
        "cutoff": args.cutoff,
        "ties": ties,
        "dataset": args.dataset,
        "test": args.test,
        "test_days": args.test_days,
        "valid_days": valid_days,
        "keys": list(_keys(args)),
        **({"protocol": args.protocol, "user_key": args.user_key} if args.protocol != "time" or args.user_key else {}),
        **({"session_gap": args.session_gap} if args.session_gap is not None else {}),
        "fixed": {d: getattr(args, d) for d in sorted(args.tunable - searched)} | {"hidden": args.hidden},
    }
    study = tuning.open_study(optuna, args.storage, args.study_name, setup, args.seed, print)
    metric_log = MetricLog(args.log, args.tensorboard, append=True, inputs=(args.dataset, *(args.test or ())))
    with metric_log:
        tuning.search(
            study,
            space,
            args,
            parser,
            _config,
            fit_set,
            valid_set,
            trials=args.trials,
            metric=args.metric,
            cutoff=args.cutoff,
            ties=ties,
            threads=args.threads,
            eval_batch_size=args.eval_batch_size,
            device=args.device,
            log=lambda line: print(line, flush=True),
            metric_log=metric_log,
            negatives=_negatives(args),
        )
    print()
    print(tuning.trials_table(study, space, args.metric, args.cutoff))
    best = tuning.best_trial(study)
    if best is None:
        raise SystemExit("no trial of the search completed")
    best_args = tuning.with_params(args, space, best.params, parser)
    config = _config(best_args)
    write_params(
        args.best_params,
        tuning.config_params(config, best_args.epochs, parser),
        comment=f"seqrec gru4rec tune: trial {best.number} of study {args.study_name!r}, "
        f"{args.metric}@{args.cutoff} {best.value:.4f} ({ties} ties) on the validation split of {args.dataset}",
    )
    print(
        f"\nbest: trial {best.number}, {args.metric}@{args.cutoff} {best.value:.4f} on the validation split; "
        f"its parameters are in {args.best_params} (seqrec gru4rec train --params {args.best_params} ...)"
    )
    print("the best, trained on all the training data:")
    _describe(train_set, tests)
    model = GRU4Rec(train_set.n_items, config, device=args.device)
    code = _fit(model, train_set, best_args)
    if code:
        return code
    _report(model, tests, best_args, train_set.item_counts())
    return 0


def _item_list(text: str) -> list:
    """--items: item ids, comma-separated, oldest first."""
    try:
        items = [int(part) for part in text.split(",")]
    except ValueError:
        items = []
    if not items:
        raise argparse.ArgumentTypeError(f"expected item ids such as 12,55,7, got {text!r}")
    return items


def _sessions_of(path: str, keys: ColumnKeys):
    """(session ids, each session's items in time order) of a file in GRU4Rec's format."""
    events = _events(path, "--input", keys)
    order = np.lexsort((events.times, events.session_ids))
    sids, items = events.session_ids[order], events.item_ids[order]
    starts = np.flatnonzero(np.r_[True, sids[1:] != sids[:-1]])
    return sids[starts], np.split(items, starts[1:])


def recommend_command(args) -> int:
    if args.items is not None and args.output is not None:
        raise SystemExit("--output goes with --input (a file of sessions); --items prints its recommendations")
    refuse_overwriting(args.output, "--output", (args.input, args.load))
    model, epoch, _ = load_checkpoint(args.load, device=args.device)
    options = dict(k=args.k, exclude_seen=not args.include_seen, skip_unknown=args.skip_unknown)
    try:
        with evaluation_threads(args.threads):
            unknown = _recommend(model, epoch, args, options)
    except ValueError as err:
        raise SystemExit(f"recommend: {err}") from err
    if unknown:
        print(f"skipped {unknown} unknown item id(s)", file=sys.stderr)
    return 0


def _recommend(model, epoch, args, options) -> int:
    """The recommendations of --items (printed) or --input (written to --output); the count of
    unknown item ids skipped."""
    if args.items is None:
        session_ids, sessions = _sessions_of(args.input, _keys(args))
        return _recommend_file(model, session_ids, sessions, args, options)
    rec = model.recommend([args.items], **options)
    if not rec.valid[0].any():
        raise ValueError(f"none of the items {', '.join(map(str, args.items))} is in the model's catalogue")
    print(f"{args.load} (epoch {epoch}): the next items after {', '.join(map(str, args.items))}")
    print("\n| rank | item | score |\n|---:|---:|---:|")
    for rank, (item, score) in enumerate(zip(rec.items[0][rec.valid[0]], rec.scores[0][rec.valid[0]]), 1):
        print(f"| {rank} | {item} | {score:.4f} |")
    return rec.unknown


def _recommend_file(model, session_ids, sessions, args, options) -> int:
    """Every session of --input in batches, written to --output as SessionId, Rank, ItemId,
    Score rows (atomically: a temporary file of a unique name renamed at the end)."""
    from tqdm import tqdm

    unknown, rows, without = 0, 0, 0
    with open_atomically(args.output, "w") as out, tqdm(total=len(sessions), unit="session", disable=args.quiet) as bar:
        out.write("SessionId\tRank\tItemId\tScore\n")
        for start in range(0, len(sessions), args.batch_size):
            chunk, ids = sessions[start : start + args.batch_size], session_ids[start : start + args.batch_size]
            rec = model.recommend(chunk, labels=ids, batch_size=args.batch_size, **options)
            for sid, items, scores, valid in zip(ids, rec.items, rec.scores, rec.valid):
                for rank, (item, score) in enumerate(zip(items[valid], scores[valid]), 1):
                    out.write(f"{sid}\t{rank}\t{item}\t{score:.6g}\n")
                rows, without = rows + int(valid.sum()), without + int(not valid.any())
            unknown += rec.unknown
            bar.update(len(chunk))
    fewer = f"; {without} session(s) without a known item got none" if without else ""
    print(f"{len(sessions)} sessions, {rows} recommendations (up to {args.k} each){fewer}: {args.output}")
    return unknown


def add_parser(models) -> argparse.ArgumentParser:
    """``seqrec gru4rec train|evaluate|tune|recommend`` under ``models``; returns the train parser (see
    use_preset)."""
    g = models.add_parser("gru4rec", help="GRU4Rec").add_subparsers(
        dest="command", required=True, parser_class=ParamsParser
    )
    t = g.add_parser("train", help="train, then evaluate on the test split or the --test files")
    e = g.add_parser("evaluate", help="evaluate a saved model")
    u = g.add_parser(
        "tune", help="hyper-parameter search with Optuna on a validation split, then train the best and evaluate it"
    )
    r = g.add_parser("recommend", help="the next items for sessions, from a saved model")
    prep = g.add_parser(
        "prepare", help="the published preprocessing of a data set's raw files into train/test TSV files"
    )
    _add_prepare_options(prep)
    b = g.add_parser(
        "baselines", help="Pop, S-Pop, AR, SR, item-kNN, SKNN, V-SKNN on the same split and metrics (and --load)"
    )
    _add_recommend_options(r)
    _add_data_options(t, dataset_required=True)
    _add_data_options(e, dataset_required=False)
    _add_data_options(u, dataset_required=True)
    _add_data_options(b, dataset_required=True)
    baselines_cli.add_options(b)
    add_threads_option(b, SCORING_THREADS)
    for p in (t, u):
        model_dests = _add_model_options(p)
        p.add_argument("--epochs", type=whole_number, default=10)
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        add_threads_option(p)
        p.presets = lambda name: {**PRESET_COMMON, **PRESETS[name]}
    t.add_argument("--save", help="checkpoint written (atomically) after every epoch")
    _add_validation_options(t)
    add_dist_timeout_option(t)
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue from --save up to --epochs (the model options come from the checkpoint)",
    )
    e.add_argument("--load", required=True)
    for p in (e, r):
        add_threads_option(p, SCORING_THREADS)
    u.add_argument(
        "--space",
        required=True,
        help="the parameter space: a JSON file in the published GRU4Rec format, or a ready-made one: "
        "bpr-max, cross-entropy",
    )
    u.add_argument("--trials", type=whole_number, default=30, help="trials of the study in all (default 30)")
    u.add_argument(
        "--metric",
        choices=("recall", "mrr", "ndcg"),
        default="recall",
        help="what the search maximises on the validation split, ties ranked the first --ties way (default conservative)",
    )
    u.add_argument("--cutoff", type=whole_number, default=20, help="the metric's cut-off (default 20)")
    u.add_argument(
        "--valid-days",
        type=days,
        default=None,
        help="the validation split: training sessions ending in the last N days (default: as --test-days)",
    )
    u.add_argument("--storage", help="an SQLite file (or database URL) keeping the study: a search resumes from it")
    u.add_argument("--study-name", default="gru4rec", help="the study in --storage (default gru4rec)")
    u.add_argument(
        "--best-params",
        default="gru4rec-best.toml",
        metavar="FILE",
        help="where the best parameters go, as a --params file (.toml or .json; default gru4rec-best.toml)",
    )
    u.add_argument("--save", help="checkpoint of the best, trained on all the training data")
    add_metric_log_options(u, "per trial (appended): parameters, value, time")
    u.set_defaults(tune_parser=u, tunable=frozenset((model_dests - {"preset", "seed"}) | {"epochs"}))
    # a params file may hold the options of any of the commands: each skips the others'
    commands = (("train", t), ("evaluate", e), ("tune", u), ("baselines", b))
    names = {cmd: set(option_index(p)) for cmd, p in commands}
    for cmd, p in commands:
        others = set().union(*(n for c, n in names.items() if c != cmd))
        p.params_ignore = lambda others=others: others
    return t


def _add_prepare_options(p) -> None:
    from .recipes import RECIPES

    p.add_argument(
        "--recipe",
        required=True,
        choices=tuple(RECIPES),
        help="; ".join(f"{name}: {r.files}" for name, r in RECIPES.items()),
    )
    p.add_argument("raw_files", nargs="+", metavar="RAW_FILE", help="the data set's raw files, as downloaded")
    p.add_argument("--out", required=True, help="the folder for NAME_train_full/test/train_tr/train_valid.tsv")


def prepare_command(args) -> int:
    from .recipes import prepare

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise SystemExit(f"--out {args.out}: a file; give a folder (it is made when missing)")
    raw = {os.path.realpath(p) for p in args.raw_files}
    for part in ("train_full", "test", "train_tr", "train_valid"):
        output = os.path.join(args.out, f"{args.recipe}_{part}.tsv")
        if os.path.realpath(output) in raw:
            raise SystemExit(f"--out {args.out}: {output} is an input of this command; choose another folder")
    try:
        prepare(args.recipe, args.raw_files, args.out)
    except (OSError, ValueError) as err:
        raise SystemExit(str(err)) from None
    return 0


def _add_validation_options(t) -> None:
    from .early_stopping import valid_metric

    t.add_argument(
        "--valid-days",
        type=positive_days,
        default=None,
        help="validate after every epoch on the training sessions ending in its last N days (they do not train); "
        "the best epoch's model is kept, restored at the end and saved",
    )
    t.add_argument("--valid", metavar="FILE", help="validate on this file (TSV or parquet) instead of --valid-days")
    t.add_argument(
        "--valid-metric",
        type=valid_metric,
        default=None,
        metavar="METRIC@K",
        help="what validation maximises: recall@K, mrr@K or ndcg@K (default recall@20), ties ranked the first "
        "--ties way (default conservative)",
    )
    t.add_argument(
        "--patience",
        type=whole_number,
        default=None,
        help="stop after this many epochs without a gain on validation (default: train every --epochs)",
    )
    add_metric_log_options(t, "per epoch: loss, events/s, validation, time")


def _add_recommend_options(r) -> None:
    r.add_argument("--load", required=True, help="a checkpoint written by train --save")
    source = r.add_mutually_exclusive_group(required=True)
    source.add_argument("--items", type=_item_list, help="one session's item ids, oldest first: 12,55,7")
    source.add_argument(
        "--input", help="sessions to recommend for: a TSV or parquet file in GRU4Rec's format (needs --output)"
    )
    r.add_argument("--output", help="with --input: a TSV of SessionId, Rank, ItemId, Score rows")
    r.add_argument("-k", "--k", type=whole_number, default=20, help="items per session (default 20)")
    r.add_argument("--include-seen", action="store_true", help="also recommend the session's own items")
    r.add_argument("--skip-unknown", action="store_true", help="skip item ids the model does not know (counted)")
    r.add_argument("--session-key", default="SessionId")
    r.add_argument("--item-key", default="ItemId")
    r.add_argument("--time-key", default="Time")
    r.add_argument("--batch-size", type=whole_number, default=512)
    r.add_argument("--device", type=device, default="cpu")
    r.add_argument("--quiet", action="store_true", help="no progress bar")


def use_preset(train_parser: argparse.ArgumentParser, name: str) -> None:
    """Make a preset's values the train parser's defaults (the command line's options, parsed
    again, go on top)."""
    train_parser.set_defaults(**PRESET_COMMON, **PRESETS[name])


def run(args) -> int:
    if args.command == "recommend" and args.input is not None and not args.output:
        raise SystemExit("recommend --input needs --output (the TSV to write)")
    if args.command not in ("recommend", "prepare"):
        _check_protocol_options(args)
    commands = {
        "train": train,
        "evaluate": evaluate,
        "tune": tune,
        "recommend": recommend_command,
        "baselines": baselines_cli.run,
        "prepare": prepare_command,
    }
    return commands[args.command](args)
