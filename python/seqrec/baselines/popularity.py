"""Pop and S-Pop.

* **Pop**: an item's score is its number of events in the training data, the same list for
  every prediction.
* **S-Pop** (session popularity): an item's score is how often it occurs in the current
  session's prefix, ties (the items not in it among them) broken by their training counts
  (Ludewig & Jannach, "Evaluation of session-based recommendation algorithms", 2018): the
  score is ``count_in_prefix(i) + pop(i) / (max pop + 1)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..gru4rec.data import Sessions
from .prefixes import prefix_items


class Pop:
    name = "Pop"

    def fit(self, train: Sessions) -> "Pop":
        self.counts = train.item_counts()
        return self

    def scores(self, sessions: Sessions, session: Tensor, length: Tensor) -> Tensor:
        return self.counts.unsqueeze(0).expand(len(session), -1).clone()


class SessionPop(Pop):
    name = "S-Pop"

    def scores(self, sessions: Sessions, session: Tensor, length: Tensor) -> Tensor:
        out = (self.counts / (self.counts.max() + 1)).unsqueeze(0).repeat(len(session), 1)
        row, _, item = prefix_items(sessions, session, length)
        out.index_put_((row, item), torch.ones(len(row), dtype=out.dtype), accumulate=True)
        return out
