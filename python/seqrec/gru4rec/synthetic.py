"""A synthetic session log with a realistic shape, for benchmarks and tests: power-law item
popularity, session lengths with many length-2 sessions (geometric), and a learnable signal:
each item has a successor (drawn by popularity), which the next event is with probability
``follow``; otherwise the next item is drawn by popularity.
"""

from __future__ import annotations

import numpy as np

from .data import Events


def synthetic_events(
    n_events: int = 200_000,
    n_items: int = 20_000,
    *,
    zipf: float = 1.1,
    mean_length: float = 5.0,
    follow: float = 0.5,
    seed: int = 0,
) -> Events:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** zipf
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    successor = rng.choice(n_items, size=n_items, p=popularity)
    # lengths 2 + geometric: P(2) is the largest, mean = mean_length
    lengths = []
    total = 0
    while total < n_events:
        length = 2 + int(rng.geometric(1.0 / max(mean_length - 1.0, 1.0))) - 1
        length = min(length, n_events - total) if n_events - total >= 2 else 2
        lengths.append(length)
        total += length
    lengths = np.asarray(lengths)
    n = int(lengths.sum())
    items = np.empty(n, dtype=np.int64)
    random_items = rng.choice(n_items, size=n, p=popularity)
    follows = rng.random(n) < follow
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    is_start = np.zeros(n, dtype=bool)
    is_start[starts] = True
    prev = 0
    for k in range(n):  # sequential by nature; ~1 s per million events
        prev = random_items[k] if is_start[k] or not follows[k] else successor[prev]
        items[k] = prev
    session_ids = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    times = np.arange(n, dtype=np.float64) * 30.0  # 30 s apart, sessions back to back in time
    return Events(session_ids=session_ids, item_ids=items, times=times)
