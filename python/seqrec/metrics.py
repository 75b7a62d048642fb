"""Next-item ranking metrics over the full catalogue: Recall@k, MRR@k and NDCG@k in the three
tie modes GRU4Rec reports, and beyond accuracy, over the top-k lists: item coverage, average
popularity and the Gini index of how often items are recommended.

For a target with score s among all items' scores:
* ``standard``: rank = 1 + #(items scoring strictly more than s);
* ``conservative``: rank = 1 + #(other items scoring at least s);
* ``median``: the mean of the two.
A NaN score ranks last: a target scoring NaN has every other item above it, and an item scoring
NaN is above no target.
Recall@k = mean(rank <= k) (with one target per prediction, as here, this is the hit rate
HR@k); MRR@k = mean(1 / rank if rank <= k else 0); NDCG@k = mean(1 / log2(1 + rank) if rank <= k
else 0) -- with one relevant item the ideal DCG is 1 (Jarvelin & Kekalainen, TOIS 2002; a
median rank may be fractional, the formula is the same). The cut-offs k and the tie modes are
chosen per evaluation (default: 1, 5, 10, 20 in all three modes).

Beyond accuracy (``ListMetrics``), over every prediction's top-k list: coverage@k, the share of
the catalogue in at least one list; popularity@k, the mean training count of the listed items
(over all lists' entries); Gini@k, the Gini index of how often each catalogue item is listed,
sum_i (2i - N - 1) c_(i) / (N sum_i c_i) over the counts sorted ascending (0: every item
listed equally often, towards 1: a few items take every list; Adomavicius & Kwon, TKDE 2012).
"""

from __future__ import annotations

import numbers
from typing import Dict, Iterable, Sequence

import torch
from torch import Tensor

from seqrec_ext.rank_items import TIE_MODES, ranks_from_counts

DEFAULT_CUTOFFS = (1, 5, 10, 20)


def target_ranks(scores: Tensor, targets: Tensor, mode: str = "standard") -> Tensor:
    """Ranks (float, 1 = best) of ``targets (b,)`` in ``scores (b, n_items)``."""
    if mode not in TIE_MODES:
        raise ValueError(f"unknown tie mode {mode!r}; expected one of {TIE_MODES}")
    return _ranks_by_mode(scores, targets, (mode,))[mode]


def rank_counts(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Per target of ``targets (b,)`` in ``scores (b, n_items)``: the other items scoring above
    it and exactly as it, what the fused ``rank_items`` op counts; a NaN target counts every
    other item above it, and a NaN score is above no target (comparisons with NaN are false)."""
    if scores.dim() != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(
            f"expected scores (b, n_items) and targets (b,), got {tuple(scores.shape)} and {tuple(targets.shape)}"
        )
    target_scores = scores.gather(1, targets.unsqueeze(1))
    greater = (scores > target_scores).sum(1)
    equal = (scores == target_scores).sum(1) - 1  # less the target itself
    lost = target_scores[:, 0].isnan()
    greater = torch.where(lost, scores.shape[1] - 1, greater)
    return greater, torch.where(lost, 0, equal)


def _ranks_by_mode(scores: Tensor, targets: Tensor, modes: Sequence[str]) -> Dict[str, Tensor]:
    greater, equal = rank_counts(scores, targets)
    return {mode: ranks_from_counts(greater, equal, mode) for mode in modes}


class RankingMetrics:
    """Accumulates Recall@k and MRR@k over batches, for several k and tie modes at once."""

    def __init__(self, ks: Sequence[int] = DEFAULT_CUTOFFS, modes: Iterable[str] = TIE_MODES):
        self.ks = tuple(ks)
        self.modes = tuple(modes)
        for mode in self.modes:
            if mode not in TIE_MODES:
                raise ValueError(f"unknown tie mode {mode!r}; expected one of {TIE_MODES}")
        if not self.ks or not self.modes:
            raise ValueError(f"expected at least one cut-off and one tie mode, got {self.ks} and {self.modes}")
        for k in self.ks:
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
                raise ValueError(f"cut-offs must be whole numbers >= 1, got {k!r}")
        if len(set(self.ks)) < len(self.ks) or len(set(self.modes)) < len(self.modes):
            raise ValueError(f"repeated cut-off or tie mode in {self.ks} and {self.modes}")
        self.n = 0
        self._recall = {(m, k): 0.0 for m in self.modes for k in self.ks}
        self._mrr = {(m, k): 0.0 for m in self.modes for k in self.ks}
        self._ndcg = {(m, k): 0.0 for m in self.modes for k in self.ks}
        self.lists: "ListMetrics | None" = None  # beyond accuracy, where the top-k lists were kept

    def update(self, scores: Tensor, targets: Tensor) -> None:
        self._add(_ranks_by_mode(scores, targets, self.modes), targets.numel())

    def update_counts(self, greater: Tensor, equal: Tensor) -> None:
        """A batch given by its rank counts instead of its scores: per target, the other items
        scoring above it and exactly as much (what ``seqrec_ext.rank_items`` returns)."""
        self._add({mode: ranks_from_counts(greater, equal, mode) for mode in self.modes}, greater.numel())

    def _add(self, ranks_by_mode: Dict[str, Tensor], n: int) -> None:
        for mode, ranks in ranks_by_mode.items():
            for k in self.ks:
                hit = ranks <= k
                zero = torch.zeros_like(ranks)
                self._recall[mode, k] += hit.sum().item()
                self._mrr[mode, k] += torch.where(hit, 1.0 / ranks, zero).sum().item()
                self._ndcg[mode, k] += torch.where(hit, 1.0 / torch.log2(1.0 + ranks), zero).sum().item()
        self.n += n

    def result(self) -> Dict[str, Dict[str, float]]:
        """``{mode: {"Recall@k": ..., "MRR@k": ..., "NDCG@k": ...}}`` (zeros before any update)."""
        n = max(self.n, 1)
        return {
            mode: {
                **{f"Recall@{k}": self._recall[mode, k] / n for k in self.ks},
                **{f"MRR@{k}": self._mrr[mode, k] / n for k in self.ks},
                **{f"NDCG@{k}": self._ndcg[mode, k] / n for k in self.ks},
            }
            for mode in self.modes
        }

    def value(self, measure: str, k: int, mode: str) -> float:
        """One result: ``measure`` ``recall``, ``mrr`` or ``ndcg`` at cut-off ``k`` in tie mode ``mode``."""
        names = {"recall": "Recall", "mrr": "MRR", "ndcg": "NDCG"}
        if measure not in names:
            raise ValueError(f"unknown measure {measure!r}; expected recall, mrr or ndcg")
        if k not in self.ks or mode not in self.modes:
            raise ValueError(f"not measured: cut-off {k} in tie mode {mode!r} (measured {self.ks} in {self.modes})")
        return self.result()[mode][f"{names[measure]}@{k}"]

    def table(self) -> str:
        """The results as a Markdown table, one row per tie mode (then the beyond-accuracy
        table where the lists were kept)."""
        res = self.result()
        cols = [f"{name}@{k}" for name in ("Recall", "MRR", "NDCG") for k in self.ks]
        lines = ["| ties | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for mode in self.modes:
            lines.append(f"| {mode} | " + " | ".join(f"{res[mode][c]:.4f}" for c in cols) + " |")
        text = "\n".join(lines) + f"\n\n{self.n} predictions"
        return text + ("\n\n" + self.lists.table() if self.lists is not None else "")


class ListMetrics:
    """Beyond-accuracy metrics of the top-k lists (see the module's docstring): coverage@k,
    popularity@k and Gini@k for each cut-off, from lists of item ids best first (``-1`` pads a
    list shorter than k). ``popularity``: ``(n_items,)`` the items' training counts (None: no
    popularity@k; ``n_items`` says the catalogue's size then)."""

    def __init__(self, popularity: "Tensor | None", ks: Sequence[int] = DEFAULT_CUTOFFS, n_items: int = 0):
        self.popularity = None if popularity is None else torch.as_tensor(popularity, dtype=torch.float64).flatten()
        self.n_items = n_items if self.popularity is None else len(self.popularity)
        self.ks = tuple(ks)
        if self.n_items < 1 or not self.ks or min(self.ks) < 1:
            raise ValueError(f"expected a catalogue and cut-offs >= 1, got {self.n_items} items and {self.ks}")
        self.listed = {k: torch.zeros(self.n_items, dtype=torch.float64) for k in self.ks}
        self.n = 0

    def update(self, top_ids: Tensor) -> None:
        """A batch's lists ``(b, >= max(ks))`` of item ids, best first."""
        if top_ids.dim() != 2 or top_ids.shape[1] < max(self.ks):
            raise ValueError(f"expected top-k lists (b, >= {max(self.ks)}), got {tuple(top_ids.shape)}")
        ids = top_ids.cpu().long()
        for k in self.ks:
            head = ids[:, :k].flatten()
            head = head[head >= 0]
            self.listed[k] += torch.bincount(head, minlength=self.n_items).double()
        self.n += len(ids)

    def result(self) -> Dict[str, float]:
        out = {}
        for k in self.ks:
            c = self.listed[k]
            total = float(c.sum())
            out[f"Coverage@{k}"] = float((c > 0).sum()) / self.n_items
            if self.popularity is not None:
                out[f"Popularity@{k}"] = float((c * self.popularity).sum()) / total if total else 0.0
            ranks = torch.arange(1, self.n_items + 1, dtype=torch.float64)
            weighted = float(((2 * ranks - self.n_items - 1) * c.sort().values).sum())
            out[f"Gini@{k}"] = weighted / (self.n_items * total) if total else 0.0
        return out

    def table(self) -> str:
        res = self.result()
        cols = [f"{name}@{k}" for name in ("Coverage", "Popularity", "Gini") for k in self.ks if f"{name}@{k}" in res]
        cells = [f"{res[c]:.4f}" if not c.startswith("Popularity") else f"{res[c]:.1f}" for c in cols]
        return (
            "| lists | "
            + " | ".join(cols)
            + " |\n|---|"
            + "---:|" * len(cols)
            + "\n| top-k | "
            + " | ".join(cells)
            + " |"
        )
