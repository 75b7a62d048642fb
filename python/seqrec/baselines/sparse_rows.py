"""An item x item table of non-negative weights stored by rows (CSR): the rules and similarities
of the baselines, whose memory is bounded by their non-zeros."""

from __future__ import annotations

from typing import Iterable, Tuple

import torch
from torch import Tensor


def _coalesce(key: Tensor, weight: Tensor) -> Tuple[Tensor, Tensor]:
    """Sorted unique keys and the summed weight of each."""
    unique, inverse = torch.unique(key, return_inverse=True)
    return unique, torch.zeros(len(unique), dtype=torch.float64).index_add_(0, inverse, weight)


class SparseRows:
    """``weights[a, b]`` for the (a, b) pairs that have one; built by summing the weights of
    repeated pairs."""

    def __init__(self, a: Tensor, b: Tensor, w: Tensor, n_items: int):
        self.n_items = n_items
        self._set(*_coalesce(a.long() * n_items + b.long(), w.double()))

    @classmethod
    def from_chunks(cls, chunks: Iterable[Tuple[Tensor, Tensor, Tensor]], n_items: int, bound: int = 1 << 22):
        """From ``(a, b, w)`` chunks, summed as they come whenever more than ``bound`` entries
        wait: the memory is bounded by the table's non-zeros plus ``bound``, not by the pairs."""
        keys, weights, waiting = [], [], 0
        for a, b, w in chunks:
            keys.append(a.long() * n_items + b.long())
            weights.append(w.double())
            waiting += len(a)
            if waiting > bound:
                key, weight = _coalesce(torch.cat(keys), torch.cat(weights))
                keys, weights, waiting = [key], [weight], len(key)
        table = cls.__new__(cls)
        table.n_items = n_items
        empty = torch.zeros(0, dtype=torch.long)
        table._set(*_coalesce(torch.cat(keys) if keys else empty, torch.cat(weights) if weights else empty.double()))
        return table

    def _set(self, unique: Tensor, total: Tensor) -> None:
        self.col = unique % self.n_items
        rows = unique // self.n_items
        self.crow = torch.zeros(self.n_items + 1, dtype=torch.long)
        self.crow[1:] = torch.cumsum(torch.bincount(rows, minlength=self.n_items), 0)
        self.val = total

    @property
    def nnz(self) -> int:
        return len(self.col)

    def row_sums(self) -> Tensor:
        """Each row's total weight."""
        rows = torch.repeat_interleave(torch.arange(self.n_items), self.crow[1:] - self.crow[:-1])
        return torch.zeros(self.n_items, dtype=torch.float64).index_add_(0, rows, self.val)

    def dense(self, items: Tensor, scale: Tensor | None = None) -> Tensor:
        """``(len(items), n_items)``: row ``r`` is the table's row of ``items[r]`` (times
        ``scale[r]``)."""
        out = torch.zeros(len(items), self.n_items, dtype=torch.float64)
        self.accumulate(out, torch.arange(len(items)), items, scale)
        return out

    def accumulate(self, out: Tensor, rows: Tensor, items: Tensor, scale: Tensor | None = None) -> None:
        """``out[rows[j]] += scale[j] * table[items[j]]`` for every j."""
        starts, ends = self.crow[items], self.crow[items + 1]
        counts = ends - starts
        if int(counts.sum()) == 0:
            return
        index = torch.repeat_interleave(starts - torch.cumsum(counts, 0) + counts, counts) + torch.arange(
            int(counts.sum())
        )
        values = self.val[index]
        if scale is not None:
            values = values * torch.repeat_interleave(scale.double(), counts)
        out.index_put_((torch.repeat_interleave(rows, counts), self.col[index]), values, accumulate=True)
