"""Fitting and evaluating a baseline as GRU4Rec is evaluated: every prefix of every test session
(or each sequence's last event, leave-one-out) ranked against the whole catalogue, the targets'
ranks in the three tie modes, and the top-k lists' coverage, popularity and Gini -- the same
``seqrec.metrics`` classes. Scores are computed a block of rows at a time as a dense
(rows, items) block, so memory is bounded by the block, never by sessions x items."""

from __future__ import annotations

import math
from typing import Dict, Optional

import torch
from torch import Tensor

from ..gru4rec.data import Sessions
from ..metrics import ListMetrics, RankingMetrics, rank_counts
from .item_knn import ItemKNN
from .popularity import Pop, SessionPop
from .prefixes import prefix_blocks
from .rules import AssociationRules, SequentialRules
from .session_knn import SessionKNN

# name -> (constructor, its parameters' defaults)
BASELINES: Dict[str, tuple] = {
    "pop": (Pop, {}),
    "s-pop": (SessionPop, {}),
    "ar": (AssociationRules, {}),
    "sr": (SequentialRules, {"steps": 10}),
    "item-knn": (ItemKNN, {"alpha": 0.5, "regularization": 20.0}),
    "sknn": (lambda **p: SessionKNN(weighted=False, **p), {"k": 100, "sample_size": 1000}),
    "v-sknn": (lambda **p: SessionKNN(weighted=True, **p), {"k": 100, "sample_size": 1000, "idf": True}),
}


def build_baseline(name: str, **params):
    """The baseline ``name`` (a key of BASELINES) with its defaults, ``params`` on top (a
    parameter it does not have is an error)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
    make, defaults = BASELINES[name]
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(
            f"{name} has no parameter {', '.join(sorted(unknown))} (it has: {', '.join(defaults) or 'none'})"
        )
    return make(**{**defaults, **params})


@torch.no_grad()
def evaluate_baseline(
    model,
    test: Sessions,
    ks=(1, 5, 10, 20),
    modes=None,
    popularity: Optional[Tensor] = None,
    block_rows: int = 512,
    lists: bool = True,
) -> RankingMetrics:
    """The fitted ``model``'s metrics on ``test`` (its items mapped as the training data's), as
    GRU4Rec.evaluate reports them; the top-k lists order equal scores by lower item id."""
    metrics = RankingMetrics(ks=ks) if modes is None else RankingMetrics(ks=ks, modes=modes)
    top = min(max(metrics.ks), test.n_items) if lists else 0
    if lists:
        metrics.lists = ListMetrics(popularity, sorted({min(k, top) for k in metrics.ks}), n_items=test.n_items)
    for session, length, target in prefix_blocks(test, block_rows):
        scores = model.scores(test, session, length)
        metrics.update_counts(*rank_counts(scores, target))
        if lists:
            order = torch.sort(scores.masked_fill(scores.isnan(), -math.inf), dim=1, descending=True, stable=True)
            ids = order.indices[:, :top].masked_fill(order.values[:, :top] == -math.inf, -1)
            metrics.lists.update(ids)
    return metrics
