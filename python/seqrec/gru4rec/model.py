"""GRU4Rec (Hidasi et al.) on seqrec_ext's fused ops: one GRU layer, session-parallel training
with shared popularity-sampled negatives, GRU4Rec's Adagrad with momentum applied to the touched
item-table rows only, and full-catalogue evaluation.

Faithful to the published PyTorch implementation of GRU4Rec (its code read for facts; see
docs/gru4rec-fidelity.md): its defaults (the shared "constrained" embedding with a
torch.nn.GRUCell cell, two biases), each gate block initialised on its own, every step's summed
loss divided by the configured batch size (also when fewer sessions are left at the end of an
epoch), the dropout-masked state carried to the next step, and one optimizer update of the
shared table from the gradients of both of its uses.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

import seqrec_ext
from seqrec_ext import (
    GRU4RecParams,
    PopularitySampler,
    StepResult,
    gru4rec_step,
    gru_step,
    rank_items,
    train_step_param_names,
)
from seqrec_ext.gru4rec_step import EMBEDDING_MODES, dropout_mask, table_row_grads
from seqrec_ext.threads import ThreadTuner

from ..checkpoints import save_atomically
from ..metrics import RankingMetrics
from .batching import session_parallel_batches
from .data import Sessions
from .recommend import Recommendations, recommend

ADAGRAD_EPS = 1e-6  # inside the square root of GRU4Rec's Adagrad
# Negatives are drawn for this many steps in one sampler call, as GRU4Rec keeps a cache of
# samples: one call of 256 x 2048 draws costs 5 us a step against 13 us for a call a step.
NEGATIVE_CACHE_STEPS = 256

# The best hyper-parameters GRU4Rec's authors published for six data sets (the parameter files
# of the official PyTorch implementation, github.com/hidasib/GRU4Rec_PyTorch_Official,
# paramfiles/*_best.py): all with the shared embedding, 2048 negatives and 10 epochs.
PRESET_FIELDS = (
    "loss",
    "hidden",
    "batch_size",
    "dropout_embed",
    "dropout_hidden",
    "learning_rate",
    "momentum",
    "sample_alpha",
    "bpreg",
    "elu_param",
    "logq",
)
PRESETS = {
    name: dict(zip(PRESET_FIELDS, values))
    for name, values in {
        "rsc15": ("cross-entropy", 100, 32, 0.0, 0.4, 0.2, 0.2, 0.5, 0.0, 0.0, 1.0),
        "yoochoose": ("cross-entropy", 480, 48, 0.0, 0.2, 0.07, 0.0, 0.2, 0.0, 0.0, 1.0),
        "rees46": ("cross-entropy", 512, 240, 0.45, 0.0, 0.065, 0.0, 0.5, 0.0, 0.0, 1.0),
        "coveo": ("bpr-max", 512, 144, 0.35, 0.0, 0.05, 0.4, 0.2, 1.85, 1.0, 0.0),
        "retailrocket": ("bpr-max", 224, 80, 0.5, 0.05, 0.05, 0.4, 0.4, 1.95, 0.5, 0.0),
        "diginetica": ("bpr-max", 512, 128, 0.5, 0.3, 0.05, 0.15, 0.3, 0.9, 1.0, 0.0),
    }.items()
}
PRESET_COMMON = dict(embedding="constrained", n_sample=2048)


# the training step's precisions: the dtype of the hidden state (None: the parameters')
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


@dataclass
class GRU4RecConfig:
    """GRU4Rec's hyper-parameters (names as in its reference implementation where they exist).

    ``embedding``: ``constrained`` (the published default, "shared": the output table is also
    the input embedding), ``separate`` (an input table of width ``embedding_size``) or ``none``
    (the item table holds each item's GRU input projection). ``reset_after``: the cell;
    None picks the published one: torch.nn.GRUCell's (reset after the hidden product, two
    biases) for constrained and separate, GRU4Rec's own cell (reset before it, one bias) for
    none. In mode none the published code applies ``dropout_embed`` to the first GRU layer's
    output (that layer is the embedding), so with one layer ``dropout_hidden`` has nothing to
    act on there and is refused.

    ``layers``: the sizes of stacked GRU layers below the top one (bottom first); the top layer
    has ``hidden`` units and feeds the output table. ``--layers 100,100`` on the command line is
    ``layers=(100,), hidden=100``. The layers above the first are torch.nn.GRUCell's cell (two
    biases; ``reset_after=False`` makes them GRU4Rec's own cell with one), each fed the
    dropped-out output of the one below (``dropout_hidden``), each with a state of its own."""

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
    embedding: str = "constrained"  # constrained | separate | none
    embedding_size: int = 0  # for "separate"
    reset_after: Optional[bool] = None
    seed: int = 0
    layers: Tuple[int, ...] = ()
    # the training step's arithmetic: fp32, or bf16 (a bfloat16 hidden state: the step's large
    # matrix products in bfloat16 with float32 accumulation, everything else and the parameters
    # float32; one GRU layer). Evaluation and inference stay float32.
    precision: str = "fp32"

    def __post_init__(self):
        self.layers = tuple(int(n) for n in self.layers)
        if self.hidden < 1 or any(n < 1 for n in self.layers):
            raise ValueError(f"layer sizes must be >= 1, got {(*self.layers, self.hidden)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precision != "fp32" and self.layers:
            raise ValueError("--precision bf16 trains one GRU layer (stacked layers train in fp32)")
        self._check_ranges()

    def _check_ranges(self) -> None:
        """Every number in its range, named as the command line names it (a tune space's values
        go through here too)."""

        def option(name: str) -> str:
            return "--" + {"dropout_embed": "dropout-p-embed", "dropout_hidden": "dropout-p-hidden"}.get(
                name, name.replace("_", "-")
            )

        def finite(name: str, low: float, high: float = math.inf, high_open: bool = False) -> None:
            value = getattr(self, name)
            ok = math.isfinite(value) and low <= value and (value < high if high_open else value <= high)
            if not ok:
                bound = f"< {high:g}" if high_open else (f"<= {high:g}" if math.isfinite(high) else "")
                raise ValueError(f"{option(name)} must be a finite number >= {low:g} {bound}, got {value!r}".strip())

        for name, low in (("n_sample", 0), ("batch_size", 1), ("embedding_size", 0), ("seed", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{option(name)} must be a whole number >= {low}, got {getattr(self, name)}")
        for name in ("bpreg", "elu_param", "logq", "sample_alpha"):
            finite(name, 0.0)
        for name in ("dropout_embed", "dropout_hidden", "momentum"):
            finite(name, 0.0, 1.0, high_open=True)
        finite("learning_rate", 0.0)
        if self.learning_rate == 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate!r}")

    @property
    def score_elu(self) -> float:
        """The ELU on the output scores, the one rule of training, evaluation, recommendation and
        export: the published trainer applies ``elu_param`` inside its ranking losses (bpr-max,
        top1-max) only, so with cross-entropy (and whenever ``elu_param`` is 0) it is 0."""
        return float(self.elu_param) if self.elu_param > 0 and self.loss in ("bpr-max", "top1-max") else 0.0

    @property
    def sizes(self) -> Tuple[int, ...]:
        """Every GRU layer's size, bottom first."""
        return (*self.layers, self.hidden)

    @property
    def upper_reset_after(self) -> bool:
        """The cell of the layers above the first: GRUCell's unless reset_after says otherwise."""
        return True if self.reset_after is None else bool(self.reset_after)

    @property
    def cell_reset_after(self) -> bool:
        return self.embedding != "none" if self.reset_after is None else bool(self.reset_after)

    @property
    def two_biases(self) -> bool:
        """torch.nn.GRUCell's hidden bias b_hh beside the input bias: the reset-after cell of
        the embedding modes that use one."""
        return self.cell_reset_after and self.embedding != "none"


def _init_block(rows: int, cols: int, fan: int, generator, dtype, device) -> Tensor:
    """Uniform on [-s, s] with s = sqrt(6 / fan): GRU4Rec's initialisation, applied per gate
    block with fan = the block's fan-in + fan-out (the same scale for every block of a matrix)."""
    scale = math.sqrt(6.0 / fan)
    return ((torch.rand((rows, cols), generator=generator, dtype=torch.float64) * 2 - 1) * scale).to(dtype).to(device)


class GRU4Rec(torch.nn.Module):
    """GRU4Rec as a ``torch.nn.Module``: its item tables and GRU weights are its parameters
    (``requires_grad`` False: it trains them itself, GRU4Rec's Adagrad with momentum on the rows
    a step touched, the optimizer state kept in buffers), so ``state_dict()`` /
    ``load_state_dict()``, ``.to(device)`` / ``.double()`` and ``forward`` (one inference step,
    see ``step``) work as for any module. ``params`` (the fused ops' view of the first layer and
    the output table) and ``upper`` (the layers above) hold the same tensors."""

    def __init__(self, n_items: int, config: GRU4RecConfig, device="cpu", dtype: torch.dtype = torch.float32):
        super().__init__()
        self.config, self.n_items, self.device = config, n_items, torch.device(device)
        if config.embedding not in EMBEDDING_MODES:
            raise ValueError(f"embedding must be one of {EMBEDDING_MODES}, got {config.embedding!r}")
        if config.embedding == "none" and config.dropout_hidden > 0 and not config.layers:
            raise ValueError(
                "embedding 'none' with one layer has no hidden dropout: GRU4Rec applies dropout_embed "
                "to its GRU layer's output there (set dropout_embed instead)"
            )
        g = torch.Generator().manual_seed(config.seed)
        H, top = config.sizes[0], config.hidden  # the first layer's size, the output table's width

        def init(rows, cols, fan):
            return _init_block(rows, cols, fan, g, dtype, self.device)

        zeros = dict(dtype=dtype, device=self.device)
        # every block of a gate matrix is (fan-in, H): w_hh's are H x H
        kw = dict(
            w_hh=init(3 * H, H, 2 * H),
            b_h=torch.zeros(3 * H, **zeros),
            out_table=init(n_items, top, n_items + top),
            out_bias=torch.zeros(n_items, **zeros),
            embedding=config.embedding,
        )
        if config.embedding == "none":
            kw["item_in"] = init(n_items, 3 * H, n_items + H)
        elif config.embedding == "separate":
            E = config.embedding_size
            if E < 1:
                raise ValueError("embedding 'separate' needs embedding_size >= 1")
            kw["item_in"] = init(n_items, E, n_items + E)
            kw["w_in"] = init(E, 3 * H, E + H)
        else:
            kw["w_in"] = init(top, 3 * H, top + H)
        if config.two_biases:
            kw["b_hh"] = torch.zeros(3 * H, **zeros)
        self.params = GRU4RecParams(**kw)
        # the layers above the first: (w_in, w_hh, b_h, b_hh or None) each
        self.upper = []
        for below, size in zip(config.sizes[:-1], config.sizes[1:]):
            self.upper.append(
                {
                    "w_in": init(below, 3 * size, below + size),
                    "w_hh": init(3 * size, size, 2 * size),
                    "b_h": torch.zeros(3 * size, **zeros),
                }
                | ({"b_hh": torch.zeros(3 * size, **zeros)} if config.upper_reset_after else {})
            )
        for name, tensor in self._tensors().items():
            key = self._key(name)
            self.register_parameter(key, torch.nn.Parameter(tensor, requires_grad=False))
            # Adagrad state: accumulator and momentum buffer
            self.register_buffer(f"{key}_sum", torch.zeros_like(tensor))
            self.register_buffer(f"{key}_momentum", torch.zeros_like(tensor))
        self._share_parameters()
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        # the original id of each dense item id (set from the training data / a checkpoint)
        self.item_ids: Optional[np.ndarray] = None
        self.world_size = 1  # the processes that trained it (a checkpoint's)

    @staticmethod
    def _key(name: str) -> str:
        """A tensor's name as a module attribute: ``layer1.w_in`` -> ``layer1_w_in``."""
        return name.replace(".", "_")

    def _share_parameters(self) -> None:
        """Make ``params`` and ``upper`` refer to the module's parameters (after construction, and
        after a conversion that made new ones)."""
        for name in self._tensors():
            param = self._parameters[self._key(name)]
            if "." in name:
                layer, field = name.split(".")
                self.upper[int(layer.removeprefix("layer")) - 1][field] = param
            else:
                setattr(self.params, name, param)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._share_parameters()
        device = self.params.out_table.device
        if device != self.device:  # the dropout and sampling generator lives on the model's device
            self.device = device
            self.generator = torch.Generator(device=device).manual_seed(self.config.seed)
        return self

    @property
    def state(self) -> dict:
        """name -> (Adagrad accumulator, momentum buffer) of every parameter (``_tensors``' names)."""
        return {
            name: (getattr(self, f"{self._key(name)}_sum"), getattr(self, f"{self._key(name)}_momentum"))
            for name in self._tensors()
        }

    def check_finite(self) -> None:
        """ValueError naming the parameters that hold a NaN or an infinity: such a model ranks
        nothing meaningfully (evaluation and recommendation refuse it)."""
        bad = [name for name, t in self._tensors().items() if not bool(torch.isfinite(t).all())]
        if bad:
            raise ValueError(f"the model's parameters are not finite ({', '.join(bad)}): it cannot rank items")

    def _tensors(self):
        """Every parameter by name: the first layer's and the output table's, then
        ``layer{l}.w_in`` etc. for the layers above."""
        names = train_step_param_names(self.config.embedding, self.params.b_hh is not None)
        out = {name: getattr(self.params, name) for name in names}
        for l, layer in enumerate(self.upper, start=1):
            out.update({f"layer{l}.{name}": t for name, t in layer.items()})
        return out

    # ---- training ----

    def _apply_update(self, result, tables=None) -> None:
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

    def _dropouts(self) -> Tuple[float, float]:
        """(input rows, first layer's output) dropout probabilities: in mode none GRU4Rec's
        embedding is its first GRU layer, and the embedding dropout acts on that layer's output."""
        c = self.config
        return (0.0, c.dropout_embed) if c.embedding == "none" else (c.dropout_embed, c.dropout_hidden)

    def train_steps(
        self, sessions: Sessions, sampler=None, fused: Optional[bool] = None, *, counts=None, step=None
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
        c = self.config
        if fused and c.layers:
            raise ValueError(
                "the fused training step is for one GRU layer; stacked layers train op by op (fused=False)"
            )
        if step is None:
            step = (FusedStep if (not c.layers if fused is None else fused) else OpByOpStep)(self)
        counts = sessions.item_counts() if counts is None else counts
        if sampler is None:
            sampler = PopularitySampler(counts, alpha=c.sample_alpha, device=self.device)
        dtype = self.params.out_table.dtype
        log_counts = counts.clamp(min=1).log().to(dtype).to(self.device)
        state_dtype = PRECISIONS[c.precision] or dtype  # bf16: the step's products in bfloat16
        states = [torch.zeros(c.batch_size, size, device=self.device, dtype=state_dtype) for size in c.sizes]
        negatives = torch.zeros(0, dtype=torch.long, device=self.device)
        cache, cached = None, 0  # negatives drawn for NEGATIVE_CACHE_STEPS steps at a time
        batches = session_parallel_batches(sessions.items, sessions.offsets, c.batch_size, device=self.device)
        for n_steps, batch in enumerate(batches):
            if c.n_sample == 0 and len(batch.inputs) < 2:
                break  # a lone row has no negative at all (GRU4Rec ends its epoch there too)
            states = [batch.carry(h, zero_new=not step.resets_rows) for h in states]
            if c.n_sample > 0:
                if cached == 0:
                    cache = sampler.sample(NEGATIVE_CACHE_STEPS * c.n_sample, generator=self.generator)
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

    def _layers(self):
        """(w_in or None, w_hh, b_h, b_hh or None, reset_after) of every GRU layer, bottom first."""
        p, c = self.params, self.config
        first = (p.w_in, p.w_hh, p.b_h, p.b_hh, c.cell_reset_after)
        return [first] + [(u["w_in"], u["w_hh"], u["b_h"], u.get("b_hh"), c.upper_reset_after) for u in self.upper]

    def _stacked_step(self, inputs, targets, negatives, states, logq, normalizer):
        """One training step of stacked layers, op by op: the GRU step op up the lower layers,
        the fused step-and-loss op on the top one, the GRU backward op down again (truncated:
        no gradient into the previous states). Dropout masks in GRU4Rec's order: the input
        rows, then each layer's output (whose masked value is the layer's carried state).
        Returns (loss, the new states, a StepResult with every parameter's gradient)."""
        c, p, ops = self.config, self.params, torch.ops.seqrec
        p_embed, p_first = self._dropouts()
        layers = self._layers()
        g = self.generator
        with torch.no_grad():
            out_ids = torch.cat([targets, negatives])
            rows = p.input_table.index_select(0, inputs)
            embed_mask = dropout_mask(rows.shape, rows, p_embed, g)
            x = rows if embed_mask is None else rows * embed_mask
            saved, new_states = [], []
            for l, (w_in, w_hh, b_h, b_hh, reset_after) in enumerate(layers[:-1]):
                h_new, ws = ops.gru_step(x if w_in is None else x @ w_in, states[l], w_hh, b_h, b_hh, reset_after)
                mask = dropout_mask(h_new.shape, h_new, p_first if l == 0 else c.dropout_hidden, g)
                saved.append((x, ws, mask))
                x = h_new if mask is None else h_new * mask
                new_states.append(x)
            w_in, w_hh, b_h, b_hh, reset_after = layers[-1]
            top_mask = dropout_mask(states[-1].shape, states[-1], c.dropout_hidden, g)
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
        self,
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
            for events, loss in self.train_steps(sessions, **steps_options):
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

    # ---- evaluation ----

    @torch.no_grad()
    def evaluate(
        self, sessions: Sessions, batch_size: int = 512, ks=(1, 5, 10, 20), modes=None, dense: bool = False
    ) -> RankingMetrics:
        """Next-item prediction on every event of ``sessions`` against the whole catalogue; the
        hidden state starts at zero for every session. Recall and MRR at the cut-offs ``ks``, in
        the tie modes ``modes`` (default: all three, see seqrec.metrics). The hidden states of
        all the prefixes come from ``prefix_outputs`` and are ranked ``batch_size`` (at least)
        rows at a time; the targets' ranks come from the fused ranking op (no (rows, items)
        score matrix); ``dense``: from the whole score matrix instead (the slow path, kept as
        the reference)."""
        self.check_finite()
        p = self.params
        metrics = RankingMetrics(ks=ks) if modes is None else RankingMetrics(ks=ks, modes=modes)
        for x, targets in self.prefix_outputs(sessions, batch_size):
            if dense:
                scores = x @ p.out_table.t() + p.out_bias
                if self.score_elu > 0:
                    scores = torch.nn.functional.elu(scores, self.score_elu)  # monotone, but it makes ties
                metrics.update(scores, targets)
            else:
                r = rank_items(x, p.out_table, p.out_bias, targets=targets, elu_param=self.score_elu)
                metrics.update_counts(r.greater, r.equal)
        return metrics

    @torch.no_grad()
    def prefix_outputs(self, sessions: Sessions, block_rows: int = 512, chunk_sessions: int = 65536):
        """``(outputs (N, hidden), next items (N,))`` in blocks of at least ``block_rows`` rows
        (the last one smaller): the top layer's output after every prefix of every session that
        has a next item, each session's state starting at zero. No session-parallel order is
        needed here: the sessions (``chunk_sessions`` at a time, which bounds the states'
        memory) run side by side sorted by length, longest first, so that at step ``t`` the
        sessions still running are a prefix of the batch and the batch shrinks only as sessions
        end -- each step one large product, instead of session-parallel batches that shrink to
        a few rows at the end of a test set."""
        items = sessions.items.to(self.device)
        offsets = torch.as_tensor(sessions.offsets, dtype=torch.long, device=self.device)
        steps = (offsets[1:] - offsets[:-1] - 1).clamp(min=0)  # predictions per session
        order = torch.argsort(steps, descending=True, stable=True)
        order = order[steps[order] > 0]
        pending, rows = [], 0
        for c in range(0, len(order), chunk_sessions):
            chunk = order[c : c + chunk_sessions]
            starts, chunk_steps = offsets[:-1][chunk], steps[chunk]
            # sessions still running at step t: the first active[t] (sorted by decreasing length)
            ending = torch.bincount(chunk_steps, minlength=int(chunk_steps[0]) + 1)  # sessions with t steps
            active = len(chunk) - torch.cumsum(ending, 0)[:-1]
            states = None
            for t, n in enumerate(active.tolist()):
                position = starts[:n] + t
                states = None if states is None else [h[:n] for h in states]
                x, states = self.step(items[position], states)
                pending.append((x, items[position + 1]))
                rows += n
                if rows >= block_rows:
                    yield torch.cat([x for x, _ in pending]), torch.cat([y for _, y in pending])
                    pending, rows = [], 0
        if pending:
            yield torch.cat([x for x, _ in pending]), torch.cat([y for _, y in pending])

    # ---- inference ----

    @property
    def score_elu(self) -> float:
        """The ELU on the scores (``GRU4RecConfig.score_elu``)."""
        return self.config.score_elu

    @torch.no_grad()
    def step(self, items: Tensor, states: Optional[list] = None) -> Tuple[Tensor, list]:
        """One inference step (no dropout): ``items (B,)`` dense ids and the states (one
        ``(B, size)`` tensor per layer; zeros when None) -> (the top layer's output ``(B,
        hidden)``, which scores the next item against the output table, and the new states)."""
        if states is None:
            dtype = self.params.out_table.dtype
            states = [torch.zeros(items.shape[0], size, device=self.device, dtype=dtype) for size in self.config.sizes]
        x, new = self.params.input_table[items], []
        for h, (w_in, w_hh, b_h, b_hh, reset_after) in zip(states, self._layers()):
            x = gru_step(x if w_in is None else x @ w_in, h, w_hh, b_h, b_hh, reset_after=reset_after)
            new.append(x)
        return x, new

    def forward(self, items: Tensor, states: Optional[list] = None) -> Tuple[Tensor, list]:
        """One inference step: see ``step``."""
        return self.step(items, states)

    @torch.no_grad()
    def session_outputs(self, sessions) -> Tensor:
        """The top layer's output after the last item of each session (a sequence of dense ids,
        the state starting at zero), ``(S, hidden)``; a session without items gives zeros."""
        lengths = torch.tensor([len(s) for s in sessions], dtype=torch.long)
        S, T = len(sessions), int(lengths.max()) if len(sessions) else 0
        items = torch.zeros(T, S, dtype=torch.long)
        for i, s in enumerate(sessions):
            items[: len(s), i] = torch.as_tensor(s, dtype=torch.long)
        items, lengths = items.to(self.device), lengths.to(self.device)
        zeros = dict(device=self.device, dtype=self.params.out_table.dtype)
        out = torch.zeros(S, self.config.hidden, **zeros)
        states = [torch.zeros(S, size, **zeros) for size in self.config.sizes]
        for t in range(T):
            x, new = self.step(items[t], states)
            active = (t < lengths).unsqueeze(1)  # a finished session keeps its state and output
            states = [torch.where(active, n, h) for n, h in zip(new, states)]
            out = torch.where(active, x, out)
        return out

    def recommend(
        self,
        sessions,
        k: int = 20,
        *,
        exclude_seen: bool = True,
        skip_unknown: bool = False,
        batch_size: int = 512,
        labels=None,
    ) -> Recommendations:
        """The top-``k`` next items of each session, in the data's own item ids (``item_ids``;
        dense ids when it is not set): see :func:`seqrec.gru4rec.recommend.recommend`."""
        item_ids = self.item_ids if self.item_ids is not None else np.arange(self.n_items)
        options = dict(exclude_seen=exclude_seen, skip_unknown=skip_unknown, batch_size=batch_size, labels=labels)
        return recommend(self, item_ids, sessions, k, **options)

    def config_dict(self) -> dict:
        return asdict(self.config)


# ---- the two ways to run a training step ----


class FusedStep:
    """A one-layer step and its update as one op call (``gru4rec_train_step_``, which also
    zeroes the rows of new sessions itself), called directly with the dropout masks its Python
    wrapper would draw (the wrapper is a few % of a step)."""

    resets_rows = True

    def __init__(self, model: GRU4Rec):
        c = model.config
        self.model, self.op = model, torch.ops.seqrec.gru4rec_train_step_
        names = list(model._tensors())
        self.tensors = [getattr(model.params, name) for name in names]
        self.accs = [model.state[name][0] for name in names]
        self.moms = [model.state[name][1] for name in names]
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
        self.p_embed, self.p_hidden = model._dropouts()

    def __call__(self, batch, negatives, states, logq) -> Tuple[float, list]:
        h, g = states[0], self.model.generator
        like = self.tensors[0]  # the masks in the parameters' dtype, also for a bfloat16 state
        embed_mask = dropout_mask((len(batch.inputs), self.in_width), like, self.p_embed, g)
        hidden_mask = dropout_mask(h.shape, like, self.p_hidden, g)
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
    """The step op (``gru4rec_step``; stacked layers: ``GRU4Rec._stacked_step``), then one
    update op per parameter when the loss is finite: the same result as FusedStep, bitwise on
    the CPU, for one layer; the only way for stacked layers."""

    resets_rows = False

    def __init__(self, model: GRU4Rec):
        self.model, self.tables = model, model._update_tables()
        self.p_embed, self.p_hidden = model._dropouts()

    def compute(self, batch, negatives, states, logq) -> Tuple[Tensor, list, StepResult]:
        """The step without its update: (loss, the new states, every parameter's gradient)."""
        m, c = self.model, self.model.config
        if c.layers:
            value, new_states, result = m._stacked_step(
                batch.inputs, batch.targets, negatives, states, logq, float(c.batch_size)
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
            self.model._apply_update(result, self.tables)
        return loss, new_states


# ---- checkpoints: plain tensors and numbers only, so torch.load(weights_only=True) reads them ----

CHECKPOINT_FORMAT = "seqrec.gru4rec/2"  # /2: GRU4Rec's initialisation, cell and loss normalisation


def save_checkpoint(model: GRU4Rec, path, *, epoch: int, item_ids, world_size: int = 1) -> None:
    """Write atomically and durably (seqrec.checkpoints). ``world_size``: how many processes
    trained it (data-parallel; a resumed run must have as many)."""
    save_atomically(
        {
            "format": CHECKPOINT_FORMAT,
            "config": model.config_dict(),
            "n_items": model.n_items,
            "epoch": epoch,
            "params": {k: v.cpu() for k, v in model._tensors().items()},
            "state": {k: (a.cpu(), m.cpu()) for k, (a, m) in model.state.items()},
            "generator": model.generator.get_state(),
            "item_ids": torch.as_tensor(item_ids, dtype=torch.long),
            "world_size": int(world_size),
        },
        path,
    )


def load_checkpoint(path, device="cpu"):
    """(model, epoch, item_ids) from a checkpoint written by save_checkpoint."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        if str(payload.get("format", "")).startswith("seqrec.gru4rec/"):
            raise ValueError(
                f"{path}: a GRU4Rec checkpoint of format {payload['format']}, this version reads "
                f"{CHECKPOINT_FORMAT} (the model changed: train it again)"
            )
        raise ValueError(f"{path}: not a seqrec GRU4Rec checkpoint")
    model = GRU4Rec(payload["n_items"], GRU4RecConfig(**payload["config"]), device=device)
    with torch.no_grad():
        for name, tensor in model._tensors().items():
            tensor.copy_(payload["params"][name])
            acc, mom = model.state[name]
            acc.copy_(payload["state"][name][0])
            mom.copy_(payload["state"][name][1])
    model.generator.set_state(payload["generator"])
    model.item_ids = payload["item_ids"].numpy()
    model.world_size = int(payload.get("world_size", 1))
    return model, payload["epoch"], model.item_ids
