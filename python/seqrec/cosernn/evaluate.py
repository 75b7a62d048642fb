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
  before session ``t``; relevant = candidates that occur in session ``t``; ranked by cosine to
  ``u_t`` (exact ties, which only a zero prediction produces, in recency order): average
  precision (mAP) and Recall@10, K = 25, 100; sessions with fewer than K candidates or no
  relevant one are skipped (a short candidate list would make the task easier, and the numbers
  of different K incomparable).

Evaluated: the sessions with at least one played track (a target ``s+_t``) and at least one
earlier session of the same user (without history the baselines have nothing to predict
from); earlier sessions without a played track score 0 in session ranking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .sequences import TRACK_KS, UserSequences, recent_tracks

SESSION_KS = (20, 50)
COLUMNS = ("Cosine", "MRR@20", "Rank@20", "MRR@50", "Rank@50", "mAP@25", "Rec@10 (25)", "mAP@100", "Rec@10 (100)")


def _normalize(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1)


# ---- baselines (each (U, T, d), causal: session t uses sessions < t) ----


def _running(seqs: UserSequences, values: Tensor, weight_fn, same_context: bool) -> Tensor:
    """For every session, a weighted sum of ``values`` over earlier sessions that have a played
    track (of the same context if ``same_context``, falling back to all earlier sessions when
    none shares it). ``weight_fn(t)`` -> (decay applied to the sum, weight of session t)."""
    U, T, d = values.shape
    n_ctx = int(seqs.context.max()) + 1
    has_pos = seqs.has_pos
    out = torch.zeros(U, T, d, dtype=torch.float64)
    acc_any = torch.zeros(U, d, dtype=torch.float64)
    acc_ctx = torch.zeros(U, max(n_ctx, 1), d, dtype=torch.float64)
    seen_ctx = torch.zeros(U, max(n_ctx, 1), dtype=torch.bool)
    rows = torch.arange(U)
    for t in range(T):
        ctx = seqs.context[:, t].clamp(min=0)
        if same_context:
            use = seen_ctx[rows, ctx]
            out[:, t] = torch.where(use[:, None], acc_ctx[rows, ctx], acc_any)
        else:
            out[:, t] = acc_any
        decay, w = weight_fn(t)
        upd = has_pos[:, t]  # sessions without a played track leave every sum as it is
        v = values[:, t].double()
        acc_any = torch.where(upd[:, None], acc_any * decay + w * v, acc_any)
        acc_ctx[rows, ctx] = torch.where(upd[:, None], acc_ctx[rows, ctx] * decay + w * v, acc_ctx[rows, ctx])
        seen_ctx[rows, ctx] |= upd
    return _normalize(out.float())


def baseline_predictions(
    seqs: UserSequences, item_vectors: Tensor, item_counts: Tensor, *, seed: int = 0
) -> Dict[str, Tensor]:
    """The paper's baselines and oracles. ``item_vectors``: the item space (dense ids);
    ``item_counts``: training-period stream count per item (for Popularity)."""
    s_pos = seqs.s_pos
    last = lambda t: (0.0, 1.0)  # noqa: E731 - replace the sum: the last session
    linear = lambda t: (1.0, float(t + 1))  # noqa: E731 - weights t' (1-based), as the long-term embedding
    preds = {
        "Last, any cxt": _running(seqs, s_pos, last, False),
        "Last, same cxt": _running(seqs, s_pos, last, True),
        "Avg, any cxt": _running(seqs, s_pos, linear, False),
        "Avg, same cxt": _running(seqs, s_pos, linear, True),
    }
    # Popularity: s+ of the earlier session whose tracks are the most popular on average
    counts = item_counts.double()
    real = seqs.items >= 0
    pop = (counts[seqs.items.clamp(min=0)] * real).sum(-1) / real.sum(-1).clamp(min=1)
    pop = torch.where(seqs.has_pos, pop, torch.full_like(pop, -1.0))
    best = torch.cummax(pop, dim=1).indices  # index of the most popular session up to t
    prev_best = torch.cat([torch.zeros_like(best[:, :1]), best[:, :-1]], 1)
    popular = torch.gather(s_pos, 1, prev_best[..., None].expand_as(s_pos)).clone()
    popular[:, 0] = 0
    preds["Popularity"] = popular
    # oracles: the session's own s+, and the mean of a random half of its played tracks
    preds["Oracle half"] = _oracle_half(seqs, item_vectors, seed)
    preds["Oracle full"] = s_pos.clone()
    return preds


def _oracle_half(seqs: UserSequences, item_vectors: Tensor, seed: int) -> Tensor:
    """Normalised mean of a random half (rounded up) of each session's played tracks."""
    g = torch.Generator().manual_seed(seed)
    played = (seqs.items >= 0) & ~seqs.skipped
    keys = torch.rand(played.shape, generator=g).masked_fill(~played, 2.0)
    rank = keys.argsort(-1).argsort(-1)
    keep = played & (rank < (played.sum(-1, keepdim=True) + 1) // 2)
    vectors = item_vectors[seqs.items.clamp(min=0)] * keep[..., None]
    return _normalize(vectors.sum(-2))


# ---- metrics ----


def _evaluated(seqs: UserSequences, eval_mask: Tensor) -> Tensor:
    has_history = torch.arange(eval_mask.shape[1])[None, :] >= 1
    return eval_mask & seqs.has_pos & has_history


@dataclass
class TrackCandidates:
    """Per evaluated session: (user, t), the K_max most recent distinct earlier tracks (most
    recent first, -1 padding) and which of them occur in the session."""

    user: Tensor  # (N,)
    t: Tensor  # (N,)
    items: Tensor  # (N, K_max)
    relevant: Tensor  # (N, K_max) bool


def track_candidates(seqs: UserSequences, eval_mask: Tensor, k_max: int = max(TRACK_KS)) -> TrackCandidates:
    evaluated = _evaluated(seqs, eval_mask)
    users, ts = evaluated.nonzero(as_tuple=True)
    items = recent_tracks(seqs, evaluated, k_max)
    relevant = (items[:, :, None] == seqs.items[users, ts][:, None, :]).any(-1) & (items >= 0)
    return TrackCandidates(users, ts, items, relevant)


def evaluate(
    pred: Tensor,
    seqs: UserSequences,
    eval_mask: Tensor,
    item_vectors: Tensor,
    candidates: Optional[TrackCandidates] = None,
    per_session: bool = False,
) -> Dict[str, float]:
    """All metrics of one approach's predictions ``pred (U, T, d)`` on the sessions of ``eval_mask``.
    ``per_session``: also ``out["per_session"]``, each column's values per evaluated session
    (the same sessions, in the same order, for every approach: what the paired test compares)."""
    mask = _evaluated(seqs, eval_mask)
    pred = pred.float()
    s_pos = seqs.s_pos
    cosines = (pred * s_pos).sum(-1)[mask]
    out: Dict[str, float] = {"Cosine": float(cosines.mean()) if mask.any() else float("nan")}
    values = {"Cosine": cosines}
    out["sessions"] = int(mask.sum())
    out["skipped first"] = int((eval_mask & seqs.has_pos & ~mask).sum())
    T = pred.shape[1]
    higher = {K: torch.zeros(mask.shape) for K in SESSION_KS}  # others strictly higher, plus half the ties
    chunk = max(1, 2**25 // max(T * T, 1))  # users per (chunk, T, T) similarity block
    for u0 in range(0, pred.shape[0], chunk):
        sims = torch.einsum("utd,usd->uts", pred[u0 : u0 + chunk], s_pos[u0 : u0 + chunk])  # u_t . s+_s
        own = sims.diagonal(dim1=1, dim2=2)
        for j in range(1, min(max(SESSION_KS), T)):
            earlier = sims.diagonal(offset=-j, dim1=1, dim2=2)  # u_t . s+_{t-j} for t >= j
            beaten = (earlier > own[:, j:]).float() + 0.5 * (earlier == own[:, j:]).float()
            for K in SESSION_KS:
                if j < K:
                    higher[K][u0 : u0 + chunk, j:] += beaten
    for K in SESSION_KS:
        enough = torch.arange(T)[None, :] >= K - 1
        m = mask & enough
        rank = 1.0 + higher[K][m]
        out[f"MRR@{K}"] = float((1.0 / rank).mean()) if m.any() else float("nan")
        out[f"Rank@{K}"] = float(rank.mean()) if m.any() else float("nan")
        values[f"MRR@{K}"], values[f"Rank@{K}"] = 1.0 / rank, rank
        out[f"skipped@{K}"] = int((mask & ~enough).sum())
    cand = candidates if candidates is not None else track_candidates(seqs, eval_mask)
    u_at = pred[cand.user, cand.t] if len(cand.user) else pred.new_zeros(0, pred.shape[-1])
    for K in TRACK_KS:
        items, rel = cand.items[:, :K], cand.relevant[:, :K]
        usable = (items >= 0).all(1) & rel.any(1)
        items, rel, u = items[usable], rel[usable], u_at[usable]
        scores = torch.einsum("nkd,nd->nk", item_vectors[items.clamp(min=0)], u)
        order = scores.argsort(dim=1, descending=True, stable=True)
        rel_sorted = torch.gather(rel, 1, order).float()
        hits = rel_sorted.cumsum(1)
        precision = hits / torch.arange(1, K + 1, dtype=torch.float32)
        n_rel = rel_sorted.sum(1)
        ap = (precision * rel_sorted).sum(1) / n_rel
        recall10 = rel_sorted[:, :10].sum(1) / n_rel
        out[f"mAP@{K}"] = float(ap.mean()) if len(ap) else float("nan")
        out[f"Rec@10 ({K})"] = float(recall10.mean()) if len(ap) else float("nan")
        values[f"mAP@{K}"], values[f"Rec@10 ({K})"] = ap, recall10
        out[f"skipped tracks@{K}"] = int((~usable).sum())
    if per_session:
        out["per_session"] = values
    return out


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
    boot = d[torch.randint(0, n, (n_boot, n), generator=g)].mean(1)
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
    lines.append(
        f"\n{first['sessions']} sessions evaluated ({first['skipped first']} first sessions of their user "
        f"not); session ranking skips "
        f"{first['skipped@20']} (K=20) / {first['skipped@50']} (K=50) with too few earlier sessions; "
        f"track ranking skips {first['skipped tracks@25']} (K=25) / {first['skipped tracks@100']} (K=100) "
        f"with too few candidates or none relevant"
    )
    return "\n".join(lines)
