"""The Adagrad-with-momentum ops against the reference: values after several steps, duplicate
rows, momentum, untouched rows, the dense variant, determinism (and CUDA against the CPU, the
same order of summation), opcheck and bad input."""

import pytest
import torch
from conftest import requires_cuda

from seqrec_ext import adagrad_momentum_, reference, sparse_adagrad_momentum_


def state(N, D, device, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    param = torch.randn(N, D, generator=g, dtype=dtype).to(device)
    return param, torch.zeros_like(param), torch.zeros_like(param)


@pytest.mark.parametrize("momentum", [0.0, 0.4, 0.9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_equals_reference_over_steps(momentum, dtype, device):
    ours = state(50, 7, device, dtype)
    ref = tuple(t.clone() for t in ours)
    g = torch.Generator().manual_seed(1)
    for step in range(5):
        indices = torch.randint(0, 50, (30,), generator=g).to(device)  # with repeats
        indices[:3] = indices[3]  # a row three more times
        grad_rows = torch.randn(30, 7, generator=g, dtype=torch.float64).to(device, dtype)
        sparse_adagrad_momentum_(*ours, indices, grad_rows, lr=0.05, momentum=momentum)
        reference.sparse_adagrad_momentum_(*ref, indices, grad_rows, lr=0.05, momentum=momentum)
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("D", [1, 33, 100])
def test_sparse_at_gru4rec_scale(D, device):
    """2080 rows per step (B + S), many repeated (popular items), widths around the vector lanes."""
    ours = state(500, D, device, torch.float32)
    ref = tuple(t.clone() for t in ours)
    g = torch.Generator().manual_seed(2)
    weights = torch.arange(1, 501, dtype=torch.float64).pow(-1.0)
    for step in range(3):
        indices = torch.multinomial(weights, 2080, replacement=True, generator=g).to(device)
        grad_rows = torch.randn(2080, D, generator=g).to(device)
        sparse_adagrad_momentum_(*ours, indices, grad_rows, lr=0.05, momentum=0.4)
        reference.sparse_adagrad_momentum_(*ref, indices, grad_rows, lr=0.05, momentum=0.4)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_sparse_large_table_and_many_rows():
    """Row ids of 22 bits and 3000 rows a call (the CPU sorts such keys by radix, 8 bits a
    pass, and short lists by comparison): every pass and both sorts against the reference."""
    g = torch.Generator().manual_seed(3)
    N = 1 << 22
    for K in (3000, 100):
        ours = state(N, 1, "cpu", torch.float64, seed=K)
        ref = tuple(t.clone() for t in ours)
        indices = torch.randint(0, N, (K,), generator=g)
        indices[K // 2 :] = indices[: K - K // 2].flip(0)  # every row at least twice, in mixed order
        indices[0] = N - 1
        grad_rows = torch.randn(K, 1, generator=g, dtype=torch.float64)
        sparse_adagrad_momentum_(*ours, indices, grad_rows, lr=0.05, momentum=0.4)
        reference.sparse_adagrad_momentum_(*ref, indices, grad_rows, lr=0.05, momentum=0.4)
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def popular_rows(K, N, D, seed):
    """K gradient rows into an N-row table, a few rows repeated hundreds of times (popular items)."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.arange(1, N + 1, dtype=torch.float64).pow(-1.2)
    return torch.multinomial(weights, K, replacement=True, generator=g), torch.randn(K, D, generator=g)


def test_sparse_update_is_deterministic(device):
    """The same call twice gives the same bits (duplicate sums in a fixed order: no atomics)."""
    indices, grad_rows = popular_rows(4000, 300, 64, seed=4)
    runs = []
    for _ in range(2):
        param, acc, mom = state(300, 64, device, torch.float32)
        for _ in range(3):
            sparse_adagrad_momentum_(param, acc, mom, indices.to(device), grad_rows.to(device), lr=0.05, momentum=0.4)
        runs.append((param, acc, mom))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@requires_cuda
def test_sparse_update_on_cuda_sums_like_the_cpu():
    """CUDA sums each repeated row's gradients in the rows' original order, as the CPU does: in
    float64 the two agree to rounding of the update itself, whatever the duplicates."""
    indices, grad_rows = popular_rows(4000, 300, 33, seed=5)
    cpu, cuda = state(300, 33, "cpu"), state(300, 33, "cuda")
    for _ in range(3):
        sparse_adagrad_momentum_(*cpu, indices, grad_rows.double(), lr=0.05, momentum=0.4)
        sparse_adagrad_momentum_(*cuda, indices.cuda(), grad_rows.double().cuda(), lr=0.05, momentum=0.4)
    for a, b in zip(cpu, cuda):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-13, atol=1e-13)


@requires_cuda
def test_sparse_update_on_cuda_rejects_bad_indices():
    param, acc, mom = state(5, 2, "cuda")
    with pytest.raises(IndexError, match=r"indices must lie in \[0, 5\)"):
        g = torch.zeros(2, 2, dtype=torch.float64, device="cuda")
        sparse_adagrad_momentum_(param, acc, mom, torch.tensor([0, 5], device="cuda"), g, lr=0.1)


def test_duplicates_are_summed_before_the_update():
    param, acc, mom = state(4, 2, "cpu")
    before = param.clone()
    sparse_adagrad_momentum_(
        param,
        acc,
        mom,
        torch.tensor([1, 1]),
        torch.tensor([[1.0, 2.0], [3.0, -2.0]], dtype=torch.float64),
        lr=0.1,
        momentum=0.0,
    )
    g = torch.tensor([4.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(acc[1], g * g)
    torch.testing.assert_close(param[1], before[1] - 0.1 * g / torch.sqrt(g * g + 1e-6))
    for row in (0, 2, 3):  # untouched rows keep everything
        assert torch.equal(param[row], before[row]) and not acc[row].any() and not mom[row].any()


def test_momentum_accumulates_by_hand():
    param, acc, mom = state(1, 1, "cpu")
    p0 = param.item()
    grads = [1.0, 2.0]
    a = m = 0.0
    p = p0
    for gv in grads:
        sparse_adagrad_momentum_(
            param, acc, mom, torch.tensor([0]), torch.tensor([[gv]], dtype=torch.float64), lr=0.5, momentum=0.4
        )
        a += gv * gv
        m = 0.4 * m - 0.5 * gv / (a + 1e-6) ** 0.5
        p += m
    assert param.item() == pytest.approx(p, rel=1e-12)
    assert mom.item() == pytest.approx(m, rel=1e-12)


@pytest.mark.parametrize("momentum", [0.0, 0.4])
def test_dense_equals_reference(momentum, device):
    ours = state(6, 5, device)
    ref = tuple(t.clone() for t in ours)
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        grad = torch.randn(6, 5, generator=g, dtype=torch.float64).to(device)
        adagrad_momentum_(*ours, grad, lr=0.1, momentum=momentum)
        reference.adagrad_momentum_(*ref, grad, lr=0.1, momentum=momentum)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_opcheck(device):
    param, acc, mom = state(10, 3, device, torch.float32)
    torch.library.opcheck(
        torch.ops.seqrec.sparse_adagrad_momentum_.default,
        (param, acc, mom, torch.tensor([1, 4, 1], device=device), torch.randn(3, 3, device=device), 0.1, 0.4, 1e-6),
    )
    torch.library.opcheck(
        torch.ops.seqrec.adagrad_momentum_.default, (param, acc, mom, torch.randn(10, 3, device=device), 0.1, 0.4, 1e-6)
    )


def test_bad_inputs():
    param, acc, mom = state(5, 2, "cpu")
    g = torch.zeros(2, 2, dtype=torch.float64)
    cases = [
        (
            lambda: sparse_adagrad_momentum_(param, acc, mom, torch.tensor([0, 5]), g, lr=0.1),
            IndexError,
            r"indices must lie in \[0, 5\)",
        ),
        (
            lambda: sparse_adagrad_momentum_(param, acc, mom, torch.tensor([0, -1]), g, lr=0.1),
            IndexError,
            r"indices must lie in \[0, 5\)",
        ),
        (
            lambda: sparse_adagrad_momentum_(param, acc, mom, torch.tensor([0, 1]), g[:, :1], lr=0.1),
            RuntimeError,
            r"grad_rows must be \(K, D\)",
        ),
        (
            lambda: sparse_adagrad_momentum_(param, acc, mom, torch.tensor([0, 1]).int(), g, lr=0.1),
            RuntimeError,
            "indices must be a 1-D int64",
        ),
        (
            lambda: sparse_adagrad_momentum_(param, acc[:2], mom, torch.tensor([0, 1]), g, lr=0.1),
            RuntimeError,
            "accumulator must have the parameter's shape",
        ),
        (
            lambda: sparse_adagrad_momentum_(param, acc, mom, torch.tensor([0, 1]), g.float(), lr=0.1),
            RuntimeError,
            "grad_rows has dtype",
        ),
        (
            lambda: sparse_adagrad_momentum_(param, acc, mom, torch.tensor([0, 1]), g, lr=-1.0),
            ValueError,
            "lr must be finite",
        ),
        (
            lambda: sparse_adagrad_momentum_(param, acc, mom, torch.tensor([0, 1]), g, lr=0.1, momentum=1.0),
            ValueError,
            r"momentum must lie in \[0, 1\)",
        ),
        (lambda: adagrad_momentum_(param, acc, mom, g, lr=0.1), RuntimeError, "grad must have the parameter's shape"),
    ]
    for fn, error, message in cases:
        with pytest.raises(error, match=message):
            fn()
