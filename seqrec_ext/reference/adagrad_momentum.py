"""Reference Adagrad with momentum, in place, with the ops' signatures."""

from __future__ import annotations

import torch


@torch.no_grad()
def sparse_adagrad_momentum_(param, accumulator, momentum_buffer, indices, grad_rows, *, lr, momentum=0.0, eps=1e-6):
    rows, inverse = torch.unique(indices, sorted=True, return_inverse=True)
    g = torch.zeros(rows.numel(), param.shape[1], dtype=param.dtype, device=param.device)
    g.index_add_(0, inverse, grad_rows)
    acc = accumulator[rows] + g * g
    mom = momentum * momentum_buffer[rows] - lr * g / torch.sqrt(acc + eps)
    accumulator[rows] = acc
    momentum_buffer[rows] = mom
    param[rows] += mom


@torch.no_grad()
def adagrad_momentum_(param, accumulator, momentum_buffer, grad, *, lr, momentum=0.0, eps=1e-6):
    accumulator += grad * grad
    momentum_buffer.mul_(momentum).sub_(lr * grad / torch.sqrt(accumulator + eps))
    param += momentum_buffer
