"""Item-kNN, GRU4Rec's item-to-item baseline (Hidasi et al., "Session-based recommendations with
recurrent neural networks", ICLR 2016): items are similar when they occur in the same training
sessions; a prediction after the prefix whose last item is ``a`` scores every item by its
similarity with ``a``:

    sim(a, b) = n_ab / (n_a^alpha * n_b^(1 - alpha) + lambda),  a != b

where n_a is the number of training sessions containing ``a`` and n_ab the number containing
both (each session counted once, however often it repeats them). alpha = 0.5 makes it the
cosine similarity of the items' binary session vectors; lambda (default 20) is the
regularisation that keeps rare items from coincidentally high similarities, as the paper's
baseline has it. sim(a, a) is 0: the last item itself is not recommended by similarity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..gru4rec.data import Sessions
from .prefixes import last_items
from .rules import position_pairs
from .sparse_rows import SparseRows


def session_sets(train: Sessions) -> Sessions:
    """The training sessions with each item once (in id order): what set-based similarities see."""
    lengths = train.offsets[1:] - train.offsets[:-1]
    session_of = torch.repeat_interleave(torch.arange(train.n_sessions), lengths)
    keys = torch.unique(session_of * train.n_items + train.items)
    owner, items = keys // train.n_items, keys % train.n_items
    offsets = torch.zeros(train.n_sessions + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(torch.bincount(owner, minlength=train.n_sessions), 0)
    return Sessions(items, offsets, torch.zeros(len(items), dtype=torch.float64), train.session_ids, train.item_ids)


class ItemKNN:
    name = "item-kNN"

    def __init__(self, alpha: float = 0.5, regularization: float = 20.0):
        if not (0.0 <= alpha <= 1.0 and math.isfinite(regularization) and regularization >= 0):
            raise ValueError(f"item-kNN needs 0 <= alpha <= 1 and lambda >= 0, got {alpha}, {regularization}")
        self.alpha, self.regularization = alpha, regularization

    def fit(self, train: Sessions) -> "ItemKNN":
        sets = session_sets(train)
        support = torch.bincount(sets.items, minlength=train.n_items).double()  # n_a

        def pairs():
            for x, y, _ in position_pairs(sets, sets.n_events):
                a, b = sets.items[x], sets.items[y]
                yield torch.cat([a, b]), torch.cat([b, a]), torch.ones(2 * len(x), dtype=torch.float64)

        table = SparseRows.from_chunks(pairs(), train.n_items)
        rows = torch.repeat_interleave(torch.arange(train.n_items), table.crow[1:] - table.crow[:-1])
        denominator = support[rows] ** self.alpha * support[table.col] ** (1 - self.alpha) + self.regularization
        table.val = table.val / denominator
        self.table = table
        return self

    def scores(self, sessions: Sessions, session: Tensor, length: Tensor) -> Tensor:
        return self.table.dense(last_items(sessions, session, length))
