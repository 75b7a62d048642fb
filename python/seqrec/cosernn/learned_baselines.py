"""The learned baselines of CoSeRNN's Table 2 (Hansen et al., RecSys 2020, section 6.1): JODIE,
RRN and Latent Cross, adapted as the paper adapted them to its setting.

What the paper changed in all three, and what is done here:

* the item space is fixed: the 40-d track vectors are given, nothing item-side is learned, and
  a model predicts, for every session ``t`` of a user, a unit vector ``u_t`` in that space from
  the user's sessions before ``t`` and what is known at the start of ``t`` (its context: the
  per-session ``features``, and its start time);
* the objective is CoSeRNN's, the cosine loss ``sum (1 - u_t . s+_t)`` over the training
  sessions (the paper: JODIE's own L2 loss did worse; RRN's rating output and Latent Cross's
  softmax are replaced by a 40-d output);
* "multiple RNNs represent combinations of all, skipped and listened parts of the session":
  each model runs one recurrent pathway per part -- fed the previous session's ``s``, ``s-``
  or ``s+`` -- and combines their outputs.

A session's ``features`` are taken as one vector whatever their layout (its width is read
from the data): context of the session, and what is known of the previous one. Elapsed times
are computed here from the sessions' start times: ``gap_t = log(1 + hours since session t -
1 started)`` (0 at a user's first session) and ``age_t = log(1 + days since the user's first
session)``.

Every model maps a batch of :class:`~seqrec.cosernn.sequences.UserSequences` to ``u_t (B, T,
40)`` with ``embed(batch)``, as ``CoSeRNN.embed``; ``u_t`` depends on sessions ``< t`` and on
the features and start time of ``t``, nothing later. JODIE and RRN also hold a learned vector
per user (their static / stationary user embedding), looked up by the users' ids: a user
absent from the data the model was built for gets a zero vector. As in the originals, that
vector is fitted to all of a user's training sessions, so for a training session it carries
something of the user's later training sessions; the validation and test sessions come after
every training session, so their predictions rest on the past alone.

``train_learned_baseline`` trains one (Adam, early stopping on the validation mean cosine, as
``seqrec.cosernn.train``); ``seqrec.cosernn.model.predict`` and ``model_predictor`` give its
``u_t`` (for padded and flat data alike) as for CoSeRNN, and ``mean_cosine`` its validation
cosine: they need only ``embed(batch)``.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import cosine_loss, mean_cosine
from .sequences import TRAIN, VALID, UserSequences
from .train import warmed_up

# the parts of a session each pathway follows: all tracks (s), skipped (s-), played (s+)
PATHWAYS = ("all", "skipped", "played")


def _previous(x: Tensor) -> Tensor:
    """``x`` of session ``t - 1`` at ``t`` (``(B, T, ...)``, along dim 1), zero at ``t = 0``."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)


def elapsed_times(starts: Tensor) -> tuple[Tensor, Tensor]:
    """``(gap, age)``, each ``(B, T)`` float32, from the start times ``starts (B, T)`` (seconds):
    ``gap_t = log(1 + hours since session t - 1)``, 0 at ``t = 0``; ``age_t = log(1 + days since
    the user's first session)``. Padding (start 0) gives 0 or any finite value."""
    starts = starts.double()
    gap = (starts - _previous(starts[..., None])[..., 0]).clamp(min=0) / 3600.0
    gap[:, :1] = 0
    age = (starts - starts[:, :1]).clamp(min=0) / 86400.0
    return torch.log1p(gap).float(), torch.log1p(age).float()


class UserTable(nn.Module):
    """A learned vector per user id (``user_ids``: int64 ids, e.g. ``UserSequences.users``),
    zero-initialised; a user not in ``user_ids`` reads a zero vector (row 0, never trained)."""

    def __init__(self, user_ids, dim: int):
        super().__init__()
        ids = np.unique(np.asarray(user_ids, dtype=np.int64))
        self.register_buffer("user_ids", torch.from_numpy(ids))
        self.embedding = nn.Embedding(len(ids) + 1, dim)
        nn.init.zeros_(self.embedding.weight)

    def index(self, users) -> Tensor:
        """Rows of ``users`` (ids, array-like): 1 + their position in ``user_ids``, 0 if absent."""
        ids = self.user_ids.cpu().numpy()
        users = np.asarray(users, dtype=np.int64)
        if len(ids) == 0:
            return torch.zeros(len(users), dtype=torch.int64)
        pos = np.minimum(np.searchsorted(ids, users), len(ids) - 1)
        return torch.from_numpy(np.where(ids[pos] == users, pos + 1, 0).astype(np.int64))

    def forward(self, rows: Tensor) -> Tensor:
        return self.embedding(rows) * (rows > 0)[..., None].to(self.embedding.weight.dtype)


class _SessionModel(nn.Module):
    """What the three models share: the batch's tensors moved to the model's device, the elapsed
    times, the rows of the per-user table (floats in the model's dtype)."""

    def embed(self, batch: UserSequences) -> Tensor:
        weight = next(self.parameters())
        device = weight.device
        gap, age = (x.to(weight.dtype) for x in elapsed_times(batch.starts))
        users = getattr(self, "users", None)  # JODIE's and RRN's per-user vectors
        if users is not None:
            rows = users.index(batch.users)
        else:
            rows = torch.zeros(batch.n_users, dtype=torch.int64)
        return self(
            batch.features.to(device, weight.dtype),
            batch.s_all.to(device, weight.dtype),
            batch.s_neg.to(device, weight.dtype),
            batch.s_pos.to(device, weight.dtype),
            gap.to(device),
            age.to(device),
            rows.to(device),
        )


class JODIE(_SessionModel):
    """JODIE-style (Kumar, Zhang and Leskovec, "Predicting Dynamic Embedding Trajectory in
    Temporal Interaction Networks", KDD 2019), adapted to a fixed item space.

    From JODIE: a dynamic user embedding updated by a recurrent network at each interaction
    from the embedding of the item interacted with, the interaction's features and the time
    since the user's previous interaction, ``u(t) = RNN(u(t-), [j, f, gap])``; the projection
    of the user embedding forward by the time elapsed since,
    ``u^(t + Delta) = (1 + w) o u(t)`` with ``w = W_p Delta`` (a linear layer of Delta);
    a static user embedding (JODIE's one-hot user vector times a linear layer, i.e. a learned
    vector per user); the embedding of the next item predicted by a linear layer from the
    projected user embedding, the static user embedding and the embedding of the item last
    interacted with.

    Adapted: the "item" of an interaction is the session, its embedding the session embedding
    ``s_{t-1}`` (all tracks, skipped, played: one user RNN for each, as the paper's "multiple
    RNNs"), the interaction features the session's own ``features``; Delta is ``gap_t``, the
    time from session ``t - 1`` to the start of session ``t``; the prediction also reads
    session ``t``'s features (its context, as the paper adapted JODIE to use context), and
    is the unit vector ``u_t`` of the fixed item space (loss: cosine, not JODIE's L2). JODIE's
    item-side RNN, its mutual update of the item embedding from the user's, its static item
    embeddings and its t-batching are left out: with the track vectors fixed there is no item
    embedding to update or learn, the next "item" is a session seen once, and without item
    updates users do not interact, so a batch of users' full sequences is exact. The
    recurrent cell is ``torch.nn.RNN`` (tanh; JODIE's update uses a sigmoid)."""

    name = "JODIE"

    def __init__(self, n_features: int, user_ids, dim: int = 40, hidden: int = 200, static: int = 40):
        super().__init__()
        n_in = dim + n_features + 1  # s_{t-1}, features of t - 1, gap_{t-1}
        self.rnns = nn.ModuleList(nn.RNN(n_in, hidden, batch_first=True) for _ in PATHWAYS)
        self.projection = nn.Linear(1, len(PATHWAYS) * hidden)  # w = W_p Delta
        nn.init.normal_(self.projection.weight, std=0.1)
        nn.init.zeros_(self.projection.bias)
        self.users = UserTable(user_ids, static)
        self.prediction = nn.Linear(len(PATHWAYS) * (hidden + dim) + static + n_features, dim)

    def dynamic_state(self, features, s_all, s_neg, s_pos, gap) -> Tensor:
        """``u(t-)`` before session ``t``: the pathways' RNN states after sessions ``< t``,
        concatenated ``(B, T, 3 * hidden)``."""
        interaction = torch.cat([features, gap[..., None]], -1)
        states = []
        for rnn, s in zip(self.rnns, (s_all, s_neg, s_pos)):
            # step t consumes session t - 1 (zeros at t = 0: no interaction yet)
            states.append(rnn(_previous(torch.cat([s, interaction], -1)))[0])
        return torch.cat(states, -1)

    def project(self, state: Tensor, gap: Tensor) -> Tensor:
        """JODIE's projection ``(1 + W_p Delta) o u``, Delta = ``gap (B, T)``."""
        return state * (1.0 + self.projection(gap[..., None]))

    def forward(self, features, s_all, s_neg, s_pos, gap, age, rows) -> Tensor:
        projected = self.project(self.dynamic_state(features, s_all, s_neg, s_pos, gap), gap)
        static = self.users(rows)[:, None].expand(-1, features.shape[1], -1)
        last = _previous(torch.cat([s_all, s_neg, s_pos], -1))
        return F.normalize(self.prediction(torch.cat([projected, static, last, features], -1)), dim=-1)


class RRN(_SessionModel):
    """RRN-style (Wu, Ahmed, Beutel, Smola and Jing, "Recurrent Recommender Networks", WSDM
    2017), adapted to a fixed item space.

    From RRN: a dynamic user state from an LSTM over the user's time steps, whose input is a
    linear embedding ``W_embed`` of what the user did in the previous step, a "newbie"
    indicator and the time; an affine map of the LSTM output as the dynamic user factor; a
    stationary, learned user factor added to it, as RRN's score is the dynamic inner product
    plus the stationary one, ``<u_it, m_jt> + <u_i, m_j>``.

    Adapted: a time step is a session; what the user did is the previous session's embedding
    (``s``, ``s-``, ``s+``: one LSTM each, as the paper's "multiple RNNs"), the time is the
    session's features (its context), ``gap_t`` and ``age_t``, the newbie indicator marks a
    user's first session. The item side is the fixed item space -- RRN's movie LSTM and
    stationary movie factors are left out -- so both inner products are taken with the
    session's target ``s+_t``: ``u_t = normalise(A o_t + b + u_i)`` (``u_i`` in the 40-d item
    space), i.e. RRN's rating output replaced by a 40-d one and trained on the cosine loss."""

    name = "RRN"

    def __init__(self, n_features: int, user_ids, dim: int = 40, fc: int = 200, hidden: int = 200):
        super().__init__()
        n_in = dim + n_features + 3  # s_{t-1}, features of t, gap_t, age_t, newbie
        self.inputs = nn.ModuleList(nn.Linear(n_in, fc) for _ in PATHWAYS)  # W_embed
        self.lstms = nn.ModuleList(nn.LSTM(fc, hidden, batch_first=True) for _ in PATHWAYS)
        self.dynamic = nn.Linear(len(PATHWAYS) * hidden, dim)
        self.users = UserTable(user_ids, dim)  # the stationary user factor

    def forward(self, features, s_all, s_neg, s_pos, gap, age, rows) -> Tensor:
        newbie = torch.zeros_like(gap)
        newbie[:, 0] = 1.0
        time_ = torch.cat([features, gap[..., None], age[..., None], newbie[..., None]], -1)
        outputs = []
        for embed, lstm, s in zip(self.inputs, self.lstms, (s_all, s_neg, s_pos)):
            outputs.append(lstm(embed(torch.cat([_previous(s), time_], -1)))[0])
        dynamic = self.dynamic(torch.cat(outputs, -1))
        return F.normalize(dynamic + self.users(rows)[:, None], dim=-1)


class LatentCross(_SessionModel):
    """Latent-Cross-style (Beutel, Covington, Jain, Xu, Li, Gatto and Chi, "Latent Cross:
    Making Use of Context in Recurrent Recommender Systems", WSDM 2018), adapted to a fixed
    item space.

    From Latent Cross: a GRU over the user's sequence whose input is the embedding of the
    previous event; context enters multiplicatively, as ``(1 + w_c) o h`` with ``w_c`` the
    context's embedding (a linear layer of the context features: the sum of one embedding per
    categorical value), both before the GRU (the input crossed with the previous event's
    context) and after it (the GRU output crossed with the context of the step predicted for);
    a ReLU layer after the cross; no user embedding.

    Adapted: the events are sessions, the previous event's embedding is a linear map of its
    ``s``, ``s-`` or ``s+`` (one GRU each, as the paper's "multiple RNNs"); a session's
    context is its features and ``gap_t``; the final softmax over items is replaced by a
    linear layer to the 40-d item space, trained on the cosine loss."""

    name = "Latent Cross"

    def __init__(self, n_features: int, user_ids=None, dim: int = 40, fc: int = 200, hidden: int = 200):
        super().__init__()
        n_context = n_features + 1
        self.items = nn.ModuleList(nn.Linear(dim, fc) for _ in PATHWAYS)
        self.pre_context = nn.ModuleList(nn.Linear(n_context, fc) for _ in PATHWAYS)
        self.grus = nn.ModuleList(nn.GRU(fc, hidden, batch_first=True) for _ in PATHWAYS)
        self.post_context = nn.Linear(n_context, len(PATHWAYS) * hidden)
        self.output = nn.Sequential(nn.Linear(len(PATHWAYS) * hidden, fc), nn.ReLU(), nn.Linear(fc, dim))

    def forward(self, features, s_all, s_neg, s_pos, gap, age, rows) -> Tensor:
        context = torch.cat([features, gap[..., None]], -1)  # of session t
        previous_context = _previous(context)  # of session t - 1 (zeros at t = 0)
        outputs = []
        for item, pre, gru, s in zip(self.items, self.pre_context, self.grus, (s_all, s_neg, s_pos)):
            crossed = (1.0 + pre(previous_context)) * item(_previous(s))
            outputs.append(gru(crossed)[0])
        crossed = (1.0 + self.post_context(context)) * torch.cat(outputs, -1)
        return F.normalize(self.output(crossed), dim=-1)


LEARNED_BASELINES = {"JODIE": JODIE, "RRN": RRN, "Latent Cross": LatentCross}


def build_learned_baseline(name: str, n_features: int, user_ids, **sizes) -> _SessionModel:
    """The model ``name`` (a key of ``LEARNED_BASELINES``) for sessions of ``n_features``
    features and the users ``user_ids``; ``sizes``: its layer sizes (``hidden``, ``fc`` where
    it has one)."""
    if name not in LEARNED_BASELINES:
        raise ValueError(f"unknown learned baseline {name!r}; one of {', '.join(LEARNED_BASELINES)}")
    return LEARNED_BASELINES[name](n_features, user_ids, **sizes)


def train_learned_baseline(
    name: str,
    seqs: UserSequences,
    *,
    epochs: int = 50,
    batch_size: int = 64,
    learning_rate: float = 5e-4,
    patience: int = 5,
    seed: int = 0,
    warmup: int = 0,
    max_updates: int = 0,
    device="cpu",
    progress: Optional[Callable[[int, float], None]] = None,
    log: Optional[Callable[[str], None]] = None,
    on_epoch: Optional[Callable[[dict], None]] = None,
    **sizes,
) -> nn.Module:
    """Train the learned baseline ``name`` as CoSeRNN is trained: Adam on the mean cosine loss
    of each batch of users' training sessions (users in a seeded random order), early stopping
    on the validation mean cosine (``patience`` epochs without gain; the training cosine stands
    in when there is no validation session). Returns the model of the best epoch, on
    ``device``, with ``model.history`` (per epoch: train and validation cosine, seconds).
    ``progress(users, cosine)`` after each step; ``log(line)`` and ``on_epoch(the epoch's history
    entry)`` after each epoch; ``sizes``: the
    model's layer sizes (``build_learned_baseline``). ``warmup``: the learning rate's linear
    warm-up in updates, ``max_updates``: the budget in Adam updates (0: none), as CoSeRNN's."""
    torch.manual_seed(seed)
    model = build_learned_baseline(name, seqs.n_features, seqs.users, **sizes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    has_valid = bool(((seqs.split == VALID) & seqs.has_pos).any())
    best, best_state, stale, history = -math.inf, copy.deepcopy(model.state_dict()), 0, []
    updates = 0
    for epoch in range(1, epochs + 1):
        if 0 < max_updates <= updates:
            break
        model.train()
        start = time.perf_counter()
        total, count = 0.0, 0
        for batch in seqs.batches(batch_size, generator):
            if 0 < max_updates <= updates:
                break
            loss, n = cosine_loss(model.embed(batch), batch, TRAIN)
            if n == 0:
                continue
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"{name}: non-finite training loss at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            (loss / n).backward()
            for group in optimizer.param_groups:
                group["lr"] = warmed_up(learning_rate, warmup, updates)
            optimizer.step()
            updates += 1
            total, count = total + value, count + n
            if progress is not None:
                progress(batch.n_users, 1.0 - value / n)
        train_cos = 1.0 - total / max(count, 1)
        valid_cos = mean_cosine(model, seqs, VALID) if has_valid else train_cos
        seconds = time.perf_counter() - start
        history.append(
            {
                "epoch": epoch,
                "updates": updates,
                "train_cosine": train_cos,
                "valid_cosine": valid_cos,
                "seconds": seconds,
            }
        )
        if on_epoch is not None:
            on_epoch(history[-1])
        if log is not None:
            log(
                f"{name} epoch {epoch}: train cosine {train_cos:.4f}, validation cosine {valid_cos:.4f} ({seconds:.1f} s)"
            )
        if valid_cos > best:
            best, best_state, stale = valid_cos, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= patience:
                if log is not None:
                    log(f"{name}: early stop, no validation gain for {stale} epochs; best {best:.4f}")
                break
    model.load_state_dict(best_state)
    model.history = history
    return model
