"""Fused sampled scoring + ranking losses: `sampled_ranking_loss`.

Row ``i`` of the batch (hidden state ``h[i]``) scores ``M = B + S`` items whose output rows
are ``out_rows`` (and biases ``out_bias``): rows ``[0, B)`` are the batch's own targets (row
``i``'s target is column ``i``, the other targets are in-batch negatives), rows ``[B, M)``
shared sampled negatives. Scores ``R = h out_rows^T + out_bias`` (``elu(R, elu_param)`` when
``elu_param > 0``). Losses, per row, with ``s_j`` the softmax of the negatives' scores:

* ``bpr-max``: ``-log(sum_j s_j sigmoid(r_i - r_j) + 1e-24) + bpreg * sum_j s_j r_j^2``
* ``top1-max``: ``sum_j s_j (sigmoid(r_j - r_i) + sigmoid(r_j^2))``
* ``cross-entropy``: ``-log(softmax(R_i - logq_correction)_i + 1e-24)`` over all columns
* ``bpr``: ``mean_j -log sigmoid(r_i - r_j)``;  ``top1``: ``mean_j sigmoid(r_j - r_i) + sigmoid(r_j^2)``

With ``col_items`` (the item id of each column), a negative column holding row ``i``'s own
target item (an accidental hit) is left out for that row; GRU4Rec does not do this, nor does
the default. The op streams over column tiles: no ``B x M`` tensor is stored, forward or
backward, and gradients are deterministic (no atomics).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._loader import _C

__all__ = ["sampled_ranking_loss", "logq_correction", "LOSSES"]

LOSSES = tuple(_C.LOSSES)  # the names the op knows, from its one table (csrc/sampled_loss.cpp)
N_STATS = _C.SAMPLED_LOSS_STATS  # per-row statistics kept by the forward, as the kernels define them


@torch.library.register_fake("seqrec::sampled_ranking_loss")
def _sampled_ranking_loss_fake(
    h, out_rows, out_bias, logq_correction, col_items, loss, bpreg, elu_param, reduction, normalizer=None
):
    B = h.shape[0]
    torch._check(out_rows.shape[0] >= B, lambda: "sampled_ranking_loss: M must be >= B")
    acc = torch.float64 if h.dtype == torch.float64 else torch.float32
    value = h.new_empty(B) if reduction == "none" else h.new_empty(())
    return value, h.new_empty(B, N_STATS, dtype=acc)


@torch.library.register_fake("seqrec::sampled_ranking_loss_backward")
def _sampled_ranking_loss_backward_fake(
    grad_loss,
    h,
    out_rows,
    out_bias,
    logq_correction,
    col_items,
    stats,
    loss,
    bpreg,
    elu_param,
    reduction,
    normalizer=None,
):
    bias_like = out_bias if out_bias is not None else out_rows
    return torch.empty_like(h), torch.empty_like(out_rows), bias_like.new_empty(out_rows.shape[0])


def sampled_ranking_loss(
    h: Tensor,
    out_rows: Tensor,
    out_bias: Optional[Tensor] = None,
    *,
    loss: str = "bpr-max",
    bpreg: float = 0.0,
    elu_param: float = 0.0,
    logq_correction: Optional[Tensor] = None,
    col_items: Optional[Tensor] = None,
    reduction: str = "mean",
    normalizer: Optional[float] = None,
) -> Tensor:
    """The loss (a scalar for ``mean`` / ``sum``, ``(B,)`` for ``none``); differentiable in
    ``h``, ``out_rows`` and ``out_bias``. ``mean`` divides the sum over rows by ``normalizer``,
    by default ``B`` (GRU4Rec's trainer divides by its configured batch size, also when fewer
    rows are left at the end of an epoch)."""
    value, _ = torch.ops.seqrec.sampled_ranking_loss(
        h,
        out_rows,
        out_bias,
        logq_correction,
        col_items,
        loss,
        float(bpreg),
        float(elu_param),
        reduction,
        None if normalizer is None else float(normalizer),
    )
    return value


def logq_correction(
    log_counts: Tensor, batch_items: Tensor, sample_items: Tensor, *, logq: float = 1.0, alpha: float = 1.0
) -> Tensor:
    """GRU4Rec's logQ correction for the cross-entropy loss, per column: ``logq * log(count)`` for
    the in-batch columns and ``logq * alpha * log(count)`` for the sampled ones, ``count`` being
    the item's support in the training data (``log_counts = counts.log()``)."""

    def gather(ids):  # index_select where it applies: several times faster than t[ids] on the CPU
        return (
            log_counts.index_select(0, ids) if ids.dim() == 1 and ids.device == log_counts.device else log_counts[ids]
        )

    return torch.cat([gather(batch_items) * logq, gather(sample_items) * (logq * alpha)])
