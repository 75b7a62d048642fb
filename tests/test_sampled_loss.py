"""sampled_ranking_loss against the reference written from the formulas: values and
gradients, gradcheck, opcheck, torch.compile, hypothesis, extreme scores, determinism, memory
that does not grow with B x M, and bad input."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import requires_cuda
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqrec_ext import logq_correction, reference, sampled_ranking_loss

LOSSES = ["bpr-max", "top1-max", "cross-entropy", "bpr", "top1"]


def make_inputs(B, S, H, *, dtype=torch.float64, device="cpu", seed=0, scale=1.0, n_items=None, bias=True):
    g = torch.Generator().manual_seed(seed)
    M = B + S
    h = (torch.randn(B, H, generator=g, dtype=torch.float64) * scale).to(device, dtype).requires_grad_()
    W = (torch.randn(M, H, generator=g, dtype=torch.float64) * scale / H**0.5).to(device, dtype).requires_grad_()
    b = (torch.randn(M, generator=g, dtype=torch.float64) * 0.1).to(device, dtype).requires_grad_() if bias else None
    items = torch.randint(0, n_items or 10 * M, (M,), generator=g).to(device)
    return h, W, b, items


def loss_kwargs(loss, items, M, device, dtype, *, mask, elu, seed=0):
    g = torch.Generator().manual_seed(seed + 1)
    lq = (torch.rand(M, generator=g, dtype=torch.float64) * 3).to(device, dtype) if loss == "cross-entropy" else None
    return dict(
        loss=loss,
        bpreg=0.9 if loss == "bpr-max" else 0.0,
        elu_param=elu,
        logq_correction=lq,
        col_items=items if mask else None,
    )


def check_against_reference(h, W, b, kw, reduction, rtol, atol):
    params = [p for p in (h, W, b) if p is not None]
    out = sampled_ranking_loss(h, W, b, reduction=reduction, **kw)
    ref = reference.sampled_ranking_loss(h, W, b, reduction=reduction, **kw)
    torch.testing.assert_close(out, ref, rtol=rtol, atol=atol)
    cot = torch.randn_like(out)
    for a, r in zip(torch.autograd.grad(out, params, cot), torch.autograd.grad(ref, params, cot)):
        torch.testing.assert_close(a, r, rtol=rtol, atol=atol)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("elu", [0.0, 0.5])
@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_equals_reference(loss, elu, mask, reduction, device):
    h, W, b, items = make_inputs(7, 30, 9, device=device, n_items=12)  # repeated items: hits exist
    kw = loss_kwargs(loss, items, W.shape[0], device, torch.float64, mask=mask, elu=elu)
    check_against_reference(h, W, b, kw, reduction, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("loss", LOSSES)
def test_equals_reference_float32_many_tiles(loss, device):
    # M large enough for several column tiles (tile = 2^18 / B columns)
    h, W, b, items = make_inputs(64, 20_000, 16, dtype=torch.float32, device=device)
    kw = loss_kwargs(loss, items, W.shape[0], device, torch.float32, mask=True, elu=0.0)
    check_against_reference(h, W, b, kw, "mean", rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("loss", LOSSES)
def test_gradcheck(loss):
    h, W, b, items = make_inputs(3, 5, 4, n_items=4)
    kw = loss_kwargs(loss, items, W.shape[0], "cpu", torch.float64, mask=True, elu=0.3)
    assert torch.autograd.gradcheck(lambda h, W, b: sampled_ranking_loss(h, W, b, **kw), (h, W, b))
    assert torch.autograd.gradcheck(lambda h, W, b: sampled_ranking_loss(h, W, b, reduction="none", **kw), (h, W, b))


def test_without_bias_and_single_column():
    h, W, _, _ = make_inputs(1, 0, 3, bias=False)
    for loss in LOSSES:
        out = sampled_ranking_loss(h, W, loss=loss)
        ref = reference.sampled_ranking_loss(h, W, loss=loss)
        torch.testing.assert_close(out, ref)
        assert torch.isfinite(out)
        grads = torch.autograd.grad(out, (h, W))
        assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("scale", [30.0, 1e4])
def test_extreme_scores_stay_finite(loss, scale):
    h, W, b, items = make_inputs(8, 40, 4, dtype=torch.float32)
    with torch.no_grad():
        W.mul_(scale / W.abs().max())
        h.div_(h.abs().max())
    out = sampled_ranking_loss(h, W, b, loss=loss, bpreg=0.5 if loss == "bpr-max" else 0.0)
    grads = torch.autograd.grad(out, (h, W, b))
    assert torch.isfinite(out) and all(torch.isfinite(g).all() for g in grads)
    if scale <= 30:  # where the float32 reference is still accurate, agree with it
        ref = reference.sampled_ranking_loss(
            h.double(), W.double(), b.double(), loss=loss, bpreg=0.5 if loss == "bpr-max" else 0.0
        )
        torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("loss", LOSSES)
def test_mean_divides_by_the_normalizer(loss):
    """GRU4Rec's trainer divides the summed loss by its configured batch size, also when fewer
    rows are left: reduction "mean" with a normaliser, values and gradients (float64 gradcheck)
    against the reference; a bad normaliser is refused."""
    h, W, b, items = make_inputs(5, 13, 4, dtype=torch.float64)
    kw = dict(loss=loss, bpreg=0.5 if loss == "bpr-max" else 0.0, elu_param=0.5)
    for normalizer in (None, 8.0, 240.0):
        out = sampled_ranking_loss(h, W, b, normalizer=normalizer, **kw)
        ref = reference.sampled_ranking_loss(h, W, b, normalizer=normalizer, **kw)
        torch.testing.assert_close(out, ref)
        summed = sampled_ranking_loss(h, W, b, reduction="sum", **kw)
        torch.testing.assert_close(out, summed / (normalizer or 5))
    assert torch.autograd.gradcheck(lambda h, W, b: sampled_ranking_loss(h, W, b, normalizer=32.0, **kw), (h, W, b))
    for bad in (0.0, -2.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="normalizer must be finite and > 0"):
            sampled_ranking_loss(h, W, b, normalizer=bad, **kw)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("where", ["h", "out_rows"])
def test_nan_input_gives_a_nan_loss(loss, where):
    """A NaN score must not vanish into a finite loss (the CPU passes' own exp and log once made
    a finite number of NaN): a diverged model is noticed by its loss. Also through the fused
    GRU4Rec step."""
    h, W, b, _ = make_inputs(4, 12, 3, dtype=torch.float32)
    with torch.no_grad():
        (h if where == "h" else W)[1, 0] = float("nan")
    kw = dict(loss=loss, bpreg=0.5 if loss == "bpr-max" else 0.0, elu_param=0.5)
    assert torch.isnan(sampled_ranking_loss(h, W, b, **kw))
    if where == "h":
        gi, h0 = torch.zeros(4, 9), torch.zeros(4, 3)
        mask = torch.ones(4, 3)
        mask[1, 0] = float("nan")
        out = torch.ops.seqrec.gru4rec_step(
            gi,
            h0,
            torch.zeros(9, 3),
            torch.zeros(9),
            None,
            W.detach(),
            b.detach(),
            None,
            mask,
            loss,
            kw["bpreg"],
            0.5,
            False,
        )
        assert torch.isnan(out[0])


@pytest.mark.parametrize("flush", [False, True])
def test_subnormal_mode_of_the_caller_is_restored(flush):
    """The CPU passes flush subnormals to zero while they run (csrc/cpu/flush_denormals.h);
    the thread's own mode must be what it was before, either way. Scores far apart make the
    exponentials underflow: the values still agree with the reference."""
    subnormal = torch.tensor([1e-30], dtype=torch.float32) * 1e-10  # 1e-40: subnormal in float32
    try:
        assert torch.set_flush_denormal(flush)
        h, W, b, items = make_inputs(6, 50, 4, dtype=torch.float32, scale=20.0)
        out = sampled_ranking_loss(h, W, b, loss="bpr-max", bpreg=0.5, elu_param=0.5)
        out.backward()
        assert ((subnormal * 1.0).item() == 0.0) == flush
        ref = reference.sampled_ranking_loss(
            h.double(), W.double(), b.double(), loss="bpr-max", bpreg=0.5, elu_param=0.5
        )
        torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)
    finally:
        torch.set_flush_denormal(False)


@st.composite
def loss_cases(draw):
    B = draw(st.integers(1, 12))
    S = draw(st.integers(0, 40))
    H = draw(st.sampled_from([1, 3, 8]))
    scale = draw(st.sampled_from([0.01, 1.0, 5.0]))
    n_items = draw(st.sampled_from([2, 5, 1000]))  # few items: ties and accidental hits
    return (
        B,
        S,
        H,
        scale,
        n_items,
        draw(st.sampled_from(LOSSES)),
        draw(st.booleans()),
        draw(st.sampled_from([0.0, 1.0])),
        draw(st.integers(0, 1000)),
        draw(st.booleans()),
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=loss_cases())
def test_hypothesis(case):
    B, S, H, scale, n_items, loss, mask, elu, seed, tie = case
    h, W, b, items = make_inputs(B, S, H, seed=seed, scale=scale, n_items=n_items)
    if tie:  # identical columns: tied scores
        with torch.no_grad():
            W[B:] = W[0]
            b[B:] = b[0]
    kw = loss_kwargs(loss, items, B + S, "cpu", torch.float64, mask=mask, elu=elu, seed=seed)
    check_against_reference(h, W, b, kw, "mean", rtol=1e-8, atol=1e-10)


def test_deterministic_mode_bitwise_equal():
    h, W, b, items = make_inputs(32, 3000, 16, dtype=torch.float32)
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(2):
            out = sampled_ranking_loss(h, W, b, loss="bpr-max", bpreg=1.0)
            runs.append((out, *torch.autograd.grad(out, (h, W, b))))
    finally:
        torch.use_deterministic_algorithms(prev)
    for a, c in zip(*runs):
        assert torch.equal(a, c)


def test_logq_correction_helper():
    counts = torch.tensor([1.0, 10.0, 100.0, 5.0])
    got = logq_correction(counts.log(), torch.tensor([1, 2]), torch.tensor([3, 0, 2]), logq=0.5, alpha=0.4)
    expected = torch.cat([0.5 * counts[[1, 2]].log(), 0.5 * 0.4 * counts[[3, 0, 2]].log()])
    torch.testing.assert_close(got, expected)


# ---- memory: the fused op's extra memory does not grow with B x M ----

# VmHWM (the peak resident set of this process image; unlike ru_maxrss it does not carry the
# parent's peak across fork + exec)
_PEAK_SCRIPT = r"""
import json, sys, torch, seqrec_ext
from seqrec_ext import reference
B, M, H, which = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
h = torch.randn(B, H, requires_grad=True)
W = (torch.randn(M, H) / H**0.5).requires_grad_()
fn = seqrec_ext.sampled_ranking_loss if which == "fused" else reference.sampled_ranking_loss
W.grad = torch.zeros_like(W); h.grad = torch.zeros_like(h)  # gradient buffers exist for both
def hwm_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
before = hwm_kib()
fn(h, W, loss="bpr-max", bpreg=1.0).backward()
print(json.dumps({"peak_extra_bytes": (hwm_kib() - before) * 1024}))
"""


def peak_extra_bytes(B, M, H, which):
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(B), str(M), str(H), which],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_bytes"]


def test_peak_memory_does_not_grow_with_batch_times_columns():
    B, M, H = 128, 65_536, 16
    score_matrix = B * M * 4
    fused = peak_extra_bytes(B, M, H, "fused")
    ref = peak_extra_bytes(B, M, H, "reference")
    # the reference materialises several B x M tensors: the measurement sees them
    assert ref >= 2 * score_matrix, (ref, score_matrix)
    # the fused op: the gradient of out_rows (M x H) plus one score tile, never B x M
    assert fused <= M * H * 4 * 2 + 8 * 2**20, (fused, score_matrix)
    assert fused <= ref / 4


# ---- registration ----


@pytest.mark.parametrize("loss", LOSSES)
def test_opcheck(loss, device):
    h, W, b, items = make_inputs(4, 9, 5, dtype=torch.float32, device=device, n_items=6)
    kw = loss_kwargs(loss, items, W.shape[0], device, torch.float32, mask=True, elu=0.5)
    args = (h, W, b, kw["logq_correction"], kw["col_items"], loss, kw["bpreg"], kw["elu_param"])
    for reduction in ("mean", "none"):
        torch.library.opcheck(torch.ops.seqrec.sampled_ranking_loss.default, args + (reduction,))
    torch.library.opcheck(torch.ops.seqrec.sampled_ranking_loss.default, args + ("mean", 32.0))
    _, stats = torch.ops.seqrec.sampled_ranking_loss(*args, "mean")
    torch.library.opcheck(
        torch.ops.seqrec.sampled_ranking_loss_backward.default,
        (
            torch.tensor(1.5, device=device),
            h.detach(),
            W.detach(),
            b.detach(),
            kw["logq_correction"],
            kw["col_items"],
            stats,
            loss,
            kw["bpreg"],
            kw["elu_param"],
            "mean",
        ),
    )


@pytest.mark.parametrize("loss", ["bpr-max", "cross-entropy"])
def test_torch_compile_forward_and_backward(loss):
    h, W, b, items = make_inputs(6, 25, 8, dtype=torch.float32)

    def step(h, W, b):
        hidden = torch.tanh(h)
        return sampled_ranking_loss(
            hidden,
            W,
            b,
            loss=loss,
            bpreg=1.0 if loss == "bpr-max" else 0.0,
            elu_param=0.5 if loss == "bpr-max" else 0.0,
        )

    eager = step(h, W, b)
    eager_grads = torch.autograd.grad(eager, (h, W, b))
    compiled = torch.compile(step, fullgraph=True)
    out = compiled(h, W, b)
    grads = torch.autograd.grad(out, (h, W, b))
    torch.testing.assert_close(out, eager)
    for a, c in zip(grads, eager_grads):
        torch.testing.assert_close(a, c)


# ---- bad input ----


def test_bad_inputs():
    h, W, b, items = make_inputs(4, 6, 3, dtype=torch.float32)
    cases = [
        (lambda: sampled_ranking_loss(h, W[:3]), ValueError, "M >= B"),
        (lambda: sampled_ranking_loss(h, W[:, :2]), RuntimeError, r"out_rows must be \(M, H\)"),
        (lambda: sampled_ranking_loss(h[0], W), RuntimeError, r"h must be \(B, H\)"),
        (lambda: sampled_ranking_loss(h, W.double()), RuntimeError, "out_rows has dtype"),
        (lambda: sampled_ranking_loss(h, W, b[:-1]), RuntimeError, r"out_bias must be \(M,\)"),
        (lambda: sampled_ranking_loss(h, W, loss="hinge"), ValueError, "unknown loss 'hinge'"),
        (lambda: sampled_ranking_loss(h, W, reduction="max"), ValueError, "unknown reduction 'max'"),
        (lambda: sampled_ranking_loss(h, W, bpreg=-1.0), ValueError, "bpreg must be finite and >= 0"),
        (lambda: sampled_ranking_loss(h, W, elu_param=-1.0), ValueError, "elu_param must be finite and >= 0"),
        (
            lambda: sampled_ranking_loss(h, W, loss="bpr-max", logq_correction=torch.zeros(10)),
            ValueError,
            "logq_correction applies to the cross-entropy loss only",
        ),
        (lambda: sampled_ranking_loss(h, W, col_items=items.int()), RuntimeError, "col_items must be int64"),
        (lambda: sampled_ranking_loss(h, W, col_items=items[:3]), RuntimeError, r"col_items must be \(M,\)"),
        (
            lambda: sampled_ranking_loss(h.int(), W.int()),
            RuntimeError,
            "expected float16, bfloat16, float32 or float64",
        ),
    ]
    for fn, error, message in cases:
        with pytest.raises(error, match=message):
            fn()


@requires_cuda
def test_mixed_devices_rejected():
    h, W, b, _ = make_inputs(4, 6, 3, dtype=torch.float32)
    with pytest.raises(RuntimeError, match="is on"):
        sampled_ranking_loss(h.cuda(), W)
