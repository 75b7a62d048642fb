"""seqrec's GRU4Rec against an independent plain-PyTorch re-implementation of the published
GRU4Rec trainer (bench/published_gru4rec.py: nn.GRUCell, sparse nn.Embedding tables, autograd,
the published optimizer rule): from the same initial parameters, with the same negatives and
the same dropout masks, one epoch through the end of the data (the batch shrinks in the last
steps) gives the same losses and the same parameters, in every embedding mode and loss, with
one GRU layer (the fused training step) and with stacked ones (op by op)."""

import os
import sys

import numpy as np
import pytest
import torch

from seqrec.gru4rec import GRU4Rec, GRU4RecConfig
from seqrec.gru4rec.data import Sessions

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import published_gru4rec as published  # noqa: E402

N_ITEMS, H, E, B, S = 40, 8, 6, 6, 7


def random_sessions(n_sessions, seed):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, 9, (n_sessions,), generator=g)
    # a popularity skew, so that logQ has something to correct
    weights = 1.0 / torch.arange(1, N_ITEMS + 1, dtype=torch.float64)
    items = torch.multinomial(weights, int(lengths.sum()), replacement=True, generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    return Sessions(
        items=items,
        offsets=offsets,
        times=torch.arange(len(items), dtype=torch.float64),
        session_ids=np.arange(n_sessions),
        item_ids=np.arange(N_ITEMS),
    )


class FixedNegatives:
    """The same negatives for both trainers: seqrec asks for many steps' worth at once, the
    reference for one step's at a time, both in order from one table."""

    def __init__(self, n_steps, seed):
        self.table = torch.randint(0, N_ITEMS, (n_steps + 600, S), generator=torch.Generator().manual_seed(seed))
        self.flat, self.used, self.step = self.table.flatten(), 0, 0

    def sample(self, n, generator=None):  # seqrec's sampler interface
        out = self.flat[self.used : self.used + n]
        self.used += n
        return out

    def __call__(self):  # the reference's
        self.step += 1
        return self.table[self.step - 1]


def mask_dropout(generator):
    """Inverted dropout drawn as seqrec draws its masks: one uniform draw per element from
    ``generator``, kept where >= p, scaled 1 / (1 - p); nothing drawn for p = 0."""

    def dropout(x, p):
        if p <= 0:
            return x
        keep = torch.rand(x.shape, dtype=x.dtype, generator=generator) >= p
        return x * (keep.to(x.dtype) / (1 - p))

    return dropout


def reference_from(model: GRU4Rec) -> published.PublishedGRU4Rec:
    """The published model holding seqrec's parameters, in its own layout."""
    p, c = model.params, model.config
    ref = published.PublishedGRU4Rec(N_ITEMS, c.sizes, c.embedding, c.embedding_size, dtype=torch.float64)
    cells = list(ref.G)
    with torch.no_grad():
        ref.Wy.weight.copy_(p.out_table)
        ref.By.weight.copy_(p.out_bias[:, None])
        if c.embedding == "none":  # blocks (candidate, reset, update) where seqrec has (r, z, n)
            H0 = c.sizes[0]
            perm = torch.cat([torch.arange(2 * H0, 3 * H0), torch.arange(0, 2 * H0)])
            ref.Wx0.weight.copy_(p.item_in[:, perm])
            ref.Bh0.copy_(p.b_h[perm])
            ref.Wrz0.copy_(p.w_hh[: 2 * H0].t())
            ref.Wh0.copy_(p.w_hh[2 * H0 :].t())
        else:
            if c.embedding == "separate":
                ref.E.weight.copy_(p.item_in)
            first = cells.pop(0)
            first.weight_ih.copy_(p.w_in.t())
            first.weight_hh.copy_(p.w_hh)
            first.bias_ih.copy_(p.b_h)
            first.bias_hh.copy_(p.b_hh)
        for cell, layer in zip(cells, model.upper, strict=True):
            cell.weight_ih.copy_(layer["w_in"].t())
            cell.weight_hh.copy_(layer["w_hh"])
            cell.bias_ih.copy_(layer["b_h"])
            cell.bias_hh.copy_(layer["b_hh"])
    return ref


def assert_same_parameters(model: GRU4Rec, ref: published.PublishedGRU4Rec, tol):
    expected = reference_from(model)
    for (name, a), (_, b) in zip(ref.named_parameters(), expected.named_parameters()):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m: f"{name}: {m}")


CASES = [
    ("constrained", "bpr-max", 0.0, 0.0, ()),
    ("constrained", "bpr-max-in-batch", 0.0, 0.0, ()),  # no sampled negatives
    ("constrained", "bpr-max", 0.3, 0.2, ()),
    ("constrained", "cross-entropy", 0.0, 0.0, ()),
    ("constrained", "cross-entropy", 0.25, 0.0, ()),
    ("constrained", "top1-max", 0.0, 0.1, ()),
    ("separate", "bpr-max", 0.2, 0.1, ()),
    ("separate", "cross-entropy", 0.0, 0.0, ()),
    ("none", "bpr-max", 0.0, 0.0, ()),
    ("none", "cross-entropy", 0.3, 0.0, ()),
    ("none", "top1-max", 0.0, 0.0, ()),
    # stacked layers (the top one has H units)
    ("constrained", "bpr-max", 0.2, 0.1, (5,)),
    ("separate", "cross-entropy", 0.0, 0.15, (7, 4)),
    ("none", "top1-max", 0.25, 0.1, (5,)),
]


@pytest.mark.parametrize("embedding,loss,p_embed,p_hidden,layers", CASES)
def test_one_epoch_equals_the_published_trainer(embedding, loss, p_embed, p_hidden, layers):
    n_sample = 0 if loss.endswith("-in-batch") else S
    loss = loss.removesuffix("-in-batch")
    train = random_sessions(300, seed=1)
    n_steps_bound = int(train.n_events)
    cfg = GRU4RecConfig(
        hidden=H,
        loss=loss,
        bpreg=0.6 if loss == "bpr-max" else 0.0,
        # cross-entropy with the default elu_param: the published trainer ignores it there
        elu_param=0.5 if loss in ("bpr-max", "cross-entropy") else 0.0,
        logq=1.0 if loss == "cross-entropy" else 0.0,
        n_sample=n_sample,
        sample_alpha=0.5,
        batch_size=B,
        dropout_embed=p_embed,
        dropout_hidden=p_hidden,
        learning_rate=0.08,
        momentum=0.3,
        embedding=embedding,
        embedding_size=E,
        seed=4,
        layers=layers,
    )
    model = GRU4Rec(N_ITEMS, cfg, dtype=torch.float64)
    ref = reference_from(model)
    opt = published.AdagradMomentum(list(ref.parameters()), lr=cfg.learning_rate, momentum=cfg.momentum)

    negatives = FixedNegatives(n_steps_bound, seed=2)
    ours = [(events, loss_value) for events, loss_value in model.train_steps(train, sampler=negatives)]
    log_counts = train.item_counts().clamp(min=1).log().double()
    theirs = list(
        published.train_steps(
            ref,
            opt,
            train.items,
            train.offsets,
            batch_size=B,
            loss=loss,
            negatives=FixedNegatives(n_steps_bound, seed=2) if n_sample else None,
            bpreg=cfg.bpreg,
            elu_param=cfg.elu_param,
            logq=cfg.logq,
            sample_alpha=cfg.sample_alpha,
            log_counts=log_counts,
            dropout_embed=p_embed,
            dropout_hidden=p_hidden,
            dropout=mask_dropout(torch.Generator().manual_seed(cfg.seed)),
        )
    )
    assert len(ours) == len(theirs) > 200  # steps
    assert [n for n, _ in ours] == [n for n, _ in theirs]
    smallest = min(n for n, _ in ours)
    assert smallest < B  # the epoch ran into its shrinking tail
    assert n_sample or smallest >= 2  # without samples a lone row ends the epoch
    np.testing.assert_allclose([v for _, v in ours], [v for _, v in theirs], rtol=1e-9, atol=1e-12)
    assert_same_parameters(model, ref, tol=1e-9)


def test_initialisation_scales_are_the_published_ones():
    """Every gate block uniform on +-sqrt(6 / (fan_in + fan_out)) of the block, as the published
    code initialises them (and so the reference): seqrec's parameters span the same ranges."""
    n_items, hidden, width = 3000, 64, 48
    for embedding in ("constrained", "separate", "none"):
        model = GRU4Rec(n_items, GRU4RecConfig(hidden=hidden, embedding=embedding, embedding_size=width))
        ref = published.PublishedGRU4Rec(n_items, (hidden,), embedding, width)
        p = model.params
        fan_in = {"constrained": hidden, "separate": width, "none": n_items}[embedding]
        bounds = {
            "out_table": (p.out_table, ref.Wy.weight, n_items + hidden),
            "w_hh": (p.w_hh, ref.G[0].weight_hh if embedding != "none" else ref.Wh0, 2 * hidden),
        }
        if embedding == "none":
            bounds["item_in"] = (p.item_in, ref.Wx0.weight, n_items + hidden)
        else:
            bounds["w_in"] = (p.w_in, ref.G[0].weight_ih, fan_in + hidden)
        if embedding == "separate":
            bounds["item_in"] = (p.item_in, ref.E.weight, n_items + width)
        for name, (ours, theirs, fan) in bounds.items():
            bound = (6.0 / fan) ** 0.5
            for t in (ours, theirs):
                m = float(t.detach().abs().max())
                assert 0.97 * bound < m <= bound, (embedding, name, m, bound)
        assert not p.b_h.any() and not p.out_bias.any()
        assert (p.b_hh is None) == (embedding == "none")


@pytest.mark.parametrize("embedding,layers", [("constrained", ()), ("separate", (5,)), ("none", ())])
def test_evaluation_equals_the_published_evaluation(embedding, layers):
    """seqrec ranks every prefix's state at once (sessions side by side by length, fused ranking)
    where the published evaluation steps session-parallel batches: the same ranks, both tie
    modes it counts."""
    train, test = random_sessions(300, seed=1), random_sessions(150, seed=3)
    cfg = GRU4RecConfig(
        hidden=H, n_sample=S, batch_size=B, embedding=embedding, embedding_size=E, seed=4, layers=layers
    )
    model = GRU4Rec(N_ITEMS, cfg, dtype=torch.float64)
    for _ in model.train_steps(train, sampler=FixedNegatives(int(train.n_events), seed=2)):
        pass
    ours = model.evaluate(test, batch_size=64, ks=(20,)).result()
    theirs = reference_from(model).evaluate(test.items, test.offsets, cutoff=20, batch_size=50)
    assert theirs["events"] == int(test.n_events) - len(test.offsets) + 1
    for mode in ("standard", "conservative"):
        for metric in ("Recall@20", "MRR@20"):
            # a rank that differs moves MRR@20 by >= (1/19 - 1/20) / events, ~5e-6 here; sums in
            # float32 differ by ~1e-8
            assert ours[mode][metric] == pytest.approx(theirs[mode][metric], abs=1e-7), (mode, metric)
