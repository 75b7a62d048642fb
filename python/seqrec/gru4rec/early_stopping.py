"""Validation after every epoch, the best epoch kept, and early stopping.

``seqrec gru4rec train --valid-days N`` (or ``--valid FILE``) evaluates the model on the
validation sessions after every epoch with one metric (``--valid-metric``, e.g. ``mrr@20``,
ties ranked the conservative way unless ``--ties`` says otherwise), keeps a copy of the best
epoch's model -- parameters, Adagrad state and the generator, so that the copy is the model
exactly as it was after that epoch -- and stops after ``--patience`` epochs without a gain.
At the end the best epoch's model is restored; ``--save`` holds it, with the last epoch's
model beside it while they differ, which ``--resume`` continues from (the best so far and the
epochs without a gain kept).

A gain is a strictly larger value: an epoch that ties the best keeps the earlier one.
"""

from __future__ import annotations

import argparse
import math
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from ..metrics import TIE_MODES

MEASURES = ("recall", "mrr", "ndcg")


def valid_metric(text: str) -> tuple:
    """--valid-metric: ``measure@k`` with measure recall, mrr or ndcg and k >= 1 -> (measure, k)."""
    measure, at, k = text.strip().lower().partition("@")
    if measure not in MEASURES or not at or not k.isdigit() or int(k) < 1:
        raise argparse.ArgumentTypeError(f"expected recall@K, mrr@K or ndcg@K with K >= 1 (e.g. mrr@20), got {text!r}")
    return measure, int(k)


def validation_data_key(train, valid) -> str:
    """What identifies a run's training and validation data, so a resumed run can check it is
    given the same: their sizes and a checksum of their items in order."""

    def crc(sessions) -> int:
        return zlib.crc32(sessions.items.numpy().tobytes()) ^ zlib.crc32(sessions.offsets.numpy().tobytes())

    return (
        f"training {train.n_sessions} sessions / {train.n_events} events (crc {crc(train):08x}), "
        f"validation {valid.n_sessions} sessions / {valid.n_events} events (crc {crc(valid):08x})"
    )


def snapshot(model) -> dict:
    """A copy of everything that makes the model what it is after an epoch: its parameters,
    their Adagrad accumulators and momentum buffers, and its generator's state (on the CPU)."""
    return {
        "params": {k: v.detach().cpu().clone() for k, v in model.parameter_tensors().items()},
        "state": {k: (a.cpu().clone(), m.cpu().clone()) for k, (a, m) in model.optimizer_state.items()},
        "generator": model.generator.get_state().clone(),
    }


@torch.no_grad()
def restore(model, copy: dict) -> None:
    """Put a ``snapshot`` back into ``model`` (bit for bit)."""
    for name, tensor in model.parameter_tensors().items():
        tensor.copy_(copy["params"][name])
        acc, mom = model.optimizer_state[name]
        saved_acc, saved_mom = copy["state"][name]
        acc.copy_(saved_acc)
        mom.copy_(saved_mom)
    if copy["generator"].numel() == model.generator.get_state().numel():  # else another kind of device's
        model.generator.set_state(copy["generator"])


@dataclass
class EarlyStopping:
    """The validation record of a run: the metric, the value of every epoch so far, the best
    epoch and its model (a ``snapshot``), and how many epochs since the best."""

    measure: str
    k: int
    ties: str
    patience: Optional[int] = None  # None: never stop early (the best is still kept)
    values: List[float] = field(default_factory=list)  # epoch 1, 2, ...
    best_epoch: int = 0
    best: Optional[dict] = None  # the best epoch's snapshot
    data: Optional[str] = None  # what it validates on and trains on (validation_data_key)

    def __post_init__(self):
        if self.measure not in MEASURES:
            raise ValueError(f"unknown measure {self.measure!r}; expected one of {MEASURES}")
        if self.ties not in TIE_MODES:
            raise ValueError(f"unknown tie mode {self.ties!r}; expected one of {TIE_MODES}")
        if self.k < 1 or (self.patience is not None and self.patience < 1):
            raise ValueError(f"the cut-off ({self.k}) and the patience ({self.patience}) must be >= 1")

    @property
    def label(self) -> str:
        return f"{self.measure}@{self.k}"

    @property
    def best_value(self) -> float:
        return self.values[self.best_epoch - 1] if self.best_epoch else -math.inf

    @property
    def epochs_without_gain(self) -> int:
        return len(self.values) - self.best_epoch

    @property
    def stopped(self) -> bool:
        """The patience is spent: no more epochs."""
        return self.patience is not None and self.best_epoch > 0 and self.epochs_without_gain >= self.patience

    def record(self, model, value: float) -> bool:
        """The value of the epoch just trained (epoch ``len(values) + 1``); keeps a snapshot of the
        model when it is the best so far (a NaN never is). Returns whether it was."""
        self.values.append(float(value))
        if math.isfinite(value) and value > self.best_value:
            self.best_epoch, self.best = len(self.values), snapshot(model)
            return True
        return False

    def evaluate(self, model, valid, batch_size: int, negatives=None, popularity=None) -> Dict[str, float]:
        """Recall, MRR and NDCG at the cut-off on the validation sessions, in the tie mode
        (``negatives``, ``popularity``: sampled ranking, as GRU4Rec.evaluate)."""
        metrics = model.evaluate(
            valid,
            batch_size=batch_size,
            ks=(self.k,),
            modes=(self.ties,),
            lists=False,
            negatives=negatives,
            popularity=popularity,
        )
        return {f"{m}@{self.k}": metrics.value(m, self.k, self.ties) for m in MEASURES}

    def summary(self) -> str:
        epochs = len(self.values)
        if not self.best_epoch:
            return f"validation {self.label}: no epoch gave a finite value"
        why = (
            f"stopped after epoch {epochs}: no gain for {self.patience} epoch{'s' if self.patience > 1 else ''}"
            if self.stopped
            else f"{epochs} epoch{'s' if epochs > 1 else ''} trained"
        )
        return (
            f"best epoch {self.best_epoch} of {epochs} on validation ({self.label} {self.best_value:.4f}, "
            f"{self.ties} ties); {why}; its model is restored"
        )

    def to_payload(self) -> dict:
        """What a checkpoint keeps of it besides the best model (plain values only)."""
        return {
            "measure": self.measure,
            "k": self.k,
            "ties": self.ties,
            "patience": 0 if self.patience is None else self.patience,
            "values": torch.tensor(self.values, dtype=torch.float64),
            "best_epoch": self.best_epoch,
            **({"data": self.data} if self.data is not None else {}),
        }

    @classmethod
    def from_payload(cls, payload: dict, best: Optional[dict]) -> "EarlyStopping":
        values = payload["values"]
        if not isinstance(values, torch.Tensor) or values.dim() != 1:
            raise ValueError("its validation record is damaged")
        record = cls(
            payload["measure"],
            int(payload["k"]),
            payload["ties"],
            int(payload["patience"]) or None,
            [float(v) for v in values.tolist()],
            int(payload["best_epoch"]),
            best,
            payload.get("data"),
        )
        if not 0 <= record.best_epoch <= len(record.values) or (record.best_epoch > 0) != (best is not None):
            raise ValueError("its validation record is damaged")
        return record
