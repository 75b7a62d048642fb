"""CoSeRNN's evaluation (paper section 6.2) and the paper's simple baselines and
oracles (section 6.1). Every approach predicts a unit vector ``u_t`` per session from data up to
session ``t - 1`` (the oracles excepted); all are scored on the same sessions:

* mean cosine ``u_t . s+_t``;
* session ranking: rank ``s+_t`` among ``{s+_{t-K+1}, ..., s+_t}`` by cosine to ``u_t``
  (rank = 1 + number of the others scoring strictly higher + half the number tying, the
  expected rank under random tie-breaking, so a zero prediction ranks in the middle, not
  first); MRR and mean rank, K = 20, 50;
  sessions with fewer than K - 1 predecessors are skipped;
* track ranking: the candidates are the K distinct tracks the user streamed most recently
  before session ``t``; ranked by cosine to ``u_t`` (exact ties, which only a zero prediction
  produces, in recency order): average precision (mAP) and Recall@10, K = 25, 100, under two
  definitions of relevant: the candidates streamed in session ``t`` (played or skipped; the
  columns ``mAP@K``, ``Rec@10 (K)``) and the candidates played in it, not skipped (the paper's
  "tracks a user listens to", section 6.2.2; ``mAP@K (played)``, ``Rec@10 (K, played)``);
  sessions with fewer than K candidates or no relevant one are skipped (a short candidate list
  would make the task easier, and the numbers of different K incomparable).

Evaluated: the sessions with at least one played track (a target ``s+_t``) and at least one
earlier session of the same user (without history the baselines have nothing to predict
from); earlier sessions without a played track score 0 in session ranking.

``per_context_results`` breaks the metrics down by context (the paper's Fig. 5): the six times
of day and the devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .sequences import TIME_OF_DAY_NAMES, TRACK_KS, UserSequences, recent_tracks, split_context

SESSION_KS = (20, 50)
COLUMNS = (
    "Cosine",
    "MRR@20",
    "Rank@20",
    "MRR@50",
    "Rank@50",
    "mAP@25",
    "Rec@10 (25)",
    "mAP@100",
    "Rec@10 (100)",
    "mAP@25 (played)",
    "Rec@10 (25, played)",
    "mAP@100 (played)",
    "Rec@10 (100, played)",
)
# the two relevance definitions of track ranking: (key suffix, column suffixes of mAP and Rec@10)
_RELEVANCE = (("", "", ""), (" played", " (played)", ", played"))


def _normalize(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1)


# users per chunk of the evaluation and of the per-session predictions: memory grows with the
# chunk (its padded batch and predictions), not with the data set
CHUNK_USERS = 256


def _chunks(seqs, chunk_users: int):
    """The users in chunks of similar history length (shortest first): less padding."""
    return seqs.batch_indices(chunk_users, None, buckets=True)


def per_session(seqs, fn: Callable, chunk_users: int = CHUNK_USERS, dim: Optional[int] = None):
    """``fn(batch, ids)`` (``(B, T_b, ...)`` values of the padded batch ``seqs.select(index)``,
    ``ids`` its sessions' ``session_ids``; a tensor or a dict of them) stored per session in
    ``seqs``' layout: ``(U, T, ...)`` for ``UserSequences``, ``(S, ...)`` for
    ``SessionSequences``. Computed chunk by chunk; only the result is the data set's size."""
    out = None
    for index in _chunks(seqs, chunk_users):
        batch, ids = seqs.select(index), seqs.session_ids(index)
        values = fn(batch, ids)
        single = not isinstance(values, dict)
        values = {None: values} if single else values
        if out is None:
            out = {k: seqs.empty_like_sessions(*v.shape[2:], dtype=v.dtype) for k, v in values.items()}
        real = ids >= 0
        for k, v in values.items():
            out[k].view(-1, *v.shape[2:])[ids[real]] = v[real]
    if out is None:
        raise ValueError("no users")
    return out[None] if single else out


# ---- baselines (each (B, T, d) on a padded batch, causal: session t uses sessions < t) ----


def _exclusive(x: Tensor, fill=0) -> Tensor:
    """``x`` of step ``t - 1`` at step ``t`` (along dim 1), ``fill`` at ``t = 0``."""
    return torch.cat([torch.full_like(x[:, :1], fill), x[:, :-1]], 1)


def _running(seqs: UserSequences, values: Tensor, last: bool, same_context: bool) -> Tensor:
    """For every session, over the earlier sessions that have a played track (of the same
    context if ``same_context``, falling back to all earlier sessions when none shares it): the
    ``values`` of the last of them (``last``), or their sum weighted by the 1-based position
    ``t'`` (the long-term embedding's weights); normalised. Vectorised over the sessions: a
    running maximum of positions (last) or a cumulative sum in float64 (weighted), one per
    context present."""
    U, T, d = values.shape
    steps = torch.arange(T)
    has_pos = seqs.has_pos
    weighted = values.double() * (steps + 1).double()[None, :, None] if not last else None

    def before(member: Tensor) -> tuple[Tensor, Tensor]:
        """(the result over the earlier sessions of ``member``, whether there is one)."""
        if last:
            index = _exclusive(torch.where(member, steps[None, :], -1).cummax(1).values, -1)
            found = index >= 0
            picked = torch.gather(values, 1, index.clamp(min=0)[..., None].expand(U, T, d)).double()
            return picked * found[..., None], found
        total = _exclusive(torch.cumsum(weighted * member[..., None], 1))
        return total, _exclusive(member.long().cummax(1).values) > 0

    out, _ = before(has_pos)
    if same_context:
        for c in torch.unique(seqs.context[seqs.context >= 0]).tolist():
            here = seqs.context == c
            own, found = before(has_pos & here)
            use = here & found
            out = torch.where(use[..., None], own, out)
    return _normalize(out.float())


def _batch_baselines(batch: UserSequences, ids: Tensor, item_vectors: Tensor, item_counts: Tensor, seed: int):
    """The baselines and oracles of a padded batch (``ids``: its sessions' ids, unused: every
    prediction depends on the user's own sessions only)."""
    s_pos = batch.s_pos
    preds = {
        "Last, any cxt": _running(batch, s_pos, True, False),
        "Last, same cxt": _running(batch, s_pos, True, True),
        "Avg, any cxt": _running(batch, s_pos, False, False),
        "Avg, same cxt": _running(batch, s_pos, False, True),
    }
    # Popularity: s+ of the earlier session whose tracks are the most popular on average
    counts = item_counts.double()
    real = batch.items >= 0
    pop = (counts[batch.items.clamp(min=0)] * real).sum(-1) / real.sum(-1).clamp(min=1)
    pop = torch.where(batch.has_pos, pop, torch.full_like(pop, -1.0))
    best = torch.cummax(pop, dim=1).indices  # index of the most popular session up to t
    prev_best = torch.cat([torch.zeros_like(best[:, :1]), best[:, :-1]], 1)
    popular = torch.gather(s_pos, 1, prev_best[..., None].expand_as(s_pos)).clone()
    popular[:, 0] = 0
    preds["Popularity"] = popular
    # oracles: the session's own s+, and the mean of a random half of its tracks
    preds["Oracle half"] = _oracle_half(batch, item_vectors, seed)
    preds["Oracle full"] = s_pos.clone()
    return preds


def item_counts(seqs, n_items: int, split: int = 0, chunk: int = 1 << 20) -> Tensor:
    """``(n_items,)`` int64: the streams of each item in the sessions of ``split`` (the training
    period by default: Popularity's counts), counted ``chunk`` sessions at a time."""
    items, sessions = seqs.items.reshape(-1, seqs.items.shape[-1]), seqs.split.reshape(-1)
    counts = torch.zeros(n_items, dtype=torch.int64)
    for i in range(0, len(sessions), chunk):
        rows = items[i : i + chunk]
        chosen = rows[(sessions[i : i + chunk] == split)[:, None] & (rows >= 0)].long()
        counts += torch.bincount(chosen, minlength=n_items)
    return counts


def baseline_predictor(item_vectors: Tensor, item_counts: Tensor, *, seed: int = 0) -> Callable:
    """``fn(batch, ids)`` -> the baselines' and oracles' predictions of the batch (a dict), for
    ``per_session`` and ``evaluate_all``."""
    return lambda batch, ids: _batch_baselines(batch, ids, item_vectors, item_counts, seed)


def baseline_predictions(
    seqs, item_vectors: Tensor, item_counts: Tensor, *, seed: int = 0, chunk_users: int = CHUNK_USERS
) -> Dict[str, Tensor]:
    """The paper's baselines and oracles, per session in ``seqs``' layout (``per_session``).
    ``item_vectors``: the item space (dense ids); ``item_counts``: training-period stream count
    per item (for Popularity). ``evaluate_all`` computes them chunk by chunk instead."""
    return per_session(seqs, baseline_predictor(item_vectors, item_counts, seed=seed), chunk_users)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (uint64, wrapping)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _session_uniform(seed: int, batch: UserSequences, width: int) -> Tensor:
    """``(B, T, width)`` uniform numbers in [0, 1) that depend only on ``seed``, the user's id,
    the session's start time and the position in it: the same draws in any chunking, storage
    or cap."""
    with np.errstate(over="ignore"):
        user = _mix(
            np.asarray(batch.users).astype(np.uint64) + np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
        )
        session = _mix(user[:, None] ^ batch.starts.numpy().view(np.uint64))
        x = _mix(
            session[..., None] + (np.arange(width, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        )
    return torch.from_numpy((x >> np.uint64(11)).astype(np.float64) / float(2**53))


def _oracle_half(seqs: UserSequences, item_vectors: Tensor, seed: int) -> Tensor:
    """Normalised mean of a random half (rounded up) of all of each session's tracks, played
    and skipped: "half of the tracks of the current session, selected uniformly at random among
    all the tracks in the session" (section 6.1). The draw depends on the seed and the session
    (its user and start), not on which other sessions are computed with it."""
    streamed = seqs.items >= 0
    keys = _session_uniform(seed, seqs, streamed.shape[-1]).masked_fill(~streamed, 2.0)
    rank = keys.argsort(-1).argsort(-1)
    keep = streamed & (rank < (streamed.sum(-1, keepdim=True) + 1) // 2)
    vectors = item_vectors[seqs.items.clamp(min=0)] * keep[..., None]
    return _normalize(vectors.sum(-2))


# ---- metrics ----


def _evaluated(seqs: UserSequences, eval_mask: Tensor) -> Tensor:
    has_history = torch.arange(eval_mask.shape[1])[None, :] >= 1
    return eval_mask & seqs.has_pos & has_history


@dataclass
class TrackCandidates:
    """Per evaluated session: (user, t), the K_max most recent distinct earlier tracks (most
    recent first, -1 padding), which of them occur in the session (played or skipped), and
    which are played in it."""

    user: Tensor  # (N,)
    t: Tensor  # (N,)
    items: Tensor  # (N, K_max)
    relevant: Tensor  # (N, K_max) bool: streamed in the session
    relevant_played: Tensor  # (N, K_max) bool: played (not skipped) in the session


def track_candidates(seqs: UserSequences, eval_mask: Tensor, k_max: int = max(TRACK_KS)) -> TrackCandidates:
    """The candidates of the evaluated sessions of a padded batch (``eval_mask (B, T)``)."""
    evaluated = _evaluated(seqs, eval_mask)
    users, ts = evaluated.nonzero(as_tuple=True)
    items = recent_tracks(seqs, evaluated, k_max)
    match = (items[:, :, None] == seqs.items[users, ts][:, None, :]) & (items >= 0)[:, :, None]
    relevant = match.any(-1)
    relevant_played = (match & ~seqs.skipped[users, ts][:, None, :]).any(-1)
    return TrackCandidates(users, ts, items, relevant, relevant_played)


class _Scores:
    """One approach's per-session metric values, gathered chunk by chunk."""

    def __init__(self):
        self.values: Dict[str, list] = {}
        self.at: Dict[str, list] = {}
        self.counts: Dict[str, int] = {}

    def add(self, column: str, values: Tensor, at: Tensor) -> None:
        self.values.setdefault(column, []).append(values)
        self.at.setdefault(column, []).append(at)

    def count(self, key: str, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + int(n)

    def result(self, per_session: bool) -> Dict[str, float]:
        out: Dict[str, float] = {}
        values, at = {}, {}
        shared: Dict[int, Tuple[Tensor, Tensor]] = {}  # one sort per group of columns
        for column, chunks in self.values.items():
            where = self.at[column]
            key = id(where[0]) if where else id(column)
            if key not in shared:
                flat = torch.cat(where) if where else torch.zeros(0, dtype=torch.int64)
                order = torch.sort(flat, stable=True).indices
                shared[key] = (flat[order], order)
            at[column], order = shared[key]
            values[column] = torch.cat(chunks)[order] if chunks else torch.zeros(0)
        cos = values["Cosine"]
        out["Cosine"] = float(cos.mean()) if len(cos) else float("nan")
        out["sessions"] = self.counts.get("sessions", 0)
        out["skipped first"] = self.counts.get("skipped first", 0)
        for K in SESSION_KS:
            rank = values[f"Rank@{K}"]
            out[f"MRR@{K}"] = float(values[f"MRR@{K}"].mean()) if len(rank) else float("nan")
            out[f"Rank@{K}"] = float(rank.mean()) if len(rank) else float("nan")
            out[f"skipped@{K}"] = self.counts.get(f"skipped@{K}", 0)
        for K in TRACK_KS:
            for key, map_suffix, rec_suffix in _RELEVANCE:
                for c in (f"mAP@{K}{map_suffix}", f"Rec@10 ({K}{rec_suffix})"):
                    out[c] = float(values[c].mean()) if len(values[c]) else float("nan")
                out[f"skipped{key} tracks@{K}"] = self.counts.get(f"skipped{key} tracks@{K}", 0)
        if per_session:
            out["per_session"] = values
            out["per_session_at"] = at
        return out


def _score_chunk(scores: _Scores, pred: Tensor, batch: UserSequences, ids: Tensor, eval_mask: Tensor, cand, vectors):
    """Add the metrics of one approach's predictions ``pred (B, T, d)`` of a padded batch."""
    mask = _evaluated(batch, eval_mask)
    pred = pred.float()
    s_pos = batch.s_pos
    at_cos = ids[mask]
    scores.add("Cosine", (pred * s_pos).sum(-1)[mask], at_cos)
    scores.count("sessions", mask.sum())
    scores.count("skipped first", (eval_mask & batch.has_pos & ~mask).sum())
    # session ranking, for the evaluated sessions only: u_t . s+_{t-j}, j = 0 .. K_max - 1
    users, ts = mask.nonzero(as_tuple=True)
    back = torch.arange(max(SESSION_KS))
    earlier_t = ts[:, None] - back[None, :]
    sims = torch.einsum("njd,nd->nj", s_pos[users[:, None], earlier_t.clamp(min=0)], pred[users, ts])
    own = sims[:, :1]
    beaten = (sims > own).float() + 0.5 * (sims == own).float()  # others strictly higher, plus half the ties
    beaten = beaten.masked_fill(earlier_t < 0, 0.0)
    beaten[:, 0] = 0.0
    for K in SESSION_KS:
        enough = ts >= K - 1
        rank = 1.0 + beaten[enough, :K].sum(1)
        at = at_cos[enough]
        scores.add(f"MRR@{K}", 1.0 / rank, at)
        scores.add(f"Rank@{K}", rank, at)
        scores.count(f"skipped@{K}", (~enough).sum())
    u_at = pred[cand.user, cand.t] if len(cand.user) else pred.new_zeros(0, pred.shape[-1])
    flat = ids[cand.user, cand.t]
    for K in TRACK_KS:
        items = cand.items[:, :K]
        track_scores = torch.einsum("nkd,nd->nk", vectors[items.clamp(min=0)], u_at)
        order = track_scores.argsort(dim=1, descending=True, stable=True)
        for key, map_suffix, rec_suffix in _RELEVANCE:
            rel = (cand.relevant if not key else cand.relevant_played)[:, :K]
            usable = (items >= 0).all(1) & rel.any(1)
            rel_sorted = torch.gather(rel, 1, order)[usable].float()
            hits = rel_sorted.cumsum(1)
            precision = hits / torch.arange(1, K + 1, dtype=torch.float32)
            n_rel = rel_sorted.sum(1)
            ap = (precision * rel_sorted).sum(1) / n_rel
            recall10 = rel_sorted[:, :10].sum(1) / n_rel
            at = flat[usable]
            scores.add(f"mAP@{K}{map_suffix}", ap, at)
            scores.add(f"Rec@10 ({K}{rec_suffix})", recall10, at)
            scores.count(f"skipped{key} tracks@{K}", (~usable).sum())


def evaluate_all(
    approaches: Dict[str, Union[Tensor, Callable]],
    seqs,
    eval_mask: Tensor,
    item_vectors: Tensor,
    *,
    per_session: bool = False,
    chunk_users: int = CHUNK_USERS,
) -> Dict[str, Dict[str, float]]:
    """The metrics of several approaches on the sessions of ``eval_mask`` (``seqs``' layout:
    ``(U, T)`` for ``UserSequences``, ``(S,)`` for ``SessionSequences``), in one pass over the
    users in chunks: memory grows with the chunk, not with the data set (but for the
    per-session values with ``per_session``). An approach is its predictions in ``seqs``' layout
    (``(U, T, d)`` / ``(S, d)``) or ``fn(batch, ids)`` giving those of a padded batch
    (``(B, T_b, d)``; ``ids``: the batch's ``seqs.session_ids``), or a dict of several
    approaches' (``baseline_predictor``: then the dict's own names are used). Returns
    ``{name: evaluate's result}``, in the order the approaches come. ``per_session``: as
    ``evaluate``, with ``per_session_at`` the sessions' ids (``seqs.session_ids``)."""
    eval_mask = torch.as_tensor(eval_mask, dtype=torch.bool)
    scores: Dict[str, _Scores] = {}
    for index in _chunks(seqs, chunk_users):
        batch, ids = seqs.select(index), seqs.session_ids(index)
        mask = seqs.gather(eval_mask, index, False)
        cand = track_candidates(batch, mask)
        for name, source in approaches.items():
            if callable(source):
                values = source(batch, ids)
            else:
                values = seqs.gather(source, index, 0)
            for sub, pred in values.items() if isinstance(values, dict) else ((name, values),):
                _score_chunk(scores.setdefault(sub, _Scores()), pred, batch, ids, mask, cand, item_vectors)
    return {name: s.result(per_session) for name, s in scores.items()}


def evaluate(
    pred: Union[Tensor, Callable],
    seqs,
    eval_mask: Tensor,
    item_vectors: Tensor,
    candidates: Optional[TrackCandidates] = None,
    per_session: bool = False,
    chunk_users: int = CHUNK_USERS,
) -> Dict[str, float]:
    """All metrics of one approach's predictions ``pred`` (``seqs``' layout: ``(U, T, d)`` or
    ``(S, d)``; or ``fn(batch, ids)``, see ``evaluate_all``) on the sessions of ``eval_mask``.
    ``per_session``: also ``out["per_session"]``, each column's values per evaluated session
    (the same sessions, in the same order, for every approach: what the paired test compares),
    and ``out["per_session_at"]``, for each column the sessions those values belong to (flat
    indices ``user * T + t`` into the ``(U, T)`` grid of ``UserSequences``, the rows of
    ``SessionSequences``). ``candidates``: accepted for compatibility; the track candidates are
    computed chunk by chunk."""
    return evaluate_all(
        {"pred": pred}, seqs, eval_mask, item_vectors, per_session=per_session, chunk_users=chunk_users
    )["pred"]


def _best_baseline(results: Dict[str, Dict[str, float]], column: str) -> Optional[str]:
    """The non-oracle baseline best in ``column`` (lowest for the mean ranks), or None."""
    baselines = [k for k in results if not k.startswith(("CoSeRNN", "Oracle")) and not math.isnan(results[k][column])]
    if not baselines:
        return None
    pick = min if column.startswith("Rank") else max
    return pick(baselines, key=lambda k: results[k][column])


def paired_test(mine: Tensor, theirs: Tensor, n_boot: int = 1000, seed: int = 0) -> Tuple[float, float, float, float]:
    """(mean difference, 95% bootstrap interval of it, two-sided p-value of a paired t-test) of
    per-session values ``mine - theirs`` (the same sessions). The p-value is the t distribution's
    (scipy) or, without scipy, its normal limit (the sessions number in the hundreds or more)."""
    d = (mine.double() - theirs.double()).flatten()
    n = d.numel()
    if n < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    mean, sd = float(d.mean()), float(d.std())
    g = torch.Generator().manual_seed(seed)
    block = max(1, 2**24 // n)  # resamples drawn at once: memory O(block * n)
    boot = torch.cat(
        [d[torch.randint(0, n, (min(block, n_boot - i), n), generator=g)].mean(1) for i in range(0, n_boot, block)]
    )
    low, high = (float(q) for q in torch.quantile(boot, torch.tensor([0.025, 0.975], dtype=torch.float64)))
    if sd == 0:
        return mean, low, high, 0.0 if mean != 0 else 1.0
    t = mean / (sd / math.sqrt(n))
    try:
        from scipy.stats import t as student_t

        p = float(2 * student_t.sf(abs(t), n - 1))
    except ImportError:
        p = math.erfc(abs(t) / math.sqrt(2))
    return mean, low, high, p


def versus_best_baseline(results: Dict[str, Dict[str, float]], name: str) -> Dict[str, float]:
    """Per column, how much ``results[name]`` improves on the best non-oracle baseline of that
    column (relative; for the mean ranks, lower is better). NaN where there is nothing to compare."""
    baselines = [r for k, r in results.items() if not k.startswith(("CoSeRNN", "Oracle"))]
    out = {}
    for c in COLUMNS:
        values = [r[c] for r in baselines if not math.isnan(r[c])]
        mine = results[name][c]
        if not values or math.isnan(mine):
            out[c] = float("nan")
        elif c.startswith("Rank"):
            out[c] = (min(values) - mine) / min(values)
        else:
            best = max(values)
            out[c] = (mine - best) / abs(best) if best != 0 else float("nan")
    return out


def _column_test(results, name: str, column: str) -> Tuple[str, str]:
    """The table cells of the paired comparison of ``name`` with the column's best baseline."""
    best = _best_baseline(results, column)
    if best is None or math.isnan(results[name][column]):
        return "–", "–"
    mean, low, high, p = paired_test(results[name]["per_session"][column], results[best]["per_session"][column])
    if math.isnan(mean):
        return "–", "–"
    return f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]", ("< 0.001" if p < 0.001 else f"{p:.3f}")


def results_table(results: Dict[str, Dict[str, float]]) -> str:
    """A markdown table in the shape of the paper's Table 2, with a row per CoSeRNN model giving
    its relative gain over the best baseline of each column (positive = better) and, where the
    per-session values are there, the mean per-session difference from that baseline with its
    95% bootstrap interval (for the mean ranks negative = better) and a paired t-test's p-value."""
    lines = ["| Model | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, r in results.items():
        cells = [f"{r[c]:.4f}" if not c.startswith("Rank") else f"{r[c]:.3f}" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in [k for k in results if k.startswith("CoSeRNN")]:
        gain = versus_best_baseline(results, name)
        cells = ["–" if math.isnan(gain[c]) else f"{100 * gain[c]:+.1f}%" for c in COLUMNS]
        lines.append(f"| {name} vs best baseline | " + " | ".join(cells) + " |")
        if all("per_session" in r for r in results.values()):
            tests = [_column_test(results, name, c) for c in COLUMNS]
            lines.append(f"| {name}: difference, 95% CI | " + " | ".join(t[0] for t in tests) + " |")
            lines.append(f"| {name}: p (paired t-test) | " + " | ".join(t[1] for t in tests) + " |")
    first = next(iter(results.values()))
    played = (
        f" ({first['skipped played tracks@25']} / {first['skipped played tracks@100']} with played relevance)"
        if "skipped played tracks@25" in first
        else ""
    )
    lines.append(
        f"\n{first['sessions']} sessions evaluated ({first['skipped first']} first sessions of their user "
        f"not); session ranking skips "
        f"{first['skipped@20']} (K=20) / {first['skipped@50']} (K=50) with too few earlier sessions; "
        f"track ranking skips {first['skipped tracks@25']} (K=25) / {first['skipped tracks@100']} (K=100){played} "
        f"with too few candidates or none relevant"
    )
    return "\n".join(lines)


# the paper's Fig. 5 metrics (MRR at K = 50, mAP and Recall@10 at K = 100), and the cosine
PER_CONTEXT_COLUMNS = ("Cosine", "MRR@50", "mAP@100", "Rec@10 (100)")


def per_context_results(
    results: Dict[str, Dict[str, float]], seqs: UserSequences, n_devices: int
) -> Dict[str, Dict[str, Dict[str, float]]]:
    """The metrics of every approach in ``results`` (``evaluate(..., per_session=True)`` on
    ``seqs``) per context, as the paper breaks them down (Fig. 5): each of the six times of day
    (``sequences.TIME_OF_DAY_NAMES``), then each device. ``{context: {approach: {column: value,
    "sessions": n}}}``, ``n`` the evaluated sessions of the context; NaN where a column has no
    session in it."""
    tod, device = split_context(seqs.context.flatten(), n_devices)
    groups = [(name, tod == k) for k, name in enumerate(TIME_OF_DAY_NAMES)]
    groups += [(f"device {d}", device == d) for d in range(n_devices)]
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for label, member in groups:
        out[label] = {}
        for name, r in results.items():
            if "per_session" not in r:
                raise ValueError("per_context_results needs evaluate(..., per_session=True)")
            row: Dict[str, float] = {}
            for c in COLUMNS:
                chosen = member[r["per_session_at"][c]]
                v = r["per_session"][c][chosen]
                row[c] = float(v.double().mean()) if len(v) else float("nan")
            row["sessions"] = int(member[r["per_session_at"]["Cosine"]].sum())
            out[label][name] = row
    return out


def per_context_table(breakdown: Dict[str, Dict[str, Dict[str, float]]], name: str) -> str:
    """A markdown table of ``per_context_results``: per context, ``name``'s value of each of
    ``PER_CONTEXT_COLUMNS`` and its relative gain over the best non-oracle baseline of that
    context and column (named)."""
    head = ["Context", "Sessions"]
    for c in PER_CONTEXT_COLUMNS:
        head += [c, "vs best baseline"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for label, results in breakdown.items():
        gain = versus_best_baseline(results, name)
        cells = [label, str(results[name]["sessions"])]
        for c in PER_CONTEXT_COLUMNS:
            value, best = results[name][c], _best_baseline(results, c)
            cells.append("–" if math.isnan(value) else f"{value:.4f}")
            cells.append("–" if math.isnan(gain[c]) or best is None else f"{100 * gain[c]:+.1f}% ({best})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
