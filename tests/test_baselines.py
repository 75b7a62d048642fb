"""The session-based baselines (seqrec.baselines) against direct pure-Python implementations of
their definitions (docs/baselines.md): the exact score of every item after every prefix, on a
hand-made log and on random small logs (hypothesis); their evaluation against the ranks of
those scores; and the ``seqrec gru4rec baselines`` command."""

import math
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqrec.baselines import BASELINES, build_baseline, evaluate_baseline
from seqrec.baselines.prefixes import prefix_blocks
from seqrec.cli import main
from seqrec.gru4rec.data import Events, build_sessions
from seqrec.metrics import RankingMetrics, rank_counts

# ---- direct implementations: lists of training sessions (item lists), a prefix (item list) ----


def direct_pop(train, prefix, n_items):
    counts = Counter(i for s in train for i in s)
    return [float(counts[i]) for i in range(n_items)]


def direct_spop(train, prefix, n_items):
    pop = direct_pop(train, prefix, n_items)
    here = Counter(prefix)
    return [here[i] + pop[i] / (max(pop) + 1) for i in range(n_items)]


def direct_rules(train, prefix, n_items, weight):
    """sum over sessions of weight(x, y) for positions x != y with prefix[-1] at x and i at y,
    divided by the sum over all i."""
    a = prefix[-1]
    score = [0.0] * n_items
    for s in train:
        for x in range(len(s)):
            for y in range(len(s)):
                w = weight(x, y)
                if x != y and s[x] == a and w:
                    score[s[y]] += w
    total = sum(score)
    return [v / total if total > 0 else 0.0 for v in score]


def direct_ar(train, prefix, n_items):
    return direct_rules(train, prefix, n_items, lambda x, y: 1.0)


def direct_sr(train, prefix, n_items, steps=10):
    return direct_rules(train, prefix, n_items, lambda x, y: 1.0 / (y - x) if 0 < y - x <= steps else 0.0)


def direct_item_knn(train, prefix, n_items, alpha=0.5, lam=20.0):
    sets = [set(s) for s in train]
    a = prefix[-1]
    n = Counter(i for s in sets for i in s)
    out = []
    for b in range(n_items):
        both = sum(1 for s in sets if a in s and b in s)
        out.append(0.0 if b == a or both == 0 else both / (n[a] ** alpha * n[b] ** (1 - alpha) + lam))
    return out


def direct_sknn(train, prefix, n_items, last_times, k=100, sample_size=1000, weighted=False, idf=False):
    sets = [set(s) for s in train]
    # recency: the later last event first; equal times: the later session first
    recency = sorted(range(len(train)), key=lambda j: (-last_times[j], -j))
    current = set(prefix)
    candidates = [j for j in recency if sets[j] & current][:sample_size]
    n_sessions = len(train)
    support = Counter(i for s in sets for i in s)
    weight = {}
    for p, item in enumerate(prefix, start=1):
        weight[item] = p / len(prefix) if weighted else 1.0  # the latest position wins
        if weighted and idf:
            weight[item] = (p / len(prefix)) * math.log(n_sessions / support[item]) if support[item] else 0.0
    sims = []
    for j in candidates:
        shared = sets[j] & current
        if weighted:
            sims.append(sum(weight[i] for i in shared))
        else:
            sims.append(len(shared) / math.sqrt(len(current) * len(sets[j])))
    order = sorted(range(len(candidates)), key=lambda c: -sims[c])[:k]  # stable: recency among equals
    score = [0.0] * n_items
    for c in order:
        for i in sets[candidates[c]]:
            score[i] += sims[c]
    return score


# ---- the logs ----


def to_sessions(session_lists, times=None):
    rows = []
    t = 0.0
    for s, items in enumerate(session_lists):
        for item in items:
            t = t + 1.0 if times is None else times[s]
            rows.append((s, item, t))
    s, i, tt = (np.array(c) for c in zip(*rows))
    return Events(s.astype(np.int64), i.astype(np.int64), tt.astype(np.float64))


def built(session_lists, n_items, times=None):
    return build_sessions(to_sessions(session_lists, times), item_ids=np.arange(n_items))


HAND_MADE = [[0, 1, 2], [1, 2, 3, 1], [2, 0], [3, 3, 4, 0, 1], [4, 2]]
N_ITEMS = 6  # item 5 never occurs


def train_lists(sessions):
    """The built sessions back as item lists, in the built order (by first event)."""
    return [sessions.items[sessions.offsets[s] : sessions.offsets[s + 1]].tolist() for s in range(sessions.n_sessions)]


def last_times(sessions):
    return [float(sessions.times[sessions.offsets[s + 1] - 1]) for s in range(sessions.n_sessions)]


def direct(name, train, prefix, n_items, train_sessions):
    if name == "pop":
        return direct_pop(train, prefix, n_items)
    if name == "s-pop":
        return direct_spop(train, prefix, n_items)
    if name == "ar":
        return direct_ar(train, prefix, n_items)
    if name == "sr":
        return direct_sr(train, prefix, n_items)
    if name == "item-knn":
        return direct_item_knn(train, prefix, n_items)
    times = last_times(train_sessions)
    if name == "sknn":
        return direct_sknn(train, prefix, n_items, times)
    return direct_sknn(train, prefix, n_items, times, weighted=True, idf=True)


def check_all_prefixes(name, train_sessions, test_sessions, **params):
    model = build_baseline(name, **params).fit(train_sessions)
    train = train_lists(train_sessions)
    tests = train_lists(test_sessions)
    for session, length, target in prefix_blocks(test_sessions, block_rows=3):
        got = model.scores(test_sessions, session, length)
        for r in range(len(session)):
            prefix = tests[int(session[r])][: int(length[r])]
            assert int(target[r]) == tests[int(session[r])][int(length[r])]
            expected = direct(name, train, prefix, train_sessions.n_items, train_sessions)
            assert got[r].tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12), (name, prefix)


@pytest.mark.parametrize("name", list(BASELINES))
def test_scores_on_a_hand_made_log(name):
    train = built(HAND_MADE, N_ITEMS)
    test = built([[1, 2, 0, 4], [3, 1], [5, 2, 2]], N_ITEMS)
    check_all_prefixes(name, train, test)


def test_sknn_sample_and_k_pick_the_recent_and_the_similar():
    """Sessions 0-3 all share item 0; with a sample of 2 only the two most recent are
    candidates, with k = 1 only the most similar of them counts."""
    train = built([[0, 1], [0, 2], [0, 3, 4], [0, 4]], 6)
    test = built([[0, 4, 5]], 6)
    model = build_baseline("sknn", k=1, sample_size=2).fit(train)
    scores = model.scores(test, torch.tensor([0]), torch.tensor([2]))[0]  # prefix [0, 4]
    # candidates: sessions 3 ([0, 4], sim 1) and 2 ([0, 3, 4], sim 2/sqrt(6)); k = 1 keeps session 3
    assert scores.tolist() == pytest.approx([1.0, 0, 0, 0, 1.0, 0])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 6), min_size=2, max_size=6), min_size=1, max_size=8),
    st.lists(st.lists(st.integers(0, 6), min_size=2, max_size=5), min_size=1, max_size=3),
    st.sampled_from(list(BASELINES)),
)
def test_scores_on_random_logs(train_lists_, test_lists, name):
    train = built(train_lists_, 7)
    test = built(test_lists, 7)
    params = {"k": 3, "sample_size": 4} if name in ("sknn", "v-sknn") else {}
    if name == "sr":
        params = {"steps": 2}
    model = build_baseline(name, **params).fit(train)
    train_items, tests = train_lists(train), train_lists(test)
    times = last_times(train)
    for session, length, _ in prefix_blocks(test):
        got = model.scores(test, session, length)
        for r in range(len(session)):
            prefix = tests[int(session[r])][: int(length[r])]
            if name == "sr":
                expected = direct_sr(train_items, prefix, 7, steps=2)
            elif name in ("sknn", "v-sknn"):
                v = name == "v-sknn"
                expected = direct_sknn(train_items, prefix, 7, times, k=3, sample_size=4, weighted=v, idf=v)
            else:
                expected = direct(name, train_items, prefix, 7, train)
            assert got[r].tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_evaluation_ranks_the_targets_by_the_scores():
    train = built(HAND_MADE, N_ITEMS)
    test = built([[1, 2, 0, 4], [3, 1], [5, 2, 2]], N_ITEMS)
    model = build_baseline("sr").fit(train)
    got = evaluate_baseline(model, test, ks=(1, 3, 5), popularity=train.item_counts(), block_rows=2)
    expected = RankingMetrics(ks=(1, 3, 5))
    for session, length, target in prefix_blocks(test):
        expected.update_counts(*rank_counts(model.scores(test, session, length), target))
    assert got.n == expected.n == 6
    for mode, values in expected.result().items():
        assert got.result()[mode] == pytest.approx(values)
    assert got.lists is not None and 0 < got.lists.result()["Coverage@5"] <= 1


def test_leave_one_out_sequences_are_scored_on_their_last_event_only():
    test = built([[1, 2, 0, 4], [3, 1]], N_ITEMS)
    test.last_only = True
    blocks = list(prefix_blocks(test))
    assert [b[1].tolist() for b in blocks] == [[3, 1]] and [b[2].tolist() for b in blocks] == [[4, 1]]


def test_unknown_baseline_or_parameter():
    with pytest.raises(ValueError, match="unknown baseline"):
        build_baseline("gru")
    with pytest.raises(ValueError, match="sr has no parameter k"):
        build_baseline("sr", k=3)
    with pytest.raises(ValueError, match="k >= 1"):
        build_baseline("sknn", k=0)


# ---- the command line ----


def write_log(path, n_sessions=80, seed=0):
    g = np.random.default_rng(seed)
    lines = ["SessionId\tItemId\tTime"]
    t = 0.0
    for s in range(n_sessions):
        item = int(g.integers(0, 20))
        for _ in range(int(g.integers(2, 6))):
            lines.append(f"{s}\t{item}\t{t}")
            item = (item + 1) % 20
            t += 600.0
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_the_command_prints_every_baseline_and_the_saved_model_beside_them(tmp_path, capsys):
    data = write_log(tmp_path / "events.tsv")
    ckpt = tmp_path / "m.pt"
    small = ["--layers", "8", "--n-sample", "8", "--batch-size", "4", "--quiet", "--threads", "1"]
    assert main(["gru4rec", "train", "--dataset", data, "--epochs", "1", "--save", str(ckpt), *small]) == 0
    train_out = capsys.readouterr().out
    argv = ["gru4rec", "baselines", "--dataset", data, "--load", str(ckpt), "--cutoffs", "5", "20", "--threads", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in out.splitlines() if line.startswith("| ")}
    assert {"Pop", "S-Pop", "AR", "SR", "item-kNN", "SKNN", "V-SKNN"} <= set(rows)
    gru = next(v for k, v in rows.items() if k.startswith("GRU4Rec"))
    # the saved model's row: its evaluation in the conservative mode, as train printed it
    conservative = next(line for line in train_out.splitlines() if line.startswith("| conservative |"))
    header = next(line for line in train_out.splitlines() if line.startswith("| ties |"))
    by_name = dict(zip(header.split("|")[2:-1], conservative.split("|")[2:-1]))
    assert float(gru[1]) == float(by_name[" Recall@20 "]) and float(gru[3]) == float(by_name[" MRR@20 "])
    # the follow-the-successor log: SR finds it
    assert float(rows["SR"][3]) > 0.9 > float(rows["Pop"][3])  # MRR@20


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--protocol", "sampled"], "baselines rank against the whole catalogue"),
        (["--item-knn-alpha", "2"], "item-kNN needs 0 <= alpha <= 1"),
        (["--item-knn-lambda", "nan"], "lambda >= 0"),
        (["--item-knn-lambda", "inf"], "lambda >= 0"),
    ],
)
def test_command_errors(tmp_path, capsys, extra, message):
    data = write_log(tmp_path / "events.tsv")
    with pytest.raises(SystemExit) as done:
        main(["gru4rec", "baselines", "--dataset", data, *extra])
    assert done.value.code == 2 and message in capsys.readouterr().err
