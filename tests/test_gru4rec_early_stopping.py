"""Validation after every epoch and early stopping (``seqrec gru4rec train --valid-days /
--valid, --valid-metric, --patience``) and the metric log (``--log``): the restored and saved
model is the best epoch's bit for bit, a resumed run keeps the best so far and ends where an
uninterrupted one does, the record's rules (strict gains, NaN never best, the patience), and
the errors."""

import json
import math

import pytest
import torch

from seqrec.cli import main
from seqrec.gru4rec import GRU4Rec, GRU4RecConfig, load_checkpoint
from seqrec.gru4rec.checkpoint import load_for_resume
from seqrec.gru4rec.early_stopping import EarlyStopping, valid_metric

# a learning rate high enough that the validation metric goes up and down (checked below)
SMALL = ["--layers", "8", "--n-sample", "16", "--batch-size", "4", "--learning-rate", "0.5", "--threads", "1"]
SMALL += ["--quiet"]


def write_log(path, n_sessions, seed, t0=0.0):
    """Sessions over 30 items that mostly step to the next item (else jump), a minute apart."""
    g = torch.Generator().manual_seed(seed)
    lines = ["SessionId\tItemId\tTime"]
    t = t0
    for s in range(n_sessions):
        item = int(torch.randint(0, 30, (1,), generator=g))
        for _ in range(int(torch.randint(2, 7, (1,), generator=g))):
            lines.append(f"{s}\t{item}\t{t}")
            step = 1 if torch.rand(1, generator=g) < 0.7 else int(torch.randint(2, 30, (1,), generator=g))
            item = (item + step) % 30
            t += 60.0
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def files(tmp_path):
    return {
        "train": write_log(tmp_path / "train.tsv", 150, 0),
        "valid": write_log(tmp_path / "valid.tsv", 40, 1, 1e6),
        "test": write_log(tmp_path / "test.tsv", 40, 2, 2e6),
    }


def train(files, *extra):
    args = ["gru4rec", "train", "--dataset", files["train"], "--test", files["test"], *SMALL, *extra]
    return main([str(a) for a in args])


def assert_same_model(a, b):
    for name, tensor in a.parameter_tensors().items():
        assert torch.equal(tensor, b.parameter_tensors()[name]), name
        for x, y in zip(a.optimizer_state[name], b.optimizer_state[name]):
            assert torch.equal(x, y), name
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


def test_the_saved_model_is_the_best_epoch_s_bit_for_bit(files, tmp_path, capsys):
    ckpt, log = tmp_path / "best.pt", tmp_path / "metrics.jsonl"
    opts = ["--valid", files["valid"], "--valid-metric", "mrr@5", "--patience", "1", "--epochs", "8"]
    assert train(files, *opts, "--save", ckpt, "--log", log) == 0
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    values = [line["valid"]["mrr@5"] for line in lines]
    best = max(range(len(values)), key=lambda i: (values[i], -i)) + 1  # the first of equal values
    assert 1 < best < len(values) < 8, values  # the metric fell and the patience stopped the run
    assert len(values) == best + 1
    assert f"best epoch {best} of {len(values)} on validation" in out and "no gain for 1 epoch" in out
    assert [line["best_epoch"] for line in lines][-1] == best
    for line in lines:
        assert {"loss", "events_per_s", "threads", "seconds", "wall_s", "valid"} <= set(line)
        assert set(line["valid"]) == {"recall@5", "mrr@5", "ndcg@5"}
    saved, epoch, _ = load_checkpoint(ckpt)
    assert epoch == best
    # the same training data and seed for `best` epochs, without validation
    plain = tmp_path / "plain.pt"
    assert train(files, "--epochs", best, "--save", plain) == 0
    reference, _, _ = load_checkpoint(plain)
    assert_same_model(saved, reference)
    # the model restored in memory is the one evaluated: its test table is the plain model's
    test_table = out[out.index("| ties |") :]
    capsys.readouterr()
    assert main(["gru4rec", "evaluate", "--load", str(plain), "--test", files["test"]]) == 0
    plain_out = capsys.readouterr().out
    assert plain_out[plain_out.index("| ties |") :].split("\n\n")[0] == test_table.split("\n\n")[0]


def test_resume_keeps_the_best_so_far_and_ends_as_an_uninterrupted_run(files, tmp_path, capsys):
    straight, resumed = tmp_path / "straight.pt", tmp_path / "resumed.pt"
    opts = ["--valid", files["valid"], "--valid-metric", "mrr@5"]
    assert train(files, *opts, "--epochs", 8, "--save", straight) == 0
    assert train(files, *opts, "--epochs", 3, "--save", resumed, "--log", tmp_path / "m.jsonl") == 0
    _, epoch, _, record = load_for_resume(resumed)
    assert epoch == 3 and len(record.values) == 3 and record.best is not None
    capsys.readouterr()
    assert train(files, *opts, "--epochs", 8, "--save", resumed, "--resume", "--log", tmp_path / "m.jsonl") == 0
    assert "resuming from" in capsys.readouterr().out
    a, epoch_a, _ = load_checkpoint(straight)
    b, epoch_b, _ = load_checkpoint(resumed)
    assert epoch_a == epoch_b < 8  # the best epoch is not the last (checked in the run above)
    assert_same_model(a, b)
    last_a, _, _, record_a = load_for_resume(straight)
    last_b, _, _, record_b = load_for_resume(resumed)
    assert record_a.values == record_b.values and len(record_a.values) == 8
    assert_same_model(last_a, last_b)
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 8  # the resumed run appended


def test_valid_days_carves_the_validation_sessions_from_the_training_data(files, capsys):
    assert train(files, "--valid-days", "0.02", "--epochs", 1) == 0
    out = capsys.readouterr().out
    described = out.splitlines()[0]  # train: S sessions ...: the training data less the last 0.02 days
    assert "validation (the last 0.02 days of the training data)" in out
    assert int(described.split()[1]) < 150 and "recall@20" in out


def test_the_record_keeps_the_first_of_equal_values_and_never_a_nan():
    model = GRU4Rec(10, GRU4RecConfig(layers=(), hidden=4, n_sample=0, batch_size=2))
    record = EarlyStopping("mrr", 20, "conservative", patience=2)
    assert record.record(model, math.nan) is False and record.best is None and not record.stopped
    assert record.record(model, 0.3) is True and record.best_epoch == 2
    assert record.record(model, 0.3) is False and record.best_epoch == 2  # a tie is no gain
    assert not record.stopped
    assert record.record(model, 0.2) is False and record.stopped
    never = EarlyStopping("recall", 5, "standard")  # no patience: never stops
    for value in (0.5, 0.1, 0.1, 0.1):
        never.record(model, value)
    assert never.best_epoch == 1 and not never.stopped


@pytest.mark.parametrize("text", ["recall@20", "MRR@5", "ndcg@1"])
def test_valid_metric_accepts(text):
    measure, k = valid_metric(text)
    assert measure in ("recall", "mrr", "ndcg") and k >= 1


@pytest.mark.parametrize("text", ["hit@20", "mrr", "mrr@0", "mrr@-1", "mrr@x", "@20", ""])
def test_valid_metric_refuses(text):
    with pytest.raises(Exception, match="expected recall@K"):
        valid_metric(text)


@pytest.mark.parametrize(
    "first, then, message",
    [
        ([], ["--patience", "2"], "--patience needs --valid-days N or --valid FILE"),
        ([], ["--valid-metric", "mrr@5"], "--valid-metric needs"),
        ([], ["--valid-days", "1", "--valid", "VALID"], "not both"),
        (["--valid", "VALID"], ["--resume"], "trained with validation: resume it with the same --valid-days"),
        (["--valid", "VALID"], ["--valid-days", "0.01", "--resume"], "was validated on other data"),
        ([], ["--valid-days", "0"], "must be a finite number of days > 0"),
        ([], ["--log", "SAVE"], "the same file as --save"),
        ([], ["--valid", "VALID", "--tensorboard", "VALID"], "a file; give a folder"),
        ([], ["--valid", "VALID", "--resume"], "trained without validation"),
        (["--valid", "VALID"], ["--valid", "VALID", "--valid-metric", "mrr@5", "--resume"], "validated on recall@20"),
    ],
)
def test_errors(files, tmp_path, capsys, first, then, message):
    ckpt = tmp_path / "m.pt"

    def fill(opts):
        return [files["valid"] if o == "VALID" else ckpt if o == "SAVE" else o for o in opts]

    if first or "--resume" in then:
        assert train(files, "--epochs", 1, "--save", ckpt, *fill(first)) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        train(files, "--epochs", 2, "--save", ckpt, *fill(then))
    assert done.value.code == 2
    assert message in capsys.readouterr().err


def test_tensorboard_scalars_are_the_logged_numbers(files, tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log, board = tmp_path / "m.jsonl", tmp_path / "board"
    assert train(files, "--valid", files["valid"], "--epochs", 2, "--log", log, "--tensorboard", board) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    events = EventAccumulator(str(board))
    events.Reload()
    assert {"loss", "events_per_s", "valid/recall@20", "valid/mrr@20", "best_epoch"} <= set(events.Tags()["scalars"])
    for tag, pick in (("loss", lambda l: l["loss"]), ("valid/mrr@20", lambda l: l["valid"]["mrr@20"])):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2]
        assert [s.value for s in scalars] == pytest.approx([pick(line) for line in lines], rel=1e-6)


def test_tensorboard_missing_is_a_one_line_error(files, tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(SystemExit) as done:
        train(files, "--epochs", 1, "--tensorboard", tmp_path / "board")
    assert done.value.code == 2
    assert "--tensorboard needs the tensorboard package" in capsys.readouterr().err


def test_a_non_finite_number_is_logged_as_null(tmp_path):
    from seqrec.metric_log import MetricLog

    with MetricLog(str(tmp_path / "m.jsonl")) as log:
        log.write(1, loss=math.nan, valid={"mrr@20": math.inf, "recall@20": 0.5})
    line = json.loads((tmp_path / "m.jsonl").read_text())
    assert line["loss"] is None and line["valid"] == {"mrr@20": None, "recall@20": 0.5} and line["epoch"] == 1
