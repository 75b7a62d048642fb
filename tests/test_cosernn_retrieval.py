"""CoSeRNN retrieval: exact top-k by cosine against the dense reference, and the faiss indexes'
recall against exact on clustered vectors (skipped without faiss)."""

import importlib.util

import pytest
import torch

from seqrec.cosernn.retrieval import AnnIndex, exact_top_k, recall_at_k


def clustered(n, d=16, clusters=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, d, generator=g)
    return centres[torch.randint(0, clusters, (n,), generator=g)] + 0.3 * torch.randn(n, d, generator=g)


def test_exact_equals_dense_cosine():
    items, users = clustered(3000), clustered(20, seed=1)
    exclude = torch.tensor([[0, 1, -1]] * 20)
    ids, scores = exact_top_k(users, items, k=15, exclude=exclude)
    cos = torch.nn.functional.normalize(users, dim=1) @ torch.nn.functional.normalize(items, dim=1).t()
    cos[:, :2] = float("-inf")
    top, order = torch.sort(cos, dim=1, descending=True, stable=True)
    assert torch.equal(ids, order[:, :15])
    torch.testing.assert_close(scores, top[:, :15], rtol=1e-5, atol=1e-6)
    assert recall_at_k(ids, order[:, :15]) == 1.0
    assert recall_at_k(order[:, 15:30], order[:, :15]) == 0.0


@pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="needs faiss: pip install faiss-cpu")
@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_ann_recall_against_exact(kind):
    items, users = clustered(20_000), clustered(50, seed=2)
    exact, _ = exact_top_k(users, items, k=10)
    index = AnnIndex(items, kind, nprobe=32)
    ids, scores = index.search(users, 10)
    assert ids.shape == (50, 10) and scores.dtype == torch.float32
    assert recall_at_k(ids, exact) >= 0.9
    with pytest.raises(ValueError, match="k must lie in"):
        index.search(users, 0)


def test_bad_kind():
    if importlib.util.find_spec("faiss") is None:
        pytest.skip("needs faiss")
    with pytest.raises(ValueError, match="kind must be"):
        AnnIndex(clustered(100), "lsh")
