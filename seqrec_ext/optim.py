"""GRU4Rec's optimizer, Adagrad with momentum, as a ``torch.optim.Optimizer`` for any model:

    acc += g^2;  mom = momentum * mom - lr * g / sqrt(acc + eps);  param += mom

A parameter whose gradient is sparse (``nn.Embedding(..., sparse=True)``, or
``seqrec_ext.gru_step_ids``) has only the rows its batch touched updated, by the fused row-update
op (the gradients of a repeated row summed first, untouched rows and their state left alone), so
a step costs what the batch touched, not the catalogue; a dense gradient goes through the dense
op. The state (``sum``, ``momentum_buffer``) is kept per parameter and saved by ``state_dict``.
"""

from __future__ import annotations

import torch

from .adagrad_momentum import adagrad_momentum_, sparse_adagrad_momentum_

__all__ = ["SparseAdagradM"]


class SparseAdagradM(torch.optim.Optimizer):
    """Adagrad with momentum (``momentum = 0``: plain Adagrad), sparse-aware.

    ``lr`` > 0, ``0 <= momentum < 1``, ``eps`` > 0 (inside the square root, as GRU4Rec adds
    it), ``initial_accumulator_value`` >= 0 (GRU4Rec starts from 0)."""

    def __init__(
        self, params, lr: float = 0.05, momentum: float = 0.0, eps: float = 1e-6, initial_accumulator_value=0.0
    ):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not initial_accumulator_value >= 0:
            raise ValueError(f"initial_accumulator_value must be >= 0, got {initial_accumulator_value}")
        defaults = dict(lr=lr, momentum=momentum, eps=eps, initial_accumulator_value=initial_accumulator_value)
        super().__init__(params, defaults)

    def _state_of(self, p, group):
        state = self.state[p]
        if not state:
            state["sum"] = torch.full_like(p, group["initial_accumulator_value"], memory_format=torch.contiguous_format)
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.contiguous_format)
        return state["sum"], state["momentum_buffer"]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            options = dict(lr=group["lr"], momentum=group["momentum"], eps=group["eps"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.is_contiguous():
                    raise ValueError("SparseAdagradM updates parameters in place: they must be contiguous")
                acc, mom = self._state_of(p, group)
                grad = p.grad
                if grad.is_sparse:
                    if grad.sparse_dim() != 1:
                        raise ValueError(
                            f"a sparse gradient must index rows (sparse_dim 1, as nn.Embedding's), got {grad.sparse_dim()}"
                        )
                    rows = p.shape[0]
                    sparse_adagrad_momentum_(
                        p.view(rows, -1),
                        acc.view(rows, -1),
                        mom.view(rows, -1),
                        grad._indices()[0],
                        grad._values().reshape(grad._values().shape[0], -1),
                        **options,
                    )
                else:
                    adagrad_momentum_(p, acc, mom, grad.contiguous(), **options)
        return loss
