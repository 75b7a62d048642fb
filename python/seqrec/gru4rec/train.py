"""GRU4Rec's training: session-parallel steps with shared popularity-sampled negatives and
GRU4Rec's Adagrad with momentum applied to the touched item-table rows only. A step runs one of
two ways -- the fused op that also updates (``FusedStep``, one layer) or the step op then one
update op per parameter (``OpByOpStep``; stacked layers through ``stacked_step``)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Tuple

import torch
from torch import Tensor

import seqrec_ext
from seqrec_ext import PopularitySampler, StepResult, gru4rec_step
from seqrec_ext.gru4rec_step import step_dropout_masks, table_row_grads
from seqrec_ext.threads import ThreadTuner

from .batching import session_parallel_batches
from .config import PRECISIONS, GRU4RecConfig
from .data import Sessions

if TYPE_CHECKING:
    from .model import GRU4Rec

ADAGRAD_EPS = 1e-6  # inside the square root of GRU4Rec's Adagrad
# Negatives are drawn for this many steps in one sampler call, as GRU4Rec keeps a cache of
# samples: one call of 256 x 2048 draws costs 5 us a step against 13 us for a call a step.
NEGATIVE_CACHE_STEPS = 256


def apply_update(model: "GRU4Rec", result, tables=None) -> None:
    """GRU4Rec's Adagrad with momentum: the touched rows of the item tables, then the dense
    parameters. ``tables``: ``update_tables(model)`` made once for many steps."""
    c = model.config
    lr, mu, eps = float(c.learning_rate), float(c.momentum), ADAGRAD_EPS
    ops = torch.ops.seqrec  # the ops directly: these tensors need no autograd
    for name, (param, acc, mom) in (tables or update_tables(model)).items():
        if name in result.row_grads:
            rows = result.row_grads[name]
            values = rows.values.view(-1, 1) if rows.values.dim() == 1 else rows.values
            ops.sparse_adagrad_momentum_(param, acc, mom, rows.indices, values, lr, mu, eps)
        elif name in result.dense_grads:
            ops.adagrad_momentum_(param, acc, mom, result.dense_grads[name], lr, mu, eps)


def update_tables(model: "GRU4Rec") -> dict:
    """name -> (parameter, accumulator, momentum buffer), 1-D ones (the bias) as (N, 1) rows."""
    out = {}
    for name, param in model.parameter_tensors().items():
        acc, mom = model.optimizer_state[name]
        if name == "out_bias":
            param, acc, mom = param.view(-1, 1), acc.view(-1, 1), mom.view(-1, 1)
        out[name] = (param, acc, mom)
    return out


def dropouts(config: GRU4RecConfig) -> Tuple[float, float]:
    """(input rows, first layer's output) dropout probabilities: in mode none GRU4Rec's
    embedding is its first GRU layer, and the embedding dropout acts on that layer's output."""
    c = config
    return (0.0, c.dropout_embed) if c.embedding == "none" else (c.dropout_embed, c.dropout_hidden)


def train_steps(
    model: "GRU4Rec", sessions: Sessions, sampler=None, fused: Optional[bool] = None, *, counts=None, step=None
) -> Iterator[Tuple[int, float]]:
    """One epoch of session-parallel training, one step at a time: yields each step's
    (events, loss) after its update. Each step's summed loss is divided by the configured
    batch size, also in the last steps of the epoch when fewer sessions are left (as GRU4Rec
    trains). Raises FloatingPointError (parameters untouched by the failing step) on a
    non-finite loss. Negatives come from ``sampler.sample(n, generator=)`` (default: a
    PopularitySampler of the training counts to the power sample_alpha), drawn with the
    model's generator. ``fused``: each step and its update as one op call
    (``gru4rec_train_step_``, the default) or as the step op and one update op per parameter
    (``False``; the same result, bitwise on the CPU). ``counts``: the items' support that
    the sampler and logQ use (default: ``sessions``'; a shard of the data passes the whole
    data's). ``step``: another way to run a step (seqrec.gru4rec.distributed's), whose
    ``drain()`` runs after this process's last batch."""
    c = model.config
    if fused and c.layers:
        raise ValueError("the fused training step is for one GRU layer; stacked layers train op by op (fused=False)")
    if step is None:
        step = (FusedStep if (not c.layers if fused is None else fused) else OpByOpStep)(model)
    counts = sessions.item_counts() if counts is None else counts
    if sampler is None:
        sampler = PopularitySampler(counts, alpha=c.sample_alpha, device=model.device)
    dtype = model.params.out_table.dtype
    log_counts = counts.clamp(min=1).log().to(dtype).to(model.device)
    state_dtype = PRECISIONS[c.precision] or dtype  # bf16: the step's products in bfloat16
    states = [torch.zeros(c.batch_size, size, device=model.device, dtype=state_dtype) for size in c.sizes]
    negatives = torch.zeros(0, dtype=torch.long, device=model.device)
    cache, cached = None, 0  # negatives drawn for NEGATIVE_CACHE_STEPS steps at a time
    batches = session_parallel_batches(sessions.items, sessions.offsets, c.batch_size, device=model.device)
    for n_steps, batch in enumerate(batches):
        if c.n_sample == 0 and len(batch.inputs) < 2:
            break  # a lone row has no negative at all (GRU4Rec ends its epoch there too)
        states = [batch.carry(h, zero_new=not step.resets_rows) for h in states]
        if c.n_sample > 0:
            if cached == 0:
                cache = sampler.sample(NEGATIVE_CACHE_STEPS * c.n_sample, generator=model.generator)
                cache, cached = cache.view(NEGATIVE_CACHE_STEPS, c.n_sample), NEGATIVE_CACHE_STEPS
            negatives, cached = cache[NEGATIVE_CACHE_STEPS - cached], cached - 1
        logq = (
            seqrec_ext.logq_correction(log_counts, batch.targets, negatives, logq=c.logq, alpha=c.sample_alpha)
            if c.loss == "cross-entropy" and c.logq > 0
            else None
        )
        loss, new_states = step(batch, negatives, states, logq)
        if not math.isfinite(loss):  # (neither strategy has updated anything)
            raise FloatingPointError(f"non-finite loss {loss} at step {n_steps}")
        states = new_states
        yield getattr(step, "events", len(batch.inputs)), loss
    if hasattr(step, "drain"):
        yield from step.drain()


def stacked_step(model: "GRU4Rec", inputs, targets, negatives, states, logq, normalizer):
    """One training step of stacked layers, op by op: the GRU step op up the lower layers,
    the fused step-and-loss op on the top one, the GRU backward op down again (truncated:
    no gradient into the previous states). Dropout masks in GRU4Rec's order: the input
    rows, then each layer's output (whose masked value is the layer's carried state).
    Returns (loss, the new states, a StepResult with every parameter's gradient)."""
    c, p, ops = model.config, model.params, torch.ops.seqrec
    p_embed, p_first = dropouts(model.config)
    layers = model._layers()
    g = model.generator
    with torch.no_grad():
        out_ids = torch.cat([targets, negatives])
        rows = p.input_table.index_select(0, inputs)
        embed_mask, masks = step_dropout_masks(
            len(inputs), rows.shape[1], c.sizes, rows, p_embed, p_first, c.dropout_hidden, g
        )
        x = rows if embed_mask is None else rows * embed_mask
        saved, new_states = [], []
        for l, (w_in, w_hh, b_h, b_hh, reset_after) in enumerate(layers[:-1]):
            h_new, ws = ops.gru_step(x if w_in is None else x @ w_in, states[l], w_hh, b_h, b_hh, reset_after)
            saved.append((x, ws, masks[l]))
            x = h_new if masks[l] is None else h_new * masks[l]
            new_states.append(x)
        w_in, w_hh, b_h, b_hh, reset_after = layers[-1]
        top_mask = masks[-1]
        value, h_top, d_gi, d_w_hh, d_b_h, d_b_hh, d_out, d_bias = ops.gru4rec_step(
            x @ w_in,
            states[-1],
            w_hh,
            b_h,
            b_hh,
            p.out_table.index_select(0, out_ids),
            p.out_bias.index_select(0, out_ids),
            logq,
            top_mask,
            c.loss,
            float(c.bpreg),
            c.score_elu,
            reset_after,
            normalizer,
        )
        new_states.append(h_top)
        top = f"layer{len(layers) - 1}."
        result = StepResult(loss=value, h_new=h_top)
        result.dense_grads.update({top + "w_in": x.t() @ d_gi, top + "w_hh": d_w_hh, top + "b_h": d_b_h})
        if b_hh is not None:
            result.dense_grads[top + "b_hh"] = d_b_hh
        d_x = d_gi @ w_in.t()
        for l in reversed(range(len(layers) - 1)):
            x_in, ws, mask = saved[l]
            w_in, w_hh, b_h, b_hh, reset_after = layers[l]
            d_gi, _, d_w_hh, d_b_h, d_b_hh = ops.gru_step_backward(
                d_x if mask is None else d_x * mask, w_hh, ws, reset_after
            )
            prefix = f"layer{l}." if l else ""
            result.dense_grads.update({prefix + "w_hh": d_w_hh, prefix + "b_h": d_b_h})
            if b_hh is not None:
                result.dense_grads[prefix + "b_hh"] = d_b_hh
            if w_in is not None:
                result.dense_grads[prefix + "w_in"] = x_in.t() @ d_gi
            d_x = d_gi if w_in is None else d_gi @ w_in.t()
        d_in = d_x if embed_mask is None else d_x * embed_mask
    result.row_grads = table_row_grads(c.embedding, inputs, out_ids, d_in, d_out, d_bias)
    return value, new_states, result


def train_epoch(
    model: "GRU4Rec",
    sessions: Sessions,
    progress: Optional[Callable[[int, float], None]] = None,
    threads: Optional[int] = None,
    **steps_options,
) -> dict:
    """One epoch of session-parallel training; returns the mean loss, events/s and the
    thread count used last. ``threads``: the intra-op thread count, or None to let a
    :class:`seqrec_ext.threads.ThreadTuner` pick it by timing the steps (the machine may be
    busy). Raises FloatingPointError (parameters untouched by the failing step) on a
    non-finite loss. ``steps_options``: train_steps' (``counts``, ``step``)."""
    total, n_steps, n_events = 0.0, 0, 0
    start = time.perf_counter()
    with ThreadTuner(threads) as tuner:
        for events, loss in train_steps(model, sessions, **steps_options):
            tuner.step(events)
            total += loss
            n_steps += 1
            n_events += events
            if progress is not None:
                progress(events, loss)
    seconds = time.perf_counter() - start
    return {
        "loss": total / max(n_steps, 1),
        "events_per_s": n_events / max(seconds, 1e-9),
        "steps": n_steps,
        "seconds": seconds,
        "threads": tuner.threads,
    }


# ---- the two ways to run a training step ----


class FusedStep:
    """A one-layer step and its update as one op call (``gru4rec_train_step_``, which also
    zeroes the rows of new sessions itself), called directly with the dropout masks its Python
    wrapper would draw (the wrapper is a few % of a step)."""

    resets_rows = True

    def __init__(self, model: GRU4Rec):
        c = model.config
        self.model, self.op = model, torch.ops.seqrec.gru4rec_train_step_
        names = list(model.parameter_tensors())
        self.tensors = [getattr(model.params, name) for name in names]
        self.accs = [model.optimizer_state[name][0] for name in names]
        self.moms = [model.optimizer_state[name][1] for name in names]
        self.args = (
            c.embedding,
            c.loss,
            float(c.bpreg),
            c.score_elu,
            c.cell_reset_after,
            float(c.batch_size),
            float(c.learning_rate),
            float(c.momentum),
            ADAGRAD_EPS,
        )
        self.in_width = model.params.input_table.shape[1]
        self.p_embed, self.p_hidden = dropouts(model.config)

    def __call__(self, batch, negatives, states, logq) -> Tuple[float, list]:
        h, g = states[0], self.model.generator
        like = self.tensors[0]  # the masks in the parameters' dtype, also for a bfloat16 state
        embed_mask, (hidden_mask,) = step_dropout_masks(
            len(batch.inputs), self.in_width, (h.shape[1],), like, self.p_embed, self.p_hidden, self.p_hidden, g
        )
        value, h_new = self.op(
            self.tensors,
            self.accs,
            self.moms,
            batch.inputs,
            batch.targets,
            negatives,
            h,
            batch.reset,
            logq,
            embed_mask,
            hidden_mask,
            *self.args,
        )
        return value.item(), [h_new]


class OpByOpStep:
    """The step op (``gru4rec_step``; stacked layers: ``stacked_step``), then one
    update op per parameter when the loss is finite: the same result as FusedStep, bitwise on
    the CPU, for one layer; the only way for stacked layers."""

    resets_rows = False

    def __init__(self, model: GRU4Rec):
        self.model, self.tables = model, update_tables(model)
        self.p_embed, self.p_hidden = dropouts(model.config)

    def compute(self, batch, negatives, states, logq) -> Tuple[Tensor, list, StepResult]:
        """The step without its update: (loss, the new states, every parameter's gradient)."""
        m, c = self.model, self.model.config
        if c.layers:
            value, new_states, result = stacked_step(
                m, batch.inputs, batch.targets, negatives, states, logq, float(c.batch_size)
            )
        else:
            result = gru4rec_step(
                m.params,
                batch.inputs,
                batch.targets,
                negatives,
                states[0],
                loss=c.loss,
                bpreg=c.bpreg,
                elu_param=c.score_elu,
                logq_correction=logq,
                dropout_embed=self.p_embed,
                dropout_hidden=self.p_hidden,
                reset_after=c.cell_reset_after,
                normalizer=float(c.batch_size),
                generator=m.generator,
            )
            value, new_states = result.loss, [result.h_new]
        return value, new_states, result

    def __call__(self, batch, negatives, states, logq) -> Tuple[float, list]:
        value, new_states, result = self.compute(batch, negatives, states, logq)
        loss = value.item()
        if math.isfinite(loss):
            apply_update(self.model, result, self.tables)
        return loss, new_states
