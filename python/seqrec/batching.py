"""Session-parallel mini-batches (SPEC 3; Hidasi et al.): B sessions run side by side, one event
each per step, the target being each session's next event. When a session ends, the next
unused session takes its slot and that row's hidden state must be reset; when no session is
left, the slot is dropped and the batch shrinks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor


@dataclass
class Batch:
    inputs: Tensor   # (b,) int64 current items
    targets: Tensor  # (b,) int64 next items
    reset: Tensor    # (b,) bool: the row starts a new session (zero its hidden state)
    keep: Tensor     # (b,) int64: row i continues row keep[i] of the previous step

    def carry(self, h: Tensor, zero_new: bool = True) -> Tensor:
        """The state this step starts from, given the previous step's (b_prev, H): ``h[keep]``
        with the rows of new sessions zeroed (unless ``zero_new`` is False: a caller that resets
        them itself), written into ``h`` where no row was dropped (keep is then the identity:
        rows only ever leave, at the end, when no session is left)."""
        if self.keep.shape[0] != h.shape[0]:
            h = h.index_select(0, self.keep)
        return h.masked_fill_(self.reset.unsqueeze(1), 0) if zero_new else h


def session_parallel_batches(items: Tensor, session_offsets: Tensor, batch_size: int,
                             device=None) -> Iterator[Batch]:
    """Iterate over sessions stored back to back: session s is ``items[offsets[s]:offsets[s+1]]``
    (every session at least 2 events long). The hidden state of the trainer follows the rows:
    ``h = batch.carry(h)`` (``h = h[batch.keep]; h[batch.reset] = 0``) before each step. The
    batches' tensors are on ``device`` (default: the items' device), copied there once a chunk."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    offsets = session_offsets.tolist()
    n_sessions = len(offsets) - 1
    if n_sessions > 0 and min(b - a for a, b in zip(offsets[:-1], offsets[1:])) < 2:
        raise ValueError("every session needs at least 2 events (drop length-1 sessions first)")
    # The slot bookkeeping runs on Python ints for `chunk` steps at a time; the tensors are made
    # once a chunk, and each step is four slices of them (per-step torch.tensor calls and
    # gathers cost more than the bookkeeping itself). Memory: one chunk, not the whole pass.
    chunk = 256
    slots = list(range(min(batch_size, n_sessions)))     # session of each row
    pos = [offsets[s] for s in slots]                    # position of each row's current event
    reset = [True] * len(slots)
    keep = list(range(len(slots)))
    next_session = len(slots)
    while slots:
        all_pos, all_reset, all_keep, bounds = [], [], [], [0]
        while slots and len(bounds) <= chunk:
            all_pos += pos
            all_reset += reset
            all_keep += keep
            bounds.append(len(all_pos))
            new_slots, new_pos, new_reset, new_keep = [], [], [], []
            for row, (s, p) in enumerate(zip(slots, pos)):
                if p + 2 < offsets[s + 1]:  # the session has another target after this one
                    new_slots.append(s)
                    new_pos.append(p + 1)
                    new_reset.append(False)
                    new_keep.append(row)
                elif next_session < n_sessions:  # a new session takes the slot
                    new_slots.append(next_session)
                    new_pos.append(offsets[next_session])
                    new_reset.append(True)
                    new_keep.append(row)
                    next_session += 1
            slots, pos, reset, keep = new_slots, new_pos, new_reset, new_keep
        idx = torch.tensor(all_pos, dtype=torch.long)
        inputs, targets = items[idx].to(device), items[idx + 1].to(device)
        resets = torch.tensor(all_reset, dtype=torch.bool).to(inputs.device)
        keeps = torch.tensor(all_keep, dtype=torch.long).to(inputs.device)
        for a, b in zip(bounds[:-1], bounds[1:]):
            yield Batch(inputs=inputs[a:b], targets=targets[a:b], reset=resets[a:b], keep=keeps[a:b])
