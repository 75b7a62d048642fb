"""A synthetic listening log with planted structure, so that "CoSeRNN beats the
baselines" is checkable without the paper's private data:

* items live in a 40-d space around topic centres, with power-law popularity;
* each user has a long-term taste that drifts slowly from session to session; each context
  (time of day x device) shifts it by an offset shared by all users plus a smaller personal one;
* a session's intent mixes the current taste, the context's offset and the previous session's
  intent (recency); its tracks are drawn by popularity x exp(sharpness * cos(item, intent));
* a track is skipped with a probability that grows as it lies farther from the intent.

Returns the log and the planted item vectors (unit norm); the word2vec pipeline learns its own.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from .listening import ListeningLog

EPOCH_MONDAY = 1578268800.0  # 2020-01-06 00:00 UTC, a Monday


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def time_of_day(hours: np.ndarray) -> np.ndarray:
    """Four parts of the day: night [0, 6), morning [6, 12), afternoon [12, 18), evening [18, 24)."""
    return np.asarray(hours) // 6


def _categorical(rng: np.random.Generator, probs: np.ndarray, size: int) -> np.ndarray:
    """``(len(probs), size)`` draws, row ``u`` from the distribution ``probs[u]``."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((len(probs), size)) * cdf[:, -1:]
    return np.minimum((u[:, :, None] >= cdf[:, None, :]).sum(-1), probs.shape[1] - 1)


def synthetic_listening(
    n_users: int = 10000,
    n_items: int = 3000,
    *,
    sessions_per_user: float = 100.0,
    days: int = 60,
    dim: int = 40,
    n_topics: int = 30,
    n_devices: int = 3,
    n_sources: int = 3,
    context_strength: float = 0.9,
    personal_context: float = 0.4,
    recency: float = 0.6,
    drift: float = 0.15,
    noise: float = 0.5,
    item_spread: float = 0.8,
    sharpness: float = 12.0,
    skip_bias: float = 0.35,
    max_length: int = 12,
    seed: int = 0,
) -> Tuple[ListeningLog, np.ndarray]:
    """The log (``n_users`` users, Poisson(``sessions_per_user``) sessions each, at least 2, over
    ``days`` whole days) and the planted item vectors. Users are simulated together, one session
    index at a time: the default 10k users x 100 sessions (8.7M streams) take about half a minute."""
    if days < 1 or n_users < 1 or n_items < max_length:
        raise ValueError(f"synthetic_listening: need days >= 1, n_users >= 1, n_items >= {max_length}")
    rng = np.random.default_rng(seed)
    U = n_users
    topics = _unit(rng.standard_normal((n_topics, dim)))
    item_topic = rng.integers(0, n_topics, n_items)
    item_vectors = _unit(topics[item_topic] + item_spread * rng.standard_normal((n_items, dim)) / np.sqrt(dim))
    log_pop = -1.0 * np.log(np.arange(1, n_items + 1))[rng.permutation(n_items)]  # Zipf(1) popularity
    n_contexts = 4 * n_devices
    shared_offsets = topics[rng.integers(0, n_topics, n_contexts)]  # what a context means to everyone

    n_sessions = np.maximum(2, rng.poisson(sessions_per_user, U))
    K = int(n_sessions.max())
    taste = _unit(topics[rng.integers(0, n_topics, (U, 2))].sum(1) + 0.3 * rng.standard_normal((U, dim)) / np.sqrt(dim))
    offsets = context_strength * (
        shared_offsets[None] + personal_context * topics[rng.integers(0, n_topics, (U, n_contexts))]
    )
    hour_habit = rng.dirichlet(np.full(24, 0.3), U)
    device_habit = rng.dirichlet(np.full(n_devices, 0.7), U)
    source_habit = rng.dirichlet(np.full(n_sources, 0.7), U)
    # session start times: habitual hours on random days (sorted per user; sessions past a user's
    # count are dropped), at least 30 minutes after the previous session ends
    starts = (
        rng.integers(0, days, (U, K)) * 86400.0
        + _categorical(rng, hour_habit, K) * 3600.0
        + rng.uniform(0, 3600, (U, K))
    )
    starts = np.sort(np.where(np.arange(K)[None] < n_sessions[:, None], starts, np.inf), axis=1)
    lengths = np.minimum(1 + rng.binomial(14, 0.55, (U, K)), max_length)
    devices = _categorical(rng, device_habit, K)
    sources = _categorical(rng, source_habit, K)

    intent = taste.copy()
    vectors32, log_pop32 = item_vectors.astype(np.float32), log_pop.astype(np.float32)
    previous_end = np.full(U, -np.inf)
    rows = np.arange(U)
    cols = {k: [] for k in ("users", "items", "times", "skipped", "devices", "sources")}
    for k in range(K):
        a = rows[n_sessions > k]  # users with a k-th session
        start = np.maximum(starts[a, k], previous_end[a] + 1800.0)
        hour = (start // 3600).astype(np.int64) % 24
        context = time_of_day(hour) * n_devices + devices[a, k]
        taste[a] = _unit(taste[a] + drift * rng.standard_normal((len(a), dim)) / np.sqrt(dim))
        intent[a] = _unit(
            taste[a]
            + offsets[a, context]
            + recency * intent[a]
            + noise * rng.standard_normal((len(a), dim)) / np.sqrt(dim)
        )
        cos = intent[a].astype(np.float32) @ vectors32.T
        # Gumbel top-k: `lengths` distinct tracks drawn by popularity x exp(sharpness * cos), in random order
        with np.errstate(divide="ignore"):  # a uniform draw of exactly 0 gives a key of -inf
            gumbel = -np.log(-np.log(rng.random(cos.shape, dtype=np.float32)))
        keys = log_pop32 + sharpness * cos + gumbel
        top = torch.from_numpy(keys).topk(max_length, dim=1).indices.numpy()  # by decreasing key
        n = lengths[a, k]
        taken = np.arange(max_length)[None] < n[:, None]
        shuffle = np.argsort(np.where(taken, rng.random(top.shape), 2.0), axis=1)
        picked = np.take_along_axis(top, shuffle, 1)
        c = np.take_along_axis(cos, picked, 1)
        p_skip = 1.0 / (1.0 + np.exp(10.0 * (c - skip_bias)))
        skipped = rng.random(picked.shape) < p_skip
        times = EPOCH_MONDAY + start[:, None] + 180.0 * np.arange(max_length)[None]
        previous_end[a] = start + 180.0 * n
        user = np.broadcast_to(a[:, None], picked.shape)
        for name, value in (
            ("users", user),
            ("items", picked),
            ("times", times),
            ("skipped", skipped),
            ("devices", np.broadcast_to(devices[a, k][:, None], picked.shape)),
            ("sources", np.broadcast_to(sources[a, k][:, None], picked.shape)),
        ):
            cols[name].append(value[taken])
    c = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.lexsort((c["times"], c["users"]))
    log = ListeningLog(
        users=c["users"][order].astype(np.int64),
        items=c["items"][order].astype(np.int64),
        times=c["times"][order].astype(np.float64),
        skipped=c["skipped"][order].astype(bool),
        devices=c["devices"][order].astype(np.int64),
        sources=c["sources"][order].astype(np.int64),
    )
    return log, item_vectors.astype(np.float32)
