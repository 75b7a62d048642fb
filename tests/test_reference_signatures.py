"""The pure-PyTorch references are called with the ops' own arguments throughout the tests, so
their signatures must stay the ops' signatures: the same names, kinds and defaults."""

import inspect

import pytest

import seqrec_ext
import seqrec_ext.reference as reference

SHARED = [name for name in reference.__all__ if hasattr(seqrec_ext, name)]


def test_every_op_with_a_reference_is_compared():
    assert set(SHARED) >= {
        "adagrad_momentum_",
        "sparse_adagrad_momentum_",
        "alias_build",
        "alias_draw",
        "gru_sequence",
        "gru_step",
        "lstm_sequence",
        "sampled_ranking_loss",
    }


@pytest.mark.parametrize("name", SHARED)
def test_reference_has_the_op_signature(name):
    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(getattr(reference, name)) == shape(getattr(seqrec_ext, name))
