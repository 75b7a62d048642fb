"""The command line on a tiny TSV: train + evaluate, checkpoints that torch.load reads with
weights_only=True, bit-for-bit resume, a non-finite loss that stops training and keeps the
last good checkpoint, and the same data as parquet."""

import pytest
import torch

from seqrec.cli import main
from seqrec.gru4rec import load_checkpoint

SMALL = ["--layers", "8", "--n-sample", "16", "--batch-size", "4", "--test-days", "1", "--quiet"]


def write_tsv(path, n_sessions=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    lines = ["SessionId\tItemId\tTime"]
    t = 0.0
    for s in range(n_sessions):
        item = int(torch.randint(0, 20, (1,), generator=g))
        for _ in range(int(torch.randint(2, 6, (1,), generator=g))):
            lines.append(f"{s}\t{item}\t{t}")
            item = (item + 1) % 20
            t += 600.0  # ten minutes apart: the last few sessions fall in the last day
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_then_evaluate(tmp_path, capsys):
    data = write_tsv(tmp_path / "events.tsv")
    ckpt = tmp_path / "model.pt"
    assert main(["gru4rec", "train", "--dataset", str(data), "--epochs", "2", "--save", str(ckpt)] + SMALL) == 0
    out = capsys.readouterr().out
    assert "epoch 2: loss" in out and "| standard |" in out and "Recall@20" in out
    payload = torch.load(ckpt, weights_only=True)  # current torch's safe default loads it
    assert payload["epoch"] == 2
    assert main(["gru4rec", "evaluate", "--load", str(ckpt), "--dataset", str(data), "--test-days", "1"]) == 0
    assert "| standard |" in capsys.readouterr().out


def test_resume_is_bit_for_bit(tmp_path):
    data = write_tsv(tmp_path / "events.tsv")
    straight, resumed = tmp_path / "straight.pt", tmp_path / "resumed.pt"
    opts = ["--dropout-p-hidden", "0.2", "--momentum", "0.3"] + SMALL
    assert main(["gru4rec", "train", "--dataset", str(data), "--epochs", "2", "--save", str(straight)] + opts) == 0
    assert main(["gru4rec", "train", "--dataset", str(data), "--epochs", "1", "--save", str(resumed)] + opts) == 0
    assert (
        main(["gru4rec", "train", "--dataset", str(data), "--epochs", "2", "--save", str(resumed), "--resume"] + opts)
        == 0
    )
    a, epoch_a, _ = load_checkpoint(straight)
    b, epoch_b, _ = load_checkpoint(resumed)
    assert epoch_a == epoch_b == 2
    for name, tensor in a.parameter_tensors().items():
        assert torch.equal(tensor, b.parameter_tensors()[name]), name
        assert torch.equal(a.optimizer_state[name][0], b.optimizer_state[name][0])


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path, capsys, monkeypatch):
    data = write_tsv(tmp_path / "events.tsv")
    ckpt = tmp_path / "model.pt"
    assert main(["gru4rec", "train", "--dataset", str(data), "--epochs", "1", "--save", str(ckpt)] + SMALL) == 0
    good = ckpt.read_bytes()
    # the loss becomes NaN at the 7th step of the resumed run (the fused loss itself stays finite
    # for any score magnitude, so divergence is simulated)
    import sys

    steps = sys.modules["seqrec_ext.gru4rec_step"]  # where every step draws its masks
    real_mask, masks = steps.dropout_mask, []

    def failing_mask(shape, like, p, generator):  # the fused step (embedding "none"): two masks a step
        masks.append(1)
        if len(masks) == 14:  # the 7th step's hidden mask: its loss is NaN, and the op updates nothing
            return torch.full(shape, float("nan"), dtype=like.dtype)
        return real_mask(shape, like, p, generator)

    monkeypatch.setattr(steps, "dropout_mask", failing_mask)
    code = main(["gru4rec", "train", "--dataset", str(data), "--epochs", "3", "--save", str(ckpt), "--resume"] + SMALL)
    err = capsys.readouterr().err
    assert code == 2 and "non-finite loss" in err and "last good checkpoint" in err
    assert ckpt.read_bytes() == good


def test_parquet_dataset_trains_like_the_tsv(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    tsv = write_tsv(tmp_path / "events.tsv")
    pd.read_csv(tsv, sep="\t").to_parquet(tmp_path / "events.parquet")
    outputs = []
    for data in (tsv, tmp_path / "events.parquet"):
        assert main(["gru4rec", "train", "--dataset", str(data), "--epochs", "1"] + SMALL) == 0
        lines = capsys.readouterr().out.splitlines()
        outputs.append([line for line in lines if not line.startswith("epoch")])  # events/s differ
    assert "| standard |" in "\n".join(outputs[0]) and outputs[0] == outputs[1]


def test_bad_dataset_argument(tmp_path):
    with pytest.raises(SystemExit, match="neither a file nor a built-in"):
        main(["gru4rec", "train", "--dataset", str(tmp_path / "missing.tsv")])


def test_malformed_data_exits_with_the_file_and_line(tmp_path):
    data = tmp_path / "events.tsv"
    data.write_text("SessionId\tItemId\tTime\n1\t2\t3.0\n1\tx\t4.0\n")
    with pytest.raises(SystemExit, match=r"events.tsv:3: ItemId 'x' is not an integer"):
        main(["gru4rec", "train", "--dataset", str(data), "--epochs", "1"] + SMALL)


def test_preset_stacked_layers_and_threads(tmp_path, capsys):
    """--preset sets the published best parameters, options on the command line override them;
    --layers takes stacked sizes; --threads fixes the thread count; bad values are refused
    before any data is read."""
    data = write_tsv(tmp_path / "events.tsv")
    ckpt = tmp_path / "model.pt"
    assert (
        main(
            [
                "gru4rec",
                "train",
                "--dataset",
                str(data),
                "--epochs",
                "1",
                "--save",
                str(ckpt),
                "--preset",
                "retailrocket",
                "--layers",
                "8,6",
                "--n-sample",
                "16",
                "--batch-size",
                "4",
                "--test-days",
                "1",
                "--threads",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    assert "1 thread" in capsys.readouterr().out
    model, _, _ = load_checkpoint(ckpt)
    c = model.config
    assert (c.layers, c.hidden, c.batch_size, c.n_sample) == ((8,), 6, 4, 16)  # the command line's
    assert (c.loss, c.momentum, c.dropout_embed, c.dropout_hidden, c.bpreg, c.sample_alpha, c.embedding) == (
        "bpr-max",
        0.4,
        0.5,
        0.05,
        1.95,
        0.4,
        "constrained",
    )  # the preset's
    assert model.upper[0]["w_in"].shape == (8, 18)
    for bad, message in (
        (["--layers", "8,0"], "--layers/--hidden: expected sizes >= 1"),
        (["--threads", "0"], "--threads: must be a whole number >= 1"),
        (["--preset", "lastfm"], "--preset: invalid choice"),
    ):
        with pytest.raises(SystemExit):
            main(["gru4rec", "train", "--dataset", str(tmp_path / "missing.tsv")] + bad)
        assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["gru4rec", "train", "--dataset", "ml-100k", "--n-samp", "10"],  # not --n-sample
        ["gru4rec", "train", "--dataset", "ml-100k", "--drop", "0.1"],  # not a --dropout-*
        ["gru4rec", "evaluate", "--load", "m.pt", "--thread", "1"],
        ["cosernn", "train", "--dataset", "synthetic", "--hid", "10"],
    ],
)
def test_option_names_are_exact(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_no_output_overwrites_an_input(tmp_path):
    data = tmp_path / "events.tsv"
    content = "SessionId\tItemId\tTime\n1\t2\t3.0\n1\t3\t4.0\n"
    data.write_text(content)
    with pytest.raises(SystemExit, match="--save .*: that is an input"):
        main(["gru4rec", "train", "--dataset", str(data), "--save", str(data)])
    with pytest.raises(SystemExit, match="--output .*: that is an input"):
        main(["gru4rec", "recommend", "--load", str(tmp_path / "m.pt"), "--input", str(data), "--output", str(data)])
    with pytest.raises(SystemExit, match="--results .*: that is an input"):
        main(["cosernn", "train", "--dataset", str(data), "--results", str(data)])
    assert data.read_text() == content


@pytest.mark.parametrize(
    "options,message",
    [
        (["--n-sample", "-1"], "--n-sample must be a whole number >= 0"),
        (["--logq", "nan"], "--logq must be a finite number >= 0"),
        (["--logq", "-3"], "--logq must be a finite number >= 0"),
        (["--momentum", "1.5"], "--momentum must be a finite number >= 0 < 1"),
        (["--dropout-p-hidden", "1"], "--dropout-p-hidden must be a finite number >= 0 < 1"),
        (["--batch-size", "0"], "--batch-size must be a whole number >= 1"),
        (["--learning-rate", "0"], "--learning-rate must be > 0"),
        (["--learning-rate", "inf"], "--learning-rate must be a finite number"),
        (["--bpreg", "-1"], "--bpreg must be a finite number >= 0"),
    ],
)
def test_settings_out_of_range_are_refused_before_the_data_is_read(tmp_path, options, message):
    missing = str(tmp_path / "never-read.tsv")  # were the data read first, the error would name it
    with pytest.raises(SystemExit, match=message):
        main(["gru4rec", "train", "--dataset", missing, *options])


@pytest.mark.parametrize("argv", [["gru4rec", "train", "--epochs", "-1"], ["gru4rec", "train", "--threads", "100000"]])
def test_counts_out_of_range_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--dataset", "ml-100k"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "must be a whole number >= 1" in err or "this machine's cores" in err


def test_a_user_error_is_one_line_and_exit_status_2(tmp_path, capsys, monkeypatch):
    """No traceback for what a user's input causes: ``seqrec: error: ...`` on stderr, exit 2,
    also for a message raised deep inside; SEQREC_DEBUG=1 shows the traceback instead."""
    (tmp_path / "empty.pt").write_bytes(b"")
    argv = ["gru4rec", "evaluate", "--load", str(tmp_path / "empty.pt"), "--dataset", "ml-100k"]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("seqrec: error: ") and "an empty file" in err and err.count("\n") == 1
    monkeypatch.setenv("SEQREC_DEBUG", "1")
    with pytest.raises(ValueError, match="an empty file"):
        main(argv)


def test_a_lost_peer_is_one_line_naming_this_process(monkeypatch, capsys):
    """Under torchrun, a process whose peers died gets the transport's error: it says so in one
    line (its rank, the job's size), without gloo's traceback."""
    import torch.distributed as dist

    from seqrec.gru4rec import cli as gru4rec_cli

    def lost(args):
        raise dist.DistBackendError("[gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:4242")

    monkeypatch.setattr(gru4rec_cli, "run", lost)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as done:
        main(["gru4rec", "train", "--dataset", "ml-100k"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("seqrec: error: process 0 of 2 lost the other processes") and "Connection closed" in err
    monkeypatch.setattr(gru4rec_cli, "run", lambda args: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):  # anything else keeps its traceback
        main(["gru4rec", "train", "--dataset", "ml-100k"])
