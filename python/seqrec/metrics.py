"""Next-item ranking metrics: Recall@k and MRR@k over the full catalogue, in the three
tie modes GRU4Rec reports.

For a target with score s among all items' scores:
* ``standard``: rank = 1 + #(items scoring strictly more than s);
* ``conservative``: rank = 1 + #(other items scoring at least s);
* ``median``: the mean of the two.
Recall@k = mean(rank <= k); MRR@k = mean(1 / rank if rank <= k else 0).
"""

from __future__ import annotations

from typing import Dict, Iterable, Sequence

import torch
from torch import Tensor

TIE_MODES = ("standard", "conservative", "median")


def target_ranks(scores: Tensor, targets: Tensor, mode: str = "standard") -> Tensor:
    """Ranks (float, 1 = best) of ``targets (b,)`` in ``scores (b, n_items)``."""
    if mode not in TIE_MODES:
        raise ValueError(f"unknown tie mode {mode!r}; expected one of {TIE_MODES}")
    if scores.dim() != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(
            f"expected scores (b, n_items) and targets (b,), got {tuple(scores.shape)} and {tuple(targets.shape)}"
        )
    target_scores = scores.gather(1, targets.unsqueeze(1))
    above = (scores > target_scores).sum(1).to(torch.float64)
    at_least = (scores >= target_scores).sum(1).to(torch.float64)  # includes the target itself
    standard = 1 + above
    conservative = at_least
    if mode == "standard":
        return standard
    if mode == "conservative":
        return conservative
    return (standard + conservative) / 2


class RankingMetrics:
    """Accumulates Recall@k and MRR@k over batches, for several k and tie modes at once."""

    def __init__(self, ks: Sequence[int] = (1, 5, 10, 20), modes: Iterable[str] = TIE_MODES):
        self.ks = tuple(ks)
        self.modes = tuple(modes)
        for mode in self.modes:
            if mode not in TIE_MODES:
                raise ValueError(f"unknown tie mode {mode!r}; expected one of {TIE_MODES}")
        self.n = 0
        self._recall = {(m, k): 0.0 for m in self.modes for k in self.ks}
        self._mrr = {(m, k): 0.0 for m in self.modes for k in self.ks}

    def update(self, scores: Tensor, targets: Tensor) -> None:
        for mode in self.modes:
            ranks = target_ranks(scores, targets, mode)
            for k in self.ks:
                hit = ranks <= k
                self._recall[mode, k] += hit.sum().item()
                self._mrr[mode, k] += torch.where(hit, 1.0 / ranks, torch.zeros_like(ranks)).sum().item()
        self.n += targets.numel()

    def result(self) -> Dict[str, Dict[str, float]]:
        """``{mode: {"Recall@k": ..., "MRR@k": ...}}`` (zeros before any update)."""
        n = max(self.n, 1)
        return {
            mode: {
                **{f"Recall@{k}": self._recall[mode, k] / n for k in self.ks},
                **{f"MRR@{k}": self._mrr[mode, k] / n for k in self.ks},
            }
            for mode in self.modes
        }

    def table(self) -> str:
        """The results as a Markdown table, one row per tie mode."""
        res = self.result()
        cols = [f"Recall@{k}" for k in self.ks] + [f"MRR@{k}" for k in self.ks]
        lines = ["| ties | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for mode in self.modes:
            lines.append(f"| {mode} | " + " | ".join(f"{res[mode][c]:.4f}" for c in cols) + " |")
        return "\n".join(lines) + f"\n\n{self.n} predictions"
