"""Checkpoints of both models, and every file a command writes, are written atomically: a failed
write leaves the previous file as it was and no temporary file behind; a good one leaves only
the file, with the mode the umask gives; two writers of one path each leave a whole file; an
output that is one of the command's inputs is refused."""

import os

import pytest
import torch

from seqrec.checkpoints import open_atomically, refuse_overwriting, save_atomically
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


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_mode_follows_the_umask(tmp_path, umask, mode):
    path = tmp_path / "out.pt"
    path.write_text("old")
    os.chmod(path, 0o600)
    old = os.umask(umask)
    try:
        save_atomically({"w": torch.ones(1)}, path)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == mode


def test_two_writers_of_one_path_each_leave_a_whole_file(tmp_path):
    path = tmp_path / "recs.tsv"
    with open_atomically(path, "w") as first:
        first.write("first\n" * 1000)
        with open_atomically(path, "w") as second:  # a second run starts before the first ends
            second.write("second\n" * 10)
        assert path.read_text() == "second\n" * 10
        first.write("first\n")
    assert path.read_text() == "first\n" * 1001
    assert os.listdir(tmp_path) == ["recs.tsv"]


def test_an_interrupted_write_leaves_no_temporary(tmp_path):
    path = tmp_path / "recs.tsv"
    with pytest.raises(KeyboardInterrupt):
        with open_atomically(path, "w") as f:
            f.write("partial")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_an_output_that_is_an_input_is_refused(tmp_path):
    data = tmp_path / "train.tsv"
    data.write_text("SessionId\tItemId\tTime\n")
    link = tmp_path / "alias.tsv"
    link.symlink_to(data)
    with pytest.raises(SystemExit, match="--save .*alias.tsv: that is an input"):
        refuse_overwriting(str(link), "--save", [None, str(data)])
    refuse_overwriting(str(tmp_path / "new.pt"), "--save", [str(data)])  # a new file is fine
    refuse_overwriting(None, "--save", [str(data)])
