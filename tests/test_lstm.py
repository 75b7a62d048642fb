"""lstm_sequence against the pure-PyTorch reference and torch.nn.LSTM (values and every gradient),
gradcheck, opcheck, torch.compile, hypothesis, low precision, determinism and bad input."""

import pytest
import torch
from conftest import requires_cuda
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recurrent_checks import assert_within_reference_error, grads, random_masks, sequence_cases

from seqrec_ext import lstm_sequence, reference


def make_params(B, H, T, *, dtype=torch.float32, device="cpu", biases=True, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)

    def rnd(*s):
        return (torch.randn(*s, generator=g, dtype=torch.float64) * scale).to(device=device, dtype=dtype)

    gi, h0, c0 = rnd(T, B, 4 * H), rnd(B, H), rnd(B, H)
    w = rnd(4 * H, H) / max(1, H) ** 0.5 * 2
    b_ih, b_hh = (rnd(4 * H), rnd(4 * H)) if biases else (None, None)
    return gi, h0, c0, w, b_ih, b_hh


def with_grad(params):
    return [p.requires_grad_() if p is not None else None for p in params]


def tol(dtype):
    return {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=2e-6)}[dtype]


def assert_same_values_and_grads(ours, theirs, inputs, **tolerance):
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **tolerance)
    # the outputs that depend on the inputs (a reference's empty output of zero steps does not)
    pairs = [(a, b) for a, b in zip(ours, theirs) if b.requires_grad]
    if not pairs:
        return
    ours, theirs = zip(*pairs)
    cots = [torch.randn_like(x) for x in ours]
    for a, b in zip(grads(ours, inputs, cots), grads(theirs, inputs, cots)):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
            continue
        torch.testing.assert_close(a, b, **tolerance)


# ---- against the reference ----


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masks", ["none", "reset", "lengths", "both"])
@pytest.mark.parametrize("biases", [True, False])
def test_sequence_equals_reference(dtype, masks, biases, device):
    T, B, H = 7, 6, 9
    params = with_grad(make_params(B, H, T, dtype=dtype, device=device, biases=biases))
    reset, lengths = random_masks(T, B, seed=1)
    reset = reset.to(device) if masks in ("reset", "both") else None
    lengths = lengths.to(device) if masks in ("lengths", "both") else None
    ours = lstm_sequence(*params, reset=reset, lengths=lengths)
    theirs = reference.lstm_sequence(*params, reset=reset, lengths=lengths)
    assert_same_values_and_grads(ours, theirs, params, **tol(dtype))


@pytest.mark.parametrize("B,H", [(1, 1), (4, 7), (33, 100), (5, 129)])
def test_sizes_equal_reference(B, H, device):
    # hidden sizes around the vector widths (tails of the vectorised loop), one step and several
    for T in (1, 5):
        params = with_grad(make_params(B, H, T, device=device))
        ours = lstm_sequence(*params)
        theirs = reference.lstm_sequence(*params)
        assert_same_values_and_grads(ours, theirs, params, **tol(torch.float32))


def test_non_contiguous_inputs(device):
    # batch-first data transposed to (T, B, .), a weight stored transposed, a strided bias
    T, B, H = 5, 4, 6
    gi, h0, c0, w, b_ih, b_hh = make_params(B, H, T, device=device)
    args = [
        gi.transpose(0, 1).contiguous().transpose(0, 1),
        h0.t().contiguous().t(),
        torch.cat([c0, c0], 1)[:, :H],
        w.t().contiguous().t(),
        torch.stack([b_ih, b_ih], 1)[:, 0],
        b_hh,
    ]
    assert not any(a.is_contiguous() for a in args[:5])
    params = with_grad(args)
    ours = lstm_sequence(*params)
    theirs = reference.lstm_sequence(*params)
    assert_same_values_and_grads(ours, theirs, params, **tol(torch.float32))


def test_only_some_outputs_used():
    T, B, H = 5, 4, 6
    params = with_grad(make_params(B, H, T))
    reset, lengths = random_masks(T, B, seed=4)
    for k in range(3):  # each output alone: the others' gradients are absent (None), not zeros
        ours = lstm_sequence(*params, reset=reset, lengths=lengths)
        theirs = reference.lstm_sequence(*params, reset=reset, lengths=lengths)
        assert_same_values_and_grads(ours[k : k + 1], theirs[k : k + 1], params, **tol(torch.float32))


def test_extreme_inputs_stay_finite():
    gi, h0, c0, w, b_ih, b_hh = make_params(4, 6, 3, scale=1e4)
    out, h_last, c_last = lstm_sequence(gi, h0, c0, w, b_ih, b_hh)
    ref = reference.lstm_sequence(gi, h0, c0, w, b_ih, b_hh)
    assert all(torch.isfinite(x).all() for x in (out, h_last, c_last))
    for a, b in zip((out, h_last, c_last), ref):
        torch.testing.assert_close(a, b)


# ---- against torch.nn.LSTM ----


@pytest.mark.parametrize("H", [1, 7, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_torch_lstm(H, dtype, device):
    torch.manual_seed(0)
    T, B, I = 6, 5, 3
    lstm = torch.nn.LSTM(I, H).to(device=device, dtype=dtype)
    x = torch.randn(T, B, I, device=device, dtype=dtype, requires_grad=True)
    h0 = torch.randn(1, B, H, device=device, dtype=dtype, requires_grad=True)
    c0 = torch.randn(1, B, H, device=device, dtype=dtype, requires_grad=True)
    y, (h_n, c_n) = lstm(x, (h0, c0))
    gi = x @ lstm.weight_ih_l0.t()
    ours = lstm_sequence(gi, h0[0], c0[0], lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    inputs = [x, h0, c0, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]
    tolerance = {} if dtype == torch.float32 else tol(dtype)
    assert_same_values_and_grads(ours, (y, h_n[0], c_n[0]), inputs, **tolerance)


def test_packed_equals_torch_lstm(device):
    torch.manual_seed(0)
    T, B, I, H = 6, 5, 3, 8
    lstm = torch.nn.LSTM(I, H).to(device)
    x = torch.randn(T, B, I, device=device, requires_grad=True)
    h0 = torch.randn(1, B, H, device=device, requires_grad=True)
    c0 = torch.randn(1, B, H, device=device, requires_grad=True)
    lengths = torch.tensor([6, 1, 3, 0, 4])
    keep = lengths > 0  # torch.nn.LSTM cannot pack empty sequences
    xp = torch.nn.utils.rnn.pack_padded_sequence(x[:, keep], lengths[keep], enforce_sorted=False)
    yp, (h_n, c_n) = lstm(xp, (h0[:, keep], c0[:, keep]))
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(yp, total_length=T)
    gi = x @ lstm.weight_ih_l0.t()
    w, bi, bh = lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
    out, h_last, c_last = lstm_sequence(gi, h0[0], c0[0], w, bi, bh, lengths=lengths.to(device))
    inputs = [x, h0, c0, lstm.weight_ih_l0, w, bi, bh]
    assert_same_values_and_grads((out[:, keep], h_last[keep], c_last[keep]), (y, h_n[0], c_n[0]), inputs)
    # zero steps: the state unchanged, the output zero
    torch.testing.assert_close(h_last[~keep], h0[0][~keep])
    torch.testing.assert_close(c_last[~keep], c0[0][~keep])
    assert not out[:, ~keep].any()


# ---- gradcheck, edge shapes, hypothesis ----


def test_gradcheck_with_masks():
    T, B, H = 4, 5, 3
    params = with_grad(make_params(B, H, T, dtype=torch.float64))
    reset = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [1, 0, 0, 1, 0]], dtype=torch.bool)
    lengths = torch.tensor([4, 3, 0, 2, 4])
    fn = lambda *p: lstm_sequence(*p, reset=reset, lengths=lengths)  # noqa: E731
    assert torch.autograd.gradcheck(fn, params)
    for k in range(3):  # only one of the outputs used
        assert torch.autograd.gradcheck(lambda *p: fn(*p)[k], params)
    assert torch.autograd.gradcheck(lambda *p: lstm_sequence(*p), params)


def test_edge_shapes():
    for T, B in [(0, 3), (3, 0), (1, 1), (0, 0)]:
        params = with_grad(make_params(B, 4, T))
        out, h_last, c_last = lstm_sequence(*params)
        assert out.shape == (T, B, 4) and h_last.shape == c_last.shape == (B, 4)
        theirs = reference.lstm_sequence(*params)
        assert_same_values_and_grads((out, h_last, c_last), theirs, params)


@st.composite
def lstm_cases(draw):
    return draw(sequence_cases()) + (draw(st.booleans()),)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=lstm_cases())
def test_sequence_hypothesis(case):
    T, B, H, reset, lengths, seed, biases = case
    params = with_grad(make_params(B, H, T, dtype=torch.float64, seed=seed, biases=biases))
    ours = lstm_sequence(*params, reset=reset, lengths=lengths)
    theirs = reference.lstm_sequence(*params, reset=reset, lengths=lengths)
    assert_same_values_and_grads(ours, theirs, params, **tol(torch.float64))


def test_deterministic(device):
    T, B, H = 9, 40, 33
    params = make_params(B, H, T, device=device)
    reset, lengths = random_masks(T, B, seed=5)
    runs = []
    for _ in range(2):
        p = [x.clone().requires_grad_() for x in params]
        outs = lstm_sequence(*p, reset=reset.to(device), lengths=lengths.to(device))
        cots = [torch.ones_like(x) for x in outs]
        runs.append(list(outs) + list(torch.autograd.grad(outs, p, cots)))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


# ---- low precision: no worse than the reference in that dtype, against a float32 truth ----


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_within_reference_error(dtype, device):
    T, B, H = 6, 16, 32
    params32 = make_params(B, H, T, device=device)
    assert_within_reference_error(lstm_sequence, reference.lstm_sequence, params32, dtype)


# ---- registration: opcheck and torch.compile ----


def test_opcheck(device):
    T, B, H = 4, 5, 3
    gi, h0, c0, w, b_ih, b_hh = with_grad(make_params(B, H, T, device=device))
    reset, lengths = random_masks(T, B, seed=3)
    reset, lengths = reset.to(device), lengths.to(device)
    op = torch.ops.seqrec.lstm_sequence
    torch.library.opcheck(op.default, (gi, h0, c0, w, b_ih, b_hh, reset, lengths))
    torch.library.opcheck(op.default, (gi, h0, c0, w, None, None, None, None))
    _, _, _, ws = op(gi, h0, c0, w, b_ih, b_hh, reset, lengths)

    def rnd(*s):
        return torch.randn(*s, device=device)

    for grad_out, grad_h, grad_c in [
        (rnd(T, B, H), rnd(B, H), rnd(B, H)),
        (None, rnd(B, H), None),
        (rnd(T, B, H), None, None),
        (None, None, rnd(B, H)),
    ]:
        torch.library.opcheck(
            torch.ops.seqrec.lstm_sequence_backward.default,
            (grad_out, grad_h, grad_c, w.detach(), ws.detach(), reset, lengths),
        )


class TinyLSTMModel(torch.nn.Module):
    """A module on the op: an input projection of item vectors, then the LSTM over the sequence."""

    def __init__(self, n_items=50, I=6, H=8):
        super().__init__()
        self.items = torch.nn.Parameter(torch.randn(n_items, I) * 0.3)
        self.w_ih = torch.nn.Parameter(torch.randn(4 * H, I) * 0.3)
        self.w_hh = torch.nn.Parameter(torch.randn(4 * H, H) * 0.3)
        self.b_hh = torch.nn.Parameter(torch.zeros(4 * H))

    def forward(self, ids_seq, h0, c0, reset, lengths):
        gi = self.items[ids_seq] @ self.w_ih.t()
        out, h_last, c_last = lstm_sequence(gi, h0, c0, self.w_hh, None, self.b_hh, reset=reset, lengths=lengths)
        return out.square().mean() + h_last.sum() + c_last.square().sum()


def test_torch_compile_forward_and_backward():
    torch.manual_seed(0)
    model = TinyLSTMModel()
    ids = torch.randint(0, 50, (5, 4))
    h0, c0 = torch.randn(4, 8), torch.randn(4, 8)
    reset, lengths = random_masks(5, 4, seed=2)
    eager_loss = model(ids, h0, c0, reset, lengths)
    eager_grads = torch.autograd.grad(eager_loss, list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True)
    loss = compiled(ids, h0, c0, reset, lengths)
    grads_c = torch.autograd.grad(loss, list(model.parameters()))
    torch.testing.assert_close(loss, eager_loss)
    for a, b in zip(grads_c, eager_grads):
        torch.testing.assert_close(a, b)


# ---- bad input ----


def test_bad_inputs_raise_clear_errors():
    gi, h0, c0, w, b_ih, b_hh = make_params(4, 5, 3)
    cases = [
        (lambda: lstm_sequence(gi[0], h0, c0, w), RuntimeError, r"gi must be \(T, B, 4H\)"),
        (lambda: lstm_sequence(gi[..., :-1], h0, c0, w), RuntimeError, "last dimension of gi must be 4H"),
        (lambda: lstm_sequence(gi, h0[:, :-1], c0, w), RuntimeError, r"h0 must be \(B, H\)"),
        (lambda: lstm_sequence(gi, h0, c0[:3], w), RuntimeError, r"c0 must be \(B, H\)"),
        (lambda: lstm_sequence(gi, h0, c0, w.t()), RuntimeError, r"w_hh must be \(4H, H\)"),
        (lambda: lstm_sequence(gi, h0, c0, w, b_ih[:-1]), RuntimeError, r"b_ih must be \(4H,\)"),
        (lambda: lstm_sequence(gi, h0, c0, w, b_ih, b_hh[:-1]), RuntimeError, r"b_hh must be \(4H,\)"),
        (lambda: lstm_sequence(gi, h0, c0.double(), w), RuntimeError, "c0 has dtype"),
        (lambda: lstm_sequence(gi, h0, c0, w.double()), RuntimeError, "w_hh has dtype"),
        (lambda: lstm_sequence(gi.int(), h0.int(), c0.int(), w.int()), RuntimeError, "expected float32, float64"),
        (lambda: lstm_sequence(gi, h0, c0, w, reset=torch.zeros(3, 4)), RuntimeError, "reset must be a bool"),
        (
            lambda: lstm_sequence(gi, h0, c0, w, reset=torch.zeros(2, 4, dtype=torch.bool)),
            RuntimeError,
            r"reset must be \(T, B\)",
        ),
        (
            lambda: lstm_sequence(gi, h0, c0, w, lengths=torch.tensor([1, 2, 3])),
            RuntimeError,
            r"lengths must be \(B,\)",
        ),
        (
            lambda: lstm_sequence(gi, h0, c0, w, lengths=torch.tensor([1, 2, 3, 4])),
            ValueError,
            r"lengths must lie in \[0, T\]",
        ),
        (
            lambda: lstm_sequence(gi, h0, c0, w, lengths=torch.tensor([1, -1, 3, 0])),
            ValueError,
            r"lengths must lie in \[0, T\]",
        ),
        (
            lambda: lstm_sequence(gi, h0, c0, w, lengths=torch.tensor([1, 1, 3, 0], dtype=torch.int32)),
            RuntimeError,
            "lengths must be int64",
        ),
    ]
    for fn, error, message in cases:
        with pytest.raises(error, match=message):
            fn()
    with pytest.raises(RuntimeError, match="lstm_sequence_backward: workspace must be"):
        torch.ops.seqrec.lstm_sequence_backward(None, None, None, w, torch.zeros(3, 4, 7), None, None)


@requires_cuda
def test_mixed_devices_rejected():
    gi, h0, c0, w, _, _ = make_params(4, 5, 3)
    with pytest.raises(RuntimeError, match="is on"):
        lstm_sequence(gi.cuda(), h0.cuda(), c0, w.cuda())
