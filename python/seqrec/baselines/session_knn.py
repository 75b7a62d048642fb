"""Session-based kNN: SKNN and V-SKNN (Jannach & Ludewig, "When recurrent neural networks meet
the neighborhood for session-based recommendation", RecSys 2017; Ludewig & Jannach,
"Evaluation of session-based recommendation algorithms", UMUAI 2018).

For a prediction after the prefix s of the current session:

1. **Candidates**: the ``sample_size`` most recent training sessions (by their last event;
   default 1000) among those that share an item with s, found through an inverted index from
   items to the sessions containing them, each item's sessions kept most recent first.
2. **Similarity** of s with a candidate n, both as sets of items:
   * SKNN: the cosine of binary vectors, |s & n| / sqrt(|s| |n|);
   * V-SKNN: the dot product of s as a real-valued vector, whose items weigh by how recently
     they occurred in the prefix -- linearly, an item last seen at position p of a prefix of
     length L weighs p / L, so the last item weighs 1 -- with n's binary vector; with ``idf``
     (the default for V-SKNN), each shared item's term is also multiplied by its inverse
     document frequency log(N / n_i) (N training sessions, n_i of them containing i).
3. **Neighbours**: the ``k`` most similar candidates (default 100; equal similarities: the
   more recent session first).
4. **Scores**: score(i) = the sum of the neighbours' similarities over the neighbours that
   contain i.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..gru4rec.data import Sessions
from .item_knn import session_sets
from .prefixes import prefix_items


class SessionKNN:
    """SKNN (``weighted=False``) or V-SKNN (``weighted=True``)."""

    def __init__(self, k: int = 100, sample_size: int = 1000, weighted: bool = False, idf: bool | None = None):
        if k < 1 or sample_size < 1:
            raise ValueError(f"session kNN needs k >= 1 and sample_size >= 1, got {k}, {sample_size}")
        self.k, self.sample_size, self.weighted = k, sample_size, weighted
        self.idf = weighted if idf is None else idf
        if self.idf and not weighted:
            raise ValueError("IDF weighting belongs to V-SKNN's similarity (weighted=True)")
        self.name = "V-SKNN" if weighted else "SKNN"

    def fit(self, train: Sessions) -> "SessionKNN":
        sets = session_sets(train)
        self.sets, self.n_items = sets, train.n_items
        self.set_size = (sets.offsets[1:] - sets.offsets[:-1]).double()
        last_time = train.times[train.offsets[1:] - 1]
        # recency rank of each session: 0 = the most recent (equal times: the later session first)
        by_recency = torch.from_numpy(np.lexsort((-np.arange(train.n_sessions), -last_time.numpy())))
        self.recency = torch.empty(train.n_sessions, dtype=torch.long)
        self.recency[by_recency] = torch.arange(train.n_sessions)
        # the inverted index: each item's sessions, most recent first
        lengths = sets.offsets[1:] - sets.offsets[:-1]
        owner = torch.repeat_interleave(torch.arange(sets.n_sessions), lengths)
        order = torch.argsort(sets.items * train.n_sessions + self.recency[owner])
        self.index_sessions = owner[order]
        self.index_offsets = torch.zeros(train.n_items + 1, dtype=torch.long)
        self.index_offsets[1:] = torch.cumsum(torch.bincount(sets.items, minlength=train.n_items), 0)
        support = torch.bincount(sets.items, minlength=train.n_items).double()
        self.item_idf = torch.where(support > 0, torch.log(train.n_sessions / support.clamp(min=1)), 0.0)
        return self

    def _neighbours(self, items: Tensor, weights: Tensor):
        """(neighbour sessions, similarities) of a prefix given as its distinct items and weights."""
        starts = self.index_offsets[items]
        counts = (self.index_offsets[items + 1] - starts).clamp(max=self.sample_size)
        if int(counts.sum()) == 0:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.float64)
        index = torch.repeat_interleave(starts - torch.cumsum(counts, 0) + counts, counts) + torch.arange(
            int(counts.sum())
        )
        hit = self.index_sessions[index]  # one entry per (prefix item, session containing it)
        term = torch.repeat_interleave(weights, counts)
        candidates, inverse = torch.unique(hit, return_inverse=True)
        # the sample: the most recent candidates (their overlaps are complete, see the docstring)
        recent = torch.argsort(self.recency[candidates])[: self.sample_size]
        keep = torch.zeros(len(candidates), dtype=torch.bool)
        keep[recent] = True
        overlap = torch.zeros(len(candidates), dtype=torch.float64).index_add_(0, inverse, term)
        candidates, overlap = candidates[keep], overlap[keep]
        if self.weighted:
            similarity = overlap
        else:
            similarity = overlap / torch.sqrt(len(items) * self.set_size[candidates])
        # the k most similar; equal similarities: the more recent session first
        order = torch.argsort(self.recency[candidates])
        candidates, similarity = candidates[order], similarity[order]
        best = torch.argsort(similarity, descending=True, stable=True)[: self.k]
        return candidates[best], similarity[best]

    def scores(self, sessions: Sessions, session: Tensor, length: Tensor) -> Tensor:
        out = torch.zeros(len(session), self.n_items, dtype=torch.float64)
        row, position, item = prefix_items(sessions, session, length)
        bounds = torch.cumsum(length, 0)
        for r in range(len(session)):
            a = int(bounds[r] - length[r])
            items, positions = item[a : int(bounds[r])], position[a : int(bounds[r])]
            distinct, inverse = torch.unique(items, return_inverse=True)
            if self.weighted:  # an item weighs by its latest position: p / L
                latest = torch.zeros(len(distinct), dtype=torch.long).scatter_reduce_(
                    0, inverse, positions + 1, reduce="amax"
                )
                weights = latest.double() / int(length[r])
                if self.idf:
                    weights = weights * self.item_idf[distinct]
            else:
                weights = torch.ones(len(distinct), dtype=torch.float64)
            neighbours, similarity = self._neighbours(distinct, weights)
            if len(neighbours) == 0:
                continue
            starts = self.sets.offsets[neighbours]
            sizes = self.sets.offsets[neighbours + 1] - starts
            index = torch.repeat_interleave(starts - torch.cumsum(sizes, 0) + sizes, sizes) + torch.arange(
                int(sizes.sum())
            )
            out[r].index_add_(0, self.sets.items[index], torch.repeat_interleave(similarity, sizes))
        return out
