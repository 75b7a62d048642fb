"""The full-catalogue ranking op against the reference (the whole score matrix, comparisons and
a stable sort): rank counts, top-k ids and scores, ties, exclusions, multi-tile catalogues,
edge shapes, opcheck, hypothesis, and bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqrec_ext import RankResult, rank_items, reference
from seqrec_ext.rank_items import TIE_MODES


def inputs(B, N, H, device, dtype=torch.float64, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(B, H, generator=g, dtype=dtype).to(device)
    table = torch.randn(N, H, generator=g, dtype=dtype).to(device)
    b = torch.randn(N, generator=g, dtype=dtype).to(device) if bias else None
    targets = torch.randint(0, N, (B,), generator=g).to(device)
    return h, table, b, targets


def assert_same(ours, ref):
    assert isinstance(ours, RankResult)
    for name, a, b in zip(RankResult._fields, ours, ref):
        assert torch.equal(a.cpu(), b.cpu()), name


@pytest.mark.parametrize("elu_param", [0.0, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_reference(dtype, elu_param, device):
    h, table, bias, targets = inputs(7, 3000, 16, device, dtype)
    exclude = torch.tensor([[t, 5, -1] for t in targets.tolist()], device=device)
    args = dict(targets=targets, k=25, exclude=exclude, elu_param=elu_param)
    assert_same(rank_items(h, table, bias, **args), reference.rank_items(h, table, bias, **args))


def test_many_tiles_and_rows(device):
    """B = 600 rows make tiles of 1747 items: a catalogue of 20k items is 12 tiles."""
    h, table, bias, targets = inputs(600, 20_000, 8, device, torch.float32, seed=1)
    ours = rank_items(h, table, bias, targets=targets, k=100)
    assert_same(ours, reference.rank_items(h, table, bias, targets=targets, k=100))


def test_ties_break_by_item_id_and_count_as_equal(device):
    """Items with the same row score the same: the top-k lists them in id order, and the rank
    counts them as equal (conservative rank) but not as above (standard rank). Small integers
    make every product and sum exact (a GEMM's rounding may otherwise depend on a column's place
    in its tile, and differ in the last bit from the target's own dot product)."""
    h, table, _, _ = inputs(3, 5000, 4, device, seed=2)
    h, table = (h * 4).round(), (table * 4).round()
    table[100:4000] = table[7]  # 3901 items tied with item 7, across tiles
    targets = torch.tensor([7, 2500, 4999], device=device)
    ours = rank_items(h, table, targets=targets, k=300)
    assert_same(ours, reference.rank_items(h, table, targets=targets, k=300))
    assert int(ours.equal[0]) >= 3900 and int(ours.equal[1]) >= 3900  # (and chance ties among small integers)
    for mode in TIE_MODES:
        ranks = ours.ranks(mode)
        assert ranks.dtype == torch.float64 and ranks.shape == (3,)
    assert torch.equal(ours.ranks("conservative") - ours.ranks("standard"), ours.equal.double())


def test_elu_saturation_ties(device):
    """ELU maps every very negative score to exactly -alpha: ties that the raw scores lack."""
    h, table, bias, targets = inputs(4, 2000, 8, device, seed=3)
    table = table * 20
    args = dict(targets=targets, k=10, elu_param=1.0)
    ours = rank_items(h, table, bias, **args)
    assert_same(ours, reference.rank_items(h, table, bias, **args))
    assert int(ours.equal.max()) > 100


def test_exclusions_and_short_catalogues(device):
    """Excluded items never appear (repeats, padding, ids of another tile); where fewer than k
    items remain the slots are id -1 / score -inf; the ranks ignore exclusions."""
    h, table, bias, targets = inputs(2, 6, 3, device, seed=4)
    exclude = torch.tensor([[0, 1, 1, 2, 3, -1], [-1, -1, -1, -1, -1, -1]], device=device)
    ours = rank_items(h, table, bias, targets=targets, k=6, exclude=exclude)
    assert_same(ours, reference.rank_items(h, table, bias, targets=targets, k=6, exclude=exclude))
    assert set(ours.top_ids[0, :2].tolist()) == {4, 5} and ours.top_ids[0, 2:].tolist() == [-1] * 4
    assert torch.isinf(ours.top_scores[0, 2:]).all() and sorted(ours.top_ids[1].tolist()) == list(range(6))
    plain = rank_items(h, table, bias, targets=targets)
    assert torch.equal(plain.greater, ours.greater) and plain.top_ids.shape == (2, 0)


def test_nan_and_inf_scores_never_rank(device):
    h, table, bias, targets = inputs(2, 50, 4, device, seed=5)
    bias[3], bias[4] = float("nan"), float("-inf")
    ours = rank_items(h, table, bias, k=50)
    assert_same(ours, reference.rank_items(h, table, bias, k=50))
    assert 3 not in ours.top_ids.tolist()[0] and 4 not in ours.top_ids.tolist()[0]
    assert ours.top_ids[:, -2:].eq(-1).all()


def test_a_nan_ranks_last_in_every_tie_mode(device):
    """A NaN target score: every other item ranks above it (rank N in every tie mode), across
    tiles; a NaN item score is above no target. As the reference and the dense metrics say."""
    from seqrec.metrics import RankingMetrics

    N = 3000  # more than one CPU tile for a few rows
    h, table, bias, targets = inputs(6, N, 4, device, seed=7)
    bias[targets[0]] = float("nan")  # row 0's target scores NaN
    bias[targets[1] + 1 if targets[1] + 1 < N else 0] = float("nan")  # row 1: another item does
    h[2] = float("nan")  # row 2: every score NaN
    ours = rank_items(h, table, bias, targets=targets)
    assert_same(ours, reference.rank_items(h, table, bias, targets=targets))
    for mode in ("standard", "conservative", "median"):
        ranks = ours.ranks(mode)
        assert ranks[0] == N and ranks[2] == N, mode
        assert ranks[1] < N
    dense, fused = RankingMetrics(ks=(1, 20)), RankingMetrics(ks=(1, 20))
    dense.update(h @ table.t() + bias, targets)
    fused.update_counts(ours.greater, ours.equal)
    assert dense.result() == fused.result()


def test_edge_shapes(device):
    h, table, bias, targets = inputs(0, 10, 4, device)
    out = rank_items(h, table, bias, targets=targets, k=3)
    assert out.top_ids.shape == (0, 3) and out.greater.shape == (0,)
    h, table, bias, _ = inputs(2, 10, 4, device)
    out = rank_items(h, table[:0], None, k=0)
    assert out.top_ids.shape == (2, 0) and out.greater.numel() == 0
    out = rank_items(h, table, bias, k=10)  # k = N: every item in order
    assert_same(out, reference.rank_items(h, table, bias, k=10))


def test_deterministic(device):
    h, table, bias, targets = inputs(40, 9000, 8, device, torch.float32, seed=6)
    first = rank_items(h, table, bias, targets=targets, k=50)
    for _ in range(2):
        assert_same(rank_items(h, table, bias, targets=targets, k=50), first)


def test_opcheck(device):
    h, table, bias, targets = inputs(3, 40, 4, device)
    exclude = torch.tensor([[1, -1], [2, 3], [-1, -1]], device=device)
    torch.library.opcheck(torch.ops.seqrec.rank_items.default, (h, table, bias, targets, exclude, 5, 0.5))
    torch.library.opcheck(torch.ops.seqrec.rank_items.default, (h, table, None, None, None, 0, 0.0))


@settings(max_examples=40, deadline=None)
@given(
    B=st.integers(1, 9),
    N=st.integers(1, 400),
    H=st.integers(1, 6),
    k=st.integers(0, 20),
    E=st.integers(0, 4),
    elu=st.sampled_from([0.0, 1.0]),
    seed=st.integers(0, 2**16),
    levels=st.sampled_from([None, 3]),
)
def test_hypothesis(B, N, H, k, E, elu, seed, levels):
    """Random shapes; with `levels`, values on a grid of few levels make ties common."""
    h, table, bias, targets = inputs(B, N, H, "cpu", seed=seed)
    if levels is not None:
        h, table, bias = h.round().clamp(-levels, levels), table.round().clamp(-levels, levels), bias.round()
    g = torch.Generator().manual_seed(seed + 1)
    exclude = torch.randint(-1, N, (B, E), generator=g)
    args = dict(targets=targets, k=min(k, N), exclude=exclude, elu_param=elu)
    assert_same(rank_items(h, table, bias, **args), reference.rank_items(h, table, bias, **args))


def test_bad_input():
    h, table, bias, targets = inputs(2, 10, 4, "cpu")
    with pytest.raises(RuntimeError, match="table .N, H."):
        rank_items(h, table[:, :3])
    with pytest.raises(RuntimeError, match="one dtype"):
        rank_items(h.float(), table)
    with pytest.raises(RuntimeError, match="float32 or float64"):
        rank_items(h.half(), table.half())
    with pytest.raises(RuntimeError, match="bias must be"):
        rank_items(h, table, bias[:5])
    with pytest.raises(RuntimeError, match="targets must be .B,."):
        rank_items(h, table, targets=targets[:1])
    with pytest.raises(RuntimeError, match=r"targets must be item ids in \[0, 10\)"):
        rank_items(h, table, targets=torch.tensor([0, 10]))
    with pytest.raises(RuntimeError, match="exclude must be"):
        rank_items(h, table, k=2, exclude=torch.zeros(2, 3, dtype=torch.int32))
    with pytest.raises(RuntimeError, match="k must lie in"):
        rank_items(h, table, k=11)
    with pytest.raises(RuntimeError, match="elu_param"):
        rank_items(h, table, elu_param=-1.0)
