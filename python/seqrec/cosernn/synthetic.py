"""A synthetic listening log with planted structure, so that "CoSeRNN beats the baselines" is
checkable without the paper's private data, calibrated to what Hansen et al. (RecSys 2020,
sections 3 and 4, and Table 2) report about their Spotify log (`log_stats` measures it):

* items live in a 40-d space around topic centres, with power-law popularity;
* each user has a long-term taste that drifts slowly from session to session;
* contexts: the paper's six times of day (53.6% of sessions in the afternoon and evening, about
  three users in four with a night session), devices (88.3% mobile, 8.6% desktop, the rest
  speaker / web / tablet, or one "other" device when ``n_devices=3``) and day of week (weekday
  or weekend), each user with their own habits around those shares;
* each time of day, device and part of the week shifts a session's intent by an offset shared by
  all users plus a personal one; rare contexts have larger personal offsets and more noise
  (more diverse, paper section 4.2); the context effect is moderate: recency and the user's
  long-term taste predict a session better than the context does, as in the paper's Table 2,
  where the any-context baselines beat the same-context ones;
* stream sources (0: the user's own collection, close to the long-term taste; 1: editorial /
  charts, pulled towards a shared direction that changes every week and towards popular
  tracks; 2: radio, continuing the previous session), habitual and sticky from session to
  session;
* a session's intent mixes the current taste, the context offsets, the source's pull and the
  previous session's intent (recency); its tracks are drawn by popularity x exp(sharpness *
  cos(item, intent)); session lengths have a mean of about 10 tracks (the paper's);
* a track is skipped with a probability that grows as it lies farther from the session's
  intent and from the user's long-term taste, and with the user's own propensity, so that
  sessions far from a user's usual taste are skipped more (paper section 4.4).

Returns the log and the planted item vectors (unit norm); the word2vec pipeline learns its own.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from ..offline import split_at_gaps
from .listening import SESSION_GAP, ListeningLog

EPOCH_MONDAY = 1578268800.0  # 2020-01-06 00:00 UTC, a Monday

# the paper's six times of day (section 4.1): night [1, 6), early morning [6, 9), morning
# [9, 12), afternoon [12, 17), evening [17, 21), late evening [21, 1)
TIME_PARTS = ((1, 2, 3, 4, 5), (6, 7, 8), (9, 10, 11), (12, 13, 14, 15, 16), (17, 18, 19, 20), (21, 22, 23, 0))
# session shares of the six parts: afternoon + evening 53.6%, the paper's number; the split of
# the other 46.4% is not in the text (a figure), chosen here
TIME_SHARES = (0.05, 0.10, 0.15, 0.31, 0.226, 0.164)
# mobile 88.3%, desktop 8.6%, the rest split evenly across speaker, web, tablet (section 4.1)
DEVICE_SHARES_5 = (0.883, 0.086, 0.031 / 3, 0.031 / 3, 0.031 / 3)
SOURCE_SHARES = (0.45, 0.30, 0.25)  # collection, editorial / charts, radio (not in the paper)
# the calibrated generator's regimes (``synthetic_listening(start=...)``) and the taste dynamics
# each defaults to: "settled", mean-reverting tastes in their steady state; "topics", the earlier
# log (tastes drifting away from their topics for the whole log)
STARTS = {"settled": {"drift": 0.19, "home_pull": 0.03}, "topics": {"drift": 0.1, "home_pull": 0.0}}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def time_of_day(hours: np.ndarray) -> np.ndarray:
    """Four parts of the day: night [0, 6), morning [6, 12), afternoon [12, 18), evening [18, 24)."""
    return np.asarray(hours) // 6


def time_part(hours: np.ndarray) -> np.ndarray:
    """The paper's six times of day (index into `TIME_PARTS`) of hours in [0, 24)."""
    table = np.zeros(24, dtype=np.int64)
    for k, part in enumerate(TIME_PARTS):
        table[list(part)] = k
    return table[np.asarray(hours, dtype=np.int64)]


def device_shares(n_devices: int) -> np.ndarray:
    """Session shares of the devices: the paper's five (mobile, desktop, speaker, web, tablet),
    the last ones merged into one when fewer are asked for."""
    if n_devices < 1:
        raise ValueError("n_devices must be >= 1")
    base = np.asarray(DEVICE_SHARES_5)
    if n_devices >= len(base):
        rest = np.full(n_devices - len(base) + 1, base[-1] / (n_devices - len(base) + 1))
        return np.r_[base[:-1], rest]
    return np.r_[base[: n_devices - 1], base[n_devices - 1 :].sum()]


def _shares(shares: Sequence[float], n: int) -> np.ndarray:
    p = np.asarray(shares, dtype=np.float64)[:n]
    if len(p) < n:
        p = np.r_[p, np.full(n - len(p), p.min())]
    return p / p.sum()


def _categorical(rng: np.random.Generator, probs: np.ndarray, size: int) -> np.ndarray:
    """``(len(probs), size)`` draws, row ``u`` from the distribution ``probs[u]``."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((len(probs), size)) * cdf[:, -1:]
    return np.minimum((u[:, :, None] >= cdf[:, None, :]).sum(-1), probs.shape[1] - 1)


def _rarity(shares: np.ndarray) -> np.ndarray:
    """0 for the commonest level, growing with the log of how much rarer a level is."""
    return np.log(shares.max() / shares)


def _item_space(rng: np.random.Generator, n_items: int, n_topics: int, dim: int, item_spread: float):
    """(topic centres, unit item vectors around them, Zipf(1) log-popularity in random order)."""
    topics = _unit(rng.standard_normal((n_topics, dim)))
    item_topic = rng.integers(0, n_topics, n_items)
    item_vectors = _unit(topics[item_topic] + item_spread * rng.standard_normal((n_items, dim)) * (1.0 / np.sqrt(dim)))
    log_pop = -1.0 * np.log(np.arange(1, n_items + 1))[rng.permutation(n_items)]
    return topics, item_vectors, log_pop


class _Scratch:
    """Reused float32 buffers for the generators' per-step ``(users, items)`` arrays: fresh
    arrays of that size are page-faulted in at each step, which took most of the generator's
    time. The values computed in them are the same as with fresh arrays."""

    def __init__(self):
        self._buffers = {}

    def get(self, name: str, shape: tuple) -> np.ndarray:
        size = int(np.prod(shape))
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype=np.float32)
        return buffer[:size].reshape(shape)


def _draw_tracks(
    rng: np.random.Generator, cos: np.ndarray, prior: np.ndarray, sharpness: float, n, max_length: int, scratch
):
    """Each row's session: Gumbel top-k, ``n`` distinct tracks drawn with probability ∝
    exp(prior + sharpness * cos) (``cos (A, items)``), in random order, padded to ``max_length``.
    Returns (picked ``(A, max_length)``, taken: the real slots, the picked tracks' cosines)."""
    keys = rng.random(dtype=np.float32, out=scratch.get("keys", cos.shape))
    with np.errstate(divide="ignore"):  # a uniform draw of exactly 0 gives a key of -inf
        for op in (np.log, np.negative, np.log, np.negative):  # Gumbel noise: -log(-log(u))
            op(keys, out=keys)
    base = np.multiply(cos, np.float32(sharpness), out=scratch.get("base", cos.shape))
    np.add(prior, base, out=base)
    keys = np.add(base, keys, out=keys)  # prior + sharpness * cos + noise
    top = torch.from_numpy(keys).topk(max_length, dim=1).indices.numpy()  # by decreasing key
    taken = np.arange(max_length)[None] < n[:, None]
    shuffle = np.argsort(np.where(taken, rng.random(top.shape), 2.0), axis=1)
    picked = np.take_along_axis(top, shuffle, 1)
    return picked, taken, np.take_along_axis(cos, picked, 1)


def _add_streams(cols: dict, taken, users, picked, times, skipped, devices, sources) -> None:
    """Appends one session per row (``users``, ``devices``, ``sources``: one per row; the rest
    per slot) to the stream columns ``cols``, the slots of ``taken`` only."""
    per_row = [np.broadcast_to(x[:, None], picked.shape) for x in (users, devices, sources)]
    fields = ("users", "items", "times", "skipped", "devices", "sources")
    for name, value in zip(fields, (per_row[0], picked, times, skipped, per_row[1], per_row[2])):
        cols[name].append(value[taken])


def _log_of(cols: dict) -> ListeningLog:
    """The log of the generated streams ``cols`` (per field, a list of arrays), ordered by user
    and time."""
    c = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.lexsort((c["times"], c["users"]))
    return ListeningLog(
        users=c["users"][order].astype(np.int64),
        items=c["items"][order].astype(np.int64),
        times=c["times"][order].astype(np.float64),
        skipped=c["skipped"][order].astype(bool),
        devices=c["devices"][order].astype(np.int64),
        sources=c["sources"][order].astype(np.int64),
    )


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
    context_strength: float = 0.5,
    personal_context: float = 0.35,
    rare_context: float = 0.3,
    day_strength: float = 0.35,
    source_strength: float = 0.4,
    recency: float = 1.5,
    drift: Optional[float] = None,
    noise: float = 1.0,
    item_spread: float = 0.8,
    sharpness: float = 16.0,
    skip_bias: Optional[float] = None,
    skip_taste: float = 3.0,
    skip_rate: float = 0.35,
    engagement: float = 0.6,
    mean_length: float = 10.0,
    max_length: int = 20,
    time_habit: float = 12.0,
    device_habit: float = 3.0,
    source_habit: float = 2.0,
    source_stickiness: float = 0.6,
    start: str = "settled",
    burn_in_weeks: int = 6,
    home_pull: Optional[float] = None,
    seed: int = 0,
) -> Tuple[ListeningLog, np.ndarray]:
    """The log (``n_users`` users, Poisson(``sessions_per_user``) sessions each, at least 2, over
    ``days`` whole days) and the planted item vectors. Users are simulated together, one session
    index at a time.

    Steady state (``start``): with ``"settled"`` (the default) each user's long-term taste is
    pulled back towards their home taste (a sum of two topic centres) by ``home_pull`` at every
    session while it drifts (``drift``): a mean-reverting walk whose spread around home settles
    within ~1 / home_pull sessions. Tastes start at home and ``burn_in_weeks`` weeks are
    simulated before the log's first day and dropped, so that every period of the log --
    training, validation, test -- comes from one regime (the cosine of consecutive sessions
    stays within 0.66-0.67 over the 60 days at 1,000 users). ``"topics"`` is this generator's
    earlier log, bit for bit: no pull (the tastes drift away from the topics for the whole log:
    that cosine falls from 0.73 to 0.64 over 60 days and settles only after ~100 days), no
    burn-in. ``drift`` and ``home_pull`` default to the start's values (``STARTS``), calibrated
    so that the settled log's Table 2 baselines are the paper's (``seqrec cosernn stats``).

    Context: ``context_strength`` scales the offsets of the time of day and device shared by
    all users, ``personal_context`` the users' own (relative to the shared), ``rare_context`` how
    much larger the personal offsets and the noise of rarer contexts are, ``day_strength`` the
    weekend / weekday offsets; ``source_strength`` how far a stream source pulls the intent.
    Habits: Dirichlet concentrations of each user's time of day, device and source shares around
    the global ones (smaller = more varied users); ``source_stickiness``: the chance that a
    session keeps the previous one's source. Skips: ``skip_rate`` is about the share of skipped
    streams; ``skip_bias`` the cosine to the intent below which skips become likely (None: the
    mean cosine of the tracks drawn at that step);
    ``skip_taste`` the weight of the distance to the long-term taste."""
    if days < 1 or n_users < 1 or n_items < max_length:
        raise ValueError(f"synthetic_listening: need days >= 1, n_users >= 1, n_items >= {max_length}")
    if start not in STARTS or burn_in_weeks < 0:
        raise ValueError(f"synthetic_listening: start must be one of {tuple(STARTS)} and burn_in_weeks >= 0")
    drift = STARTS[start]["drift"] if drift is None else drift
    home_pull = STARTS[start]["home_pull"] if home_pull is None else home_pull
    burn_in = 7 * burn_in_weeks if start == "settled" else 0  # whole weeks: the weekdays stay
    sessions_per_user *= (days + burn_in) / days
    days += burn_in
    rng = np.random.default_rng(seed)
    U = n_users
    noise_dim = 1.0 / np.sqrt(dim)
    topics, item_vectors, log_pop = _item_space(rng, n_items, n_topics, dim, item_spread)
    log_pop -= log_pop.mean()

    time_p = _shares(TIME_SHARES, 6)
    device_p = device_shares(n_devices)
    source_p = _shares(SOURCE_SHARES, n_sources)
    # shared offsets (what a context means to everyone) and how rare each level is
    rare_time = 1.0 + rare_context * _rarity(time_p)
    rare_device = 1.0 + rare_context * _rarity(device_p)
    # a rare context means less of the same to everyone, and more of one's own
    shared_time = topics[rng.integers(0, n_topics, 6)] / rare_time[:, None]
    shared_device = topics[rng.integers(0, n_topics, n_devices)] / rare_device[:, None]
    weekend_vec = _unit(rng.standard_normal(dim))
    shared_day = np.stack([-0.3 * weekend_vec] * 5 + [weekend_vec] * 2)  # Mon-Fri, Sat, Sun
    # editorial / charts: a shared direction that changes every week
    n_weeks = days // 7 + 2
    charts = _unit(topics[rng.integers(0, n_topics, n_weeks)] + 0.5 * rng.standard_normal((n_weeks, dim)) * noise_dim)

    n_sessions = np.maximum(2, rng.poisson(sessions_per_user, U))
    K = int(n_sessions.max())
    taste = _unit(topics[rng.integers(0, n_topics, (U, 2))].sum(1) + 0.3 * rng.standard_normal((U, dim)) * noise_dim)
    home = taste.copy()
    personal_time = (personal_context * rare_time[None, :, None] * topics[rng.integers(0, n_topics, (U, 6))]).astype(
        np.float32
    )
    personal_device = (
        personal_context * rare_device[None, :, None] * topics[rng.integers(0, n_topics, (U, n_devices))]
    ).astype(np.float32)
    personal_weekend = (personal_context * _unit(rng.standard_normal((U, dim)))).astype(np.float32)

    user_time = rng.dirichlet(time_habit * time_p, U)
    user_device = rng.dirichlet(device_habit * device_p, U)
    user_source = rng.dirichlet(source_habit * source_p, U)
    user_skip = rng.normal(0.0, 0.7, U)  # personal skip propensity (logit)
    # session start times: a habitual part of the day on a random day (sorted per user; sessions
    # past a user's count are dropped), at least 30 minutes after the previous session ends
    part = _categorical(rng, user_time, K)
    part_sizes = np.array([len(p) for p in TIME_PARTS])
    hour_table = np.array([list(p) + [p[0]] * (5 - len(p)) for p in TIME_PARTS])
    hour = hour_table[part, (rng.random(part.shape) * part_sizes[part]).astype(np.int64)]
    day = rng.integers(0, days, (U, K))
    starts = day * 86400.0 + hour * 3600.0 + rng.uniform(0, 3600, (U, K))
    starts = np.sort(np.where(np.arange(K)[None] < n_sessions[:, None], starts, np.inf), axis=1)
    # lengths: 1 + negative binomial (mean ``mean_length``), at most ``max_length``
    r = 2.0
    lengths = np.minimum(1 + rng.negative_binomial(r, r / (r + max(mean_length - 1, 1e-3)), (U, K)), max_length)
    devices = _categorical(rng, user_device, K)
    fresh_sources = _categorical(rng, user_source, K)
    keep_source = rng.random((U, K)) < source_stickiness

    # how each source mixes the parts of the intent: (taste, recency, charts, noise, popularity)
    mix = np.ones((n_sources, 5))
    if n_sources >= 3:
        mix[0] = (1.0 + source_strength, 1.0, 0.0, 1.0 - 0.5 * source_strength, 1.0)
        mix[1] = (1.0, 1.0, 2.5 * source_strength, 1.0, 1.0 + source_strength)
        mix[2] = (1.0, 1.0 + 2.0 * source_strength, 0.0, 1.0, 1.0)
    elif n_sources == 2:
        mix[1] = (1.0, 1.0, 2.5 * source_strength, 1.0, 1.0 + source_strength)
    mix = mix.astype(np.float32)

    intent = taste.copy()
    source = fresh_sources[:, 0].copy()
    vectors32, log_pop32 = item_vectors.astype(np.float32), log_pop.astype(np.float32)
    previous_end = np.full(U, -np.inf)
    scratch = _Scratch()
    rows = np.arange(U)
    cols = {k: [] for k in ("users", "items", "times", "skipped", "devices", "sources")}
    skip_base = np.log(skip_rate / (1.0 - skip_rate))
    for k in range(K):
        a = rows[n_sessions > k]  # users with a k-th session
        n_a = len(a)
        start = np.maximum(starts[a, k], previous_end[a] + 1800.0)
        h = (start // 3600).astype(np.int64) % 24
        tp = time_part(h)
        weekday = ((start // 86400).astype(np.int64)) % 7  # day 0 is a Monday
        dev = devices[a, k]
        if k > 0:
            source[a] = np.where(keep_source[a, k], source[a], fresh_sources[a, k])
        src = source[a]
        m = mix[src]
        pulled = taste[a] + home_pull * (home[a] - taste[a]) if home_pull else taste[a]
        taste[a] = _unit(pulled + drift * rng.standard_normal((n_a, dim)) * noise_dim)
        week = np.minimum((start // (7 * 86400)).astype(np.int64), n_weeks - 1)
        context = context_strength * (
            shared_time[tp] + personal_time[a, tp] + shared_device[dev] + personal_device[a, dev]
        ) + day_strength * (shared_day[weekday] + personal_weekend[a] * (weekday >= 5)[:, None])
        rare = np.maximum(rare_time[tp], rare_device[dev])
        spread = noise * rare
        intent[a] = _unit(
            m[:, 0:1] * taste[a]
            + context
            + recency * m[:, 1:2] * intent[a]
            + m[:, 2:3] * charts[week]
            + (spread[:, None] * m[:, 3:4]) * rng.standard_normal((n_a, dim)) * noise_dim
        )
        cos = np.matmul(intent[a].astype(np.float32), vectors32.T, out=scratch.get("cos", (n_a, n_items)))
        n = lengths[a, k]
        # rarer contexts: more noise and less weight on the charts' favourites (more diverse)
        prior = np.multiply(
            (m[:, 4] / rare)[:, None].astype(np.float32), log_pop32, out=scratch.get("prior", cos.shape)
        )
        picked, taken, c = _draw_tracks(rng, cos, prior, sharpness, n, max_length, scratch)
        c_taste = vectors32[picked] @ taste[a].astype(np.float32)[:, :, None]
        c_taste = c_taste[..., 0]
        centre = c[taken].mean() if skip_bias is None else skip_bias
        # an engaged listener skips what is far from the intent and from their taste; a passive
        # one rarely skips, whatever plays
        engaged = rng.random(n_a) < engagement
        far = 8.0 * (centre - c) + skip_taste * (c_taste[taken].mean() - c_taste)
        logit = skip_base + user_skip[a, None] + np.where(engaged[:, None], far, 0.2 * far - 1.5)
        skipped = rng.random(picked.shape) < 1.0 / (1.0 + np.exp(-logit))
        times = EPOCH_MONDAY + start[:, None] + 180.0 * np.arange(max_length)[None]
        previous_end[a] = start + 180.0 * n
        _add_streams(cols, taken, a, picked, times, skipped, dev, src)
    log = _log_of(cols)
    if burn_in:  # drop the burn-in's sessions whole and move the log back to day 0 (a Monday)
        keep = _sessions_starting_after(log, EPOCH_MONDAY + burn_in * 86400.0)
        log = ListeningLog(
            **{f.name: getattr(log, f.name)[keep] for f in dataclasses.fields(ListeningLog)},
        )
        log.times -= burn_in * 86400.0
    return log, item_vectors.astype(np.float32)


def _sessions_starting_after(log: ListeningLog, cutoff: float) -> np.ndarray:
    """The indices of the streams of ``log`` (ordered by user and time, as ``_log_of`` makes it)
    whose session -- streams less than ``SESSION_GAP`` apart -- starts at or after ``cutoff``."""
    _, starts = split_at_gaps(log.users, log.times, SESSION_GAP)
    session_start = np.maximum.accumulate(np.where(starts, np.arange(len(log)), 0))
    return np.flatnonzero(log.times[session_start] >= cutoff)


def strong_context_listening(
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
    """The earlier, uncalibrated generator, kept for tests that need structure a small model
    learns in seconds: each (time of day x device) context shifts the intent by a large offset,
    so the same-context baselines beat the any-context ones (the reverse of the paper); near-uniform
    devices and sources, sources and days of week without effect. Same arguments and return
    value as `synthetic_listening` for the parameters they share."""
    if days < 1 or n_users < 1 or n_items < max_length:
        raise ValueError(f"strong_context_listening: need days >= 1, n_users >= 1, n_items >= {max_length}")
    rng = np.random.default_rng(seed)
    U = n_users
    topics, item_vectors, log_pop = _item_space(rng, n_items, n_topics, dim, item_spread)
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
    scratch = _Scratch()
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
        cos = np.matmul(intent[a].astype(np.float32), vectors32.T, out=scratch.get("cos", (len(a), n_items)))
        n = lengths[a, k]
        picked, taken, c = _draw_tracks(rng, cos, log_pop32, sharpness, n, max_length, scratch)
        p_skip = 1.0 / (1.0 + np.exp(10.0 * (c - skip_bias)))
        skipped = rng.random(picked.shape) < p_skip
        times = EPOCH_MONDAY + start[:, None] + 180.0 * np.arange(max_length)[None]
        previous_end[a] = start + 180.0 * n
        _add_streams(cols, taken, a, picked, times, skipped, devices[a, k], sources[a, k])
    return _log_of(cols), item_vectors.astype(np.float32)


# the generated logs by their data-set names on the command line: the calibrated log, and the one
# with strong planted context and sequence structure (``strong_context_listening``)
SYNTHETIC_LOGS = {"synthetic": synthetic_listening, "synthetic-strong": strong_context_listening}
