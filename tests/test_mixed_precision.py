"""Half and bfloat16 in the loss and step ops (widened to float32 inside, the results cast back to
each input's dtype; the step's scoring products in the state's low precision) and under
torch.autocast (float32 policy), against the float32 results with an error budget; opcheck in
bfloat16."""

import pytest
import torch
from gru4rec_params import random_params

import seqrec_ext
from seqrec_ext import GRU4RecParams, gru4rec_step, gru4rec_train_step_, reference, sampled_ranking_loss

LOW = [torch.bfloat16, torch.float16]


def loss_inputs(B=24, S=200, H=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g) * 0.3 for shape in ((B, H), (B + S, H), (B + S,))]


def budget(dtype):
    # the rounding of the inputs to 8 (bfloat16) or 11 (float16) significant bits, carried through
    return dict(rtol=4e-2, atol=4e-3) if dtype == torch.bfloat16 else dict(rtol=5e-3, atol=5e-4)


def rounded(tensors, dtype):
    """The same values rounded to `dtype` and back: the float32 reference sees what the op sees."""
    return [t.to(dtype).float() for t in tensors]


@pytest.mark.parametrize("loss", ["bpr-max", "top1-max", "cross-entropy"])
@pytest.mark.parametrize("dtype", LOW)
def test_loss_in_low_precision(loss, dtype, device):
    inputs = loss_inputs()
    low = [t.to(device, dtype).requires_grad_() for t in inputs]
    ref = [t.to(device).requires_grad_() for t in rounded(inputs, dtype)]
    options = dict(loss=loss, bpreg=0.5 if loss == "bpr-max" else 0.0)
    value = sampled_ranking_loss(*low, **options)
    expected = sampled_ranking_loss(*ref, **options)
    value.backward()
    expected.backward()
    assert value.dtype == dtype and all(t.grad.dtype == dtype for t in low)
    # the arithmetic is float32: the result differs from float32's only by the final rounding
    torch.testing.assert_close(value.float(), expected.detach(), rtol=8e-3, atol=0)
    for a, b in zip(low, ref):
        torch.testing.assert_close(a.grad.float(), b.grad, **budget(dtype))


def test_mixed_dtypes_give_each_input_its_own_gradient_dtype():
    h, rows, bias = loss_inputs()
    h = h.bfloat16().requires_grad_()
    rows, bias = rows.requires_grad_(), bias.requires_grad_()
    sampled_ranking_loss(h, rows, bias, loss="bpr-max").backward()
    assert (h.grad.dtype, rows.grad.dtype, bias.grad.dtype) == (torch.bfloat16, torch.float32, torch.float32)


def test_autocast_runs_the_loss_in_float32():
    h, rows, bias = loss_inputs()
    layer = torch.nn.Linear(32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = layer(h)
        value = sampled_ranking_loss(x, rows, bias, loss="bpr-max")
    assert x.dtype == torch.bfloat16 and value.dtype == torch.float32
    value.backward()
    auto_grad = layer.weight.grad.clone()
    layer.zero_grad()
    # the same by hand: the bfloat16 product, cast to float32 for the loss
    x = torch.nn.functional.linear(h.bfloat16(), layer.weight.bfloat16(), layer.bias.bfloat16())
    by_hand = sampled_ranking_loss(x.float(), rows, bias, loss="bpr-max")
    by_hand.backward()
    torch.testing.assert_close(by_hand, value)
    torch.testing.assert_close(layer.weight.grad, auto_grad)


@pytest.mark.parametrize("dtype", LOW)
def test_gru4rec_step_in_low_precision(dtype, device):
    params = random_params("constrained", 300, 16, 16, b_hh=True, dtype=torch.float32, device=device)
    low = GRU4RecParams(
        **{k: getattr(params, k).to(dtype) for k in ("w_hh", "b_h", "out_table", "out_bias", "w_in", "b_hh")},
        embedding="constrained",
    )
    ref = GRU4RecParams(
        **{k: getattr(low, k).float() for k in ("w_hh", "b_h", "out_table", "out_bias", "w_in", "b_hh")},
        embedding="constrained",
    )
    g = torch.Generator().manual_seed(1)
    ids = [torch.randint(0, 300, (n,), generator=g).to(device) for n in (12, 12, 40)]
    h = (torch.randn(12, 16, generator=g) * 0.3).to(device)
    ours = gru4rec_step(low, *ids, h.to(dtype), loss="bpr-max", bpreg=0.5)
    theirs = gru4rec_step(ref, *ids, h.to(dtype).float(), loss="bpr-max", bpreg=0.5)
    assert ours.h_new.dtype == dtype and ours.dense_grads["w_hh"].dtype == dtype
    torch.testing.assert_close(ours.loss.float(), theirs.loss, rtol=8e-3, atol=0)
    torch.testing.assert_close(ours.h_new.float(), theirs.h_new, **budget(dtype))
    torch.testing.assert_close(ours.dense_grads["w_hh"].float(), theirs.dense_grads["w_hh"], **budget(dtype))


def test_a_bfloat16_state_runs_the_scoring_products_in_bfloat16():
    """With a bfloat16 state the step's matrix products (the GRU's, the B x M scores and their
    gradients) take bfloat16 operands (float32 accumulation), the gates and the loss stay
    float32: the loss is the float32 reference loss of the scores of the bfloat16 products, not
    of the float32 ones."""
    B, S, H = 12, 40, 16
    g = torch.Generator().manual_seed(4)
    gi, h = torch.randn(B, 3 * H, generator=g), torch.randn(B, H, generator=g) * 0.3
    w_hh, b_h = torch.randn(3 * H, H, generator=g) * 0.3, torch.zeros(3 * H)
    rows, bias = torch.randn(B + S, H, generator=g), torch.randn(B + S, generator=g) * 0.1
    op = torch.ops.seqrec.gru4rec_step
    args = (w_hh, b_h, None, rows, bias, None, None, "bpr-max", 0.5, 0.0, True, None)
    value, h_new, *_, d_rows, d_bias = op(gi, h.bfloat16(), *args)
    assert h_new.dtype == torch.bfloat16 and d_rows.dtype == torch.float32
    # torch.nn.GRUCell's cell (reset after the hidden product), the product in bfloat16
    h0 = h.bfloat16().float()
    gh = (h0.bfloat16() @ w_hh.bfloat16().t()).float()
    x = gi + b_h
    r, z = torch.sigmoid(x[:, :H] + gh[:, :H]), torch.sigmoid(x[:, H : 2 * H] + gh[:, H : 2 * H])
    n = torch.tanh(x[:, 2 * H :] + r * gh[:, 2 * H :])
    h_ref = (1 - z) * n + z * h0
    torch.testing.assert_close(h_new.float(), h_ref.bfloat16().float(), rtol=1e-2, atol=1e-2)

    def loss_of(scores):  # the reference loss of given scores: h = scores, rows = identity
        scores = scores.requires_grad_()
        value = reference.sampled_ranking_loss(scores, torch.eye(B + S), bias, loss="bpr-max", bpreg=0.5)
        value.backward()
        return value, scores.grad

    low_value, d_scores = loss_of((h_ref.bfloat16() @ rows.bfloat16().t()).float())
    full_value, _ = loss_of(h_ref @ rows.t())
    torch.testing.assert_close(value, low_value, rtol=1e-5, atol=0)
    assert not torch.allclose(value, full_value, rtol=1e-5, atol=0)  # the products' rounding shows
    torch.testing.assert_close(d_bias, d_scores.sum(0), rtol=1e-4, atol=1e-6)
    expected_d_rows = (d_scores.bfloat16().t() @ h_ref.bfloat16()).float()
    torch.testing.assert_close(d_rows, expected_d_rows, rtol=2e-2, atol=1e-4)


def test_train_step_with_a_bfloat16_state():
    """float32 master parameters, a bfloat16 state (GRU4Rec's --precision bf16): the step's
    large products in bfloat16, the arithmetic and the update in float32; within bfloat16's
    budget of the float32 step from the same values."""
    names = seqrec_ext.train_step_param_names("separate", False)
    runs = []
    for state_dtype in (torch.bfloat16, torch.float32):
        params = random_params("separate", 300, 16, 16, dtype=torch.float32)
        states = [[torch.zeros_like(getattr(params, n)) for n in names] for _ in range(2)]
        g = torch.Generator().manual_seed(2)
        ids = [torch.randint(0, 300, (n,), generator=g) for n in (12, 12, 40)]
        h = (torch.randn(12, 16, generator=g) * 0.3).bfloat16().float()  # the same values in both runs
        loss, h_new = gru4rec_train_step_(params, *states, *ids, h.to(state_dtype), loss="bpr-max", lr=0.05)
        assert h_new.dtype == state_dtype
        assert all(getattr(params, n).dtype == torch.float32 for n in names)
        runs.append((loss.float(), h_new.float(), [getattr(params, n).clone() for n in names]))
    (l1, h1, p1), (l2, h2, p2) = runs
    torch.testing.assert_close(l1, l2, rtol=1e-2, atol=0)
    torch.testing.assert_close(h1, h2, **budget(torch.bfloat16))
    for a, b in zip(p1, p2):
        torch.testing.assert_close(a, b, **budget(torch.bfloat16))


def test_opcheck_in_bfloat16():
    h, rows, bias = (t.bfloat16() for t in loss_inputs())
    torch.library.opcheck(
        torch.ops.seqrec.sampled_ranking_loss.default, (h, rows, bias, None, None, "bpr-max", 0.5, 0.0, "mean")
    )
    p = random_params("none", 50, 8, 8, dtype=torch.bfloat16)
    gi, hh = p.item_in[:6], torch.zeros(6, 8, dtype=torch.bfloat16)
    args = (gi, hh, p.w_hh, p.b_h, None, p.out_table[:20], p.out_bias[:20], None, None, "bpr-max", 0.0, 0.0, False)
    torch.library.opcheck(torch.ops.seqrec.gru4rec_step.default, args)


def test_autocast_runs_the_gru_in_bfloat16_with_float32_gates():
    g = torch.Generator().manual_seed(3)
    gi, h0 = torch.randn(5, 4, 24, generator=g), torch.zeros(4, 8)
    w, b = (torch.randn(24, 8, generator=g) * 0.3).requires_grad_(), torch.zeros(24, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h_last = seqrec_ext.gru_sequence(gi, h0, w, b, b)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert w.grad.dtype == torch.float32
    ref, _ = seqrec_ext.gru_sequence(*(t.bfloat16().float() for t in (gi, h0, w, b, b)))
    torch.testing.assert_close(out.float(), ref, **budget(torch.bfloat16))


def test_autocast_runs_the_lstm_in_bfloat16_with_float32_gates():
    g = torch.Generator().manual_seed(4)
    gi, h0, c0 = torch.randn(5, 4, 32, generator=g), torch.zeros(4, 8), torch.randn(4, 8, generator=g)
    w, b = (torch.randn(32, 8, generator=g) * 0.3).requires_grad_(), torch.zeros(32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h_last, c_last = seqrec_ext.lstm_sequence(gi, h0, c0, w, b, b)
    assert out.dtype == h_last.dtype == c_last.dtype == torch.bfloat16
    (out.float().sum() + c_last.float().sum()).backward()
    assert w.grad.dtype == torch.float32 and b.grad.dtype == torch.float32
    ref, _, _ = seqrec_ext.lstm_sequence(*(t.bfloat16().float() for t in (gi, h0, c0, w, b, b)))
    torch.testing.assert_close(out.float(), ref, **budget(torch.bfloat16))
