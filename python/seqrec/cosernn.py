"""CoSeRNN (Hansen et al., "Contextual and Sequential User Embeddings for Large-Scale Music
Recommendation", RecSys 2020, section 5), as written in the paper (SPEC 4):

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

import copy
import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqrec_ext import gru_sequence
from seqrec_ext.threads import ThreadTuner

from .checkpoints import save_atomically
from .cosernn_data import TRAIN, VALID, UserSequences, feature_size
from .cosernn_data import TRACK_KS, recent_tracks

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

    def forward(self, features: Tensor, s_all: Tensor, s_pos: Tensor, s_neg: Tensor, lengths: Tensor,
                context: Optional[Tensor] = None) -> Tensor:
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
        return self(batch.features.to(device), batch.s_all.to(device), batch.s_pos.to(device),
                    batch.s_neg.to(device), batch.lengths.to(device), batch.context.to(device))


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


def track_ranking_loss(u: Tensor, candidates: Tensor, batch: UserSequences, item_vectors: Tensor,
                       split: int, temperature: float = TRACK_LOSS_TEMPERATURE) -> tuple[Tensor, int]:
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


def training_objective(u: Tensor, batch: UserSequences, track_loss: float = 0.0,
                       candidates: Optional[Tensor] = None, item_vectors: Optional[Tensor] = None,
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


def save_checkpoint(path: str, config: CoSeRNNConfig, state: dict, **extra) -> None:
    """Atomically and durably (seqrec.checkpoints). ``state``: the model's weights
    (``load_checkpoint`` rebuilds the model from them and ``config``)."""
    save_atomically({"config": asdict(config), "state": state, **extra}, path)


def load_checkpoint(path: str, device="cpu") -> tuple[CoSeRNN, dict]:
    payload = torch.load(path, map_location=device, weights_only=True)
    model = CoSeRNN(CoSeRNNConfig(**payload["config"])).to(device)
    model.load_state_dict(payload["state"])
    return model, payload


# what a resumed run may change: how long it trains, not what it trains
RESUMABLE_CHANGES = ("max_epochs", "patience")


def load_training_state(path: str, config: CoSeRNNConfig, checkpoint_extra: Optional[dict] = None) -> dict:
    """The checkpoint ``path`` of a run that ``train(..., resume=True)`` can continue with
    ``config``; ValueError saying why not otherwise."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if "training" not in payload:
        raise ValueError(f"{path} holds no training state to resume (only a model)")
    saved = payload["config"]
    defaults = {f.name: f.default for f in fields(CoSeRNNConfig)}  # settings added after the run was saved
    changed = [k for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES and saved.get(k, defaults[k]) != v]
    if changed:
        raise ValueError(f"{path} was trained with other settings: "
                         + ", ".join(f"{k} {saved.get(k, defaults[k])!r} (now {getattr(config, k)!r})" for k in changed))
    for key, value in (checkpoint_extra or {}).items():
        if isinstance(value, Tensor) and not (key in payload and payload[key].shape == value.shape
                                              and torch.equal(payload[key], value)):
            raise ValueError(f"{path} was trained on other data ({key} differs)")
    return payload


def _train_epoch(model, optimizer, seqs: UserSequences, config: CoSeRNNConfig, generator, candidates, item_vectors,
                 epoch: int, tuner: ThreadTuner, progress) -> tuple[float, int]:
    """One epoch of Adam steps over the training users: (the summed cosine loss, sessions)."""
    total, count = 0.0, 0
    for index in seqs.batch_indices(config.batch_size, generator):
        batch = seqs.select(index)
        u = model.embed(batch)
        rows = None if candidates is None else candidates[index, :u.shape[1]]
        objective, loss, n = training_objective(u, batch, config.track_loss, rows, item_vectors)
        if n == 0:
            continue
        value = float(loss.detach())
        if not (math.isfinite(value) and math.isfinite(float(objective.detach()))):
            raise FloatingPointError(f"non-finite training loss at epoch {epoch}")
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        total, count = total + value, count + n
        if progress is not None:
            progress(batch.n_users, 1.0 - value / n)
        tuner.step(batch.n_users)
    return total, count


def train(seqs: UserSequences, config: CoSeRNNConfig, *, device="cpu", save: Optional[str] = None,
          checkpoint_extra: Optional[dict] = None, compile: bool = False, resume: bool = False,
          item_vectors: Optional[Tensor] = None,
          progress: Optional[Callable[[int, float], None]] = None,
          log: Callable[[str], None] = print, threads: Optional[int] = None) -> tuple[CoSeRNN, list[dict]]:
    """Adam on the training sessions, early stopping on the validation mean cosine (patience
    ``config.patience`` epochs); returns the best model and the per-epoch history. With
    ``save``, a checkpoint is written atomically after every epoch: the best model so far (what
    ``load_checkpoint`` loads), ``checkpoint_extra``, and the training state (the last epoch's
    weights, Adam's moments, the batch-order generator, the early-stopping counters).
    ``resume``: continue the run saved in ``save`` exactly as if it had never stopped (only
    ``max_epochs`` and ``patience`` may differ; tensors in ``checkpoint_extra`` must match).
    ``compile``: run the model under torch.compile. ``item_vectors`` (the item space, dense
    ids): needed with ``config.track_loss``, which adds ``track_loss`` times the mean
    ``track_ranking_loss`` of the batch's sessions to its mean cosine loss. ``threads``: the
    intra-op thread count, or None to let a :class:`seqrec_ext.threads.ThreadTuner` pick it by
    timing the steps."""
    if resume and not save:
        raise ValueError("resume needs save: the checkpoint of the run to continue")
    if not (math.isfinite(config.track_loss) and config.track_loss >= 0):
        raise ValueError(f"track_loss must be a finite weight >= 0, got {config.track_loss}")
    candidates = None
    if config.track_loss > 0:
        if item_vectors is None:
            raise ValueError("a track_loss needs the item vectors")
        candidates, item_vectors = training_candidates(seqs), torch.as_tensor(item_vectors).to(device)
    torch.manual_seed(config.seed)
    model = CoSeRNN(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    best, best_epoch, best_state, stale, history, done = -math.inf, 0, copy.deepcopy(model.state_dict()), 0, [], 0
    if resume:
        payload = load_training_state(save, config, checkpoint_extra)
        training = payload["training"]
        model.load_state_dict(training["model"])
        optimizer.load_state_dict(training["optimizer"])
        generator.set_state(training["generator"])
        best, best_epoch, best_state = payload["valid_cosine"], payload["epoch"], payload["state"]
        stale, history, done = training["stale"], list(training["history"]), training["epoch"]
        log(f"resumed after epoch {done} (best validation cosine {best:.4f} at epoch {best_epoch})")
    if compile:
        model.compile(dynamic=True)
    has_valid = bool(((seqs.split == VALID) & seqs.has_pos).any())
    if stale >= config.patience:
        log(f"already stopped early: no validation gain for {stale} epochs; best {best:.4f}")
    elif done >= config.max_epochs:
        log(f"already trained {done} epochs (--max-epochs {config.max_epochs}); raise it to train on")
    for epoch in range(done + 1, config.max_epochs + 1):
        if stale >= config.patience:
            break
        model.train()
        start = time.perf_counter()
        with ThreadTuner(threads) as tuner:
            total, count = _train_epoch(model, optimizer, seqs, config, generator, candidates, item_vectors, epoch,
                                        tuner, progress)
        train_cos = 1.0 - total / max(count, 1)
        valid_cos = mean_cosine(model, seqs, VALID) if has_valid else train_cos
        seconds = time.perf_counter() - start
        history.append({"epoch": epoch, "train_cosine": train_cos, "valid_cosine": valid_cos, "seconds": seconds})
        log(f"epoch {epoch}: train cosine {train_cos:.4f}, validation cosine {valid_cos:.4f} ({seconds:.1f} s)")
        if valid_cos > best:
            best, best_epoch, best_state, stale = valid_cos, epoch, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                log(f"early stop: no validation gain for {stale} epochs; best {best:.4f}")
        if save:
            training = {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(), "stale": stale, "history": history}
            save_checkpoint(save, config, best_state, epoch=best_epoch, valid_cosine=best, training=training,
                            **(checkpoint_extra or {}))
    model.load_state_dict(best_state)
    return model, history
