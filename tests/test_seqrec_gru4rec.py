"""End to end: GRU4Rec on the fused ops learns a planted next-item rule far above popularity."""

import math

import pytest
import torch

import seqrec.gru4rec.train
from seqrec.gru4rec import GRU4Rec, GRU4RecConfig
from seqrec.gru4rec.data import Sessions
from seqrec.metrics import RankingMetrics

N_ITEMS = 200


def planted_sessions(n_sessions, seed):
    """Sessions of 2-8 events where the next item is (item * 7 + 3) % N_ITEMS 90% of the time."""
    g = torch.Generator().manual_seed(seed)
    items, offsets = [], [0]
    for _ in range(n_sessions):
        length = int(torch.randint(2, 9, (1,), generator=g))
        item = int(torch.randint(0, N_ITEMS, (1,), generator=g))
        for _ in range(length):
            items.append(item)
            item = (
                (item * 7 + 3) % N_ITEMS
                if torch.rand(1, generator=g) < 0.9
                else int(torch.randint(0, N_ITEMS, (1,), generator=g))
            )
        offsets.append(len(items))
    items = torch.tensor(items)
    import numpy as np

    return Sessions(
        items=items,
        offsets=torch.tensor(offsets),
        times=torch.arange(len(items), dtype=torch.float64),
        session_ids=np.arange(n_sessions),
        item_ids=np.arange(N_ITEMS),
    )


def popularity_metrics(train, test):
    counts = train.item_counts()
    m = RankingMetrics(ks=(20,), modes=("standard",))
    for s in range(test.n_sessions):
        a, b = int(test.offsets[s]), int(test.offsets[s + 1])
        targets = test.items[a + 1 : b]
        m.update(counts.expand(len(targets), -1), targets)
    return m.result()["standard"]


def test_learns_planted_rule():
    train, test = planted_sessions(1500, seed=0), planted_sessions(200, seed=1)
    for loss, embedding in [("bpr-max", "constrained"), ("cross-entropy", "none")]:
        cfg = GRU4RecConfig(
            hidden=32,
            loss=loss,
            elu_param=0.5 if loss == "bpr-max" else 0.0,
            n_sample=64,
            batch_size=16,
            learning_rate=0.1,
            momentum=0.2,
            embedding=embedding,
            bpreg=0.5,
            logq=1.0 if loss == "cross-entropy" else 0.0,
            seed=0,
        )
        model = GRU4Rec(N_ITEMS, cfg)
        for _ in range(3):
            stats = model.train_epoch(train)
        assert stats["loss"] == stats["loss"] and stats["events_per_s"] > 0
        metrics = model.evaluate(test, popularity=train.item_counts())
        # the fused ranking op gives the metrics of the whole score matrix, in every tie mode,
        # and the same top-k lists (coverage, popularity, Gini)
        dense = model.evaluate(test, dense=True, popularity=train.item_counts())
        assert metrics.result() == dense.result() and metrics.lists.result() == dense.lists.result()
        assert 0 < metrics.lists.result()["Coverage@20"] <= 1
        result = metrics.result()["standard"]
        pop = popularity_metrics(train, test)
        assert result["Recall@20"] > 0.8 > 3 * pop["Recall@20"], (loss, result, pop)
        assert result["MRR@20"] > 0.5, (loss, result)


def test_training_is_reproducible():
    train = planted_sessions(200, seed=3)
    cfg = GRU4RecConfig(hidden=8, n_sample=16, batch_size=8, dropout_hidden=0.2, seed=5)
    a, b = GRU4Rec(N_ITEMS, cfg), GRU4Rec(N_ITEMS, cfg)
    la, lb = a.train_epoch(train)["loss"], b.train_epoch(train)["loss"]
    assert la == lb
    assert torch.equal(a.params.out_table, b.params.out_table)


def test_train_steps_yields_each_step_and_takes_a_sampler(monkeypatch):
    """train_steps is train_epoch one step at a time, and negatives come from a given sampler,
    drawn with the model's generator, NEGATIVE_CACHE_STEPS steps' worth a call."""
    train = planted_sessions(100, seed=4)
    cfg = GRU4RecConfig(hidden=8, n_sample=5, batch_size=8, seed=2)
    a, b = GRU4Rec(N_ITEMS, cfg), GRU4Rec(N_ITEMS, cfg)
    stats = a.train_epoch(train)
    steps = list(b.train_steps(train))
    assert len(steps) == stats["steps"] and sum(e for e, _ in steps) == train.n_events - train.n_sessions
    assert abs(sum(loss for _, loss in steps) / len(steps) - stats["loss"]) < 1e-12
    assert torch.equal(a.params.out_table, b.params.out_table)

    class OnlyItemSeven:
        def __init__(self):
            self.generators, self.sizes = [], []

        def sample(self, n, generator=None):
            self.generators.append(generator)
            self.sizes.append(n)
            return torch.full((n,), 7, dtype=torch.long)

    monkeypatch.setattr(seqrec.gru4rec.train, "NEGATIVE_CACHE_STEPS", 16)  # several refills in one epoch
    sampler, c = OnlyItemSeven(), GRU4Rec(N_ITEMS, cfg)
    before = c.params.out_table.clone()
    for _ in c.train_steps(train, sampler=sampler):
        pass
    assert len(sampler.generators) == math.ceil(len(steps) / 16) > 1
    assert all(g is c.generator for g in sampler.generators)
    assert sampler.sizes == [16 * cfg.n_sample] * len(sampler.sizes)
    targets = set(train.items[1:].tolist())
    changed = set((c.params.out_table != before).any(1).nonzero().flatten().tolist())
    assert 7 in changed and changed <= targets | {7}  # output rows: only targets and the sampled item


def test_bf16_learns_the_planted_rule_like_fp32():
    """--precision bf16 (the step's large products in bfloat16, float32 parameters): the same
    accuracy as fp32 on the planted rule, within a point, and float32 parameters throughout."""
    train, test = planted_sessions(800, seed=0), planted_sessions(150, seed=1)
    results = {}
    for precision in ("fp32", "bf16"):
        cfg = GRU4RecConfig(hidden=32, n_sample=64, batch_size=16, learning_rate=0.1, momentum=0.2, bpreg=0.5)
        model = GRU4Rec(N_ITEMS, GRU4RecConfig(**{**cfg.__dict__, "precision": precision}))
        for _ in range(2):
            model.train_epoch(train)
        assert all(t.dtype == torch.float32 for t in model.parameter_tensors().values())
        results[precision] = model.evaluate(test).result()["standard"]
    assert results["bf16"]["Recall@20"] > 0.8
    assert abs(results["bf16"]["Recall@20"] - results["fp32"]["Recall@20"]) < 0.01, results
    assert abs(results["bf16"]["MRR@20"] - results["fp32"]["MRR@20"]) < 0.02, results


def test_bf16_with_stacked_layers_is_refused():
    with pytest.raises(ValueError, match="bf16 trains one GRU layer"):
        GRU4RecConfig(layers=(8,), hidden=8, precision="bf16")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        GRU4RecConfig(precision="fp16")


def test_dropout_outside_its_range_is_refused():
    for kw in (dict(dropout_embed=1.0), dict(dropout_hidden=-0.1)):
        with pytest.raises(ValueError, match=r"--dropout-p-(embed|hidden) must be a finite number >= 0 < 1"):
            GRU4RecConfig(hidden=8, **kw)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("embedding", ["constrained", "separate", "none"])
def test_fused_training_equals_the_op_by_op_path(embedding, precision):
    """train_steps' two paths — the step and its update as one op, or the step op and one
    update op per parameter — give bitwise the same model and losses over an epoch, in every
    embedding mode (dropout on both, cross-entropy with logQ and bpr-max), in both precisions."""
    train = planted_sessions(120, seed=5)
    for loss in ("bpr-max", "cross-entropy"):
        cfg = GRU4RecConfig(
            precision=precision,
            hidden=8,
            n_sample=6,
            batch_size=5,
            seed=3,
            loss=loss,
            logq=1.0,
            dropout_embed=0.2,
            dropout_hidden=0.0 if embedding == "none" else 0.1,
            momentum=0.3,
            embedding=embedding,
            embedding_size=6,
        )
        a, b = GRU4Rec(N_ITEMS, cfg), GRU4Rec(N_ITEMS, cfg)
        losses_a = [loss for _, loss in a.train_steps(train, fused=True)]
        losses_b = [loss for _, loss in b.train_steps(train, fused=False)]
        assert losses_a == losses_b
        for name in a.parameter_tensors():
            assert torch.equal(getattr(a.params, name), getattr(b.params, name)), name
            assert all(torch.equal(x, y) for x, y in zip(a.optimizer_state[name], b.optimizer_state[name])), name


@pytest.mark.parametrize("fused", [True, False])
def test_a_nan_parameter_stops_training_with_the_model_untouched(fused):
    """A NaN in the output table makes the loss NaN (it is not hidden by the fused loss's
    arithmetic): both training paths raise at the first step that scores it and leave every
    parameter and optimizer state as they were."""
    train = planted_sessions(60, seed=6)
    m = GRU4Rec(N_ITEMS, GRU4RecConfig(hidden=8, n_sample=6, batch_size=4, seed=1, momentum=0.3))
    m.params.out_table[:, 0] = float("nan")  # every item: the first step's loss
    names = tuple(m.parameter_tensors())
    before = {n: (getattr(m.params, n).clone(), *(t.clone() for t in m.optimizer_state[n])) for n in names}
    with pytest.raises(FloatingPointError, match="non-finite loss nan at step 0"):
        next(m.train_steps(train, fused=fused))
    for n in names:
        for a, b in zip((getattr(m.params, n), *m.optimizer_state[n]), before[n]):
            assert torch.equal(a.nan_to_num(), b.nan_to_num()), n


def test_a_model_with_non_finite_parameters_refuses_to_rank():
    sessions = planted_sessions(40, seed=1)
    model = GRU4Rec(N_ITEMS, GRU4RecConfig(hidden=8))
    with torch.no_grad():
        model.params.out_table[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"not finite \(out_table\)"):
        model.evaluate(sessions)
    with pytest.raises(ValueError, match="not finite"):
        model.recommend([[1, 2]], k=5)


def test_memory_is_checked_against_the_device_that_would_hold_the_model(monkeypatch):
    """A CUDA model is measured against its GPU's memory, not the host's (faked GPU of 1 GiB)."""
    from types import SimpleNamespace

    config = GRU4RecConfig(hidden=100, n_sample=0, batch_size=8)
    needed = config.memory_needed(1_000_000)[
        "the parameters and their optimizer state (--hidden, --layers, --embedding-size)"
    ]
    assert 2**30 < needed < 2**33  # ~1.2 GiB: more than the fake GPU, far less than this machine
    config.check_memory(1_000_000, "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=2**30))
    with pytest.raises(ValueError, match=r"this GPU \(cuda:0\) has 1.0 GiB of memory"):
        config.check_memory(1_000_000, "cuda:0")
