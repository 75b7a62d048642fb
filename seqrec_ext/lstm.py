"""LSTM op: `lstm_sequence`, T steps of ``torch.nn.LSTM``'s cell in one call, with reset masks,
lengths, and backpropagation through time inside the op:

``a = gi + b_ih + h W_hh^T + b_hh``, ``i, f, o = s(a_i), s(a_f), s(a_o)``, ``g = tanh(a_g)``,
``c' = f * c + i * g``, ``h' = o * tanh(c')``.

``gi`` is the input projection ``x @ W_ih^T`` for all steps, computed by the caller without its
bias; ``b_ih`` is added inside the op. Gate blocks are ordered ``(i, f, g, o)`` as in
``torch.nn.LSTM`` (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``);
``w_hh`` is ``(4H, H)`` (``gh = h @ w_hh.T``).

Kernels: csrc/lstm.cpp (matrix products, shared by CPU and CUDA), csrc/lstm_pass.h (the cell
arithmetic), csrc/cpu/lstm_cpu.cpp, csrc/cuda/lstm_cuda.cu; autograd: csrc/autograd.cpp (C++,
the backward one call of the registered backward op). This module registers the fake kernels
and gives the op its Python signature.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._loader import _C

__all__ = ["lstm_sequence"]

# workspace blocks of H per row and step: i, f, g, o, c_prev, h_prev (csrc/lstm_math.h)
_BLOCKS = _C.LSTM_WORKSPACE_BLOCKS


# ---- fake kernels (shapes only) for torch.compile / FakeTensor ----


@torch.library.register_fake("seqrec::lstm_sequence")
def _lstm_sequence_fake(gi, h0, c0, w_hh, b_ih, b_hh, reset, lengths):
    T, B, _ = gi.shape
    H = h0.shape[1]
    return gi.new_empty(T, B, H), gi.new_empty(B, H), gi.new_empty(B, H), gi.new_empty(T, B, _BLOCKS * H)


@torch.library.register_fake("seqrec::lstm_sequence_backward")
def _lstm_sequence_backward_fake(grad_out, grad_h_last, grad_c_last, w_hh, workspace, reset, lengths):
    T, B, _ = workspace.shape
    H = w_hh.shape[1]
    return (
        workspace.new_empty(T, B, 4 * H),
        workspace.new_empty(B, H),
        workspace.new_empty(B, H),
        torch.empty_like(w_hh),
        workspace.new_empty(4 * H),
        workspace.new_empty(4 * H),
    )


# ---- autograd ----
# In C++ (csrc/autograd.cpp): the backward is one call of seqrec::lstm_sequence_backward.


# ---- Python API ----


def lstm_sequence(
    gi: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    b_ih: Optional[Tensor] = None,
    b_hh: Optional[Tensor] = None,
    *,
    reset: Optional[Tensor] = None,
    lengths: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """T LSTM steps in one call: ``gi (T, B, 4H)``, ``h0, c0 (B, H)``, ``w_hh (4H, H)``, biases
    ``(4H,)`` -> ``(out (T, B, H), h_last (B, H), c_last (B, H))``.

    ``reset (T, B)`` bool: row ``b``'s state (``h`` and ``c``) is zeroed before step ``t`` where
    ``reset[t, b]`` (its sequence restarts there). ``lengths (B,)`` int64 in ``[0, T]``: steps
    ``t >= lengths[b]`` are padding, which leaves the state unchanged and outputs zeros (and
    ignores ``reset``), so ``h_last``, ``c_last`` are each row's state after its last real step,
    as with ``torch.nn.LSTM`` on a packed sequence. Differentiable in ``gi``, ``h0``, ``c0``,
    ``w_hh`` and the biases; the backward (through time) is one op call.
    """
    out, h_last, c_last, _ = torch.ops.seqrec.lstm_sequence(gi, h0, c0, w_hh, b_ih, b_hh, reset, lengths)
    return out, h_last, c_last
