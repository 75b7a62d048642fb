"""Session-parallel batching on a hand-worked example, and the ranking metrics with their tie
modes on hand-built score matrices."""

import math

import pytest
import torch

from seqrec.gru4rec.batching import session_parallel_batches
from seqrec.metrics import RankingMetrics, target_ranks


def test_session_parallel_batches_hand_worked():
    # sessions A = [1, 2, 3], B = [4, 5], C = [6, 7, 8, 9], D = [10, 11]; two slots
    items = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    offsets = torch.tensor([0, 3, 5, 9, 11])
    steps = [
        (b.inputs.tolist(), b.targets.tolist(), b.reset.tolist(), b.keep.tolist())
        for b in session_parallel_batches(items, offsets, 2)
    ]
    assert steps == [
        ([1, 4], [2, 5], [True, True], [0, 1]),  # A and B start
        ([2, 6], [3, 7], [False, True], [0, 1]),  # B ended: C takes its slot
        ([10, 7], [11, 8], [True, False], [0, 1]),  # A ended: D takes its slot
        ([8], [9], [False], [1]),  # D ended, none left: the batch shrinks
    ]


def test_batches_cover_every_event_pair_once():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 7, (23,), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    items = torch.arange(int(offsets[-1]))
    pairs = [
        (i, t)
        for b in session_parallel_batches(items, offsets, 5)
        for i, t in zip(b.inputs.tolist(), b.targets.tolist())
    ]
    expected = [(p, p + 1) for s in range(23) for p in range(int(offsets[s]), int(offsets[s + 1]) - 1)]
    assert sorted(pairs) == expected


def test_batches_across_the_bookkeeping_chunks():
    """The batches are built 256 steps at a time: over several chunks (one slot, 300 sessions of
    3 events = 600 steps; two slots with sessions ending mid-chunk) every step follows its
    session in order, resets exactly at session starts, and every row continues its own slot."""
    offsets = torch.arange(0, 901, 3)
    items = torch.arange(900)
    steps = list(session_parallel_batches(items, offsets, 1))
    assert [(b.inputs.item(), b.targets.item(), b.reset.item()) for b in steps] == [
        (p, p + 1, p % 3 == 0) for s in range(300) for p in (3 * s, 3 * s + 1)
    ]
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(2, 400, (9,), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    items = torch.arange(int(offsets[-1]))
    prev = None
    for b in session_parallel_batches(items, offsets, 2):
        assert torch.equal(b.targets, b.inputs + 1)
        if prev is not None:  # a continuing row's input is its previous target
            cont = ~b.reset
            assert torch.equal(b.inputs[cont], prev.targets[b.keep[cont]])
        assert all(int(i) in offsets.tolist() for i in b.inputs[b.reset])
        prev = b


def reference_batches(offsets, batch_size):
    """Session-parallel batching written as the rule reads, one step and one row at a time:
    (positions, reset, keep) of each step."""
    offsets = offsets.tolist()
    n = len(offsets) - 1
    slots = list(range(min(batch_size, n)))
    pos, reset, keep = [offsets[s] for s in slots], [True] * len(slots), list(range(len(slots)))
    next_session = len(slots)
    while slots:
        yield pos, reset, keep
        new = []
        for row, (s, p) in enumerate(zip(slots, pos)):
            if p + 2 < offsets[s + 1]:  # another target in this session
                new.append((s, p + 1, False, row))
            elif next_session < n:  # the next unused session takes the slot
                new.append((next_session, offsets[next_session], True, row))
                next_session += 1
        slots, pos, reset, keep = (list(x) for x in zip(*new)) if new else ([], [], [], [])


@pytest.mark.parametrize("batch_size", [1, 3, 32, 500])
def test_batches_equal_the_rule_step_by_step(batch_size):
    """The vectorised schedule (slots from a heap of free steps, a table of positions, chunks of
    256 steps) gives exactly the batches of the rule run one step at a time: sessions of many
    lengths, a batch larger than the number of sessions, the batch shrinking at the end."""
    g = torch.Generator().manual_seed(batch_size)
    for n_sessions in (1, 7, 400):
        lengths = torch.randint(2, 30, (n_sessions,), generator=g)
        lengths[lengths > 25] = 2  # many sessions of length 2, as in real logs
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
        items = torch.randperm(int(offsets[-1]), generator=g)
        ours = [
            (b.inputs.tolist(), b.targets.tolist(), b.reset.tolist(), b.keep.tolist())
            for b in session_parallel_batches(items, offsets, batch_size)
        ]
        ref = [
            ([int(items[p]) for p in pos], [int(items[p + 1]) for p in pos], reset, keep)
            for pos, reset, keep in reference_batches(offsets, batch_size)
        ]
        assert ours == ref


def test_carry_is_keep_then_reset():
    """Batch.carry(h) is h[keep] with new sessions' rows zeroed, at every step of a pass whose
    batch shrinks at the end (it skips the gather while no row has left)."""
    g = torch.Generator().manual_seed(2)
    lengths = torch.randint(2, 9, (40,), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    h = torch.randn(6, 3, generator=g)
    sizes = set()
    for b in session_parallel_batches(torch.arange(int(offsets[-1])), offsets, 6):
        expected = h[b.keep].clone()
        expected[b.reset] = 0
        h = b.carry(h.clone())
        assert torch.equal(h, expected)
        sizes.add(len(b.inputs))
        h = h + torch.randn(h.shape, generator=g)  # the step's new state
    assert len(sizes) > 1


def test_batching_rejects_short_sessions():
    with pytest.raises(ValueError, match="at least 2 events"):
        list(session_parallel_batches(torch.tensor([1, 2, 3]), torch.tensor([0, 1, 3]), 2))


def test_ranks_in_three_tie_modes():
    scores = torch.tensor(
        [
            [0.5, 0.9, 0.5, 0.1, 0.5],  # target 0: one above, two others tied
            [1.0, 0.2, 0.3, 0.4, 0.0],
        ]
    )  # target 0: best, no ties
    targets = torch.tensor([0, 0])
    assert target_ranks(scores, targets, "standard").tolist() == [2.0, 1.0]
    assert target_ranks(scores, targets, "conservative").tolist() == [4.0, 1.0]
    assert target_ranks(scores, targets, "median").tolist() == [3.0, 1.0]


def test_recall_and_mrr():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.1, 0.5], [1.0, 0.2, 0.3, 0.4, 0.0], [0.0, 0.1, 0.2, 0.3, 0.4]])
    targets = torch.tensor([0, 0, 0])  # standard ranks 2, 1, 5
    m = RankingMetrics(ks=(1, 2, 5), modes=("standard", "conservative"))
    m.update(scores[:2], targets[:2])
    m.update(scores[2:], targets[2:])
    res = m.result()
    assert res["standard"]["Recall@1"] == pytest.approx(1 / 3)
    assert res["standard"]["Recall@2"] == pytest.approx(2 / 3)
    assert res["standard"]["MRR@2"] == pytest.approx((1 / 2 + 1) / 3)
    assert res["standard"]["MRR@5"] == pytest.approx((1 / 2 + 1 + 1 / 5) / 3)
    assert res["conservative"]["Recall@2"] == pytest.approx(1 / 3)  # ranks 4, 1, 5
    assert "| standard |" in m.table() and "3 predictions" in m.table()
    with pytest.raises(ValueError, match="unknown tie mode"):
        RankingMetrics(modes=("optimistic",))


def test_a_nan_score_ranks_last_in_every_tie_mode():
    scores = torch.tensor([[0.5, float("nan"), 0.2, 0.9], [float("nan"), 0.1, 0.1, 0.3]])
    targets = torch.tensor([1, 0])  # both targets score NaN
    for mode in ("standard", "conservative", "median"):
        assert target_ranks(scores, targets, mode).tolist() == [4.0, 4.0], mode
    # an item scoring NaN is above no target: 0.5 ranks 2nd behind 0.9 only
    assert target_ranks(scores, torch.tensor([0, 3]), "conservative").tolist() == [2.0, 1.0]
    metrics = RankingMetrics(ks=(1, 4))
    metrics.update(scores, targets)
    result = metrics.result()["standard"]
    assert {k: result[k] for k in ("Recall@1", "Recall@4", "MRR@1", "MRR@4")} == {
        "Recall@1": 0.0,
        "Recall@4": 1.0,
        "MRR@1": 0.0,
        "MRR@4": 0.25,
    }
    assert result["NDCG@4"] == pytest.approx(1 / math.log2(5))


def test_ndcg_is_the_textbook_formula_in_every_tie_mode():
    """One relevant item: NDCG@k = 1 / log2(1 + rank) within the cut-off, else 0 (the ideal DCG
    is 1); ties move the rank as the tie mode says, the median rank may be fractional."""
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.1], [0.2, 0.8, 0.8, 0.8], [0.1, 0.2, 0.3, 0.4]])
    targets = torch.tensor([1, 1, 0])  # ranks: standard 2 / 1 / 4, conservative 3 / 3 / 4
    m = RankingMetrics(ks=(1, 3), modes=("standard", "conservative", "median"))
    m.update(scores, targets)
    expected = {"standard": (2, 1, 4), "conservative": (3, 3, 4), "median": (2.5, 2, 4)}
    for mode, ranks in expected.items():
        for k in (1, 3):
            want = sum(1 / math.log2(1 + r) if r <= k else 0.0 for r in ranks) / 3
            assert m.value("ndcg", k, mode) == pytest.approx(want), (mode, k)


def test_list_metrics_against_numpy_on_hand_made_lists():
    import numpy as np

    from seqrec.metrics import ListMetrics

    popularity = torch.tensor([10.0, 5.0, 1.0, 0.0, 2.0])
    lists = torch.tensor([[0, 1, 2], [0, 1, -1], [0, 4, 1]])  # -1: a list shorter than k
    m = ListMetrics(popularity, ks=(1, 3))
    m.update(lists[:2])
    m.update(lists[2:])
    res = m.result()
    for k in (1, 3):
        head = lists[:, :k].numpy()
        head = head[head >= 0]
        counts = np.bincount(head, minlength=5).astype(float)
        assert res[f"Coverage@{k}"] == pytest.approx((counts > 0).mean())
        assert res[f"Popularity@{k}"] == pytest.approx(popularity.numpy()[head].mean())
        c = np.sort(counts)
        i = np.arange(1, 6)
        assert res[f"Gini@{k}"] == pytest.approx(((2 * i - 5 - 1) * c).sum() / (5 * c.sum()))
    assert res["Coverage@1"] == 0.2 and res["Gini@1"] == pytest.approx(0.8)  # one item takes every list
    even = ListMetrics(None, ks=(1,), n_items=3)
    even.update(torch.tensor([[0], [1], [2]]))
    assert even.result() == {"Coverage@1": 1.0, "Gini@1": 0.0}
