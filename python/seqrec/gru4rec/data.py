"""Session data in GRU4Rec's format: tab-separated ``SessionId ItemId Time`` with a
header line, or the same columns in a pandas data frame or a parquet file (pandas and pyarrow
are optional: imported only when such input is read); the three columns may have other names
(``ColumnKeys``, the published command line's item, session and time keys). Events are sorted by (session, time),
sessions ordered by their first event, items mapped to dense ids, sessions of length 1
dropped; a time-based split puts the sessions that end in the last days into the test set,
drops test events whose item was not seen in training, then test sessions shorter than 2
events.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..tsv import to_finite_float, to_int, tsv_records

REQUIRED_COLUMNS = ("SessionId", "ItemId", "Time")


class ColumnKeys(NamedTuple):
    """The names of the session, item and time columns."""

    session: str = "SessionId"
    item: str = "ItemId"
    time: str = "Time"

    def checked(self) -> "ColumnKeys":
        if len(set(self)) < 3 or not all(self):
            raise ValueError(
                f"the session, item and time keys must be three different column names, got {', '.join(map(repr, self))}"
            )
        return self


@dataclass
class Events:
    """Raw events: parallel arrays of session ids, item ids (both int64) and times (float64);
    ``user_ids`` (int64) where the data names its users (a user log, the built-in data sets)."""

    session_ids: np.ndarray
    item_ids: np.ndarray
    times: np.ndarray
    user_ids: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.session_ids)

    def subset(self, mask: np.ndarray) -> "Events":
        users = None if self.user_ids is None else self.user_ids[mask]
        return Events(self.session_ids[mask], self.item_ids[mask], self.times[mask], users)


@dataclass
class Sessions:
    """Sessions stored back to back: session s is ``items[offsets[s]:offsets[s + 1]]`` (dense
    item ids, in time order); sessions in the order of their first event."""

    items: Tensor  # (E,) int64
    offsets: Tensor  # (S + 1,) int64
    times: Tensor  # (E,) float64
    session_ids: np.ndarray  # (S,) original ids
    item_ids: np.ndarray  # (n_items,) original id of each dense id
    # evaluation: only each session's last event is a target (leave-one-out: the session is a
    # user's sequence, its last event the held-out one); else every event after the first
    last_only: bool = False

    @property
    def n_sessions(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.items)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_predictions(self) -> int:
        """The targets an evaluation ranks: one per session with ``last_only``, else every event
        after a session's first."""
        return self.n_sessions if self.last_only else self.n_events - self.n_sessions

    def item_counts(self) -> Tensor:
        """Support of each item (its number of events), float64."""
        return torch.bincount(self.items, minlength=self.n_items).double()

    def shard(self, rank: int, world: int) -> "Sessions":
        """Every ``world``-th session from the ``rank``-th on (the same catalogue): one process's
        part of the data in data-parallel training."""
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world}")
        keep = torch.arange(rank, self.n_sessions, world)
        lengths = (self.offsets[1:] - self.offsets[:-1])[keep]
        starts = self.offsets[:-1][keep]
        index = torch.repeat_interleave(starts - torch.cumsum(lengths, 0) + lengths, lengths) + torch.arange(
            int(lengths.sum())
        )
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lengths, 0)])
        return Sessions(self.items[index], offsets, self.times[index], self.session_ids[keep.numpy()], self.item_ids)


def read_tsv(path: Union[str, Path], keys: ColumnKeys = ColumnKeys()) -> Events:
    """Read a GRU4Rec TSV file (its session, item and time columns named by ``keys``). Errors
    name the file and the line."""
    path = Path(path)
    s_key, i_key, t_key = ColumnKeys(*keys).checked()
    sessions, items, times = [], [], []
    for line_no, row in tsv_records(path, (s_key, i_key, t_key)):
        where = f"{path}:{line_no}"
        sessions.append(to_int(row[s_key], where, s_key))
        items.append(to_int(row[i_key], where, i_key))
        times.append(to_finite_float(row[t_key], where, t_key))
    return Events(
        np.asarray(sessions, dtype=np.int64), np.asarray(items, dtype=np.int64), np.asarray(times, dtype=np.float64)
    )


def _frame_column(frame, name: str, source: str, *, integer: bool) -> np.ndarray:
    """Column ``name`` of ``frame`` as int64 (``integer``: whole numbers, floats included) or as
    float64 (finite numbers). A bad value raises a ValueError naming ``source`` and the first
    offending row by its index label."""
    import pandas as pd
    from pandas.api import types

    col = frame[name]
    numeric = (types.is_integer_dtype(col.dtype) or types.is_float_dtype(col.dtype)) and not types.is_bool_dtype(
        col.dtype
    )
    if numeric:
        bad = col.isna().to_numpy()
    else:  # strings, booleans, dates...: accepted only when every value is a number (e.g. ints in an object column)
        bad = ~np.fromiter(
            (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in col),
            dtype=bool,
            count=len(col),
        )
        if not bad.any():
            col = pd.to_numeric(col)
    if not bad.any() and types.is_unsigned_integer_dtype(col.dtype):  # uint64 ids past int64 would wrap
        bad = (col > np.iinfo(np.int64).max).to_numpy()
    if not bad.any():
        if types.is_integer_dtype(col.dtype):
            return col.to_numpy(np.int64 if integer else np.float64)  # exact for ids beyond 2**53
        values = col.to_numpy(np.float64)
        bad = ~np.isfinite(values)
        if integer:
            bad |= (values != np.round(values)) | (np.abs(values) >= 2.0**63)
        if not bad.any():
            return values.astype(np.int64) if integer else values
    row = int(np.argmax(bad))
    value = col.iloc[row]
    value = value.item() if isinstance(value, np.generic) else value
    problem = "an integer" if integer else ("finite" if isinstance(value, float) else "a number")
    if isinstance(value, (int, np.integer)) and value > np.iinfo(np.int64).max:
        problem = "an id below 2**63 (ids are int64)"
    raise ValueError(f"{source}: row {frame.index[row]!r}: {name} {value!r} is not {problem}")


def events_from_frame(frame, *, source: str = "data frame", keys: ColumnKeys = ColumnKeys()) -> Events:
    """Events from a pandas DataFrame with columns ``SessionId``, ``ItemId`` (integer-valued) and
    ``Time`` (finite numbers), or the columns ``keys`` names; other columns are ignored. Errors
    name ``source`` and the first offending row."""
    keys = ColumnKeys(*keys).checked()
    missing = [c for c in keys if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {', '.join(missing)} in {list(frame.columns)!r}; expected {', '.join(keys)}"
        )
    return Events(
        _frame_column(frame, keys.session, source, integer=True),
        _frame_column(frame, keys.item, source, integer=True),
        _frame_column(frame, keys.time, source, integer=False),
    )


def read_events(path: Union[str, Path], keys: ColumnKeys = ColumnKeys()) -> Events:
    """Events from a ``.parquet`` file (through pandas and pyarrow, see ``events_from_frame``) or,
    for any other suffix, a GRU4Rec TSV file (``read_tsv``); ``keys`` names the columns."""
    path = Path(path)
    keys = ColumnKeys(*keys).checked()
    if path.suffix.lower() != ".parquet":
        return read_tsv(path, keys)
    try:
        import pandas as pd
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError(
            f"{path}: reading parquet needs pandas and pyarrow ({err.name} is missing): pip install pandas pyarrow"
        ) from err
    present = set(pq.read_schema(path).names)  # read only the needed columns; a missing one is reported below
    frame = pd.read_parquet(path, engine="pyarrow", columns=[c for c in keys if c in present])
    return events_from_frame(frame, source=str(path), keys=keys)


def build_sessions(events: Events, item_ids: Optional[np.ndarray] = None, *, source: str = "data") -> Sessions:
    """Sort, map items to dense ids (with ``item_ids`` given: that mapping, events of other items
    dropped) and drop sessions shorter than 2 events. ``source`` names the data in errors."""
    if item_ids is not None:
        events = events.subset(np.isin(events.item_ids, item_ids))
    order = np.lexsort((events.times, events.session_ids))
    s, i, t = events.session_ids[order], events.item_ids[order], events.times[order]
    # session boundaries and lengths; keep sessions of length >= 2
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(s)].astype(np.int64)
    long_enough = (ends - starts) >= 2
    starts, ends = starts[long_enough], ends[long_enough]
    if len(starts) == 0:
        raise ValueError(f"{source}: no session with at least 2 events is left after filtering")
    # sessions ordered by their first event
    session_order = np.argsort(t[starts], kind="stable")
    starts, ends = starts[session_order], ends[session_order]
    lengths = ends - starts
    event_index = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)])
    if item_ids is None:
        item_ids = np.unique(i[event_index])
    dense = np.searchsorted(item_ids, i[event_index])
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    return Sessions(
        items=torch.from_numpy(dense.astype(np.int64)),
        offsets=torch.from_numpy(offsets),
        times=torch.from_numpy(t[event_index].copy()),
        session_ids=s[starts],
        item_ids=np.asarray(item_ids),
    )


def split_events_by_time(
    events: Events, test_days: float = 1.0, *, day_seconds: float = 86400.0, source: str = "data"
) -> Tuple[Events, Events]:
    """The events of the sessions that end before the last ``test_days`` of the data, and those
    of the sessions whose last event lies within them."""
    if len(events) == 0:
        raise ValueError(f"{source}: no events")
    order = np.argsort(events.session_ids, kind="stable")
    sid = events.session_ids[order]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    session_end = np.maximum.reduceat(events.times[order], starts)
    last_time = dict(zip(sid[starts].tolist(), session_end.tolist()))
    cutoff = events.times.max() - test_days * day_seconds
    is_test = np.fromiter((last_time[s] > cutoff for s in events.session_ids.tolist()), dtype=bool, count=len(events))
    return events.subset(~is_test), events.subset(is_test)


def time_split(
    events: Events, test_days: float = 1.0, *, day_seconds: float = 86400.0, source: str = "data"
) -> Tuple[Sessions, Sessions]:
    """Train / test sessions: a session is in the test set when its last event lies within
    ``test_days`` of the last event of the data. Test events of items unseen in training are
    dropped, then test sessions shorter than 2 events."""
    train_events, test_events = split_events_by_time(events, test_days, day_seconds=day_seconds, source=source)
    train = build_sessions(train_events, source=f"{source} (train split)")
    test = build_sessions(test_events, item_ids=train.item_ids, source=f"{source} (test split)")
    return train, test
