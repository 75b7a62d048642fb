"""Command line: ``seqrec cosernn prepare|train|evaluate``.

    seqrec cosernn train --dataset synthetic --save cosernn.pt --results results.md
    seqrec cosernn prepare --dataset instacart --out instacart.pt
    seqrec cosernn train --prepared instacart.pt --cell gru --hidden 400
    seqrec cosernn train --prepared instacart.pt --ablate context --eval-split valid
    seqrec cosernn evaluate --load cosernn.pt --dataset synthetic --per-context

Pipeline: listening log -> sessions (20-minute gap, first 10 tracks) -> item vectors (word2vec
over the sessions before the test period, or the synthetic generator's planted vectors) ->
per-user sequences -> training with early stopping on the validation period -> the test
period's Table 2 (CoSeRNN, the baselines and the oracles; ``--eval-split valid``: the
validation period's), printed and saved, and with ``--per-context`` its breakdown by context
(the paper's Fig. 5). ``prepare`` stops
after the sequences and saves them with their item space, so that several models train on the
same data without redoing the word2vec step.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import fields, replace

import numpy as np
import torch

from ..checkpoints import open_atomically, refuse_overwriting
from ..cli_options import (
    add_dist_timeout_option,
    add_metric_log_options,
    add_threads_option,
    days,
    device,
    whole_number,
)
from ..metric_log import MetricLog
from .datasets import LISTENING_BUILTIN, load_listening
from .evaluate import (
    baseline_predictor,
    evaluate_all,
    item_counts,
    per_context_results,
    per_context_table,
    results_table,
)
from .item_embeddings import WORD2VEC_METHODS, session_item_vectors
from .listening import ListeningSessions
from .log_stats import add_stats_parser, cmd_stats
from .model import ABLATION_ALIASES, ABLATIONS, CELLS, INITS, CoSeRNNConfig, model_predictor, normalise_ablations
from .sequences import TEST, TRAIN, VALID, build_session_sequences, load_prepared, save_prepared
from .train import choose_learning_rate, load_checkpoint, load_training_state, save_checkpoint, train

# (test days, validation days): the paper's two weeks and five days on the synthetic log's
# two months; MovieLens spans months (ml-100k) to years (latest-small); Instacart: the orders on
# the last day of the timelines, which end together (each user's last order, and the rare
# earlier order of the same day), the month before it validation
DEFAULT_DAYS = {
    "synthetic": (14.0, 5.0),
    "synthetic-strong": (14.0, 5.0),
    "ml-100k": (30.0, 15.0),
    "movielens": (365.0, 180.0),
    "instacart": (1.0, 30.0),
}


def _sessions(args) -> tuple[ListeningSessions, np.ndarray | None]:
    """The data set's sessions and, for the synthetic log, its planted item vectors."""
    try:
        sessions, planted, _ = load_listening(args.dataset, args.synthetic_users, args.data_seed)
    except ValueError as err:
        raise SystemExit(f"--dataset {err}") from None
    return sessions, planted


def build(args, item_ids=None, item_vectors=None, n_devices=None, n_sources=None):
    """Sessions and per-user sequences; item vectors learned here unless given."""
    sessions, planted = _sessions(args)
    test_days, valid_days = DEFAULT_DAYS.get(args.dataset, (14.0, 5.0))
    test_days = args.test_days if args.test_days is not None else test_days
    valid_days = args.valid_days if args.valid_days is not None else valid_days
    n_devices = n_devices or int(sessions.devices.max()) + 1
    n_sources = n_sources or int(sessions.sources.max()) + 1
    if item_vectors is None:
        item_ids = np.unique(sessions.items[sessions.items >= 0])
        if args.item_vectors == "planted":
            if planted is None:
                raise SystemExit("--item-vectors planted: only the synthetic data set has planted vectors")
            item_vectors = planted[item_ids]
        else:
            cutoff = sessions.starts.max() - test_days * 86400.0
            before = sessions.items[sessions.starts <= cutoff]
            item_vectors = session_item_vectors(before, item_ids, seed=args.seed, method=args.word2vec)
    seqs = build_session_sequences(
        sessions,
        item_vectors,
        item_ids,
        n_devices=n_devices,
        n_sources=n_sources,
        test_days=test_days,
        valid_days=valid_days,
        source=args.dataset,
        vector_dtype=args.session_vectors,
    )
    return seqs, item_ids, np.asarray(item_vectors, dtype=np.float32), n_devices, n_sources


def load_data(args, item_ids=None, item_vectors=None, n_devices=None, n_sources=None):
    """`build` from ``--dataset``, or the file of ``--prepared`` (checked against a model's item space when given)."""
    if args.prepared is None:
        return build(args, item_ids, item_vectors, n_devices, n_sources)
    data_defaults = {
        "test_days": None,
        "valid_days": None,
        "synthetic_users": None,
        "data_seed": 0,
        "item_vectors": "word2vec",
        "word2vec": "cbow",
        "session_vectors": "float16",
    }
    given = [
        "--" + name.replace("_", "-")
        for name, default in data_defaults.items()
        if getattr(args, name, default) != default
    ]
    if given:
        raise SystemExit(
            f"--prepared {args.prepared}: the data options ({', '.join(given)}) were fixed by "
            "'seqrec cosernn prepare'; give them there"
        )
    seqs, meta = load_prepared(args.prepared)
    ids, vectors = meta["item_ids"].numpy(), meta["item_vectors"].numpy()
    if item_ids is not None and (not np.array_equal(ids, item_ids) or not np.array_equal(vectors, item_vectors)):
        raise SystemExit(f"--prepared {args.prepared}: its item space is not the one the model was trained in")
    if n_devices is not None and (meta["n_devices"], meta["n_sources"]) != (n_devices, n_sources):
        raise SystemExit(
            f"--prepared {args.prepared}: {meta['n_devices']} devices / {meta['n_sources']} sources, "
            f"the model has {n_devices} / {n_sources}"
        )
    return seqs, ids, vectors, meta["n_devices"], meta["n_sources"]


EVAL_SPLITS = {"test": TEST, "valid": VALID}


def report(
    model,
    seqs,
    item_vectors: np.ndarray,
    results_path: str | None,
    seed: int = 0,
    eval_split: str = "test",
    per_context: bool = False,
    learned: dict | None = None,
    note: str = "",
) -> dict:
    """The results table of ``model``, the baselines and the oracles on the sessions of
    ``eval_split`` (test or valid), printed and saved to ``results_path``; with ``per_context``
    also the breakdown by context (printed and saved after it). ``learned``: trained learned
    baselines by name (rows of their own). Each user's last ``model.config.max_sessions``
    sessions, evaluated in chunks of users (``evaluate_all``)."""
    seqs = seqs.most_recent(model.config.max_sessions)
    vectors = torch.from_numpy(item_vectors)
    counts = item_counts(seqs, len(vectors), TRAIN)
    name = f"CoSeRNN ({model.describe()})"
    approaches = {"baselines": baseline_predictor(vectors, counts, seed=seed)}
    approaches.update({k: model_predictor(m) for k, m in (learned or {}).items()})
    approaches[name] = model_predictor(model)
    mask = seqs.split == EVAL_SPLITS[eval_split]
    scored = evaluate_all(approaches, seqs, mask, vectors, per_session=True)
    order = [k for k in scored if not k.startswith("Oracle")] + ["Oracle half", "Oracle full"]
    results = {k: scored[k] for k in order}
    period = "validation" if eval_split == "valid" else "test"
    table = f"Evaluated on the {period} period." + (f" {note}" if note else "") + "\n\n" + results_table(results)
    if per_context:
        breakdown = per_context_results(results, seqs, model.config.n_devices)
        table += f"\n\nPer context ({period} period; the paper's Fig. 5):\n\n" + per_context_table(breakdown, name)
    print(table)
    if results_path:
        with open_atomically(results_path, "w") as f:
            f.write(table + "\n")
        print(f"saved {results_path}")
    return results


def _split_sizes(seqs) -> list[int]:
    """Sessions with a played track in the training, validation and test periods."""
    return [int(((seqs.split == k) & seqs.has_pos).sum()) for k in range(3)]


def cmd_prepare(args) -> int:
    refuse_overwriting(args.out, "--out", (args.dataset,))
    seqs, item_ids, item_vectors, n_devices, n_sources = build(args)
    save_prepared(
        args.out,
        seqs,
        dataset=args.dataset,
        item_ids=torch.from_numpy(item_ids),
        item_vectors=torch.from_numpy(item_vectors),
        n_devices=n_devices,
        n_sources=n_sources,
    )
    sessions = _split_sizes(seqs)
    print(
        f"{seqs.n_users} users, {len(item_ids)} items; sessions with a played track: train {sessions[0]}, "
        f"validation {sessions[1]}, test {sessions[2]}; saved {args.out}"
    )
    return 0


def cmd_train(args) -> int:
    from ..distributed import init, world_from_env

    refuse_overwriting(args.save, "--save", (args.dataset, args.prepared))
    refuse_overwriting(args.results, "--results", (args.dataset, args.prepared, args.save))
    refuse_overwriting(args.log, "--log", (args.dataset, args.prepared, args.save, args.results))
    if args.resume and not (args.save and os.path.exists(args.save)):
        raise SystemExit("--resume needs --save pointing at the checkpoint of the run to continue")
    if args.resume and args.learning_rates:
        raise SystemExit("--resume continues one run; --learning-rates trains several")
    for rate in args.learning_rates or []:
        CoSeRNNConfig(n_devices=1, n_sources=1, learning_rate=rate)  # each rate checked before any data is read
    settings = {
        f.name: getattr(args, f.name) for f in fields(CoSeRNNConfig) if f.name not in ("n_devices", "n_sources", "dim")
    }
    settings["ablate"] = ",".join(args.ablate or [])
    CoSeRNNConfig(n_devices=1, n_sources=1, **settings)  # every setting checked before any data is read
    rank, n_processes = world_from_env()
    if n_processes > 1:  # launched by torchrun: data-parallel over users (DistributedDataParallel)
        rank, n_processes = init(args.device, args.dist_timeout)
    seqs, item_ids, item_vectors, n_devices, n_sources = load_data(args)
    split_sizes = _split_sizes(seqs)
    say = print if rank == 0 else (lambda *a, **k: None)  # rank 0 alone speaks
    say(
        f"{seqs.n_users} users; sessions with a played track: train {split_sizes[0]}, "
        f"validation {split_sizes[1]}, test {split_sizes[2]}; {len(item_ids)} items"
    )
    config = CoSeRNNConfig(n_devices=n_devices, n_sources=n_sources, **settings)
    from tqdm import tqdm

    bar = tqdm(total=seqs.n_users, unit="user", disable=args.quiet or rank > 0, mininterval=0.5)

    def progress(n, cosine):
        bar.update(n)
        bar.set_postfix(cos=f"{cosine:.4f}", refresh=False)

    def log(line):
        if rank == 0:
            bar.write(line)
        bar.reset()

    # the data a resumed run must find again: the item space, the users and the split sizes
    extra = dict(
        item_ids=torch.from_numpy(item_ids),
        item_vectors=torch.from_numpy(item_vectors),
        data_shape=torch.tensor([seqs.n_users, *split_sizes]),
    )
    if args.resume:
        try:
            load_training_state(args.save, config, extra)
        except ValueError as err:
            raise SystemExit(f"cannot resume: {err}") from None

    metric_log = MetricLog(args.log, args.tensorboard, append=args.resume) if rank == 0 else None

    def on_epoch(model_name, rate):
        """The metric log's writer of one model's epochs (its name and rate in every line; its
        TensorBoard tags under name/lr)."""
        if metric_log is None:
            return None
        return lambda h: metric_log.write(
            h["epoch"],
            model=model_name,
            learning_rate=rate,
            **{k: v for k, v in h.items() if k != "epoch"},
            tags=f"{model_name}/lr={rate:g}/",
        )

    def fit(config, save=args.save):
        return train(
            seqs,
            config,
            device=args.device,
            progress=progress,
            log=log,
            compile=args.compile,
            save=save,
            checkpoint_extra=extra,
            resume=args.resume,
            item_vectors=torch.from_numpy(item_vectors),
            threads=args.threads,
            on_epoch=on_epoch("CoSeRNN", config.learning_rate),
        )

    chosen = {}
    if args.learning_rates:  # each rate without checkpoints; the chosen model saved once at the end
        model, history, chosen["CoSeRNN"] = choose_learning_rate(
            args.learning_rates, lambda rate: fit(replace(config, learning_rate=rate), None), log, "CoSeRNN"
        )
        if args.save and rank == 0:
            best = max(history, key=lambda h: h["valid_cosine"] if math.isfinite(h["valid_cosine"]) else -math.inf)
            save_checkpoint(
                args.save,
                model.config,
                model.state_dict(),
                epoch=best["epoch"],
                valid_cosine=best["valid_cosine"],
                **extra,
            )
    else:
        model, _ = fit(config)
    bar.close()
    if n_processes > 1:
        import torch.distributed as dist

        dist.barrier()  # every process done (rank 0 wrote the checkpoint) before any tears down its links
        dist.destroy_process_group()
    if rank == 0:
        learned = _train_learned_baselines(args, seqs.most_recent(config.max_sessions), log, chosen, on_epoch)
        if metric_log is not None:
            metric_log.close()
        note = ""
        if chosen:
            note = "Learning rates chosen on validation from " + ", ".join(f"{r:g}" for r in args.learning_rates)
            note += ": " + ", ".join(f"{k} {v:g}" for k, v in chosen.items()) + "."
        report(model, seqs, item_vectors, args.results, args.seed, args.eval_split, args.per_context, learned, note)
    return 0


# the learned baselines on the command line: their names in LEARNED_BASELINES and the tables
LEARNED_OPTIONS = {"jodie": "JODIE", "rrn": "RRN", "latent-cross": "Latent Cross"}


def _train_learned_baselines(args, seqs, log, chosen: dict, on_epoch=lambda name, rate: None) -> dict:
    """The learned baselines --learned-baselines asks for, each trained as CoSeRNN was (the same
    epochs, update budget, warm-up, patience, batch size, seed, device and --threads; the
    learning rate, or with --learning-rates each its own chosen on validation, recorded in
    ``chosen``), by their table names."""
    from .learned_baselines import train_learned_baseline

    if args.learned_baselines and args.threads:
        torch.set_num_threads(args.threads)
    learned = {}
    for option in dict.fromkeys(args.learned_baselines or []):
        name = LEARNED_OPTIONS[option]

        def fit(rate, name=name):
            model = train_learned_baseline(
                name,
                seqs,
                epochs=args.max_epochs,
                batch_size=args.batch_size,
                learning_rate=rate,
                patience=args.patience,
                seed=args.seed,
                warmup=args.warmup,
                max_updates=args.max_updates,
                device=args.device,
                log=log,
                on_epoch=on_epoch(name, rate),
            )
            return model, model.history

        if args.learning_rates:
            learned[name], _, chosen[name] = choose_learning_rate(args.learning_rates, fit, log, name)
        else:
            learned[name] = fit(args.learning_rate)[0]
    return learned


def cmd_evaluate(args) -> int:
    refuse_overwriting(args.results, "--results", (args.dataset, args.prepared, args.load))
    model, payload = load_checkpoint(args.load, device=args.device)
    seqs, _, item_vectors, _, _ = load_data(
        args,
        payload["item_ids"].numpy(),
        payload["item_vectors"].numpy(),
        model.config.n_devices,
        model.config.n_sources,
    )
    report(model, seqs, item_vectors, args.results, model.config.seed, args.eval_split, args.per_context)
    return 0


def _ablation(text: str) -> str:
    """An ``--ablate`` value, checked (argparse reports a bad name as a usage error)."""
    try:
        return normalise_ablations(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_data_options(p, t, e) -> None:
    """The options of the data every subcommand reads (``prepare`` p, ``train`` t, ``evaluate`` e)."""
    for sub in (p, t, e):
        data = sub.add_mutually_exclusive_group(required=True) if sub is not p else sub
        data.add_argument(
            "--dataset",
            required=sub is p,
            help=f"a listening-log TSV ({', '.join(('user', 'item', 'timestamp', 'skipped', 'device', 'source'))}) "
            f"or one of: {', '.join(LISTENING_BUILTIN)}",
        )
        if sub is not p:
            data.add_argument("--prepared", help="a file written by 'seqrec cosernn prepare' instead of --dataset")
        sub.add_argument(
            "--test-days", type=days, default=None, help="sessions starting in the last N days are the test set"
        )
        sub.add_argument("--valid-days", type=days, default=None, help="the N days before the test set are validation")
        sub.add_argument(
            "--synthetic-users",
            type=whole_number,
            default=None,
            help="users of the synthetic log (default 10000, about 100 sessions each)",
        )
        sub.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic log")
        sub.add_argument(
            "--session-vectors",
            default="float16",
            choices=("float16", "bfloat16", "float32"),
            help="the stored precision of the session vectors s, s+, s- (batches compute in float32)",
        )
        if sub is not e:
            sub.add_argument("--item-vectors", default="word2vec", choices=["word2vec", "planted"])
            sub.add_argument(
                "--word2vec",
                default="cbow",
                choices=WORD2VEC_METHODS,
                help="the word2vec model of the item space: cbow (the paper's) or skipgram",
            )
        if sub is not p:
            sub.add_argument("--device", type=device, default="cpu")
            sub.add_argument(
                "--results", default="cosernn-results.md", help="where the results table is saved ('' = not saved)"
            )
            sub.add_argument(
                "--eval-split",
                choices=tuple(EVAL_SPLITS),
                default="test",
                help="the period the results table is computed on (valid: the validation period, "
                "where settings are chosen)",
            )
            sub.add_argument(
                "--per-context",
                action="store_true",
                help="also the metrics per context (time of day, device), as the paper's Fig. 5",
            )


def _add_model_options(t, d: CoSeRNNConfig) -> None:
    """``train``'s options of the model: the cell, the sizes, the ablations, the variants."""
    t.add_argument("--cell", default=d.cell, choices=list(CELLS), help="; ".join(f"{k}: {v}" for k, v in CELLS.items()))
    t.add_argument(
        "--separate-input-mlps",
        dest="shared_input",
        action="store_false",
        help="one input transformation per pathway (the paper applies the same one to both)",
    )
    t.add_argument(
        "--ablate",
        action="append",
        type=_ablation,
        metavar="NAME[,NAME...]",
        help="remove inputs or parts of the model, as the paper's ablations (section 6.4): "
        + "; ".join(f"{k}: {v}" for k, v in ABLATIONS.items())
        + "; "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in ABLATION_ALIASES.items()),
    )
    t.add_argument(
        "--current-source",
        action="store_true",
        help="give the model the current session's stream source z_t (the paper's hypothetical scenario, "
        "Table 3: part of the session's intent known before recommending)",
    )
    t.add_argument(
        "--all-tracks-pathway",
        action="store_true",
        help="a third recurrent pathway over all of the previous session's tracks beside the played and "
        "skipped ones (the paper's Table 4)",
    )
    t.add_argument("--hidden", type=int, default=d.hidden, help="recurrent layer size (paper: 100-400)")
    t.add_argument("--fc", type=int, default=d.fc, help="fully connected layer size (paper: 200)")


def _add_training_options(t, d: CoSeRNNConfig) -> None:
    """``train``'s options of training: the optimizer, the budget, early stopping, the baselines,
    checkpoints and resuming, threads."""
    t.add_argument("--learning-rate", type=float, default=d.learning_rate)
    t.add_argument(
        "--learning-rates",
        type=float,
        nargs="+",
        metavar="LR",
        help="choose the learning rate on validation from these, for CoSeRNN and each learned baseline "
        "separately (each trained at every rate; the best validation cosine kept; replaces --learning-rate; "
        "--save then holds the chosen model without a state to resume)",
    )
    t.add_argument("--batch-size", type=int, default=d.batch_size, help="users per batch")
    t.add_argument("--max-epochs", type=int, default=d.max_epochs)
    t.add_argument(
        "--max-updates",
        type=int,
        default=d.max_updates,
        help="the budget in Adam updates, whatever the epoch (0 = none; learned baselines get the same)",
    )
    t.add_argument(
        "--warmup",
        type=int,
        default=d.warmup,
        help="linear learning-rate warm-up over the first N updates (0 = none; learned baselines get the same)",
    )
    t.add_argument(
        "--init",
        choices=INITS,
        default=d.init,
        help="the feed-forward layers' initialisation: he (He / Xavier, zero biases) or torch (nn.Linear's "
        "default, the earlier one)",
    )
    t.add_argument("--patience", type=int, default=d.patience, help="early stopping: epochs without validation gain")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument(
        "--max-sessions",
        type=int,
        default=d.max_sessions,
        help="sessions per user the model sees, the most recent (training, validation, evaluation; "
        "0 = all; the paper's reference implementation keeps 400)",
    )
    t.add_argument(
        "--no-length-buckets",
        dest="length_buckets",
        action="store_false",
        help="batches of users in a plain random order instead of users of similar history length together",
    )
    t.add_argument(
        "--context-memory",
        action="store_true",
        help="beyond the paper: also fuse a long-term embedding over earlier sessions of the same context",
    )
    t.add_argument(
        "--pathway-loss",
        type=float,
        default=d.pathway_loss,
        metavar="W",
        help="beyond the paper: add W times the cosine loss of the recurrent pathway's own output u^ to the "
        "objective (default 1: without it the attention settles on the long-term embedding and u^ starves; "
        "0: the paper's objective alone)",
    )
    t.add_argument(
        "--track-loss",
        type=float,
        default=d.track_loss,
        metavar="W",
        help="beyond the paper: add W times a track-ranking loss (softmax over the session's 25 most "
        "recently streamed tracks) to the cosine loss",
    )
    t.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default=d.precision,
        help="the training step's arithmetic: bf16 runs it under torch.autocast (products in bfloat16, "
        "float32 parameters, gate arithmetic and losses)",
    )
    t.add_argument(
        "--learned-baselines",
        nargs="+",
        choices=list(LEARNED_OPTIONS),
        metavar="NAME",
        help=f"also train the paper's learned baselines ({', '.join(LEARNED_OPTIONS)}) with the same "
        "epochs, update budget, warm-up, patience, batch size, learning rate and seed, and add their rows "
        "to the table",
    )
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    add_dist_timeout_option(t)
    add_threads_option(t)
    t.add_argument(
        "--save",
        help="checkpoint written atomically after every epoch: the best model so far "
        "(what 'evaluate --load' uses) and the state to resume training",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in --save as if it had never stopped (same data and settings; "
        "--max-epochs, --max-updates and --patience may change)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_metric_log_options(
        t, "per epoch of every model trained: model, learning rate, updates, train and validation cosine, time"
    )


def add_parser(models) -> None:
    c = models.add_parser("cosernn", help="CoSeRNN").add_subparsers(dest="command", required=True)
    p = c.add_parser("prepare", help="sessions, item vectors and per-user sequences, saved for train/evaluate")
    t = c.add_parser("train", help="train with early stopping, then evaluate on the test period")
    e = c.add_parser("evaluate", help="evaluate a saved model")
    _add_data_options(p, t, e)
    p.add_argument("--seed", type=int, default=0, help="seed of word2vec")
    p.add_argument("--out", required=True, help="the prepared data file to write")
    d = CoSeRNNConfig(n_devices=1, n_sources=1)
    _add_model_options(t, d)
    _add_training_options(t, d)
    e.add_argument("--load", required=True)
    add_stats_parser(c)


def run(args) -> int:
    commands = {"prepare": cmd_prepare, "train": cmd_train, "evaluate": cmd_evaluate, "stats": cmd_stats}
    return commands[args.command](args)
