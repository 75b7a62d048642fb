"""GRU4Rec as its authors' published PyTorch implementation trains it, re-implemented in plain
PyTorch from the facts of that code (github.com/hidasib/GRU4Rec_PyTorch_Official; its licence
is research-only, so nothing here is copied from it): the yardstick that seqrec's GRU4Rec is
tested and benchmarked against. It uses nothing of seqrec or seqrec_ext: a mistake shared
with them cannot hide.

What it reproduces (docs/gru4rec-fidelity.md lists each fact):

* the model: ``constrained`` ("shared") embedding: the output table ``Wy`` is also the input
  embedding, fed to a ``torch.nn.GRUCell``; ``separate``: an input table ``E`` of its own and a
  GRUCell; ``none``: GRU4Rec's own cell whose input projection is a row of a ``(N, 3H)`` table
  (blocks ordered candidate, reset, update), ``r, z = sigmoid(x_r + h Wrz)``,
  ``n = tanh(x_n + (r * h) Wh)``, ``h' = (1 - z) h + z n``, one bias. Item tables and the
  output bias are sparse embeddings. Stacked layers (``layers``, bottom first; the published
  code takes a list of sizes) are GRUCells, each fed the (dropped-out) output of the one below,
  each with a state of its own;
* its initialisation: every gate block uniform on +-sqrt(6 / (fan_in + fan_out)) of the block,
  biases zero;
* dropout: on the input embedding (in mode none: on the GRU layer's output, the layer being the
  embedding) and on the GRUCell's output; the masked state is scored and carried to the next
  step;
* session-parallel mini-batches in the given session order: a finished session's row takes the
  next session with a zero state, rows are dropped (the batch shrinks) when none is left; with
  no sampled negatives training stops when fewer than two rows are left;
* the losses: cross-entropy over the targets and the sampled negatives (logQ correction
  ``logq * log(count)`` on target columns and ``logq * alpha * log(count)`` on sampled ones),
  BPR-max with ELU and score regularisation, TOP1-max; every step's summed loss divided by the
  configured batch size, also when fewer rows are left;
* its optimizer: Adagrad with momentum (``acc += g^2``, ``mom = mu * mom - lr g / sqrt(acc + 1e-6)``,
  ``p += mom``; ``p -= lr g / sqrt(acc + 1e-6)`` without momentum), sparse gradients coalesced
  (duplicate rows summed) before the update, so the shared table gets one update from both of
  its uses.

Negatives and dropout masks come from callables the caller passes, so a test can give this
trainer and seqrec the same ones.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ADAGRAD_EPS = 1e-6
LOG_EPS = 1e-24


def block_uniform_(t: Tensor, fan: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Uniform on [-s, s], s = sqrt(6 / fan), fan = the gate block's fan-in + fan-out."""
    s = math.sqrt(6.0 / fan)
    with torch.no_grad():
        return t.copy_((torch.rand(t.shape, generator=generator, dtype=torch.float64) * 2 - 1) * s)


class PublishedGRU4Rec(nn.Module):
    def __init__(
        self,
        n_items: int,
        layers: Sequence[int] = (100,),
        embedding: str = "constrained",
        embedding_size: int = 0,
        dtype: torch.dtype = torch.float32,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        if embedding not in ("constrained", "separate", "none"):
            raise ValueError(f"unknown embedding {embedding!r}")
        self.embedding, self.layers, self.n_items = embedding, list(layers), n_items
        H0 = self.layers[0]
        H = self.hidden = self.layers[-1]
        self.Wy = nn.Embedding(n_items, H, sparse=True, dtype=dtype)
        self.By = nn.Embedding(n_items, 1, sparse=True, dtype=dtype)
        block_uniform_(self.Wy.weight, n_items + H, generator)
        nn.init.zeros_(self.By.weight)
        cells = []
        if embedding == "none":  # the first layer is the embedding
            self.Wx0 = nn.Embedding(n_items, 3 * H0, sparse=True, dtype=dtype)  # blocks: candidate, reset, update
            self.Wrz0 = nn.Parameter(torch.empty(H0, 2 * H0, dtype=dtype))
            self.Wh0 = nn.Parameter(torch.empty(H0, H0, dtype=dtype))
            self.Bh0 = nn.Parameter(torch.zeros(3 * H0, dtype=dtype))
            block_uniform_(self.Wx0.weight, n_items + H0, generator)
            block_uniform_(self.Wrz0, 2 * H0, generator)
            block_uniform_(self.Wh0, 2 * H0, generator)
            widths = self.layers[:-1]
        else:
            width = H if embedding == "constrained" else embedding_size
            if embedding == "separate":
                if embedding_size < 1:
                    raise ValueError("embedding 'separate' needs embedding_size >= 1")
                self.E = nn.Embedding(n_items, width, sparse=True, dtype=dtype)
                block_uniform_(self.E.weight, n_items + width, generator)
            widths = [width] + self.layers[:-1]
        for fan_in, size in zip(widths, self.layers[len(self.layers) - len(widths) :]):
            cell = nn.GRUCell(fan_in, size, dtype=dtype)
            block_uniform_(cell.weight_ih, fan_in + size, generator)
            block_uniform_(cell.weight_hh, 2 * size, generator)
            nn.init.zeros_(cell.bias_ih)
            nn.init.zeros_(cell.bias_hh)
            cells.append(cell)
        self.G = nn.ModuleList(cells)

    def own_cell(self, X: Tensor, h: Tensor) -> Tensor:
        """Mode none: GRU4Rec's own GRU layer, its input projection a row lookup."""
        vx = self.Wx0(X) + self.Bh0
        x_n, x_r, x_z = vx.chunk(3, 1)
        h_r, h_z = (h @ self.Wrz0).chunk(2, 1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh((r * h) @ self.Wh0 + x_n)
        return (1 - z) * h + z * n

    def step(
        self, X: Tensor, h: List[Tensor], dropout: Callable[[Tensor, float], Tensor], p_embed: float, p_hidden: float
    ) -> List[Tensor]:
        """The new (masked) states of every layer from the current items and the previous states;
        the last one is the output."""
        if self.embedding == "none":
            x = dropout(self.own_cell(X, h[0]), p_embed)
            out = [x]
        else:
            x = dropout(self.Wy(X) if self.embedding == "constrained" else self.E(X), p_embed)
            out = []
        for cell, state in zip(self.G, h[len(out) :]):
            x = dropout(cell(x, state), p_hidden)
            out.append(x)
        return out

    def zero_state(self, rows: int) -> List[Tensor]:
        return [torch.zeros(rows, size, dtype=self.Wy.weight.dtype) for size in self.layers]

    def scores(self, h: Tensor, Y: Optional[Tensor] = None) -> Tensor:
        """Scores of the items Y (default: the whole catalogue)."""
        if Y is None:
            return h @ self.Wy.weight.t() + self.By.weight.t()
        return h @ self.Wy(Y).t() + self.By(Y).t()

    @torch.no_grad()
    def evaluate(self, items: Tensor, offsets: Tensor, cutoff: int = 20, batch_size: int = 512) -> dict:
        """Recall@cutoff and MRR@cutoff of next-item prediction over every event of the given
        sessions, the whole catalogue ranked, the state zero at each session's start; ties
        counted pessimistically ("conservative": rank = 1 + the other items scoring >= the
        target) and optimistically ("standard": 1 + those scoring >)."""
        hits = {"conservative": 0.0, "standard": 0.0}
        rr = {"conservative": 0.0, "standard": 0.0}
        n, h = 0, None
        for X, Y, reset, keep in session_parallel(items, offsets, batch_size):
            h = self.zero_state(len(X)) if h is None else [s[keep] for s in h]
            h = self.step(X, [s.masked_fill(reset[:, None], 0) for s in h], lambda x, p: x, 0.0, 0.0)
            R = self.scores(h[-1])
            target = R.gather(1, Y[:, None])
            for mode, rank in (("conservative", (R >= target).sum(1)), ("standard", (R > target).sum(1) + 1)):
                inside = rank <= cutoff
                hits[mode] += float(inside.sum())
                rr[mode] += float((inside / rank).sum())
            n += len(X)
        return {
            mode: {f"Recall@{cutoff}": hits[mode] / max(n, 1), f"MRR@{cutoff}": rr[mode] / max(n, 1)} for mode in hits
        } | {"events": n}


def session_parallel(
    items: Tensor, offsets: Tensor, batch_size: int, stop_below: int = 1
) -> Iterator[Tuple[Tensor, Tensor, Tensor, Tensor]]:
    """(current items, next items, rows that start a session, rows kept from the previous
    step) per step. Sessions are run in the given order; the rows of sessions that end are
    refilled with the next sessions in row order, and dropped when no session is left (the
    kept rows keep their order). Stops when fewer than ``stop_below`` rows are left."""
    offsets = offsets.tolist()
    n_sessions = len(offsets) - 1
    rows = min(batch_size, n_sessions)
    session = list(range(rows))  # the session each row runs
    pos = [offsets[s] for s in session]  # its current event
    next_session = rows
    starts = [True] * rows
    keep = list(range(rows))
    while rows >= stop_below and rows > 0:
        X = items[torch.tensor(pos)]
        Y = items[torch.tensor(pos) + 1]
        yield X, Y, torch.tensor(starts), torch.tensor(keep, dtype=torch.long)
        new_session, new_pos, starts, keep = [], [], [], []
        for row, (s, p) in enumerate(zip(session, pos)):
            if p + 2 < offsets[s + 1]:  # the session has another target
                new_session.append(s)
                new_pos.append(p + 1)
                starts.append(False)
                keep.append(row)
            elif next_session < n_sessions:
                new_session.append(next_session)
                new_pos.append(offsets[next_session])
                starts.append(True)
                keep.append(row)
                next_session += 1
        session, pos, rows = new_session, new_pos, len(new_session)


def step_loss(
    R: Tensor, loss: str, *, bpreg: float = 0.0, elu_param: float = 0.0, logq_columns: Optional[Tensor] = None
) -> Tensor:
    """The summed loss of the (B, M) scores whose column i is row i's target."""
    B, M = R.shape
    eye = torch.eye(B, M, dtype=torch.bool)
    if loss == "cross-entropy":
        X = R if logq_columns is None else R - logq_columns
        P = torch.softmax(X, dim=1)
        return -torch.log(P[eye] + LOG_EPS).sum()
    if loss not in ("bpr-max", "top1-max"):
        raise ValueError(f"unknown loss {loss!r}")
    if elu_param > 0:
        R = F.elu(R, elu_param)
    s = torch.softmax(R.masked_fill(eye, float("-inf")), dim=1)  # over the negatives only
    target = R[eye][:, None]
    if loss == "bpr-max":
        return (-torch.log((s * torch.sigmoid(target - R)).sum(1) + LOG_EPS) + bpreg * (s * R * R).sum(1)).sum()
    return (s * (torch.sigmoid(R - target) + torch.sigmoid(R * R))).sum()


class AdagradMomentum:
    """The published optimizer's rule, dense and sparse (duplicates summed first)."""

    def __init__(self, params: Sequence[nn.Parameter], lr: float, momentum: float):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.acc = [torch.zeros_like(p) for p in self.params]
        self.mom = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        for p, acc, mom in zip(self.params, self.acc, self.mom):
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                g = p.grad.coalesce()
                idx, val = g.indices()[0], g.values()
                a = acc[idx] + val * val
                acc[idx] = a
                update = -self.lr * val / torch.sqrt(a + ADAGRAD_EPS)
                if self.momentum > 0:
                    update = self.momentum * mom[idx] + update
                    mom[idx] = update
                p.index_add_(0, idx, update)
            else:
                acc.add_(p.grad * p.grad)
                update = -self.lr * p.grad / torch.sqrt(acc + ADAGRAD_EPS)
                if self.momentum > 0:
                    mom.mul_(self.momentum).add_(update)
                    update = mom
                p.add_(update)


def bernoulli_dropout(x: Tensor, p: float) -> Tensor:
    return F.dropout(x, p, training=True) if p > 0 else x


def train_steps(
    model: PublishedGRU4Rec,
    opt: AdagradMomentum,
    items: Tensor,
    offsets: Tensor,
    *,
    batch_size: int,
    loss: str,
    negatives: Optional[Callable[[], Tensor]] = None,
    bpreg: float = 0.0,
    elu_param: float = 0.0,
    logq: float = 0.0,
    sample_alpha: float = 0.5,
    log_counts: Optional[Tensor] = None,
    dropout_embed: float = 0.0,
    dropout_hidden: float = 0.0,
    dropout: Callable[[Tensor, float], Tensor] = bernoulli_dropout,
) -> Iterator[Tuple[int, float]]:
    """One epoch, a step at a time: yields each step's (events, loss) after its update.
    ``negatives()`` gives each step's shared samples (None: no sampled negatives); ``log_counts``
    (the training counts' logarithms) for logQ."""
    h = model.zero_state(batch_size)
    no_samples = torch.zeros(0, dtype=torch.long)
    for n_steps, (X, Y, reset, keep) in enumerate(session_parallel(items, offsets, batch_size, 1 if negatives else 2)):
        h = [s[keep] if len(keep) != len(s) else s for s in h]
        h = [s.masked_fill(reset[:, None], 0).detach() for s in h]
        S = negatives() if negatives else no_samples
        cols = torch.cat([Y, S])
        model.zero_grad(set_to_none=True)
        h = model.step(X, h, dropout, dropout_embed, dropout_hidden)
        R = model.scores(h[-1], cols)
        logq_columns = None
        if loss == "cross-entropy" and logq > 0:
            logq_columns = logq * torch.cat([log_counts[Y], sample_alpha * log_counts[S]])
        L = step_loss(R, loss, bpreg=bpreg, elu_param=elu_param, logq_columns=logq_columns) / batch_size
        L.backward()
        opt.step()
        value = float(L.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite loss {value} at step {n_steps}")
        yield len(X), value


class CumulativeSampler:
    """Negatives as the published code draws them: uniform numbers looked up in the cumulative
    distribution of count^alpha, drawn for many steps at once."""

    def __init__(
        self,
        counts: Tensor,
        alpha: float,
        n_sample: int,
        steps_per_draw: int = 256,
        generator: Optional[torch.Generator] = None,
    ):
        w = counts.double() ** alpha
        self.cdf = (w.cumsum(0) / w.sum()).float()
        self.cdf[-1] = 1.0
        self.n_sample, self.steps, self.generator = n_sample, steps_per_draw, generator
        self.cache, self.next = None, steps_per_draw

    def __call__(self) -> Tensor:
        if self.next == self.steps:
            u = torch.rand(self.steps * self.n_sample, generator=self.generator)
            self.cache = torch.searchsorted(self.cdf, u, right=True).clamp_(max=len(self.cdf) - 1)
            self.cache, self.next = self.cache.view(self.steps, self.n_sample), 0
        self.next += 1
        return self.cache[self.next - 1]
