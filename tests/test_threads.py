"""ThreadTuner: the thread count a training loop runs with, picked by timing the loop's steps.
Steps here are sleeps whose length depends on torch's current thread count, so the tests know
which setting is faster; the trainers' fused step gives the same result at any thread count."""

import time

import pytest
import torch

from seqrec_ext.threads import ThreadTuner, candidate_threads, thread_facts


def run(tuner, seconds_per_event, steps, events=10):
    """Steps of `events` events lasting seconds_per_event[threads] each; the thread count of each step."""
    used = []
    for _ in range(steps):
        threads = torch.get_num_threads()
        used.append(threads)
        time.sleep(seconds_per_event[threads] * events)
        tuner.step(events)
    return used


def test_fixed_count_is_kept_and_restored():
    before = torch.get_num_threads()
    with ThreadTuner(2) as tuner:
        used = run(tuner, {2: 1e-5}, 12)
    assert set(used) == {2} and tuner.threads == 2 and tuner.history == []
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be >= 1"):
        ThreadTuner(0)


@pytest.mark.parametrize("fast", [1, 2])
def test_the_faster_setting_is_found(fast):
    slow = 3 - fast
    with ThreadTuner(candidates=[1, 2], first_interval=0.01, steps_between_probes=0, start=slow) as tuner:
        used = run(tuner, {fast: 1e-4, slow: 2.5e-4}, 60)
    assert tuner.history and all(choice == fast for _, choice, _ in tuner.history)
    assert used.count(fast) > 2 * used.count(slow)
    assert torch.get_num_threads() == 1  # the fixture's count, restored


def test_a_much_slower_setting_costs_one_step():
    """A candidate whose first step is far slower than the current setting is dropped at once:
    on a busy machine the extra threads cost one step per probe, not a whole window."""
    with ThreadTuner(
        candidates=[1, 2], first_interval=0.0, max_interval=0.0, steps_between_probes=0, window=0.005, start=1
    ) as tuner:
        used = run(tuner, {1: 1e-4, 2: 2e-3}, 60)
    probes = len(tuner.history)
    assert probes >= 3
    assert used.count(2) <= probes + 1  # (a probe still open at the end had one step too)
    assert all(results[2] == float("inf") for _, _, results in tuner.history)


def test_probes_grow_rarer_while_the_choice_holds():
    with ThreadTuner(
        candidates=[1, 2], first_interval=0.02, max_interval=1.0, steps_between_probes=0, start=1
    ) as tuner:
        run(tuner, {1: 1e-4, 2: 3e-4}, 150)
    # the schedule itself, not the wall-clock gaps (a busy machine stretches a probe's steps):
    # each probe that kept the choice doubled the wait for the next one
    assert len(tuner.history) >= 3 and all(choice == 1 for _, choice, _ in tuner.history)
    assert tuner._interval == pytest.approx(min(0.02 * 2 ** len(tuner.history), 1.0))


def test_probes_wait_for_enough_steps():
    """However short the interval, a probe comes only after steps_between_probes steps of the
    current setting (a loop of long steps spends a bounded share on probes)."""
    with ThreadTuner(
        candidates=[1, 2], first_interval=0.0, max_interval=0.0, steps_between_probes=20, window=0.0, start=1
    ) as tuner:
        used = run(tuner, {1: 1e-5, 2: 3e-5}, 70)
    assert 1 <= len(tuner.history) <= 4
    assert used.count(2) <= 4 * len(tuner.history) + 4


def test_a_setting_is_judged_by_its_total_time_not_its_typical_step():
    """On a busy machine most steps at more threads may be fast while a few wait long for a
    descheduled thread: the tuner compares seconds per event over a window, which the slow
    steps dominate, so the setting whose median step is faster but whose total is slower loses."""

    class Bursty:
        n = 0

        def __call__(self, threads):
            self.n += 1
            if threads == 1:
                return 1e-4
            return 2e-3 if self.n % 4 == 0 else 6e-5  # median faster, mean slower

    bursty = Bursty()
    with ThreadTuner(
        candidates=[1, 2],
        first_interval=0.0,
        max_interval=0.0,
        steps_between_probes=0,
        window=0.0,
        probe_steps=8,
        give_up_ratio=100.0,
        start=1,
    ) as tuner:
        for _ in range(200):
            time.sleep(bursty(torch.get_num_threads()) * 10)
            tuner.step(10)
    assert tuner.history and all(choice == 1 for _, choice, _ in tuner.history)


def test_the_first_count_comes_from_a_quick_probe():
    with ThreadTuner(candidates=[1, 2]) as tuner:
        assert tuner.threads in (1, 2) and torch.get_num_threads() == tuner.threads
    with ThreadTuner(candidates=[1, 2], start=2) as tuner:
        assert tuner.threads == 2


def test_candidates_and_facts():
    assert candidate_threads(1) == [1]
    assert candidate_threads()[0] == 1
    facts = thread_facts()
    assert facts["cores in affinity mask"] >= 1 and "OMP_WAIT_POLICY" in facts


@pytest.mark.threads
def test_the_fused_training_step_is_the_same_at_any_thread_count():
    """What the tuner switches between gives the same model up to float rounding: an epoch of
    GRU4Rec at one thread and at two (not bit for bit: BLAS and torch's reductions sum in
    another order with more threads; a run that must repeat bit for bit fixes --threads)."""
    import numpy as np

    from seqrec.gru4rec import GRU4Rec, GRU4RecConfig
    from seqrec.gru4rec.data import Sessions

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 9, (300,), generator=g)
    items = torch.randint(0, 500, (int(lengths.sum()),), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    train = Sessions(
        items=items,
        offsets=offsets,
        times=torch.arange(len(items), dtype=torch.float64),
        session_ids=np.arange(300),
        item_ids=np.arange(500),
    )
    models = []
    for threads in (1, 2):
        model = GRU4Rec(500, GRU4RecConfig(hidden=64, batch_size=48, n_sample=256, momentum=0.3, seed=1))
        stats = model.train_epoch(train, threads=threads)
        assert stats["threads"] == threads
        models.append(model)
    for name in models[0].parameter_tensors():
        torch.testing.assert_close(
            getattr(models[0].params, name), getattr(models[1].params, name), rtol=1e-4, atol=1e-5
        )
