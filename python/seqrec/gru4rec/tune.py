"""``seqrec gru4rec tune``: hyper-parameter search with Optuna (an optional extra:
``pip install 'seqrec_ext[tune]'``) over a parameter space in the format of the published
GRU4Rec's paropt: JSON objects, one a line, or a JSON list of them::

    {"name": "layers", "dtype": "int", "values": [64, 512], "step": 32}
    {"name": "learning_rate", "dtype": "float", "range": [0.01, 0.25], "step": 0.005}
    {"name": "elu_param", "dtype": "categorical", "values": [0, 0.5, 1]}

``int`` and ``float`` take ``range: [lo, hi]`` (both ends included; the published files write it
as ``values: [lo, hi]``, which is read the same), optionally ``step`` or ``log: true`` (Optuna
takes one or the other); ``categorical`` takes ``values``. A name is a
seqrec option (``batch-size``, ``dropout-p-embed``) or the published name (``batch_size``,
``dropout_p_embed``), each a hyper-parameter of GRU4RecConfig, or ``epochs``; every bound and
value goes through the option's own type, so a space cannot ask for what the command line would
refuse. A categorical with one value fixes that option for every trial (the ready-made spaces
fix the loss that way). ``--space bpr-max`` and ``--space cross-entropy`` are the published
ranges (spaces/*.json).

Each trial is a full training run (GRU4Rec.train_epoch, the fused step for one layer) on the
training data less a validation split carved from its end, scored on that split; the test set
is never looked at. A study kept in a storage (``--storage study.db``: SQLite) resumes: the same
study name runs only the trials still missing, and a trial that an interruption left unfinished
is marked failed and replaced.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Collection, Dict, List, Optional, Tuple

from seqrec_ext.threads import ThreadTuner

from .config import GRU4RecConfig
from .model import GRU4Rec
from .params import convert, find_option, option_name

SPACES_DIR = Path(__file__).resolve().parent / "spaces"
DTYPES = ("int", "float", "categorical")
SPACE_KEYS = ("name", "dtype", "range", "values", "step", "log")
STUDY_ATTR = "seqrec"  # the study's setup, checked when it resumes
STATES = {"COMPLETE": "complete", "FAIL": "failed", "RUNNING": "running", "PRUNED": "pruned", "WAITING": "waiting"}


def import_optuna():
    try:
        import optuna
    except ImportError as err:
        raise SystemExit(
            "seqrec gru4rec tune: the search needs Optuna, an optional extra: "
            "pip install 'seqrec_ext[tune]' (or pip install 'optuna>=3')"
        ) from err
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def ready_made_spaces() -> List[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.json"))


def space_path(spec: str) -> Path:
    """A space file's path: ``spec`` itself, or a ready-made space by its bare name."""
    path = Path(spec)
    if path.is_file():
        return path
    if "/" not in spec and (SPACES_DIR / f"{spec}.json").is_file():
        return SPACES_DIR / f"{spec}.json"
    raise SystemExit(f"--space {spec!r}: neither a file nor a ready-made space ({', '.join(ready_made_spaces())})")


@dataclass(frozen=True)
class SpaceParam:
    """One parameter of a space: ``name`` the option's name (``batch-size``), ``dest`` its
    argparse dest; int/float: ``low``, ``high``, ``step`` or ``log``; categorical: ``values``."""

    name: str
    dest: str
    dtype: str
    line: int
    low: Optional[float] = None
    high: Optional[float] = None
    step: Optional[float] = None
    log: bool = False
    values: Optional[Tuple] = None

    @property
    def fixed(self) -> bool:
        return self.dtype == "categorical" and len(self.values) == 1

    def describe(self) -> dict:
        keys = ("values",) if self.dtype == "categorical" else ("low", "high", "step", "log")
        return {"name": self.name, "dtype": self.dtype, **{k: getattr(self, k) for k in keys}}

    def suggest(self, trial):
        if self.dtype == "categorical":
            return trial.suggest_categorical(self.name, list(self.values))
        if self.dtype == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return self.clean(trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log))

    def clean(self, value):
        """A float's lo + k * step without the binary noise (0.30000000000000004 is 0.3)."""
        return round(value, 12) if self.dtype == "float" else value


def _json_entries(text: str, where: str) -> List[Tuple[int, object]]:
    """(line, value) of each entry: the elements of a JSON list, or one JSON value a line."""
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as err:
        if text.lstrip().startswith("["):
            raise SystemExit(f"{where}:{err.lineno}: JSON syntax error: {err.msg} (column {err.colno})") from None
        whole = None
    if whole is None or not isinstance(whole, list):
        entries = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append((line_no, json.loads(line)))
            except json.JSONDecodeError as err:
                raise SystemExit(f"{where}:{line_no}: JSON syntax error: {err.msg} (column {err.colno})") from None
        return entries
    # a list: find where each element starts, for the messages
    decoder, entries = json.JSONDecoder(), []
    pos = text.index("[") + 1
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            return entries
        value, end = decoder.raw_decode(text, pos)
        entries.append((text.count("\n", 0, pos) + 1, value))
        pos = end


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _within_ranges(dest: str, value) -> None:
    """ValueError when GRU4RecConfig refuses ``value`` for the setting ``dest`` (the others at
    their defaults); settings that are not the model's (--epochs) are their option type's."""
    names = {f.name for f in dataclasses.fields(GRU4RecConfig)}
    if dest == "layer_sizes":
        *layers, hidden = value
        GRU4RecConfig(layers=tuple(layers), hidden=hidden)
    elif dest in names:
        GRU4RecConfig(**{dest: value})


def _param(entry, path: Path, line: int, parser: argparse.ArgumentParser, tunable: Collection[str]) -> SpaceParam:
    where = f"{path}:{line}"
    if not isinstance(entry, dict):
        raise SystemExit(f'{where}: expected an object such as {{"name": ..., "dtype": ...}}, got {json.dumps(entry)}')
    unknown = [k for k in entry if k not in SPACE_KEYS]
    if unknown:
        raise SystemExit(f"{where}: unknown key {unknown[0]!r} (a parameter has {', '.join(SPACE_KEYS)})")
    if "name" not in entry:
        raise SystemExit(f"{where}: missing name")
    name = entry["name"]
    action = find_option(parser, name) if isinstance(name, str) else None
    if action is None or action.dest not in tunable:
        names = sorted({option_name(a) for a in parser._actions if a.dest in tunable and a.option_strings})
        raise SystemExit(f"{where}: unknown parameter name {json.dumps(name)} (tunable: {', '.join(names)})")
    label = option_name(action)
    dtype = entry.get("dtype")
    if dtype not in DTYPES:
        raise SystemExit(f"{where}: {name}: bad dtype {json.dumps(dtype)}: expected one of {', '.join(DTYPES)}")

    def check(value, what):
        """The value as the option would parse it, then within GRU4Rec's own ranges: a space
        cannot ask for what the command line refuses."""
        try:
            _within_ranges(action.dest, convert(action, value))
        except ValueError as err:
            raise SystemExit(f"{where}: {name}: {what} {json.dumps(value)}: {err}") from None

    if dtype == "categorical":
        for key in ("range", "step", "log"):
            if key in entry:
                raise SystemExit(f"{where}: {name}: {key} is for int and float; categorical takes values")
        values = entry.get("values")
        if not isinstance(values, list) or not values:
            raise SystemExit(f"{where}: {name}: missing values: a categorical takes a non-empty list")
        for value in values:
            check(value, "value")
        if len(set(map(json.dumps, values))) < len(values):
            raise SystemExit(f"{where}: {name}: repeated value in {json.dumps(values)}")
        return SpaceParam(label, action.dest, dtype, line, values=tuple(values))
    if "values" in entry and "range" in entry:
        raise SystemExit(f"{where}: {name}: both range and values: a {dtype} parameter takes one range [lo, hi]")
    key = "values" if "values" in entry else "range"  # the published files write an int or float range as values
    bounds = entry.get(key)
    if bounds is None:
        raise SystemExit(f"{where}: {name}: missing range [lo, hi] for dtype {dtype}")
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(map(_number, bounds))):
        raise SystemExit(
            f"{where}: {name}: {key} must be [lo, hi], two numbers, for dtype {dtype}; got {json.dumps(bounds)}"
        )
    low, high = bounds
    if low > high:
        raise SystemExit(f"{where}: {name}: range [{low}, {high}] has lo > hi")
    step, log = entry.get("step"), entry.get("log", False)
    if not isinstance(log, bool):
        raise SystemExit(f"{where}: {name}: log must be true or false, got {json.dumps(log)}")
    if step is not None and (not _number(step) or step <= 0):
        raise SystemExit(f"{where}: {name}: step must be a number > 0, got {json.dumps(step)}")
    if dtype == "int" and not all(isinstance(v, int) for v in (low, high, step if step is not None else 1)):
        raise SystemExit(f"{where}: {name}: an int parameter takes whole numbers for range and step")
    if log and step is not None:
        raise SystemExit(f"{where}: {name}: step and log together (Optuna samples one or the other)")
    if log and low <= 0:
        raise SystemExit(f"{where}: {name}: log needs lo > 0, got {low}")
    check(low, "lo")
    check(high, "hi")
    return SpaceParam(label, action.dest, dtype, line, low=low, high=high, step=step, log=log)


def read_space(spec: str, parser: argparse.ArgumentParser, tunable: Collection[str]) -> Tuple[Path, List[SpaceParam]]:
    """The parameters of a space file (or ready-made space), checked; a bad file is a
    SystemExit naming the file, the line and what is wrong."""
    path = space_path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SystemExit(f"{path}: cannot read the space: {err}") from None
    space: List[SpaceParam] = []
    for line, entry in _json_entries(text, str(path)):
        param = _param(entry, path, line, parser, tunable)
        twin = next((p for p in space if p.dest == param.dest), None)
        if twin is not None:
            raise SystemExit(f"{path}:{line}: {param.name} is already in the space (line {twin.line})")
        space.append(param)
    if not space:
        raise SystemExit(f"{path}: no parameter in the space")
    return path, space


def with_params(base: argparse.Namespace, space: List[SpaceParam], values: Dict[str, object], parser):
    """A copy of ``base`` with the space's values ({name: value}, the fixed ones included)."""
    ns = argparse.Namespace(**vars(base))
    index = {a.dest: a for a in parser._actions if a.option_strings}
    for p in space:
        value = p.values[0] if p.fixed else p.clean(values[p.name])
        setattr(ns, p.dest, convert(index[p.dest], value))
    return ns


def config_params(config: GRU4RecConfig, epochs: int, parser: argparse.ArgumentParser) -> Dict[str, object]:
    """``config`` and ``epochs`` as a params file's {option name: value}."""
    by_dest = {a.dest: a for a in parser._actions if a.option_strings}
    out: Dict[str, object] = {"layers": config.hidden if not config.layers else ",".join(map(str, config.sizes))}
    for f in fields(config):
        if f.name in ("hidden", "layers", "reset_after"):
            continue
        out[option_name(by_dest[f.name])] = getattr(config, f.name)
    if config.reset_after is not None:
        out["reset-after" if config.reset_after else "reset-before"] = True
    out["epochs"] = epochs
    return out


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def open_study(optuna, storage: Optional[str], name: str, setup: dict, seed: int, log: Callable[[str], None]):
    """The study ``name`` in ``storage`` (a SQLite file or a database URL; None: in memory),
    created or resumed. A resumed study must have been run with the same ``setup``; its trials
    that an interruption left running are marked failed."""
    if storage is None:
        store = optuna.storages.InMemoryStorage()
    else:
        url = storage if "://" in storage else f"sqlite:///{Path(storage).resolve()}"
        store = optuna.storages.RDBStorage(url)
    try:
        study_id = store.get_study_id_from_name(name)
    except KeyError:
        study_id = None
    previous = [] if study_id is None else store.get_all_trials(study_id, deepcopy=False)
    TrialState = optuna.trial.TrialState
    for t in previous:
        if t.state in (TrialState.RUNNING, TrialState.WAITING):
            store.set_trial_state_values(
                store.get_trial_id_from_study_id_trial_number(study_id, t.number), TrialState.FAIL
            )
            log(f"trial {t.number} was left unfinished by an interruption: marked failed, a new trial replaces it")
    # a seed that moves on with the trials already run: a resumed search does not repeat its first suggestions
    sampler = optuna.samplers.TPESampler(seed=seed + len(previous))
    study = optuna.create_study(
        storage=store, study_name=name, direction="maximize", sampler=sampler, load_if_exists=True
    )
    expected = json.loads(json.dumps(setup))
    if study_id is None:
        study.set_user_attr(STUDY_ATTR, expected)
    else:
        stored = study.user_attrs.get(STUDY_ATTR)
        if stored != expected:
            differ = sorted(k for k in set(expected) | set(stored or {}) if (stored or {}).get(k) != expected.get(k))
            raise SystemExit(
                f"study {name!r} in {storage} was run with other settings ({', '.join(differ)} differ); "
                "give another --study-name or the same settings"
            )
    return study


def search(
    study,
    space: List[SpaceParam],
    base: argparse.Namespace,
    parser: argparse.ArgumentParser,
    make_config: Callable[[argparse.Namespace], GRU4RecConfig],
    train,
    valid,
    *,
    trials: int,
    metric: str,
    cutoff: int,
    ties: str,
    threads: Optional[int],
    eval_batch_size: int,
    device="cpu",
    log: Callable[[str], None] = print,
    metric_log=None,
    negatives=None,
) -> int:
    """Run the trials still missing for ``trials`` complete ones; returns how many ran.
    ``metric_log`` (seqrec.metric_log.MetricLog): one line per trial (its number, parameters,
    validation value or diverged, seconds, events/s). ``negatives``: sampled ranking on
    validation (GRU4Rec.evaluate)."""
    done = sum(1 for t in study.trials if t.state.name == "COMPLETE")
    remaining = max(trials - done, 0)
    if done:
        log(f"study {study.study_name!r}: {done} of {trials} trials done, {remaining} to run")
    label = f"{metric}@{cutoff}"

    def objective(trial) -> float:
        values = {p.name: p.suggest(trial) for p in space if not p.fixed}
        ns = with_params(base, space, values, parser)
        model = GRU4Rec(train.n_items, make_config(ns), device=device)
        start, cpu_start, events, train_seconds = time.perf_counter(), time.process_time(), 0.0, 0.0
        try:
            for _ in range(ns.epochs):
                stats = model.train_epoch(train, threads=threads)
                events += stats["events_per_s"] * stats["seconds"]
                train_seconds += stats["seconds"]
        except FloatingPointError as err:  # a diverged run scores nothing (and the search moves away)
            trial.set_user_attr("diverged", str(err))
            value = 0.0
        else:
            with evaluation_threads(threads):
                metrics = model.evaluate(
                    valid,
                    batch_size=eval_batch_size,
                    ks=(cutoff,),
                    modes=(ties,),
                    lists=False,
                    negatives=negatives,
                    popularity=train.item_counts(),
                )
            value = metrics.value(metric, cutoff, ties)
        seconds = time.perf_counter() - start
        trial.set_user_attr("seconds", seconds)
        trial.set_user_attr("cpu_seconds", time.process_time() - cpu_start)
        trial.set_user_attr("events_per_s", events / max(train_seconds, 1e-9))
        shown = ", ".join(f"{k}={_format(v)}" for k, v in values.items())
        result = "diverged" if "diverged" in trial.user_attrs else f"{label} {value:.4f}"
        log(
            f"trial {trial.number}: {result} in {seconds:.1f} s "
            f"({trial.user_attrs['events_per_s']:.0f} events/s); {shown}"
        )
        if metric_log is not None:
            metric_log.write(
                trial.number,
                trial=trial.number,
                params=values,
                **{label: None if "diverged" in trial.user_attrs else value},
                seconds=seconds,
                events_per_s=trial.user_attrs["events_per_s"],
            )
        return value

    if remaining:
        study.optimize(objective, n_trials=remaining)
    return remaining


def evaluation_threads(threads: Optional[int]):
    """Evaluation at the training's fixed thread count, where one is given (on a busy machine,
    torch's default count waits for the descheduled threads: 0.2 s became 10 s)."""
    return ThreadTuner(threads) if threads is not None else contextlib.nullcontext()


def best_trial(study):
    """The complete trial of the highest value (the earliest of equals), or None."""
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def trials_table(study, space: List[SpaceParam], metric: str, cutoff: int) -> str:
    """The trials as a Markdown table (the best one marked), in the order they ran."""
    searched = [p.name for p in space if not p.fixed]
    best = getattr(best_trial(study), "number", None)
    head = ["trial", "state", f"{metric}@{cutoff}", "seconds", "events/s"] + searched
    lines = ["| " + " | ".join(head) + " |", "|---:|---|" + "---:|" * (len(head) - 2)]
    for t in study.trials:
        state = "diverged" if "diverged" in t.user_attrs else STATES.get(t.state.name, t.state.name.lower())
        if t.number == best:
            state += " (best)"
        value = f"{t.value:.4f}" if t.state.name == "COMPLETE" else ""
        seconds = f"{t.user_attrs['seconds']:.1f}" if "seconds" in t.user_attrs else ""
        eps = f"{t.user_attrs['events_per_s']:.0f}" if "events_per_s" in t.user_attrs else ""
        params = [_format(t.params[n]) if n in t.params else "" for n in searched]
        lines.append("| " + " | ".join([str(t.number), state, value, seconds, eps] + params) + " |")
    return "\n".join(lines)
