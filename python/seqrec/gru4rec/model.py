"""GRU4Rec (Hidasi et al.) on seqrec_ext's fused ops as a module: its parameters and optimizer
state, full-catalogue evaluation and inference (training: seqrec.gru4rec.train; settings:
seqrec.gru4rec.config; checkpoints: seqrec.gru4rec.checkpoint).

Faithful to the published PyTorch implementation of GRU4Rec (its code read for facts; see
docs/gru4rec-fidelity.md): its defaults (the shared "constrained" embedding with a
torch.nn.GRUCell cell, two biases), each gate block initialised on its own, every step's summed
loss divided by the configured batch size (also when fewer sessions are left at the end of an
epoch), the dropout-masked state carried to the next step, and one optimizer update of the
shared table from the gradients of both of its uses.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from seqrec_ext import (
    GRU4RecParams,
    gru_step,
    rank_items,
    train_step_param_names,
)
from seqrec_ext.gru4rec_step import EMBEDDING_MODES

from ..metrics import ListMetrics, RankingMetrics
from .config import GRU4RecConfig
from .data import Sessions
from .recommend import Recommendations, recommend
from .train import train_epoch, train_steps


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
        config.check_memory(n_items, self.device)
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
        for name, tensor in self.parameter_tensors().items():
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
        for name in self.parameter_tensors():
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
    def optimizer_state(self) -> dict:
        """name -> (Adagrad accumulator, momentum buffer) of every parameter (``parameter_tensors``' names)."""
        return {
            name: (getattr(self, f"{self._key(name)}_sum"), getattr(self, f"{self._key(name)}_momentum"))
            for name in self.parameter_tensors()
        }

    def check_finite(self) -> None:
        """ValueError naming the parameters that hold a NaN or an infinity: such a model ranks
        nothing meaningfully (evaluation and recommendation refuse it)."""
        bad = [name for name, t in self.parameter_tensors().items() if not bool(torch.isfinite(t).all())]
        if bad:
            raise ValueError(f"the model's parameters are not finite ({', '.join(bad)}): it cannot rank items")

    def parameter_tensors(self):
        """Every parameter by name: the first layer's and the output table's, then
        ``layer{l}.w_in`` etc. for the layers above."""
        names = train_step_param_names(self.config.embedding, self.params.b_hh is not None)
        out = {name: getattr(self.params, name) for name in names}
        for l, layer in enumerate(self.upper, start=1):
            out.update({f"layer{l}.{name}": t for name, t in layer.items()})
        return out

    # ---- training (seqrec.gru4rec.train) ----

    def train_steps(self, sessions: Sessions, sampler=None, fused: Optional[bool] = None, **options):
        """One epoch of session-parallel training, one step at a time: see
        :func:`seqrec.gru4rec.train.train_steps`."""
        return train_steps(self, sessions, sampler, fused, **options)

    def train_epoch(self, sessions: Sessions, progress=None, threads: Optional[int] = None, **steps_options) -> dict:
        """One epoch of training: see :func:`seqrec.gru4rec.train.train_epoch`."""
        return train_epoch(self, sessions, progress, threads, **steps_options)

    def _layers(self):
        """(w_in or None, w_hh, b_h, b_hh or None, reset_after) of every GRU layer, bottom first."""
        p, c = self.params, self.config
        first = (p.w_in, p.w_hh, p.b_h, p.b_hh, c.cell_reset_after)
        return [first] + [(u["w_in"], u["w_hh"], u["b_h"], u.get("b_hh"), c.upper_reset_after) for u in self.upper]

    # ---- evaluation ----

    @torch.no_grad()
    def evaluate(
        self,
        sessions: Sessions,
        batch_size: int = 512,
        ks=(1, 5, 10, 20),
        modes=None,
        dense: bool = False,
        lists: bool = True,
        popularity: Optional[Tensor] = None,
        negatives: Optional[Tuple[str, int]] = None,
    ) -> RankingMetrics:
        """Next-item prediction on every event of ``sessions`` against the whole catalogue; the
        hidden state starts at zero for every session. Recall, MRR and NDCG at the cut-offs ``ks``, in
        the tie modes ``modes`` (default: all three, see seqrec.metrics). The hidden states of
        all the prefixes come from ``prefix_outputs`` and are ranked ``batch_size`` (at least)
        rows at a time; the targets' ranks come from the fused ranking op (no (rows, items)
        score matrix); ``dense``: from the whole score matrix instead (the slow path, kept as
        the reference). ``lists``: also the beyond-accuracy metrics of every prediction's top-k
        list (``metrics.lists``, seqrec.metrics.ListMetrics; the op returns the lists with the
        ranks), with ``popularity`` (the items' training counts) for popularity@k. With
        ``sessions.last_only`` (leave-one-out) only each session's last event is a target.
        ``negatives`` (``("uniform" | "popularity", n)``): sampled ranking instead, each target
        against n negatives outside its session (seqrec.gru4rec.protocols; drawn from a
        generator seeded with the model's seed, so the same for every model of that seed; no
        lists)."""
        self.check_finite()
        if negatives is not None:
            return self._evaluate_sampled(sessions, batch_size, ks, modes, negatives, popularity)
        p = self.params
        metrics = RankingMetrics(ks=ks) if modes is None else RankingMetrics(ks=ks, modes=modes)
        top = min(max(metrics.ks), self.n_items) if lists else 0
        if lists:
            cutoffs = sorted({min(k, top) for k in metrics.ks})  # a cut-off past the catalogue lists it all
            metrics.lists = ListMetrics(popularity, cutoffs, n_items=self.n_items)
        for x, targets in self.prefix_outputs(sessions, batch_size):
            if dense:
                scores = x @ p.out_table.t() + p.out_bias
                if self.score_elu > 0:
                    scores = torch.nn.functional.elu(scores, self.score_elu)  # monotone, but it makes ties
                metrics.update(scores, targets)
                if lists:  # best first, equal scores by lower id, as the op orders them
                    blocked = scores.isnan()
                    order = torch.sort(scores.masked_fill(blocked, -math.inf), dim=1, descending=True, stable=True)
                    ids = order.indices[:, :top].masked_fill(order.values[:, :top] == -math.inf, -1)
                    metrics.lists.update(ids)
            else:
                r = rank_items(x, p.out_table, p.out_bias, targets=targets, k=top, elu_param=self.score_elu)
                metrics.update_counts(r.greater, r.equal)
                if lists:
                    metrics.lists.update(r.top_ids)
        return metrics

    def _evaluate_sampled(self, sessions, batch_size, ks, modes, negatives, popularity) -> RankingMetrics:
        from .protocols import sampled_negatives, sampled_rank_counts

        kind, n = negatives
        p = self.params
        metrics = RankingMetrics(ks=ks) if modes is None else RankingMetrics(ks=ks, modes=modes)
        generator = torch.Generator().manual_seed(self.config.seed)
        for x, targets, rows in self.prefix_outputs(sessions, batch_size, with_sessions=True):
            drawn = sampled_negatives(sessions, rows, kind, n, generator, popularity).to(x.device)
            candidates = torch.cat([targets.unsqueeze(1), drawn], 1)
            scores = torch.einsum("rh,rch->rc", x, p.out_table[candidates]) + p.out_bias[candidates]
            if self.score_elu > 0:
                scores = torch.nn.functional.elu(scores, self.score_elu)  # as the full ranking scores
            metrics.update_counts(*sampled_rank_counts(scores))
        return metrics

    @torch.no_grad()
    def prefix_outputs(
        self,
        sessions: Sessions,
        block_rows: int = 512,
        chunk_sessions: int = 65536,
        last_only: Optional[bool] = None,
        with_sessions: bool = False,
    ):
        """``(outputs (N, hidden), next items (N,))`` in blocks of at least ``block_rows`` rows
        (the last one smaller): the top layer's output after every prefix of every session that
        has a next item, each session's state starting at zero. No session-parallel order is
        needed here: the sessions (``chunk_sessions`` at a time, which bounds the states'
        memory) run side by side sorted by length, longest first, so that at step ``t`` the
        sessions still running are a prefix of the batch and the batch shrinks only as sessions
        end -- each step one large product, instead of session-parallel batches that shrink to
        a few rows at the end of a test set. ``last_only`` (default ``sessions.last_only``):
        only each session's last prefix, the one whose next item is the session's last event.
        ``with_sessions``: each block also gives the session (index into ``sessions``) of each
        row."""
        if last_only is None:
            last_only = sessions.last_only
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
            active = (len(chunk) - torch.cumsum(ending, 0)[:-1]).tolist()
            states = None
            for t, n in enumerate(active):
                position = starts[:n] + t
                states = None if states is None else [h[:n] for h in states]
                x, states = self.step(items[position], states)
                # the sessions whose last prediction this is: the tail of the running ones
                first = active[t + 1] if last_only and t + 1 < len(active) else 0
                if first < n:
                    pending.append((x[first:], items[position[first:] + 1], chunk[first:n]))
                    rows += n - first
                if rows >= block_rows:
                    yield self._block(pending, with_sessions)
                    pending, rows = [], 0
        if pending:
            yield self._block(pending, with_sessions)

    @staticmethod
    def _block(pending: list, with_sessions: bool) -> tuple:
        block = tuple(torch.cat(part) for part in zip(*pending))
        return block if with_sessions else block[:2]

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
