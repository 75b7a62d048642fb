"""The fixed item space of CoSeRNN: 40-d unit-norm word2vec vectors learned over
sessions (each session a sentence, each track a word), with gensim's skip-gram with negative
sampling (an optional dependency: ``pip install gensim``). Single-threaded and seeded, so the
vectors are reproducible.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


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
) -> np.ndarray:
    """Item vectors ``(n_items, dim)`` float32, unit norm; items absent from ``sessions`` (or
    under ``min_count``) get zero rows. ``sessions``: arrays of dense item ids in [0, n_items)."""
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
        sg=1,
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
