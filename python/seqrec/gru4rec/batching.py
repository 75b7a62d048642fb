"""Session-parallel mini-batches (Hidasi et al.): B sessions run side by side, one event
each per step, the target being each session's next event. When a session ends, the next
unused session takes its slot and that row's hidden state must be reset; when no session is
left, the slot is dropped and the batch shrinks.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor


@dataclass
class Batch:
    inputs: Tensor  # (b,) int64 current items
    targets: Tensor  # (b,) int64 next items
    reset: Tensor  # (b,) bool: the row starts a new session (zero its hidden state)
    keep: Tensor  # (b,) int64: row i continues row keep[i] of the previous step

    def carry(self, h: Tensor, zero_new: bool = True) -> Tensor:
        """The state this step starts from, given the previous step's (b_prev, H): ``h[keep]``
        with the rows of new sessions zeroed (unless ``zero_new`` is False: a caller that resets
        them itself), written into ``h`` where no row was dropped (keep is then the identity:
        rows only ever leave, at the end, when no session is left)."""
        if self.keep.shape[0] != h.shape[0]:
            h = h.index_select(0, self.keep)
        return h.masked_fill_(self.reset.unsqueeze(1), 0) if zero_new else h


def session_parallel_batches(items: Tensor, session_offsets: Tensor, batch_size: int, device=None) -> Iterator[Batch]:
    """Iterate over sessions stored back to back: session s is ``items[offsets[s]:offsets[s+1]]``
    (every session at least 2 events long). The hidden state of the trainer follows the rows:
    ``h = batch.carry(h)`` (``h = h[batch.keep]; h[batch.reset] = 0``) before each step. The
    batches' tensors are on ``device`` (default: the items' device), copied there once a chunk
    of 256 steps. Memory: a table of (steps x batch_size) positions, one int64 per event and
    per slot left idle at the end. Tested against the rule run one row at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    offsets_t = session_offsets.to("cpu", torch.long)
    n_sessions = offsets_t.numel() - 1
    n_targets = offsets_t[1:] - offsets_t[:-1] - 1  # steps each session takes
    if n_sessions > 0 and int(n_targets.min()) < 1:
        raise ValueError("every session needs at least 2 events (drop length-1 sessions first)")
    n_slots = min(batch_size, n_sessions)
    if n_slots == 0:
        return
    # Which slot runs each session, from which step: a slot takes the next unused session at the
    # step its session ends, slots ending together in slot order (a heap of (free step, slot);
    # a Python loop over sessions, not over events).
    steps_of = n_targets.tolist()
    slot_of, start_of = list(range(n_slots)) + [0] * (n_sessions - n_slots), [0] * n_sessions
    free = [(steps_of[k], k) for k in range(n_slots)]
    heapq.heapify(free)
    for s in range(n_slots, n_sessions):
        step, k = heapq.heappop(free)
        slot_of[s], start_of[s] = k, step
        heapq.heappush(free, (step + steps_of[s], k))
    n_steps = max(step for step, _ in free)
    # The position of the current event of every (step, slot), -1 where the slot has no session
    # left (the batch shrinks at the end), filled a block of sessions at a time.
    table = torch.full((n_steps * n_slots,), -1, dtype=torch.long)
    slot_t, start_t = torch.tensor(slot_of, dtype=torch.long), torch.tensor(start_of, dtype=torch.long)
    for s0 in range(0, n_sessions, 1 << 16):
        s1 = min(s0 + (1 << 16), n_sessions)
        counts = n_targets[s0:s1]
        sess = torch.repeat_interleave(torch.arange(s0, s1), counts)
        j = torch.arange(sess.numel()) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        table[(start_t[sess] + j) * n_slots + slot_t[sess]] = offsets_t[sess] + j
    table = table.view(n_steps, n_slots)
    starts = torch.zeros(int(offsets_t[-1]), dtype=torch.bool)
    starts[offsets_t[:-1]] = True  # the first event of each session
    # Tensors for `chunk` steps at a time; each step is four slices of them.
    chunk = 256
    for t0 in range(0, n_steps, chunk):
        t1 = min(t0 + chunk, n_steps)
        rows = table[t0:t1]
        active = rows >= 0
        # a row continues the slot's row of the previous step: its rank among that step's slots
        # (before the first step every slot counts: keep is the identity there)
        if t0 == 0:
            prev = torch.cat([torch.ones(1, n_slots, dtype=torch.bool), active[:-1]])
        else:
            prev = table[t0 - 1 : t1 - 1] >= 0
        pos = rows[active]
        keeps = (prev.long().cumsum(1) - 1)[active].to(device if device is not None else items.device)
        inputs, targets = items[pos].to(device), items[pos + 1].to(device)
        resets = starts[pos].to(inputs.device)
        bounds = [0] + active.sum(1).cumsum(0).tolist()
        for a, b in zip(bounds[:-1], bounds[1:]):
            yield Batch(inputs=inputs[a:b], targets=targets[a:b], reset=resets[a:b], keep=keeps[a:b])
