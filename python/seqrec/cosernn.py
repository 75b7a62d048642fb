"""CoSeRNN (Hansen et al., "Contextual and Sequential User Embeddings for Large-Scale Music
Recommendation", RecSys 2020, section 5), as written in the paper (SPEC 4):

    f+_t = c_t (+) s+_{t-1} (+) [N_{t-1}, z_{t-1}, Delta_t]     (f-_t likewise with s-_{t-1})
    o+_t = RNN+(FC-ReLU . FC-ReLU (f+_t)),  o-_t = RNN-(FC-ReLU . FC-ReLU (f-_t))
    o_t  = FC-ReLU . FC-ReLU (o-_t (+) o+_t),  u^_t = FC-id(o_t)
    u-_t ∝ sum_{t' < t} t' s_{t'}                      (long-term embedding, unit norm)
    [b^, b-] = softmax(FC(o_t)),  u_t = normalise(b^ u^_t + b- u-_t)
    loss = sum over real sessions of (1 - u_t . s+_t)

The recurrent layer is seqrec_ext's fused ``gru_sequence`` (one op call per pathway forward
and backward) by default, or ``torch.nn.LSTM`` as in the paper (``cell="lstm"``). The user
embedding at session ``t`` only sees sessions before ``t`` and the context of ``t``.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec_ext import gru_sequence

from .cosernn_data import TRAIN, VALID, UserSequences, feature_size


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
        self.attention = nn.Linear(config.fc, 2)

    def forward(self, features: Tensor, s_all: Tensor, s_pos: Tensor, s_neg: Tensor, lengths: Tensor) -> Tensor:
        """User embeddings ``u_t`` ``(B, T, dim)`` for every session of every user in the batch."""
        prev_pos = F.pad(s_pos, (0, 0, 1, 0))[:, :-1]  # s+_{t-1}, zero at t = 1
        prev_neg = F.pad(s_neg, (0, 0, 1, 0))[:, :-1]
        o_pos = self.rnn_pos(self.input_pos(torch.cat([features, prev_pos], -1)), lengths)
        o_neg = self.rnn_neg(self.input_neg(torch.cat([features, prev_neg], -1)), lengths)
        o = self.combine(torch.cat([o_neg, o_pos], -1))
        u_hat = self.to_embedding(o)
        u_bar = long_term_embedding(s_all)
        beta = torch.softmax(self.attention(o), dim=-1)
        return F.normalize(beta[..., :1] * u_hat + beta[..., 1:] * u_bar, dim=-1)

    def embed(self, batch: UserSequences) -> Tensor:
        device = self.to_embedding.weight.device
        return self(batch.features.to(device), batch.s_all.to(device), batch.s_pos.to(device),
                    batch.s_neg.to(device), batch.lengths.to(device))


def cosine_loss(u: Tensor, batch: UserSequences, split: int) -> tuple[Tensor, int]:
    """``sum (1 - u_t . s+_t)`` over the split's sessions that have a played track, and their count."""
    mask = ((batch.split == split) & batch.has_pos).to(u.device)
    cos = (u * batch.s_pos.to(u.device)).sum(-1)
    return ((1.0 - cos) * mask).sum(), int(mask.sum())


def predict(model: CoSeRNN, seqs: UserSequences, batch_size: int = 512) -> Tensor:
    """``u_t`` for all users and sessions, ``(U, T, dim)`` on the CPU."""
    model.eval()
    out = torch.zeros(seqs.s_pos.shape)
    with torch.no_grad():
        for start in range(0, seqs.n_users, batch_size):
            index = torch.arange(start, min(start + batch_size, seqs.n_users))
            batch = seqs.select(index)
            out[index, :batch.s_pos.shape[1]] = model.embed(batch).float().cpu()
    return out


def mean_cosine(model: CoSeRNN, seqs: UserSequences, split: int, batch_size: int = 512) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in seqs.batches(batch_size):
            loss, n = cosine_loss(model.embed(batch), batch, split)
            total, count = total + float(loss), count + n
    return 1.0 - total / max(count, 1)


def save_checkpoint(path: str, model: CoSeRNN, **extra) -> None:
    """Atomically: written to a temporary file, then renamed over ``path``."""
    tmp = f"{path}.tmp"
    torch.save({"config": asdict(model.config), "state": model.state_dict(), **extra}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str, device="cpu") -> tuple[CoSeRNN, dict]:
    payload = torch.load(path, map_location=device, weights_only=True)
    model = CoSeRNN(CoSeRNNConfig(**payload["config"])).to(device)
    model.load_state_dict(payload["state"])
    return model, payload


def train(seqs: UserSequences, config: CoSeRNNConfig, *, device="cpu", save: Optional[str] = None,
          checkpoint_extra: Optional[dict] = None, compile: bool = False,
          progress: Optional[Callable[[int, float], None]] = None,
          log: Callable[[str], None] = print) -> tuple[CoSeRNN, list[dict]]:
    """Adam on the training sessions, early stopping on the validation mean cosine (patience
    ``config.patience`` epochs); returns the best model and the per-epoch history. With
    ``save``, the best model so far is checkpointed (atomically, with ``checkpoint_extra``)
    whenever the validation cosine improves. ``compile``: run the model under torch.compile."""
    torch.manual_seed(config.seed)
    model = CoSeRNN(config).to(device)
    if compile:
        model.compile(dynamic=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    has_valid = bool(((seqs.split == VALID) & seqs.has_pos).any())
    best, best_state, stale, history = -math.inf, copy.deepcopy(model.state_dict()), 0, []
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        start, total, count = time.perf_counter(), 0.0, 0
        for batch in seqs.batches(config.batch_size, generator):
            loss, n = cosine_loss(model.embed(batch), batch, TRAIN)
            if n == 0:
                continue
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            (loss / n).backward()
            optimizer.step()
            total, count = total + value, count + n
            if progress is not None:
                progress(batch.n_users, 1.0 - value / n)
        train_cos = 1.0 - total / max(count, 1)
        valid_cos = mean_cosine(model, seqs, VALID) if has_valid else train_cos
        seconds = time.perf_counter() - start
        history.append({"epoch": epoch, "train_cosine": train_cos, "valid_cosine": valid_cos, "seconds": seconds})
        log(f"epoch {epoch}: train cosine {train_cos:.4f}, validation cosine {valid_cos:.4f} ({seconds:.1f} s)")
        if valid_cos > best:
            best, best_state, stale = valid_cos, copy.deepcopy(model.state_dict()), 0
            if save:
                save_checkpoint(save, model, epoch=epoch, valid_cosine=valid_cos, **(checkpoint_extra or {}))
        else:
            stale += 1
            if stale >= config.patience:
                log(f"early stop: no validation gain for {stale} epochs; best {best:.4f}")
                break
    model.load_state_dict(best_state)
    return model, history
