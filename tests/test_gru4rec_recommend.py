"""GRU4Rec inference: the step and the session outputs against a step-by-step loop, and
recommend() against the dense reference (the whole score matrix, the session's items masked, a
stable sort), with original item ids, unknown ids and bad arguments."""

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
    rec = m.recommend([[100], [5, 101, 99], [1]], k=3, skip_unknown=True)
    assert rec.unknown == 3
    ids, _ = dense_reference(m, [[0], [1], []], 3, True)
    np.testing.assert_array_equal(rec.items, ids + 100)
    # a session holding every item but two: two valid slots of k = 5
    rec = m.recommend([list(range(100, 100 + N_ITEMS - 2))], k=5)
    assert rec.valid.tolist() == [[True, True, False, False, False]]
    assert set(rec.items[0, :2]) == {100 + N_ITEMS - 2, 100 + N_ITEMS - 1} and np.isinf(rec.scores[0, 2:]).all()
    with pytest.raises(ValueError, match="k must lie in"):
        m.recommend([[100]], k=0)
