"""The fixed item space of CoSeRNN: 40-d unit-norm word2vec vectors learned over
sessions (each session a sentence, each track a word) with gensim (an optional dependency:
``pip install gensim``), negative sampling. The paper trains word2vec's continuous bag-of-words
model on user playlists (Hansen et al., RecSys 2020, section 3.2); there are no playlists here,
so the sessions before the test period stand in for them, and CBOW is the default
(``method="cbow"``; ``"skipgram"`` was this package's earlier choice). Single-threaded and
seeded, so the vectors are reproducible.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

WORD2VEC_METHODS = ("cbow", "skipgram")


def word2vec_item_vectors(
    sessions: Sequence[np.ndarray],
    n_items: int,
    *,
    dim: int = 40,
    window: int = 5,
    negative: int = 5,
    epochs: int = 10,
    min_count: int = 1,
    seed: int = 0,
    method: str = "cbow",
) -> np.ndarray:
    """Item vectors ``(n_items, dim)`` float32, unit norm; items absent from ``sessions`` (or
    under ``min_count``) get zero rows. ``sessions``: arrays of dense item ids in [0, n_items).
    ``method``: ``cbow`` (continuous bag of words, the paper's) or ``skipgram``."""
    if method not in WORD2VEC_METHODS:
        raise ValueError(f"word2vec method must be one of {', '.join(WORD2VEC_METHODS)}, got {method!r}")
    try:
        from gensim.models import Word2Vec
    except ImportError:
        raise ImportError(
            "word2vec item vectors need gensim: pip install gensim (or pip install 'seqrec_ext[cosernn]')"
        ) from None
    sentences = [[str(int(i)) for i in s] for s in sessions if len(s) > 0]
    if not sentences:
        raise ValueError("word2vec: no sessions to learn item vectors from")
    model = Word2Vec(
        sentences=sentences,
        vector_size=dim,
        window=window,
        min_count=min_count,
        sg=1 if method == "skipgram" else 0,
        negative=negative,
        epochs=epochs,
        seed=seed,
        workers=1,
    )
    vectors = np.zeros((n_items, dim), dtype=np.float32)
    keys = model.wv.index_to_key
    vectors[np.asarray([int(k) for k in keys], dtype=np.int64)] = model.wv.vectors
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def session_item_vectors(item_rows: Sequence[np.ndarray], item_ids: np.ndarray, *, seed: int = 0, method: str = "cbow"):
    """``word2vec_item_vectors`` over sessions given as rows of raw item ids (``-1`` padding),
    for the sorted raw ids ``item_ids``: ``(len(item_ids), dim)``, row ``i`` for ``item_ids[i]``."""
    dense = [np.searchsorted(item_ids, row[row >= 0]) for row in item_rows]
    return word2vec_item_vectors(dense, len(item_ids), seed=seed, method=method)
