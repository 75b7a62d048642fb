"""A synthetic listening log with planted structure (SPEC 4), so that "CoSeRNN beats the
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

from .listening import ListeningLog

EPOCH_MONDAY = 1578268800.0  # 2020-01-06 00:00 UTC, a Monday


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def time_of_day(hours: np.ndarray) -> np.ndarray:
    """Four parts of the day: night [0, 6), morning [6, 12), afternoon [12, 18), evening [18, 24)."""
    return np.asarray(hours) // 6


def synthetic_listening(n_users: int = 500, n_items: int = 3000, *, sessions_per_user: float = 60.0,
                        days: float = 60.0, dim: int = 40, n_topics: int = 30, n_devices: int = 3,
                        n_sources: int = 3, context_strength: float = 0.9, personal_context: float = 0.4, recency: float = 0.6,
                        drift: float = 0.15, noise: float = 0.5, item_spread: float = 0.8, sharpness: float = 12.0,
                        skip_bias: float = 0.35,
                        seed: int = 0) -> Tuple[ListeningLog, np.ndarray]:
    rng = np.random.default_rng(seed)
    topics = _unit(rng.standard_normal((n_topics, dim)))
    item_topic = rng.integers(0, n_topics, n_items)
    item_vectors = _unit(topics[item_topic] + item_spread * rng.standard_normal((n_items, dim)) / np.sqrt(dim))
    log_pop = -1.0 * np.log(np.arange(1, n_items + 1))[rng.permutation(n_items)]  # Zipf(1) popularity
    n_contexts = 4 * n_devices
    shared_offsets = topics[rng.integers(0, n_topics, n_contexts)]  # what a context means to everyone

    cols = {k: [] for k in ("users", "items", "times", "skipped", "devices", "sources")}
    for user in range(n_users):
        n_sessions = max(2, int(rng.poisson(sessions_per_user)))
        taste = _unit(topics[rng.choice(n_topics, 2)].sum(0) + 0.3 * rng.standard_normal(dim) / np.sqrt(dim))
        offsets = context_strength * (shared_offsets + personal_context * topics[rng.integers(0, n_topics, n_contexts)])
        hour_habit = rng.dirichlet(np.full(24, 0.3))
        device_habit = rng.dirichlet(np.full(n_devices, 0.7))
        source_habit = rng.dirichlet(np.full(n_sources, 0.7))
        # session start times: habitual hours on random days, at least 30 minutes after the previous session ends
        starts = np.sort(rng.uniform(0, days, n_sessions).astype(int) * 86400.0
                         + rng.choice(24, n_sessions, p=hour_habit) * 3600.0 + rng.uniform(0, 3600, n_sessions))
        lengths = np.minimum(1 + rng.binomial(14, 0.55, n_sessions), 12)
        devices = rng.choice(n_devices, n_sessions, p=device_habit)
        sources = rng.choice(n_sources, n_sessions, p=source_habit)
        intent = taste
        previous_end = -np.inf
        for k in range(n_sessions):
            start = max(starts[k], previous_end + 1800.0)
            hour = int(start // 3600) % 24
            context = time_of_day(hour) * n_devices + devices[k]
            taste = _unit(taste + drift * rng.standard_normal(dim) / np.sqrt(dim))
            intent = _unit(taste + offsets[context] + recency * intent + noise * rng.standard_normal(dim) / np.sqrt(dim))
            cos = item_vectors @ intent
            # Gumbel top-k: `lengths[k]` distinct tracks drawn by popularity x exp(sharpness * cos)
            keys = log_pop + sharpness * cos + rng.gumbel(size=n_items)
            picked = np.argpartition(-keys, lengths[k])[:lengths[k]]
            picked = picked[rng.permutation(len(picked))]
            p_skip = 1.0 / (1.0 + np.exp(10.0 * (cos[picked] - skip_bias)))
            times = EPOCH_MONDAY + start + 180.0 * np.arange(len(picked))
            previous_end = start + 180.0 * len(picked)
            cols["users"].append(np.full(len(picked), user))
            cols["items"].append(picked)
            cols["times"].append(times)
            cols["skipped"].append(rng.random(len(picked)) < p_skip)
            cols["devices"].append(np.full(len(picked), devices[k]))
            cols["sources"].append(np.full(len(picked), sources[k]))
    c = {k: np.concatenate(v) for k, v in cols.items()}
    log = ListeningLog(users=c["users"].astype(np.int64), items=c["items"].astype(np.int64),
                       times=c["times"].astype(np.float64), skipped=c["skipped"].astype(bool),
                       devices=c["devices"].astype(np.int64), sources=c["sources"].astype(np.int64))
    return log, item_vectors.astype(np.float32)
