"""The learned baselines of CoSeRNN's Table 2 (JODIE, RRN, Latent Cross adapted to a fixed item
space): shapes and unit norm, causality (u_t sees sessions before t and the context of t, and
nothing of other users), JODIE's projection by the elapsed time, the per-user vectors, training
(it learns, beats trivial predictors, returns the best epoch, is reproducible) and scoring with
the evaluation's metrics."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seqrec.cosernn.evaluate import evaluate
from seqrec.cosernn.learned_baselines import (
    JODIE,
    LEARNED_BASELINES,
    RRN,
    UserTable,
    build_learned_baseline,
    elapsed_times,
    train_learned_baseline,
)
from seqrec.cosernn.listening import sessionize_listening
from seqrec.cosernn.model import mean_cosine, predict
from seqrec.cosernn.sequences import TEST, TRAIN, VALID, build_user_sequences
from seqrec.cosernn.synthetic import synthetic_listening

NAMES = list(LEARNED_BASELINES)


@pytest.fixture(scope="module")
def data():
    log, vectors = synthetic_listening(n_users=60, sessions_per_user=40, days=40, seed=0)
    ids = np.unique(log.items)
    seqs = build_user_sequences(
        sessionize_listening(log), vectors[ids], ids, n_devices=3, n_sources=3, test_days=10, valid_days=4
    )
    return seqs, torch.from_numpy(vectors[ids])


def _model(name, seqs, seed=0):
    torch.manual_seed(seed)
    return build_learned_baseline(name, seqs.n_features, seqs.users, hidden=16).double().eval()


def _embed(model, batch):
    with torch.no_grad():
        return model.embed(batch)  # in the model's dtype, float64 here


def _with_user_vectors(model, seed=1):
    """Random per-user vectors (trained ones are not zero), so that tests see them used."""
    if getattr(model, "users", None) is not None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            weight = model.users.embedding.weight
            weight.copy_(0.3 * torch.randn(weight.shape, generator=g, dtype=weight.dtype))
    return model


def test_registry_and_unknown_name(data):
    seqs, _ = data
    assert NAMES == ["JODIE", "RRN", "Latent Cross"]
    with pytest.raises(ValueError, match="unknown learned baseline"):
        build_learned_baseline("GRU4Rec", seqs.n_features, seqs.users)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_unit_norm(data, name):
    seqs, _ = data
    model = _with_user_vectors(_model(name, seqs))
    batch = seqs.select(torch.arange(7))
    u = _embed(model, batch)
    assert u.shape == (*batch.s_pos.shape[:2], 40)
    real = batch.mask
    torch.testing.assert_close(u[real].norm(dim=-1), torch.ones(int(real.sum()), dtype=u.dtype))
    pred = predict(model.float(), seqs, batch_size=16)
    assert pred.shape == seqs.s_pos.shape and pred.dtype == torch.float32
    torch.testing.assert_close(pred[:7, : u.shape[1]], u.float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_causal(data, name):
    """Changing session t0's s / s+ / s- and everything after it leaves u_<=t0 as it was (and does
    change the later u); changing the context of t0 alone, or s+ of t0 - 1, does change u_t0."""
    seqs, _ = data
    model = _with_user_vectors(_model(name, seqs))
    index = torch.arange(5)
    t0 = 12
    assert int(seqs.lengths[index].min()) > t0 + 5
    u = _embed(model, seqs.select(index))

    g = torch.Generator().manual_seed(3)
    later = seqs.select(index)
    for key in ("s_all", "s_pos", "s_neg"):
        value = getattr(later, key).clone()
        value[:, t0:] = F.normalize(torch.randn(value[:, t0:].shape, generator=g), dim=-1)
        setattr(later, key, value)
    later.features = later.features.clone()
    later.features[:, t0 + 1 :] = torch.rand(later.features[:, t0 + 1 :].shape, generator=g)
    later.starts = later.starts.clone()
    later.starts[:, t0 + 1 :] += 3600.0 * 50 * torch.rand(later.starts[:, t0 + 1 :].shape, generator=g).double()
    v = _embed(model, later)
    torch.testing.assert_close(v[:, : t0 + 1], u[:, : t0 + 1], atol=1e-10, rtol=0)
    assert (v[:, t0 + 1 :] - u[:, t0 + 1 :]).abs().amax() > 1e-3

    context = seqs.select(index)
    context.features = context.features.clone()
    context.features[:, t0] = torch.rand(context.features[:, t0].shape, generator=g)
    w = _embed(model, context)
    torch.testing.assert_close(w[:, :t0], u[:, :t0], atol=1e-10, rtol=0)
    assert (w[:, t0] - u[:, t0]).abs().amax() > 1e-3

    played = seqs.select(index)
    played.s_pos = played.s_pos.clone()
    played.s_pos[:, t0 - 1] = F.normalize(torch.randn(played.s_pos[:, t0 - 1].shape, generator=g), dim=-1)
    x = _embed(model, played)
    torch.testing.assert_close(x[:, : t0 - 1], u[:, : t0 - 1], atol=1e-10, rtol=0)
    assert (x[:, t0] - u[:, t0]).abs().amax() > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_a_user_alone_as_in_a_batch(data, name):
    """Other users and the padding after a user's sessions change nothing of the user's u_t."""
    seqs, _ = data
    model = _with_user_vectors(_model(name, seqs))
    index = torch.arange(9)
    together = _embed(model, seqs.select(index))
    shortest = int(torch.argmin(seqs.lengths[index]))
    alone = _embed(model, seqs.select(index[shortest : shortest + 1]))
    n = int(seqs.lengths[shortest])
    assert n < together.shape[1]  # padded in the batch
    torch.testing.assert_close(alone[0, :n], together[shortest, :n], atol=1e-10, rtol=0)


def test_jodie_projects_by_the_elapsed_time(data):
    """JODIE's u_t depends on the time since session t - 1 through its projection (1 + W_p Delta):
    moving session t0's start changes u_t0; with W_p = 0 it does not (u_t0 + 1 still changes, the
    gap being an input of the next update)."""
    seqs, _ = data
    model = _with_user_vectors(_model("JODIE", seqs))
    assert isinstance(model, JODIE)
    index, t0 = torch.arange(5), 10
    batch = seqs.select(index)
    moved = seqs.select(index)
    moved.starts = moved.starts.clone()
    moved.starts[:, t0] += 6 * 3600.0
    gap, _ = elapsed_times(batch.starts)
    gap_moved, _ = elapsed_times(moved.starts)
    assert (gap_moved[:, t0] > gap[:, t0]).all() and torch.equal(gap_moved[:, :t0], gap[:, :t0])
    u, v = _embed(model, batch), _embed(model, moved)
    torch.testing.assert_close(v[:, :t0], u[:, :t0], atol=1e-10, rtol=0)
    assert (v[:, t0] - u[:, t0]).abs().amax() > 1e-3
    with torch.no_grad():
        model.projection.weight.zero_()
    u, v = _embed(model, batch), _embed(model, moved)
    torch.testing.assert_close(v[:, : t0 + 1], u[:, : t0 + 1], atol=1e-10, rtol=0)
    assert (v[:, t0 + 1] - u[:, t0 + 1]).abs().amax() > 1e-3


def test_elapsed_times():
    starts = torch.tensor([[1000.0, 1000.0 + 3 * 3600, 1000.0 + 2 * 86400, 0.0]], dtype=torch.float64)
    gap, age = elapsed_times(starts)
    torch.testing.assert_close(gap[0, :3], torch.log1p(torch.tensor([0.0, 3.0, 45.0])))
    torch.testing.assert_close(age[0, :3], torch.log1p(torch.tensor([0.0, 0.125, 2.0])))
    assert torch.isfinite(gap).all() and torch.isfinite(age).all()


def test_user_table_rows():
    table = UserTable(np.array([30, 10, 20]), 4)
    assert table.index(np.array([20, 10, 99, 30, 5])).tolist() == [2, 1, 0, 3, 0]
    with torch.no_grad():
        table.embedding.weight.fill_(1.0)
    out = table(torch.tensor([0, 2]))
    assert out[0].abs().max() == 0 and torch.equal(out[1], torch.ones(4))


def test_rrn_adds_the_stationary_user_vector(data):
    """RRN's u_t = normalise(dynamic + u_i): a user unknown to the table gets the dynamic part alone."""
    seqs, _ = data
    model = _with_user_vectors(_model("RRN", seqs))
    assert isinstance(model, RRN)
    batch = seqs.select(torch.arange(3))
    known = _embed(model, batch)
    stranger = seqs.select(torch.arange(3))
    stranger.users = np.array([-5, -6, -7])
    unknown = _embed(model, stranger)
    assert (known - unknown).abs().amax() > 1e-3
    with torch.no_grad():
        model.users.embedding.weight.zero_()
    torch.testing.assert_close(_embed(model, batch), unknown)


@pytest.mark.parametrize("name", NAMES)
def test_training_learns_and_beats_trivial_predictors(data, name):
    seqs, vectors = data
    untrained = mean_cosine(_model(name, seqs).float(), seqs, VALID)
    model = train_learned_baseline(
        name, seqs, epochs=8, batch_size=8, learning_rate=2e-3, patience=3, seed=0, device="cpu", hidden=32
    )
    history = model.history
    valid = mean_cosine(model, seqs, VALID)
    # the model returned is the best epoch's on validation
    assert valid == pytest.approx(max(h["valid_cosine"] for h in history), abs=1e-6)
    assert history[-1]["train_cosine"] > history[0]["train_cosine"] + 0.2
    assert valid > untrained + 0.3
    # a trivial predictor: one direction for everyone, the training sessions' mean (scored, as the
    # model, by the evaluation's metrics)
    train_mask = (seqs.split == TRAIN) & seqs.has_pos
    constant = F.normalize(seqs.s_pos[train_mask].sum(0), dim=0).expand_as(seqs.s_pos)
    pred = predict(model, seqs)
    for split in (VALID, TEST):
        mask = seqs.split == split
        ours, theirs = evaluate(pred, seqs, mask, vectors), evaluate(constant, seqs, mask, vectors)
        assert ours["Cosine"] > theirs["Cosine"] + 0.2, (split, ours["Cosine"], theirs["Cosine"])


@pytest.mark.parametrize("name", NAMES)
def test_training_is_reproducible(data, name):
    seqs, _ = data
    small = seqs.select(torch.arange(16))
    settings = dict(epochs=2, batch_size=4, learning_rate=1e-3, patience=2, device="cpu", hidden=8)
    a = train_learned_baseline(name, small, seed=0, **settings)
    b = train_learned_baseline(name, small, seed=0, **settings)
    c = train_learned_baseline(name, small, seed=1, **settings)
    for (key, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), key
    cosines = lambda model: [(h["train_cosine"], h["valid_cosine"]) for h in model.history]  # noqa: E731
    assert cosines(a) == cosines(b) and len(cosines(a)) == 2
    assert any(not torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))


def test_the_command_line_trains_them_beside_cosernn(tmp_path, capsys):
    """``seqrec cosernn train --learned-baselines``: each trained with CoSeRNN's settings, a row
    of its own in the results table, counted among the baselines; ``seqrec cosernn stats`` on
    the same log."""
    from seqrec.cli import main

    results = tmp_path / "results.md"
    data = ["--dataset", "synthetic", "--synthetic-users", "40", "--item-vectors", "planted"]
    options = ["--max-epochs", "1", "--hidden", "8", "--fc", "8", "--threads", "1", "--quiet"]
    argv = ["cosernn", "train", *data, *options, "--results", str(results), "--learned-baselines", "rrn", "jodie"]
    assert main(argv) == 0
    table = results.read_text()
    for name in ("| RRN |", "| JODIE |", "| Last, any cxt |", "| CoSeRNN (lstm) |"):
        assert name in table, name
    assert "Latent Cross" not in table
    assert "RRN epoch 1" in capsys.readouterr().out
    assert main(["cosernn", "stats", "--dataset", "synthetic", "--synthetic-users", "40"]) == 0
    assert "| mobile share |" in capsys.readouterr().out


def test_the_command_line_chooses_each_model_s_learning_rate_on_validation(tmp_path, capsys):
    """``--learning-rates``: CoSeRNN and each learned baseline trained at every rate; each keeps
    the rate of its best validation cosine, the table says which, --save holds CoSeRNN's."""
    import re

    from seqrec.cli import main
    from seqrec.cosernn.train import load_checkpoint

    results, saved = tmp_path / "results.md", tmp_path / "model.pt"
    data = ["--dataset", "synthetic", "--synthetic-users", "40", "--item-vectors", "planted"]
    options = ["--max-epochs", "2", "--hidden", "8", "--fc", "8", "--threads", "1", "--quiet", "--warmup", "0"]
    rates = ["--learning-rates", "1e-4", "3e-2"]
    argv = ["cosernn", "train", *data, *options, *rates, "--learned-baselines", "rrn", "--save", str(saved)]
    log = tmp_path / "metrics.jsonl"
    assert main([*argv, "--results", str(results), "--log", str(log)]) == 0
    scores = {}
    for name, rate, score in re.findall(
        r"(CoSeRNN|RRN) learning rate (\S+): best validation cosine (\S+)", capsys.readouterr().out
    ):
        scores.setdefault(name, {})[float(rate)] = float(score)
    assert set(scores) == {"CoSeRNN", "RRN"} and all(set(s) == {1e-4, 3e-2} for s in scores.values())
    chosen = {name: max(s, key=s.get) for name, s in scores.items()}
    table = results.read_text()
    assert f"CoSeRNN {chosen['CoSeRNN']:g}, RRN {chosen['RRN']:g}." in table
    model, payload = load_checkpoint(str(saved))
    assert model.config.learning_rate == chosen["CoSeRNN"]
    assert payload["valid_cosine"] == pytest.approx(scores["CoSeRNN"][chosen["CoSeRNN"]], abs=1e-4)
    assert "training" not in payload  # the chosen model alone: nothing to resume
    # --log: one line per epoch of every model and rate, the best of each run is what was chosen on
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    runs = {}
    for line in lines:
        assert {"epoch", "model", "learning_rate", "updates", "train_cosine", "valid_cosine", "wall_s"} <= set(line)
        runs.setdefault((line["model"], line["learning_rate"]), []).append(line)
    assert set(runs) == {(m, r) for m in ("CoSeRNN", "RRN") for r in (1e-4, 3e-2)}
    for (name, rate), epochs in runs.items():
        assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
        best = max(e["valid_cosine"] for e in epochs if e["valid_cosine"] is not None)
        assert best == pytest.approx(scores[name][rate], abs=1e-4)
