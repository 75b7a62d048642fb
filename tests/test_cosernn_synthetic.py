"""The synthetic listening log against the statistics of Hansen et al. (RecSys 2020, sections
3 and 4, and the simple baselines of Table 2), measured by `seqrec.cosernn.log_stats`."""

from __future__ import annotations

import argparse
import importlib.util

import numpy as np
import pytest

from seqrec.cosernn.listening import ListeningSessions, sessionize_listening, write_listening_tsv
from seqrec.cosernn.log_stats import PAPER, add_stats_parser, cmd_stats, listening_stats, time_context
from seqrec.cosernn.synthetic import strong_context_listening, synthetic_listening


@pytest.fixture(scope="module")
def stats():
    log, vectors = synthetic_listening(n_users=300, seed=5)
    return listening_stats(sessionize_listening(log), vectors, log=log, max_users=300)


def test_scale_devices_times_and_skips_near_the_targets(stats):
    assert stats["mobile share"] == pytest.approx(PAPER["mobile share"], abs=0.03)
    assert stats["desktop share"] == pytest.approx(PAPER["desktop share"], abs=0.02)
    assert stats["afternoon + evening share"] == pytest.approx(PAPER["afternoon + evening share"], abs=0.03)
    assert stats["users with a night session"] == pytest.approx(PAPER["users with a night session"], abs=0.08)
    assert stats["tracks per session"] == pytest.approx(PAPER["tracks per session"], abs=1.0)
    assert 0.22 < stats["skip rate (all streams)"] < 0.34  # the paper gives none; the generator's choice
    assert stats["users with a non-mobile session"] > 0.5  # "a significant amount of users"


def test_any_context_baselines_beat_same_context_as_in_the_paper(stats):
    assert stats["Last, any cxt"] > stats["Last, same cxt"] + 0.02
    assert stats["Avg, any cxt"] > stats["Avg, same cxt"]
    for name in ("Last, any cxt", "Last, same cxt", "Avg, any cxt", "Avg, same cxt"):
        assert stats[name] == pytest.approx(PAPER[name], abs=0.05), name


def test_context_source_and_day_shift_what_is_played(stats):
    # section 4.3: a session's nearest session shares its context more often than chance
    assert stats["nearest-session lift, time of day diagonal"] > 0.01
    assert stats["nearest-session lift, device diagonal"] > 0.0
    assert stats["cosine of a user's sessions, same context"] > stats["cosine of a user's sessions, different context"]
    explained = stats["variance explained (shared level means)"]
    for name in ("time of day", "stream source", "day of week"):
        assert explained[name] > 0.001, name
    # moderate: context explains far less than recency and the user's taste
    assert explained["time of day"] < 0.05
    # section 4.2: rarer contexts are more diverse
    pairs = stats["track pair cosine by device"]
    assert pairs["mobile"]["mean"] > pairs["other"]["mean"]
    # section 4.4: more skips, farther from the user's usual sessions
    for k, (r, slope, n) in stats["skip rate vs user-session cosine"].items():
        assert r < 0 and slope < 0 and n > 100, k


def test_the_log_is_in_its_steady_state(stats):
    """Training, validation and test come from one regime: consecutive sessions are as similar in
    each third of the log; the earlier start ("topics") drifts, so the measure can fail."""
    thirds = list(stats["consecutive sessions cosine by third of the log"].values())
    assert max(thirds) - min(thirds) < 0.02, thirds
    log, vectors = synthetic_listening(n_users=300, seed=5, start="topics")
    drifting = listening_stats(sessionize_listening(log), vectors, log=log, max_users=50)
    first, _, last = drifting["consecutive sessions cosine by third of the log"].values()
    assert first - last > 0.04, (first, last)


def test_the_strong_context_generator_fails_the_paper_ordering():
    """The measure can fail: the earlier generator's context outweighs recency."""
    log, vectors = strong_context_listening(n_users=150, seed=5)
    s = listening_stats(sessionize_listening(log), vectors, log=log, max_users=150)
    assert s["Last, same cxt"] > s["Last, any cxt"]
    assert s["mobile share"] < 0.5


def test_seeds_reproduce():
    a, va = synthetic_listening(n_users=40, sessions_per_user=20, days=20, seed=3)
    b, vb = synthetic_listening(n_users=40, sessions_per_user=20, days=20, seed=3)
    c, _ = synthetic_listening(n_users=40, sessions_per_user=20, days=20, seed=4)
    for name in ("users", "items", "times", "skipped", "devices", "sources"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(va, vb)
    assert not np.array_equal(a.items[:500], c.items[:500])
    assert a.devices.max() < 3 and a.sources.max() < 3  # the default ids the callers expect
    five, _ = synthetic_listening(n_users=200, sessions_per_user=20, days=20, n_devices=5, seed=3)
    assert five.devices.max() == 4


def test_baselines_against_a_direct_computation():
    """One user, four sessions in two contexts: "Last" and "Avg" (weights t') by hand."""
    vectors = np.eye(4)
    day = 86400.0 * 30
    sessions = ListeningSessions(
        users=np.zeros(4, dtype=np.int64),
        starts=np.array([day + 13 * 3600.0, day + 20 * 3600, 2 * day + 13 * 3600, 40 * day + 13 * 3600]),
        items=np.array([[0, 1], [2, -1], [1, -1], [0, 3]]),
        skipped=np.array([[False, False], [False, False], [False, False], [False, True]]),
        devices=np.zeros(4, dtype=np.int64),
        sources=np.zeros(4, dtype=np.int64),
    )
    s = listening_stats(sessions, vectors, eval_days=1.0, max_users=1)
    assert s["baseline sessions"] == 1  # the last session alone, its s+ = item 0
    assert s["Last, any cxt"] == pytest.approx(0.0)  # the session before: item 1
    assert s["Last, same cxt"] == pytest.approx(0.0)  # also item 1 (13 h, the same part of the day)
    # weights 1, 2, 3 on (e0 + e1)/sqrt(2), e2, e1; cosine to e0
    avg = np.array([1 / np.sqrt(2), 1 / np.sqrt(2) + 3, 2, 0])
    assert s["Avg, any cxt"] == pytest.approx(avg[0] / np.linalg.norm(avg))
    same = np.array([1 / np.sqrt(2), 1 / np.sqrt(2) + 3, 0, 0])  # the 20 h session is another context
    assert s["Avg, same cxt"] == pytest.approx(same[0] / np.linalg.norm(same))
    assert s["skip rate (kept streams)"] == pytest.approx(1 / 6)
    assert list(time_context(np.array([0, 1, 6, 9, 12, 17, 20, 21]))) == [5, 0, 1, 2, 3, 4, 4, 5]


def test_stats_command_on_a_tsv_log(tmp_path, capsys):
    if importlib.util.find_spec("gensim") is None:
        pytest.skip("gensim is not installed (word2vec item vectors)")
    log, _ = synthetic_listening(n_users=30, sessions_per_user=20, days=20, seed=1)
    path = tmp_path / "log.tsv"
    write_listening_tsv(log, path)
    parser = argparse.ArgumentParser()
    add_stats_parser(parser.add_subparsers(dest="command"))
    assert cmd_stats(parser.parse_args(["stats", "--dataset", str(path), "--eval-days", "5"])) == 0
    out = capsys.readouterr().out
    assert "word2vec track vectors" in out and "| mobile share |" in out and "| 0.8830 |" in out
    assert "| Last, any cxt |" in out and "nearest-session lift, time of day" in out
    with pytest.raises(SystemExit, match="planted"):
        cmd_stats(parser.parse_args(["stats", "--dataset", str(path), "--item-vectors", "planted"]))
