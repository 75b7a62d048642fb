"""Checkpoints of both models are written atomically: a failed write leaves the previous
checkpoint as it was and no temporary file behind; a good one leaves only the checkpoint."""

import os

import pytest
import torch

from seqrec.checkpoints import save_atomically
from seqrec.cosernn import CoSeRNNConfig
from seqrec.cosernn import save_checkpoint as save_cosernn
from seqrec.gru4rec import GRU4Rec, GRU4RecConfig, load_checkpoint
from seqrec.gru4rec import save_checkpoint as save_gru4rec


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    save_atomically({"epoch": 1, "w": torch.arange(3.0)}, path)
    with pytest.raises(Exception):
        save_atomically({"epoch": 2, "bad": lambda: None}, path)  # a lambda does not pickle
    assert os.listdir(tmp_path) == ["model.pt"]
    payload = torch.load(path, weights_only=True)
    assert payload["epoch"] == 1 and torch.equal(payload["w"], torch.arange(3.0))


def test_both_models_write_through_it(tmp_path):
    model = GRU4Rec(30, GRU4RecConfig(hidden=4, layers=(3,)))
    save_gru4rec(model, tmp_path / "gru4rec.pt", epoch=2, item_ids=list(range(30)))
    loaded, epoch, item_ids = load_checkpoint(tmp_path / "gru4rec.pt")
    assert epoch == 2 and len(item_ids) == 30
    for name, t in model._tensors().items():
        assert torch.equal(t, loaded._tensors()[name]), name
    save_cosernn(tmp_path / "cosernn.pt", CoSeRNNConfig(n_devices=2, n_sources=2), {"w": torch.ones(2)}, epoch=1)
    assert sorted(os.listdir(tmp_path)) == ["cosernn.pt", "gru4rec.pt"]
