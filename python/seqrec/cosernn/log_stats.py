"""The statistics of a listening log that Hansen et al. (RecSys 2020) report about their Spotify
data (sections 3 and 4, and the cosines of the simple baselines of Table 2), computed for any
log, with the paper's numbers beside them where it gives one:

* scale: sessions per user (paper: 220 over two months), tracks per session (paper: 10 on
  average, before the cap of 10), skip rate (the paper gives no overall number);
* 4.1, context distribution: shares of the six times of day and of the devices (paper: 53.6% of
  sessions in the afternoon and evening, 88.3% on mobile, 8.6% on desktop), the share of users
  with a session in each context (paper: 76.5% for the night);
* 4.2, diversity per context: pairwise cosines of the tracks streamed in each context (paper:
  minority contexts, such as early morning, night and non-mobile devices, are more diverse);
* 4.3, session similarity and context: for each session its nearest other session of the same
  user; how much more often it shares the session's context than a random session of the user
  does (paper: a positive diagonal); also the mean cosine between a user's sessions in the same
  and in different contexts, and between consecutive sessions;
* how much of a session's deviation from its user's mean the context explains (share of variance
  of the shared per-level means: time of day, device, day of week, stream source);
* steady state: the cosine of consecutive sessions in each third of the log's time span (a
  trend means the log's regime changes between the training and the test period);
* 4.4, skips against the user-session cosine (the user as the mean of their earlier sessions):
  Pearson correlation and regression slope over the sessions with at least k skips (paper:
  negative, and more so as k grows);
* Table 2's simple baselines on the last 14 days (the paper's test period): the cosine of "Last"
  and "Avg" (weights t'), any and same context, and of "Oracle half" (paper: the any-context
  baselines ahead, 0.6527 against 0.5990 and 0.6797 against 0.6609).

Track vectors: the synthetic generator's planted ones, or, for a real log, any unit-norm item
space, such as the word2vec vectors the training pipeline learns (``--item-vectors word2vec``).

    seqrec cosernn stats --dataset synthetic --synthetic-users 2000 [--data-seed S]
    seqrec cosernn stats --dataset log.tsv
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ..offline import split_at_gaps
from .listening import SESSION_GAP, ListeningLog, ListeningSessions

# the paper's six times of day (section 4.1); it leaves 8-9 pm out ("evening (5pm-8pm)", "late
# evening (9pm-1am)"): read here as part of the evening
TIME_CONTEXTS = ("night", "early morning", "morning", "afternoon", "evening", "late evening")
_HOUR_TO_TIME = np.array([5] + [0] * 5 + [1] * 3 + [2] * 3 + [3] * 5 + [4] * 4 + [5] * 3)
# device ids of the synthetic log: 0 mobile, 1 desktop, then speaker, web, tablet (or one "other")
DEVICES_5 = ("mobile", "desktop", "speaker", "web", "tablet")
DEVICES_3 = ("mobile", "desktop", "other")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Hansen et al., RecSys 2020: section 3 (scale), 4.1 (contexts), Table 2 (baselines' cosine)
PAPER = {
    "sessions per user": 220.0,
    "tracks per session": 10.0,
    "afternoon + evening share": 0.536,
    "users with a night session": 0.765,
    "mobile share": 0.883,
    "desktop share": 0.086,
    "other devices share": 1.0 - 0.883 - 0.086,
    "Last, any cxt": 0.6527,
    "Last, same cxt": 0.5990,
    "Avg, any cxt": 0.6797,
    "Avg, same cxt": 0.6609,
    "Oracle half": 0.7077,
    "Last, any cxt MRR@20": 0.1721,
    "Last, same cxt MRR@20": 0.2094,
    "Avg, any cxt MRR@20": 0.1835,
    "Avg, same cxt MRR@20": 0.2087,
    "Last, any cxt Rank@20": 10.0767,
    "Last, same cxt Rank@20": 9.3128,
    "Avg, any cxt Rank@20": 10.0882,
    "Avg, same cxt Rank@20": 9.3365,
}


def time_context(hours: np.ndarray) -> np.ndarray:
    """The paper's six times of day (index into `TIME_CONTEXTS`) of hours in [0, 24)."""
    return _HOUR_TO_TIME[np.asarray(hours, dtype=np.int64)]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _session_means(vectors: np.ndarray, items: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Normalised mean item vector per session over ``mask`` (zero when empty), float64."""
    total = np.zeros((len(items), vectors.shape[1]))
    for j in range(items.shape[1]):
        m = mask[:, j]
        total[m] += vectors[items[m, j]]
    return _unit_rows(total)


def _hours_days(sessions: ListeningSessions):
    hours = sessions.hours if sessions.hours is not None else (sessions.starts // 3600).astype(np.int64) % 24
    if sessions.days_of_week is not None:
        days = sessions.days_of_week
    else:  # 1970-01-01 was a Thursday; Monday = 0 (as the training features)
        days = ((sessions.starts // 86400).astype(np.int64) + 3) % 7
    return np.asarray(hours, dtype=np.int64), np.asarray(days, dtype=np.int64)


def _exclusive_group_cumsum(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Per row, the sum of ``values`` over the earlier rows of its group (rows sorted by group;
    ``group_start[i]``: index of the first row of row i's group)."""
    cs = np.cumsum(values, axis=0)
    before = cs - values
    return before - before[group_start]


def _pearson_slope(x: np.ndarray, y: np.ndarray):
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan"), float("nan"), len(x)
    r = float(np.corrcoef(x, y)[0, 1])
    slope = float(np.cov(x, y, bias=True)[0, 1] / x.var())
    return r, slope, len(x)


def listening_stats(
    sessions: ListeningSessions,
    item_vectors: np.ndarray,
    *,
    log: Optional[ListeningLog] = None,
    eval_days: float = 14.0,
    max_users: int = 2000,
    pairs_per_context: int = 20000,
    seed: int = 0,
) -> Dict[str, object]:
    """The statistics above as a dict. ``item_vectors[i]``: the vector of item id ``i`` (a zero
    row for items without one); ``log``: the raw log, for the track counts before the cap of 10
    per session. The per-user analyses (4.3) and the pairwise cosines (4.2) use a random sample
    of ``max_users`` users and of ``pairs_per_context`` pairs."""
    rng = np.random.default_rng(seed)
    vectors = np.asarray(item_vectors, dtype=np.float64)
    if sessions.items.max() >= len(vectors):
        raise ValueError(f"item ids go up to {int(sessions.items.max())}, item vectors cover {len(vectors)}")
    items = sessions.items
    known = (items >= 0) & (np.linalg.norm(vectors, axis=1)[np.maximum(items, 0)] > 0)
    skipped = sessions.skipped & (items >= 0)
    safe = np.maximum(items, 0)
    s_all = _session_means(vectors, safe, known)
    s_pos = _session_means(vectors, safe, known & ~skipped)
    has_all, has_pos = known.any(1), (known & ~skipped).any(1)
    users = sessions.users
    S = len(users)
    offsets = sessions.user_offsets()
    n_per_user = np.diff(offsets)
    U = len(n_per_user)
    user_index = np.repeat(np.arange(U), n_per_user)
    position = np.arange(S) - offsets[user_index]  # 0-based index of the session in its user's sequence
    hours, days = _hours_days(sessions)
    tod = time_context(hours)
    devices, sources = sessions.devices, sessions.sources
    n_devices = int(devices.max()) + 1
    eval_context = (hours // 6) * n_devices + devices  # the evaluation's "same context"

    out: Dict[str, object] = {}
    # ---- scale ----
    lengths = (items >= 0).sum(1)
    out["users"], out["sessions"] = U, S
    out["sessions per user"] = float(n_per_user.mean())
    out["sessions per user (median)"] = float(np.median(n_per_user))
    if log is not None:
        _, starts = split_at_gaps(log.users, log.times, SESSION_GAP)
        out["streams"] = len(log)
        out["tracks per session"] = float(len(log) / starts.sum())
        out["skip rate (all streams)"] = float(log.skipped.mean())
    out["tracks per session (first 10 kept)"] = float(lengths.mean())
    out["skip rate (kept streams)"] = float(skipped.sum() / max(lengths.sum(), 1))
    out["sessions without a played track"] = float(1.0 - has_pos.mean())
    # ---- 4.1: contexts ----
    out["time of day shares"] = dict(zip(TIME_CONTEXTS, np.bincount(tod, minlength=6) / S))
    out["afternoon + evening share"] = float(np.isin(tod, (3, 4)).mean())
    seen_tod = np.zeros((U, 6), bool)
    seen_tod[user_index, tod] = True
    out["users with a session in each time of day"] = dict(zip(TIME_CONTEXTS, seen_tod.mean(0)))
    out["users with a night session"] = float(seen_tod[:, 0].mean())
    names = DEVICES_5 if n_devices == 5 else DEVICES_3 if n_devices == 3 else [str(d) for d in range(n_devices)]
    device_share = np.bincount(devices, minlength=n_devices) / S
    out["device shares"] = dict(zip(names, device_share))
    out["mobile share"] = float(device_share[0])
    if n_devices > 1:
        out["desktop share"] = float(device_share[1])
        out["other devices share"] = float(device_share[2:].sum())
    seen_dev = np.zeros((U, n_devices), bool)
    seen_dev[user_index, devices] = True
    out["users with a non-mobile session"] = float(seen_dev[:, 1:].any(1).mean()) if n_devices > 1 else 0.0
    out["day of week shares"] = dict(zip(WEEKDAYS, np.bincount(days, minlength=7) / S))
    out["stream source shares"] = {str(k): v for k, v in enumerate(np.bincount(sources) / S)}
    prev_same_source = (position > 0) & (sources == np.r_[-1, sources[:-1]])
    out["next session keeps the stream source"] = float(prev_same_source[position > 0].mean())

    # ---- 4.2: diversity of the tracks in each context (random pairs of streams) ----
    stream_rows, stream_cols = np.nonzero(known)
    stream_items = items[stream_rows, stream_cols]

    def pair_cosines(select: np.ndarray):
        idx = np.flatnonzero(select[stream_rows])
        if len(idx) < 2:
            return None
        a, b = rng.choice(idx, pairs_per_context), rng.choice(idx, pairs_per_context)
        keep = a != b
        cos = (vectors[stream_items[a[keep]]] * vectors[stream_items[b[keep]]]).sum(1)
        q1, med, q3 = np.percentile(cos, (25, 50, 75))
        return {"mean": float(cos.mean()), "median": float(med), "IQR": float(q3 - q1)}

    out["track pair cosine by time of day"] = {n: pair_cosines(tod == k) for k, n in enumerate(TIME_CONTEXTS)}
    out["track pair cosine by device"] = {n: pair_cosines(devices == k) for k, n in enumerate(names)}

    # ---- 4.3: nearest session of the same user, and same- vs different-context pairs ----
    sample = rng.permutation(U)[: min(max_users, U)]
    lift_t = np.zeros((6, 6))
    rand_t = np.zeros((6, 6))
    lift_d = np.zeros((n_devices, n_devices))
    rand_d = np.zeros((n_devices, n_devices))
    same_sum = diff_sum = 0.0
    same_n = diff_n = 0
    for u in sample:
        lo, hi = offsets[u], offsets[u + 1]
        ok = np.arange(lo, hi)[has_all[lo:hi]]
        if len(ok) < 3:
            continue
        x = s_all[ok]
        sims = x @ x.T
        n = len(ok)
        c = eval_context[ok]
        same = c[:, None] == c[None, :]
        off = ~np.eye(n, dtype=bool)
        same_sum += sims[same & off].sum()
        same_n += int((same & off).sum())
        diff_sum += sims[~same].sum()
        diff_n += int((~same).sum())
        np.fill_diagonal(sims, -np.inf)
        target = sims.argmax(1)
        for ctx, lift, rand, k in ((tod[ok], lift_t, rand_t, 6), (devices[ok], lift_d, rand_d, n_devices)):
            np.add.at(lift, (ctx, ctx[target]), 1.0)
            counts = np.bincount(ctx, minlength=k).astype(float)
            # a uniformly random other session of the user: the counts less the source itself
            others = (counts[None, :] - np.eye(k)[ctx]) / (n - 1)
            np.add.at(rand, ctx, others)

    def lift_matrix(lift, rand):
        rows = lift.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (lift - rand) / rows

    mt, md = lift_matrix(lift_t, rand_t), lift_matrix(lift_d, rand_d)
    out["nearest-session lift, time of day"] = mt
    out["nearest-session lift, device"] = md
    out["nearest-session lift, time of day diagonal"] = float(np.nanmean(np.diag(mt)))
    out["nearest-session lift, device diagonal"] = float(np.nanmean(np.diag(md)))
    out["cosine of a user's sessions, same context"] = same_sum / max(same_n, 1)
    out["cosine of a user's sessions, different context"] = diff_sum / max(diff_n, 1)

    # consecutive sessions (s+), same or different context
    first = position == 0
    both = ~first & has_pos & np.r_[False, has_pos[:-1]]
    cons = np.r_[0.0, (s_pos[1:] * s_pos[:-1]).sum(1)]
    same_ctx = np.r_[False, eval_context[1:] == eval_context[:-1]]
    out["consecutive sessions cosine"] = float(cons[both].mean()) if both.any() else float("nan")
    out["consecutive sessions cosine, same context"] = float(cons[both & same_ctx].mean())
    out["consecutive sessions cosine, different context"] = float(cons[both & ~same_ctx].mean())
    out["consecutive sessions in the same context"] = float(same_ctx[both].mean())
    # steady state: the same cosine in each third of the log's time span (a drifting generator,
    # or a log whose regime changes, shows a trend)
    span = np.linspace(sessions.starts.min(), sessions.starts.max() + 1.0, 4)
    third = np.searchsorted(span, sessions.starts, side="right") - 1
    day0 = sessions.starts.min()
    out["consecutive sessions cosine by third of the log"] = {
        f"days {(span[k] - day0) / 86400:.0f}-{(span[k + 1] - day0) / 86400:.0f}": (
            float(cons[both & (third == k)].mean()) if (both & (third == k)).any() else None
        )
        for k in range(3)
    }

    # ---- share of the within-user variance of s+ explained by each context variable ----
    pos_idx = np.flatnonzero(has_pos)
    user_sum = np.zeros((U, vectors.shape[1]))
    np.add.at(user_sum, user_index[pos_idx], s_pos[pos_idx])
    user_n = np.bincount(user_index[pos_idx], minlength=U)
    multi = pos_idx[user_n[user_index[pos_idx]] >= 2]
    resid = s_pos[multi] - user_sum[user_index[multi]] / user_n[user_index[multi], None]
    total = (resid**2).sum()
    explained = {}
    for name, level in (
        ("time of day", tod),
        ("device", devices),
        ("day of week", days),
        ("stream source", sources),
        ("evaluation context", eval_context),
    ):
        lv = level[multi]
        k = int(lv.max()) + 1
        sums = np.zeros((k, resid.shape[1]))
        np.add.at(sums, lv, resid)
        counts = np.bincount(lv, minlength=k)
        means = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
        explained[name] = float((counts * (means**2).sum(1)).sum() / total) if total > 0 else float("nan")
    out["variance explained (shared level means)"] = explained

    # ---- 4.4: skip rate against the cosine to the user's mean earlier session ----
    group_start = offsets[user_index]
    before = _exclusive_group_cumsum(s_all * has_all[:, None], group_start)
    user_vec = _unit_rows(before)
    cos_user = (user_vec * s_all).sum(1)
    n_skips = skipped.sum(1)
    rate = n_skips / np.maximum(lengths, 1)
    valid = ~first & has_all & (np.linalg.norm(before, axis=1) > 0)
    out["skip rate vs user-session cosine"] = {
        k: _pearson_slope(cos_user[valid & (n_skips >= k)], rate[valid & (n_skips >= k)]) for k in range(0, 6)
    }

    # ---- Table 2's simple baselines on the last eval_days (cosine to s+) ----
    out.update(_baselines(sessions, position, s_pos, has_pos, eval_context, vectors, known & ~skipped, eval_days, rng))
    return out


def _baselines(sessions, position, s_pos, has_pos, context, vectors, played, eval_days, rng) -> Dict[str, object]:
    """Cosines of "Last" / "Avg" (any / same context) and "Oracle half" over the sessions of the
    last ``eval_days`` with a played track and an earlier one; the history is the user's earlier
    sessions with a played track, weighted by their 1-based position (as the evaluation)."""
    idx = np.flatnonzero(has_pos)  # the history and the targets: sessions with a played track
    users, ctx, vec = sessions.users[idx], context[idx], s_pos[idx]
    weight = (position[idx] + 1.0)[:, None]
    new_user = np.r_[True, users[1:] != users[:-1]]
    start_any = np.maximum.accumulate(np.where(new_user, np.arange(len(idx)), 0))
    last_any = np.where(new_user[:, None], 0.0, np.r_[np.zeros((1, vec.shape[1])), vec[:-1]])
    avg_any = _exclusive_group_cumsum(weight * vec, start_any)
    # same context: the same sums within (user, context) groups, in time order
    order = np.lexsort((np.arange(len(idx)), ctx, users))
    u_o, c_o = users[order], ctx[order]
    new_group = np.r_[True, (u_o[1:] != u_o[:-1]) | (c_o[1:] != c_o[:-1])]
    start_grp = np.maximum.accumulate(np.where(new_group, np.arange(len(idx)), 0))
    v_o = vec[order]
    last_same = np.empty_like(vec)
    last_same[order] = np.where(new_group[:, None], 0.0, np.r_[np.zeros((1, vec.shape[1])), v_o[:-1]])
    avg_same = np.empty_like(vec)
    avg_same[order] = _exclusive_group_cumsum(weight[order] * v_o, start_grp)
    has_same = np.empty(len(idx), bool)
    has_same[order] = ~new_group
    last_same = np.where(has_same[:, None], last_same, last_any)  # no earlier session in the context: any
    avg_same = np.where(has_same[:, None], avg_same, avg_any)
    cut = sessions.starts.max() - eval_days * 86400.0
    target = (sessions.starts[idx] > cut) & ~new_user
    # oracle half: a random half (rounded up) of the played tracks
    keys = np.where(played, rng.random(played.shape), 2.0)
    rank = keys.argsort(1).argsort(1)
    half = played & (rank < (played.sum(1, keepdims=True) + 1) // 2)
    oracle = _session_means(vectors, np.maximum(sessions.items, 0), half)[idx]
    # session ranking (K = 20): the target among itself and the 19 sessions before it
    K = 20
    new_user_pos = np.flatnonzero(new_user)
    n_before = np.arange(len(idx)) - new_user_pos[np.searchsorted(new_user_pos, np.arange(len(idx)), "right") - 1]
    ranked = np.flatnonzero(target & (n_before >= K - 1))
    window = ranked[:, None] - np.arange(K - 1, -1, -1)[None, :]  # the target last
    out = {"baseline sessions": int(target.sum()), "session-ranking sessions (K=20)": len(ranked)}
    for name, pred in (
        ("Last, any cxt", last_any),
        ("Last, same cxt", last_same),
        ("Avg, any cxt", avg_any),
        ("Avg, same cxt", avg_same),
    ):
        if not len(ranked):
            break
        scores = np.einsum("nkd,nd->nk", vec[window], _unit_rows(pred[ranked]))
        mine = scores[:, -1:]
        rank = 1.0 + (scores[:, :-1] > mine).sum(1) + 0.5 * (scores[:, :-1] == mine).sum(1)
        out[f"{name} MRR@20"] = float((1.0 / rank).mean())
        out[f"{name} Rank@20"] = float(rank.mean())
    for name, pred in (
        ("Last, any cxt", last_any),
        ("Last, same cxt", last_same),
        ("Avg, any cxt", avg_any),
        ("Avg, same cxt", avg_same),
        ("Oracle half", oracle),
    ):
        out[name] = float((_unit_rows(pred[target]) * vec[target]).sum(1).mean()) if target.any() else float("nan")
    return out


# ---- printing ----


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def format_stats(stats: Dict[str, object]) -> str:
    """The statistics as Markdown: a table of the single numbers with the paper's beside them,
    then the per-context breakdowns."""
    lines = ["| Statistic | This log | Paper |", "|---|---:|---:|"]
    for key, value in stats.items():
        if isinstance(value, (int, float, np.floating, np.integer)):
            paper = PAPER.get(key)
            lines.append(
                f"| {key} | {_fmt(float(value) if isinstance(value, np.floating) else value)} | "
                f"{'' if paper is None else _fmt(paper)} |"
            )
    lines.append("")
    for key, value in stats.items():
        if isinstance(value, dict) and key != "skip rate vs user-session cosine":
            parts = []
            for k, v in value.items():
                if isinstance(v, dict):
                    parts.append(f"{k} " + "/".join(f"{x:.3f}" for x in v.values()))
                elif v is None:
                    parts.append(f"{k} -")
                else:
                    parts.append(f"{k} {float(v):.3f}")
            unit = " (mean/median/IQR)" if key.startswith("track pair") else ""
            lines.append(f"* {key}{unit}: " + ", ".join(parts))
    skip = stats.get("skip rate vs user-session cosine")
    if skip:
        lines.append(
            "* skip rate vs user-session cosine, sessions with >= k skips (k: r / slope / sessions; paper: "
            "negative, decreasing with k): "
            + ", ".join(f"{k}: {r:+.3f} / {s:+.3f} / {n}" for k, (r, s, n) in skip.items())
        )
    for key, labels in (
        ("nearest-session lift, time of day", TIME_CONTEXTS),
        ("nearest-session lift, device", list(stats.get("device shares", {}))),
    ):
        m = stats.get(key)
        if m is None:
            continue
        lines += [
            "",
            f"{key} (P(nearest session's context | session's) minus the same for a random session of "
            "the user; rows: the session's context; paper: positive diagonal):",
            "",
        ]
        lines.append("| | " + " | ".join(labels) + " |")
        lines.append("|---|" + "---:|" * len(labels))
        for label, row in zip(labels, m):
            lines.append(f"| {label} | " + " | ".join("-" if np.isnan(x) else f"{x:+.3f}" for x in row) + " |")
    return "\n".join(lines)


# ---- command line ----


def add_stats_parser(subparsers) -> None:
    """``seqrec cosernn stats``: register the subcommand on the ``cosernn`` subparsers."""
    s = subparsers.add_parser("stats", help="the paper's section 4 statistics of a listening log")
    s.add_argument("--dataset", required=True, help="a listening-log TSV or 'synthetic' (or another built-in log)")
    s.add_argument("--synthetic-users", type=int, default=None, help="users of the synthetic log (default 10000)")
    s.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic log")
    s.add_argument(
        "--item-vectors",
        default=None,
        choices=["planted", "word2vec"],
        help="track vectors for the similarities (default: planted for the synthetic log, word2vec otherwise)",
    )
    s.add_argument("--seed", type=int, default=0, help="seed of word2vec and of the sampling")
    s.add_argument("--max-users", type=int, default=2000, help="users sampled for the per-user analyses")
    s.add_argument("--eval-days", type=float, default=14.0, help="the baselines are scored on the last N days")


def cmd_stats(args) -> int:
    from .datasets import load_listening

    try:
        sessions, planted, log = load_listening(args.dataset, args.synthetic_users, args.data_seed)
    except ValueError as err:
        raise SystemExit(f"--dataset {err}") from None
    mode = args.item_vectors or ("planted" if planted is not None else "word2vec")
    if mode == "planted":
        if planted is None:
            raise SystemExit("--item-vectors planted: only the synthetic data set has planted vectors")
        vectors = planted
    else:
        from .item_embeddings import session_item_vectors

        ids = np.unique(sessions.items[sessions.items >= 0])
        learned = session_item_vectors(sessions.items, ids, seed=args.seed)
        vectors = np.zeros((int(ids.max()) + 1, learned.shape[1]), dtype=np.float32)
        vectors[ids] = learned
    stats = listening_stats(
        sessions, vectors, log=log, eval_days=args.eval_days, max_users=args.max_users, seed=args.seed
    )
    print(f"{args.dataset}: {sessions.n_sessions} sessions, {mode} track vectors")
    print(format_stats(stats))
    return 0
