"""What the tests of the recurrent sequence ops (gru_sequence, lstm_sequence) share: random
resets and lengths, a hypothesis strategy over shapes and every kind of mask, gradients of
optional inputs, and the low-precision check against a float32 truth."""

import torch
from hypothesis import strategies as st


def random_masks(T, B, seed, reset_p=0.3):
    """reset (T, B) bool with probability reset_p, lengths (B,) int64 uniform in [0, T]."""
    g = torch.Generator().manual_seed(seed)
    reset = torch.rand(T, B, generator=g) < reset_p
    lengths = torch.randint(0, T + 1, (B,), generator=g)
    return reset, lengths


@st.composite
def sequence_cases(draw):
    """(T, B, H, reset, lengths, seed): T in [0, 8] (0 included), hidden sizes around the vector
    widths, resets none / random / everywhere, lengths none / random / all zero / all T."""
    T = draw(st.integers(0, 8))
    B = draw(st.integers(1, 9))
    H = draw(st.sampled_from([1, 2, 7, 16, 33]))
    reset_mode = draw(st.sampled_from(["none", "random", "all"]))
    lengths_mode = draw(st.sampled_from(["none", "random", "zero", "full"]))
    seed = draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    reset = {"none": None, "random": torch.rand(T, B, generator=g) < 0.4, "all": torch.ones(T, B, dtype=torch.bool)}[
        reset_mode
    ]
    lengths = {
        "none": None,
        "random": torch.randint(0, T + 1, (B,), generator=g),
        "zero": torch.zeros(B, dtype=torch.long),
        "full": torch.full((B,), T),
    }[lengths_mode]
    return T, B, H, reset, lengths, seed


def grads(outputs, inputs, cotangents):
    """The gradients of the inputs that are not None (None for an input the outputs do not use)."""
    inputs = [x for x in inputs if x is not None]
    return torch.autograd.grad(outputs, inputs, cotangents, allow_unused=True)


def assert_within_reference_error(op, reference_op, params32, dtype, **options):
    """The op on inputs in a low precision dtype is no worse than the reference in that dtype,
    against the reference in float32 on the same rounded inputs: the first output and every
    gradient."""
    low = [p.to(dtype).requires_grad_() for p in params32]
    truth = [p.detach().to(dtype).float().requires_grad_() for p in params32]
    out = op(*low, **options)[0]
    ref_out = reference_op(*low, **options)[0]
    true_out = reference_op(*truth, **options)[0]

    def err(x):
        return (x.float() - true_out).abs().max().item()

    assert out.dtype == dtype
    assert err(out) <= 1.25 * err(ref_out) + 1e-3
    cot = torch.randn_like(true_out)
    g_ours = grads(out, low, cot.to(dtype))
    g_ref = grads(ref_out, low, cot.to(dtype))
    g_true = grads(true_out, truth, cot)
    for a, b, t in zip(g_ours, g_ref, g_true):
        assert a.dtype == dtype
        scale = t.abs().max().item() + 1e-6
        assert (a.float() - t).abs().max().item() <= 1.25 * (b.float() - t).abs().max().item() + 2e-2 * scale
