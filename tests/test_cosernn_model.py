"""CoSeRNN's model and training: the fused GRU layer against torch.nn.GRU, causality (u_t sees
only sessions before t and the context of t), the long-term embedding, torch.compile, the
paper's defaults (LSTM, one input transformation shared by both pathways) and the earlier ones
as options, the ablations (removed inputs have no gradient and no effect), learning the planted
structure of the synthetic log better than the baselines, word2vec item vectors (CBOW and
skip-gram), checkpoints (older ones), and the command line (checkpoints that torch.load reads
with weights_only=True, --ablate, --eval-split, --per-context, --word2vec)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seqrec.checkpoints import save_atomically
from seqrec.cli import main
from seqrec.cosernn.listening import sessionize_listening, write_listening_tsv
from seqrec.cosernn.model import (
    CoSeRNN,
    CoSeRNNConfig,
    FusedGRU,
    LSTMLayer,
    context_long_term_embedding,
    cosine_loss,
    long_term_embedding,
    normalise_ablations,
    predict,
    track_ranking_loss,
    training_candidates,
    training_objective,
)
from seqrec.cosernn.sequences import (
    TEST,
    TRAIN,
    VALID,
    build_user_sequences,
    feature_groups,
    feature_size,
    load_prepared,
)
from seqrec.cosernn.synthetic import synthetic_listening
from seqrec.cosernn.train import load_checkpoint, load_training_state, save_checkpoint, train, warmed_up

SMALL = dict(n_devices=2, n_sources=3, hidden=12, fc=16)


def _inputs(B=4, T=6, seed=0, n_devices=2, n_sources=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, feature_size(n_devices, n_sources), generator=g)
    s = F.normalize(torch.randn(3, B, T, 40, generator=g), dim=-1)
    return x, s[0], s[1], s[2]


def test_fused_gru_matches_torch_gru():
    torch.manual_seed(0)
    layer = FusedGRU(5, 7).double()
    ref = torch.nn.GRU(5, 7, batch_first=True).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(layer.w_ih), ref.weight_hh_l0.copy_(layer.w_hh)
        ref.bias_ih_l0.copy_(layer.b_ih), ref.bias_hh_l0.copy_(layer.b_hh)
    x = torch.randn(3, 6, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 6, 6])
    out, expected = layer(x, lengths), ref(x)[0]
    torch.testing.assert_close(out, expected)
    g = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, g)
    (gx_ref,) = torch.autograd.grad(expected, x, g)
    torch.testing.assert_close(gx, gx_ref)


def test_fused_gru_padding_leaves_real_steps_alone():
    torch.manual_seed(0)
    layer = FusedGRU(5, 7).double()
    x = torch.randn(2, 6, 5, dtype=torch.float64)
    out = layer(x, torch.tensor([6, 3]))
    alone = layer(x[1:, :3], torch.tensor([3]))
    torch.testing.assert_close(out[1:, :3], alone)
    assert out[1, 3:].abs().max() == 0


def test_long_term_embedding_weights():
    s = F.normalize(torch.randn(1, 4, 40, dtype=torch.float64), dim=-1)
    u = long_term_embedding(s)
    assert u[0, 0].abs().max() == 0  # nothing before the first session
    expected = F.normalize(1 * s[0, 0] + 2 * s[0, 1] + 3 * s[0, 2], dim=-1)
    torch.testing.assert_close(u[0, 3], expected)


def test_context_long_term_embedding_against_a_direct_sum():
    g = torch.Generator().manual_seed(0)
    s_pos = F.normalize(torch.randn(2, 6, 40, generator=g, dtype=torch.float64), dim=-1)
    s_pos[0, 2] = 0  # a session without a played track adds nothing
    context = torch.tensor([[0, 1, 0, 0, 1, -1], [2, 2, 0, 2, 0, 0]])  # -1: padding
    fallback = torch.full((2, 6, 40), 7.0, dtype=torch.float64)
    out = context_long_term_embedding(s_pos, context, fallback)
    for b in range(2):
        for t in range(6):
            total = sum(
                ((k + 1) * s_pos[b, k] for k in range(t) if context[b, k] == context[b, t] >= 0),
                torch.zeros(40, dtype=torch.float64),
            )
            expected = F.normalize(total, dim=0) if total.abs().sum() > 0 else fallback[b, t]
            torch.testing.assert_close(out[b, t], expected, msg=f"user {b}, session {t}")
    # spot checks of the rule itself: session 3 of user 0 averages sessions 0 and 2 (2 is empty)
    torch.testing.assert_close(out[0, 3], s_pos[0, 0])
    torch.testing.assert_close(out[1, 5], F.normalize(3 * s_pos[1, 2] + 5 * s_pos[1, 4], dim=0))
    assert (out[0, :2] == 7.0).all() and (out[0, 5] == 7.0).all()  # first of their context; padding


@pytest.mark.parametrize(
    "cell,context_memory,extra",
    [
        ("gru", False, {}),
        ("lstm", False, {}),
        ("gru", True, {}),
        ("lstm", True, {"shared_input": False}),
        ("lstm", False, {"ablate": "split"}),
        ("lstm", False, {"ablate": "long-term,skipped-pathway"}),
    ],
)
def test_user_embedding_is_causal(cell, context_memory, extra):
    """u_t depends on session t's context but not on its s+/s- or on anything later."""
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(cell=cell, context_memory=context_memory, **extra, **SMALL)).double()
    x, s_all, s_pos, s_neg = (a.double() for a in _inputs())
    lengths = torch.full((4,), 6)
    context = torch.tensor([[0, 1, 0, 1, 0, 0], [1, 1, 1, 1, 1, 1], [0, 2, 2, 0, 0, 2], [3, 0, 3, 3, 0, 3]])
    u = model(x, s_all, s_pos, s_neg, lengths, context)
    assert u.shape == (4, 6, 40)
    torch.testing.assert_close(u.norm(dim=-1), torch.ones(4, 6, dtype=torch.float64))
    t = 3
    x2, a2, p2, n2, c2 = x.clone(), s_all.clone(), s_pos.clone(), s_neg.clone(), context.clone()
    x2[:, t + 1 :] += 1.0
    c2[:, t + 1 :] = (c2[:, t + 1 :] + 1) % 4
    a2[:, t:], p2[:, t:], n2[:, t:] = -a2[:, t:], -p2[:, t:], -n2[:, t:]
    u2 = model(x2, a2, p2, n2, lengths, c2)
    torch.testing.assert_close(u2[:, : t + 1], u[:, : t + 1])
    assert (u2[:, t + 1 :] - u[:, t + 1 :]).abs().max() > 1e-6
    x3 = x.clone()
    x3[:, t] += 1.0  # the current context matters
    assert (model(x3, s_all, s_pos, s_neg, lengths, context)[:, t] - u[:, t]).abs().max() > 1e-6
    if context_memory:  # ... and so does which earlier sessions share it
        c3 = context.clone()
        c3[:, t] = (c3[:, t] + 1) % 4
        assert (model(x, s_all, s_pos, s_neg, lengths, c3)[:, t] - u[:, t]).abs().max() > 1e-6
    else:
        torch.testing.assert_close(model(x, s_all, s_pos, s_neg, lengths, (context + 1) % 4), u)


def test_context_memory_needs_the_context():
    model = CoSeRNN(CoSeRNNConfig(context_memory=True, **SMALL))
    with pytest.raises(ValueError, match="needs the sessions' context"):
        model(*_inputs(), torch.full((4,), 6))


CONTEXT = torch.tensor([[0, 1, 0, 1, 0, 0], [1, 1, -1, -1, -1, -1], [0, 2, 2, 0, 0, -1], [3, -1, -1, -1, -1, -1]])


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"context_memory": True},
        {"cell": "gru", "shared_input": False},
        {"ablate": "context,last-embeddings"},
        {"ablate": "split,long-term"},
        {"ablate": "played-pathway"},
    ],
)
def test_gradients_reach_every_parameter(settings):
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(**settings, **SMALL))
    x, s_all, s_pos, s_neg = _inputs()
    u = model(x, s_all, s_pos, s_neg, torch.tensor([6, 2, 5, 1]), CONTEXT)
    (1 - (u * s_pos).sum(-1)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_the_fused_lstm_is_torch_lstm():
    """``cell="fused-lstm"`` (the lstm_sequence op) and ``cell="lstm"`` (torch.nn.LSTM) are the
    same model with the same parameters: equal outputs and gradients on the real steps (the op
    stops at each row's length, nn.LSTM runs over the padding, which the model masks)."""
    torch.manual_seed(0)
    fused = CoSeRNN(CoSeRNNConfig(cell="fused-lstm", **SMALL)).double()
    torch_lstm = CoSeRNN(CoSeRNNConfig(cell="lstm", **SMALL)).double()
    torch_lstm.load_state_dict(fused.state_dict())
    lengths = torch.tensor([6, 2, 5, 1])
    real = torch.arange(6)[None, :] < lengths[:, None]
    inputs = tuple(x.double() for x in _inputs()) + (lengths,)
    a, b = fused(*inputs), torch_lstm(*inputs)
    torch.testing.assert_close(a[real], b[real])
    (a[real].sum() * 1.0).backward()
    (b[real].sum() * 1.0).backward()
    for (name, p), q in zip(fused.named_parameters(), torch_lstm.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


@pytest.mark.parametrize("cell,context_memory", [("gru", False), ("gru", True), ("fused-lstm", False), ("lstm", False)])
def test_torch_compile_matches_eager(cell, context_memory):
    """The fused GRU and LSTM compile into one graph; torch.nn.LSTM is not traced by dynamo, so
    the lstm model compiles around it (graph breaks)."""
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(cell=cell, context_memory=context_memory, **SMALL))
    inputs = _inputs() + (torch.tensor([6, 2, 5, 1]), CONTEXT)
    eager = model(*inputs)
    eager.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=cell != "lstm")(*inputs)
    compiled.sum().backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)


def _synthetic_sequences(n_users=150, seed=0, generator=synthetic_listening):
    log, vectors = generator(n_users=n_users, sessions_per_user=40, days=40, seed=seed)
    ids = np.unique(log.items)
    seqs = build_user_sequences(
        sessionize_listening(log), vectors[ids], ids, n_devices=3, n_sources=3, test_days=10, valid_days=4
    )
    return seqs, torch.from_numpy(vectors[ids])


def test_he_initialisation_starts_without_a_constant_part():
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(**{**SMALL, "fc": 400, "hidden": 300}))
    for name, layer in model.named_modules():
        if isinstance(layer, torch.nn.Linear):
            assert not layer.bias.any(), name
            fan_in, fan_out = layer.in_features, layer.out_features
            if name.startswith(("input", "combine")):  # He-normal for ReLU
                expected = (2.0 / fan_in) ** 0.5
            else:  # Xavier-uniform
                expected = (2.0 / (fan_in + fan_out)) ** 0.5
            assert float(layer.weight.detach().std()) == pytest.approx(expected, rel=0.1), name
    torch.manual_seed(0)
    legacy = CoSeRNN(CoSeRNNConfig(**SMALL, init="torch"))
    assert legacy.to_embedding.bias.abs().sum() > 0
    with pytest.raises(ValueError, match="init must be one of"):
        CoSeRNNConfig(**SMALL, init="xavier")


def test_warm_up_and_the_update_budget():
    assert [warmed_up(1e-3, 4, k) for k in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert warmed_up(1e-3, 0, 0) == 1e-3
    seqs, _ = _synthetic_sequences(n_users=30)
    config = CoSeRNNConfig(n_devices=3, n_sources=3, hidden=8, fc=8, batch_size=8, max_epochs=50, max_updates=6)
    model, history = train(seqs, config, log=lambda line: None)
    assert [h["updates"] for h in history] == [4, 6]  # 4 batches an epoch; the budget ends epoch 2
    with pytest.raises(ValueError, match="warmup and max_updates"):
        CoSeRNNConfig(n_devices=3, n_sources=3, warmup=-1)


def test_training_is_reproducible():
    seqs, _ = _synthetic_sequences(n_users=30)
    config = CoSeRNNConfig(n_devices=3, n_sources=3, hidden=8, fc=8, batch_size=8, max_epochs=2)
    a, _ = train(seqs, config, log=lambda line: None)
    b, _ = train(seqs, config, log=lambda line: None)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_track_ranking_loss_against_a_direct_computation():
    seqs, vectors = _synthetic_sequences(n_users=6)
    vectors = vectors.double()
    batch = seqs.select(torch.arange(6))
    candidates = training_candidates(seqs, k=9)[:, : batch.s_pos.shape[1]]
    assert ((candidates >= 0).sum(-1) < 9).any()  # some sessions have fewer candidates than k
    g = torch.Generator().manual_seed(0)
    u = F.normalize(torch.randn(*batch.s_pos.shape, generator=g, dtype=torch.float64), dim=-1).requires_grad_()
    total, count = track_ranking_loss(u, candidates, batch, vectors, TRAIN, temperature=7.0)
    expected, n = u.new_zeros(()), 0
    for b in range(batch.n_users):
        for t in range(int(batch.lengths[b])):
            session = set(batch.items[b, t][batch.items[b, t] >= 0].tolist())
            cands = [c for c in candidates[b, t].tolist() if c >= 0]
            relevant = [i for i, c in enumerate(cands) if c in session]
            if batch.split[b, t] != TRAIN or not relevant:
                continue
            scores = 7.0 * vectors[cands] @ u[b, t]
            expected = expected - (scores - torch.logsumexp(scores, 0))[relevant].mean()
            n += 1
    assert count == n > 10
    torch.testing.assert_close(total, expected)
    (grad,) = torch.autograd.grad(total, u)
    torch.testing.assert_close(grad, torch.autograd.grad(expected, u)[0])
    # a session without candidates (a user's first) adds nothing and stays finite
    assert (candidates[:, 0] < 0).all() and torch.isfinite(grad).all()


def test_track_loss_lowers_the_track_ranking_loss_and_is_checked():
    seqs, vectors = _synthetic_sequences(n_users=40)
    quiet = dict(log=lambda line: None, item_vectors=vectors)
    candidates = training_candidates(seqs)

    def ranking(model):
        with torch.no_grad():
            total, count = track_ranking_loss(model.embed(seqs), candidates, seqs, vectors, TRAIN)
        return float(total) / count

    plain, _ = train(seqs, _small_config(max_epochs=4), **quiet)
    ranked, _ = train(seqs, _small_config(max_epochs=4, track_loss=2.0), **quiet)
    again, _ = train(seqs, _small_config(max_epochs=4, track_loss=2.0), **quiet)
    assert ranking(ranked) < ranking(plain)
    for (name, p), q in zip(ranked.state_dict().items(), again.state_dict().values()):
        assert torch.equal(p, q), name
    with pytest.raises(ValueError, match="needs the item vectors"):
        train(seqs, _small_config(max_epochs=1, track_loss=1.0), log=lambda line: None)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="track_loss must be"):
            train(seqs, _small_config(max_epochs=1, track_loss=bad), **quiet)


def _small_config(**kw):
    return CoSeRNNConfig(n_devices=3, n_sources=3, hidden=8, fc=8, batch_size=8, **kw)


def test_resume_continues_bit_for_bit(tmp_path):
    seqs, _ = _synthetic_sequences(n_users=30)
    quiet = dict(log=lambda line: None)
    straight, split = tmp_path / "straight.pt", tmp_path / "split.pt"
    a, history_a = train(seqs, _small_config(max_epochs=3, patience=10), save=str(straight), **quiet)
    train(seqs, _small_config(max_epochs=1, patience=10), save=str(split), **quiet)
    lines = []
    b, history_b = train(seqs, _small_config(max_epochs=3, patience=10), save=str(split), resume=True, log=lines.append)
    assert lines[0].startswith("resumed after epoch 1")
    assert [h["epoch"] for h in history_b] == [1, 2, 3]
    for key in ("train_cosine", "valid_cosine"):
        assert [h[key] for h in history_a] == [h[key] for h in history_b]
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name  # the returned best models
    one, two = torch.load(straight, weights_only=True), torch.load(split, weights_only=True)
    assert one["epoch"] == two["epoch"] and one["valid_cosine"] == two["valid_cosine"]
    # the last epoch's weights, Adam's moments and step counts, the batch-order generator
    for part in ("model", "optimizer", "generator"):
        _assert_same(one["training"][part], two["training"][part], part)


def _assert_same(x, y, where):
    if isinstance(x, dict):
        assert x.keys() == y.keys(), where
        for k in x:
            _assert_same(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), where
        for k, (a, b) in enumerate(zip(x, y)):
            _assert_same(a, b, f"{where}[{k}]")
    elif isinstance(x, torch.Tensor):
        assert torch.equal(x, y), where
    else:
        assert x == y, where


def test_resume_refuses_other_settings_or_data_and_respects_early_stopping(tmp_path):
    seqs, vectors = _synthetic_sequences(n_users=30)
    ckpt = tmp_path / "run.pt"
    extra = {"item_vectors": vectors}
    train(seqs, _small_config(max_epochs=1), save=str(ckpt), checkpoint_extra=extra, log=lambda line: None)
    with pytest.raises(ValueError, match="hidden 8 .now 16"):
        load_training_state(str(ckpt), CoSeRNNConfig(n_devices=3, n_sources=3, hidden=16, fc=8, batch_size=8))
    with pytest.raises(ValueError, match="other data .item_vectors"):
        load_training_state(str(ckpt), _small_config(max_epochs=1), {"item_vectors": vectors + 1})
    with pytest.raises(ValueError, match="context_memory False .now True"):
        load_training_state(str(ckpt), _small_config(max_epochs=1, context_memory=True))
    # a checkpoint saved before a setting existed holds its default
    older = torch.load(ckpt, weights_only=True)
    del older["config"]["context_memory"], older["kind"], older["checksums"]  # as the version of then wrote it
    torch.save(older, tmp_path / "older.pt")
    assert load_training_state(str(tmp_path / "older.pt"), _small_config(max_epochs=1))["epoch"] == 1
    with pytest.raises(ValueError, match="needs save"):
        train(seqs, _small_config(max_epochs=2), resume=True)
    lines = []

    def resume(config, log=lines.append):
        return train(seqs, config, save=str(ckpt), checkpoint_extra=extra, resume=True, log=log)

    resume(_small_config(max_epochs=1))
    assert "already trained 1 epochs" in lines[-1]
    # a run that stopped early stays stopped unless its patience is raised
    payload = torch.load(ckpt, weights_only=True)
    payload["training"]["stale"] = 5
    save_atomically(payload, ckpt)
    _, history = resume(_small_config(max_epochs=4, patience=5))
    assert "already stopped early" in lines[-1] and len(history) == 1
    _, history = resume(_small_config(max_epochs=2, patience=6), log=lambda line: None)
    assert [h["epoch"] for h in history] == [1, 2]
    model_only = tmp_path / "model.pt"
    save_atomically({k: v for k, v in payload.items() if k != "training"}, model_only)
    with pytest.raises(ValueError, match="no training state"):
        load_training_state(str(model_only), _small_config(max_epochs=1))


@pytest.mark.parametrize("method", ["cbow", "skipgram"])
def test_word2vec_item_vectors_put_co_listened_items_together(method):
    pytest.importorskip("gensim")
    from seqrec.cosernn.item_embeddings import word2vec_item_vectors

    rng = np.random.default_rng(0)
    n_groups, size = 10, 40  # items only ever co-occur within their group
    sessions = [
        rng.choice(np.arange(k % n_groups * size, (k % n_groups + 1) * size), 8, replace=False) for k in range(3000)
    ]
    n = n_groups * size
    vectors = word2vec_item_vectors(sessions, n + 1, epochs=5, method=method)
    assert vectors.shape == (n + 1, 40) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:n], axis=1), 1.0, rtol=1e-5)
    assert not vectors[n].any()  # never seen: zero
    sims = vectors[:n] @ vectors[:n].T
    np.fill_diagonal(sims, -2)
    group = np.arange(n) // size
    assert (group[sims.argmax(1)] == group).mean() > 0.95  # nearest neighbours share the group
    np.testing.assert_array_equal(vectors, word2vec_item_vectors(sessions, n + 1, epochs=5, method=method))  # seeded
    other = "skipgram" if method == "cbow" else "cbow"
    assert not np.allclose(vectors, word2vec_item_vectors(sessions, n + 1, epochs=5, method=other), atol=1e-3)
    if method == "cbow":  # the default, as in the paper
        np.testing.assert_array_equal(vectors, word2vec_item_vectors(sessions, n + 1, epochs=5))
        with pytest.raises(ValueError, match="word2vec method"):
            word2vec_item_vectors(sessions, n + 1, method="glove")


def test_cli_train_then_evaluate(tmp_path, capsys):
    log, _ = synthetic_listening(n_users=20, sessions_per_user=30, days=30, seed=1)
    data = tmp_path / "log.tsv"
    write_listening_tsv(log, data)
    ckpt, results = tmp_path / "cosernn.pt", tmp_path / "results.md"
    common = ["--dataset", str(data), "--test-days", "7", "--valid-days", "3", "--results", str(results)]
    vectors = ["--item-vectors", "word2vec"] if _has_gensim() else []
    if not vectors:
        pytest.skip("gensim is not installed (word2vec item vectors)")
    assert (
        main(
            [
                "cosernn",
                "train",
                *common,
                *vectors,
                "--hidden",
                "8",
                "--fc",
                "8",
                "--max-epochs",
                "2",
                "--batch-size",
                "8",
                "--save",
                str(ckpt),
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| CoSeRNN (lstm) |" in out and "| Last, same cxt |" in out and "MRR@20" in out
    assert "| CoSeRNN (lstm) |" in results.read_text()
    payload = torch.load(ckpt, weights_only=True)  # current torch's safe default loads it
    assert payload["item_vectors"].shape[1] == 40
    assert main(["cosernn", "evaluate", "--load", str(ckpt), *common]) == 0
    again = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("| CoSeRNN")]
    assert row and row[0] in again  # same model, same data, same numbers


def test_cli_prepare_then_train_and_evaluate_from_the_file(tmp_path, capsys):
    log, _ = synthetic_listening(n_users=20, sessions_per_user=30, days=30, seed=1)
    data = tmp_path / "log.tsv"
    write_listening_tsv(log, data)
    prepared, ckpt = tmp_path / "prepared.pt", tmp_path / "cosernn.pt"
    days = ["--test-days", "7", "--valid-days", "3"]
    if not _has_gensim():
        pytest.skip("gensim is not installed (word2vec item vectors)")
    assert main(["cosernn", "prepare", "--dataset", str(data), *days, "--out", str(prepared)]) == 0
    assert "saved" in capsys.readouterr().out
    payload = torch.load(prepared, weights_only=True)
    assert payload["n_devices"] == 3 and payload["item_vectors"].shape == (len(payload["item_ids"]), 40)
    small = ["--hidden", "8", "--fc", "8", "--max-epochs", "2", "--batch-size", "8", "--quiet", "--results", ""]
    train = ["cosernn", "train", "--prepared", str(prepared), *small]
    assert main([*train, "--save", str(ckpt)]) == 0
    from_file = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    # the same data built from the log gives the same table
    assert main(["cosernn", "train", "--dataset", str(data), *days, *small]) == 0
    direct = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert from_file == direct and any(line.startswith("| CoSeRNN (lstm)") for line in direct)
    assert main(["cosernn", "evaluate", "--load", str(ckpt), "--prepared", str(prepared), "--results", ""]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")] == from_file
    # another item space: refused
    other = tmp_path / "other.pt"
    assert main(["cosernn", "prepare", "--dataset", str(data), *days, "--seed", "1", "--out", str(other)]) == 0
    with pytest.raises(SystemExit, match="item space"):
        main(["cosernn", "evaluate", "--load", str(ckpt), "--prepared", str(other), "--results", ""])
    with pytest.raises(SystemExit, match="--test-days"):  # data options belong to prepare
        main(["cosernn", "train", "--prepared", str(prepared), "--test-days", "3", *small])
    with pytest.raises(SystemExit):  # --dataset and --prepared together
        main(["cosernn", "train", "--dataset", str(data), "--prepared", str(prepared)])
    for junk in (b"not a file of ours", b""):
        (tmp_path / "junk.pt").write_bytes(junk)
        with pytest.raises(SystemExit, match="not a prepared CoSeRNN data file"):
            main(["cosernn", "train", "--prepared", str(tmp_path / "junk.pt"), *small])
    # --resume: 1 epoch + 1 resumed epoch gives the table of the 2-epoch run
    resumed = tmp_path / "resumed.pt"
    one = [a if a != "2" else "1" for a in small]
    assert main(["cosernn", "train", "--prepared", str(prepared), *one, "--save", str(resumed)]) == 0
    capsys.readouterr()
    assert main([*train, "--save", str(resumed), "--resume"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")] == from_file
    with pytest.raises(SystemExit, match="--resume needs --save"):
        main([*train, "--save", str(tmp_path / "none.pt"), "--resume"])
    with pytest.raises(SystemExit, match="cannot resume: .*other data .item_vectors"):
        main(["cosernn", "train", "--prepared", str(other), *small, "--save", str(resumed), "--resume"])
    with pytest.raises(SystemExit, match="cannot resume: .*learning_rate"):
        main([*train, "--learning-rate", "0.01", "--save", str(resumed), "--resume"])
    # the same-context memory (beyond the paper): its own row; the checkpoint remembers it
    memory = tmp_path / "memory.pt"
    assert main([*train, "--context-memory", "--save", str(memory)]) == 0
    rows = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("| CoSeRNN (lstm, context memory) |")
    ]
    plain = next(line for line in from_file if line.startswith("| CoSeRNN (lstm) |"))
    assert len(rows) == 1 and rows[0].split("|")[2:] != plain.split("|")[2:]  # another model, other numbers
    assert main(["cosernn", "evaluate", "--load", str(memory), "--prepared", str(prepared), "--results", ""]) == 0
    assert rows[0] in capsys.readouterr().out.splitlines()
    # the track-ranking loss (beyond the paper): its own row, remembered by the checkpoint, and
    # a run with another weight is not a continuation
    ranked = tmp_path / "ranked.pt"
    assert main([*train, "--context-memory", "--track-loss", "0.5", "--save", str(ranked)]) == 0
    rows = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| CoSeRNN (lstm, context memory, track loss 0.5) |")
    ]
    assert len(rows) == 1
    assert main(["cosernn", "evaluate", "--load", str(ranked), "--prepared", str(prepared), "--results", ""]) == 0
    assert rows[0] in capsys.readouterr().out.splitlines()
    with pytest.raises(SystemExit, match="cannot resume: .*track_loss 0.5 .now 0.1"):
        main([*train, "--context-memory", "--track-loss", "0.1", "--save", str(ranked), "--resume"])


def test_cli_planted_vectors_only_for_synthetic(tmp_path):
    log, _ = synthetic_listening(n_users=5, sessions_per_user=5, days=5, seed=1)
    data = tmp_path / "log.tsv"
    write_listening_tsv(log, data)
    with pytest.raises(SystemExit, match="planted"):
        main(["cosernn", "train", "--dataset", str(data), "--item-vectors", "planted", "--results", ""])


def _has_gensim():
    try:
        import gensim  # noqa: F401
    except ImportError:
        return False
    return True


def test_model_on_each_device_matches_cpu(device):
    """The same model and inputs on `device` give the CPU's embeddings and gradients."""
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(**SMALL))
    inputs = _inputs() + (torch.tensor([6, 3, 5, 1]),)
    ref = model(*inputs)
    ref.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    moved = copy.deepcopy(model).to(device)
    moved.zero_grad()
    out = moved(*(a.to(device) for a in inputs))
    out.square().sum().backward()
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-4, atol=1e-5)
    for n, p in moved.named_parameters():
        torch.testing.assert_close(p.grad.cpu(), grads[n], rtol=1e-3, atol=1e-5)


def test_synthetic_log_shape_and_seed():
    log, vectors = synthetic_listening(n_users=300, sessions_per_user=20, days=20, seed=3)
    again, _ = synthetic_listening(n_users=300, sessions_per_user=20, days=20, seed=3)
    other, _ = synthetic_listening(n_users=300, sessions_per_user=20, days=20, seed=4)
    assert np.array_equal(log.items, again.items) and np.array_equal(log.times, again.times)
    assert not np.array_equal(log.items[:1000], other.items[:1000])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert set(np.unique(log.users)) == set(range(300))
    sessions = sessionize_listening(log)
    per_user = np.bincount(sessions.users)
    assert per_user.min() >= 2 and abs(per_user.mean() - 20) < 1.5  # Poisson(20), at least 2
    lengths = sessions.lengths
    assert (
        lengths.min() >= 1 and lengths.max() == 10 and (sessions.items >= 0).sum() < len(log)
    )  # up to 12, first 10 kept
    # a session's tracks are distinct and 3 minutes apart; sessions at least 30 minutes apart
    real = sessions.items >= 0
    for row, n in zip(sessions.items[:200], lengths[:200]):
        assert len(set(row[:n].tolist())) == n
    order = np.lexsort((log.times, log.users))
    gaps = np.diff(log.times[order])[np.diff(log.users[order]) == 0]
    assert set(np.round(gaps[gaps < 1800])) <= {180.0} and gaps.min() > 0
    assert gaps[gaps > 180].min() >= 1800 + 180  # after the previous session's last track (3 minutes)
    # popular items dominate (power law) and skips are frequent but not the rule
    counts = np.sort(np.bincount(log.items, minlength=3000))[::-1]
    assert counts[:30].sum() > 5 * counts[1485:1515].sum() > 0
    assert 0.1 < sessions.skipped[real].mean() < 0.6


def test_bf16_training_follows_fp32():
    """--precision bf16: the step under torch.autocast (products in bfloat16, the fused GRU's gates
    and the losses in float32) trains float32 parameters to about the fp32 run's cosine."""
    seqs, _ = _synthetic_sequences(n_users=40)
    histories = {}
    for precision in ("fp32", "bf16"):
        model, history = train(seqs, _small_config(max_epochs=3, precision=precision), log=lambda line: None)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        histories[precision] = [h["valid_cosine"] for h in history]
    assert histories["bf16"] != histories["fp32"]  # it did run in another precision
    for a, b in zip(histories["bf16"], histories["fp32"]):
        assert abs(a - b) < 0.02, histories
    with pytest.raises(ValueError, match="precision must be fp32 or bf16"):
        train(seqs, _small_config(precision="fp16"), log=lambda line: None)


# ---- the paper's defaults, the earlier ones as options ----


def test_defaults_are_the_papers_lstm_and_one_shared_input_transformation():
    config = CoSeRNNConfig(n_devices=2, n_sources=3)
    assert config.cell == "lstm" and config.shared_input and config.ablate == ""
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(**SMALL)).double()
    assert isinstance(model.rnn_pos, LSTMLayer) and isinstance(model.rnn_neg, LSTMLayer)
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert names == {"input_mlp", "rnn_pos", "rnn_neg", "combine", "to_embedding", "attention"}
    # both pathways read the same transformation: what each RNN receives is input_mlp(f+), input_mlp(f-)
    seen = {}
    for name in ("rnn_pos", "rnn_neg"):
        getattr(model, name).register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, args[0]))
    x, s_all, s_pos, s_neg = (a.double() for a in _inputs())
    model(x, s_all, s_pos, s_neg, torch.full((4,), 6))
    prev = {k: F.pad(v, (0, 0, 1, 0))[:, :-1] for k, v in (("pos", s_pos), ("neg", s_neg))}
    for p in ("pos", "neg"):
        torch.testing.assert_close(seen[f"rnn_{p}"], model.input_mlp(torch.cat([x, prev[p]], -1)))


def test_separate_input_transformations_and_the_fused_gru_remain_options():
    torch.manual_seed(0)
    shared = CoSeRNN(CoSeRNNConfig(**SMALL))
    separate = CoSeRNN(CoSeRNNConfig(**{**SMALL, "shared_input": False, "cell": "gru"}))
    names = {n.split(".")[0] for n, _ in separate.named_parameters()}
    assert {"input_pos", "input_neg"} <= names and "input_mlp" not in names
    assert isinstance(separate.rnn_pos, FusedGRU)
    mlp = sum(p.numel() for p in shared.input_mlp.parameters())
    lstm = sum(p.numel() for p in shared.rnn_pos.parameters()) * 2
    gru = sum(p.numel() for p in separate.rnn_pos.parameters()) * 2
    assert (
        sum(p.numel() for p in separate.parameters()) == sum(p.numel() for p in shared.parameters()) + mlp - lstm + gru
    )


# ---- ablations ----


def _grad_of_inputs(model, x, s_all, s_pos, s_neg):
    inputs = [a.clone().requires_grad_() for a in (x, s_all, s_pos, s_neg)]
    u = model(*inputs, torch.tensor([6, 5, 6, 3]))
    g = torch.Generator().manual_seed(1)
    (u * torch.randn(u.shape, generator=g, dtype=u.dtype)).sum().backward()
    return [a.grad for a in inputs]


FEATURE_ABLATIONS = {
    "context": ("day", "hour", "device"),
    "last-count": ("last-count",),
    "last-gap": ("last-gap",),
    "last-source": ("last-source",),
}


@pytest.mark.parametrize("ablation", [None, *FEATURE_ABLATIONS, "last-stats"])
def test_ablated_feature_groups_are_removed_from_the_inputs(ablation):
    """The ablated columns get no gradient and change nothing (the first input layer has no
    weights for them); the other columns still matter (the check can fail)."""
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(ablate=ablation or "", **SMALL)).double()
    x, s_all, s_pos, s_neg = (a.double() for a in _inputs())
    groups = feature_groups(2, 3)
    gone_names = {None: (), "last-stats": ("last-count", "last-gap", "last-source"), **FEATURE_ABLATIONS}[ablation]
    gone = [i for name in gone_names for i in range(groups[name].start, groups[name].stop)]
    kept = [i for i in range(x.shape[-1]) if i not in gone]
    assert model.input_mlp[0].in_features == len(kept) + 40
    gx, *_ = _grad_of_inputs(model, x, s_all, s_pos, s_neg)
    if gone:
        assert gx[..., gone].abs().max() == 0
    for name, cols in groups.items():  # every kept group has a gradient
        if name not in gone_names:
            assert gx[..., cols].abs().max() > 0, name
    u = model(x, s_all, s_pos, s_neg, torch.full((4,), 6))
    x2 = x.clone()
    x2[..., gone] += torch.randn(x2[..., gone].shape, dtype=x.dtype)
    if gone:
        torch.testing.assert_close(model(x2, s_all, s_pos, s_neg, torch.full((4,), 6)), u, rtol=0, atol=0)
    else:
        x2[..., 0] += 1.0
        assert (model(x2, s_all, s_pos, s_neg, torch.full((4,), 6)) - u).abs().max() > 1e-6


@pytest.mark.parametrize(
    "ablation, no_gradient, modules",
    [
        (None, (), {"rnn_pos", "rnn_neg", "attention"}),
        ("last-embeddings", ("s_pos", "s_neg"), {"rnn_pos", "rnn_neg", "attention"}),
        ("skipped-pathway", ("s_neg",), {"rnn_pos", "attention"}),
        ("played-pathway", ("s_pos",), {"rnn_neg", "attention"}),
        ("split", ("s_pos", "s_neg"), {"rnn_all", "attention"}),
        ("long-term", ("s_all",), {"rnn_pos", "rnn_neg"}),
    ],
)
def test_pathway_ablations(ablation, no_gradient, modules):
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(ablate=ablation or "", **SMALL)).double()
    present = {n for n in ("rnn_pos", "rnn_neg", "rnn_all", "attention") if hasattr(model, n)}
    assert present == modules
    x, s_all, s_pos, s_neg = (a.double() for a in _inputs())
    grads = dict(zip(("x", "s_all", "s_pos", "s_neg"), _grad_of_inputs(model, x, s_all, s_pos, s_neg)))
    for name, g in grads.items():
        if name in no_gradient:
            assert g is None or g.abs().max() == 0, name
        else:
            assert g is not None and g.abs().max() > 0, name
    if ablation == "long-term":  # u_t = normalise(u^_t)
        o = model.combine(
            torch.cat(
                [
                    model.rnn_neg(model.input_mlp(torch.cat([x, F.pad(s_neg, (0, 0, 1, 0))[:, :-1]], -1)), None),
                    model.rnn_pos(model.input_mlp(torch.cat([x, F.pad(s_pos, (0, 0, 1, 0))[:, :-1]], -1)), None),
                ],
                -1,
            )
        )
        torch.testing.assert_close(
            model(x, s_all, s_pos, s_neg, torch.full((4,), 6)), F.normalize(model.to_embedding(o), dim=-1)
        )


def test_current_source_is_an_input_only_when_asked():
    """Table 3's hypothetical scenario: the session's own stream source z_t is a one-hot input of
    the pathways at step t; it changes u_t (and later steps, through the recurrence), never an
    earlier one; without the setting it is ignored."""
    torch.manual_seed(0)
    x, s_all, s_pos, s_neg = (a.double() for a in _inputs())
    lengths = torch.full((4,), 6)
    source = torch.randint(0, 3, (4, 6), generator=torch.Generator().manual_seed(2))
    changed = source.clone()
    changed[:, 3] = (changed[:, 3] + 1) % 3
    model = CoSeRNN(CoSeRNNConfig(current_source=True, **SMALL)).double()
    assert model.input_mlp[0].in_features == feature_size(2, 3) + 40 + 3
    u = model(x, s_all, s_pos, s_neg, lengths, source=source)
    v = model(x, s_all, s_pos, s_neg, lengths, source=changed)
    torch.testing.assert_close(v[:, :3], u[:, :3], rtol=0, atol=0)
    assert (v[:, 3] - u[:, 3]).abs().max() > 1e-6
    # the one-hot's weights: the first layer's three columns after the features (then s_{t-1})
    n = feature_size(2, 3)
    with torch.no_grad():
        model.input_mlp[0].weight[:, n : n + 3] = 0
    torch.testing.assert_close(
        model(x, s_all, s_pos, s_neg, lengths, source=source), model(x, s_all, s_pos, s_neg, lengths, source=changed)
    )
    with pytest.raises(ValueError, match="stream source"):
        model(x, s_all, s_pos, s_neg, lengths)
    plain = CoSeRNN(CoSeRNNConfig(**SMALL)).double()
    torch.testing.assert_close(
        plain(x, s_all, s_pos, s_neg, lengths, source=source), plain(x, s_all, s_pos, s_neg, lengths, source=changed)
    )
    assert CoSeRNN(CoSeRNNConfig(current_source=True, **SMALL)).describe() == "lstm, with current source"


def test_all_tracks_pathway_is_a_third_pathway():
    """Table 4's last variant: a pathway over s_{t-1} of all tracks beside the played and skipped
    ones, its output combined with theirs (o-_t, o+_t, o_all_t)."""
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(all_tracks_pathway=True, ablate="long-term", **SMALL)).double()
    assert {"rnn_pos", "rnn_neg", "rnn_all"} <= {n.split(".")[0] for n, _ in model.named_parameters()}
    assert model.combine[0].in_features == 3 * 12
    x, s_all, s_pos, s_neg = (a.double() for a in _inputs())
    gx, g_all, g_pos, g_neg = _grad_of_inputs(model, x, s_all, s_pos, s_neg)
    assert all(g.abs().max() > 0 for g in (g_all, g_pos, g_neg))  # s_all only reaches u through the pathway
    previous = {k: F.pad(v, (0, 0, 1, 0))[:, :-1] for k, v in (("pos", s_pos), ("neg", s_neg), ("all", s_all))}
    outputs = [
        getattr(model, f"rnn_{p}")(model.input_mlp(torch.cat([x, previous[p]], -1)), None)
        for p in ("neg", "pos", "all")
    ]
    expected = F.normalize(model.to_embedding(model.combine(torch.cat(outputs, -1))), dim=-1)
    torch.testing.assert_close(model(x, s_all, s_pos, s_neg, torch.full((4,), 6)), expected)
    with pytest.raises(ValueError, match="split"):
        CoSeRNNConfig(n_devices=1, n_sources=1, all_tracks_pathway=True, ablate="split")
    assert model.describe() == "lstm, without long-term, all-tracks pathway"


def test_ablation_names_and_combinations():
    assert normalise_ablations("long-term, context") == "context,long-term"  # the canonical order
    assert normalise_ablations(["last-stats"]) == "last-count,last-gap,last-source"
    assert normalise_ablations("") == "" and normalise_ablations(None) == ""
    assert CoSeRNNConfig(n_devices=1, n_sources=1, ablate="last-gap,context").ablate == "context,last-gap"
    with pytest.raises(ValueError, match="unknown ablation 'colour'"):
        normalise_ablations("colour")
    with pytest.raises(ValueError, match="leaves no pathway"):
        normalise_ablations("played-pathway,skipped-pathway")
    with pytest.raises(ValueError, match="'split'"):
        normalise_ablations("split,skipped-pathway")
    for bad in ("context", "long-term"):
        with pytest.raises(ValueError, match="context_memory"):
            CoSeRNNConfig(n_devices=1, n_sources=1, context_memory=True, ablate=bad)
    model = CoSeRNN(CoSeRNNConfig(**{**SMALL, "ablate": "context,long-term", "shared_input": False}))
    assert model.describe() == "lstm, separate input MLPs, without context + long-term"


def test_checkpoints_record_the_settings_and_older_ones_are_handled(tmp_path):
    seqs, _ = _synthetic_sequences(n_users=20)
    ckpt = tmp_path / "ablated.pt"
    config = _small_config(max_epochs=1, ablate="context,last-gap")
    model, _ = train(seqs, config, save=str(ckpt), log=lambda line: None)
    loaded, payload = load_checkpoint(str(ckpt))
    assert loaded.config.ablate == "context,last-gap" and loaded.config.shared_input
    torch.testing.assert_close(predict(loaded, seqs), predict(model, seqs))
    # saved before the setting existed: the input transformations were separate then
    separate = CoSeRNN(_small_config(shared_input=False))
    state = {"config": {k: v for k, v in vars(separate.config).items() if k != "shared_input"}}
    save_checkpoint(str(tmp_path / "older.pt"), separate.config, separate.state_dict())
    older = torch.load(tmp_path / "older.pt", weights_only=True)
    older["config"] = state["config"]
    del older["kind"], older["checksums"]  # as the version of then wrote it
    torch.save(older, tmp_path / "older.pt")
    assert not load_checkpoint(str(tmp_path / "older.pt"))[0].config.shared_input
    # trained on the features of an older version: refused
    del older["features"]
    torch.save(older, tmp_path / "older.pt")
    with pytest.raises(ValueError, match="features of an older version"):
        load_checkpoint(str(tmp_path / "older.pt"))


def test_cli_ablations_eval_split_and_per_context(tmp_path, capsys):
    if not _has_gensim():
        pytest.skip("gensim is not installed (word2vec item vectors)")
    log, _ = synthetic_listening(n_users=20, sessions_per_user=30, days=30, seed=1)
    data = tmp_path / "log.tsv"
    write_listening_tsv(log, data)
    prepared, skipgram = tmp_path / "prepared.pt", tmp_path / "skipgram.pt"
    days = ["--test-days", "7", "--valid-days", "5"]
    assert main(["cosernn", "prepare", "--dataset", str(data), *days, "--out", str(prepared)]) == 0
    assert (
        main(["cosernn", "prepare", "--dataset", str(data), *days, "--word2vec", "skipgram", "--out", str(skipgram)])
        == 0
    )
    capsys.readouterr()
    seqs, meta = load_prepared(str(prepared))
    seqs = seqs.padded()  # the counts below on the (U, T) grid
    other = load_prepared(str(skipgram))[1]
    assert not torch.equal(meta["item_vectors"], other["item_vectors"])  # CBOW by default
    small = ["--hidden", "8", "--fc", "8", "--max-epochs", "1", "--batch-size", "8", "--quiet", "--results", ""]
    train_cmd = ["cosernn", "train", "--prepared", str(prepared), *small]
    with pytest.raises(SystemExit, match="--word2vec"):  # a data option: fixed by prepare
        main([*train_cmd, "--word2vec", "skipgram"])
    ckpt = tmp_path / "ablated.pt"
    assert main([*train_cmd, "--ablate", "context", "--ablate", "last-gap,long-term", "--save", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "\nEvaluated on the test period.\n" in out
    row = [
        line
        for line in out.splitlines()
        if line.startswith("| CoSeRNN (lstm, without context + last-gap + long-term) |")
    ]
    assert len(row) == 1
    assert load_checkpoint(str(ckpt))[0].config.ablate == "context,last-gap,long-term"
    with pytest.raises(SystemExit):
        main([*train_cmd, "--ablate", "colour"])
    # the validation period: the table of evaluate and of train agree, over the validation sessions
    assert (
        main(
            [
                "cosernn",
                "evaluate",
                "--load",
                str(ckpt),
                "--prepared",
                str(prepared),
                "--results",
                "",
                "--eval-split",
                "valid",
            ]
        )
        == 0
    )
    valid_out = capsys.readouterr().out
    assert valid_out.startswith("Evaluated on the validation period.\n")
    evaluated = int(((seqs.split == VALID) & seqs.has_pos & (torch.arange(seqs.split.shape[1]) >= 1)).sum())
    tested = int(((seqs.split == TEST) & seqs.has_pos & (torch.arange(seqs.split.shape[1]) >= 1)).sum())
    assert (
        evaluated != tested
        and f"\n{evaluated} sessions evaluated" in valid_out
        and f"\n{tested} sessions evaluated" in out
    )
    valid_row = next(line for line in valid_out.splitlines() if line.startswith("| CoSeRNN (lstm, without"))
    assert valid_row != row[0]
    assert main([*train_cmd, "--ablate", "context,last-gap,long-term", "--eval-split", "valid"]) == 0
    assert valid_row in capsys.readouterr().out.splitlines()
    # the per-context breakdown, and the earlier defaults as options
    assert main([*train_cmd, "--cell", "gru", "--separate-input-mlps", "--per-context"]) == 0
    out = capsys.readouterr().out
    assert "| CoSeRNN (gru, separate input MLPs) |" in out
    per_context = out[out.index("Per context (test period") :].splitlines()
    assert any(line.startswith("| Context | Sessions | Cosine | vs best baseline |") for line in per_context)
    assert sum(line.startswith(("| afternoon |", "| evening |", "| device 0 |")) for line in per_context) == 3
    # the paper's two additions (Tables 3 and 4), recorded in the checkpoint
    added = tmp_path / "added.pt"
    assert main([*train_cmd, "--current-source", "--all-tracks-pathway", "--save", str(added)]) == 0
    assert "| CoSeRNN (lstm, with current source, all-tracks pathway) |" in capsys.readouterr().out
    config = load_checkpoint(str(added))[0].config
    assert config.current_source and config.all_tracks_pathway


def test_the_pathway_loss_adds_the_cosine_loss_of_u_hat():
    """Beyond the paper (``pathway_loss``): the objective adds W times u^'s own mean cosine loss."""
    seqs, _ = _synthetic_sequences(n_users=6)
    batch = seqs.select(torch.arange(6))
    torch.manual_seed(0)
    model = CoSeRNN(CoSeRNNConfig(n_devices=3, n_sources=3, hidden=8, fc=8, pathway_loss=0.5))
    assert CoSeRNN(CoSeRNNConfig(n_devices=3, n_sources=3, pathway_loss=0)).describe() == (
        "lstm, the paper's objective alone"
    )
    assert CoSeRNN(CoSeRNNConfig(n_devices=3, n_sources=3)).describe() == "lstm"
    u, u_hat = model.embed(batch, with_u_hat=True)
    torch.testing.assert_close(u, model.embed(batch))
    plain, loss, n = training_objective(u, batch)
    with_pathway, _, _ = training_objective(u, batch, pathway_loss=0.5, u_hat=u_hat)
    u_hat_loss, m = cosine_loss(F.normalize(u_hat, dim=-1), batch, TRAIN)
    assert n == m > 10
    torch.testing.assert_close(with_pathway, plain + 0.5 * u_hat_loss / n)
    assert "pathway loss 0.5" in model.describe()


@pytest.mark.parametrize(
    "option,message",
    [
        (["--max-updates", "-1"], "max_updates must be >= 0"),
        (["--warmup", "-1"], "warmup and max_updates must be >= 0"),
        (["--pathway-loss", "nan"], "pathway_loss must be a finite weight"),
        (["--learning-rate", "0"], "learning_rate must be finite and > 0"),
        (["--learning-rates", "1e-3", "inf"], "learning_rate must be finite and > 0"),
    ],
)
def test_cli_settings_are_checked_before_the_data_is_read(tmp_path, option, message):
    with pytest.raises(SystemExit, match=message):  # the missing file would be named otherwise
        main(["cosernn", "train", "--dataset", str(tmp_path / "never-read.tsv"), *option])


def test_cli_learning_rate_grid_cannot_resume(tmp_path):
    saved = tmp_path / "run.pt"
    saved.write_bytes(b"")
    with pytest.raises(SystemExit, match="--resume continues one run; --learning-rates trains several"):
        main(
            [
                "cosernn",
                "train",
                "--dataset",
                str(tmp_path / "never-read.tsv"),
                "--learning-rates",
                "1e-3",
                "5e-4",
                "--save",
                str(saved),
                "--resume",
            ]
        )


def test_a_learning_rate_that_diverges_is_left_out_of_the_choice():
    from seqrec.cosernn.train import choose_learning_rate

    def fit(rate):
        if rate > 1:
            raise FloatingPointError("non-finite training loss at epoch 1")
        history = [{"valid_cosine": float("nan")}, {"valid_cosine": 0.5 + rate}]
        return f"model at {rate}", history

    lines = []
    model, history, rate = choose_learning_rate([10.0, 0.1, 0.2], fit, lines.append, "CoSeRNN")
    assert (model, rate) == ("model at 0.2", 0.2) and history[-1]["valid_cosine"] == 0.7
    assert "CoSeRNN learning rate 10: diverged" in lines[0]
    with pytest.raises(FloatingPointError, match="every learning rate diverged"):
        choose_learning_rate([10.0, 20.0], fit, lines.append, "CoSeRNN")
