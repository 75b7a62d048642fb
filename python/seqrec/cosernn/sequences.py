"""CoSeRNN's inputs: session embeddings, per-session features, per-user session
sequences padded with masks, and the time-based train / validation / test split.

For session ``t`` of a user (paper, Table 1 and section 5.1.2):

* ``s_t``, ``s_t+``, ``s_t-``: normalised mean of the item vectors of all / played / skipped
  tracks (zero when there are none);
* context ``c_t``: one-hot day of week (7), hour of day (24), device;
* from the previous session: ``s+_{t-1}``, ``s-_{t-1}`` (taken by the model from the sequence),
  its track count ``N_{t-1}`` (divided by the session cap), its stream source (one-hot), and the
  gap ``Delta_t = log(1 + hours since it started)``; plus a flag "has a previous session".

Times are seconds since the Unix epoch, read as UTC, unless the sessions state their day of
week and hour themselves (Instacart).
"""

from __future__ import annotations

import itertools
import os
import pickle
from dataclasses import dataclass, fields
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from .listening import ListeningSessions

TRAIN, VALID, TEST, PAD = 0, 1, 2, -1


def _normalised_mean(vectors: np.ndarray, items: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(S, d)``: normalised mean of ``vectors[items]`` over ``mask`` per session, zero if empty."""
    gathered = vectors[np.where(mask, items, 0)] * mask[..., None]
    total = gathered.sum(axis=1)
    norms = np.linalg.norm(total, axis=1, keepdims=True)
    return np.divide(total, norms, out=np.zeros_like(total), where=norms > 0).astype(np.float32)


def session_embeddings(items: np.ndarray, skipped: np.ndarray, vectors: np.ndarray):
    """``s``, ``s+``, ``s-`` of sessions given as padded dense item ids (``-1`` = padding)."""
    real = (items >= 0) & (np.linalg.norm(vectors, axis=1)[np.maximum(items, 0)] > 0)
    return (
        _normalised_mean(vectors, items, real),
        _normalised_mean(vectors, items, real & ~skipped),
        _normalised_mean(vectors, items, real & skipped),
    )


@dataclass
class UserSequences:
    """Per-user session sequences, padded to the longest: tensors ``(U, T, ...)``."""

    users: np.ndarray  # (U,) original user ids
    lengths: Tensor  # (U,) int64, real sessions per user
    s_all: Tensor  # (U, T, d) float32
    s_pos: Tensor  # (U, T, d)
    s_neg: Tensor  # (U, T, d)
    features: Tensor  # (U, T, F) float32: context and previous-session features, without s+- of t-1
    context: Tensor  # (U, T) int64: time of day (4 parts) x device, for the "same context" baselines
    items: Tensor  # (U, T, max_items) int64 dense ids, -1 = padding
    skipped: Tensor  # (U, T, max_items) bool
    starts: Tensor  # (U, T) float64
    split: Tensor  # (U, T) int8: TRAIN / VALID / TEST / PAD

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def mask(self) -> Tensor:
        return self.split != PAD

    @property
    def has_pos(self) -> Tensor:
        """Sessions with at least one played track: the only ones with a target ``s+``."""
        return self.s_pos.abs().sum(-1) > 0

    def select(self, index: Tensor) -> "UserSequences":
        """The users ``index`` (a 1-D index tensor), padded to their own longest sequence."""
        index = torch.as_tensor(index, dtype=torch.int64)
        T = max(int(self.lengths[index].max()), 1) if len(index) else 1
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "users":
                out[f.name] = value[index.numpy()]
            elif f.name == "lengths":
                out[f.name] = value[index]
            else:
                out[f.name] = value[index, :T]
        return UserSequences(**out)

    def batch_indices(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Tensor]:
        """The users of each batch (index tensors): in a seeded random order when ``generator``
        is given, else in order."""
        order = (
            torch.randperm(self.n_users, generator=generator) if generator is not None else torch.arange(self.n_users)
        )
        for i in range(0, self.n_users, batch_size):
            yield order[i : i + batch_size]

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator["UserSequences"]:
        """``select`` of each of ``batch_indices``."""
        for index in self.batch_indices(batch_size, generator):
            yield self.select(index)


def build_user_sequences(
    sessions: ListeningSessions,
    item_vectors: np.ndarray,
    item_ids: np.ndarray,
    *,
    n_devices: int,
    n_sources: int,
    test_days: float,
    valid_days: float,
    source: str = "listening log",
) -> UserSequences:
    """Sessions -> padded per-user sequences. ``item_vectors[k]`` is the vector of item
    ``item_ids[k]`` (sorted original ids); streams of other items are dropped. The test set is
    the sessions starting in the last ``test_days`` of the log, validation the ``valid_days``
    before them, training everything earlier."""
    dense = np.searchsorted(item_ids, np.maximum(sessions.items, 0))
    dense = np.minimum(dense, len(item_ids) - 1)
    known = (sessions.items >= 0) & (item_ids[dense] == sessions.items)
    items = np.where(known, dense, -1)
    skipped = sessions.skipped & known
    # compact: known streams first, keeping their order
    order = np.argsort(~known, axis=1, kind="stable")
    items, skipped = np.take_along_axis(items, order, 1), np.take_along_axis(skipped, order, 1)
    keep = (items >= 0).any(axis=1)
    if not keep.any():
        raise ValueError(f"{source}: no session has a track with an item vector")
    users, starts = sessions.users[keep], sessions.starts[keep]
    items, skipped = items[keep], skipped[keep]
    devices, sources = sessions.devices[keep], sessions.sources[keep]
    if devices.max() >= n_devices or sources.max() >= n_sources:
        raise ValueError(f"{source}: device/source ids must be < n_devices={n_devices} / n_sources={n_sources}")
    s_all, s_pos, s_neg = session_embeddings(items, skipped, item_vectors)

    S, cap = items.shape
    first = np.r_[True, users[1:] != users[:-1]]
    prev = np.arange(S) - 1
    if sessions.hours is not None:
        hour = sessions.hours[keep].astype(np.int64)
    else:
        hour = (starts // 3600).astype(np.int64) % 24
    if sessions.days_of_week is not None:
        dow = sessions.days_of_week[keep].astype(np.int64)
    else:
        dow = ((starts // 86400).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    if hour.min() < 0 or hour.max() >= 24 or dow.min() < 0 or dow.max() >= 7:
        raise ValueError(f"{source}: hours must lie in [0, 24) and days of week in [0, 7)")
    n_prev = np.where(first, 0.0, (items[prev] >= 0).sum(1) / cap)
    gap = np.where(first, 0.0, np.log1p(np.maximum(starts - starts[prev], 0.0) / 3600.0))
    prev_source = np.where(first, -1, sources[prev])
    feats = [
        np.eye(7)[dow],
        np.eye(24)[hour],
        np.eye(n_devices)[devices],
        n_prev[:, None],
        np.where(first[:, None], 0.0, np.eye(n_sources)[np.maximum(prev_source, 0)]),
        gap[:, None],
        (~first)[:, None].astype(np.float64),
    ]
    features = np.concatenate(feats, axis=1).astype(np.float32)
    context = (hour // 6) * n_devices + devices

    test_cut = starts.max() - test_days * 86400.0
    valid_cut = test_cut - valid_days * 86400.0
    split = np.where(starts > test_cut, TEST, np.where(starts > valid_cut, VALID, TRAIN)).astype(np.int8)

    offsets = np.r_[np.flatnonzero(first), S]
    lengths = np.diff(offsets)
    U, T = len(lengths), int(lengths.max())
    row = np.repeat(np.arange(U), lengths)
    col = np.arange(S) - offsets[row]

    def pad(a, fill, dtype):
        out = np.full((U, T) + a.shape[1:], fill, dtype=dtype)
        out[row, col] = a
        return torch.from_numpy(out)

    return UserSequences(
        users=users[offsets[:-1]],
        lengths=torch.from_numpy(lengths.astype(np.int64)),
        s_all=pad(s_all, 0, np.float32),
        s_pos=pad(s_pos, 0, np.float32),
        s_neg=pad(s_neg, 0, np.float32),
        features=pad(features, 0, np.float32),
        context=pad(context, -1, np.int64),
        items=pad(items, -1, np.int64),
        skipped=pad(skipped, False, bool),
        starts=pad(starts, 0, np.float64),
        split=pad(split, PAD, np.int8),
    )


def feature_size(n_devices: int, n_sources: int) -> int:
    return 7 + 24 + n_devices + 1 + n_sources + 1 + 1


PREPARED_FORMAT = "seqrec-cosernn-prepared/1"


def save_prepared(path: str, seqs: UserSequences, **meta) -> None:
    """The per-user sequences and ``meta`` (tensors, numbers, strings) in one file, written to a
    temporary file and renamed over ``path``; loadable with ``torch.load(weights_only=True)``."""
    tensors = {f.name: getattr(seqs, f.name) for f in fields(seqs)}
    tensors["users"] = torch.from_numpy(np.asarray(seqs.users, dtype=np.int64))
    tmp = f"{path}.tmp"
    torch.save({"format": PREPARED_FORMAT, "sequences": tensors, **meta}, tmp)
    os.replace(tmp, path)


def load_prepared(path: str) -> tuple[UserSequences, dict]:
    """(sequences, meta) as written by `save_prepared`."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        reason = str(e).split("\n", 1)[0]
        raise ValueError(f"{path}: not a prepared CoSeRNN data file ({type(e).__name__}: {reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != PREPARED_FORMAT:
        raise ValueError(f"{path}: not a prepared CoSeRNN data file (seqrec cosernn prepare writes them)")
    tensors = dict(payload.pop("sequences"))
    tensors["users"] = tensors["users"].numpy()
    return UserSequences(**tensors), payload


# the candidate list lengths of the track-ranking task (evaluation; the training loss uses the first)
TRACK_KS = (25, 100)


def recent_tracks(seqs: UserSequences, sessions: Tensor, k: int) -> Tensor:
    """``(N, k)``: for each session of the ``(U, T)`` bool mask ``sessions`` (row-major order, as
    ``sessions.nonzero()``), the ``k`` distinct tracks its user streamed most recently before it
    (skipped ones too), most recent first, -1 padding."""
    items_np, want = seqs.items.numpy(), sessions.numpy()
    out = np.full((int(want.sum()), k), -1, dtype=np.int64)
    row = 0
    for u in np.flatnonzero(want.any(1)):
        order: dict = {}  # tracks in the order last streamed: re-inserting moves one to the end
        for t in range(int(np.flatnonzero(want[u])[-1]) + 1):  # padding streams nothing
            if want[u, t]:
                recent = list(itertools.islice(reversed(order), k))
                out[row, : len(recent)] = recent
                row += 1
            for item in items_np[u, t][items_np[u, t] >= 0].tolist():
                order.pop(item, None)
                order[item] = None
    return torch.from_numpy(out)
