"""The synthetic log has the promised shape: power-law popularity, many length-2 sessions, and a
successor signal."""

import numpy as np

from seqrec.gru4rec.data import build_sessions
from seqrec.gru4rec.synthetic import synthetic_events


def test_shape_and_signal():
    ev = synthetic_events(n_events=50_000, n_items=2_000, follow=0.5, seed=0)
    assert len(ev) >= 50_000 and ev.item_ids.max() < 2_000
    assert np.all(np.diff(ev.times) > 0)
    sessions = build_sessions(ev)
    lengths = np.diff(sessions.offsets.numpy())
    assert lengths.min() >= 2 and np.argmax(np.bincount(lengths)) == 2  # length 2 is the most common
    counts = np.sort(np.bincount(ev.item_ids, minlength=2_000))[::-1]
    assert counts[:20].sum() > 0.1 * len(ev)  # a heavy head
    # the most frequent follower of an item covers far more than chance
    items = sessions.items.numpy()
    same_session = np.ones(len(items) - 1, dtype=bool)
    same_session[sessions.offsets.numpy()[1:-1] - 1] = False
    pairs = np.stack([items[:-1][same_session], items[1:][same_session]], 1)
    top = pairs[pairs[:, 0] == np.bincount(pairs[:, 0]).argmax()]
    assert np.bincount(top[:, 1]).max() / len(top) > 0.4
    # reproducible
    assert np.array_equal(synthetic_events(5_000, 100, seed=3).item_ids, synthetic_events(5_000, 100, seed=3).item_ids)
