"""One whole GRU4Rec training step in one op call, for every embedding mode: the gathers, the
input projection, :func:`seqrec_ext.gru4rec_step`'s op, and Adagrad with momentum on the touched
rows of the item tables and on the dense parameters, in place. Kernel:
csrc/gru4rec_train_step.cpp. The same functions in the same order as the op-by-op path, so the
parameters come out bitwise the same on the CPU (on CUDA within rounding); the fusion removes the
Python between the ops. On CUDA the step never waits for the device, so a CUDA graph can
capture it.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from ._loader import _C
from .gru4rec_step import GRU4RecParams, step_dropout_masks

__all__ = ["gru4rec_train_step_", "train_step_param_names"]


def train_step_param_names(embedding: str, b_hh: bool) -> Tuple[str, ...]:
    """The parameters the op updates, in the order of its lists: those of the embedding mode
    among (item_in, out_table, out_bias, w_hh, b_h, w_in), then b_hh when ``b_hh``, as the op
    reads them (its own list, csrc/gru4rec_train_step.cpp); ValueError for an unknown mode."""
    return _C.train_step_param_names(embedding, bool(b_hh))


@torch.library.register_fake("seqrec::gru4rec_train_step_")
def _gru4rec_train_step_fake(params, accumulators, momentum_buffers, item_ids, target_ids, negative_ids, h, *options):
    # (options: reset, logq_correction, the dropout masks, the loss and optimizer settings)
    torch._check(len(params) >= 5, lambda: "gru4rec_train_step_: params must hold at least 5 tensors")
    return params[0].new_empty(()), h.new_empty(h.shape)


def gru4rec_train_step_(
    params: GRU4RecParams,
    accumulators: Sequence[Tensor],
    momentum_buffers: Sequence[Tensor],
    item_ids: Tensor,
    target_ids: Tensor,
    negative_ids: Tensor,
    h: Tensor,
    *,
    reset: Optional[Tensor] = None,
    loss: str = "bpr-max",
    bpreg: float = 0.0,
    elu_param: float = 0.0,
    logq_correction: Optional[Tensor] = None,
    dropout_embed: float = 0.0,
    dropout_hidden: float = 0.0,
    reset_after: bool = False,
    normalizer: Optional[float] = None,
    lr: float,
    momentum: float = 0.0,
    eps: float = 1e-6,
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor]:
    """One training step of a one-layer GRU4Rec, its update applied: returns ``(loss, h_new)``.

    ``accumulators`` and ``momentum_buffers``: the Adagrad state of the parameters named by
    :func:`train_step_param_names` for ``params``, in that order. ``reset (B,)`` bool: rows of
    ``h`` that start a new session, read as zeros (``h`` itself is not changed). Other
    arguments as :func:`seqrec_ext.gru4rec_step` (the same dropout masks from the same
    ``generator`` draws, made by :func:`seqrec_ext.gru4rec_step.step_dropout_masks`) and
    :func:`seqrec_ext.sparse_adagrad_momentum_`. When the loss is not finite nothing is updated.
    """
    if not (0 <= dropout_embed < 1 and 0 <= dropout_hidden < 1):
        raise ValueError("dropout probabilities must lie in [0, 1)")
    names = train_step_param_names(params.embedding, params.b_hh is not None)
    tensors = [getattr(params, name) for name in names]
    with torch.no_grad():
        embed_mask, (hidden_mask,) = step_dropout_masks(
            h.shape[0],
            params.input_table.shape[1],
            (h.shape[1],),
            params.out_table,
            dropout_embed,
            dropout_hidden,
            dropout_hidden,
            generator,
        )
        return torch.ops.seqrec.gru4rec_train_step_(
            tensors,
            list(accumulators),
            list(momentum_buffers),
            item_ids,
            target_ids,
            negative_ids,
            h,
            reset,
            logq_correction,
            embed_mask,
            hidden_mask,
            params.embedding,
            loss,
            float(bpreg),
            float(elu_param),
            reset_after,
            None if normalizer is None else float(normalizer),
            float(lr),
            float(momentum),
            float(eps),
        )
