"""Alias-table sampler: `alias_build`, `alias_draw` and `PopularitySampler`.

The ops are csrc/alias_sampler.cpp (checks, dispatch), csrc/cpu/alias_sampler_cpu.cpp and
csrc/cuda/alias_sampler_cuda.cu (kernels), with the per-element math shared in
csrc/alias_sampler_math.h; this module registers their fake kernels and gives them Python
signatures. Neither op has a
gradient: a table is a function of popularity counts, not of anything trained.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

__all__ = ["alias_build", "alias_draw", "PopularitySampler"]


@torch.library.register_fake("seqrec::alias_build")
def _alias_build_fake(weights: Tensor) -> tuple[Tensor, Tensor]:
    torch._check(weights.dim() == 1, lambda: f"alias_build: weights must be 1-D, got {weights.dim()}-D")
    n = weights.shape[0]
    return weights.new_empty(n, dtype=torch.float32), weights.new_empty(n, dtype=torch.int64)


@torch.library.register_fake("seqrec::alias_draw")
def _alias_draw_fake(prob: Tensor, alias: Tensor, n: int, generator=None) -> Tensor:
    torch._check(n >= 0, lambda: f"alias_draw: the number of draws n must be >= 0, got {n}")
    return alias.new_empty(n, dtype=torch.int64)


@torch.library.register_fake("seqrec::alias_draw_philox")
def _alias_draw_philox_fake(prob: Tensor, alias: Tensor, n: int, key: int, offset: int) -> Tensor:
    torch._check(n >= 0, lambda: f"alias_draw_philox: the number of draws n must be >= 0, got {n}")
    return alias.new_empty(n, dtype=torch.int64)


def alias_build(weights: Tensor) -> tuple[Tensor, Tensor]:
    """Build a Walker/Vose alias table from non-negative weights in O(N).

    Args:
        weights: ``(N,)`` floating-point tensor; finite, ``>= 0``, at least one positive.
            Zeros are allowed and are never drawn. On CUDA the table is built on the host
            and copied to the weights' device.

    Returns:
        ``(prob, alias)``: ``(N,)`` float32 and ``(N,)`` int64 on the weights' device. Bucket
        ``b`` keeps item ``b`` with probability ``prob[b]``, otherwise gives ``alias[b]``.
    """
    return torch.ops.seqrec.alias_build(weights.detach())


def alias_draw(prob: Tensor, alias: Tensor, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw ``n`` item ids (int64, on the table's device) from an ``alias_build`` table, O(1) each.

    Seeding: the default generator of the table's device (``torch.manual_seed``) or an
    explicit ``generator`` on that device; the same generator state gives the same draws.
    """
    return torch.ops.seqrec.alias_draw(prob, alias, n, generator)


class PopularitySampler:
    """Draws item ids with probability proportional to ``count ** alpha``.

    ``alpha = 0`` is uniform over all items (zero counts included), ``alpha = 1`` the unigram
    distribution; for ``alpha > 0`` items with count 0 are never drawn. GRU4Rec draws its
    shared negatives this way (``sample_alpha``).

    Attributes:
        prob, alias: the alias table on ``device``.
        probs: ``(N,)`` float64 on ``device``: the probability of each item per draw.
        log_q: ``(N,)`` float32 on ``device``: ``log(probs)`` (``-inf`` for items never drawn),
            the term a sampled-softmax logQ correction subtracts.
    """

    def __init__(self, counts, alpha: float = 1.0, device=None):
        counts = torch.as_tensor(counts).detach()
        if counts.dim() != 1:
            raise ValueError(f"PopularitySampler: counts must be 1-D, got shape {tuple(counts.shape)}")
        if counts.numel() == 0:
            raise ValueError("PopularitySampler: counts is empty")
        if counts.dtype == torch.bool or counts.is_complex():
            raise ValueError(f"PopularitySampler: counts must be real numbers, got {counts.dtype}")
        alpha = float(alpha)
        if not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"PopularitySampler: alpha must be finite and >= 0, got {alpha}")
        c = counts.to("cpu", torch.float64)
        if not torch.isfinite(c).all():
            bad = int(torch.nonzero(~torch.isfinite(c))[0])
            raise ValueError(f"PopularitySampler: counts[{bad}] = {c[bad].item()} is not finite")
        if (c < 0).any():
            bad = int(torch.nonzero(c < 0)[0])
            raise ValueError(f"PopularitySampler: counts[{bad}] = {c[bad].item()} is negative")
        c_max = c.max().item()
        if alpha > 0 and c_max == 0:
            raise ValueError("PopularitySampler: all counts are zero, nothing can be drawn")
        # (c / c_max) ** alpha <= 1: no overflow for any count or alpha; 0 ** 0 == 1.
        weights = (c / c_max).pow(alpha) if c_max > 0 else torch.ones_like(c)
        prob, alias = alias_build(weights)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.alpha = alpha
        self.prob = prob.to(self.device)
        self.alias = alias.to(self.device)
        probs = weights / weights.sum()
        self.probs = probs.to(self.device)
        self.log_q = torch.log(probs).to(self.device, torch.float32)

    @property
    def n_items(self) -> int:
        return self.prob.numel()

    def __len__(self) -> int:
        return self.n_items

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` item ids, int64 on the sampler's device."""
        return alias_draw(self.prob, self.alias, n, generator)

    def __repr__(self) -> str:
        return f"PopularitySampler(n_items={self.n_items}, alpha={self.alpha}, device={self.device})"
