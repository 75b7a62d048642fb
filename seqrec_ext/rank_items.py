"""Ranking against the whole catalogue without a ``(B, N)`` score matrix: the rank counts of each
row's target (for evaluation) and each row's top-k items (for recommendation) in one pass over
the item table, tile by tile. Kernels: csrc/rank_items.cpp, csrc/cpu/rank_items_cpu.cpp.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

__all__ = ["rank_items", "RankResult", "TIE_MODES", "ranks_from_counts"]

TIE_MODES = ("standard", "conservative", "median")


def ranks_from_counts(greater: Tensor, equal: Tensor, mode: str = "standard") -> Tensor:
    """The targets' ranks (float64, 1 = best) from the other items scoring above them
    (``greater``) and exactly as them (``equal``): ``standard`` 1 + greater, ``conservative``
    1 + greater + equal, ``median`` their mean (GRU4Rec's three tie modes; the one definition
    of them, for the fused op's counts and the dense metrics alike)."""
    if mode not in TIE_MODES:
        raise ValueError(f"unknown tie mode {mode!r}; expected one of {TIE_MODES}")
    standard = 1 + greater.to(torch.float64)
    if mode == "standard":
        return standard
    conservative = standard + equal.to(torch.float64)
    return conservative if mode == "conservative" else (standard + conservative) / 2


class RankResult(NamedTuple):
    """``greater``, ``equal (B,)`` int64: the other items scoring above / exactly as the target
    (empty without targets); ``top_ids``, ``top_scores (B, k)``: best first, ties by lower id,
    id -1 and score -inf where fewer than k items could be ranked."""

    greater: Tensor
    equal: Tensor
    top_ids: Tensor
    top_scores: Tensor

    def ranks(self, mode: str = "standard") -> Tensor:
        """The targets' ranks in tie mode ``mode`` (``ranks_from_counts``)."""
        return ranks_from_counts(self.greater, self.equal, mode)


@torch.library.register_fake("seqrec::rank_items")
def _rank_items_fake(h, table, bias, targets, exclude, k, elu_param):
    B = h.shape[0]
    n = B if targets is not None else 0
    long = dict(dtype=torch.long)
    return h.new_empty(n, **long), h.new_empty(n, **long), h.new_empty(B, k, **long), h.new_empty(B, k)


def rank_items(
    h: Tensor,
    table: Tensor,
    bias: Optional[Tensor] = None,
    *,
    targets: Optional[Tensor] = None,
    k: int = 0,
    exclude: Optional[Tensor] = None,
    elu_param: float = 0.0,
) -> RankResult:
    """Scores ``h (B, H) @ table (N, H)^T + bias (N,)`` (then ELU when ``elu_param > 0``) and
    ranks them. ``targets (B,)``: item ids whose rank counts to return. ``k``: how many best
    items to return per row; ``exclude (B, E)`` int64, -1 padded: items a row's top-k must not
    hold (its session so far, say; they still count in the ranks). Memory O(B (k + tile)), tile
    ~4 MB; not differentiable."""
    with torch.no_grad():
        return RankResult(*torch.ops.seqrec.rank_items(h, table, bias, targets, exclude, int(k), float(elu_param)))
