"""Association rules (AR) and sequential rules (SR), rules of size two counted in the training
sessions (Ludewig & Jannach, "Evaluation of session-based recommendation algorithms", User
Modeling and User-Adapted Interaction 28, 2018; SR from Kamehkhosh, Jannach & Ludewig,
"A comparison of frequent pattern techniques and a deep learning method for session-based
recommendation", RecTemp@RecSys 2017).

For a prediction after the prefix whose last item is ``a``:

* **AR**: score(i) = the number of pairs of positions x != y in a training session with ``a``
  at x and ``i`` at y (co-occurrence in either order, at any distance), divided by the number
  of rules starting at ``a`` -- a constant for the prediction, so it does not change the
  ranking (kept so the scores read as shares).
* **SR**: score(i) = the sum over training sessions of ``1 / (y - x)`` for every pair of
  positions x < y with ``a`` at x and ``i`` at y, at most ``steps`` apart (default 10), divided
  likewise: an item that follows ``a`` soon after counts most.

An item equal to ``a`` at another position counts like any other (a repeat is a rule too).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..gru4rec.data import Sessions
from .prefixes import last_items
from .sparse_rows import SparseRows


def position_pairs(train: Sessions, max_distance: int):
    """For each distance d = 1 .. max_distance, the pairs of event indices (x, x + d) of one
    session: yields ``(x, y, d)`` (vectorised per distance; the pairs of all distances are
    never held at once)."""
    lengths = train.offsets[1:] - train.offsets[:-1]
    index = torch.arange(train.n_events)
    end = train.offsets[1:][torch.repeat_interleave(torch.arange(train.n_sessions), lengths)]  # one past its session
    for d in range(1, max_distance + 1):
        keep = index + d < end  # an event with no partner at distance d has none further
        index, end = index[keep], end[keep]
        if len(index) == 0:
            return
        yield index, index + d, d


class _Rules:
    name = ""

    def scores(self, sessions: Sessions, session: Tensor, length: Tensor) -> Tensor:
        last = last_items(sessions, session, length)
        totals = self.totals[last]
        return self.table.dense(last, torch.where(totals > 0, 1.0 / totals.clamp(min=1e-300), 0.0))


class AssociationRules(_Rules):
    name = "AR"

    def fit(self, train: Sessions) -> "AssociationRules":
        def both_ways():
            for x, y, _ in position_pairs(train, train.n_events):
                a, b = train.items[x], train.items[y]
                ones = torch.ones(2 * len(x), dtype=torch.float64)
                yield torch.cat([a, b]), torch.cat([b, a]), ones

        self.table = SparseRows.from_chunks(both_ways(), train.n_items)
        self.totals = self.table.row_sums()
        return self


class SequentialRules(_Rules):
    name = "SR"

    def __init__(self, steps: int = 10):
        if steps < 1:
            raise ValueError(f"SR's steps must be >= 1, got {steps}")
        self.steps = steps

    def fit(self, train: Sessions) -> "SequentialRules":
        pairs = (
            (train.items[x], train.items[y], torch.full((len(x),), 1.0 / d, dtype=torch.float64))
            for x, y, d in position_pairs(train, self.steps)
        )
        self.table = SparseRows.from_chunks(pairs, train.n_items)
        self.totals = self.table.row_sums()
        return self
