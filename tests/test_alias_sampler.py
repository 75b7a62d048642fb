"""alias_build / alias_draw / PopularitySampler against the reference and the target distribution."""

import math

import numpy as np
import pytest
import torch
from conftest import requires_cuda
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import seqrec_ext
from seqrec_ext import PopularitySampler, alias_build, alias_draw, reference

N_DRAWS = 1_000_000
P_MIN = 1e-4  # a correct sampler fails a test with this probability (seeds are fixed, though)


def zipf_weights(n, exponent=1.1, n_zeros=0, seed=0):
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, n + 1) ** exponent
    rng.shuffle(w)
    if n_zeros:
        w[rng.choice(n, size=n_zeros, replace=False)] = 0.0
    return torch.tensor(w, dtype=torch.float64)


def chi_square_p(draws, target):
    """p-value of the draws against the target distribution; bins with expected count < 5
    pooled into one; a draw of a zero-probability item fails outright."""
    target = target.double().cpu()
    observed = torch.bincount(draws.cpu(), minlength=target.numel()).double()
    assert observed.numel() == target.numel(), "drew an id outside the table"
    assert observed[target == 0].sum() == 0, "drew an item with probability 0"
    expected = target * draws.numel()
    big = expected >= 5
    obs = torch.cat([observed[big], observed[~big].sum().reshape(1)])
    exp = torch.cat([expected[big], expected[~big].sum().reshape(1)])
    keep = exp > 0
    obs, exp = obs[keep].numpy(), exp[keep].numpy()
    exp = exp * obs.sum() / exp.sum()  # remove float rounding of the total
    return stats.chisquare(obs, exp).pvalue


def assert_table_is_exact(prob, alias, weights):
    """Each bucket's probability in [0, 1], aliases in range, and the distribution the table
    draws from equal to weights / sum up to the float32 rounding of prob."""
    n = weights.numel()
    prob, alias = prob.cpu(), alias.cpu()
    assert prob.dtype == torch.float32 and alias.dtype == torch.int64
    assert prob.shape == alias.shape == (n,)
    assert bool(((prob >= 0) & (prob <= 1)).all())
    assert bool(((alias >= 0) & (alias < n)).all())
    dist = reference.alias_distribution(prob, alias)
    target = weights.double().cpu() / weights.double().cpu().sum()
    # every bucket holding item i (its own, and each aliasing to it) rounds prob by <= 2^-24
    holders = 1 + torch.bincount(alias, weights=(prob < 1).double(), minlength=n)
    tol = holders * 2.0**-24 / n + 1e-12
    assert bool(((dist - target).abs() <= tol).all()), float(((dist - target).abs() - tol).max())
    assert bool((dist[weights.cpu() == 0] == 0).all()), "an item of weight 0 can be drawn"


# ---- the table ----

TABLE_CASES = {
    "uniform": torch.ones(1000, dtype=torch.float64),
    "single item": torch.tensor([3.0]),
    "zipf with zeros": zipf_weights(5000, n_zeros=500),
    "one dominant item": torch.cat([torch.full((999,), 1e-3), torch.tensor([1e6])]),
    "one positive among zeros": torch.cat([torch.zeros(50), torch.tensor([2.0]), torch.zeros(50)]),
    "huge ratios": torch.tensor([1e-300, 1.0, 1e300, 0.0, 5e-200], dtype=torch.float64),
    "float32 counts": torch.randint(0, 1000, (3000,), generator=torch.Generator().manual_seed(1)).float(),
}


@pytest.mark.parametrize("case", TABLE_CASES)
def test_build_equals_reference_exactly(case, device):
    w = TABLE_CASES[case].to(device)
    prob, alias = alias_build(w)
    ref_prob, ref_alias = reference.alias_build(w.cpu())
    assert prob.device == w.device and alias.device == w.device
    torch.testing.assert_close(prob.cpu(), ref_prob, rtol=0, atol=0)
    torch.testing.assert_close(alias.cpu(), ref_alias, rtol=0, atol=0)
    assert_table_is_exact(prob, alias, w)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_build_accepts_floating_dtypes(dtype):
    w = torch.tensor([0.0, 1.0, 2.0, 5.0], dtype=dtype)
    prob, alias = alias_build(w)
    assert_table_is_exact(prob, alias, w)


@st.composite
def weight_vectors(draw):
    n = draw(st.one_of(st.integers(1, 50), st.integers(51, 2000), st.integers(2001, 100_000)))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["uniform", "lognormal", "zipf", "sparse", "ties"]))
    zero_frac = draw(st.sampled_from([0.0, 0.0, 0.3, 0.99]))
    log10_span = draw(st.sampled_from([0, 3, 30, 250]))
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        w = rng.random(n)
    elif kind == "lognormal":
        w = np.exp(rng.normal(0, 1, n) * log10_span * math.log(10) / 6)
    elif kind == "zipf":
        w = 1.0 / (1.0 + rng.permutation(n)) ** 1.2
    elif kind == "sparse":
        w = rng.random(n) * (rng.random(n) < 0.01)
    else:
        w = rng.integers(1, 4, n).astype(np.float64)
    w = w * (rng.random(n) >= zero_frac)
    if not (w > 0).any():
        w[rng.integers(n)] = 1.0
    return torch.tensor(w, dtype=torch.float64)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(w=weight_vectors())
def test_table_invariants_hypothesis(w):
    prob, alias = alias_build(w)
    assert_table_is_exact(prob, alias, w)


@settings(max_examples=15, deadline=None)
@given(w=weight_vectors().filter(lambda w: w.numel() <= 5000))
def test_build_equals_reference_hypothesis(w):
    prob, alias = alias_build(w)
    ref_prob, ref_alias = reference.alias_build(w)
    assert torch.equal(prob, ref_prob) and torch.equal(alias, ref_alias)


# ---- the draws ----


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("counts_case", ["zipf with zeros", "one dominant item"])
def test_draws_fit_count_power_alpha(alpha, counts_case, device):
    counts = {
        "zipf with zeros": (zipf_weights(2000, n_zeros=200) * 1e5).round(),
        "one dominant item": torch.cat([torch.ones(1999), torch.tensor([1e5])]).double(),
    }[counts_case]
    sampler = PopularitySampler(counts, alpha=alpha, device=device)
    target = torch.where(counts > 0, counts.pow(alpha), torch.ones(()) if alpha == 0 else torch.zeros(()))
    target = target / target.sum()
    torch.testing.assert_close(sampler.probs.cpu(), target)
    torch.manual_seed(1234)
    if device.type == "cuda":
        torch.cuda.manual_seed(1234)
    draws = sampler.sample(N_DRAWS)
    assert draws.dtype == torch.int64 and draws.device.type == device.type and draws.shape == (N_DRAWS,)
    assert chi_square_p(draws, target) > P_MIN
    if alpha > 0:
        assert not bool((counts[draws.cpu()] == 0).any()), "drew an item of count 0"


def test_chi_square_catches_one_wrong_table_entry():
    """The distribution test has power: one wrong alias entry among 1000 buckets is caught."""
    w = zipf_weights(1000, exponent=0.8)
    prob, alias = alias_build(w)
    target = w / w.sum()
    torch.manual_seed(7)
    assert chi_square_p(alias_draw(prob, alias, N_DRAWS), target) > P_MIN
    bucket = int(torch.nonzero(prob < 0.5)[0])  # a bucket that mostly gives its alias
    wrong = alias.clone()
    wrong[bucket] = (alias[bucket] + 1) % w.numel()  # ... now gives another item
    torch.manual_seed(7)
    assert chi_square_p(alias_draw(prob, wrong, N_DRAWS), target) < 1e-6
    wrong_prob = prob.clone()
    wrong_prob[bucket] = min(1.0, float(prob[bucket]) + 0.3)  # one wrong coin
    torch.manual_seed(7)
    assert chi_square_p(alias_draw(wrong_prob, alias, N_DRAWS), target) < 1e-6


def test_reference_draws_fit_the_same_distribution():
    w = zipf_weights(500, n_zeros=50)
    prob, alias = alias_build(w)
    g = torch.Generator().manual_seed(3)
    assert chi_square_p(reference.alias_draw(prob, alias, 200_000, generator=g), w / w.sum()) > P_MIN


def test_draw_counts_edge_cases(device):
    prob, alias = alias_build(torch.tensor([1.0, 0.0, 2.0], device=device))
    assert alias_draw(prob, alias, 0).shape == (0,)
    one = alias_draw(prob, alias, 1)
    assert one.shape == (1,) and int(one) in (0, 2)
    odd = alias_draw(prob, alias, 12_345)
    assert odd.shape == (12_345,) and set(odd.unique().tolist()) <= {0, 2}
    p1, a1 = alias_build(torch.tensor([5.0], device=device))
    assert bool((alias_draw(p1, a1, 1000) == 0).all())


# ---- seeding and generators ----


def test_manual_seed_reproduces_and_calls_advance():
    prob, alias = alias_build(zipf_weights(10_000))
    torch.manual_seed(42)
    a1, a2 = alias_draw(prob, alias, 5000), alias_draw(prob, alias, 5000)
    torch.manual_seed(42)
    b1, b2 = alias_draw(prob, alias, 5000), alias_draw(prob, alias, 5000)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, a2)


def test_explicit_generator_semantics():
    prob, alias = alias_build(zipf_weights(10_000))
    g1, g2, g3 = (torch.Generator().manual_seed(s) for s in (5, 5, 6))
    state = torch.get_rng_state()
    x1, x2, x3 = (alias_draw(prob, alias, 20_000, generator=g) for g in (g1, g2, g3))
    assert torch.equal(torch.get_rng_state(), state), "an explicit generator must leave the default one alone"
    assert torch.equal(x1, x2)
    # independent streams: as many coincidences as two independent samples have
    p = reference.alias_distribution(prob, alias)
    expected = float((p * p).sum()) * x1.numel()
    agree = int((x1 == x3).sum())
    assert abs(agree - expected) < 6 * math.sqrt(expected) + 5


def test_draws_do_not_depend_on_thread_count():
    prob, alias = alias_build(zipf_weights(100_000))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = alias_draw(prob, alias, 300_001, generator=torch.Generator().manual_seed(9))
        torch.set_num_threads(max(2, threads))
        many = alias_draw(prob, alias, 300_001, generator=torch.Generator().manual_seed(9))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, many)


def test_philox_known_answers():
    """Philox4x32-10 test vectors (Salmon et al., SC 2011; the Random123 known-answer file)."""
    f = seqrec_ext._C._philox4x32_10
    assert f(0, 0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    ones = 2**64 - 1
    assert f(ones, ones, ones) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    assert f(0x85A308D3_243F6A88, 0x03707344_13198A2E, 0x299F31D0_A4093822) == (
        0xD16CFE09,
        0x94FDCCEB,
        0x5001E420,
        0x24126EA1,
    )


def test_philox_draws_are_a_function_of_key_and_offset():
    prob, alias = alias_build(zipf_weights(1000))
    a = torch.ops.seqrec.alias_draw_philox(prob, alias, 1001, 123, 8)
    b = torch.ops.seqrec.alias_draw_philox(prob, alias, 1001, 123, 8)
    c = torch.ops.seqrec.alias_draw_philox(prob, alias, 1001, 123, 12)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # a prefix of the draws does not depend on how many are drawn
    assert torch.equal(torch.ops.seqrec.alias_draw_philox(prob, alias, 77, 123, 8), a[:77])


@pytest.mark.parametrize(
    "key,offset,n",
    [(123, 8, 1001), (2**64 - 1, 2**64 - 4, 67), (0x9E3779B97F4A7C15, 4 * (2**32 - 3), 130)],
)
def test_draws_equal_the_published_philox_and_alias_rule(key, offset, n):
    """Draws 2k and 2k+1 are the low and high 64 bits r of Philox4x32-10 block (offset / 4, k)
    under key; each picks bucket floor(r N / 2^64) and keeps it when the 53 high bits of the
    remainder, as a fraction, are below prob[bucket]. Computed here in Python integers from the
    known-answer-tested block function: whichever vector path the CPU takes (sixteen blocks at a
    time, the scalar tail) must give these draws."""
    prob, alias = alias_build(zipf_weights(997))
    got = torch.ops.seqrec.alias_draw_philox(
        prob, alias, n, key - 2**64 if key >= 2**63 else key, offset - 2**64 if offset >= 2**63 else offset
    )
    block = seqrec_ext._C._philox4x32_10
    n_buckets, expected = prob.numel(), []
    for k in range((n + 1) // 2):
        v = block(offset // 4, k, key)
        for r in (v[0] | v[1] << 32, v[2] | v[3] << 32):
            bucket, rest = divmod(r * n_buckets, 2**64)
            coin = (rest >> 11) * 2.0**-53
            expected.append(bucket if coin < float(prob[bucket]) else int(alias[bucket]))
    assert got.tolist() == expected[:n]


# ---- PopularitySampler ----


def test_popularity_sampler_alpha_zero_is_uniform_including_zero_counts():
    counts = torch.tensor([0, 5, 0, 100, 1])
    s = PopularitySampler(counts, alpha=0.0)
    torch.testing.assert_close(s.probs, torch.full((5,), 0.2, dtype=torch.float64))
    torch.manual_seed(0)
    assert chi_square_p(s.sample(100_000), s.probs) > P_MIN


def test_popularity_sampler_log_q():
    counts = torch.tensor([0.0, 1.0, 3.0, 12.0])
    s = PopularitySampler(counts, alpha=0.5)
    expected = torch.log(counts.double().sqrt() / counts.double().sqrt().sum()).float()
    torch.testing.assert_close(s.log_q, expected)
    assert s.log_q[0] == -math.inf
    assert len(s) == 4 and "alpha=0.5" in repr(s)


def test_popularity_sampler_huge_counts_and_alpha():
    s = PopularitySampler(torch.tensor([1e300, 1e299, 0.0], dtype=torch.float64), alpha=3.0)
    torch.testing.assert_close(s.probs, torch.tensor([1 / 1.001, 0.001 / 1.001, 0.0], dtype=torch.float64))


@pytest.mark.parametrize(
    "counts, alpha, message",
    [
        ([[1, 2], [3, 4]], 1.0, "must be 1-D"),
        ([], 1.0, "empty"),
        ([1, -2, 3], 1.0, r"counts\[1\] = -2.0 is negative"),
        ([1.0, float("nan")], 1.0, r"counts\[1\] = nan is not finite"),
        ([0, 0, 0], 1.0, "all counts are zero"),
        ([1, 2], -0.5, "alpha must be finite and >= 0"),
        ([1, 2], float("inf"), "alpha must be finite and >= 0"),
        ([True, False], 1.0, "real numbers"),
    ],
)
def test_popularity_sampler_rejects_bad_input(counts, alpha, message):
    with pytest.raises(ValueError, match=message):
        PopularitySampler(torch.tensor(counts), alpha=alpha)


# ---- bad input to the ops ----


@pytest.mark.parametrize(
    "weights, error, message",
    [
        (torch.tensor([1.0, -0.5, 2.0]), ValueError, r"weights\[1\] = -0.5 is negative"),
        (torch.tensor([1.0, float("nan")]), ValueError, r"weights\[1\] = nan is not finite"),
        (torch.tensor([1.0, float("inf")]), ValueError, r"weights\[1\] = inf is not finite"),
        (torch.tensor([0.0, 0.0, 0.0]), ValueError, "all 3 weights are zero"),
        (torch.tensor([]), ValueError, "weights is empty"),
        (torch.ones(2, 3), RuntimeError, "weights must be 1-D"),
        (torch.tensor(1.0), RuntimeError, "weights must be 1-D"),
        (torch.tensor([1, 2, 3]), RuntimeError, "must be a floating-point tensor"),
    ],
)
def test_build_rejects_bad_weights(weights, error, message, device):
    with pytest.raises(error, match=message):
        alias_build(weights.to(device))
    with pytest.raises(error, match=message):
        reference.alias_build(weights)


def test_draw_rejects_bad_tables(device):
    prob, alias = alias_build(torch.tensor([1.0, 2.0, 3.0], device=device))
    with pytest.raises(ValueError, match="n must be >= 0"):
        alias_draw(prob, alias, -1)
    with pytest.raises(ValueError, match="different lengths"):
        alias_draw(prob, alias[:2], 10)
    with pytest.raises(RuntimeError, match="prob must be float32"):
        alias_draw(prob.double(), alias, 10)
    with pytest.raises(RuntimeError, match="alias must be int64"):
        alias_draw(prob, alias.int(), 10)
    with pytest.raises(RuntimeError, match="must be 1-D"):
        alias_draw(prob.reshape(1, 3), alias, 10)
    with pytest.raises(ValueError, match="the table is empty"):
        alias_draw(prob[:0], alias[:0], 10)


def test_draw_rejects_corrupt_alias_on_cpu():
    prob, alias = alias_build(torch.tensor([1.0, 2.0, 3.0, 10.0]))
    bad = alias.clone()
    bad[0] = 1000
    with pytest.raises(ValueError, match=r"alias holds entries outside \[0, 4\)"):
        alias_draw(torch.zeros(4), bad, 10_000)


@requires_cuda
def test_draw_rejects_mixed_devices():
    prob, alias = alias_build(torch.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="same device"):
        alias_draw(prob.cuda(), alias, 10)


@requires_cuda
def test_cuda_generator_must_be_on_the_table_device():
    prob, alias = alias_build(torch.tensor([1.0, 2.0], device="cuda"))
    with pytest.raises(RuntimeError):
        alias_draw(prob, alias, 10, generator=torch.Generator())


# ---- torch.library.opcheck and torch.compile ----


def test_opcheck_alias_build(device):
    torch.library.opcheck(torch.ops.seqrec.alias_build.default, (zipf_weights(300, n_zeros=10).to(device),))


def test_opcheck_alias_draw_philox(device):
    prob, alias = alias_build(zipf_weights(300).to(device))
    torch.library.opcheck(torch.ops.seqrec.alias_draw_philox.default, (prob, alias, 999, 17, 4))


def test_opcheck_alias_draw(device):
    # Random op: its outputs differ between calls, so the checks that compare two runs' values
    # (aot_dispatch) do not apply; schema, fake tensor and autograd registration do.
    prob, alias = alias_build(zipf_weights(300).to(device))
    torch.library.opcheck(
        torch.ops.seqrec.alias_draw.default,
        (prob, alias, 999),
        test_utils=("test_schema", "test_autograd_registration", "test_faketensor"),
    )


def test_sampler_inside_torch_compile():
    sampler = PopularitySampler(zipf_weights(2000, n_zeros=20) * 1000, alpha=0.75)
    scores = torch.randn(2000)

    def negatives_score(n):
        ids = sampler.sample(n)
        return ids, scores[ids] - sampler.log_q[ids]

    compiled = torch.compile(negatives_score, fullgraph=True, dynamic=False)
    torch.manual_seed(11)
    ids_c, s_c = compiled(4096)
    torch.manual_seed(11)
    ids_e, s_e = negatives_score(4096)
    assert torch.equal(ids_c, ids_e)
    torch.testing.assert_close(s_c, s_e)


# ---- CUDA against CPU (run where a GPU is visible) ----


@requires_cuda
def test_cuda_draws_equal_cpu_draws_for_the_same_key():
    prob, alias = alias_build(zipf_weights(50_000, n_zeros=100))
    for n, key, offset in [(1, 3, 0), (100_001, 2**63 + 5, 4), (2**20, 77, 400)]:
        cpu = torch.ops.seqrec.alias_draw_philox(prob, alias, n, key - 2**64 if key >= 2**63 else key, offset)
        gpu = torch.ops.seqrec.alias_draw_philox(
            prob.cuda(), alias.cuda(), n, key - 2**64 if key >= 2**63 else key, offset
        )
        assert torch.equal(cpu, gpu.cpu())


@requires_cuda
def test_cuda_generator_is_the_philox_key():
    prob, alias = alias_build(zipf_weights(5000))
    g = torch.Generator(device="cuda").manual_seed(123)
    first = alias_draw(prob.cuda(), alias.cuda(), 10_000, generator=g)
    second = alias_draw(prob.cuda(), alias.cuda(), 10_000, generator=g)
    assert torch.equal(first.cpu(), torch.ops.seqrec.alias_draw_philox(prob, alias, 10_000, 123, 0))
    assert torch.equal(second.cpu(), torch.ops.seqrec.alias_draw_philox(prob, alias, 10_000, 123, 4))
    torch.cuda.manual_seed(9)
    a = alias_draw(prob.cuda(), alias.cuda(), 1000)
    torch.cuda.manual_seed(9)
    assert torch.equal(a, alias_draw(prob.cuda(), alias.cuda(), 1000))


@requires_cuda
def test_draws_replay_from_a_cuda_graph():
    """alias_draw reads the CUDA generator's Philox state on the device, so a CUDA graph can
    capture it: every replay draws anew (the graph advances the generator's offset), from the
    target distribution."""
    weights = zipf_weights(1000, seed=7)
    prob, alias = alias_build(weights.cuda())
    torch.cuda.manual_seed(0)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        alias_draw(prob, alias, 10)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static = alias_draw(prob, alias, 100_000)
    replays = []
    for _ in range(5):
        graph.replay()
        replays.append(static.clone())
    assert not torch.equal(replays[0], replays[1])
    assert chi_square_p(torch.cat(replays), weights / weights.sum()) > P_MIN
