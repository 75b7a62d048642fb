"""Adagrad with momentum (GRU4Rec's optimizer), in place:

    acc += g^2;  mom = momentum * mom - lr * g / sqrt(acc + eps);  param += mom

`sparse_adagrad_momentum_` applies it to the touched rows of a table only (the gradients of
repeated rows summed first), so an epoch's optimizer cost does not grow with the catalogue;
`adagrad_momentum_` applies it to a dense parameter. Kernels: csrc/adagrad_momentum.cpp,
csrc/cpu/adagrad_momentum_cpu.cpp, csrc/cuda/adagrad_momentum_cuda.cu.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sparse_adagrad_momentum_", "adagrad_momentum_"]


@torch.library.register_fake("seqrec::sparse_adagrad_momentum_")
def _sparse_adagrad_momentum_fake(param, accumulator, momentum_buffer, indices, grad_rows, lr, momentum, eps):
    return None


@torch.library.register_fake("seqrec::adagrad_momentum_")
def _adagrad_momentum_fake(param, accumulator, momentum_buffer, grad, lr, momentum, eps):
    return None


def sparse_adagrad_momentum_(
    param: Tensor,
    accumulator: Tensor,
    momentum_buffer: Tensor,
    indices: Tensor,
    grad_rows: Tensor,
    *,
    lr: float,
    momentum: float = 0.0,
    eps: float = 1e-6,
) -> None:
    """Update rows ``indices (K,)`` of ``param (N, D)`` (and its state tensors, same shape) with
    ``grad_rows (K, D)``; an index may repeat. ``momentum = 0`` is plain Adagrad."""
    with torch.no_grad():
        torch.ops.seqrec.sparse_adagrad_momentum_(
            param, accumulator, momentum_buffer, indices, grad_rows, float(lr), float(momentum), float(eps)
        )


def adagrad_momentum_(
    param: Tensor,
    accumulator: Tensor,
    momentum_buffer: Tensor,
    grad: Tensor,
    *,
    lr: float,
    momentum: float = 0.0,
    eps: float = 1e-6,
) -> None:
    """The same rule for a dense parameter of any shape."""
    with torch.no_grad():
        torch.ops.seqrec.adagrad_momentum_(
            param, accumulator, momentum_buffer, grad, float(lr), float(momentum), float(eps)
        )
