"""Reference full-catalogue ranking in eager PyTorch: the whole (B, N) score matrix, then
comparisons and a stable sort."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _scores(h, rows, bias, elu_param):
    s = h @ rows.t() if rows.dim() == 2 else rows
    if bias is not None:
        s = s + bias
    return F.elu(s, elu_param) if elu_param > 0 else s


def rank_items(h, table, bias=None, *, targets=None, k=0, exclude=None, elu_param=0.0):
    B, N = h.shape[0], table.shape[0]
    scores = _scores(h, table, bias, elu_param)
    long = dict(dtype=torch.long, device=h.device)
    greater = equal = torch.zeros(0, **long)
    if targets is not None:
        own = (h * table[targets]).sum(1)
        t = _scores(h, own, None if bias is None else bias[targets], elu_param).unsqueeze(1)
        other = torch.arange(N, device=h.device).unsqueeze(0) != targets.unsqueeze(1)
        greater = (((scores > t) | torch.isnan(t)) & other).sum(1)  # a NaN target ranks last
        equal = ((scores == t) & other).sum(1)
    blocked = torch.isnan(scores)
    if exclude is not None:
        for b in range(B):
            row = exclude[b][exclude[b] >= 0]
            blocked[b, row[row < N]] = True
    ranked = scores.masked_fill(blocked, float("-inf"))
    top_scores, order = torch.sort(ranked, dim=1, descending=True, stable=True)
    top_scores, top_ids = top_scores[:, :k], order[:, :k]
    top_ids = top_ids.masked_fill(top_scores == float("-inf"), -1)
    return greater, equal, top_ids, top_scores
