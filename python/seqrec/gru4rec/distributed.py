"""Data-parallel GRU4Rec training on ``torch.distributed`` (gloo on CPUs, NCCL on GPUs; launched
by ``torchrun``).

Each process trains on its shard of the sessions (every world-th session) with the whole item
tables replicated. A step runs the step op on the local batch (no update), then every process
exchanges what it computed and applies the same update:

* one all-reduce of (active processes, non-finite losses, summed loss, events): the end of the
  epoch is when no process has a batch left (a process whose shard is done keeps taking part
  with empty gradients, so every shard is used whole), and a non-finite loss anywhere stops
  every process before any update;
* the item tables' row gradients (ids and rows, the rows of a repeated id summed first)
  gathered from every process in rank order (the update op sums the ids that repeat across
  processes), the dense gradients all-reduced; both divided by the
  world size, so the step is that of a global batch of world x batch_size sessions (each
  process's loss is divided by its batch size, as GRU4Rec's);
* the same fused update op on the same inputs in every process: the replicas stay bitwise
  identical (the tests check it).

Negatives and dropout masks are drawn per process (each process's generator is seeded with
seed + rank): shared negatives would need every process's batch to score the same columns,
which the exchange does not need, and per-process draws cost nothing to communicate.
"""

from __future__ import annotations

from typing import Iterator, Tuple

import torch
import torch.distributed as dist

from seqrec_ext import RowGrad, StepResult

from .model import GRU4Rec
from .train import OpByOpStep, apply_update


def row_table_names(model: GRU4Rec) -> Tuple[str, ...]:
    """The tables whose gradients come as rows: the output table and bias, and the input table
    when it is not the output table."""
    return (
        ("out_table", "out_bias") if model.config.embedding == "constrained" else ("item_in", "out_table", "out_bias")
    )


def _summed(grad):
    """The row gradient with the rows of a repeated id summed (negatives are drawn with
    replacement by popularity: fewer rows to send), ids ascending."""
    if grad is None:
        return None
    ids, inverse = torch.unique(grad.indices, sorted=True, return_inverse=True)
    values = grad.values.new_zeros((len(ids), *grad.values.shape[1:])).index_add_(0, inverse, grad.values)
    return RowGrad(ids, values)


class DataParallelStep(OpByOpStep):
    """The op-by-op step with its gradients exchanged before the update (see the module)."""

    resets_rows = False

    def __init__(self, model: GRU4Rec):
        super().__init__(model)
        self.world = dist.get_world_size()
        self.rows = row_table_names(model)
        self.dense = tuple(n for n in model.parameter_tensors() if n not in self.rows)
        self.events = 0  # the events of the last step, over all processes

    def _agree(self, active: bool, loss: float, events: int) -> Tuple[int, float]:
        """The one all-reduce of each step: (active processes, the mean loss over them); raises
        FloatingPointError everywhere when some process's loss is not finite."""
        finite = active and loss == loss and abs(loss) != float("inf")
        flags = torch.tensor(
            [float(active), float(active and not finite), loss if finite else 0.0, float(events)], dtype=torch.float64
        )
        dist.all_reduce(flags)
        n_active, n_bad, loss_sum, events_sum = flags.tolist()
        if n_bad:
            raise FloatingPointError(f"non-finite loss in {int(n_bad)} of {self.world} processes")
        self.events = int(events_sum)
        return int(n_active), loss_sum / max(n_active, 1)

    def _exchange(self, result) -> StepResult:
        """Every process's gradients, combined in rank order and divided by the world size, in
        four collectives: the row counts, the row ids, the row values (every table's, flat) and
        the dense gradients (flat)."""
        m, scale = self.model, 1.0 / self.world
        params = m.parameter_tensors()
        grads = [_summed(result.row_grads.get(name)) if result is not None else None for name in self.rows]
        ids = [g.indices if g is not None else torch.zeros(0, dtype=torch.long) for g in grads]
        values = [
            g.values.reshape(-1) if g is not None else params[name].new_zeros(0) for g, name in zip(grads, self.rows)
        ]
        counts = torch.tensor([len(i) for i in ids], dtype=torch.long)
        all_counts = self._all_gather(counts)  # (world, tables)
        widths = [params[name][0].numel() for name in self.rows]  # values per row
        all_ids = self._all_gather(torch.cat(ids), int(all_counts.sum(1).max()))
        n_values = (all_counts * torch.tensor(widths)).sum(1)
        all_values = self._all_gather(torch.cat(values), int(n_values.max()))
        row_grads = {}
        for t, name in enumerate(self.rows):
            rank_ids, rank_values = [], []
            for r in range(self.world):
                start = int(all_counts[r, :t].sum())
                rank_ids.append(all_ids[r, start : start + int(all_counts[r, t])])
                vstart = int((all_counts[r, :t] * torch.tensor(widths[:t], dtype=torch.long)).sum())
                rank_values.append(all_values[r, vstart : vstart + int(all_counts[r, t]) * widths[t]])
            shape = (-1, *params[name].shape[1:])
            row_grads[name] = RowGrad(torch.cat(rank_ids), torch.cat(rank_values).view(shape) * scale)
        dense = [
            (result.dense_grads[name] if result is not None else params[name].new_zeros(params[name].shape)).reshape(-1)
            for name in self.dense
        ]
        flat = torch.cat(dense) if dense else params["out_bias"].new_zeros(0)
        dist.all_reduce(flat)
        flat.mul_(scale)
        dense_grads, start = {}, 0
        for name in self.dense:
            n = params[name].numel()
            dense_grads[name] = flat[start : start + n].view(params[name].shape)
            start += n
        loss = result.loss if result is not None else params["out_bias"].new_zeros(())
        return StepResult(loss=loss, h_new=loss, row_grads=row_grads, dense_grads=dense_grads)

    def _all_gather(self, t: torch.Tensor, length: int = None) -> torch.Tensor:
        """(world, length): every process's ``t``, zero-padded to ``length`` (default: its own)."""
        length = len(t) if length is None else length
        padded = torch.cat([t, t.new_zeros(length - len(t))])
        out = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(out, padded)
        return torch.stack(out)

    def __call__(self, batch, negatives, states, logq) -> Tuple[float, list]:
        value, new_states, result = self.compute(batch, negatives, states, logq)
        _, loss = self._agree(True, value.item(), len(batch.inputs))
        apply_update(self.model, self._exchange(result), self.tables)
        return loss, new_states

    def drain(self) -> Iterator[Tuple[int, float]]:
        """After this process's last batch: take part, with no gradient, in the steps of the
        processes that still have batches, until none has."""
        while True:
            n_active, loss = self._agree(False, 0.0, 0)
            if n_active == 0:
                return
            apply_update(self.model, self._exchange(None), self.tables)
            yield self.events, loss
