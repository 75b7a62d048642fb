"""Reference alias-table sampler: Vose's method as a plain Python loop, and draws with torch's
own random functions.

`alias_build` performs the same arithmetic in the same order as the kernel, so the tables are
expected to be identical, not merely close. `alias_draw` uses a different random stream from
the kernel (torch.randint / torch.rand), so draws agree in distribution only.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor


def alias_build(weights: Tensor) -> tuple[Tensor, Tensor]:
    if weights.dim() != 1:
        raise RuntimeError(f"alias_build: weights must be 1-D, got shape {tuple(weights.shape)}")
    if not weights.is_floating_point():
        raise RuntimeError(f"alias_build: weights must be a floating-point tensor, got {weights.dtype}")
    n = weights.numel()
    if n == 0:
        raise ValueError("alias_build: weights is empty")
    w = weights.detach().to("cpu", torch.float64).tolist()
    for i, x in enumerate(w):
        if not math.isfinite(x):
            raise ValueError(f"alias_build: weights[{i}] = {x} is not finite")
        if x < 0:
            raise ValueError(f"alias_build: weights[{i}] = {x} is negative")
    w_max = max(w)
    if w_max == 0:
        raise ValueError(f"alias_build: all {n} weights are zero")
    total = 0.0
    for x in w:
        total += x / w_max
    to_buckets = n / total
    q = [(x / w_max) * to_buckets for x in w]
    small = [i for i in range(n) if q[i] < 1.0]
    large = [i for i in range(n) if q[i] >= 1.0]
    prob = [0.0] * n
    alias = [0] * n
    while small and large:
        s = small.pop()
        l = large[-1]
        prob[s] = q[s]
        alias[s] = l
        q[l] = (q[l] + q[s]) - 1.0
        if q[l] < 1.0:
            large.pop()
            small.append(l)
    for l in large:
        prob[l], alias[l] = 1.0, l
    i_max = w.index(w_max)
    for s in small:
        prob[s], alias[s] = (1.0, s) if w[s] > 0 else (0.0, i_max)
    device = weights.device
    return (
        torch.tensor(prob, dtype=torch.float32, device=device),
        torch.tensor(alias, dtype=torch.int64, device=device),
    )


def alias_draw(prob: Tensor, alias: Tensor, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
    if n < 0:
        raise ValueError(f"alias_draw: the number of draws n must be >= 0, got {n}")
    if prob.numel() != alias.numel():
        raise ValueError("alias_draw: prob and alias have different lengths: they are not one table")
    bucket = torch.randint(prob.numel(), (n,), generator=generator, device=prob.device)
    coin = torch.rand(n, generator=generator, device=prob.device, dtype=torch.float64)
    return torch.where(coin < prob[bucket].double(), bucket, alias[bucket])


def alias_distribution(prob: Tensor, alias: Tensor) -> Tensor:
    """The exact distribution a table draws from, float64: bucket b gives item b with
    probability prob[b] / N and item alias[b] with probability (1 - prob[b]) / N."""
    p = prob.detach().to(torch.float64)
    n = p.numel()
    dist = p.clone()
    dist.index_add_(0, alias.detach(), 1.0 - p)
    return dist / n
