"""The prefixes a baseline scores: a block of (session, length) pairs of the evaluated sessions,
each prefix the session's first ``length`` events, its target the event after it."""

from __future__ import annotations

from typing import Iterator, Tuple

import torch
from torch import Tensor

from ..gru4rec.data import Sessions


def prefix_blocks(sessions: Sessions, block_rows: int = 512) -> Iterator[Tuple[Tensor, Tensor, Tensor]]:
    """Blocks of ``(session index (B,), prefix length (B,), target (B,))`` over every prefix that
    has a next event (with ``sessions.last_only``: each session's longest one alone)."""
    lengths = sessions.offsets[1:] - sessions.offsets[:-1]
    if sessions.last_only:
        session = torch.nonzero(lengths >= 2).flatten()
        length = lengths[session] - 1
    else:
        counts = (lengths - 1).clamp(min=0)
        session = torch.repeat_interleave(torch.arange(sessions.n_sessions), counts)
        start = torch.cumsum(counts, 0) - counts
        length = torch.arange(int(counts.sum())) - torch.repeat_interleave(start, counts) + 1
    target = sessions.items[sessions.offsets[session] + length]
    for a in range(0, len(session), block_rows):
        yield session[a : a + block_rows], length[a : a + block_rows], target[a : a + block_rows]


def prefix_items(sessions: Sessions, session: Tensor, length: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """The events of a block's prefixes, flattened: ``(row (E,), position in its prefix (E,),
    item (E,))``, each prefix's events in time order."""
    row = torch.repeat_interleave(torch.arange(len(session)), length)
    start = torch.cumsum(length, 0) - length
    position = torch.arange(int(length.sum())) - torch.repeat_interleave(start, length)
    item = sessions.items[sessions.offsets[session][row] + position]
    return row, position, item


def last_items(sessions: Sessions, session: Tensor, length: Tensor) -> Tensor:
    """Each prefix's last item."""
    return sessions.items[sessions.offsets[session] + length - 1]
