"""CoSeRNN at scale: the flat per-session storage (SessionSequences) against the padded
per-user one (UserSequences) -- the same batches, training, predictions and metrics --, the
float16 session vectors' effect, length-bucketed batches, the cap on the sessions per user,
prepared files, the vectorised recent-track lists, and evaluation in chunks of users."""

import numpy as np
import pytest
import torch

from seqrec.cosernn import evaluate as ev
from seqrec.cosernn.listening import sessionize_listening
from seqrec.cosernn.model import CoSeRNN, CoSeRNNConfig, mean_cosine, model_predictor, predict
from seqrec.cosernn.sequences import (
    TEST,
    TRAIN,
    VALID,
    SessionSequences,
    UserSequences,
    batch_order,
    build_session_sequences,
    load_prepared,
    recent_tracks,
    save_prepared,
)
from seqrec.cosernn.synthetic import synthetic_listening
from seqrec.cosernn.train import train

FIELDS = ("features", "s_all", "s_pos", "s_neg", "context", "items", "skipped", "starts", "split", "lengths")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def log():
    stream_log, vectors = synthetic_listening(n_users=80, n_items=400, sessions_per_user=30, days=30, seed=5)
    ids = np.unique(stream_log.items)
    return sessionize_listening(stream_log), vectors[ids].astype(np.float32), ids


def _build(log, dtype="float32"):
    sessions, vectors, ids = log
    return build_session_sequences(
        sessions, vectors, ids, n_devices=3, n_sources=3, test_days=8, valid_days=3, vector_dtype=dtype
    )


def _counts(seqs, n):
    return ev.item_counts(seqs, n, TRAIN)


def test_flat_storage_gives_the_padded_batches(log):
    flat = _build(log)
    padded = flat.padded()
    assert isinstance(padded, UserSequences) and padded.s_pos.shape[:2] == (flat.n_users, int(flat.lengths.max()))
    index = torch.tensor([7, 0, 31, 5])
    a, b = flat.select(index), padded.select(index)
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and torch.equal(x, y), name
    assert np.array_equal(a.users, b.users)
    # the per-session columns are the padded grid's real cells, in order
    assert torch.equal(flat.features, padded.features[padded.mask])
    assert torch.equal(flat.split, padded.split[padded.mask]) and torch.equal(flat.has_pos, padded.has_pos[padded.mask])
    assert torch.equal(flat.s_pos, padded.s_pos[padded.mask])
    ids = flat.session_ids(index)
    assert torch.equal(flat.gather(flat.context, index, -1), a.context)
    assert torch.equal(ids[ids >= 0], torch.cat([torch.arange(flat.offsets[u], flat.offsets[u + 1]) for u in index]))
    # compact: the bytes a session takes
    assert flat.nbytes() / flat.n_sessions < 600
    assert _build(log, "float16").nbytes() / flat.n_sessions < 330


def _train(seqs, **kw):
    config = CoSeRNNConfig(n_devices=3, n_sources=3, hidden=16, fc=16, batch_size=16, max_epochs=1, **kw)
    return train(seqs, config, log=lambda line: None, threads=1)


@pytest.mark.parametrize("buckets", [False, True])
def test_training_is_the_same_on_either_storage(log, buckets):
    flat = _build(log)
    model_f, hist_f = _train(flat, length_buckets=buckets)
    model_p, hist_p = _train(flat.padded(), length_buckets=buckets)
    assert hist_f[0]["train_cosine"] == hist_p[0]["train_cosine"]
    assert hist_f[0]["valid_cosine"] == hist_p[0]["valid_cosine"]
    for (name, x), y in zip(model_f.state_dict().items(), model_p.state_dict().values()):
        assert torch.equal(x, y), name


def test_predictions_and_every_metric_are_the_same_on_either_storage(log):
    flat = _build(log)
    padded = flat.padded()
    torch.manual_seed(0)
    # the storage is what is compared, bit for bit, so the cell is torch.nn.LSTM (the fused op's
    # one input product over all steps rounds differently when the chunks of users differ)
    model = CoSeRNN(CoSeRNNConfig(n_devices=3, n_sources=3, hidden=16, fc=16, cell="lstm"))
    u_padded = predict(model, padded)
    u_flat = predict(model, flat, batch_size=13)
    assert u_flat.shape == (flat.n_sessions, 40)
    assert torch.equal(u_flat, u_padded[padded.mask])
    test = flat.split == TEST
    assert torch.equal(predict(model, flat, sessions=test), u_flat[test])
    vectors = torch.from_numpy(log[1])
    counts = _counts(flat, len(vectors))
    assert torch.equal(counts, _counts(padded, len(vectors)))
    # the whole (U, T, d) predictions of the padded layout against the flat one's chunked pass
    preds = ev.baseline_predictions(padded, vectors, counts)
    preds["CoSeRNN"] = u_padded
    whole = {k: ev.evaluate(p, padded, padded.split == TEST, vectors, per_session=True) for k, p in preds.items()}
    approaches = {"b": ev.baseline_predictor(vectors, counts), "CoSeRNN": model_predictor(model)}
    chunked = ev.evaluate_all(approaches, flat, test, vectors, per_session=True, chunk_users=9)
    assert set(whole) == set(chunked)
    T = padded.split.shape[1]
    user = torch.repeat_interleave(torch.arange(flat.n_users), flat.lengths)
    to_grid = user * T + (torch.arange(flat.n_sessions) - flat.offsets[user])
    for name in whole:
        for key, value in whole[name].items():
            if key == "per_session":
                for c in ev.COLUMNS:
                    assert torch.equal(value[c], chunked[name]["per_session"][c]), (name, c)
            elif key == "per_session_at":
                for c in ev.COLUMNS:
                    assert torch.equal(value[c], to_grid[chunked[name]["per_session_at"][c]]), (name, c)
            else:
                assert value == chunked[name][key] or (np.isnan(value) and np.isnan(chunked[name][key])), (name, key)
    assert whole["CoSeRNN"]["sessions"] > 100
    # the per-context breakdown reads the flat context column the same way
    a = ev.per_context_results(whole, padded, 3)
    b = ev.per_context_results(chunked, flat, 3)
    assert repr(a) == repr(b)


def test_float16_session_vectors_change_the_metrics_by_rounding_only(log):
    exact, half = _build(log), _build(log, "float16")
    assert half.s_pos.dtype == torch.float16 and torch.equal(half.has_pos, exact.has_pos)
    assert float((half.s_pos.float() - exact.s_pos).abs().max()) < 1e-3
    vectors = torch.from_numpy(log[1])
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(n_devices=3, n_sources=3, hidden=16, fc=16))
    results = []
    for seqs in (exact, half):
        approaches = {"b": ev.baseline_predictor(vectors, _counts(seqs, len(vectors))), "M": model_predictor(model)}
        results.append(ev.evaluate_all(approaches, seqs, seqs.split == TEST, vectors))
    for name in results[0]:
        for c in ev.COLUMNS:
            # the cosine moves by the rounding; a ranking by the near ties it flips (a few sessions here)
            tolerance = 1e-3 if c == "Cosine" else 0.03 if c.startswith("Rank") else 0.01
            a, b = results[0][name][c], results[1][name][c]
            assert abs(a - b) < tolerance or (np.isnan(a) and np.isnan(b)), (name, c)


def test_bucketed_batches_cover_every_user_once_and_are_reproducible():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 300, (1000,), generator=g)

    def epoch(seed):
        return list(batch_order(lengths, 16, torch.Generator().manual_seed(seed), buckets=True))

    first = epoch(1)
    users = torch.cat(first)
    assert len(users) == 1000 and torch.equal(users.sort().values, torch.arange(1000))
    assert all(len(b) == 16 for b in first[:-1]) or sum(len(b) < 16 for b in first) == 1
    assert all(torch.equal(a, b) for a, b in zip(first, epoch(1)))
    other = epoch(2)
    assert not all(torch.equal(a, b) for a, b in zip(first, other))

    # similar lengths together: far less padding than a random order
    def padding(batches):
        return sum(len(b) * int(lengths[b].max()) - int(lengths[b].sum()) for b in batches)

    plain = list(batch_order(lengths, 16, torch.Generator().manual_seed(1)))
    assert padding(first) < 0.3 * padding(plain)
    # the order of the batches and of the users within a bucket is shuffled
    assert [int(lengths[b].max()) for b in first] != sorted(int(lengths[b].max()) for b in first)
    # without a generator: by length, shortest first; without buckets: the order as before
    ordered = torch.cat(list(batch_order(lengths, 16, None, buckets=True)))
    assert bool((lengths[ordered].diff() >= 0).all())
    assert torch.equal(torch.cat(list(batch_order(lengths, 16, None))), torch.arange(1000))


def test_the_cap_keeps_the_most_recent_sessions(log):
    flat = _build(log)
    cap = 20
    assert int(flat.lengths.max()) > cap
    capped = flat.most_recent(cap)
    assert torch.equal(capped.lengths, flat.lengths.clamp(max=cap))
    for u in range(flat.n_users):
        whole = slice(int(flat.offsets[u]), int(flat.offsets[u + 1]))
        kept = slice(int(capped.offsets[u]), int(capped.offsets[u + 1]))
        n = kept.stop - kept.start
        assert torch.equal(capped.starts[kept], flat.starts[whole][-n:])
        assert torch.equal(capped.features[kept], flat.features[whole][-n:])  # the previous session as it was
    assert flat.most_recent(0) is flat and flat.most_recent(10_000) is flat
    # the padded layout caps alike
    a, b = capped.padded(), flat.padded().most_recent(cap)
    for name in FIELDS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    # training and evaluation take the cap from the model's settings
    model, _ = _train(flat, max_sessions=cap)
    again, _ = _train(capped, max_sessions=0)
    for x, y in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(x, y)


def test_prepared_files_hold_the_flat_form(log, tmp_path):
    half = _build(log, "float16")
    path = str(tmp_path / "prepared.pt")
    save_prepared(path, half, n_devices=3, n_sources=3)
    back, meta = load_prepared(path)
    assert isinstance(back, SessionSequences) and meta["n_sources"] == 3
    for name in SessionSequences._COLUMNS + ("offsets",):
        assert torch.equal(getattr(back, name), getattr(half, name)), name
    index = torch.arange(10)
    for name in FIELDS:
        assert torch.equal(getattr(back.select(index), name), getattr(half.select(index), name))


def _recent_reference(items, k):
    """Per session, the k distinct tracks streamed most recently before it (a plain loop)."""
    out, seen = [], []
    for session in items:
        out.append(seen[:k])
        for item in [i for i in session if i >= 0]:
            if item in seen:
                seen.remove(item)
            seen.insert(0, item)
    return out


def test_vectorised_recent_tracks_against_a_plain_loop():
    g = torch.Generator().manual_seed(3)
    U, T, M = 9, 14, 6
    items = torch.randint(0, 12, (U, T, M), generator=g)
    items[torch.rand(U, T, M, generator=g) < 0.3] = -1
    items = torch.sort(items, dim=-1, descending=True).values  # real streams first, in some order
    items = items[:, :, torch.randperm(M, generator=g)]  # and -1 anywhere: the lists skip them
    lengths = torch.randint(1, T + 1, (U,), generator=g)
    real = torch.arange(T)[None, :] < lengths[:, None]
    items[~real] = -1
    split = torch.where(real, TEST, -1).to(torch.int8)
    seqs = UserSequences(
        users=np.arange(U),
        lengths=lengths,
        s_all=torch.zeros(U, T, 2),
        s_pos=torch.zeros(U, T, 2),
        s_neg=torch.zeros(U, T, 2),
        features=torch.zeros(U, T, 1),
        context=torch.zeros(U, T, dtype=torch.int64),
        source=torch.zeros(U, T, dtype=torch.int64),
        items=items,
        skipped=torch.zeros(U, T, M, dtype=torch.bool),
        starts=torch.zeros(U, T, dtype=torch.float64),
        split=split,
    )
    want = real & (torch.rand(U, T, generator=g) < 0.6)
    for k in (1, 4, 30):
        got = recent_tracks(seqs, want, k)
        expected = []
        for u in range(U):
            lists = _recent_reference(items[u].tolist(), k)
            expected += [lst + [-1] * (k - len(lst)) for t, lst in enumerate(lists) if want[u, t]]
        assert got.tolist() == expected


def test_evaluation_and_prediction_hold_a_chunk_of_users_at_a_time(log, monkeypatch):
    flat = _build(log, "float16")
    vectors = torch.from_numpy(log[1])
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(n_devices=3, n_sources=3, hidden=8, fc=8))
    chunk = 11
    biggest = []
    select = SessionSequences.select

    def watched(self, index):
        biggest.append(len(index))
        return select(self, index)

    def refused(*args, **kwargs):
        raise AssertionError("a per-session array of the whole data set")

    monkeypatch.setattr(SessionSequences, "select", watched)
    monkeypatch.setattr(SessionSequences, "empty_like_sessions", refused)
    monkeypatch.setattr(SessionSequences, "padded", refused)
    approaches = {"b": ev.baseline_predictor(vectors, _counts(flat, len(vectors))), "M": model_predictor(model)}
    results = ev.evaluate_all(approaches, flat, flat.split == TEST, vectors, chunk_users=chunk)
    assert max(biggest) <= chunk and sum(biggest) == flat.n_users
    assert "per_session" not in results["M"]
    biggest.clear()
    mean_cosine(model, flat, VALID, batch_size=chunk)
    u = predict(model, flat, batch_size=chunk, sessions=flat.split == TEST)
    assert max(biggest) <= chunk and u.shape == (int((flat.split == TEST).sum()), 40)
    # the same numbers in any chunking, the oracle's random half included
    monkeypatch.undo()
    other = ev.evaluate_all(approaches, flat, flat.split == TEST, vectors, chunk_users=64)
    assert repr(other) == repr(results)
