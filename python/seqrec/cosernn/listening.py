"""Listening logs for CoSeRNN: one row per streamed track with user, item, timestamp
(seconds), skipped flag, device and stream source. Sessions are a user's runs of streams with
gaps shorter than ``session_gap`` (20 minutes); only the first ``max_items`` (10) streams of a
session are kept, as in the paper (Hansen et al., RecSys 2020, section 3). Each session also keeps
its true stream count (``n_streams``, before that cap: the paper's ``N_t``) and the time of its last
stream (``ends``, from which the next session's gap ``Delta_t`` is measured).

TSV format (header, tab-separated, extra columns ignored): ``user item timestamp skipped
device source``; ids, device and source are non-negative integers, ``skipped`` is 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..offline import split_at_gaps
from ..tsv import to_finite_float, to_int, tsv_records

LOG_COLUMNS = ("user", "item", "timestamp", "skipped", "device", "source")
SESSION_GAP = 20 * 60.0
MAX_ITEMS = 10


@dataclass
class ListeningLog:
    """Parallel arrays, one entry per stream."""

    users: np.ndarray  # int64
    items: np.ndarray  # int64
    times: np.ndarray  # float64, seconds
    skipped: np.ndarray  # bool
    devices: np.ndarray  # int64
    sources: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.users)

    def __post_init__(self):
        n = len(self.users)
        for name in ("items", "times", "skipped", "devices", "sources"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ListeningLog: {name} has {len(getattr(self, name))} entries, users has {n}")


@dataclass
class ListeningSessions:
    """Sessions ordered by (user, start time). Items are padded with -1 to ``max_items``.

    ``n_streams`` and ``ends`` may be None (sessions built elsewhere without them): then
    ``stream_counts`` falls back to the kept tracks and ``end_times`` to the start times."""

    users: np.ndarray  # (S,) int64
    starts: np.ndarray  # (S,) float64, time of the first stream
    items: np.ndarray  # (S, max_items) int64, -1 = padding
    skipped: np.ndarray  # (S, max_items) bool, False on padding
    devices: np.ndarray  # (S,) int64, device of the first stream
    sources: np.ndarray  # (S,) int64, stream source of the first stream
    # context where the data states it apart from the timestamps (Instacart); None: from ``starts`` (UTC)
    days_of_week: Optional[np.ndarray] = None  # (S,) int64 in [0, 7)
    hours: Optional[np.ndarray] = None  # (S,) int64 in [0, 24)
    # streams in the session before the cap of ``max_items`` (the paper's N_t)
    n_streams: Optional[np.ndarray] = None  # (S,) int64
    # time of the session's last stream (all of them, not only the kept ones)
    ends: Optional[np.ndarray] = None  # (S,) float64

    @property
    def n_sessions(self) -> int:
        return len(self.users)

    def stream_counts(self) -> np.ndarray:
        """``(S,)`` int64: ``n_streams``, or the kept tracks where the sessions do not state it."""
        return np.asarray(self.n_streams if self.n_streams is not None else self.lengths, dtype=np.int64)

    def end_times(self) -> np.ndarray:
        """``(S,)`` float64: ``ends``, or the start times where the sessions do not state them."""
        return np.asarray(self.ends if self.ends is not None else self.starts, dtype=np.float64)

    @property
    def lengths(self) -> np.ndarray:
        return (self.items >= 0).sum(axis=1)

    def user_offsets(self) -> np.ndarray:
        """``offsets`` such that user k's sessions are ``offsets[k]:offsets[k + 1]``."""
        change = np.flatnonzero(np.r_[True, self.users[1:] != self.users[:-1]]) if len(self.users) else np.zeros(0, int)
        return np.r_[change, len(self.users)].astype(np.int64)


def read_listening_tsv(path: Union[str, Path]) -> ListeningLog:
    """Read a listening log TSV. Errors name the file and the line. With pyarrow installed the
    columns are parsed by its CSV reader (867k streams in 0.44 s here, 2.05 s line by line, a busy
    machine); a file it refuses
    or whose values break a rule goes through the line-by-line reader, which names the line."""
    path = Path(path)
    fast = _read_with_pyarrow(path)
    return fast if fast is not None else _read_line_by_line(path)


def _read_with_pyarrow(path: Path) -> Optional[ListeningLog]:
    """The log through pyarrow.csv, or None: pyarrow missing, a line it cannot parse, a value out
    of range (the line-by-line reader then says where)."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pv
    except ImportError:
        return None
    types = {c: pa.float64() if c == "timestamp" else pa.int64() for c in LOG_COLUMNS}
    try:
        table = pv.read_csv(
            path,
            parse_options=pv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pv.ConvertOptions(
                column_types=types, include_columns=list(LOG_COLUMNS), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError):
        return None
    if any(table.column(c).null_count for c in LOG_COLUMNS):
        return None
    col = {c: table.column(c).to_numpy() for c in LOG_COLUMNS}
    ids_ok = all((col[c] >= 0).all() for c in ("user", "item", "device", "source"))
    if not (ids_ok and np.isin(col["skipped"], (0, 1)).all() and np.isfinite(col["timestamp"]).all()):
        return None
    return ListeningLog(
        users=col["user"].astype(np.int64),
        items=col["item"].astype(np.int64),
        times=col["timestamp"].astype(np.float64),
        skipped=col["skipped"].astype(bool),
        devices=col["device"].astype(np.int64),
        sources=col["source"].astype(np.int64),
    )


def _read_line_by_line(path: Path) -> ListeningLog:
    cols = {c: [] for c in LOG_COLUMNS}
    for line_no, row in tsv_records(path, LOG_COLUMNS):
        where = f"{path}:{line_no}"
        for c in LOG_COLUMNS:
            text = row[c]
            value = to_finite_float(text, where, c) if c == "timestamp" else to_int(text, where, c)
            if c == "skipped" and value not in (0, 1):
                raise ValueError(f"{where}: skipped must be 0 or 1, got {text!r}")
            if c in ("user", "item", "device", "source") and value < 0:
                raise ValueError(f"{where}: {c} {text!r} is negative")
            cols[c].append(value)
    return ListeningLog(
        users=np.asarray(cols["user"], dtype=np.int64),
        items=np.asarray(cols["item"], dtype=np.int64),
        times=np.asarray(cols["timestamp"], dtype=np.float64),
        skipped=np.asarray(cols["skipped"], dtype=bool),
        devices=np.asarray(cols["device"], dtype=np.int64),
        sources=np.asarray(cols["source"], dtype=np.int64),
    )


def write_listening_tsv(log: ListeningLog, path: Union[str, Path]) -> None:
    with Path(path).open("w", encoding="utf-8") as f:
        f.write("\t".join(LOG_COLUMNS) + "\n")
        for row in zip(
            log.users.tolist(),
            log.items.tolist(),
            log.times.tolist(),
            log.skipped.astype(int).tolist(),
            log.devices.tolist(),
            log.sources.tolist(),
        ):
            f.write("%d\t%d\t%r\t%d\t%d\t%d\n" % row)


def sessionize_listening(
    log: ListeningLog, session_gap: float = SESSION_GAP, max_items: int = MAX_ITEMS, *, source: str = "listening log"
) -> ListeningSessions:
    """Split each user's streams at gaps of at least ``session_gap`` seconds and keep the first
    ``max_items`` streams of every session; ``n_streams`` counts all of them, ``ends`` is the
    time of the last."""
    if len(log) == 0:
        raise ValueError(f"{source}: no streams")
    order, new = split_at_gaps(log.users, log.times, session_gap)
    u, t = log.users[order], log.times[order]
    session = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    position = np.arange(len(u)) - starts[session]
    keep = position < max_items
    n_sessions = len(starts)
    items = np.full((n_sessions, max_items), -1, dtype=np.int64)
    skipped = np.zeros((n_sessions, max_items), dtype=bool)
    items[session[keep], position[keep]] = log.items[order][keep]
    skipped[session[keep], position[keep]] = log.skipped[order][keep]
    first = order[starts]
    bounds = np.r_[starts, len(u)]
    return ListeningSessions(
        users=u[starts].copy(),
        starts=t[starts].copy(),
        items=items,
        skipped=skipped,
        devices=log.devices[first].copy(),
        sources=log.sources[first].copy(),
        n_streams=np.diff(bounds).astype(np.int64),
        ends=t[bounds[1:] - 1].copy(),
    )
