"""Evaluation protocols: user logs cut into sessions at a gap, the leave-one-out split of user
sequences (RecBole's rule, checked against a direct implementation of it), evaluation of each
sequence's last event only, sampled ranking (negatives outside the sequence, the counts as the
full ranking counts them), and the command line's options and errors."""

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqrec.cli import main
from seqrec.gru4rec import GRU4Rec, GRU4RecConfig
from seqrec.gru4rec.data import Events, Sessions, build_sessions
from seqrec.gru4rec.protocols import (
    eval_negatives,
    leave_one_out,
    sampled_negatives,
    sampled_rank_counts,
    sessionize_users,
)
from seqrec.metrics import RankingMetrics, rank_counts


def events(rows):
    """Events from (user, item, time) rows, in the given order."""
    users, items, times = (np.array(col) for col in zip(*rows))
    return Events(users.astype(np.int64), items.astype(np.int64), times.astype(np.float64), users.astype(np.int64))


def sequences(sessions: Sessions):
    """{session id: [original item ids]} of built sessions."""
    out = {}
    for s in range(sessions.n_sessions):
        dense = sessions.items[sessions.offsets[s] : sessions.offsets[s + 1]].numpy()
        out[int(sessions.session_ids[s])] = sessions.item_ids[dense].tolist()
    return out


# ---- user logs into sessions ----


def test_sessionize_cuts_a_user_s_events_at_gaps_of_at_least_the_gap():
    log = events([(1, 10, 0), (1, 11, 100), (1, 12, 3700), (2, 10, 50), (1, 13, 3699 + 3700), (2, 11, 3649)])
    cut = sessionize_users(log, 3600.0)
    assert cut.item_ids.tolist() == log.item_ids.tolist()  # the events in the data's order
    order = np.lexsort((cut.times, cut.session_ids))
    by_session = {}
    for s, i, u in zip(cut.session_ids[order], cut.item_ids[order], cut.user_ids[order]):
        by_session.setdefault(int(s), []).append((int(u), int(i)))
    # user 1: 0, 100 | 3700 (3600 after 100) | 7399 (3699 after) ; user 2: 50, 3649 (3599 apart)
    assert list(by_session.values()) == [[(1, 10), (1, 11)], [(1, 12)], [(1, 13)], [(2, 10), (2, 11)]]


def test_sessionize_needs_users_and_a_positive_gap():
    log = events([(1, 10, 0)])
    with pytest.raises(ValueError, match="> 0"):
        sessionize_users(log, 0.0)
    with pytest.raises(ValueError, match="needs the events' users"):
        sessionize_users(Events(log.session_ids, log.item_ids, log.times), 60.0)


# ---- leave-one-out ----


def test_leave_one_out_on_a_hand_made_log():
    rows = [
        (7, 1, 5.0),  # user 7: 1 event -> training only (no session of length 2 though)
        (3, 4, 2.0),
        (3, 5, 1.0),  # user 3: 5 (t1), 4 (t2) -> train [5], test [5, 4]
        (9, 1, 1.0),
        (9, 2, 2.0),
        (9, 3, 2.0),  # a tie with item 2: the data's order keeps 2 before 3
        (9, 6, 3.0),
        (9, 7, 4.0),  # user 9: 1 2 3 6 7 -> train [1 2 3], valid [1 2 3 6], test [1 2 3 6 7]
    ]
    train, valid, test = leave_one_out(events(rows))
    assert train.item_ids.tolist() == [1, 2, 3, 4, 5, 6, 7]  # every item of the data
    assert sequences(train) == {9: [1, 2, 3]}  # user 3's one training event is no session; user 7 neither
    assert sequences(valid) == {9: [1, 2, 3, 6]}
    assert sequences(test) == {3: [5, 4], 9: [1, 2, 3, 6, 7]}
    assert valid.last_only and test.last_only and not train.last_only
    assert test.n_predictions == 2 and valid.n_predictions == 1


def recbole_rule(rows):
    """RecBole's leave-one-out, written from its definition: the events ordered by time (a
    stable sort: ties in the data's order), grouped by user; a user with n events holds out
    min(2, n - 1), the last for test and the one before it (when there are two) for
    validation. Returns {user: (training items, validation item or None, test item or None)}."""
    order = sorted(range(len(rows)), key=lambda i: rows[i][2])  # Python's sort is stable
    by_user = {}
    for i in order:
        by_user.setdefault(rows[i][0], []).append(rows[i][1])
    out = {}
    for user, items in by_user.items():
        k = min(2, len(items) - 1)
        head, held = items[: len(items) - k], items[len(items) - k :]
        out[user] = (head, held[0] if k == 2 else None, held[-1] if k >= 1 else None)
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 8), st.integers(0, 6).map(float)),
        min_size=1,
        max_size=40,
    )
)
def test_leave_one_out_is_recbole_s_rule(rows):
    expected = recbole_rule(rows)
    if all(test is None for _, _, test in expected.values()):
        with pytest.raises(ValueError):
            leave_one_out(events(rows))
        return
    try:
        train, valid, test = leave_one_out(events(rows))
    except ValueError as err:  # no user has 2 training events: no training session
        assert "no session with at least 2 events" in str(err)
        assert all(len(head) < 2 for head, _, _ in expected.values())
        return
    got_train, got_test = sequences(train), sequences(test)
    got_valid = sequences(valid) if valid is not None else {}
    for user, (head, valid_item, test_item) in expected.items():
        assert got_train.get(user, head if len(head) < 2 else None) == head
        if valid_item is not None:
            assert got_valid[user] == head + [valid_item]
        else:
            assert user not in got_valid
        if test_item is not None:
            assert got_test[user][-1] == test_item
            assert got_test[user][:-1] == head + ([valid_item] if valid_item is not None else [])
        else:
            assert user not in got_test


def test_leave_one_out_with_a_model_s_catalogue_drops_other_items_first():
    rows = [(1, 1, 0.0), (1, 2, 1.0), (1, 3, 2.0), (1, 99, 3.0), (1, 4, 4.0)]
    train, valid, test = leave_one_out(events(rows), item_ids=np.array([1, 2, 3, 4, 5]))
    assert sequences(test) == {1: [1, 2, 3, 4]} and sequences(valid) == {1: [1, 2, 3]}
    assert sequences(train) == {1: [1, 2]} and train.item_ids.tolist() == [1, 2, 3, 4, 5]


# ---- evaluating each sequence's last event ----


def small_model(n_items, seed=0):
    return GRU4Rec(n_items, GRU4RecConfig(layers=(), hidden=8, n_sample=0, batch_size=2, seed=seed))


def random_sessions(n_sessions, n_items, seed, last_only):
    g = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        for t in range(int(g.integers(2, 9))):
            rows.append((s, int(g.integers(0, n_items)), float(t)))
    log = events(rows)
    sessions = build_sessions(Events(log.session_ids, log.item_ids, log.times), item_ids=np.arange(n_items))
    sessions.last_only = last_only
    return sessions


def last_targets_reference(model, sessions):
    """Each session's hidden state run step by step over all but its last event, the last event
    ranked against every item's dense score: (greater, equal) per session."""
    greater, equal = [], []
    p = model.params
    for s in range(sessions.n_sessions):
        items = sessions.items[sessions.offsets[s] : sessions.offsets[s + 1]]
        state = None
        for item in items[:-1]:
            x, state = model.step(item.view(1), state)
        scores = x @ p.out_table.t() + p.out_bias
        g, e = rank_counts(scores, items[-1].view(1))
        greater.append(int(g))
        equal.append(int(e))
    return torch.tensor(greater), torch.tensor(equal)


def test_last_only_evaluation_ranks_each_sequence_s_last_event():
    model = small_model(30)
    sessions = random_sessions(25, 30, seed=1, last_only=True)
    greater, equal = last_targets_reference(model, sessions)
    expected = RankingMetrics(ks=(1, 5, 10))
    expected.update_counts(greater, equal)
    got = model.evaluate(sessions, batch_size=7, ks=(1, 5, 10), lists=False)
    assert got.n == sessions.n_sessions
    for mode, values in expected.result().items():
        assert got.result()[mode] == pytest.approx(values)


# ---- sampled ranking ----


def test_sampled_negatives_are_distinct_avoid_the_sequence_and_follow_the_popularity():
    sessions = random_sessions(40, 60, seed=2, last_only=True)
    rows = torch.arange(sessions.n_sessions)
    g = torch.Generator().manual_seed(0)
    drawn = sampled_negatives(sessions, rows, "uniform", 45, g)
    assert drawn.shape == (40, 45)
    for r in range(40):
        seen = set(sessions.items[sessions.offsets[r] : sessions.offsets[r + 1]].tolist())
        assert not seen & set(drawn[r].tolist()) and len(set(drawn[r].tolist())) == 45
    popularity = torch.zeros(60)
    popularity[[3, 4]] = torch.tensor([1.0, 3.0])  # only items 3 and 4 can be drawn
    items_of = [set(sessions.items[sessions.offsets[r] : sessions.offsets[r + 1]].tolist()) for r in range(40)]
    keep = torch.tensor([r for r in range(40) if not {3, 4} & items_of[r]])
    drawn = sampled_negatives(sessions, keep.repeat(200), "popularity", 1, g, popularity)
    share = (drawn == 4).double().mean().item()
    assert set(drawn.unique().tolist()) == {3, 4} and share == pytest.approx(0.75, abs=0.03)


def test_more_negatives_than_a_sequence_leaves_to_draw_is_refused():
    sessions = random_sessions(5, 12, seed=3, last_only=True)
    rows = torch.arange(5)
    longest = max(len(set(sessions.items[sessions.offsets[r] : sessions.offsets[r + 1]].tolist())) for r in range(5))
    with pytest.raises(ValueError, match="cannot be drawn outside a sequence that leaves"):
        sampled_negatives(sessions, rows, "uniform", 12 - longest + 1, torch.Generator())
    assert sampled_negatives(sessions, rows, "uniform", 12 - longest, torch.Generator()).shape == (5, 12 - longest)


def test_sampled_negatives_refuse_when_nothing_can_be_drawn():
    sessions = random_sessions(3, 4, seed=3, last_only=True)
    popularity = torch.zeros(4)
    first = int(sessions.items[0])
    popularity[first] = 1.0  # the only drawable item is in the first session
    with pytest.raises(ValueError, match="cannot be drawn"):
        sampled_negatives(sessions, torch.tensor([0]), "popularity", 1, torch.Generator(), popularity)


def test_sampled_rank_counts_are_the_full_ranking_s_counts_of_the_candidates():
    g = torch.Generator().manual_seed(4)
    scores = torch.randint(0, 4, (200, 11), generator=g).double()  # many ties
    scores[5, 0] = float("nan")
    scores[6, 3] = float("nan")
    greater, equal = sampled_rank_counts(scores)
    ref_greater, ref_equal = rank_counts(scores, torch.zeros(200, dtype=torch.long))
    assert torch.equal(greater, ref_greater) and torch.equal(equal, ref_equal)


def test_sampled_evaluation_ranks_the_target_among_its_drawn_negatives():
    model = small_model(40, seed=3)
    sessions = random_sessions(30, 40, seed=5, last_only=True)
    got = model.evaluate(sessions, ks=(1, 5, 10), negatives=("uniform", 20), batch_size=8)
    # the same draws, in the order evaluate draws them (the model's seed, blocks of its rows)
    g = torch.Generator().manual_seed(model.config.seed)
    expected = RankingMetrics(ks=(1, 5, 10))
    p = model.params
    for x, targets, rows in model.prefix_outputs(sessions, 8, with_sessions=True):
        drawn = sampled_negatives(sessions, rows, "uniform", 20, g)
        for r in range(len(rows)):
            candidates = [int(targets[r])] + drawn[r].tolist()
            scores = torch.stack([x[r] @ p.out_table[c] + p.out_bias[c] for c in candidates])
            above = int((scores[1:] > scores[0]).sum())
            tied = int((scores[1:] == scores[0]).sum())
            expected.update_counts(torch.tensor([above]), torch.tensor([tied]))
    for mode, values in expected.result().items():
        assert got.result()[mode] == pytest.approx(values)


@pytest.mark.parametrize("text, expected", [("uniform:100", ("uniform", 100)), ("Popularity:5", ("popularity", 5))])
def test_eval_negatives_accepts(text, expected):
    assert eval_negatives(text) == expected


@pytest.mark.parametrize("text", ["uniform", "uniform:0", "random:100", "popularity:-1", "uniform:x", ":100"])
def test_eval_negatives_refuses(text):
    with pytest.raises(Exception, match="expected uniform:N or popularity:N"):
        eval_negatives(text)


# ---- the command line ----


def write_user_log(path, n_users=60, seed=0):
    g = np.random.default_rng(seed)
    lines = ["UserId\tItemId\tTime"]
    for u in range(n_users):
        t = float(g.integers(0, 10_000))
        item = int(g.integers(0, 25))
        for _ in range(int(g.integers(3, 15))):
            lines.append(f"{u}\t{item}\t{t}")
            item = (item + 1) % 25 if g.random() < 0.7 else int(g.integers(0, 25))
            t += float(g.choice([60.0, 7200.0]))  # a minute or two hours apart
    path.write_text("\n".join(lines) + "\n")
    return str(path)


SMALL = ["--layers", "8", "--n-sample", "8", "--batch-size", "4", "--threads", "1", "--quiet"]


def test_a_user_log_cut_at_a_gap_trains_as_the_same_sessions_written_out(tmp_path, capsys):
    log = write_user_log(tmp_path / "users.tsv")
    lines = (tmp_path / "users.tsv").read_text().splitlines()[1:]
    rows = [tuple(float(v) for v in line.split("\t")) for line in lines]
    cut = sessionize_users(events([(int(u), int(i), t) for u, i, t in rows]), 3600.0)
    sessions = tmp_path / "sessions.tsv"
    body = [f"{s}\t{i}\t{t}" for s, i, t in zip(cut.session_ids, cut.item_ids, cut.times)]
    sessions.write_text("\n".join(["SessionId\tItemId\tTime", *body]) + "\n")
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    base = ["gru4rec", "train", "--epochs", "1", "--test-days", "0.01", *SMALL]
    assert main([*base, "--dataset", log, "--user-key", "UserId", "--session-gap", "3600", "--save", str(a)]) == 0
    out_a = capsys.readouterr().out
    assert main([*base, "--dataset", str(sessions), "--save", str(b)]) == 0
    out_b = capsys.readouterr().out
    assert out_a.splitlines()[0] == out_b.splitlines()[0]  # the same sessions and events
    from seqrec.gru4rec import load_checkpoint

    for name, tensor in load_checkpoint(a)[0].parameter_tensors().items():
        assert torch.equal(tensor, load_checkpoint(b)[0].parameter_tensors()[name]), name


def test_leave_one_out_and_sampled_on_the_command_line(tmp_path, capsys):
    log = write_user_log(tmp_path / "users.tsv")
    ckpt = tmp_path / "m.pt"
    data = ["--dataset", log, "--user-key", "UserId"]
    assert (
        main(["gru4rec", "train", *data, "--protocol", "leave-one-out", "--epochs", "2", "--save", str(ckpt), *SMALL])
        == 0
    )
    out = capsys.readouterr().out
    assert "test: the last event of 60 users (leave-one-out)" in out
    assert "validation (each user's second-to-last event): 60 sessions, 60 targets" in out
    table = out[out.index("| ties |") :].split("\n\n")[0]
    assert "\n\n60 predictions" in out
    # evaluate rebuilds the same split: the same table
    assert main(["gru4rec", "evaluate", "--load", str(ckpt), *data, "--protocol", "leave-one-out"]) == 0
    again = capsys.readouterr().out
    assert again[again.index("| ties |") :].split("\n\n")[0] == table
    # sampled: labelled, and each target among 11 items
    argv = [
        "gru4rec",
        "evaluate",
        "--load",
        str(ckpt),
        *data,
        "--protocol",
        "sampled",
        "--eval-negatives",
        "popularity:10",
    ]
    assert main([*argv, "--cutoffs", "1", "5", "11"]) == 0
    sampled = capsys.readouterr().out
    assert "SAMPLED ranking: each target against 10 popularity negatives" in sampled
    recall_11 = sampled.split("| standard |")[1].split("|")[2]
    assert float(recall_11) == 1.0  # every target is within 11 of 11 candidates


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--protocol", "leave-one-out", "--test-days", "1"], "--test-days does not go with --protocol leave-one-out"),
        (["--protocol", "leave-one-out", "--valid-days", "1"], "validates on each user's validation target"),
        (["--eval-negatives", "uniform:10"], "--eval-negatives goes with --protocol sampled"),
        (["--protocol", "leave-one-out", "--user-key", None], "leave-one-out needs the users of the events"),
        (["--session-gap", "60", "--user-key", None], "has no users (name its user column with --user-key)"),
        (["--protocol", "leave-one-out", "--session-gap", "60"], "--session-gap cuts sessions under --protocol time"),
        (["--dataset", "ml-100k", "--protocol", "leave-one-out"], "--user-key names a column of a file"),
        (["--protocol", "sampled", "--eval-negatives", "uniform:10"], "cut-off 20: a target is ranked among 11 items"),
    ],
)
def test_protocol_errors(tmp_path, capsys, extra, message):
    log = write_user_log(tmp_path / "users.tsv")
    data = ["--dataset", log, "--user-key", "UserId"]
    if None in extra:  # no --user-key: the log read as a session file
        extra = [e for e in extra if e not in ("--user-key", None)]
        data = ["--dataset", log, "--session-key", "UserId"]
    with pytest.raises(SystemExit) as done:
        main(["gru4rec", "train", *data, "--epochs", "1", *SMALL, *extra])
    assert done.value.code == 2
    assert message in capsys.readouterr().err


def test_recbole_order_ties_times_within_float32_resolution_and_keeps_the_file_order():
    from seqrec.gru4rec.protocols import recbole_time_key

    # user 1: its last two events 1 s apart at the end of a 10^8 s span, written out of time order
    rows = [(1, 10, 0.0), (1, 11, 5e7), (1, 13, 1e8 + 1), (1, 12, 1e8), (2, 20, 3.0), (2, 21, 4.0)]
    key = recbole_time_key(np.array([r[2] for r in rows]))
    assert key[2] == key[3] and key[0] == 0.0 and key[2] == 1.0
    _, valid, test = leave_one_out(events(rows))
    assert sequences(test)[1][-2:] == [12, 13]  # by the exact times
    _, valid, test = leave_one_out(events(rows), recbole_order=True)
    assert sequences(test)[1][-2:] == [13, 12] and sequences(valid)[1][-1] == 13  # tied: the file's order


RECBOLE_PYTHON = os.environ.get("SEQREC_RECBOLE_PYTHON")


@pytest.mark.skipif(
    not RECBOLE_PYTHON,
    reason="SEQREC_RECBOLE_PYTHON names a Python with RecBole 1.2.1 (a separate venv: docs/benchmarks.md)",
)
def test_leave_one_out_is_recbole_s_own_split_of_movielens_100k(tmp_path):
    """RecBole's split of ml-100k (LS valid_and_test, TO; bench/recbole_split.py run by RecBole's
    own Python) against seqrec's with --recbole-order, user by user."""
    import json
    import subprocess
    from pathlib import Path

    from seqrec.gru4rec.datasets import load_ml100k

    script = Path(__file__).resolve().parent.parent / "bench" / "recbole_split.py"
    out = tmp_path / "split.json"
    done = subprocess.run([RECBOLE_PYTHON, str(script), str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads(out.read_text())
    train, valid, test = leave_one_out(load_ml100k(), recbole_order=True)
    assert train.n_events - train.n_sessions == theirs["training_examples"]
    for ours, name in ((valid, "valid"), (test, "test")):
        got = {str(u): str(seq[-1]) for u, seq in sequences(ours).items()}
        assert got == theirs[name]
