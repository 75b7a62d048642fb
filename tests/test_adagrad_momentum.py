"""The Adagrad-with-momentum ops against the reference: values after several steps, duplicate
rows, momentum, untouched rows, the dense variant, opcheck and bad input."""

import pytest
import torch

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
