"""Checkpoints of both models, and every file a command writes, are written atomically: a failed
write leaves the previous file as it was and no temporary file behind; a good one leaves only
the file, with the mode the umask gives; two writers of one path each leave a whole file; an
output that is one of the command's inputs is refused."""

import os

import hypothesis
import hypothesis.strategies as st
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
    for name, t in model.parameter_tensors().items():
        assert torch.equal(t, loaded.parameter_tensors()[name]), name
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


# ---- reading back: every fault a clear error, never a model with other numbers ----


@pytest.fixture(scope="module")
def gru4rec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "gru4rec.pt"
    model = GRU4Rec(40, GRU4RecConfig(hidden=6, embedding="separate", embedding_size=5))
    save_gru4rec(model, path, epoch=3, item_ids=list(range(100, 140)))
    return path


def _same_model(a, b) -> bool:
    return a.config == b.config and all(
        torch.equal(t, b.parameter_tensors()[n]) for n, t in a.parameter_tensors().items()
    )


def test_a_changed_tensor_byte_is_named(gru4rec_file, tmp_path):
    path = gru4rec_file
    data = path.read_bytes()
    original = load_checkpoint(path)[0]
    weights = original.params.w_hh.contiguous().numpy().tobytes()
    at = data.index(weights) + 17  # inside w_hh's stored bytes
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :])
    with pytest.raises(ValueError, match="damaged: the checksum of params/w_hh differs"):
        load_checkpoint(damaged)


@hypothesis.settings(
    max_examples=60, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7), cut=st.booleans())
def test_random_damage_is_an_error_or_changes_nothing(gru4rec_file, tmp_path, where, bit, cut):
    """A flipped bit anywhere or a file cut anywhere: a ValueError naming the file, or (a bit in
    bytes nothing reads) the very same model -- never one with other numbers."""
    path = gru4rec_file
    data = path.read_bytes()
    at = int(where * len(data))
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(data[:at] if cut else data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :])
    try:
        model, epoch, ids = load_checkpoint(damaged)
    except ValueError as err:
        assert str(damaged) in str(err)
        return
    assert not cut or at == len(data)
    assert _same_model(model, load_checkpoint(path)[0]) and epoch == 3 and list(ids) == list(range(100, 140))


def test_each_kind_of_wrong_file_has_its_message(gru4rec_file, tmp_path):
    path = gru4rec_file
    cases = {
        "empty.pt": (b"", "an empty file"),
        "text.pt": (b"epoch,loss\n1,0.5\n", "truncated, damaged, or not written by torch.save"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=message):
            load_checkpoint(tmp_path / name)
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match="not a seqrec GRU4Rec checkpoint .it holds a Tensor"):
        load_checkpoint(tmp_path / "tensor.pt")
    torch.save({"a": 1}, tmp_path / "dict.pt")
    with pytest.raises(ValueError, match="not a seqrec GRU4Rec checkpoint$"):
        load_checkpoint(tmp_path / "dict.pt")
    save_cosernn(tmp_path / "cosernn.pt", CoSeRNNConfig(n_devices=2, n_sources=2), {"w": torch.ones(2)}, epoch=1)
    with pytest.raises(ValueError, match="not a seqrec GRU4Rec checkpoint .it is a seqrec CoSeRNN checkpoint"):
        load_checkpoint(tmp_path / "cosernn.pt")
    from seqrec.cosernn import load_checkpoint as load_cosernn

    with pytest.raises(ValueError, match="not a seqrec CoSeRNN checkpoint .it is a seqrec GRU4Rec checkpoint"):
        load_cosernn(str(path))
    with pytest.raises(ValueError, match="a folder"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda p: p.update(item_ids=p["item_ids"][:-1]), "item_ids .* must be n_items = 40"),
        (
            lambda p: p["params"].update(w_hh=torch.zeros(3, 3)),
            "params of w_hh is \\(3, 3\\), its settings make it \\(18, 6\\)",
        ),
        (lambda p: p["state"].pop("out_bias"), "optimizer accumulator of out_bias is NoneType"),
        (lambda p: p["config"].update(hidden=-1), "its settings are not valid"),
        (lambda p: p["config"].update(colour="red"), "its settings are not valid"),
        (lambda p: p.pop("generator"), "generator is missing"),
    ],
)
def test_a_checkpoint_that_does_not_fit_its_settings_is_refused(gru4rec_file, tmp_path, change, message):
    """Crafted files (written with valid checksums): each structural fault named."""
    path = gru4rec_file
    payload = torch.load(path, weights_only=True)
    change(payload)
    save_atomically(payload, tmp_path / "crafted.pt")
    with pytest.raises(ValueError, match=message):
        load_checkpoint(tmp_path / "crafted.pt")


def test_a_checkpoint_from_another_kind_of_device_loads(gru4rec_file, tmp_path):
    """A CUDA generator's state (16 bytes) does not fit a CPU generator: the model loads with its
    generator seeded from the settings instead of being called damaged."""
    payload = torch.load(gru4rec_file, weights_only=True)
    payload["generator"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA generator's state
    save_atomically(payload, tmp_path / "from-gpu.pt")
    model, epoch, _ = load_checkpoint(tmp_path / "from-gpu.pt")
    assert epoch == 3 and _same_model(model, load_checkpoint(gru4rec_file)[0])
    seeded = torch.Generator().manual_seed(model.config.seed)
    assert torch.equal(model.generator.get_state(), seeded.get_state())
