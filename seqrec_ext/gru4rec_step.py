"""The GRU4Rec training step on the fused ops: item ids, the previous hidden state
and the parameters in; the loss, the new hidden state and the gradients out, with the item
tables' gradients as rows (indices + values, duplicates not yet summed) for a sparse-row
optimizer, and dense gradients for the rest. Truncated backpropagation of one step, as GRU4Rec
trains.

Per step: one row gather per table, the input projection (a matrix product unless the item
table holds the projections itself), then one call of the op ``torch.ops.seqrec.gru4rec_step``
(csrc/gru4rec_step.cpp): `gru_step`, the sampled loss and the backward of both, with the
B x M scores computed once and no gradient for the previous state. No autograd graph; nothing
of size n_items is touched. The tests check it against autograd through the reference ops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from ._loader import _C

__all__ = [
    "GRU4RecParams",
    "RowGrad",
    "StepResult",
    "gru4rec_step",
    "dropout_mask",
    "step_dropout_masks",
    "table_row_grads",
    "EMBEDDING_MODES",
]

EMBEDDING_MODES = tuple(_C.EMBEDDING_MODES)  # GRU4Rec's default first; the op's one table (csrc/gru4rec_train_step.cpp)


@dataclass
class GRU4RecParams:
    """The parameters of a one-layer GRU4Rec (gates ordered r, z, n).

    embedding mode ``none``: ``item_in (n_items, 3H)`` holds each item's input projection
    (the one-hot input times W_x is a row lookup); ``separate``: ``item_in (n_items, E)`` an
    embedding and ``w_in (E, 3H)``; ``constrained`` (GRU4Rec's default, "shared"): the output
    table ``out_table (n_items, H)`` is also the input embedding (tied), ``w_in (H, 3H)``
    (its width may differ from the layer's H when layers are stacked above it).
    ``b_h`` is the GRU's input-side bias; ``b_hh`` its optional hidden-side bias (a
    ``torch.nn.GRUCell`` has both: with the reset-after cell, b_hh's candidate block sits
    inside the reset gate's product).
    """

    w_hh: Tensor  # (3H, H)
    b_h: Tensor  # (3H,)
    out_table: Tensor  # (n_items, H)
    out_bias: Tensor  # (n_items,)
    item_in: Optional[Tensor] = None  # (n_items, 3H) or (n_items, E); None when constrained
    w_in: Optional[Tensor] = None  # (E, 3H) or (H, 3H); None for mode "none"
    embedding: str = "none"
    b_hh: Optional[Tensor] = None  # (3H,)

    def __post_init__(self):
        if self.embedding not in EMBEDDING_MODES:
            raise ValueError(f"embedding must be one of {EMBEDDING_MODES}, got {self.embedding!r}")
        H = self.w_hh.shape[1]
        if self.embedding == "none":
            if self.item_in is None or self.item_in.shape[1] != 3 * H or self.w_in is not None:
                raise ValueError("embedding 'none' needs item_in (n_items, 3H) and no w_in")
        elif self.embedding == "separate":
            if self.item_in is None or self.w_in is None or self.w_in.shape != (self.item_in.shape[1], 3 * H):
                raise ValueError("embedding 'separate' needs item_in (n_items, E) and w_in (E, 3H)")
        else:
            if self.item_in is not None or self.w_in is None or self.w_in.shape != (self.out_table.shape[1], 3 * H):
                raise ValueError(
                    "embedding 'constrained' needs w_in (out_table's width, 3H) and no item_in (out_table is the input)"
                )
        if self.b_hh is not None and self.b_hh.shape != (3 * H,):
            raise ValueError(f"b_hh must be (3H,) = ({3 * H},), got {tuple(self.b_hh.shape)}")

    @property
    def input_table(self) -> Tensor:
        return self.out_table if self.embedding == "constrained" else self.item_in


@dataclass
class RowGrad:
    """The gradient of some rows of a table: ``values[k]`` belongs to row ``indices[k]``;
    an index may repeat (the optimizer sums duplicates)."""

    indices: Tensor
    values: Tensor

    def to_dense(self, n_rows: int) -> Tensor:
        shape = (n_rows,) + tuple(self.values.shape[1:])
        return torch.zeros(shape, dtype=self.values.dtype, device=self.values.device).index_add_(
            0, self.indices, self.values
        )


@dataclass
class StepResult:
    loss: Tensor  # scalar
    h_new: Tensor  # (B, H), detached, after the hidden dropout
    row_grads: Dict[str, RowGrad] = field(default_factory=dict)  # table name -> rows
    dense_grads: Dict[str, Tensor] = field(default_factory=dict)  # parameter name -> gradient


@torch.library.register_fake("seqrec::gru4rec_step")
def _gru4rec_step_fake(
    gi,
    h,
    w_hh,
    b_h,
    b_hh,
    out_rows,
    out_bias,
    logq_correction,
    hidden_mask,
    loss,
    bpreg,
    elu_param,
    reset_after,
    normalizer=None,
):
    torch._check(
        gi.dim() == 2 and h.dim() == 2 and gi.shape[1] == 3 * h.shape[1],
        lambda: "gru4rec_step: gi must be (B, 3H) and h (B, H)",
    )
    torch._check(out_rows.shape[0] >= gi.shape[0], lambda: "gru4rec_step: M must be >= B")
    # contiguous, as the op returns them (empty_like would copy the inputs' strides)
    return (
        gi.new_empty(()),
        h.new_empty(h.shape),
        gi.new_empty(gi.shape),
        w_hh.new_empty(w_hh.shape),
        b_h.new_empty(b_h.shape),
        (b_hh if b_hh is not None else b_h).new_empty(b_h.shape),
        out_rows.new_empty(out_rows.shape),
        out_bias.new_empty(out_rows.shape[0]),
    )


def table_row_grads(
    embedding: str, item_ids: Tensor, out_ids: Tensor, d_in: Tensor, d_out: Tensor, d_bias: Tensor
) -> Dict[str, RowGrad]:
    """The item tables' row gradients of a step: the input rows' (``d_in``, rows ``item_ids``)
    and the scored rows' (``d_out``, ``d_bias``, rows ``out_ids``); in mode ``constrained``
    both uses of the shared table go into one RowGrad of ``out_table``."""
    grads = {}
    if embedding == "constrained":
        grads["out_table"] = RowGrad(torch.cat([item_ids, out_ids]), torch.cat([d_in, d_out]))
    else:
        grads["item_in"] = RowGrad(item_ids, d_in)
        grads["out_table"] = RowGrad(out_ids, d_out)
    grads["out_bias"] = RowGrad(out_ids, d_bias)
    return grads


LOW_PRECISION = (torch.bfloat16, torch.float16)


def _mm_in(state_dtype: torch.dtype, a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` as the step ops compute their products: with a half / bfloat16 state, operands
    in its dtype (the hardware's low-precision product), the result in ``a``'s dtype."""
    if state_dtype in LOW_PRECISION and a.dtype not in LOW_PRECISION:
        return (a.to(state_dtype) @ b.to(state_dtype)).to(a.dtype)
    return a @ b


def dropout_mask(shape, like: Tensor, p: float, generator: Optional[torch.Generator]) -> Optional[Tensor]:
    """Inverted dropout's mask of ``shape`` with the dtype and device of ``like`` (kept entries
    scaled by 1 / (1 - p)); None when p = 0. The steps draw theirs with it: the embedding's
    (B, width of the input rows) first, then the hidden state's (B, H)."""
    if p <= 0:
        return None
    keep = torch.rand(shape, device=like.device, dtype=like.dtype, generator=generator) >= p
    return keep.to(like.dtype) / (1 - p)  # (a bool tensor divided by a float would be float32)


def step_dropout_masks(
    n_rows: int,
    in_width: int,
    sizes,
    like: Tensor,
    p_embed: float,
    p_first: float,
    p_hidden: float,
    generator: Optional[torch.Generator],
) -> Tuple[Optional[Tensor], list]:
    """The dropout masks of one GRU4Rec training step, in the one order every step draws them
    from ``generator``: the input rows' ``(n_rows, in_width)`` with ``p_embed``, then each GRU
    layer's output ``(n_rows, size)`` for ``size`` in ``sizes``, bottom first -- the first
    layer's with ``p_first``, the others' with ``p_hidden`` (a layer's masked output is what the
    layer above reads and the state it carries). Returns (the input mask, [the layers' masks]),
    None where a probability is 0; the masks have the dtype and device of ``like``."""
    embed = dropout_mask((n_rows, in_width), like, p_embed, generator)
    layers = [
        dropout_mask((n_rows, size), like, p_first if l == 0 else p_hidden, generator) for l, size in enumerate(sizes)
    ]
    return embed, layers


def gru4rec_step(
    params: GRU4RecParams,
    item_ids: Tensor,
    target_ids: Tensor,
    negative_ids: Tensor,
    h: Tensor,
    *,
    loss: str = "bpr-max",
    bpreg: float = 0.0,
    elu_param: float = 0.0,
    logq_correction: Optional[Tensor] = None,
    dropout_embed: float = 0.0,
    dropout_hidden: float = 0.0,
    reset_after: bool = False,
    normalizer: Optional[float] = None,
    generator: Optional[torch.Generator] = None,
) -> StepResult:
    """One training step: ``item_ids (B,)`` are the current items, ``target_ids (B,)`` the next
    ones, ``negative_ids (S,)`` shared samples, ``h (B, H)`` the state (rows of sessions that
    just started must already be zero). ``logq_correction (B + S,)`` for cross-entropy, see
    :func:`seqrec_ext.logq_correction`. The loss is the sum over rows divided by ``normalizer``
    (default ``B``). Dropout masks come from ``generator`` (or the default generator of the
    tensors' device): ``dropout_embed`` on the input rows, ``dropout_hidden`` on the new
    state, whose masked value is scored and returned as ``h_new`` (the state the next step
    starts from, as GRU4Rec carries it). A bfloat16 (or half) ``h`` with float32 parameters
    is mixed precision: the step's large matrix products (the input projection, the B x M
    scores and their gradients) take bfloat16 operands with float32 accumulation, all other
    arithmetic is float32, the gradients come out float32 and ``h_new`` bfloat16."""
    if not (0 <= dropout_embed < 1 and 0 <= dropout_hidden < 1):
        raise ValueError("dropout probabilities must lie in [0, 1)")
    B = item_ids.shape[0]
    if target_ids.shape != (B,) or h.shape[0] != B:
        raise ValueError(
            f"item_ids, target_ids and h must have the same batch size, got "
            f"{tuple(item_ids.shape)}, {tuple(target_ids.shape)}, {tuple(h.shape)}"
        )
    out_ids = torch.cat([target_ids, negative_ids])
    ops = torch.ops.seqrec
    with torch.no_grad():  # no graph: the op returns the gradients
        # index_select, not t[ids]: its contiguous-rows path is ~4x faster on the CPU (2080 rows)
        in_rows = params.input_table.index_select(0, item_ids)
        out_rows = params.out_table.index_select(0, out_ids)
        bias_rows = params.out_bias.index_select(0, out_ids)
        w_in = params.w_in
        # (B, H) as h_new, in the parameters' dtype (a bfloat16 state has float32 masks)
        embed_mask, (hidden_mask,) = step_dropout_masks(
            B, in_rows.shape[1], (h.shape[1],), in_rows, dropout_embed, dropout_hidden, dropout_hidden, generator
        )
        x = in_rows if embed_mask is None else in_rows * embed_mask
        gi = x if w_in is None else _mm_in(h.dtype, x, w_in)
        value, h_new, d_gi, d_w_hh, d_b_h, d_b_hh, d_out, d_bias = ops.gru4rec_step(
            gi,
            h,
            params.w_hh,
            params.b_h,
            params.b_hh,
            out_rows,
            bias_rows,
            logq_correction,
            hidden_mask,
            loss,
            float(bpreg),
            float(elu_param),
            reset_after,
            None if normalizer is None else float(normalizer),
        )
        d_x = d_gi if w_in is None else _mm_in(h.dtype, d_gi, w_in.t())
        d_in = d_x if embed_mask is None else d_x * embed_mask
        d_w_in = None if w_in is None else _mm_in(h.dtype, x.t(), d_gi)
    result = StepResult(
        loss=value, h_new=h_new, row_grads=table_row_grads(params.embedding, item_ids, out_ids, d_in, d_out, d_bias)
    )
    result.dense_grads["w_hh"] = d_w_hh
    result.dense_grads["b_h"] = d_b_h
    if d_w_in is not None:
        result.dense_grads["w_in"] = d_w_in
    if params.b_hh is not None:
        result.dense_grads["b_hh"] = d_b_hh
    return result
