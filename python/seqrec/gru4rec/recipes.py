"""``seqrec gru4rec prepare --recipe NAME RAW_FILES... --out DIR``: the preprocessing GRU4Rec's
authors published for the data sets it is evaluated on, producing GRU4Rec TSV files that
``train --dataset DIR/NAME_train_full.tsv --test DIR/NAME_test.tsv`` reads.

The steps, as the authors' preprocessing documents them (gru4rec_third_party_comparison, "Data
preprocessing"; the RSC15 split of Hidasi et al., ICLR 2016), written here from that
description:

1. keep the events that mean a visit to an item's page (views, clicks, details: per data set);
2. sessions: the data's own session ids, or a user's events cut where they are an hour or more
   apart (RetailRocket, Rees46);
3. keep session, item and time;
4. drop an event whose item repeats the session's previous event (``i, i, j`` -> ``i, j``);
5. repeat until nothing changes: drop sessions shorter than 2 events and items with fewer than
   5 events;
6. split in time: ``tsplit`` = the last timestamp less ``tday``; the sessions that start after
   ``tsplit`` are the test set, the events before it the full training set (``train_full``;
   sessions left with one event dropped); test events of items not in ``train_full`` are
   dropped, then test sessions shorter than 2. The same split of ``train_full`` gives
   ``train_tr`` and ``train_valid`` (for tuning).

The raw formats (one recipe each; ``rsc15`` and ``yoochoose`` are the same data):

* ``rsc15`` / ``yoochoose``: ``yoochoose-clicks.dat`` (and ``yoochoose-test.dat``, appended):
  ``session,timestamp,item,category`` without a header, ISO times (``2014-04-07T10:51:09.277Z``);
  every event is a click; tday 1 day.
* ``retailrocket``: ``events.csv`` (``timestamp,visitorid,event,itemid,transactionid``, times in
  ms); ``view`` events; 1-hour sessions per visitor; tday 7 days.
* ``rees46``: the monthly files (``2019-Oct.csv``, ``2019-Nov.csv``; ``event_time,event_type,
  product_id,category_id,category_code,brand,price,user_id,user_session``, times
  ``2019-10-01 00:00:00 UTC``); ``view`` events; 1-hour sessions per user; tday 1 day.
* ``coveo``: ``browsing_train.csv`` (``session_id_hash,event_type,product_action,
  product_sku_hash,server_timestamp_epoch_ms,hashed_url``); ``detail`` actions; the hashed
  session and item ids numbered in order of first appearance; tday 1 day.
* ``diginetica``: ``train-item-views.csv`` (``sessionId;userId;itemId;timeframe;eventdate``,
  ``;``-separated): a view's time is its session's first day plus ``timeframe`` ms; tday 7 days.

Each output file's header is ``SessionId ItemId Time`` (times in seconds); ``prepare`` prints
each file's sessions, events and items.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from .data import Events

DAY = 86400.0
MIN_ITEM_SUPPORT = 5
MIN_SESSION_LENGTH = 2
SESSION_GAP = 3600.0


@dataclass(frozen=True)
class Recipe:
    read: Callable[[Sequence[str]], Events]  # raw files -> events (sessions formed)
    test_days: float
    files: str  # what the raw files are, for the help
    most_files: int = 1


def _rows(path: str, delimiter: str = ",", header: bool = True):
    """The rows of a raw CSV file as lists of strings (its header skipped)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=delimiter)
        if header:
            next(reader, None)
        yield from reader


def _columns(path: str, wanted: Dict[str, int], delimiter: str = ",", header: bool = True) -> Dict[str, list]:
    """The ``wanted`` columns (name -> index) of a raw CSV file as lists of strings; a short row
    is an error naming the file and the line."""
    out: Dict[str, list] = {name: [] for name in wanted}
    width = max(wanted.values()) + 1
    for line, row in enumerate(_rows(path, delimiter, header), start=2 if header else 1):
        if len(row) < width:
            raise ValueError(f"{path}:{line}: expected at least {width} fields, got {len(row)}")
        for name, column in wanted.items():
            out[name].append(row[column])
    return out


def _ints(values: list, path: str, name: str) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except ValueError:
        raise ValueError(f"{path}: a {name} that is not an integer") from None


def _numbered(values: list) -> np.ndarray:
    """Ids (e.g. hashes) numbered 0, 1, ... in order of first appearance."""
    ids: Dict[str, int] = {}
    return np.fromiter((ids.setdefault(v, len(ids)) for v in values), dtype=np.int64, count=len(values))


def _iso_seconds(values: List[str], path: str) -> np.ndarray:
    """``2014-04-07T10:51:09.277Z`` or ``2019-10-01 00:00:00 UTC`` -> seconds since the epoch."""
    cleaned = [v.replace(" UTC", "").replace("Z", "").replace(" ", "T") for v in values]
    try:
        stamps = np.array(cleaned, dtype="datetime64[ms]")
    except ValueError:
        raise ValueError(f"{path}: a time that is not ISO 8601 (e.g. 2014-04-07T10:51:09.277Z)") from None
    return stamps.astype(np.int64) / 1000.0


def _cut_at_gaps(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> Events:
    order = np.lexsort((times, users))
    u, t = users[order], times[order]
    starts = np.r_[True, (u[1:] != u[:-1]) | (np.diff(t) >= SESSION_GAP)] if len(u) else np.zeros(0, dtype=bool)
    return Events(np.cumsum(starts).astype(np.int64) - 1, items[order], t)


def read_yoochoose(paths: Sequence[str]) -> Events:
    sessions, items, times = [], [], []
    for path in paths:
        cols = _columns(path, {"session": 0, "time": 1, "item": 2}, header=False)
        sessions.append(_ints(cols["session"], path, "session id"))
        items.append(_ints(cols["item"], path, "item id"))
        times.append(_iso_seconds(cols["time"], path))
    return Events(np.concatenate(sessions), np.concatenate(items), np.concatenate(times))


def read_retailrocket(paths: Sequence[str]) -> Events:
    (path,) = paths
    cols = _columns(path, {"time": 0, "user": 1, "event": 2, "item": 3})
    view = np.array(cols["event"]) == "view"
    users = _ints(cols["user"], path, "visitorid")[view]
    items = _ints(cols["item"], path, "itemid")[view]
    times = _ints(cols["time"], path, "timestamp")[view] / 1000.0
    return _cut_at_gaps(users, items, times)


def read_rees46(paths: Sequence[str]) -> Events:
    users, items, times = [], [], []
    for path in paths:
        cols = _columns(path, {"time": 0, "event": 1, "item": 2, "user": 7})
        view = np.array(cols["event"]) == "view"
        users.append(_ints(cols["user"], path, "user_id")[view])
        items.append(_ints(cols["item"], path, "product_id")[view])
        times.append(_iso_seconds(cols["time"], path)[view])
    return _cut_at_gaps(np.concatenate(users), np.concatenate(items), np.concatenate(times))


def read_coveo(paths: Sequence[str]) -> Events:
    (path,) = paths
    cols = _columns(path, {"session": 0, "action": 2, "item": 3, "time": 4})
    detail = np.array(cols["action"]) == "detail"
    keep = np.flatnonzero(detail)
    sessions = _numbered([cols["session"][k] for k in keep])
    items = _numbered([cols["item"][k] for k in keep])
    times = _ints([cols["time"][k] for k in keep], path, "server_timestamp_epoch_ms") / 1000.0
    return Events(sessions, items, times)


def read_diginetica(paths: Sequence[str]) -> Events:
    (path,) = paths
    cols = _columns(path, {"session": 0, "item": 2, "frame": 3, "date": 4}, delimiter=";")
    sessions = _ints(cols["session"], path, "sessionId")
    try:
        days = np.array(cols["date"], dtype="datetime64[D]").astype(np.int64) * DAY
    except ValueError:
        raise ValueError(f"{path}: an eventdate that is not a date (e.g. 2016-05-09)") from None
    # a view's time: its session's first day plus the elapsed time
    order = np.argsort(sessions, kind="stable")
    s = sessions[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    first_day = np.minimum.reduceat(days[order], starts)
    session_day = np.empty(len(sessions))
    session_day[order] = np.repeat(first_day, np.diff(np.r_[starts, len(s)]))
    times = session_day + _ints(cols["frame"], path, "timeframe") / 1000.0
    return Events(sessions, _ints(cols["item"], path, "itemId"), times)


RECIPES: Dict[str, Recipe] = {
    "rsc15": Recipe(read_yoochoose, 1.0, "yoochoose-clicks.dat [yoochoose-test.dat]", 2),
    "yoochoose": Recipe(read_yoochoose, 1.0, "yoochoose-clicks.dat [yoochoose-test.dat]", 2),
    "retailrocket": Recipe(read_retailrocket, 7.0, "events.csv"),
    "rees46": Recipe(read_rees46, 1.0, "2019-Oct.csv 2019-Nov.csv (any months)", 12),
    "coveo": Recipe(read_coveo, 1.0, "browsing_train.csv"),
    "diginetica": Recipe(read_diginetica, 7.0, "train-item-views.csv"),
}


def _sorted(events: Events) -> Events:
    order = np.lexsort((events.times, events.session_ids))
    return Events(events.session_ids[order], events.item_ids[order], events.times[order])


def drop_repeats(events: Events) -> Events:
    """Each session in time order, without the events that repeat the previous event's item."""
    e = _sorted(events)
    repeat = np.r_[False, (e.session_ids[1:] == e.session_ids[:-1]) & (e.item_ids[1:] == e.item_ids[:-1])]
    return e.subset(~repeat)


def _counts(ids: np.ndarray) -> np.ndarray:
    """Each entry's count of its id."""
    _, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    return counts[inverse]


def filter_until_stable(events: Events) -> Events:
    """Drop sessions shorter than 2 and items with fewer than 5 events, again until neither
    drops anything."""
    while True:
        keep = _counts(events.session_ids) >= MIN_SESSION_LENGTH
        keep &= _counts(events.item_ids) >= MIN_ITEM_SUPPORT
        if keep.all():
            return events
        events = events.subset(keep)


def split_by_time(events: Events, tday: float) -> Tuple[Events, Events]:
    """(train, test): test = the sessions starting after the last time less ``tday``; train =
    the events before it, sessions left with one event dropped; test events of items not in
    train dropped, then test sessions shorter than 2."""
    tsplit = events.times.max() - tday
    order = np.argsort(events.session_ids, kind="stable")
    s = events.session_ids[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    first = np.minimum.reduceat(events.times[order], starts)
    session_start = np.empty(len(events))
    session_start[order] = np.repeat(first, np.diff(np.r_[starts, len(s)]))
    test = events.subset(session_start > tsplit)
    train = events.subset(events.times < tsplit)
    train = train.subset(_counts(train.session_ids) >= MIN_SESSION_LENGTH)
    test = test.subset(np.isin(test.item_ids, train.item_ids))
    test = test.subset(_counts(test.session_ids) >= MIN_SESSION_LENGTH)
    return train, test


def write_tsv(events: Events, path: str) -> None:
    e = _sorted(events)
    with open(path, "w", encoding="utf-8") as f:
        f.write("SessionId\tItemId\tTime\n")
        for s, i, t in zip(e.session_ids.tolist(), e.item_ids.tolist(), e.times.tolist()):
            f.write(f"{s}\t{i}\t{t:.3f}\n")


def prepare(name: str, raw_files: Sequence[str], out_dir: str, log: Callable[[str], None] = print) -> Dict[str, str]:
    """Run recipe ``name`` on ``raw_files`` and write ``NAME_train_full.tsv``, ``NAME_test.tsv``,
    ``NAME_train_tr.tsv`` and ``NAME_train_valid.tsv`` into ``out_dir``; returns their paths."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    if not 1 <= len(raw_files) <= recipe.most_files:
        raise ValueError(f"{name} reads {recipe.files}: got {len(raw_files)} file(s)")
    for path in raw_files:
        if not os.path.isfile(path):
            raise ValueError(f"{path}: not a file ({name} reads {recipe.files})")
    events = recipe.read(raw_files)
    if len(events) == 0:
        raise ValueError(f"{', '.join(raw_files)}: no events of the kind {name} keeps")
    log(f"read: {len(events)} events, {len(np.unique(events.session_ids))} sessions")
    events = filter_until_stable(drop_repeats(events))
    if len(events) == 0:
        raise ValueError(f"{name}: nothing is left after dropping sessions < 2 events and items < 5 events")
    train_full, test = split_by_time(events, recipe.test_days * DAY)
    train_tr, train_valid = split_by_time(train_full, recipe.test_days * DAY)
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for part, data in (
        ("train_full", train_full),
        ("test", test),
        ("train_tr", train_tr),
        ("train_valid", train_valid),
    ):
        path = os.path.join(out_dir, f"{name}_{part}.tsv")
        write_tsv(data, path)
        paths[part] = path
        log(
            f"{path}: {len(np.unique(data.session_ids))} sessions, {len(data)} events, "
            f"{len(np.unique(data.item_ids))} items"
        )
    return paths
