"""CoSeRNN's inputs: session embeddings, per-session features, per-user session
sequences, and the time-based train / validation / test split.

A data set is held flat (``SessionSequences``, ``build_session_sequences``): one row per session,
users' rows contiguous (``offsets``), in compact columns (session vectors in float16 by default,
item ids int32, the context fields as small ints; the float32 features computed per batch).
Batches are padded ``UserSequences`` (``select``: the batch's users padded to their own
longest history), drawn in length buckets (``batch_order``); ``most_recent`` caps the
sessions per user. ``build_user_sequences`` gives a small data set padded whole, as before.

For session ``t`` of a user (Hansen et al., RecSys 2020, Table 1 and section 5.1.2):

* ``s_t``, ``s_t+``, ``s_t-``: normalised mean of the item vectors of all / played / skipped
  tracks (zero when there are none);
* context ``c_t``: one-hot day of week (7), hour of day (24), device;
* from the previous session: ``s+_{t-1}``, ``s-_{t-1}`` (taken by the model from the sequence),
  its track count ``N_{t-1}`` as ``log(1 + N_{t-1})`` (all its streams, counted before the cap of
  10 tracks), its stream source (one-hot), and the gap ``Delta_t = log(1 + hours)`` from the
  previous session's end (its last stream) to this session's start; plus a flag "has a previous
  session". ``feature_groups`` names the columns.

The "same context" of the baselines and of the per-context breakdown is the time of day in the
paper's six parts (section 4.1, ``time_of_day``) x device.

Times are seconds since the Unix epoch, read as UTC, unless the sessions state their day of
week and hour themselves (Instacart).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from ..checkpoints import load_checked, save_atomically
from .listening import ListeningSessions

TRAIN, VALID, TEST, PAD = 0, 1, 2, -1

# the paper's time-of-day contexts (section 4.1): early morning 6-9am, morning 9am-12pm,
# afternoon 12-5pm, evening 5-8pm, late evening 9pm-1am, night 1-6am. The ranges leave 8-9pm
# unnamed; read by the hour a session starts in, the evening runs through the 8pm hour (17:00 to
# 20:59), so that the six start times the paper gives partition the day.
TIME_OF_DAY_NAMES = ("early morning", "morning", "afternoon", "evening", "late evening", "night")
_HOUR_TO_TIME_OF_DAY = np.array([4] + [5] * 5 + [0] * 3 + [1] * 3 + [2] * 5 + [3] * 4 + [4] * 3, dtype=np.int64)


def time_of_day(hours) -> np.ndarray:
    """The paper's six time-of-day contexts (indices into ``TIME_OF_DAY_NAMES``) of hours in [0, 24)."""
    return _HOUR_TO_TIME_OF_DAY[np.asarray(hours, dtype=np.int64)]


def context_ids(hours, devices, n_devices: int) -> np.ndarray:
    """The "same context" id: ``time_of_day(hour) * n_devices + device``."""
    return time_of_day(hours) * n_devices + np.asarray(devices, dtype=np.int64)


def split_context(context, n_devices: int):
    """(time-of-day index, device) of context ids from ``context_ids``."""
    return context // n_devices, context % n_devices


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
    """Per-user session sequences, padded to the longest: tensors ``(U, T, ...)``. What a batch
    is (``SessionSequences.select``), and a data set small enough to hold padded
    (``build_user_sequences``)."""

    users: np.ndarray  # (U,) original user ids
    lengths: Tensor  # (U,) int64, real sessions per user
    s_all: Tensor  # (U, T, d) float32
    s_pos: Tensor  # (U, T, d)
    s_neg: Tensor  # (U, T, d)
    features: Tensor  # (U, T, F) float32: context and previous-session features, without s+- of t-1
    context: Tensor  # (U, T) int64: time of day (6 parts) x device (``context_ids``), -1 on padding
    source: Tensor  # (U, T) int64: the session's own stream source z_t, -1 on padding
    items: Tensor  # (U, T, max_items) int64 dense ids, -1 = padding
    skipped: Tensor  # (U, T, max_items) bool
    starts: Tensor  # (U, T) float64
    split: Tensor  # (U, T) int8: TRAIN / VALID / TEST / PAD

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_features(self) -> int:
        return self.features.shape[-1]

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

    def batch_indices(
        self, batch_size: int, generator: torch.Generator | None = None, buckets: bool = False
    ) -> Iterator[Tensor]:
        """The users of each batch (index tensors), see ``batch_order``."""
        return batch_order(self.lengths, batch_size, generator, buckets)

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None, buckets: bool = False
    ) -> Iterator["UserSequences"]:
        """``select`` of each of ``batch_indices``."""
        for index in self.batch_indices(batch_size, generator, buckets):
            yield self.select(index)

    def gather(self, values: Tensor, index: Tensor, fill=0) -> Tensor:
        """A per-session array of this layout (``(U, T, ...)``) for the batch ``select(index)``."""
        index = torch.as_tensor(index, dtype=torch.int64)
        T = max(int(self.lengths[index].max()), 1) if len(index) else 1
        return values[index, :T]

    def session_ids(self, index: Tensor) -> Tensor:
        """``(B, T_b)``: the sessions of ``select(index)`` as flat indices ``user * T + t`` into
        this ``(U, T)`` grid, -1 on padding."""
        index = torch.as_tensor(index, dtype=torch.int64)
        lengths = self.lengths[index]
        T = max(int(lengths.max()), 1) if len(index) else 1
        t = torch.arange(T)
        ids = index[:, None] * self.split.shape[1] + t[None, :]
        return ids.masked_fill(t[None, :] >= lengths[:, None], -1)

    def empty_like_sessions(self, *shape, dtype=torch.float32, fill=0) -> Tensor:
        """A per-session array of this layout: ``(U, T, *shape)`` filled with ``fill``."""
        return torch.full((*self.split.shape, *shape), fill, dtype=dtype)

    def most_recent(self, max_sessions: int) -> "UserSequences":
        """Each user's last ``max_sessions`` sessions (all when ``max_sessions <= 0`` or no user
        has more), left-aligned; the kept sessions keep their features (the previous session's
        count, gap and source still describe the session before them)."""
        if max_sessions <= 0 or int(self.lengths.max()) <= max_sessions:
            return self
        lengths = self.lengths.clamp(max=max_sessions)
        shift = (self.lengths - lengths)[:, None]
        cols = torch.arange(max_sessions)[None, :] + shift
        rows = torch.arange(self.n_users)[:, None]
        out = {"users": self.users, "lengths": lengths}
        for f in fields(self):
            if f.name not in out:
                out[f.name] = getattr(self, f.name)[rows, cols]
        return UserSequences(**out)


# users of a length bucket: this many batches' worth, shuffled among themselves
BUCKET_BATCHES = 16


def batch_order(
    lengths: Tensor, batch_size: int, generator: torch.Generator | None = None, buckets: bool = False
) -> Iterator[Tensor]:
    """The users of each batch (index tensors). Without ``buckets``: in a seeded random order
    when ``generator`` is given, else in order. With ``buckets``: users of similar history length
    together -- sorted by length (ties in random order), cut into buckets of ``BUCKET_BATCHES``
    batches, users shuffled within each bucket, then the batches of all buckets shuffled -- every
    draw from ``generator``, so an epoch's order is reproducible by seed; without a generator,
    in order of length (the shortest first)."""
    n = len(lengths)
    if not buckets:
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for i in range(0, n, batch_size):
            yield order[i : i + batch_size]
        return
    lengths = torch.as_tensor(lengths)
    if generator is None:
        order = torch.sort(lengths, stable=True).indices
        for i in range(0, n, batch_size):
            yield order[i : i + batch_size]
        return
    perm = torch.randperm(n, generator=generator)
    order = perm[torch.sort(lengths[perm], stable=True).indices]
    size = batch_size * BUCKET_BATCHES
    shuffled = []
    for i in range(0, n, size):
        bucket = order[i : i + size]
        shuffled.append(bucket[torch.randperm(len(bucket), generator=generator)])
    order = torch.cat(shuffled) if shuffled else order
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    for b in torch.randperm(len(batches), generator=generator).tolist():
        yield batches[b]


def _one_hot(index: Tensor, n: int) -> Tensor:
    return torch.eye(n, dtype=torch.float32)[index.long()]


@dataclass
class SessionSequences:
    """Per-user session sequences stored flat: one row per session, user ``k``'s sessions are
    rows ``offsets[k]:offsets[k + 1]`` in time order. Compact columns: the session vectors in
    ``vector_dtype`` (float16 by default), item ids int32, the context fields and the previous
    session's source as small ints, its count and gap as float32; the float32 ``features`` are
    computed per batch from them (``select``), bit for bit those of ``build_user_sequences``.
    ``select`` / ``batches`` / ``batch_indices`` give padded ``UserSequences`` batches (padded
    to the batch's own longest history). Per-session columns (``split``, ``context``,
    ``has_pos``, ``s_pos`` ...) are ``(S, ...)``."""

    users: np.ndarray  # (U,) original user ids
    offsets: Tensor  # (U + 1,) int64
    s_all: Tensor  # (S, d) vector_dtype
    s_pos: Tensor  # (S, d)
    s_neg: Tensor  # (S, d)
    has_pos: Tensor  # (S,) bool: at least one played track (exact, whatever the vectors' dtype)
    day: Tensor  # (S,) int8, Monday = 0
    hour: Tensor  # (S,) int8
    device: Tensor  # (S,) int8
    last_count: Tensor  # (S,) float32: log(1 + N_{t-1}), 0 at a user's first session
    last_source: Tensor  # (S,) int8: z_{t-1}, -1 at a user's first session
    last_gap: Tensor  # (S,) float32: Delta_t
    has_last: Tensor  # (S,) bool
    context: Tensor  # (S,) int16: ``context_ids``
    source: Tensor  # (S,) int8: the session's own stream source z_t
    items: Tensor  # (S, max_items) int32 dense ids, -1 = padding
    skipped: Tensor  # (S, max_items) bool
    starts: Tensor  # (S,) float64
    split: Tensor  # (S,) int8: TRAIN / VALID / TEST
    n_devices: int
    n_sources: int

    _COLUMNS = (
        "s_all",
        "s_pos",
        "s_neg",
        "has_pos",
        "day",
        "hour",
        "device",
        "last_count",
        "last_source",
        "last_gap",
        "has_last",
        "context",
        "source",
        "items",
        "skipped",
        "starts",
        "split",
    )

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_sessions(self) -> int:
        return len(self.split)

    @property
    def lengths(self) -> Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def mask(self) -> Tensor:
        return torch.ones(self.n_sessions, dtype=torch.bool)

    @property
    def n_features(self) -> int:
        return feature_size(self.n_devices, self.n_sources)

    @property
    def features(self) -> Tensor:
        """``(S, F)`` float32, every session's features at once (for small data; batches compute
        their own)."""
        return self._features(torch.arange(self.n_sessions))

    def nbytes(self) -> int:
        """Bytes held by the per-session and per-user arrays."""
        total = self.users.nbytes + self.offsets.numel() * self.offsets.element_size()
        return total + sum(getattr(self, c).numel() * getattr(self, c).element_size() for c in self._COLUMNS)

    def _features(self, rows: Tensor) -> Tensor:
        source = self.last_source[rows].long()
        parts = [
            _one_hot(self.day[rows], 7),
            _one_hot(self.hour[rows], 24),
            _one_hot(self.device[rows], self.n_devices),
            self.last_count[rows, None],
            _one_hot(source.clamp(min=0), self.n_sources) * (source >= 0)[..., None],
            self.last_gap[rows, None],
            self.has_last[rows, None].float(),
        ]
        return torch.cat(parts, -1)

    def _rows(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(rows (B, T_b), real (B, T_b))``: the flat rows of the batch's sessions (0 on padding)."""
        index = torch.as_tensor(index, dtype=torch.int64)
        lengths = self.lengths[index]
        T = max(int(lengths.max()), 1) if len(index) else 1
        t = torch.arange(T)
        real = t[None, :] < lengths[:, None]
        rows = (self.offsets[index][:, None] + t[None, :]) * real
        return rows, real

    def select(self, index: Tensor) -> UserSequences:
        """The users ``index`` (a 1-D index tensor) as a padded batch, to their own longest."""
        index = torch.as_tensor(index, dtype=torch.int64)
        rows, real = self._rows(index)

        def pad(values, fill, dtype=None):
            out = values[rows]
            if dtype is not None:
                out = out.to(dtype)
            shape = real.shape + (1,) * (out.dim() - 2)
            return out.masked_fill(~real.view(shape), fill)

        return UserSequences(
            users=self.users[index.numpy()],
            lengths=self.lengths[index],
            s_all=pad(self.s_all, 0, torch.float32),
            s_pos=pad(self.s_pos, 0, torch.float32),
            s_neg=pad(self.s_neg, 0, torch.float32),
            features=self._features(rows) * real[..., None],
            context=pad(self.context, -1, torch.int64),
            source=pad(self.source, -1, torch.int64),
            items=pad(self.items, -1, torch.int64),
            skipped=pad(self.skipped, False),
            starts=pad(self.starts, 0.0),
            split=pad(self.split, PAD),
        )

    def padded(self) -> UserSequences:
        """All users as one padded ``UserSequences`` (small data only: ``(U, T_max, ...)``)."""
        return self.select(torch.arange(self.n_users))

    def batch_indices(
        self, batch_size: int, generator: torch.Generator | None = None, buckets: bool = False
    ) -> Iterator[Tensor]:
        """The users of each batch (index tensors), see ``batch_order``."""
        return batch_order(self.lengths, batch_size, generator, buckets)

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None, buckets: bool = False
    ) -> Iterator[UserSequences]:
        for index in self.batch_indices(batch_size, generator, buckets):
            yield self.select(index)

    def gather(self, values: Tensor, index: Tensor, fill=0) -> Tensor:
        """A per-session array of this layout (``(S, ...)``) for the batch ``select(index)``."""
        rows, real = self._rows(index)
        out = values[rows]
        return out.masked_fill(~real.view(real.shape + (1,) * (out.dim() - 2)), fill)

    def session_ids(self, index: Tensor) -> Tensor:
        """``(B, T_b)``: the rows of the sessions of ``select(index)``, -1 on padding."""
        rows, real = self._rows(index)
        return rows.masked_fill(~real, -1)

    def empty_like_sessions(self, *shape, dtype=torch.float32, fill=0) -> Tensor:
        """A per-session array of this layout: ``(S, *shape)`` filled with ``fill``."""
        return torch.full((self.n_sessions, *shape), fill, dtype=dtype)

    def take_rows(self, rows: Tensor, lengths: Tensor, users: np.ndarray) -> "SessionSequences":
        """The sessions ``rows`` (ordered by user, then time) as a new set, ``lengths`` per user."""
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
        columns = {c: getattr(self, c)[rows] for c in self._COLUMNS}
        return SessionSequences(
            users=users, offsets=offsets, n_devices=self.n_devices, n_sources=self.n_sources, **columns
        )

    def subset(self, index: Tensor) -> "SessionSequences":
        """The users ``index`` (in that order), as a new set."""
        index = torch.as_tensor(index, dtype=torch.int64)
        rows, real = self._rows(index)
        return self.take_rows(rows[real], self.lengths[index], self.users[index.numpy()])

    def most_recent(self, max_sessions: int) -> "SessionSequences":
        """Each user's last ``max_sessions`` sessions (all when ``max_sessions <= 0`` or no user
        has more); the kept sessions keep their features (the previous session's count, gap and
        source still describe the session before them)."""
        lengths = self.lengths
        if max_sessions <= 0 or self.n_users == 0 or int(lengths.max()) <= max_sessions:
            return self
        user = torch.repeat_interleave(torch.arange(self.n_users), lengths)
        from_end = self.offsets[1:][user] - torch.arange(self.n_sessions)  # 1 for a user's last
        rows = torch.nonzero(from_end <= max_sessions).flatten()
        return self.take_rows(rows, lengths.clamp(max=max_sessions), self.users)

    @staticmethod
    def concatenate(parts: list["SessionSequences"]) -> "SessionSequences":
        """The users of ``parts`` one after the other (same devices, sources, vector dtype)."""
        first = parts[0]
        if any((p.n_devices, p.n_sources) != (first.n_devices, first.n_sources) for p in parts):
            raise ValueError("SessionSequences.concatenate: the parts have other devices / sources")
        lengths = torch.cat([p.lengths for p in parts])
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
        columns = {c: torch.cat([getattr(p, c) for p in parts]) for c in SessionSequences._COLUMNS}
        return SessionSequences(
            users=np.concatenate([p.users for p in parts]),
            offsets=offsets,
            n_devices=first.n_devices,
            n_sources=first.n_sources,
            **columns,
        )

    def with_split(self, log_end: float, test_days: float, valid_days: float) -> "SessionSequences":
        """The same sessions, split anew at ``log_end - test_days`` / ``- valid_days`` more."""
        out = SessionSequences(**{f.name: getattr(self, f.name) for f in fields(self)})
        out.split = torch.from_numpy(_split(self.starts.numpy(), log_end, test_days, valid_days))
        return out


def _split(starts: np.ndarray, log_end: float, test_days: float, valid_days: float) -> np.ndarray:
    test_cut = log_end - test_days * 86400.0
    valid_cut = test_cut - valid_days * 86400.0
    return np.where(starts > test_cut, TEST, np.where(starts > valid_cut, VALID, TRAIN)).astype(np.int8)


_VECTOR_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build_session_sequences(
    sessions: ListeningSessions,
    item_vectors: np.ndarray,
    item_ids: np.ndarray,
    *,
    n_devices: int,
    n_sources: int,
    test_days: float,
    valid_days: float,
    source: str = "listening log",
    vector_dtype: str = "float16",
    log_end: float | None = None,
) -> SessionSequences:
    """Sessions -> per-user sequences, stored flat (``SessionSequences``). ``item_vectors[k]``
    is the vector of item ``item_ids[k]`` (sorted original ids); streams of other items are
    dropped. The test set is the sessions starting in the last ``test_days`` of the log (it
    ends at ``log_end``, by default the last session's start: give it when the log is built in
    parts), validation the ``valid_days`` before them, training everything earlier. Sessions
    without a track with a vector are left out; the previous session of the next one is then
    the one before them. ``vector_dtype``: of the session vectors s, s+, s- (float16, bfloat16
    or float32)."""
    if vector_dtype not in _VECTOR_DTYPES:
        raise ValueError(f"vector_dtype must be one of {', '.join(_VECTOR_DTYPES)}, got {vector_dtype!r}")
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
    n_streams, ends = sessions.stream_counts()[keep], sessions.end_times()[keep]
    items, skipped = items[keep], skipped[keep]
    devices, sources = sessions.devices[keep], sessions.sources[keep]
    if devices.max() >= n_devices or sources.max() >= n_sources:
        raise ValueError(f"{source}: device/source ids must be < n_devices={n_devices} / n_sources={n_sources}")
    if n_devices * len(TIME_OF_DAY_NAMES) > np.iinfo(np.int16).max or max(n_devices, n_sources) > 127:
        raise ValueError(f"{source}: at most 127 devices and sources")
    s_all, s_pos, s_neg = session_embeddings(items, skipped, item_vectors)
    has_pos = np.abs(s_pos).sum(-1) > 0

    S = len(items)
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
    n_prev = np.where(first, 0.0, np.log1p(n_streams[prev]))
    gap = np.where(first, 0.0, np.log1p(np.maximum(starts - ends[prev], 0.0) / 3600.0))
    prev_source = np.where(first, -1, sources[prev])
    context = context_ids(hour, devices, n_devices)
    split = _split(starts, starts.max() if log_end is None else log_end, test_days, valid_days)
    offsets = np.r_[np.flatnonzero(first), S]
    dtype = _VECTOR_DTYPES[vector_dtype]

    def col(a, dtype):
        return torch.from_numpy(np.ascontiguousarray(a).astype(dtype, copy=False))

    return SessionSequences(
        users=users[offsets[:-1]],
        offsets=torch.from_numpy(offsets.astype(np.int64)),
        s_all=torch.from_numpy(s_all).to(dtype),
        s_pos=torch.from_numpy(s_pos).to(dtype),
        s_neg=torch.from_numpy(s_neg).to(dtype),
        has_pos=torch.from_numpy(has_pos),
        day=col(dow, np.int8),
        hour=col(hour, np.int8),
        device=col(devices, np.int8),
        last_count=col(n_prev, np.float32),
        last_source=col(prev_source, np.int8),
        last_gap=col(gap, np.float32),
        has_last=torch.from_numpy(~first),
        context=col(context, np.int16),
        source=col(sources, np.int8),
        items=col(items, np.int32),
        skipped=torch.from_numpy(np.ascontiguousarray(skipped)),
        starts=col(starts, np.float64),
        split=torch.from_numpy(split),
        n_devices=n_devices,
        n_sources=n_sources,
    )


def build_user_sequences(sessions: ListeningSessions, item_vectors: np.ndarray, item_ids: np.ndarray, **options):
    """``build_session_sequences`` (the same keyword options) with float32 vectors, padded to the
    longest history: the ``UserSequences`` of a small data set (``(U, T, ...)`` tensors)."""
    return build_session_sequences(sessions, item_vectors, item_ids, vector_dtype="float32", **options).padded()


def feature_groups(n_devices: int, n_sources: int) -> dict:
    """The columns of ``UserSequences.features`` by name, in order: ``day`` (7), ``hour`` (24),
    ``device``, ``last-count`` (``log(1 + N_{t-1})``), ``last-source``, ``last-gap``
    (``Delta_t``), ``has-last`` (1 after a user's first session)."""
    sizes = (
        ("day", 7),
        ("hour", 24),
        ("device", n_devices),
        ("last-count", 1),
        ("last-source", n_sources),
        ("last-gap", 1),
        ("has-last", 1),
    )
    out, at = {}, 0
    for name, size in sizes:
        out[name] = slice(at, at + size)
        at += size
    return out


def feature_size(n_devices: int, n_sources: int) -> int:
    return 7 + 24 + n_devices + 1 + n_sources + 1 + 1


# the feature layout models are trained on (checkpoints record it): N_{t-1} before the cap,
# Delta_t from the previous session's end, six times of day
FEATURE_LAYOUT = "seqrec-cosernn-prepared/2"
# 3: the same features, stored flat per session (SessionSequences) in compact columns; 4: and
# each session's own stream source z_t
PREPARED_FORMAT = "seqrec-cosernn-prepared/4"
_OLDER_FORMATS = {
    "seqrec-cosernn-prepared/3": "no column of the sessions' own stream source",
    "seqrec-cosernn-prepared/1": "the previous session's track count after the 10-track cap, the gap from its "
    "start, four times of day",
    "seqrec-cosernn-prepared/2": "per-user sequences padded to the longest history",
}


def save_prepared(path: str, seqs: SessionSequences, **meta) -> None:
    """The sequences (flat, ``SessionSequences``) and ``meta`` (tensors, numbers, strings) in one
    file, written atomically and durably (``seqrec.checkpoints``); loadable with
    ``torch.load(weights_only=True)``."""
    if not isinstance(seqs, SessionSequences):
        raise TypeError("save_prepared stores SessionSequences (build_session_sequences)")
    tensors = {f.name: getattr(seqs, f.name) for f in fields(seqs)}
    tensors["users"] = torch.from_numpy(np.asarray(seqs.users, dtype=np.int64))
    save_atomically({"format": PREPARED_FORMAT, "sequences": tensors, **meta}, path, kind="seqrec.cosernn.prepared")


def load_prepared(path: str) -> tuple[SessionSequences, dict]:
    """(sequences, meta) as written by `save_prepared`."""
    payload = load_checked(path, "seqrec.cosernn.prepared")
    if payload.get("format") in _OLDER_FORMATS:
        raise ValueError(
            f"{path}: prepared by an older version ({payload['format']}: {_OLDER_FORMATS[payload['format']]}); "
            "run 'seqrec cosernn prepare' again"
        )
    if payload.get("format") != PREPARED_FORMAT:
        raise ValueError(f"{path}: not a prepared CoSeRNN data file (seqrec cosernn prepare writes them)")
    payload.pop("kind", None), payload.pop("checksums", None)
    tensors = payload.pop("sequences", None)
    try:
        tensors = dict(tensors)
        tensors["users"] = tensors["users"].numpy()
        return SessionSequences(**tensors), payload
    except (TypeError, KeyError, AttributeError, ValueError) as err:
        raise ValueError(f"{path}: damaged prepared CoSeRNN data: its sequences do not fit ({err})") from None


# the candidate list lengths of the track-ranking task (evaluation; the training loss uses the first)
TRACK_KS = (25, 100)


def recent_tracks(seqs: UserSequences, sessions: Tensor, k: int) -> Tensor:
    """``(N, k)``: for each session of the ``(U, T)`` bool mask ``sessions`` (row-major order, as
    ``sessions.nonzero()``), the ``k`` distinct tracks its user streamed most recently before it
    (skipped ones too), most recent first, -1 padding. ``seqs``: a padded batch. Vectorised over
    the users: one step per session index, each user's list of its ``k`` most recent distinct
    tracks updated with the session's tracks (the later stream of a track the more recent)."""
    items = seqs.items
    want = torch.as_tensor(sessions, dtype=torch.bool)
    n = int(want.sum())
    out = torch.full((n, k), -1, dtype=torch.int64)
    if n == 0 or k == 0:
        return out
    users = want.any(1).nonzero().flatten()
    want, items = want[users], items[users].long()
    U, M = len(users), items.shape[2]
    row_of = (torch.cumsum(want.flatten(), 0) - 1).view(want.shape)
    last = int(want.any(0).nonzero().max())
    state = torch.full((U, k), -1, dtype=torch.int64)
    later = torch.ones(M, M, dtype=torch.bool).tril(-1)  # [j, j']: j' < j
    rows = torch.arange(U)[:, None].expand(U, M + k)
    for t in range(last + 1):
        w = want[:, t]
        if bool(w.any()):
            out[row_of[w, t]] = state[w]
        if t == last:
            break
        new = items[:, t]
        if not bool((new >= 0).any()):
            continue
        recent = new.flip(1)  # the session's last stream first
        repeated = ((recent[:, :, None] == recent[:, None, :]) & later).any(-1)  # streamed again later on
        recent = recent.masked_fill(repeated | (recent < 0), -1)
        again = (state[:, :, None] == new[:, None, :]).any(-1)
        merged = torch.cat([recent, state.masked_fill(again, -1)], 1)
        valid = merged >= 0
        position = valid.cumsum(1) - 1
        keep = valid & (position < k)
        state = torch.full((U, k), -1, dtype=torch.int64)
        state[rows[keep], position[keep]] = merged[keep]
    return out
