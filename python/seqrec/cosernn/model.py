"""CoSeRNN (Hansen et al., "Contextual and Sequential User Embeddings for Large-Scale Music
Recommendation", RecSys 2020, section 5), as written in the paper: the model, its losses and
its predictions (training: seqrec.cosernn.train):

    f+_t = c_t (+) s+_{t-1} (+) [N_{t-1}, z_{t-1}, Delta_t]     (f-_t likewise with s-_{t-1})
    o+_t = RNN+(FC-ReLU . FC-ReLU (f+_t)),  o-_t = RNN-(FC-ReLU . FC-ReLU (f-_t))
    o_t  = FC-ReLU . FC-ReLU (o-_t (+) o+_t),  u^_t = FC-id(o_t)
    u-_t ∝ sum_{t' < t} t' s_{t'}                      (long-term embedding, unit norm)
    [b^, b-] = softmax(FC(o_t)),  u_t = normalise(b^ u^_t + b- u-_t)
    loss = sum over real sessions of (1 - u_t . s+_t)

Beyond the paper, on request (``context_memory``): a third embedding in the attention fusion,
``u-c_t ∝ sum_{t' < t, c_t' = c_t} t' s+_{t'}`` over the earlier sessions of the same context
(time of day x device) -- the vector of the "Avg, same cxt" baseline, except that where no
earlier session of the context has a played track it falls back to ``u-_t`` -- so that the
model can keep the very tracks a user plays in a context, not only the smooth trend the RNN
learns.

Also beyond the paper, on request (``track_loss``): the track-ranking task as a second loss on
the same ``u_t`` (``track_ranking_loss``: a softmax over the tracks streamed most recently
before the session, those that occur in it the positives), weighted and added to the cosine loss.

The recurrent layer is seqrec_ext's fused ``gru_sequence`` (one op call per pathway forward
and backward) by default, or ``torch.nn.LSTM`` as in the paper (``cell="lstm"``). The user
embedding at session ``t`` only sees sessions before ``t`` and the context of ``t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec_ext import gru_sequence

from .sequences import TRACK_KS, TRAIN, UserSequences, feature_size, recent_tracks

# the track-ranking loss: candidates per session (the smaller K of the paper's track ranking)
# and the scale of the cosines in its softmax
TRACK_LOSS_CANDIDATES = min(TRACK_KS)
TRACK_LOSS_TEMPERATURE = 10.0


@dataclass
class CoSeRNNConfig:
    n_devices: int
    n_sources: int
    dim: int = 40
    fc: int = 200
    hidden: int = 400
    cell: str = "gru"  # gru (fused op) | lstm
    learning_rate: float = 5e-4
    batch_size: int = 64  # users per batch (the paper's 256 was for 200k users)
    max_epochs: int = 50
    patience: int = 5
    seed: int = 0
    # beyond the paper: a third fused embedding, the long-term one over earlier sessions of the
    # same context (time of day x device), see ``context_long_term_embedding``
    context_memory: bool = False
    # beyond the paper: weight of the track-ranking loss (``track_ranking_loss``) added to the
    # cosine loss; 0 trains the paper's objective alone
    track_loss: float = 0.0
    # the training step's arithmetic: fp32, or bf16 (torch.autocast: the products in bfloat16,
    # the fused GRU's gate arithmetic and the losses in float32; the parameters stay float32)
    precision: str = "fp32"


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


class LSTMLayer(nn.Module):
    """The paper's recurrent layer. Padding comes after each user's real sessions, so running
    over it leaves the real steps' outputs unchanged (they are masked out afterwards)."""

    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden, batch_first=True)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.lstm(x)[0]


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
        if config.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {config.cell!r}")
        self.config = config
        n_in = feature_size(config.n_devices, config.n_sources) + config.dim
        rnn = FusedGRU if config.cell == "gru" else LSTMLayer
        self.input_pos, self.input_neg = _mlp(n_in, config.fc), _mlp(n_in, config.fc)
        self.rnn_pos, self.rnn_neg = rnn(config.fc, config.hidden), rnn(config.fc, config.hidden)
        self.combine = _mlp(2 * config.hidden, config.fc)
        self.to_embedding = nn.Linear(config.fc, config.dim)
        self.attention = nn.Linear(config.fc, 3 if config.context_memory else 2)

    def forward(
        self,
        features: Tensor,
        s_all: Tensor,
        s_pos: Tensor,
        s_neg: Tensor,
        lengths: Tensor,
        context: Optional[Tensor] = None,
    ) -> Tensor:
        """User embeddings ``u_t`` ``(B, T, dim)`` for every session of every user in the batch.
        ``context (B, T)``: the sessions' context ids, needed with ``config.context_memory``."""
        prev_pos = F.pad(s_pos, (0, 0, 1, 0))[:, :-1]  # s+_{t-1}, zero at t = 1
        prev_neg = F.pad(s_neg, (0, 0, 1, 0))[:, :-1]
        o_pos = self.rnn_pos(self.input_pos(torch.cat([features, prev_pos], -1)), lengths)
        o_neg = self.rnn_neg(self.input_neg(torch.cat([features, prev_neg], -1)), lengths)
        o = self.combine(torch.cat([o_neg, o_pos], -1))
        u_hat = self.to_embedding(o)
        u_bar = long_term_embedding(s_all)
        beta = torch.softmax(self.attention(o), dim=-1)
        u = beta[..., :1] * u_hat + beta[..., 1:2] * u_bar
        if self.config.context_memory:
            if context is None:
                raise ValueError("a CoSeRNN with context_memory needs the sessions' context")
            u = u + beta[..., 2:] * context_long_term_embedding(s_pos, context, u_bar)
        return F.normalize(u, dim=-1)

    def embed(self, batch: UserSequences) -> Tensor:
        device = self.to_embedding.weight.device
        return self(
            batch.features.to(device),
            batch.s_all.to(device),
            batch.s_pos.to(device),
            batch.s_neg.to(device),
            batch.lengths.to(device),
            batch.context.to(device),
        )


def cosine_loss(u: Tensor, batch: UserSequences, split: int) -> tuple[Tensor, int]:
    """``sum (1 - u_t . s+_t)`` over the split's sessions that have a played track, and their count."""
    mask = ((batch.split == split) & batch.has_pos).to(u.device)
    cos = (u * batch.s_pos.to(u.device)).sum(-1)
    return ((1.0 - cos) * mask).sum(), int(mask.sum())


def training_candidates(seqs: UserSequences, k: int = TRACK_LOSS_CANDIDATES) -> Tensor:
    """``(U, T, k)`` int64: the ``k`` tracks each user streamed most recently before each
    session (``recent_tracks``), -1 padding; the candidates of ``track_ranking_loss``."""
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
) -> tuple[Tensor, Tensor, int]:
    """What a training step minimises on ``batch``: the mean cosine loss of its training
    sessions, plus ``track_loss`` times their mean ``track_ranking_loss`` (``candidates (B, T,
    K)``, the batch's rows of ``training_candidates``). Returns the objective, the cosine loss's
    sum (for reporting) and the number of sessions it covers (0: nothing to train on)."""
    loss, n = cosine_loss(u, batch, TRAIN)
    objective = loss / max(n, 1)
    if track_loss and candidates is not None:
        ranking, m = track_ranking_loss(u, candidates, batch, item_vectors, TRAIN)
        if m:
            objective = objective + track_loss * ranking / m
    return objective, loss, n


def predict(model: CoSeRNN, seqs: UserSequences, batch_size: int = 512) -> Tensor:
    """``u_t`` for all users and sessions, ``(U, T, dim)`` on the CPU."""
    model.eval()
    out = torch.zeros(seqs.s_pos.shape)
    with torch.no_grad():
        for start in range(0, seqs.n_users, batch_size):
            index = torch.arange(start, min(start + batch_size, seqs.n_users))
            batch = seqs.select(index)
            out[index, : batch.s_pos.shape[1]] = model.embed(batch).float().cpu()
    return out


def mean_cosine(model: CoSeRNN, seqs: UserSequences, split: int, batch_size: int = 512) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in seqs.batches(batch_size):
            loss, n = cosine_loss(model.embed(batch), batch, split)
            total, count = total + float(loss), count + n
    return 1.0 - total / max(count, 1)
