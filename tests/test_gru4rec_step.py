"""gru4rec_step against the same step written with the reference ops and dense autograd on the
whole tables: loss, new state, and every gradient (row gradients densified)."""

import pytest
import torch
from gru4rec_params import random_params

from seqrec_ext import GRU4RecParams, gru4rec_step, reference

N_ITEMS, H, E = 40, 6, 5


def make_params(embedding, seed=0, dtype=torch.float64, b_hh=False):
    return random_params(embedding, N_ITEMS, H, E, b_hh=b_hh, dtype=dtype, seed=seed)


def reference_step(
    p,
    item_ids,
    target_ids,
    negative_ids,
    h,
    *,
    loss,
    bpreg,
    elu_param,
    logq_correction,
    reset_after,
    dropout_embed=0.0,
    dropout_hidden=0.0,
    normalizer=None,
    generator=None,
):
    """Autograd through the reference ops. Dropout masks are drawn as gru4rec_step documents:
    uniform draws from ``generator``, the embedding's first, kept where >= p, scaled 1 / (1 - p).
    Returns the masked new state: the one the loss scores and the next step starts from."""
    tables = {
        name: getattr(p, name).detach().clone().requires_grad_()
        for name in ("w_hh", "b_h", "out_table", "out_bias", "item_in", "w_in", "b_hh")
        if getattr(p, name) is not None
    }
    table_in = tables["out_table"] if p.embedding == "constrained" else tables["item_in"]
    x = table_in[item_ids]
    if dropout_embed > 0:
        x = x * ((torch.rand(x.shape, dtype=x.dtype, generator=generator) >= dropout_embed) / (1 - dropout_embed))
    gi = x if p.embedding == "none" else x @ tables["w_in"]
    h_new = reference.gru_step(gi, h, tables["w_hh"], tables["b_h"], tables.get("b_hh"), reset_after=reset_after)
    h_out = h_new
    if dropout_hidden > 0:
        h_out = h_new * (
            (torch.rand(h_new.shape, dtype=h_new.dtype, generator=generator) >= dropout_hidden) / (1 - dropout_hidden)
        )
    out_ids = torch.cat([target_ids, negative_ids])
    value = reference.sampled_ranking_loss(
        h_out,
        tables["out_table"][out_ids],
        tables["out_bias"][out_ids],
        loss=loss,
        bpreg=bpreg,
        elu_param=elu_param,
        logq_correction=logq_correction,
        normalizer=normalizer,
    )
    value.backward()
    return value.detach(), h_out.detach(), {k: v.grad for k, v in tables.items()}


@pytest.mark.parametrize("embedding", ["none", "separate", "constrained"])
@pytest.mark.parametrize("loss", ["bpr-max", "cross-entropy", "top1-max"])
@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("b_hh", [False, True])
def test_step_equals_dense_autograd_reference(embedding, loss, reset_after, b_hh):
    p = make_params(embedding, b_hh=b_hh)
    g = torch.Generator().manual_seed(1)
    B, S = 5, 9
    item_ids = torch.tensor([3, 3, 7, 0, 39])  # repeated input item
    target_ids = torch.tensor([4, 8, 3, 4, 1])  # repeated target, and an input item as target
    negative_ids = torch.randint(0, N_ITEMS, (S,), generator=g)
    h = torch.randn(B, H, generator=g, dtype=torch.float64)
    kw = dict(
        loss=loss,
        bpreg=0.5 if loss == "bpr-max" else 0.0,
        elu_param=0.5 if loss == "bpr-max" else 0.0,
        logq_correction=torch.rand(B + S, generator=g, dtype=torch.float64) if loss == "cross-entropy" else None,
        reset_after=reset_after,
        normalizer=8.0 if b_hh else None,
    )
    res = gru4rec_step(p, item_ids, target_ids, negative_ids, h, **kw)
    ref_loss, ref_h, ref_grads = reference_step(p, item_ids, target_ids, negative_ids, h, **kw)
    torch.testing.assert_close(res.loss, ref_loss)
    torch.testing.assert_close(res.h_new, ref_h)
    expected_tables = {"out_table", "out_bias"} | ({"item_in"} if embedding != "constrained" else set())
    assert set(res.row_grads) == expected_tables
    for name, rows in res.row_grads.items():
        torch.testing.assert_close(rows.to_dense(N_ITEMS), ref_grads[name])
    for name, grad in res.dense_grads.items():
        torch.testing.assert_close(grad, ref_grads[name])
    # the row gradients touch only the rows of this step
    touched = set(torch.cat([item_ids, target_ids, negative_ids]).tolist())
    for rows in res.row_grads.values():
        assert set(rows.indices.tolist()) <= touched


@pytest.mark.parametrize("embedding", ["none", "separate", "constrained"])
def test_step_with_dropout_equals_autograd_reference(embedding):
    """The hand-written backward routes the gradients through both dropout masks."""
    p = make_params(embedding)
    g = torch.Generator().manual_seed(3)
    item_ids, target_ids = torch.tensor([3, 3, 7, 0]), torch.tensor([4, 8, 3, 4])
    negative_ids = torch.randint(0, N_ITEMS, (7,), generator=g)
    h = torch.randn(4, H, generator=g, dtype=torch.float64)
    kw = dict(
        loss="bpr-max",
        bpreg=0.5,
        elu_param=0.5,
        logq_correction=None,
        reset_after=False,
        dropout_embed=0.3,
        dropout_hidden=0.4,
    )
    res = gru4rec_step(p, item_ids, target_ids, negative_ids, h, generator=torch.Generator().manual_seed(5), **kw)
    ref_loss, ref_h, ref_grads = reference_step(
        p, item_ids, target_ids, negative_ids, h, generator=torch.Generator().manual_seed(5), **kw
    )
    torch.testing.assert_close(res.loss, ref_loss)
    torch.testing.assert_close(res.h_new, ref_h)  # the carried state is the masked one
    for name, rows in res.row_grads.items():
        torch.testing.assert_close(rows.to_dense(N_ITEMS), ref_grads[name])
    for name, grad in res.dense_grads.items():
        torch.testing.assert_close(grad, ref_grads[name])


def test_dropout_is_seeded_and_scales():
    p = make_params("constrained")
    ids, targets, negs = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]), torch.tensor([7, 8])
    h = torch.zeros(3, H, dtype=torch.float64)

    def run(seed):
        generator = torch.Generator().manual_seed(seed)
        return gru4rec_step(p, ids, targets, negs, h, dropout_embed=0.5, dropout_hidden=0.3, generator=generator)

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.loss, b.loss) and torch.equal(a.row_grads["out_table"].values, b.row_grads["out_table"].values)
    assert not torch.equal(a.loss, c.loss)
    # the carried state is the dropout-masked one: zeros where dropped, the rest scaled
    masked = gru4rec_step(
        p, ids, targets, negs, h, dropout_embed=0.0, dropout_hidden=0.3, generator=torch.Generator().manual_seed(0)
    )
    nodrop = gru4rec_step(p, ids, targets, negs, h)
    kept = masked.h_new != 0
    assert (~kept).any() and kept.any()
    torch.testing.assert_close(masked.h_new[kept], nodrop.h_new[kept] / 0.7)


def test_params_validation():
    p = make_params("none")
    with pytest.raises(ValueError, match="embedding must be one of"):
        GRU4RecParams(w_hh=p.w_hh, b_h=p.b_h, out_table=p.out_table, out_bias=p.out_bias, embedding="tied")
    with pytest.raises(ValueError, match="'constrained' needs w_in"):
        GRU4RecParams(w_hh=p.w_hh, b_h=p.b_h, out_table=p.out_table, out_bias=p.out_bias, embedding="constrained")
    with pytest.raises(ValueError, match="'none' needs item_in"):
        GRU4RecParams(
            w_hh=p.w_hh,
            b_h=p.b_h,
            out_table=p.out_table,
            out_bias=p.out_bias,
            item_in=torch.zeros(N_ITEMS, H, dtype=torch.float64),
        )
    with pytest.raises(ValueError, match="same batch size"):
        gru4rec_step(
            p, torch.tensor([1, 2]), torch.tensor([1]), torch.tensor([3]), torch.zeros(2, H, dtype=torch.float64)
        )
    with pytest.raises(ValueError, match="dropout probabilities"):
        gru4rec_step(
            p,
            torch.tensor([1]),
            torch.tensor([1]),
            torch.tensor([3]),
            torch.zeros(1, H, dtype=torch.float64),
            dropout_hidden=1.0,
        )


# ---- the op torch.ops.seqrec.gru4rec_step itself ----


def op_args(
    B, S, H_, *, loss, device, dtype=torch.float32, seed=0, mask=False, reset_after=False, b_hh=False, normalizer=None
):
    g = torch.Generator().manual_seed(seed)

    def rnd(*s, scale=0.5):
        return (torch.randn(*s, generator=g, dtype=torch.float64) * scale).to(device, dtype)

    M = B + S
    logq = rnd(M).abs() if loss == "cross-entropy" else None
    hidden_mask = ((torch.rand(B, H_, generator=g) >= 0.3).to(dtype) / 0.7).to(device) if mask else None
    return (
        rnd(B, 3 * H_),
        rnd(B, H_),
        rnd(3 * H_, H_),
        rnd(3 * H_),
        rnd(3 * H_) if b_hh else None,
        rnd(M, H_),
        rnd(M),
        logq,
        hidden_mask,
        loss,
        0.5 if loss == "bpr-max" else 0.0,
        0.5 if loss in ("bpr-max", "top1-max") else 0.0,
        reset_after,
        normalizer,
    )


def composed(gi, h, w_hh, b_h, b_hh, rows, bias, logq, mask, loss, bpreg, elu_param, reset_after, normalizer):
    """The same step from the separate ops and their backward ops."""
    ops = torch.ops.seqrec
    h_new, ws = ops.gru_step(gi, h, w_hh, b_h, b_hh, reset_after)
    h_out = h_new if mask is None else h_new * mask
    value, stats = ops.sampled_ranking_loss(h_out, rows, bias, logq, None, loss, bpreg, elu_param, "mean", normalizer)
    d_h, d_rows, d_bias = ops.sampled_ranking_loss_backward(
        torch.ones_like(value), h_out, rows, bias, logq, None, stats, loss, bpreg, elu_param, "mean", normalizer
    )
    d_h = d_h if mask is None else d_h * mask
    d_gi, _, d_w, d_b, d_b_hh = ops.gru_step_backward(d_h, w_hh, ws, reset_after)
    return value, h_out, d_gi, d_w, d_b, d_b_hh, d_rows, d_bias


@pytest.mark.parametrize("loss", ["bpr-max", "top1-max", "cross-entropy", "bpr", "top1"])
@pytest.mark.parametrize("reset_after", [False, True])
def test_op_equals_the_separate_ops(loss, reset_after, device):
    """At GRU4Rec's scale (B = 32, S = 2048, H = 100, float32), with and without a hidden mask."""
    for mask in (False, True):
        args = op_args(
            32,
            2048,
            100,
            loss=loss,
            device=device,
            mask=mask,
            reset_after=reset_after,
            b_hh=mask,
            normalizer=40.0 if mask else None,
        )
        for ours, ref in zip(torch.ops.seqrec.gru4rec_step(*args), composed(*args)):
            torch.testing.assert_close(ours, ref, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("loss", ["bpr-max", "cross-entropy"])
def test_op_opcheck(loss, device):
    for dtype in (torch.float32, torch.float64):
        args = op_args(4, 6, 3, loss=loss, device=device, dtype=dtype, mask=True, b_hh=True, normalizer=6.0)
        torch.library.opcheck(torch.ops.seqrec.gru4rec_step.default, args)


def test_op_bad_inputs():
    args = list(op_args(4, 6, 3, loss="bpr-max", device="cpu"))
    bad = list(args)
    bad[8] = torch.ones(4, 2)
    with pytest.raises(RuntimeError, match="hidden_mask must be"):
        torch.ops.seqrec.gru4rec_step(*bad)
    bad = list(args)
    bad[5], bad[6] = args[5][:3], args[6][:3]  # M = 3 < B = 4
    with pytest.raises(ValueError, match="M >= B"):
        torch.ops.seqrec.gru4rec_step(*bad)
    bad = list(args)
    bad[0] = args[0].int()  # (half and bfloat16 are taken: tests/test_mixed_precision.py)
    with pytest.raises(RuntimeError, match="float16, bfloat16, float32 or float64"):
        torch.ops.seqrec.gru4rec_step(*bad)
    bad = list(args)
    bad[9] = "hinge"
    with pytest.raises(ValueError, match="unknown loss"):
        torch.ops.seqrec.gru4rec_step(*bad)
    bad = list(args)
    bad[2] = args[2][:, :2]
    with pytest.raises(RuntimeError, match="w_hh must be"):
        torch.ops.seqrec.gru4rec_step(*bad)
    bad = list(args)
    bad[13] = -1.0
    with pytest.raises(ValueError, match="normalizer must be finite and > 0"):
        torch.ops.seqrec.gru4rec_step(*bad)


@pytest.mark.parametrize("loss", ["bpr-max", "top1-max", "cross-entropy", "bpr", "top1"])
def test_op_edge_cases_equal_the_separate_ops(loss, device):
    """No sampled negatives (M = B), a single row without any negative (M = B = 1), an empty
    batch (B = 0: loss 0, zero gradients), and scores in the thousands (the softmax's
    max-subtraction): the same as the separate ops, finite."""
    for B, S, scale in ((5, 0, 0.5), (1, 0, 0.5), (0, 5, 0.5), (6, 40, 300.0)):
        args = list(op_args(B, S, 8, loss=loss, device=device, dtype=torch.float64))
        args[5] = args[5] * scale  # out_rows: scores of order scale^2 * H
        out = torch.ops.seqrec.gru4rec_step(*args)
        for ours, ref in zip(out, composed(*args)):
            assert torch.isfinite(ours).all()
            torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
