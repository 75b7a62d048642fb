"""CoSeRNN's training: Adam on the training sessions, early stopping on the validation mean
cosine, checkpoints (atomic and durable) that hold the best model and the state to resume a
run exactly, and the thread count picked by timing the steps."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Optional, Union

import torch
import torch.distributed as dist
from torch import Tensor

from seqrec_ext.threads import ThreadTuner

from ..checkpoints import load_checked, save_atomically
from .model import CoSeRNN, CoSeRNNConfig, mean_cosine, training_candidates, training_objective
from .sequences import FEATURE_LAYOUT, VALID, SessionSequences, UserSequences

# settings whose default changed: a checkpoint saved before they existed had these values
LEGACY_SETTINGS = {
    "shared_input": False,
    "max_sessions": 0,
    "length_buckets": False,
    "init": "torch",
    "warmup": 0,
    "max_updates": 0,
    "pathway_loss": 0.0,
}


def _saved_config(payload: dict) -> dict:
    """The checkpoint's settings, with the values of the time for those it predates."""
    return {**LEGACY_SETTINGS, **payload["config"]}


def save_checkpoint(path: str, config: CoSeRNNConfig, state: dict, **extra) -> None:
    """Atomically and durably (seqrec.checkpoints). ``state``: the model's weights
    (``load_checkpoint`` rebuilds the model from them and ``config``). The checkpoint records
    the feature layout it was trained on (``features``, the prepared data's format)."""
    payload = {"config": asdict(config), "state": state, "features": FEATURE_LAYOUT, **extra}
    save_atomically(payload, path, kind="seqrec.cosernn")


def _check_features(path: str, payload: dict) -> None:
    if payload.get("features") != FEATURE_LAYOUT:
        raise ValueError(
            f"{path} was trained on the features of an older version (the previous session's track "
            "count after the 10-track cap, the gap from its start); train it again"
        )


def _read(path: str, device="cpu") -> dict:
    """The checkpoint's payload, checked (seqrec.checkpoints.load_checked) and of this version's
    features, with a settings dict and a weights dict."""
    payload = load_checked(path, "seqrec.cosernn", map_location=device)
    _check_features(path, payload)
    if not isinstance(payload.get("config"), dict) or not isinstance(payload.get("state"), dict):
        raise ValueError(f"{path}: a damaged CoSeRNN checkpoint: its settings or weights are missing")
    return payload


def load_checkpoint(path: str, device="cpu") -> tuple[CoSeRNN, dict]:
    """(the model, the payload) of a checkpoint written by ``save_checkpoint``; ValueError
    naming the fault for anything else (unreadable, another kind of file, a changed value,
    settings that are not valid, weights that do not fit the settings)."""
    payload = _read(path, device)
    try:
        model = CoSeRNN(CoSeRNNConfig(**_saved_config(payload))).to(device)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: a damaged CoSeRNN checkpoint: its settings are not valid ({err})") from None
    try:
        model.load_state_dict(payload["state"])
    except RuntimeError as err:
        reason = str(err).strip().split("\n", 1)[-1].strip()[:300]
        raise ValueError(
            f"{path}: a damaged CoSeRNN checkpoint: its weights do not fit its settings ({reason})"
        ) from None
    return model, payload


# what a resumed run may change: how long it trains, not what it trains
RESUMABLE_CHANGES = ("max_epochs", "patience", "max_updates")


def load_training_state(path: str, config: CoSeRNNConfig, checkpoint_extra: Optional[dict] = None) -> dict:
    """The checkpoint ``path`` of a run that ``train(..., resume=True)`` can continue with
    ``config``; ValueError saying why not otherwise."""
    payload = _read(path)
    if "training" not in payload:
        raise ValueError(f"{path} holds no training state to resume (only a model)")
    saved = _saved_config(payload)
    defaults = {f.name: f.default for f in fields(CoSeRNNConfig)}  # settings added after the run was saved
    changed = [k for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES and saved.get(k, defaults[k]) != v]
    if changed:
        raise ValueError(
            f"{path} was trained with other settings: "
            + ", ".join(f"{k} {saved.get(k, defaults[k])!r} (now {getattr(config, k)!r})" for k in changed)
        )
    for key, value in (checkpoint_extra or {}).items():
        if isinstance(value, Tensor) and not (
            key in payload and payload[key].shape == value.shape and torch.equal(payload[key], value)
        ):
            raise ValueError(f"{path} was trained on other data ({key} differs)")
    return payload


def warmed_up(learning_rate: float, warmup: int, updates_done: int) -> float:
    """The learning rate of the next Adam update after ``updates_done``: rising linearly from
    ``learning_rate / warmup`` to ``learning_rate`` over the first ``warmup`` updates."""
    return learning_rate * min(1.0, (updates_done + 1) / warmup) if warmup > 0 else learning_rate


def best_validation(history: list) -> float:
    """The best validation cosine of a run's per-epoch history (-inf for none; a non-finite
    epoch counts as -inf)."""
    return max((h["valid_cosine"] for h in history if math.isfinite(h["valid_cosine"])), default=-math.inf)


def choose_learning_rate(rates, fit: Callable[[float], tuple], log: Callable[[str], None] = print, name: str = ""):
    """Train with each of ``rates`` (``fit(rate)`` -> (model, per-epoch history)) and keep the run
    with the best validation cosine (the first rate on a tie). A rate whose training diverges
    (FloatingPointError) is logged and left out; FloatingPointError only when every rate
    diverged. Returns (model, history, rate)."""
    if not rates:
        raise ValueError("choose_learning_rate needs at least one rate")
    best, failures = None, []
    for rate in rates:
        try:
            model, history = fit(rate)
        except FloatingPointError as err:
            log(f"{name} learning rate {rate:g}: diverged ({err})")
            failures.append(f"{rate:g}: {err}")
            continue
        score = best_validation(history)
        log(f"{name} learning rate {rate:g}: best validation cosine {score:.4f}")
        if best is None or score > best[0]:
            best = (score, model, history, rate)
    if best is None:
        raise FloatingPointError(f"{name}: every learning rate diverged ({'; '.join(failures)})")
    return best[1], best[2], best[3]


class _Embed(torch.nn.Module):
    """``model.embed`` as a forward, for DistributedDataParallel (which synchronises the
    gradients of what its forward computed)."""

    def __init__(self, model: CoSeRNN):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.embed(batch, with_u_hat=True)


def _my_batches(seqs, batch_size: int, generator, buckets: bool = False) -> list:
    """This process's batches of the epoch: every world-th of the shared random order (the same
    generator everywhere), as many in every process (DistributedDataParallel's collectives pair
    one backward with one backward), so at most world - 1 batches of an epoch are left out."""
    batches = list(seqs.batch_indices(batch_size, generator, buckets))
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return batches
    world, rank = dist.get_world_size(), dist.get_rank()
    return batches[rank : len(batches) // world * world : world]


def _train_epoch(
    model,
    optimizer,
    seqs,
    config: CoSeRNNConfig,
    generator,
    candidates: bool,
    item_vectors,
    epoch: int,
    tuner: ThreadTuner,
    progress,
    run: "_RunState",
    embed=None,
) -> tuple[float, int]:
    """One epoch of Adam steps over the training users: (the summed cosine loss, sessions).
    ``embed``: the model's embedding as a module (DistributedDataParallel's wrapper). Counts
    the updates in ``run.updates``, sets each update's warmed-up learning rate and stops at
    ``config.max_updates``."""
    total, count = 0.0, 0
    device_type = next(model.parameters()).device.type
    embed = embed or (lambda batch: model.embed(batch, with_u_hat=True))
    for index in _my_batches(seqs, config.batch_size, generator, config.length_buckets):
        if run.out_of_updates(config):
            break
        batch = seqs.select(index)
        # the track loss's candidates: a batch holds its users' whole (capped) histories
        rows = training_candidates(batch) if candidates else None
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            u, u_hat = embed(batch)
            objective, loss, n = training_objective(
                u, batch, config.track_loss, rows, item_vectors, config.pathway_loss, u_hat
            )
        if n == 0:
            continue
        value = float(loss.detach())
        if not (math.isfinite(value) and math.isfinite(float(objective.detach()))):
            raise FloatingPointError(f"non-finite training loss at epoch {epoch}")
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        for group in optimizer.param_groups:
            group["lr"] = warmed_up(config.learning_rate, config.warmup, run.updates)
        optimizer.step()
        run.updates += 1
        total, count = total + value, count + n
        if progress is not None:
            progress(batch.n_users, 1.0 - value / n)
        tuner.step(batch.n_users)
    return total, count


@dataclass
class _RunState:
    """Where a training run stands: the best validation cosine so far, its epoch and weights, the
    epochs since it last improved (``stale``), the per-epoch history, the epochs done."""

    best_state: dict
    best: float = -math.inf
    best_epoch: int = 0
    stale: int = 0
    history: list = field(default_factory=list)
    done: int = 0
    updates: int = 0  # Adam updates so far

    def out_of_updates(self, config: CoSeRNNConfig) -> bool:
        return 0 < config.max_updates <= self.updates

    @classmethod
    def resume(cls, save, config, checkpoint_extra, model, optimizer, generator, log) -> "_RunState":
        """The state saved in ``save``; the model, optimizer and generator are set from it."""
        payload = load_training_state(save, config, checkpoint_extra)
        training = payload["training"]
        model.load_state_dict(training["model"])
        optimizer.load_state_dict(training["optimizer"])
        generator.set_state(training["generator"])
        run = cls(payload["state"], payload["valid_cosine"], payload["epoch"], training["stale"])
        run.history, run.done = list(training["history"]), training["epoch"]
        run.updates = int(training.get("updates", 0))
        log(f"resumed after epoch {run.done} (best validation cosine {run.best:.4f} at epoch {run.best_epoch})")
        return run

    def record(self, epoch, train_cos, valid_cos, seconds, model, patience, log) -> None:
        """An epoch's result: the history, the log line, the best model, early stopping."""
        self.done = epoch
        self.history.append(
            {
                "epoch": epoch,
                "updates": self.updates,
                "train_cosine": train_cos,
                "valid_cosine": valid_cos,
                "seconds": seconds,
            }
        )
        log(
            f"epoch {epoch} ({self.updates} updates): train cosine {train_cos:.4f}, "
            f"validation cosine {valid_cos:.4f} ({seconds:.1f} s)"
        )
        if valid_cos > self.best:
            self.best, self.best_epoch, self.best_state, self.stale = (
                valid_cos,
                epoch,
                copy.deepcopy(model.state_dict()),
                0,
            )
        else:
            self.stale += 1
            if self.stale >= patience:
                log(f"early stop: no validation gain for {self.stale} epochs; best {self.best:.4f}")

    def training_state(self, model, optimizer, generator) -> dict:
        """What a checkpoint holds to continue the run exactly (the last epoch's weights, not the best)."""
        return {
            "epoch": self.done,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "stale": self.stale,
            "history": self.history,
            "updates": self.updates,
        }


def train(
    seqs: Union[UserSequences, SessionSequences],
    config: CoSeRNNConfig,
    *,
    device="cpu",
    save: Optional[str] = None,
    checkpoint_extra: Optional[dict] = None,
    compile: bool = False,
    resume: bool = False,
    item_vectors: Optional[Tensor] = None,
    progress: Optional[Callable[[int, float], None]] = None,
    log: Callable[[str], None] = print,
    threads: Optional[int] = None,
    on_epoch: Optional[Callable[[dict], None]] = None,
) -> tuple[CoSeRNN, list[dict]]:
    """Adam on the training sessions, early stopping on the validation mean cosine (patience
    ``config.patience`` epochs); returns the best model and the per-epoch history. With
    ``save``, a checkpoint is written atomically after every epoch: the best model so far (what
    ``load_checkpoint`` loads), ``checkpoint_extra``, and the training state (the last epoch's
    weights, Adam's moments, the batch-order generator, the early-stopping counters).
    ``resume``: continue the run saved in ``save`` exactly as if it had never stopped (only
    ``max_epochs`` and ``patience`` may differ; tensors in ``checkpoint_extra`` must match).
    ``compile``: run the model under torch.compile. ``item_vectors`` (the item space, dense
    ids): needed with ``config.track_loss``, which adds ``track_loss`` times the mean
    ``track_ranking_loss`` of the batch's sessions to its mean cosine loss. ``threads``: the
    intra-op thread count, or None to let a :class:`seqrec_ext.threads.ThreadTuner` pick it by
    timing the steps. ``seqs``: flat ``SessionSequences`` or padded ``UserSequences``; each
    user's last ``config.max_sessions`` sessions are used (training and validation), in batches
    of users of similar history length with ``config.length_buckets``. ``on_epoch``: called
    with each epoch's history entry (epoch, updates, train and validation cosine, seconds)."""
    if resume and not save:
        raise ValueError("resume needs save: the checkpoint of the run to continue")
    if config.precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {config.precision!r}")
    if not (math.isfinite(config.track_loss) and config.track_loss >= 0):
        raise ValueError(f"track_loss must be a finite weight >= 0, got {config.track_loss}")
    candidates = config.track_loss > 0
    if candidates:
        if item_vectors is None:
            raise ValueError("a track_loss needs the item vectors")
        item_vectors = torch.as_tensor(item_vectors).to(device)
    seqs = seqs.most_recent(config.max_sessions)
    torch.manual_seed(config.seed)
    model = CoSeRNN(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    run = _RunState(best_state=copy.deepcopy(model.state_dict()))
    if resume:
        run = _RunState.resume(save, config, checkpoint_extra, model, optimizer, generator, log)
    if compile:
        model.compile(dynamic=True)
    embed = None
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        # data-parallel over users: every process's gradients averaged before each Adam step, so
        # the replicas stay equal, and every process validates on all the validation users
        embed = torch.nn.parallel.DistributedDataParallel(_Embed(model))
    has_valid = bool(((seqs.split == VALID) & seqs.has_pos).any())
    if run.stale >= config.patience:
        log(f"already stopped early: no validation gain for {run.stale} epochs; best {run.best:.4f}")
    elif run.done >= config.max_epochs:
        log(f"already trained {run.done} epochs (--max-epochs {config.max_epochs}); raise it to train on")
    elif run.out_of_updates(config):
        log(f"already trained {run.updates} updates (--max-updates {config.max_updates}); raise it to train on")
    for epoch in range(run.done + 1, config.max_epochs + 1):
        if run.stale >= config.patience or run.out_of_updates(config):
            break
        model.train()
        start = time.perf_counter()
        with ThreadTuner(threads) as tuner:
            total, count = _train_epoch(
                model, optimizer, seqs, config, generator, candidates, item_vectors, epoch, tuner, progress, run, embed
            )
        if embed is not None:  # the training cosine over every process's sessions
            sums = torch.tensor([total, float(count)], dtype=torch.float64)
            dist.all_reduce(sums)
            total, count = sums[0].item(), int(sums[1])
        train_cos = 1.0 - total / max(count, 1)
        valid_cos = mean_cosine(model, seqs, VALID) if has_valid else train_cos
        run.record(epoch, train_cos, valid_cos, time.perf_counter() - start, model, config.patience, log)
        if on_epoch is not None and (embed is None or dist.get_rank() == 0):
            on_epoch(run.history[-1])
        if save and (embed is None or dist.get_rank() == 0):  # rank 0 alone writes
            save_checkpoint(
                save,
                config,
                run.best_state,
                epoch=run.best_epoch,
                valid_cosine=run.best,
                training=run.training_state(model, optimizer, generator),
                **(checkpoint_extra or {}),
            )
    model.load_state_dict(run.best_state)
    return model, run.history
