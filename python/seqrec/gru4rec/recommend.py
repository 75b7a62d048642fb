"""Next-item recommendations from a trained GRU4Rec for sessions given in the data's own item
ids: each session is run through the network from a zero state, its output scored against the
whole catalogue by the fused ranking op (no (sessions, items) matrix), the session's own items
left out if asked, and the top-k mapped back to the original ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from seqrec_ext import rank_items


@dataclass
class Recommendations:
    """``items (S, k)``: original item ids, best first; ``scores (S, k)``; ``valid (S, k)``:
    False where fewer than k items were left to recommend (those slots' items mean nothing,
    their scores are -inf); ``unknown``: how many input items were not in the model's
    catalogue (skipped)."""

    items: np.ndarray
    scores: np.ndarray
    valid: np.ndarray
    unknown: int


class ItemIndex:
    """Original item ids <-> the model's dense ids (0 .. n_items - 1)."""

    def __init__(self, item_ids: np.ndarray):
        self.item_ids = np.asarray(item_ids)
        self._order = np.argsort(self.item_ids, kind="stable")
        self._sorted = self.item_ids[self._order]

    def dense(self, items) -> tuple[np.ndarray, np.ndarray]:
        """(dense ids of the known items, a mask of which inputs were known)."""
        items = np.asarray(items)
        if items.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        pos = np.minimum(np.searchsorted(self._sorted, items), len(self._sorted) - 1)
        known = self._sorted[pos] == items
        return self._order[pos[known]], known


def recommend(
    model,
    item_ids: np.ndarray,
    sessions: Sequence[Sequence],
    k: int = 20,
    *,
    exclude_seen: bool = True,
    skip_unknown: bool = False,
    batch_size: int = 512,
    labels: Optional[Sequence] = None,
) -> Recommendations:
    """Top-``k`` next items for each session (a sequence of original item ids, oldest first).
    ``exclude_seen``: a session's own items are never recommended to it. An item id not in the
    catalogue is a ValueError naming it, or skipped (and counted) with ``skip_unknown``; a
    session whose every item was skipped gets no recommendation (its row is all invalid), while
    a session given empty is scored from the zero state (the output bias alone).
    ``labels``: what error messages call the sessions (default: their positions)."""
    model.check_finite()
    index = ItemIndex(item_ids)
    if not 1 <= k <= len(index.item_ids):
        raise ValueError(f"k must lie in [1, {len(index.item_ids)}] (the catalogue), got {k}")
    dense, unknown, emptied = [], 0, []
    for n, session in enumerate(sessions):
        ids, known = index.dense(session)
        if not known.all():
            if not skip_unknown:
                missing = np.asarray(session)[~known]
                raise ValueError(
                    f"session {labels[n] if labels is not None else n}: item(s) {', '.join(map(str, missing[:5]))} not in the model's catalogue "
                    "(skip them with skip_unknown=True / --skip-unknown)"
                )
            unknown += int((~known).sum())
            emptied.append(len(ids) == 0 and len(session) > 0)
        else:
            emptied.append(False)
        dense.append(ids)
    p = model.params
    top_ids, top_scores = [], []
    for start in range(0, len(dense), batch_size):
        chunk = dense[start : start + batch_size]
        h = model.session_outputs(chunk)
        exclude = None
        if exclude_seen:
            width = max((len(s) for s in chunk), default=0)
            exclude = torch.full((len(chunk), width), -1, dtype=torch.long)
            for i, s in enumerate(chunk):
                exclude[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
            exclude = exclude.to(model.device)
        r = rank_items(h, p.out_table, p.out_bias, k=k, exclude=exclude, elu_param=model.score_elu)
        top_ids.append(r.top_ids.cpu())
        top_scores.append(r.top_scores.cpu())
    ids = torch.cat(top_ids).numpy() if top_ids else np.zeros((0, k), dtype=np.int64)
    scores = torch.cat(top_scores).numpy() if top_scores else np.zeros((0, k))
    valid = ids >= 0
    # a session whose every item was unknown has nothing to recommend from: no recommendations
    # (not those of an empty session)
    valid[np.asarray(emptied, dtype=bool)] = False
    items = index.item_ids[np.where(valid, ids, 0)]
    return Recommendations(items, scores, valid, unknown)


class NextItems(torch.nn.Module):
    """One serving step of a trained GRU4Rec as a module: each session's current item ``items
    (B,)`` and its state (one ``(B, size)`` tensor per layer, zeros for a new session) ->
    ``(top_ids (B, k), top_scores (B, k), *new states)``, dense ids, best first. Exportable with
    ``torch.export`` (every op on the way has a fake kernel), with a dynamic batch size."""

    def __init__(self, model, k: int = 20):
        super().__init__()
        self.model, self.k = model, int(k)

    def forward(self, items: torch.Tensor, *states: torch.Tensor):
        x, new = self.model.step(items, list(states))
        p = self.model.params
        r = rank_items(x, p.out_table, p.out_bias, k=self.k, elu_param=self.model.score_elu)
        return (r.top_ids, r.top_scores, *new)
