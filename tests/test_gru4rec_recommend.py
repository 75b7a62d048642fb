"""GRU4Rec inference: the step and the session outputs against a step-by-step loop, and
recommend() against the dense reference (the whole score matrix, the session's items masked, a
stable sort), with original item ids, unknown ids and bad arguments."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seqrec.gru4rec import GRU4Rec, GRU4RecConfig

N_ITEMS = 40


def model(layers=(), embedding="constrained", loss="bpr-max", elu=0.5, seed=0):
    cfg = GRU4RecConfig(
        hidden=8, layers=list(layers), embedding=embedding, embedding_size=5, loss=loss, elu_param=elu, seed=seed
    )
    m = GRU4Rec(N_ITEMS, cfg, dtype=torch.float64)
    with torch.no_grad():  # biases away from zero, so that they count
        m.params.out_bias.copy_(
            torch.randn(N_ITEMS, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        )
    return m


def loop_output(m, session):
    """The top layer's output after the session, one step at a time."""
    states = None
    for item in session:
        x, states = m.step(torch.tensor([item]), states)
    return x[0]


@pytest.mark.parametrize("layers,embedding", [((), "constrained"), ((6,), "separate"), ((), "none")])
def test_session_outputs_equal_the_step_loop(layers, embedding):
    m = model(layers, embedding)
    sessions = [[3], [5, 9, 2, 2], [], [39, 0]]
    out = m.session_outputs(sessions)
    assert out.shape == (4, 8)
    for i, s in enumerate(sessions):
        expected = loop_output(m, s) if s else torch.zeros(8, dtype=torch.float64)
        torch.testing.assert_close(out[i], expected, rtol=1e-12, atol=1e-14)  # (B = 1 products round apart)


def dense_reference(m, sessions, k, exclude_seen):
    scores = m.session_outputs(sessions) @ m.params.out_table.t() + m.params.out_bias
    if m.score_elu > 0:
        scores = F.elu(scores, m.score_elu)
    if exclude_seen:
        for i, s in enumerate(sessions):
            scores[i, s] = float("-inf")
    top, order = torch.sort(scores, dim=1, descending=True, stable=True)
    return order[:, :k].numpy(), top[:, :k].numpy()


@pytest.mark.parametrize("exclude_seen", [True, False])
@pytest.mark.parametrize("loss", ["bpr-max", "cross-entropy"])
def test_recommend_equals_dense_reference(exclude_seen, loss):
    m = model(loss=loss)
    sessions = [[1, 2, 3], [7], [7, 7, 8, 30], [0, 39]]
    rec = m.recommend(sessions, k=10, exclude_seen=exclude_seen)
    ids, scores = dense_reference(m, sessions, 10, exclude_seen)
    np.testing.assert_array_equal(rec.items, ids)
    np.testing.assert_allclose(rec.scores, scores, rtol=1e-12)
    assert rec.valid.all() and rec.unknown == 0
    if exclude_seen:
        assert not any(set(rec.items[i]) & set(s) for i, s in enumerate(sessions))


def test_original_ids_in_and_out_and_batches():
    m = model()
    m.item_ids = np.arange(N_ITEMS) * 7 + 1000  # the data's own ids
    sessions = [[1000 + 7 * i for i in s] for s in ([1, 2], [5], [3, 3, 4])]
    rec = m.recommend(sessions, k=5, batch_size=2)  # two batches
    ids, _ = dense_reference(m, [[1, 2], [5], [3, 3, 4]], 5, True)
    np.testing.assert_array_equal(rec.items, ids * 7 + 1000)


def test_unknown_items_and_short_catalogues():
    m = model()
    m.item_ids = np.arange(N_ITEMS) + 100
    with pytest.raises(ValueError, match=r"session 1: item\(s\) 5, 99 not in the model's catalogue"):
        m.recommend([[100], [5, 101, 99]], k=3)
    rec = m.recommend([[100], [5, 101, 99], [1], []], k=3, skip_unknown=True)
    assert rec.unknown == 3
    ids, _ = dense_reference(m, [[0], [1], [], []], 3, True)
    np.testing.assert_array_equal(rec.items[:2], ids[:2] + 100)
    # every item of session 2 unknown: nothing to recommend from, so no recommendation; an empty
    # session given as such is scored from the zero state
    assert not rec.valid[2].any() and rec.valid[3].all()
    np.testing.assert_array_equal(rec.items[3], ids[3] + 100)
    # a session holding every item but two: two valid slots of k = 5
    rec = m.recommend([list(range(100, 100 + N_ITEMS - 2))], k=5)
    assert rec.valid.tolist() == [[True, True, False, False, False]]
    assert set(rec.items[0, :2]) == {100 + N_ITEMS - 2, 100 + N_ITEMS - 1} and np.isinf(rec.scores[0, 2:]).all()
    with pytest.raises(ValueError, match="k must lie in"):
        m.recommend([[100]], k=0)


def write_log(path, sessions, item_base=500):
    with open(path, "w") as f:
        f.write("SessionId\tItemId\tTime\n")
        t = 0
        for sid, items in sessions.items():
            for item in items:
                t += 1
                f.write(f"{sid}\t{item_base + item}\t{t}\n")


def test_cli_recommend_for_items_and_a_file(tmp_path, capsys):
    from seqrec.cli import main
    from seqrec.gru4rec import load_checkpoint

    g = np.random.default_rng(0)
    log = {s: list(g.integers(0, 30, size=int(g.integers(2, 6)))) for s in range(300)}
    write_log(tmp_path / "train.tsv", log)
    ckpt = tmp_path / "m.pt"
    args = ["gru4rec", "train", "--dataset", str(tmp_path / "train.tsv"), "--test-days", "0.0001", "--epochs", "1"]
    assert main([*args, "--layers", "8", "--n-sample", "10", "--batch-size", "8", "--quiet", "--save", str(ckpt)]) == 0
    model, _, item_ids = load_checkpoint(ckpt)
    capsys.readouterr()
    assert main(["gru4rec", "recommend", "--load", str(ckpt), "--items", "501,502", "-k", "5"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    expected = model.recommend([[501, 502]], k=5)
    assert [int(r.split("|")[2]) for r in rows] == expected.items[0].tolist()
    # a file of sessions, one of them with an unknown item
    write_log(tmp_path / "sessions.tsv", {7: [1, 2], 9: [3, 999], 4: [5]})
    out = tmp_path / "recs.tsv"
    run = ["gru4rec", "recommend", "--load", str(ckpt), "--input", str(tmp_path / "sessions.tsv"), "-k", "3"]
    with pytest.raises(SystemExit, match="session 9: item.s. 1499 not in the model's catalogue"):
        main([*run, "--output", str(out), "--quiet"])
    assert not out.exists() and not (tmp_path / "recs.tsv.part").exists()
    assert main([*run, "--output", str(out), "--quiet", "--skip-unknown", "--batch-size", "2"]) == 0
    assert "skipped 1 unknown item id(s)" in capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert lines[0] == "SessionId\tRank\tItemId\tScore" and len(lines) == 1 + 3 * 3
    by_session = {}
    for line in lines[1:]:
        sid, rank, item, _ = line.split("\t")
        by_session.setdefault(int(sid), []).append(int(item))
    assert by_session[7] == model.recommend([[501, 502]], k=3).items[0].tolist()
    assert by_session[9] == model.recommend([[503]], k=3).items[0].tolist()
    assert sorted(by_session) == [4, 7, 9]
    with pytest.raises(SystemExit, match="needs --output"):
        main(run)
    # every item unknown: an error for --items, no rows (and a count) for a session of a file
    with pytest.raises(SystemExit, match="none of the items 7777, 8888 is in the model's catalogue"):
        main(["gru4rec", "recommend", "--load", str(ckpt), "--items", "7777,8888", "--skip-unknown"])
    with pytest.raises(SystemExit, match="--output goes with --input"):
        main(["gru4rec", "recommend", "--load", str(ckpt), "--items", "501", "--output", str(out)])
    write_log(tmp_path / "unknown.tsv", {1: [1, 2], 2: [990, 991]})
    capsys.readouterr()
    run = ["gru4rec", "recommend", "--load", str(ckpt), "--input", str(tmp_path / "unknown.tsv"), "-k", "3"]
    assert main([*run, "--output", str(out), "--quiet", "--skip-unknown"]) == 0
    assert "2 sessions, 3 recommendations (up to 3 each); 1 session(s) without a known item got none" in (
        capsys.readouterr().out
    )
    assert {line.split("\t")[0] for line in out.read_text().splitlines()[1:]} == {"1"}


def test_is_a_module_with_state_dict_and_conversions():
    m = model(layers=(6,))
    names = {n for n, _ in m.named_parameters()}
    assert {"out_table", "out_bias", "w_in", "w_hh", "b_h", "layer1_w_in", "layer1_w_hh"} <= names
    assert not any(p.requires_grad for p in m.parameters())
    assert m.params.out_table is m.out_table and m.upper[0]["w_hh"] is m.layer1_w_hh
    twin = model(layers=(6,), seed=1)
    assert not torch.equal(twin.out_table, m.out_table)
    twin.load_state_dict(m.state_dict())
    for (name, a), b in zip(m.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), name
    sessions = [[1, 2], [3]]
    np.testing.assert_array_equal(twin.recommend(sessions, k=4).items, m.recommend(sessions, k=4).items)
    single = copy.deepcopy(m).float()  # a conversion reaches the fused ops' view and the optimizer state
    assert (
        single.params.out_table.dtype == torch.float32 and single.optimizer_state["out_table"][0].dtype == torch.float32
    )
    assert single.params.out_table is single.out_table and single.upper[0]["w_in"] is single.layer1_w_in
    x, states = m(torch.tensor([3, 4]))
    y, _ = m.step(torch.tensor([3, 4]))
    assert torch.equal(x, y) and len(states) == 2


def test_training_after_a_conversion_updates_the_module():
    from seqrec.gru4rec.data import Sessions

    m = GRU4Rec(N_ITEMS, GRU4RecConfig(hidden=8, n_sample=5, batch_size=4, seed=0))
    m = m.double()
    items = torch.randint(0, N_ITEMS, (60,), generator=torch.Generator().manual_seed(0))
    sessions = Sessions(
        items=items,
        offsets=torch.arange(0, 61, 4),
        times=torch.arange(60, dtype=torch.float64),
        session_ids=np.arange(15),
        item_ids=np.arange(N_ITEMS),
    )
    before = m.state_dict()["out_table"].clone()
    m.train_epoch(sessions)
    assert not torch.equal(m.out_table, before) and m.out_table.dtype == torch.float64
    assert m.optimizer_state["out_table"][0].abs().sum() > 0


def test_export_the_serving_step():
    from seqrec.gru4rec.recommend import NextItems

    m = model(layers=(6,))
    serve = NextItems(m, k=7)
    items = torch.tensor([1, 5, 9])
    states = [torch.zeros(3, size, dtype=torch.float64) for size in m.config.sizes]
    batch = torch.export.Dim("batch", min=1)
    # (dynamic shapes follow forward's signature: items, then the tuple of *states)
    dims = ({0: batch}, tuple({0: batch} for _ in states))
    program = torch.export.export(serve, (items, *states), dynamic_shapes=dims)
    exported = program.module()
    out = exported(items, *states)
    for a, b in zip(out, serve(items, *states)):
        assert torch.equal(a, b)
    # the next step from the returned states, and another batch size
    nxt = exported(torch.tensor([2, 2, 30]), *out[2:])
    for a, b in zip(nxt, serve(torch.tensor([2, 2, 30]), *out[2:])):
        assert torch.equal(a, b)
    five = [torch.zeros(5, size, dtype=torch.float64) for size in m.config.sizes]
    assert exported(torch.arange(5), *five)[0].shape == (5, 7)
    np.testing.assert_array_equal(out[0][1:2].numpy(), m.recommend([[5]], k=7, exclude_seen=False).items)
