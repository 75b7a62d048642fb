"""Top-k tracks for predicted user embeddings over the whole item space, by cosine similarity
(CoSeRNN predicts a unit vector in the space of the track vectors):

* ``exact_top_k``: the fused ranking op on the L2-normalised vectors, tile by tile, never a
  (users, items) matrix; exact, ties by lower item id;
* ``AnnIndex``: approximate search with faiss (``pip install faiss-cpu``), an HNSW graph or an
  inverted file over the normalised vectors with inner product, for catalogues of millions where
  even a streamed exact pass per request is too slow. ``recall_at_k`` measures it against exact.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from seqrec_ext import rank_items


def _unit(x: Tensor) -> Tensor:
    return torch.nn.functional.normalize(x.float(), dim=1)


def exact_top_k(users: Tensor, item_vectors: Tensor, k: int, exclude: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """(ids, cosines), both ``(U, k)``, best first: the ``k`` items closest in cosine to each
    row of ``users (U, D)``; ``exclude (U, E)`` int64 (-1 pads) ids never returned to that row."""
    r = rank_items(_unit(users), _unit(item_vectors), k=k, exclude=exclude)
    return r.top_ids, r.top_scores


def _faiss():
    try:
        import faiss
    except ImportError as err:
        raise ImportError("approximate retrieval needs faiss: pip install faiss-cpu") from err
    return faiss


class AnnIndex:
    """A faiss index of the normalised item vectors (inner product = cosine).

    ``kind="hnsw"``: a graph of ``m`` links per node, built with ``ef_construction`` and searched
    with ``ef_search`` candidates (no training; the default). ``kind="ivf"``: ``nlist`` k-means cells (default ~4 sqrt(N)), of
    which ``nprobe`` are searched."""

    def __init__(
        self,
        item_vectors: Tensor,
        kind: str = "hnsw",
        *,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        nlist: Optional[int] = None,
        nprobe: int = 16,
        seed: int = 0,
    ):
        faiss = _faiss()
        vectors = np.ascontiguousarray(_unit(item_vectors).cpu().numpy())
        n, d = vectors.shape
        if kind == "hnsw":
            self.index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = ef_construction
            self.index.hnsw.efSearch = ef_search
        elif kind == "ivf":
            cells = nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))
            self.index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, cells, faiss.METRIC_INNER_PRODUCT)
            self.index.cp.seed = seed
            self.index.train(vectors)
            self.index.nprobe = nprobe
        else:
            raise ValueError(f"kind must be 'hnsw' or 'ivf', got {kind!r}")
        self.index.add(vectors)
        self.kind, self.n_items = kind, n

    def search(self, users: Tensor, k: int) -> Tuple[Tensor, Tensor]:
        """(ids, cosines) ``(U, k)``, best first; id -1 where the index found fewer than k."""
        if not 1 <= k <= self.n_items:
            raise ValueError(f"k must lie in [1, {self.n_items}], got {k}")
        scores, ids = self.index.search(np.ascontiguousarray(_unit(users).cpu().numpy()), k)
        return torch.from_numpy(ids), torch.from_numpy(scores)


def recall_at_k(approx_ids: Tensor, exact_ids: Tensor) -> float:
    """The share of the exact top-k that the approximate top-k holds, over all rows."""
    hits = sum(len(set(a.tolist()) & set(e.tolist()) - {-1}) for a, e in zip(approx_ids, exact_ids))
    total = int((exact_ids >= 0).sum())
    return hits / max(total, 1)
