"""``seqrec gru4rec prepare``: the published preprocessing steps on hand-made events (repeats,
the filters repeated until stable, the time split with its edge cases), each raw format read
from a tiny file written in it, and the command end to end into files that ``train`` reads."""

import numpy as np
import pytest

from seqrec.cli import main
from seqrec.gru4rec.data import Events, read_tsv
from seqrec.gru4rec.recipes import RECIPES, drop_repeats, filter_until_stable, split_by_time


def events(rows):
    s, i, t = (np.array(c) for c in zip(*rows))
    return Events(s.astype(np.int64), i.astype(np.int64), t.astype(np.float64))


def sessions_of(e: Events):
    """{session: [items in time order]}"""
    order = np.lexsort((e.times, e.session_ids))
    out = {}
    for s, i in zip(e.session_ids[order], e.item_ids[order]):
        out.setdefault(int(s), []).append(int(i))
    return out


def test_a_repeat_of_the_previous_item_is_dropped_not_a_later_one():
    e = drop_repeats(events([(1, 5, 0), (1, 5, 1), (1, 6, 2), (1, 5, 3), (2, 5, 0), (2, 5, 9)]))
    assert sessions_of(e) == {1: [5, 6, 5], 2: [5]}


def test_the_filters_repeat_until_nothing_changes():
    rows = []
    for s in range(1, 6):  # s1..s5: [1, 2]
        rows += [(s, 1, 10 * s), (s, 2, 10 * s + 1)]
    for s in range(6, 10):  # s6..s9: [1, 3]
        rows += [(s, 1, 10 * s), (s, 3, 10 * s + 1)]
    rows += [(11, 3, 110), (11, 4, 111)]  # item 4 once: its removal cascades
    # round 1: item 4 (1 event); round 2: session 11 (1 event left); round 3: item 3 (4 events
    # left); round 4: sessions 6-9 (1 event each); then items 1 and 2 have 5 events: stable
    assert sessions_of(filter_until_stable(events(rows))) == {s: [1, 2] for s in range(1, 6)}


def test_the_time_split_by_session_start():
    day = 86400.0
    rows = [
        (1, 1, 0.0),
        (1, 2, 10.0),  # session 1: training
        (2, 1, 2 * day - 100),
        (2, 3, 2 * day + 100),  # session 2 spans tsplit = 2 days: its first event trains, alone -> dropped
        (3, 1, 2 * day - 50),
        (3, 2, 2 * day - 40),  # session 3: training
        (4, 2, 2 * day + 10),
        (4, 9, 2 * day + 20),
        (4, 1, 2 * day + 30),  # session 4 starts after tsplit: test; item 9 is not in training
        (5, 9, 2 * day + 40),
        (5, 1, 3 * day),  # session 5: test, but left with one event -> dropped; the last time: 3 days
    ]
    train, test = split_by_time(events(rows), day)
    assert sessions_of(train) == {1: [1, 2], 3: [1, 2]}
    assert sessions_of(test) == {4: [2, 1]}


def write(path, text):
    path.write_text(text)
    return str(path)


def iso(seconds):
    return str(np.datetime64(int(seconds * 1000), "ms"))


def run_prepare(tmp_path, recipe, files, capsys):
    out = tmp_path / "out"
    assert main(["gru4rec", "prepare", "--recipe", recipe, *files, "--out", str(out)]) == 0
    capsys.readouterr()
    return {part: read_tsv(out / f"{recipe}_{part}.tsv") for part in ("train_full", "test", "train_tr", "train_valid")}


def many_sessions(n, start, day_of):
    """(session, item, seconds) rows: n sessions of items (k, k+1, k+2) mod 6, a minute apart,
    on the day day_of(s)."""
    rows = []
    for s in range(n):
        for j in range(3):
            rows.append((s, (s + j) % 6, start + day_of(s) * 86400.0 + 3600.0 * (s % 20) + 60.0 * j))
    return rows


def test_yoochoose_reads_iso_times_and_splits_off_the_last_day(tmp_path, capsys):
    rows = many_sessions(60, 1.4e9, lambda s: 0 if s < 40 else 3)  # the last 20 sessions: 3 days later
    text = "\n".join(f"{s + 1},{iso(t)}Z,{i + 100},0" for s, i, t in rows) + "\n"
    parts = run_prepare(tmp_path, "yoochoose", [write(tmp_path / "clicks.dat", text)], capsys)
    assert len(np.unique(parts["test"].session_ids)) == 20 and len(np.unique(parts["train_full"].session_ids)) == 40
    assert set(parts["test"].item_ids.tolist()) <= set(range(100, 106))
    first = parts["train_full"]
    assert first.times.min() == pytest.approx(1.4e9)  # ISO time read to the second (ms kept)


def test_retailrocket_keeps_views_and_cuts_visitors_at_an_hour(tmp_path, capsys):
    lines = ["timestamp,visitorid,event,itemid,transactionid"]
    for s, i, t in many_sessions(60, 1.43e9, lambda s: 0 if s < 40 else 9):
        visitor = s % 7  # several sessions per visitor, hours apart
        lines.append(f"{int(t * 1000)},{visitor},view,{i},")
        lines.append(f"{int(t * 1000) + 5},{visitor},addtocart,{i},")  # not a view: ignored
    parts = run_prepare(tmp_path, "retailrocket", [write(tmp_path / "events.csv", "\n".join(lines) + "\n")], capsys)
    full, test = parts["train_full"], parts["test"]
    assert len(full) + len(test) == 60 * 3  # every view, no cart event, and no repeat
    assert len(np.unique(test.session_ids)) == 20  # 7-day test span: the sessions 9 days later


def test_rees46_reads_utc_times_views_and_user_sessions(tmp_path, capsys):
    header = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
    lines = [header]
    for s, i, t in many_sessions(60, 1.57e9, lambda s: 0 if s < 40 else 2):
        stamp = str(np.datetime64(int(t), "s")).replace("T", " ") + " UTC"
        lines.append(f"{stamp},view,{i + 1000},1,a.b,x,1.0,{s % 5},abc")
        lines.append(f"{stamp},purchase,{i + 1000},1,a.b,x,1.0,{s % 5},abc")
    october = write(tmp_path / "2019-Oct.csv", "\n".join(lines[:61]) + "\n")
    november = write(tmp_path / "2019-Nov.csv", "\n".join([header] + lines[61:]) + "\n")
    parts = run_prepare(tmp_path, "rees46", [october, november], capsys)
    assert len(parts["train_full"]) + len(parts["test"]) == 60 * 3
    assert len(np.unique(parts["test"].session_ids)) == 20


def test_coveo_numbers_hashed_ids_and_keeps_details(tmp_path, capsys):
    lines = ["session_id_hash,event_type,product_action,product_sku_hash,server_timestamp_epoch_ms,hashed_url"]
    for s, i, t in many_sessions(60, 1.55e9, lambda s: 0 if s < 40 else 2):
        lines.append(f"sess{s:x}abc,event_product,detail,sku{i}ff,{int(t * 1000)},u")
        lines.append(f"sess{s:x}abc,pageview,,,{int(t * 1000) + 1},u")  # not a detail: ignored
    parts = run_prepare(tmp_path, "coveo", [write(tmp_path / "browsing_train.csv", "\n".join(lines) + "\n")], capsys)
    assert len(parts["train_full"]) + len(parts["test"]) == 60 * 3
    assert set(parts["train_full"].item_ids.tolist()) == set(range(6))  # hashes numbered by first appearance


def test_diginetica_times_are_the_first_day_plus_the_elapsed_time(tmp_path, capsys):
    lines = ["sessionId;userId;itemId;timeframe;eventdate"]
    for s, i, _ in many_sessions(60, 0, lambda s: 0):
        day = "2016-01-01" if s < 40 else "2016-01-20"
        lines.append(f"{s + 1};NA;{i + 7};{1000 * (60 * (s % 3) + 17 * i)};{day}")
    lines.append("1;NA;7;999999999;2016-01-02")  # a view logged on a later day: still its session's first day
    parts = run_prepare(tmp_path, "diginetica", [write(tmp_path / "views.csv", "\n".join(lines) + "\n")], capsys)
    test = parts["test"]
    assert len(np.unique(test.session_ids)) == 20
    day0 = float(np.datetime64("2016-01-01", "D").astype(np.int64) * 86400)
    full = parts["train_full"]
    assert full.times.min() >= day0 and full.times.max() == pytest.approx(day0 + 999999.999)


def test_the_prepared_files_train_and_evaluate(tmp_path, capsys):
    rows = many_sessions(200, 1.4e9, lambda s: 0 if s < 150 else 3)
    text = "\n".join(f"{s + 1},{iso(t)}Z,{i},0" for s, i, t in rows) + "\n"
    parts_dir = tmp_path / "out"
    assert (
        main(["gru4rec", "prepare", "--recipe", "rsc15", write(tmp_path / "c.dat", text), "--out", str(parts_dir)]) == 0
    )
    small = ["--layers", "8", "--n-sample", "4", "--batch-size", "4", "--epochs", "1", "--quiet", "--threads", "1"]
    train, test = parts_dir / "rsc15_train_full.tsv", parts_dir / "rsc15_test.tsv"
    assert main(["gru4rec", "train", "--dataset", str(train), "--test", str(test), *small]) == 0
    assert "| conservative |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "recipe, files, message",
    [
        ("coveo", ["a.csv", "b.csv"], "coveo reads browsing_train.csv: got 2 file(s)"),
        ("retailrocket", ["missing.csv"], "missing.csv: not a file"),
        ("yoochoose", ["bad.dat"], "a time that is not ISO 8601"),
        ("retailrocket", ["short.csv"], "short.csv:2: expected at least 4 fields, got 2"),
    ],
)
def test_prepare_errors(tmp_path, capsys, monkeypatch, recipe, files, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("x\n")
    (tmp_path / "b.csv").write_text("x\n")
    (tmp_path / "bad.dat").write_text("1,yesterday,5,0\n")
    (tmp_path / "short.csv").write_text("timestamp,visitorid,event,itemid,transactionid\n1,2\n")
    with pytest.raises(SystemExit) as done:
        main(["gru4rec", "prepare", "--recipe", recipe, *files, "--out", "out"])
    assert done.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing made for a failed run


def test_every_recipe_is_documented():
    assert set(RECIPES) == {"rsc15", "yoochoose", "retailrocket", "rees46", "coveo", "diginetica"}
