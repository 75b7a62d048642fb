"""gru_step / gru_sequence against the pure-PyTorch reference, torch.nn.GRUCell / torch.nn.GRU,
gradcheck, opcheck, torch.compile, hypothesis, low precision and bad input."""

import pytest
import torch
from conftest import requires_cuda
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recurrent_checks import assert_within_reference_error, grads, random_masks, sequence_cases

from seqrec_ext import gru_sequence, gru_step, gru_step_ids, reference

VARIANTS = [pytest.param(False, id="reset_before"), pytest.param(True, id="reset_after")]


def make_params(B, H, T=None, *, dtype=torch.float32, device="cpu", biases=True, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    shape = (B, 3 * H) if T is None else (T, B, 3 * H)

    def rnd(*s):
        return (torch.randn(*s, generator=g, dtype=torch.float64) * scale).to(device=device, dtype=dtype)

    gi, h = rnd(*shape), rnd(B, H)
    w = rnd(3 * H, H) / max(1, H) ** 0.5 * 2
    b_ih, b_hh = (rnd(3 * H), rnd(3 * H)) if biases else (None, None)
    return gi, h, w, b_ih, b_hh


def tol(dtype):
    return {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=2e-6)}[dtype]


# ---- gru_step ----


@pytest.mark.parametrize("reset_after", VARIANTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("biases", [True, False])
@pytest.mark.parametrize("B,H", [(1, 1), (4, 7), (33, 100), (5, 513)])
def test_step_equals_reference(reset_after, dtype, biases, B, H, device):
    params = [
        p.requires_grad_() if p is not None else None
        for p in make_params(B, H, dtype=dtype, device=device, biases=biases)
    ]
    out = gru_step(*params, reset_after=reset_after)
    ref = reference.gru_step(*params, reset_after=reset_after)
    torch.testing.assert_close(out, ref, **tol(dtype))
    cot = torch.randn_like(out)
    for a, b in zip(grads(out, params, cot), grads(ref, params, cot)):
        torch.testing.assert_close(a, b, **tol(dtype))


@pytest.mark.parametrize("H", [1, 7, 64])
def test_reset_after_equals_torch_gru_cell(H, device):
    torch.manual_seed(0)
    cell = torch.nn.GRUCell(5, H).to(device)
    x = torch.randn(9, 5, device=device)
    h = torch.randn(9, H, device=device, requires_grad=True)
    expected = cell(x, h)
    gi = x @ cell.weight_ih.t()
    out = gru_step(gi, h, cell.weight_hh, cell.bias_ih, cell.bias_hh, reset_after=True)
    torch.testing.assert_close(out, expected)
    cot = torch.randn_like(out)
    params = [h, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    for a, b in zip(grads(out, params, cot), grads(expected, params, cot)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reset_after", VARIANTS)
def test_step_gradcheck(reset_after):
    params = [p.requires_grad_() for p in make_params(3, 5, dtype=torch.float64)]
    assert torch.autograd.gradcheck(lambda *p: gru_step(*p, reset_after=reset_after), params)


def test_step_extreme_inputs_stay_finite():
    gi, h, w, b_ih, b_hh = make_params(4, 6, scale=1e4)
    for reset_after in (False, True):
        out = gru_step(gi, h.clamp(-1, 1), w, b_ih, b_hh, reset_after=reset_after)
        ref = reference.gru_step(gi, h.clamp(-1, 1), w, b_ih, b_hh, reset_after=reset_after)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, ref)


def test_step_ids_gives_row_sparse_table_gradient():
    torch.manual_seed(0)
    table = torch.randn(1000, 3 * 8, requires_grad=True)
    _, h, w, b_ih, b_hh = make_params(5, 8)
    ids = torch.tensor([3, 999, 3, 0, 17])
    out = gru_step_ids(ids, table, h, w, b_ih, b_hh)
    torch.testing.assert_close(out, reference.gru_step(table[ids], h, w, b_ih, b_hh))
    out.sum().backward()
    assert table.grad.is_sparse
    dense = table.grad.to_dense()
    table2 = table.detach().clone().requires_grad_()
    reference.gru_step(table2[ids], h, w, b_ih, b_hh).sum().backward()
    torch.testing.assert_close(dense, table2.grad)
    assert set(table.grad.coalesce().indices()[0].tolist()) == {0, 3, 17, 999}


# ---- gru_sequence ----


@pytest.mark.parametrize("reset_after", VARIANTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masks", ["none", "reset", "lengths", "both"])
def test_sequence_equals_reference(reset_after, dtype, masks, device):
    T, B, H = 7, 6, 9
    params = [p.requires_grad_() for p in make_params(B, H, T, dtype=dtype, device=device)]
    reset, lengths = random_masks(T, B, seed=1)
    reset = reset.to(device) if masks in ("reset", "both") else None
    lengths = lengths.to(device) if masks in ("lengths", "both") else None
    out, h_last = gru_sequence(*params, reset=reset, lengths=lengths, reset_after=reset_after)
    ref_out, ref_h = reference.gru_sequence(*params, reset=reset, lengths=lengths, reset_after=reset_after)
    torch.testing.assert_close(out, ref_out, **tol(dtype))
    torch.testing.assert_close(h_last, ref_h, **tol(dtype))
    cot_out, cot_h = torch.randn_like(out), torch.randn_like(h_last)
    for a, b in zip(grads((out, h_last), params, (cot_out, cot_h)), grads((ref_out, ref_h), params, (cot_out, cot_h))):
        torch.testing.assert_close(a, b, **tol(dtype))


@pytest.mark.parametrize("reset_after", VARIANTS)
def test_sequence_equals_loop_of_steps(reset_after, device):
    T, B, H = 5, 4, 6
    gi, h, w, b_ih, b_hh = make_params(B, H, T, device=device)
    out, h_last = gru_sequence(gi, h, w, b_ih, b_hh, reset_after=reset_after)
    state = h
    for t in range(T):
        state = gru_step(gi[t], state, w, b_ih, b_hh, reset_after=reset_after)
        torch.testing.assert_close(out[t], state)
    torch.testing.assert_close(h_last, state)


@pytest.mark.parametrize("packed", [False, True])
def test_reset_after_sequence_equals_torch_gru(packed, device):
    torch.manual_seed(0)
    T, B, I, H = 6, 5, 3, 8
    gru = torch.nn.GRU(I, H).to(device)
    x = torch.randn(T, B, I, device=device)
    h0 = torch.randn(1, B, H, device=device, requires_grad=True)
    lengths = torch.tensor([6, 1, 3, 0, 4])
    gi = x @ gru.weight_ih_l0.t()
    w, bi, bh = gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0
    if packed:
        keep = lengths > 0  # torch.nn.GRU cannot pack empty sequences
        xp = torch.nn.utils.rnn.pack_padded_sequence(x[:, keep], lengths[keep], enforce_sorted=False)
        yp, h_n = gru(xp, h0[:, keep])
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(yp, total_length=T)
        out, h_last = gru_sequence(gi, h0[0], w, bi, bh, lengths=lengths.to(device), reset_after=True)
        torch.testing.assert_close(out[:, keep], y)
        torch.testing.assert_close(h_last[keep], h_n[0])
        torch.testing.assert_close(h_last[~keep], h0[0][~keep])  # zero steps: state unchanged
        torch.testing.assert_close(out[:, ~keep], torch.zeros_like(out[:, ~keep]))
    else:
        y, h_n = gru(x, h0)
        out, h_last = gru_sequence(gi, h0[0], w, bi, bh, reset_after=True)
        torch.testing.assert_close(out, y)
        torch.testing.assert_close(h_last, h_n[0])
        cot = torch.randn_like(out)
        params = [h0, gru.weight_ih_l0, w, bi, bh]
        for a, b in zip(grads(out, params, cot), grads(y, params, cot)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reset_after", VARIANTS)
def test_sequence_gradcheck_with_masks(reset_after):
    T, B, H = 4, 5, 3
    params = [p.requires_grad_() for p in make_params(B, H, T, dtype=torch.float64)]
    reset = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [1, 0, 0, 1, 0]], dtype=torch.bool)
    lengths = torch.tensor([4, 3, 0, 2, 4])
    fn = lambda *p: gru_sequence(*p, reset=reset, lengths=lengths, reset_after=reset_after)  # noqa: E731
    assert torch.autograd.gradcheck(fn, params)
    # only one of the two outputs used
    assert torch.autograd.gradcheck(lambda *p: fn(*p)[1], params)
    assert torch.autograd.gradcheck(lambda *p: fn(*p)[0], params)


def test_sequence_edge_shapes():
    for T, B in [(0, 3), (3, 0), (1, 1)]:
        gi, h, w, b_ih, b_hh = make_params(B, 4, T)
        out, h_last = gru_sequence(gi, h, w, b_ih, b_hh)
        assert out.shape == (T, B, 4) and h_last.shape == (B, 4)
        ref_out, ref_h = reference.gru_sequence(gi, h, w, b_ih, b_hh)
        torch.testing.assert_close(out, ref_out)
        torch.testing.assert_close(h_last, ref_h)


@st.composite
def gru_cases(draw):
    return draw(sequence_cases()) + (draw(st.booleans()), draw(st.booleans()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=gru_cases())
def test_sequence_hypothesis(case):
    T, B, H, reset, lengths, seed, reset_after, biases = case
    params = [
        p.requires_grad_() if p is not None else None
        for p in make_params(B, H, T, dtype=torch.float64, seed=seed, biases=biases)
    ]
    out, h_last = gru_sequence(*params, reset=reset, lengths=lengths, reset_after=reset_after)
    ref_out, ref_h = reference.gru_sequence(*params, reset=reset, lengths=lengths, reset_after=reset_after)
    torch.testing.assert_close(out, ref_out, **tol(torch.float64))
    torch.testing.assert_close(h_last, ref_h, **tol(torch.float64))
    if T == 0:
        return
    cot_out, cot_h = torch.randn_like(out), torch.randn_like(h_last)
    for a, b in zip(grads((out, h_last), params, (cot_out, cot_h)), grads((ref_out, ref_h), params, (cot_out, cot_h))):
        if a is None or b is None:
            assert a is None or not a.any()
            continue
        torch.testing.assert_close(a, b, **tol(torch.float64))


# ---- low precision: no worse than the reference in that dtype, against a float32 truth ----


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reset_after", VARIANTS)
def test_low_precision_within_reference_error(dtype, reset_after, device):
    if device.type == "cpu" and dtype == torch.float16:
        pytest.importorskip("torch", minversion="2.1")  # half matmul on CPU exists since 2.1
    T, B, H = 6, 16, 32
    params32 = make_params(B, H, T, device=device)
    assert_within_reference_error(gru_sequence, reference.gru_sequence, params32, dtype, reset_after=reset_after)


# ---- registration: opcheck and torch.compile ----


@pytest.mark.parametrize("reset_after", VARIANTS)
def test_opcheck_gru_step(reset_after, device):
    gi, h, w, b_ih, b_hh = [p.requires_grad_() for p in make_params(4, 5, device=device)]
    torch.library.opcheck(torch.ops.seqrec.gru_step.default, (gi, h, w, b_ih, b_hh, reset_after))
    torch.library.opcheck(torch.ops.seqrec.gru_step.default, (gi, h, w, None, None, reset_after))
    _, ws = torch.ops.seqrec.gru_step(gi, h, w, b_ih, b_hh, reset_after)
    torch.library.opcheck(
        torch.ops.seqrec.gru_step_backward.default, (torch.randn_like(h), w.detach(), ws.detach(), reset_after)
    )


@pytest.mark.parametrize("reset_after", VARIANTS)
def test_opcheck_gru_sequence(reset_after, device):
    T, B, H = 4, 5, 3
    gi, h, w, b_ih, b_hh = [p.requires_grad_() for p in make_params(B, H, T, device=device)]
    reset, lengths = random_masks(T, B, seed=3)
    reset, lengths = reset.to(device), lengths.to(device)
    torch.library.opcheck(torch.ops.seqrec.gru_sequence.default, (gi, h, w, b_ih, b_hh, reset, lengths, reset_after))
    torch.library.opcheck(torch.ops.seqrec.gru_sequence.default, (gi, h, w, None, None, None, None, reset_after))
    _, _, ws = torch.ops.seqrec.gru_sequence(gi, h, w, b_ih, b_hh, reset, lengths, reset_after)
    for grad_out, grad_h in [
        (torch.randn(T, B, H, device=device), torch.randn(B, H, device=device)),
        (None, torch.randn(B, H, device=device)),
        (torch.randn(T, B, H, device=device), None),
    ]:
        torch.library.opcheck(
            torch.ops.seqrec.gru_sequence_backward.default,
            (grad_out, grad_h, w.detach(), ws.detach(), reset, lengths, reset_after),
        )


class TinySessionModel(torch.nn.Module):
    """A module on the ops: item table lookups as input projections, a GRU step and a sequence."""

    def __init__(self, n_items=50, H=8, reset_after=False):
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(n_items, 3 * H) * 0.3)
        self.w_hh = torch.nn.Parameter(torch.randn(3 * H, H) * 0.3)
        self.b_hh = torch.nn.Parameter(torch.zeros(3 * H))
        self.reset_after = reset_after

    def forward(self, ids_seq, h0, reset, lengths):
        out, h_last = gru_sequence(
            self.table[ids_seq],
            h0,
            self.w_hh,
            None,
            self.b_hh,
            reset=reset,
            lengths=lengths,
            reset_after=self.reset_after,
        )
        h_next = gru_step(self.table[ids_seq[-1]], h_last, self.w_hh, None, self.b_hh, reset_after=self.reset_after)
        return out.square().mean() + h_next.sum()


@pytest.mark.parametrize("reset_after", VARIANTS)
def test_torch_compile_forward_and_backward(reset_after):
    torch.manual_seed(0)
    model = TinySessionModel(reset_after=reset_after)
    ids = torch.randint(0, 50, (5, 4))
    h0 = torch.randn(4, 8)
    reset, lengths = random_masks(5, 4, seed=2)
    eager_loss = model(ids, h0, reset, lengths)
    eager_grads = torch.autograd.grad(eager_loss, list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True)
    loss = compiled(ids, h0, reset, lengths)
    grads_c = torch.autograd.grad(loss, list(model.parameters()))
    torch.testing.assert_close(loss, eager_loss)
    for a, b in zip(grads_c, eager_grads):
        torch.testing.assert_close(a, b)


# ---- bad input ----


def test_bad_inputs_raise_clear_errors():
    gi, h, w, b_ih, b_hh = make_params(4, 5)
    cases = [
        (lambda: gru_step(gi[:, :-1], h, w), RuntimeError, "3H"),
        (lambda: gru_step(gi, h[:, :-1], w), RuntimeError, r"h must be \(B, H\)"),
        (lambda: gru_step(gi, h[:3], w), RuntimeError, r"h must be \(B, H\)"),
        (lambda: gru_step(gi, h, w.t()), RuntimeError, r"w_hh must be \(3H, H\)"),
        (lambda: gru_step(gi, h, w, b_ih[:-1]), RuntimeError, r"b_ih must be \(3H,\)"),
        (lambda: gru_step(gi, h.double(), w), RuntimeError, "h has dtype"),
        (lambda: gru_step(gi.int(), h.int(), w.int()), RuntimeError, "expected float32, float64"),
        (lambda: gru_step(gi[None], h, w), RuntimeError, r"gi must be \(B, 3H\)"),
        (lambda: gru_sequence(gi, h, w), RuntimeError, r"gi must be \(T, B, 3H\)"),
    ]
    gi3 = gi[None].expand(3, -1, -1)
    cases += [
        (lambda: gru_sequence(gi3, h, w, reset=torch.zeros(3, 4)), RuntimeError, "reset must be a bool"),
        (
            lambda: gru_sequence(gi3, h, w, reset=torch.zeros(2, 4, dtype=torch.bool)),
            RuntimeError,
            r"reset must be \(T, B\)",
        ),
        (lambda: gru_sequence(gi3, h, w, lengths=torch.tensor([1, 2, 3])), RuntimeError, r"lengths must be \(B,\)"),
        (
            lambda: gru_sequence(gi3, h, w, lengths=torch.tensor([1, 2, 3, 4])),
            ValueError,
            r"lengths must lie in \[0, T\]",
        ),
        (
            lambda: gru_sequence(gi3, h, w, lengths=torch.tensor([1, -1, 3, 0])),
            ValueError,
            r"lengths must lie in \[0, T\]",
        ),
        (
            lambda: gru_sequence(gi3, h, w, lengths=torch.tensor([1, 1, 3, 0], dtype=torch.int32)),
            RuntimeError,
            "lengths must be int64",
        ),
    ]
    for fn, error, message in cases:
        with pytest.raises(error, match=message):
            fn()


@requires_cuda
def test_mixed_devices_rejected():
    gi, h, w, _, _ = make_params(4, 5)
    with pytest.raises(RuntimeError, match="is on"):
        gru_step(gi.cuda(), h, w.cuda())
