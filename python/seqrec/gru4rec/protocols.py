"""Evaluation protocols beyond the time split: user logs made into sessions, leave-one-out
on user sequences, and sampled ranking.

* **User logs** (``sessionize_users``): a user's events, in time order, cut into sessions where
  two events are ``gap`` seconds or more apart -- the rule the built-in MovieLens loaders use.
* **Leave-one-out** (``leave_one_out``), as RecBole evaluates sequential models (its
  ``LS: valid_and_test`` split with ``order: TO``): each user's events in time order (ties in
  the order of the data), the last one the test target, the one before it the validation
  target, everything before them for training; a user with two events gives one to training
  and one to test, a user with one event only trains (RecBole's rule). The model sees a user's
  whole sequence as one session; a validation or test target is ranked after the hidden state
  has run over everything before it (for the test target, the validation target included),
  against the whole catalogue (every item of the data, as RecBole's). RecBole cuts that
  history to the last 50 items (``MAX_ITEM_LIST_LENGTH``); seqrec runs the whole of it.
* **Sampled ranking** (``sampled_rank_counts``): each target ranked against N distinct negatives
  drawn uniformly or by training popularity among the items not in the evaluated sequence (the
  target included; fewer than N such items is an error), as in the evaluations of SASRec (Kang & McAuley, ICDM 2018;
  uniform, 100) and BERT4Rec (Sun et al., CIKM 2019; popularity, 100) and RecBole's
  ``uni100`` / ``pop100`` modes. Sampled metrics overstate accuracy and can order models
  differently from full ranking (Krichene & Rendle, KDD 2020): they are for comparison with
  papers that report them, and are labelled so.
"""

from __future__ import annotations

import argparse
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .data import Events, Sessions, build_sessions

PROTOCOLS = ("time", "leave-one-out", "sampled")
NEGATIVE_KINDS = ("uniform", "popularity")


def eval_negatives(text: str) -> Tuple[str, int]:
    """--eval-negatives: ``uniform:N`` or ``popularity:N`` with N >= 1 -> (kind, N)."""
    kind, colon, n = text.strip().lower().partition(":")
    if kind not in NEGATIVE_KINDS or not colon or not n.isdigit() or int(n) < 1:
        raise argparse.ArgumentTypeError(
            f"expected uniform:N or popularity:N with N >= 1 (e.g. uniform:100), got {text!r}"
        )
    return kind, int(n)


def sessionize_users(events: Events, gap: float) -> Events:
    """``events`` (their ``user_ids`` set) with sessions cut where a user's consecutive events
    are ``gap`` seconds or more apart; session ids numbered in (user, time) order, the events in
    the data's order."""
    if events.user_ids is None:
        raise ValueError("cutting sessions at gaps needs the events' users")
    if not np.isfinite(gap) or gap <= 0:
        raise ValueError(f"the session gap must be a finite number of seconds > 0, got {gap}")
    order = np.lexsort((events.times, events.user_ids))  # stable: equal times in the data's order
    u, t = events.user_ids[order], events.times[order]
    starts = np.r_[True, (u[1:] != u[:-1]) | (np.diff(t) >= gap)] if len(u) else np.zeros(0, dtype=bool)
    session_ids = np.empty(len(order), dtype=np.int64)
    session_ids[order] = np.cumsum(starts) - 1
    return Events(session_ids, events.item_ids, events.times, events.user_ids)


def recbole_time_key(times: np.ndarray) -> np.ndarray:
    """The order RecBole 1.2.1 gives events in time: it min-max normalises a float field such as
    the timestamp and holds it in float32, so times closer than the float32 resolution of
    ``(t - min) / (max - min)`` (about a second over MovieLens 100K's seven months) compare
    equal and keep the file's order. Sorting by this key (stably, in the file's order)
    reproduces its leave-one-out split exactly."""
    times = np.asarray(times, dtype=np.float64)
    span = times.max() - times.min() if len(times) else 0.0
    normalised = (times - times.min()) / span if span > 0 else np.zeros_like(times)
    return normalised.astype(np.float32).astype(np.float64)


def leave_one_out(
    events: Events, *, source: str = "data", item_ids: Optional[np.ndarray] = None, recbole_order: bool = False
) -> Tuple[Sessions, Optional[Sessions], Sessions]:
    """(training, validation, test) sessions of the leave-one-out split of the users' sequences
    (see the module's docstring): training holds each user's events before the held-out ones;
    validation and test hold one session per user with such a target, its whole sequence up to
    and including the target, evaluated on the last event alone (``Sessions.last_only``). All
    three share the catalogue of every item in ``events`` (``item_ids``: that catalogue instead,
    e.g. a trained model's; events of other items are dropped before the split). Validation is
    None when no user has three events. ``recbole_order``: events ordered by
    ``recbole_time_key`` instead of their exact times (RecBole's split, bit for bit)."""
    if events.user_ids is None:
        raise ValueError(f"{source}: leave-one-out needs the users of the events (--user-key names the user column)")
    if item_ids is not None:
        events = events.subset(np.isin(events.item_ids, item_ids))
    if len(events) == 0:
        raise ValueError(f"{source}: no events")
    if recbole_order:
        events = Events(events.session_ids, events.item_ids, recbole_time_key(events.times), events.user_ids)
    order = np.lexsort((events.times, events.user_ids))
    users = events.user_ids[order]
    sequence = Events(users, events.item_ids[order], events.times[order], users)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    lengths = np.diff(np.r_[starts, len(users)])
    held_out = np.minimum(2, lengths - 1)  # RecBole: min(2, n - 1) events per user
    position = np.arange(len(users)) - np.repeat(starts, lengths)
    from_end = np.repeat(lengths, lengths) - 1 - position  # 0 = the user's last event
    held = np.repeat(held_out, lengths)
    catalogue = np.unique(events.item_ids) if item_ids is None else np.asarray(item_ids)
    train = build_sessions(sequence.subset(from_end >= held), item_ids=catalogue, source=f"{source} (training)")
    valid = None
    if (held_out == 2).any():
        valid = build_sessions(
            sequence.subset((from_end >= 1) & (held == 2)), item_ids=catalogue, source=f"{source} (validation)"
        )
        valid.last_only = True
    test = build_sessions(sequence.subset(held >= 1), item_ids=catalogue, source=f"{source} (test)")
    test.last_only = True
    return train, valid, test


def sampled_negatives(
    sessions: Sessions,
    rows: Tensor,
    kind: str,
    n: int,
    generator: torch.Generator,
    popularity: Optional[Tensor] = None,
    max_rounds: int = 1000,
) -> Tensor:
    """(len(rows), n) item ids, each row ``n`` distinct items drawn (``uniform`` over the
    catalogue or by ``popularity``, the training counts) among those not in the row's session
    (``rows``: indices into ``sessions``): what is drawn twice or falls in the session is drawn
    again. ValueError when a session leaves fewer than ``n`` items that can be drawn (the
    sampled ranking would then not be one against ``n`` negatives)."""
    n_items = sessions.n_items
    if kind == "popularity":
        if popularity is None:
            raise ValueError("popularity-sampled negatives need the items' training counts")
        weights = torch.as_tensor(popularity, dtype=torch.float64).cpu()
        drawable = weights > 0
    elif kind == "uniform":
        drawable = torch.ones(n_items, dtype=torch.bool)
    else:
        raise ValueError(f"unknown negative sampling {kind!r}; expected one of {NEGATIVE_KINDS}")
    rows = rows.cpu()
    starts, ends = sessions.offsets[rows], sessions.offsets[rows + 1]
    lengths = ends - starts
    index = torch.repeat_interleave(starts - torch.cumsum(lengths, 0) + lengths, lengths) + torch.arange(
        int(lengths.sum())
    )
    owner = torch.repeat_interleave(torch.arange(len(rows)), lengths)
    seen = torch.unique(owner * n_items + sessions.items[index])  # (row, item) keys of the sessions' items
    seen_drawable = torch.bincount(seen // n_items, weights=drawable[seen % n_items].double(), minlength=len(rows))
    available = int(drawable.sum()) - seen_drawable
    if len(rows) and int(available.min()) < n:
        raise ValueError(
            f"{n} distinct {kind} negatives cannot be drawn outside a sequence that leaves {int(available.min())} "
            f"items to draw ({int(drawable.sum())} in all): ask for fewer (--eval-negatives {kind}:N)"
        )

    def draw(count: int) -> Tensor:
        if kind == "uniform":
            return torch.randint(n_items, (count,), generator=generator)
        return torch.multinomial(weights, count, replacement=True, generator=generator)

    out = draw(len(rows) * n).view(len(rows), n)
    row_of = torch.arange(len(rows)).unsqueeze(1).expand(-1, n)
    for _ in range(max_rounds):
        bad = torch.isin(row_of * n_items + out, seen)
        ordered, order = torch.sort(out, dim=1, stable=True)  # a repeat within a row: all but its first
        repeat = torch.zeros_like(bad)
        repeat.scatter_(1, order[:, 1:], ordered[:, 1:] == ordered[:, :-1])
        bad |= repeat
        if not bad.any():
            return out
        out[bad] = draw(int(bad.sum()))
    raise ValueError(
        f"could not draw {n} distinct {kind} negatives outside some sessions in {max_rounds} rounds: "
        "their sessions hold (nearly) every item that can be drawn"
    )


def sampled_rank_counts(scores: Tensor) -> Tuple[Tensor, Tensor]:
    """``scores (rows, 1 + n)``: the target's score first, then its negatives'. Per row, the
    negatives scoring above the target and equal to it (a NaN target: all of them above; a NaN
    negative: above no target), as the full ranking counts them."""
    target = scores[:, :1]
    negatives = scores[:, 1:]
    greater = (negatives > target).sum(1)
    equal = (negatives == target).sum(1)
    lost = target[:, 0].isnan()
    return torch.where(lost, negatives.shape[1], greater), torch.where(lost, 0, equal)
