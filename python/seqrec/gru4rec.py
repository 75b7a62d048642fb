"""GRU4Rec (Hidasi et al.) on seqrec_ext's fused ops: one GRU layer, session-parallel training
with shared popularity-sampled negatives, GRU4Rec's Adagrad with momentum applied to the touched
item-table rows only, and full-catalogue evaluation.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Optional, Tuple

import torch
from torch import Tensor

import seqrec_ext
from seqrec_ext import GRU4RecParams, PopularitySampler, TRAIN_STEP_PARAMS, gru4rec_step, gru_step
from seqrec_ext.gru4rec_step import dropout_mask

from .batching import session_parallel_batches
from .data import Sessions
from .metrics import RankingMetrics


ADAGRAD_EPS = 1e-6  # inside the square root of GRU4Rec's Adagrad
# Negatives are drawn for this many steps in one sampler call, as GRU4Rec keeps a cache of
# samples: one call of 256 x 2048 draws costs 5 us a step against 13 us for a call a step.
NEGATIVE_CACHE_STEPS = 256


@dataclass
class GRU4RecConfig:
    """GRU4Rec's hyper-parameters (names as in its reference implementation where they exist)."""

    hidden: int = 100
    loss: str = "bpr-max"
    bpreg: float = 1.0
    elu_param: float = 0.5
    logq: float = 0.0
    n_sample: int = 2048
    sample_alpha: float = 0.5
    batch_size: int = 32
    dropout_embed: float = 0.0
    dropout_hidden: float = 0.0
    learning_rate: float = 0.05
    momentum: float = 0.0
    embedding: str = "none"  # none | separate | constrained
    embedding_size: int = 0  # for "separate"
    reset_after: bool = False
    seed: int = 0


def _init(shape, generator, device) -> Tensor:
    """GRU4Rec's uniform initialisation, scale sqrt(6 / (fan_in + fan_out))."""
    fan = shape[0] + (shape[1] if len(shape) > 1 else 1)
    scale = math.sqrt(6.0 / fan)
    return ((torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * scale).float().to(device)


class GRU4Rec:
    def __init__(self, n_items: int, config: GRU4RecConfig, device="cpu"):
        self.config, self.n_items, self.device = config, n_items, torch.device(device)
        if not (0 <= config.dropout_embed < 1 and 0 <= config.dropout_hidden < 1):
            raise ValueError(f"dropout probabilities must lie in [0, 1), got {config.dropout_embed} (embedding) "
                             f"and {config.dropout_hidden} (hidden)")
        g = torch.Generator().manual_seed(config.seed)
        H = config.hidden
        kw = dict(w_hh=_init((3 * H, H), g, self.device), b_h=torch.zeros(3 * H, device=self.device),
                  out_table=_init((n_items, H), g, self.device), out_bias=torch.zeros(n_items, device=self.device),
                  embedding=config.embedding)
        if config.embedding == "none":
            kw["item_in"] = _init((n_items, 3 * H), g, self.device)
        elif config.embedding == "separate":
            if config.embedding_size < 1:
                raise ValueError("embedding 'separate' needs embedding_size >= 1")
            kw["item_in"] = _init((n_items, config.embedding_size), g, self.device)
            kw["w_in"] = _init((config.embedding_size, 3 * H), g, self.device)
        else:
            kw["w_in"] = _init((H, 3 * H), g, self.device)
        self.params = GRU4RecParams(**kw)
        # Adagrad state: accumulator and momentum buffer per parameter
        self.state = {name: (torch.zeros_like(t), torch.zeros_like(t)) for name, t in self._tensors().items()}
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)

    def _tensors(self):
        return {k: v for k, v in ((n, getattr(self.params, n)) for n in
                                  ("w_hh", "b_h", "out_table", "out_bias", "item_in", "w_in")) if v is not None}

    # ---- training ----

    def _apply(self, result, tables=None) -> None:
        """GRU4Rec's Adagrad with momentum: the touched rows of the item tables, then the dense
        parameters. ``tables``: ``_update_tables()`` made once for many steps."""
        c = self.config
        lr, mu, eps = float(c.learning_rate), float(c.momentum), ADAGRAD_EPS
        ops = torch.ops.seqrec  # the ops directly: these tensors need no autograd
        for name, (param, acc, mom) in (tables or self._update_tables()).items():
            if name in result.row_grads:
                rows = result.row_grads[name]
                values = rows.values.view(-1, 1) if rows.values.dim() == 1 else rows.values
                ops.sparse_adagrad_momentum_(param, acc, mom, rows.indices, values, lr, mu, eps)
            elif name in result.dense_grads:
                ops.adagrad_momentum_(param, acc, mom, result.dense_grads[name], lr, mu, eps)

    def _update_tables(self) -> dict:
        """name -> (parameter, accumulator, momentum buffer), 1-D ones (the bias) as (N, 1) rows."""
        out = {}
        for name, param in self._tensors().items():
            acc, mom = self.state[name]
            if name == "out_bias":
                param, acc, mom = param.view(-1, 1), acc.view(-1, 1), mom.view(-1, 1)
            out[name] = (param, acc, mom)
        return out

    def train_steps(self, sessions: Sessions, sampler=None, fused: Optional[bool] = None) -> Iterator[Tuple[int, float]]:
        """One epoch of session-parallel training, one step at a time: yields each step's
        (events, loss) after its update. Raises FloatingPointError (parameters untouched by the
        failing step) on a non-finite loss. Negatives come from ``sampler.sample(n, generator=)``
        (default: a PopularitySampler of the training counts to the power sample_alpha), drawn
        with the model's generator. ``fused``: each step and its update as one op call
        (``gru4rec_train_step_``; default for embedding "none", the only mode it supports) or
        as the step op and one update op per parameter (the same result, bitwise on the CPU)."""
        c = self.config
        if fused is None:
            fused = c.embedding == "none"
        elif fused and c.embedding != "none":
            raise ValueError(f"the fused training step is for embedding 'none', not {c.embedding!r}")
        counts = sessions.item_counts()
        if sampler is None:
            sampler = PopularitySampler(counts, alpha=c.sample_alpha, device=self.device)
        log_counts = counts.clamp(min=1).log().float().to(self.device)
        h = torch.zeros(c.batch_size, c.hidden, device=self.device)
        tables = None if fused else self._update_tables()
        if fused:  # the op's arguments that do not change from step to step (see gru4rec_train_step_)
            train_step = torch.ops.seqrec.gru4rec_train_step_
            tensors = [getattr(self.params, name) for name in TRAIN_STEP_PARAMS]
            accs = [self.state[name][0] for name in TRAIN_STEP_PARAMS]
            moms = [self.state[name][1] for name in TRAIN_STEP_PARAMS]
            step_args = (c.loss, float(c.bpreg), float(c.elu_param), c.reset_after, float(c.learning_rate),
                         float(c.momentum), ADAGRAD_EPS)
        negatives = torch.zeros(0, dtype=torch.long, device=self.device)
        cache, cached = None, 0  # negatives drawn for NEGATIVE_CACHE_STEPS steps at a time
        batches = session_parallel_batches(sessions.items, sessions.offsets, c.batch_size, device=self.device)
        for n_steps, batch in enumerate(batches):
            h = batch.carry(h, zero_new=not fused)  # (the fused op zeroes the new sessions' rows)
            inputs, targets = batch.inputs, batch.targets
            if c.n_sample > 0:
                if cached == 0:
                    cache = sampler.sample(NEGATIVE_CACHE_STEPS * c.n_sample, generator=self.generator)
                    cache, cached = cache.view(NEGATIVE_CACHE_STEPS, c.n_sample), NEGATIVE_CACHE_STEPS
                negatives, cached = cache[NEGATIVE_CACHE_STEPS - cached], cached - 1
            logq = (seqrec_ext.logq_correction(log_counts, targets, negatives, logq=c.logq, alpha=c.sample_alpha)
                    if c.loss == "cross-entropy" and c.logq > 0 else None)
            if fused:  # GRU4Rec's default embedding: the step and its update in one op call (called
                # directly, with gru4rec_train_step_'s masks: the wrapper is a few % of a step)
                embed_mask = dropout_mask((len(inputs), 3 * c.hidden), tensors[0], c.dropout_embed, self.generator)
                hidden_mask = dropout_mask(h.shape, h, c.dropout_hidden, self.generator)
                value, h_new = train_step(tensors, accs, moms, inputs, targets, negatives, h, batch.reset, logq,
                                          embed_mask, hidden_mask, *step_args)
            else:
                result = gru4rec_step(self.params, inputs, targets, negatives, h, loss=c.loss, bpreg=c.bpreg,
                                      elu_param=c.elu_param, logq_correction=logq, dropout_embed=c.dropout_embed,
                                      dropout_hidden=c.dropout_hidden, reset_after=c.reset_after,
                                      generator=self.generator)
                value, h_new = result.loss, result.h_new
            loss = value.item()
            if not math.isfinite(loss):  # (the fused op has updated nothing either)
                raise FloatingPointError(f"non-finite loss {loss} at step {n_steps}")
            if not fused:
                self._apply(result, tables)
            h = h_new
            yield len(inputs), loss

    def train_epoch(self, sessions: Sessions, progress: Optional[Callable[[int, float], None]] = None) -> dict:
        """One epoch of session-parallel training; returns the mean loss and events/s.
        Raises FloatingPointError (parameters untouched by the failing step) on a non-finite loss."""
        total, n_steps, n_events = 0.0, 0, 0
        start = time.perf_counter()
        for events, loss in self.train_steps(sessions):
            total += loss
            n_steps += 1
            n_events += events
            if progress is not None:
                progress(events, loss)
        seconds = time.perf_counter() - start
        return {"loss": total / max(n_steps, 1), "events_per_s": n_events / max(seconds, 1e-9),
                "steps": n_steps, "seconds": seconds}

    # ---- evaluation ----

    @torch.no_grad()
    def evaluate(self, sessions: Sessions, batch_size: int = 512, ks=(1, 5, 10, 20)) -> RankingMetrics:
        """Next-item prediction on every event of ``sessions`` against the whole catalogue; the
        hidden state starts at zero for every session."""
        p, c = self.params, self.config
        metrics = RankingMetrics(ks=ks)
        h = torch.zeros(batch_size, c.hidden, device=self.device)
        for batch in session_parallel_batches(sessions.items, sessions.offsets, batch_size, device=self.device):
            h = batch.carry(h)
            inputs = batch.inputs
            x = p.input_table[inputs]
            gi = x if p.w_in is None else x @ p.w_in
            h = gru_step(gi, h, p.w_hh, p.b_h, reset_after=c.reset_after)
            scores = h @ p.out_table.t() + p.out_bias
            if c.elu_param > 0 and c.loss in ("bpr-max", "top1-max"):
                scores = torch.nn.functional.elu(scores, c.elu_param)  # monotone: ranks unchanged
            metrics.update(scores, batch.targets)
        return metrics

    def config_dict(self) -> dict:
        return asdict(self.config)


# ---- checkpoints: plain tensors and numbers only, so torch.load(weights_only=True) reads them ----

def save_checkpoint(model: GRU4Rec, path, *, epoch: int, item_ids) -> None:
    """Write atomically: a temporary file in the same folder, then a rename."""
    import os
    import tempfile

    payload = {
        "format": "seqrec.gru4rec/1",
        "config": model.config_dict(),
        "n_items": model.n_items,
        "epoch": epoch,
        "params": {k: v.cpu() for k, v in model._tensors().items()},
        "state": {k: (a.cpu(), m.cpu()) for k, (a, m) in model.state.items()},
        "generator": model.generator.get_state(),
        "item_ids": torch.as_tensor(item_ids, dtype=torch.long),
    }
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path, device="cpu"):
    """(model, epoch, item_ids) from a checkpoint written by save_checkpoint."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != "seqrec.gru4rec/1":
        raise ValueError(f"{path}: not a seqrec GRU4Rec checkpoint")
    model = GRU4Rec(payload["n_items"], GRU4RecConfig(**payload["config"]), device=device)
    with torch.no_grad():
        for name, tensor in model._tensors().items():
            tensor.copy_(payload["params"][name])
            acc, mom = model.state[name]
            acc.copy_(payload["state"][name][0])
            mom.copy_(payload["state"][name][1])
    model.generator.set_state(payload["generator"])
    return model, payload["epoch"], payload["item_ids"].numpy()
