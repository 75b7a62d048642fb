"""CoSeRNN (Hansen et al., "Contextual and Sequential User Embeddings for Large-Scale Music
Recommendation", RecSys 2020, section 5), as written in the paper: the model, its losses and
its predictions (training: seqrec.cosernn.train):

    f+_t = c_t (+) s+_{t-1} (+) [N_{t-1}, z_{t-1}, Delta_t]     (f-_t likewise with s-_{t-1})
    g    = FC-ReLU . FC-ReLU                    (one transformation for both, section 5.1.2)
    o+_t = LSTM+(g(f+_t)),  o-_t = LSTM-(g(f-_t))
    o_t  = FC-ReLU . FC-ReLU (o-_t (+) o+_t),  u^_t = FC-id(o_t)
    u-_t ∝ sum_{t' < t} t' s_{t'}                      (long-term embedding, unit norm)
    [b^, b-] = softmax(FC(o_t)),  u_t = normalise(b^ u^_t + b- u-_t)
    loss = sum over real sessions of (1 - u_t . s+_t)

The recurrent layer is the paper's LSTM (``torch.nn.LSTM``, ``cell="lstm"``; seqrec_ext's
``lstm_sequence`` with the same parameters, ``cell="fused-lstm"``) or a GRU (``cell="gru"``).
The options beyond the paper (``context_memory``, ``track_loss``, ``pathway_loss``, ``init``),
the ablations (``ablate``) and the paper's two additions (``current_source``,
``all_tracks_pathway``) are described in docs/cosernn.md. The user embedding at session ``t``
only sees sessions before ``t`` and the context of ``t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec_ext import gru_sequence, lstm_sequence

from .sequences import TRACK_KS, TRAIN, UserSequences, feature_groups, feature_size, recent_tracks

# the track-ranking loss: candidates per session (the smaller K of the paper's track ranking)
# and the scale of the cosines in its softmax
TRACK_LOSS_CANDIDATES = min(TRACK_KS)
TRACK_LOSS_TEMPERATURE = 10.0

# what ``CoSeRNNConfig.ablate`` may remove (section 6.4), in the order the names are written
ABLATIONS = {
    "context": "the current context c_t (day of week, hour, device)",
    "last-embeddings": "the previous session's embeddings s+_{t-1}, s-_{t-1}",
    "last-count": "the previous session's track count N_{t-1}",
    "last-gap": "the time since the previous session Delta_t",
    "last-source": "the previous session's stream source z_{t-1}",
    "played-pathway": "the played pathway (skipped tracks only)",
    "skipped-pathway": "the skipped pathway (played tracks only)",
    "split": "the played / skipped partition (one pathway over all tracks)",
    "long-term": "the long-term embedding u-_t (u_t = u^_t)",
}
# the recurrent cells (``CoSeRNNConfig.cell``)
CELLS = {
    "lstm": "the paper's LSTM, run by torch.nn.LSTM (oneDNN's fused LSTM on the CPU)",
    "fused-lstm": "the paper's LSTM, run by the fused lstm_sequence op (the same parameters)",
    "gru": "a GRU (torch.nn.GRU's cell), run by the fused gru_sequence op",
}
# the default weight of the pathway's own cosine loss (``CoSeRNNConfig.pathway_loss``)
PATHWAY_LOSS = 1.0
# the feed-forward layers' initialisations (``CoSeRNNConfig.init``)
INITS = ("he", "torch")
ABLATION_ALIASES = {"last-stats": ("last-count", "last-gap", "last-source")}
# the feature columns (sequences.feature_groups) each input ablation removes
_ABLATED_FEATURES = {
    "context": ("day", "hour", "device"),
    "last-count": ("last-count",),
    "last-gap": ("last-gap",),
    "last-source": ("last-source",),
}


def normalise_ablations(ablate: Union[str, Iterable[str], None]) -> str:
    """``ablate`` (comma-separated names, or an iterable of them; aliases expanded) as the
    canonical comma-separated string, in ``ABLATIONS`` order; ValueError for unknown names or
    combinations that leave no pathway."""
    if ablate is None:
        return ""
    names = ablate.split(",") if isinstance(ablate, str) else list(ablate)
    chosen = set()
    for name in (n.strip() for n in names):
        if not name:
            continue
        if name in ABLATION_ALIASES:
            chosen.update(ABLATION_ALIASES[name])
        elif name in ABLATIONS:
            chosen.add(name)
        else:
            known = ", ".join([*ABLATIONS, *ABLATION_ALIASES])
            raise ValueError(f"unknown ablation {name!r} (one of: {known})")
    if {"played-pathway", "skipped-pathway"} <= chosen:
        raise ValueError("ablating both the played and the skipped pathway leaves no pathway")
    if "split" in chosen and chosen & {"played-pathway", "skipped-pathway"}:
        raise ValueError("'split' (one pathway over all tracks) replaces both pathways: ablate it alone")
    return ",".join(name for name in ABLATIONS if name in chosen)


@dataclass
class CoSeRNNConfig:
    n_devices: int
    n_sources: int
    dim: int = 40
    fc: int = 200
    hidden: int = 400
    cell: str = "lstm"  # one of CELLS
    # one input transformation FC-ReLU . FC-ReLU for both pathways (the paper's); False: one each
    shared_input: bool = True
    # the paper's ablations (section 6.4), comma-separated names of ``ABLATIONS``; "" = none
    ablate: str = ""
    # the paper's additions (section 6.4): the current session's stream source z_t as an input
    # (Table 3's hypothetical scenario), a third pathway over all tracks (Table 4)
    current_source: bool = False
    all_tracks_pathway: bool = False
    learning_rate: float = 5e-4
    batch_size: int = 64  # users per batch (the paper's 256 was for 200k users)
    max_epochs: int = 50
    patience: int = 5
    seed: int = 0
    # beyond the paper: a third fused embedding, the long-term one over earlier sessions of the
    # same context (time of day x device), see ``context_long_term_embedding``
    context_memory: bool = False
    # beyond the paper: weight of a second cosine loss on the recurrent pathway's own output,
    # mean (1 - cos(u^_t, s+_t)), added to the objective, so that u^ learns to predict the session
    # whatever weight the attention gives it (without it the attention settles on the long-term
    # embedding first and u^ starves: docs/cosernn.md); 0 trains the paper's objective alone
    pathway_loss: float = PATHWAY_LOSS
    # beyond the paper: weight of the track-ranking loss (``track_ranking_loss``) added to the
    # cosine loss; 0 trains the paper's objective alone
    track_loss: float = 0.0
    # the sessions per user a model sees (training, validation, evaluation): the most recent
    # ones; 0 = all (the paper's reference implementation keeps 400)
    max_sessions: int = 400
    # batches of users of similar history length (sequences.batch_order), in a seeded order
    length_buckets: bool = True
    # the training step's arithmetic: fp32, or bf16 (torch.autocast: the products in bfloat16,
    # the fused GRU's gate arithmetic and the losses in float32; the parameters stay float32)
    precision: str = "fp32"
    # how the feed-forward layers start (the paper does not say; docs/cosernn.md, "Why the
    # recurrent pathway did not learn"): "he" -- the ReLU layers He-normal, the output and
    # attention layers Xavier-uniform, every bias of them zero -- or "torch" (nn.Linear's
    # default, this package's earlier one, under which the input-dependent part of u^ starts at
    # ~1% of its constant part)
    init: str = "he"
    # linear learning-rate warm-up over the first ``warmup`` Adam updates (0: none). Without it
    # the first updates blow u^'s constant part up along the mean session vector and, in the
    # full model, the attention settles on the long-term embedding before u^ can learn
    warmup: int = 100
    # the budget in Adam updates (0: none): training stops after this many, whatever the epoch
    max_updates: int = 0

    def __post_init__(self):
        self.ablate = normalise_ablations(self.ablate)
        if self.all_tracks_pathway and "split" in self.ablations:
            raise ValueError(
                "all_tracks_pathway adds a pathway over all tracks beside the played and skipped ones: "
                "with the 'split' ablation that is already the only pathway"
            )
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if not (math.isfinite(self.pathway_loss) and self.pathway_loss >= 0):
            raise ValueError(f"pathway_loss must be a finite weight >= 0, got {self.pathway_loss}")
        for name in ("hidden", "fc", "batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be finite and > 0, got {self.learning_rate}")
        if self.warmup < 0 or self.max_updates < 0:
            raise ValueError(f"warmup and max_updates must be >= 0, got {self.warmup}, {self.max_updates}")
        if self.max_sessions < 0:
            raise ValueError(f"max_sessions must be >= 0 (0: all), got {self.max_sessions}")
        if self.context_memory and {"long-term", "context"} & set(self.ablations):
            raise ValueError(
                "context_memory fuses a same-context long-term embedding: it needs the context and the "
                "long-term embedding (not ablated)"
            )

    @property
    def ablations(self) -> tuple:
        return tuple(self.ablate.split(",")) if self.ablate else ()

    @property
    def pathways(self) -> tuple:
        """The recurrent pathways, by the session embedding they read: ``pos`` (s+), ``neg`` (s-),
        ``all`` (s)."""
        if "split" in self.ablations:
            return ("all",)
        kept = tuple(
            p for p, gone in (("pos", "played-pathway"), ("neg", "skipped-pathway")) if gone not in self.ablations
        )
        return kept + ("all",) if self.all_tracks_pathway else kept

    def kept_features(self) -> list:
        """The indices of the feature columns the pathways read (all but the ablated groups)."""
        groups = feature_groups(self.n_devices, self.n_sources)
        gone = {g for a in self.ablations for g in _ABLATED_FEATURES.get(a, ())}
        return [i for name, cols in groups.items() if name not in gone for i in range(cols.start, cols.stop)]


class FusedGRU(nn.Module):
    """A batch-first GRU layer (``torch.nn.GRU``'s cell, gates r, z, n) on ``gru_sequence``:
    the input projection is one matrix product for all steps, the recurrence one op call."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        bound = 1.0 / math.sqrt(hidden)
        self.w_ih = nn.Parameter(torch.empty(3 * hidden, input_size).uniform_(-bound, bound))
        self.w_hh = nn.Parameter(torch.empty(3 * hidden, hidden).uniform_(-bound, bound))
        self.b_ih = nn.Parameter(torch.empty(3 * hidden).uniform_(-bound, bound))
        self.b_hh = nn.Parameter(torch.empty(3 * hidden).uniform_(-bound, bound))

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        gi = torch.matmul(x.transpose(0, 1), self.w_ih.t()).contiguous()  # (T, B, 3H), bias added in the op
        h0 = x.new_zeros(x.shape[0], self.hidden)
        out, _ = gru_sequence(gi, h0, self.w_hh, self.b_ih, self.b_hh, lengths=lengths, reset_after=True)
        return out.transpose(0, 1)


class LSTMParameters(nn.Module):
    """``torch.nn.LSTM``'s parameters of one layer under its names (``weight_ih_l0``,
    ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``; gate blocks i, f, g, o) and with its
    initialisation (uniform on ±1/√hidden, drawn in its order): the fused layer's state, so that
    its checkpoints and nn.LSTM's are interchangeable. (Not an nn.LSTM: dynamo refuses to trace
    through one, even to read its weights.)"""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.hidden_size = hidden
        bound = 1.0 / math.sqrt(hidden)
        for name, shape in (
            ("weight_ih_l0", (4 * hidden, input_size)),
            ("weight_hh_l0", (4 * hidden, hidden)),
            ("bias_ih_l0", (4 * hidden,)),
            ("bias_hh_l0", (4 * hidden,)),
        ):
            setattr(self, name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))


class LSTMLayer(nn.Module):
    """The paper's recurrent layer, ``torch.nn.LSTM``'s cell: run by the fused ``lstm_sequence``
    op (``fused``: the input projection one matrix product for all steps, the recurrence forward
    and backward one op call each) or by ``torch.nn.LSTM`` itself, with the same parameters
    (``lstm.weight_ih_l0`` ...). Padding comes after each user's real sessions: the op stops each
    row at its length, nn.LSTM runs over the padding, which leaves the real steps' outputs
    unchanged (they are masked out afterwards)."""

    def __init__(self, input_size: int, hidden: int, fused: bool = True):
        super().__init__()
        self.fused = fused
        self.lstm = LSTMParameters(input_size, hidden) if fused else nn.LSTM(input_size, hidden, batch_first=True)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        if not self.fused:
            return self.lstm(x)[0]
        cell = self.lstm
        gi = torch.matmul(x.transpose(0, 1), cell.weight_ih_l0.t()).contiguous()  # (T, B, 4H), bias added in the op
        h0 = x.new_zeros(x.shape[0], cell.hidden_size)
        out, _, _ = lstm_sequence(
            gi,
            h0,
            h0,
            cell.weight_hh_l0,
            cell.bias_ih_l0,
            cell.bias_hh_l0,
            lengths=None if lengths is None else lengths.to(x.device),
        )
        return out.transpose(0, 1)


def _mlp(n_in: int, n_hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_hidden), nn.ReLU())


def long_term_embedding(s_all: Tensor) -> Tensor:
    """``u-_t ∝ sum_{t' < t} t' s_{t'}`` (1-based t'), unit norm; zero at t = 1."""
    T = s_all.shape[1]
    weights = torch.arange(1, T + 1, dtype=s_all.dtype, device=s_all.device)[None, :, None]
    weighted = s_all * weights
    exclusive = torch.cumsum(weighted, dim=1) - weighted
    return F.normalize(exclusive, dim=-1)


def context_long_term_embedding(s_pos: Tensor, context: Tensor, fallback: Tensor) -> Tensor:
    """``u-c_t ∝ sum_{t' < t, c_t' = c_t} t' s+_{t'}`` (1-based t'; sessions without a played
    track have ``s+ = 0`` and add nothing), unit norm; ``fallback`` (the long-term embedding)
    where no earlier session of the same context has a played track. ``context (B, T)`` int64,
    -1 on padding. One batched product with a ``(B, T, T)`` weight matrix: memory grows with the
    square of the sessions per user (64 users x 1,000 sessions: 256 MB in float32)."""
    T = s_pos.shape[1]
    steps = torch.arange(T, device=s_pos.device)
    earlier = steps[None, :, None] > steps[None, None, :]  # [t, t']: t' < t
    same = (context[:, :, None] == context[:, None, :]) & earlier & (context[:, None, :] >= 0)
    weights = same.to(s_pos.dtype) * (steps + 1).to(s_pos.dtype)[None, None, :]
    summed = torch.bmm(weights, s_pos)
    found = summed.abs().sum(-1, keepdim=True) > 0
    return torch.where(found, F.normalize(summed, dim=-1), fallback)


class CoSeRNN(nn.Module):
    def __init__(self, config: CoSeRNNConfig):
        super().__init__()
        if config.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {config.cell!r}")
        self.config = config
        kept = config.kept_features()
        self.uses_last_embeddings = "last-embeddings" not in config.ablations
        if len(kept) < feature_size(config.n_devices, config.n_sources):
            self.register_buffer("feature_index", torch.tensor(kept, dtype=torch.int64), persistent=False)
        else:
            self.feature_index = None
        n_in = len(kept) + (config.dim if self.uses_last_embeddings else 0)
        n_in += config.n_sources if config.current_source else 0
        rnn = {"gru": FusedGRU, "fused-lstm": LSTMLayer, "lstm": partial(LSTMLayer, fused=False)}[config.cell]
        if config.shared_input:
            self.input_mlp = _mlp(n_in, config.fc)
        for p in config.pathways:
            if not config.shared_input:
                setattr(self, f"input_{p}", _mlp(n_in, config.fc))
            setattr(self, f"rnn_{p}", rnn(config.fc, config.hidden))
        self.combine = _mlp(len(config.pathways) * config.hidden, config.fc)
        self.to_embedding = nn.Linear(config.fc, config.dim)
        self.uses_long_term = "long-term" not in config.ablations
        if self.uses_long_term:
            self.attention = nn.Linear(config.fc, 3 if config.context_memory else 2)
        if config.init == "he":
            self._he_init()

    def _he_init(self) -> None:
        """The ReLU layers (input transformations, combining layers) He-normal for their fan-in,
        so that what varies between sessions keeps its scale through the stack; the linear output
        and attention layers Xavier-uniform (the attention starts at equal weights); every bias of
        them zero, so that no constant part dominates u^ at the start. The recurrent layers keep
        their own initialisation."""
        for name, layer in self.named_modules():
            if not isinstance(layer, nn.Linear):
                continue
            if name.startswith(("input", "combine")):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self,
        features: Tensor,
        s_all: Tensor,
        s_pos: Tensor,
        s_neg: Tensor,
        lengths: Tensor,
        context: Optional[Tensor] = None,
        source: Optional[Tensor] = None,
        with_u_hat: bool = False,
    ) -> Union[Tensor, tuple]:
        """User embeddings ``u_t`` ``(B, T, dim)`` for every session of every user in the batch;
        with ``with_u_hat``, ``(u_t, u^_t)``, the recurrent pathway's own output beside it (None
        where the long-term embedding is ablated: u is u^ itself), for ``pathway_loss``.
        ``context (B, T)``: the sessions' context ids, needed with ``config.context_memory``;
        ``source (B, T)``: their own stream sources z_t (-1 on padding), needed with
        ``config.current_source``."""
        if self.feature_index is not None:
            features = features.index_select(-1, self.feature_index)
        if self.config.current_source:
            if source is None:
                raise ValueError("a CoSeRNN with current_source needs the sessions' stream source")
            z = F.one_hot(source.clamp(min=0), self.config.n_sources) * (source >= 0)[..., None]
            features = torch.cat([features, z.to(features.dtype)], -1)
        sessions = {"pos": s_pos, "neg": s_neg, "all": s_all}
        outputs = {}
        for p in self.config.pathways:
            f = features
            if self.uses_last_embeddings:
                previous = F.pad(sessions[p], (0, 0, 1, 0))[:, :-1]  # s_{t-1}, zero at t = 1
                f = torch.cat([features, previous], -1)
            transform = self.input_mlp if self.config.shared_input else getattr(self, f"input_{p}")
            outputs[p] = getattr(self, f"rnn_{p}")(transform(f), lengths)
        # the paper's order o-_t (+) o+_t
        o = self.combine(torch.cat([outputs[p] for p in ("neg", "pos", "all") if p in outputs], -1))
        u_hat = self.to_embedding(o)
        if not self.uses_long_term:
            u = F.normalize(u_hat, dim=-1)
            return (u, None) if with_u_hat else u  # u is u^ itself: nothing for pathway_loss to add
        u_bar = long_term_embedding(s_all)
        beta = torch.softmax(self.attention(o), dim=-1)
        u = beta[..., :1] * u_hat + beta[..., 1:2] * u_bar
        if self.config.context_memory:
            if context is None:
                raise ValueError("a CoSeRNN with context_memory needs the sessions' context")
            u = u + beta[..., 2:] * context_long_term_embedding(s_pos, context, u_bar)
        u = F.normalize(u, dim=-1)
        return (u, u_hat) if with_u_hat else u

    def embed(self, batch: UserSequences, with_u_hat: bool = False) -> Union[Tensor, tuple]:
        """``forward`` on a padded batch (moved to the model's device)."""
        device = self.to_embedding.weight.device
        return self(
            batch.features.to(device),
            batch.s_all.to(device),
            batch.s_pos.to(device),
            batch.s_neg.to(device),
            batch.lengths.to(device),
            batch.context.to(device),
            batch.source.to(device),
            with_u_hat,
        )

    def describe(self) -> str:
        """The model's variant as the results table names it: the cell, then what differs from the
        paper's model (the default pathway loss, beyond the paper, is named only where it
        differs: "the paper's objective alone" for 0)."""
        c = self.config
        parts = [c.cell]
        if not c.shared_input:
            parts.append("separate input MLPs")
        if c.ablate:
            parts.append("without " + " + ".join(c.ablations))
        if c.current_source:
            parts.append("with current source")
        if c.all_tracks_pathway:
            parts.append("all-tracks pathway")
        if c.context_memory:
            parts.append("context memory")
        if c.pathway_loss != PATHWAY_LOSS and self.uses_long_term:  # the default's row keeps the short name
            parts.append(f"pathway loss {c.pathway_loss:g}" if c.pathway_loss else "the paper's objective alone")
        if c.track_loss:
            parts.append(f"track loss {c.track_loss:g}")
        return ", ".join(parts)


def cosine_loss(u: Tensor, batch: UserSequences, split: int) -> tuple[Tensor, int]:
    """``sum (1 - u_t . s+_t)`` over the split's sessions that have a played track, and their count."""
    mask = ((batch.split == split) & batch.has_pos).to(u.device)
    cos = (u * batch.s_pos.to(u.device)).sum(-1)
    return ((1.0 - cos) * mask).sum(), int(mask.sum())


def training_candidates(seqs: UserSequences, k: int = TRACK_LOSS_CANDIDATES) -> Tensor:
    """``(U, T, k)`` int64: the ``k`` tracks each user streamed most recently before each
    session (``recent_tracks``), -1 padding; the candidates of ``track_ranking_loss``. ``seqs``:
    padded (training computes them batch by batch: a batch holds its users' whole histories)."""
    out = torch.full((*seqs.split.shape, k), -1, dtype=torch.int64)
    out[seqs.mask] = recent_tracks(seqs, seqs.mask, k)
    return out


def track_ranking_loss(
    u: Tensor,
    candidates: Tensor,
    batch: UserSequences,
    item_vectors: Tensor,
    split: int,
    temperature: float = TRACK_LOSS_TEMPERATURE,
) -> tuple[Tensor, int]:
    """The track-ranking task as a loss (beyond the paper): for each session, a softmax over its
    candidates ``candidates (B, T, K)`` (the tracks streamed most recently before it, -1
    padding) of ``temperature * u_t . v_c``, and minus the mean log-probability of the
    candidates that occur in the session. Summed over the split's sessions with at least one
    such candidate; returns the sum and their count."""
    candidates = candidates.to(u.device)
    items = batch.items.to(u.device)
    valid = candidates >= 0
    relevant = (candidates[..., :, None] == items[..., None, :]).any(-1) & valid
    mask = (batch.split.to(u.device) == split) & relevant.any(-1)
    vectors = item_vectors.to(u.device, u.dtype)[candidates.clamp(min=0)]
    scores = temperature * torch.einsum("btkd,btd->btk", vectors, u)
    # a finite fill: a row without candidates stays finite (and masked out) in both passes
    log_p = torch.log_softmax(scores.masked_fill(~valid, -1e9), dim=-1)
    per_session = -log_p.masked_fill(~relevant, 0.0).sum(-1) / relevant.sum(-1).clamp(min=1)
    return (per_session * mask).sum(), int(mask.sum())


def training_objective(
    u: Tensor,
    batch: UserSequences,
    track_loss: float = 0.0,
    candidates: Optional[Tensor] = None,
    item_vectors: Optional[Tensor] = None,
    pathway_loss: float = 0.0,
    u_hat: Optional[Tensor] = None,
) -> tuple[Tensor, Tensor, int]:
    """What a training step minimises on ``batch``: the mean cosine loss of its training
    sessions, plus ``track_loss`` times their mean ``track_ranking_loss`` (``candidates (B, T,
    K)``, the batch's rows of ``training_candidates``), plus ``pathway_loss`` times the mean
    cosine loss of the pathway's own output ``u_hat`` (``CoSeRNN.embed(..., with_u_hat=True)``). Returns the
    objective, the cosine loss's sum (for reporting) and the number of sessions it covers (0:
    nothing to train on)."""
    loss, n = cosine_loss(u, batch, TRAIN)
    objective = loss / max(n, 1)
    if pathway_loss and u_hat is not None:
        objective = objective + pathway_loss * cosine_loss(F.normalize(u_hat, dim=-1), batch, TRAIN)[0] / max(n, 1)
    if track_loss and candidates is not None:
        ranking, m = track_ranking_loss(u, candidates, batch, item_vectors, TRAIN)
        if m:
            objective = objective + track_loss * ranking / m
    return objective, loss, n


def model_predictor(model: CoSeRNN) -> Callable:
    """``fn(batch, ids)`` -> ``u_t (B, T_b, dim)`` of a padded batch on the CPU, in eval mode
    without gradients: the model as an approach of ``evaluate.evaluate_all``."""

    def fn(batch: UserSequences, ids=None) -> Tensor:
        model.eval()
        with torch.no_grad():
            return model.embed(batch).float().cpu()

    return fn


def predict(model: CoSeRNN, seqs, batch_size: int = 512, sessions: Optional[Tensor] = None) -> Tensor:
    """``u_t`` of every session, on the CPU, in ``seqs``' layout: ``(U, T, dim)`` for padded
    ``UserSequences``, ``(S, dim)`` for flat ``SessionSequences`` (users in chunks of
    ``batch_size``, of similar history length). ``sessions`` (a bool mask in that layout): only
    those sessions' ``(N, dim)``, in order, so that memory is O(N + chunk)."""
    from .evaluate import per_session

    fn = model_predictor(model)
    if sessions is None:
        if isinstance(seqs, UserSequences):  # padded: in order, as it always was
            out = torch.zeros(seqs.s_pos.shape)
            for start in range(0, seqs.n_users, batch_size):
                index = torch.arange(start, min(start + batch_size, seqs.n_users))
                batch = seqs.select(index)
                out[index, : batch.s_pos.shape[1]] = fn(batch)
            return out
        return per_session(seqs, fn, batch_size)
    sessions = torch.as_tensor(sessions, dtype=torch.bool)
    position = torch.full(sessions.shape, -1, dtype=torch.int64)
    position[sessions] = torch.arange(int(sessions.sum()))
    out = torch.zeros(int(sessions.sum()), model.config.dim)
    for index in seqs.batch_indices(batch_size, None, buckets=True):
        where = seqs.gather(position, index, -1)
        if bool((where >= 0).any()):
            u = fn(seqs.select(index))
            out[where[where >= 0]] = u[where >= 0]
    return out


def mean_cosine(model: CoSeRNN, seqs, split: int, batch_size: int = 512) -> float:
    """Mean ``u_t . s+_t`` over the sessions of ``split`` with a played track (users in chunks
    of similar history length)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in seqs.batches(batch_size, buckets=True):
            loss, n = cosine_loss(model.embed(batch), batch, split)
            total, count = total + float(loss), count + n
    return 1.0 - total / max(count, 1)
