"""GRU ops: `gru_step` (one step) and `gru_sequence` (T steps with reset masks,
lengths, and backpropagation through time inside the op), in both cell variants:

* ``reset_after=False`` (GRU4Rec's cell): ``r = s(gi_r + h W_r^T + b_r)``,
  ``z = s(gi_z + h W_z^T + b_z)``, ``n = tanh(gi_n + (r * h) W_n^T + b_n)``,
  ``h' = (1 - z) * h + z * n``;
* ``reset_after=True`` (cuDNN / ``torch.nn.GRUCell``): ``gh = h W^T + b_hh``,
  ``r = s(gi_r + gh_r)``, ``z = s(gi_z + gh_z)``, ``n = tanh(gi_n + r * gh_n)``,
  ``h' = (1 - z) * n + z * h``.

``gi`` is the input projection (an item table's rows for GRU4Rec, ``x @ W_ih^T`` for dense
inputs), without its bias; ``b_ih`` is added inside the op. Gate blocks are ordered
``(r, z, n)`` as in ``torch.nn.GRU``; ``w_hh`` is ``(3H, H)`` (``gh = h @ w_hh.T``).

Kernels: csrc/gru.cpp (matrix products, shared by CPU and CUDA), csrc/gru_pass.h (the
gate arithmetic), csrc/cpu/gru_cpu.cpp, csrc/cuda/gru_cuda.cu; autograd: csrc/autograd.cpp
(C++, each backward one call of the registered backward op). This module registers the fake
kernels and gives the ops Python signatures.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ._loader import _C

__all__ = ["gru_step", "gru_sequence", "gru_step_ids"]


def _blocks(reset_after: bool) -> int:
    """Workspace blocks of H per row: r, z, n, h_prev (+ gh_n for reset_after), as the kernels
    define them."""
    return _C.GRU_WORKSPACE_BLOCKS[int(bool(reset_after))]


# ---- fake kernels (shapes only) for torch.compile / FakeTensor ----


@torch.library.register_fake("seqrec::gru_step")
def _gru_step_fake(gi, h, w_hh, b_ih, b_hh, reset_after):
    torch._check(gi.dim() == 2, lambda: f"gru_step: gi must be (B, 3H), got {gi.dim()}-D")
    B, H = h.shape
    return gi.new_empty(B, H), gi.new_empty(B, _blocks(reset_after) * H)


@torch.library.register_fake("seqrec::gru_step_backward")
def _gru_step_backward_fake(grad_h_new, w_hh, workspace, reset_after):
    B, H = grad_h_new.shape
    return (
        workspace.new_empty(B, 3 * H),
        workspace.new_empty(B, H),
        torch.empty_like(w_hh),
        workspace.new_empty(3 * H),
        workspace.new_empty(3 * H),
    )


@torch.library.register_fake("seqrec::gru_sequence")
def _gru_sequence_fake(gi, h0, w_hh, b_ih, b_hh, reset, lengths, reset_after):
    T, B, _ = gi.shape
    H = h0.shape[1]
    return (gi.new_empty(T, B, H), gi.new_empty(B, H), gi.new_empty(T, B, _blocks(reset_after) * H))


@torch.library.register_fake("seqrec::gru_sequence_backward")
def _gru_sequence_backward_fake(grad_out, grad_h_last, w_hh, workspace, reset, lengths, reset_after):
    T, B, _ = workspace.shape
    H = w_hh.shape[1]
    return (
        workspace.new_empty(T, B, 3 * H),
        workspace.new_empty(B, H),
        torch.empty_like(w_hh),
        workspace.new_empty(3 * H),
        workspace.new_empty(3 * H),
    )


# ---- autograd ----
# In C++ (csrc/autograd.cpp): each backward is one call of seqrec::gru_step_backward /
# seqrec::gru_sequence_backward.


# ---- Python API ----


def gru_step(
    gi: Tensor,
    h: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
    *,
    reset_after: bool = False,
) -> Tensor:
    """One GRU step: ``gi (B, 3H)``, ``h (B, H)``, ``w_hh (3H, H)``, biases ``(3H,)`` -> ``(B, H)``.

    Differentiable in ``gi``, ``h``, ``w_hh`` and the biases; the backward is one op call.
    """
    return torch.ops.seqrec.gru_step(gi, h, w_hh, b_ih, b_hh, reset_after)[0]


def gru_sequence(
    gi: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
    *,
    reset: Optional[Tensor] = None,
    lengths: Optional[Tensor] = None,
    reset_after: bool = False,
) -> tuple[Tensor, Tensor]:
    """T GRU steps in one call: ``gi (T, B, 3H)``, ``h0 (B, H)`` -> ``(out (T, B, H), h_last (B, H))``.

    ``reset (T, B)`` bool: row ``b``'s state is zeroed before step ``t`` where
    ``reset[t, b]`` (its sequence restarts there). ``lengths (B,)`` int64 in ``[0, T]``: steps
    ``t >= lengths[b]`` are padding, which leaves the state unchanged and outputs zeros (and
    ignores ``reset``), so ``h_last`` is each row's state after its last real step, as with
    ``torch.nn.GRU`` on a packed sequence. The backward (through time) is one op call.
    """
    out, h_last, _ = torch.ops.seqrec.gru_sequence(gi, h0, w_hh, b_ih, b_hh, reset, lengths, reset_after)
    return out, h_last


def gru_step_ids(
    ids: Tensor,
    table: Tensor,
    h: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
    *,
    reset_after: bool = False,
) -> Tensor:
    """`gru_step` whose input projections are rows of an item table: ``gi = table[ids]``.

    The table's gradient comes out row-sparse (a sparse COO tensor holding only the looked-up
    rows), never a dense ``(n_items, 3H)`` tensor per step.
    """
    return gru_step(F.embedding(ids, table, sparse=True), h, w_hh, b_ih, b_hh, reset_after=reset_after)
