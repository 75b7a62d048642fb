"""Reference sampled scoring + ranking losses, written straight from the formulas on
the full B x M score matrix: what the fused op is tested against, and the "eager reference"
of the benchmarks.

Rows i < B score M = B + S columns: column i is row i's target, the other in-batch targets and
the S shared samples are its negatives. Scores R = h W^T + b; with elu_param > 0,
R = elu(R, elu_param); with logq_correction, cross-entropy scores are R - logq_correction.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..sampled_loss import LOSSES

EPS = 1e-24  # GRU4Rec's epsilon inside the logarithms


def negative_mask(B: int, M: int, col_items: Optional[Tensor], device) -> Tensor:
    """(B, M) bool: True where column j is a negative of row i (not its target column; with
    col_items, also not a column holding row i's target item: an accidental hit)."""
    cols = torch.arange(M, device=device)
    neg = cols.unsqueeze(0) != torch.arange(B, device=device).unsqueeze(1)
    if col_items is not None:
        neg = neg & (col_items.unsqueeze(0) != col_items[:B].unsqueeze(1))
    return neg


def sampled_ranking_loss(
    h,
    out_rows,
    out_bias=None,
    *,
    loss="bpr-max",
    bpreg=0.0,
    elu_param=0.0,
    logq_correction=None,
    col_items=None,
    reduction="mean",
    normalizer=None,
):
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")
    B, M = h.shape[0], out_rows.shape[0]
    R = h @ out_rows.t()
    if out_bias is not None:
        R = R + out_bias
    if elu_param > 0:
        R = F.elu(R, alpha=elu_param)
    neg = negative_mask(B, M, col_items, h.device)
    target = R.diagonal()[:, None] if B > 0 else R[:, :1]  # r_i, (B, 1)
    n_neg = neg.sum(1).to(R.dtype).clamp(min=1)  # a row without negatives has loss terms 0
    if loss == "cross-entropy":
        X = R - logq_correction if logq_correction is not None else R
        X = X.masked_fill(~(neg | torch.eye(B, M, dtype=torch.bool, device=h.device)), float("-inf"))
        p_target = torch.softmax(X, dim=1).diagonal()
        L = -torch.log(p_target + EPS)
    elif loss in ("bpr-max", "top1-max"):
        # softmax weights over the negatives (a finite fill keeps rows without negatives at 0)
        s = torch.softmax(R.masked_fill(~neg, torch.finfo(R.dtype).min), dim=1) * neg
        if loss == "bpr-max":
            L = -torch.log((s * torch.sigmoid(target - R)).sum(1) + EPS) + bpreg * (s * R.square()).sum(1)
        else:
            L = (s * (torch.sigmoid(R - target) + torch.sigmoid(R.square()))).sum(1)
    elif loss == "bpr":
        L = -(F.logsigmoid(target - R) * neg).sum(1) / n_neg
    else:  # top1
        L = ((torch.sigmoid(R - target) + torch.sigmoid(R.square())) * neg).sum(1) / n_neg
    if reduction == "mean":
        if normalizer is not None and not (math.isfinite(normalizer) and normalizer > 0):
            raise ValueError(f"normalizer must be finite and > 0, got {normalizer}")
        return L.sum() / (max(B, 1) if normalizer is None else normalizer)
    if reduction == "sum":
        return L.sum()
    if reduction == "none":
        return L
    raise ValueError(f"unknown reduction {reduction!r}; expected 'mean', 'sum' or 'none'")
