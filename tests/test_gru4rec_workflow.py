"""The published GRU4Rec command line's daily workflow on seqrec's: separate test files, column
keys, parameter files, cut-offs and tie modes, and the Optuna search (tune) with its
parameter-space files and resumable studies. Tiny synthetic TSV files, one epoch, tiny models."""

import json
import re
import sys

import numpy as np
import pytest
import torch

from seqrec.cli import main
from seqrec.gru4rec import load_checkpoint
from seqrec.gru4rec.data import build_sessions, read_tsv
from seqrec.gru4rec.params import ParamsParser

SMALL = ["--layers", "8", "--n-sample", "16", "--batch-size", "4", "--quiet", "--threads", "1"]
N_ITEMS = 20


def write_tsv(path, n_sessions=60, seed=0, first_session=0, n_items=N_ITEMS, start=0.0, header=None):
    """Sessions walking through the items in order (a signal the model can learn), ten minutes
    between events."""
    g = torch.Generator().manual_seed(seed)
    lines = ["\t".join(header or ("SessionId", "ItemId", "Time"))]
    t = start
    for s in range(first_session, first_session + n_sessions):
        item = int(torch.randint(0, n_items, (1,), generator=g))
        for _ in range(int(torch.randint(2, 6, (1,), generator=g))):
            lines.append(f"{s}\t{item}\t{t}")
            item = (item + 1) % n_items
            t += 600.0
    path.write_text("\n".join(lines) + "\n")
    return path


def tables(out: str) -> dict:
    """{test file name or None: its metrics table} from a command's output."""
    found, name = {}, None
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.endswith(":") and not line.startswith(("|", "epoch")) and " " not in line:
            name = line[:-1]
        if line.startswith("| ties |"):
            end = next(j for j in range(i, len(lines)) if lines[j].endswith("predictions"))
            found[name] = "\n".join(lines[i : end + 1])
    return found


@pytest.fixture
def files(tmp_path):
    train = write_tsv(tmp_path / "train.tsv")
    # the test files: later sessions, with items 20..24 that training never saw
    t1 = write_tsv(tmp_path / "t1.tsv", n_sessions=15, seed=1, first_session=1000, start=1e6)
    t2 = write_tsv(tmp_path / "t2.tsv", n_sessions=15, seed=2, first_session=2000, n_items=25, start=2e6)
    return train, t1, t2


def test_two_test_files_each_get_a_table_like_the_existing_path(files, tmp_path, capsys):
    train, t1, t2 = files
    ckpt = tmp_path / "m.pt"
    argv = ["gru4rec", "train", "--dataset", str(train), "--test", str(t1), str(t2), "--epochs", "1"]
    assert main(argv + ["--save", str(ckpt)] + SMALL) == 0
    out = capsys.readouterr().out
    got = tables(out)
    assert set(got) == {str(t1), str(t2)}
    header = "| ties | Recall@1 | Recall@5 | Recall@10 | Recall@20 | MRR@1 | MRR@5 | MRR@10 | MRR@20 | NDCG@1 | NDCG@5 | NDCG@10 | NDCG@20 |"
    assert got[str(t1)].splitlines()[0] == header and len(got[str(t1)].splitlines()) == 7  # as without --test
    model, _, item_ids = load_checkpoint(ckpt)
    assert item_ids.tolist() == list(range(N_ITEMS))
    for path in (t1, t2):
        expected = build_sessions(read_tsv(path), item_ids=item_ids, source=str(path))
        assert got[str(path)] == model.evaluate(expected, lists=False).table()  # (the lists' table follows)
        assert f"test {path}: {expected.n_sessions} sessions, {expected.n_events} events" in out
    # t2's unseen items are dropped: fewer events than the file has, none of them >= 20
    raw = read_tsv(t2)
    seen = np.isin(raw.item_ids, item_ids)
    assert not seen.all()
    kept = build_sessions(read_tsv(t2), item_ids=item_ids)
    assert kept.n_events < len(raw) and int(kept.items.max()) < N_ITEMS
    # the existing path (evaluate all of a file with --test-days 0) and evaluate --test agree
    assert main(["gru4rec", "evaluate", "--load", str(ckpt), "--dataset", str(t2), "--test-days", "0"]) == 0
    assert tables(capsys.readouterr().out)[None] == got[str(t2)]
    assert main(["gru4rec", "evaluate", "--load", str(ckpt), "--test", str(t1), str(t2)]) == 0
    assert tables(capsys.readouterr().out) == got


def test_test_days_with_test_files_is_refused(files):
    train, t1, _ = files
    with pytest.raises(SystemExit, match="--test-days splits --dataset"):
        main(["gru4rec", "train", "--dataset", str(train), "--test", str(t1), "--test-days", "1"] + SMALL)


def _without_epoch_lines(out):
    return [line for line in out.splitlines() if not line.startswith("epoch")]


@pytest.mark.parametrize("form", ["tsv", "parquet"])
def test_column_keys(files, tmp_path, capsys, form):
    train, t1, _ = files
    keys = ("sid", "iid", "ts")
    renamed = []
    for path in (train, t1):
        text = path.read_text().splitlines()
        # other names, another column order and an extra column
        rows = [line.split("\t") for line in text[1:]]
        body = [f"x\t{t}\t{i}\t{s}" for s, i, t in rows]
        new = tmp_path / f"keyed_{path.name}"
        new.write_text("\n".join(["extra\tts\tiid\tsid"] + body) + "\n")
        if form == "parquet":
            pd = pytest.importorskip("pandas")
            pytest.importorskip("pyarrow")
            frame = pd.read_csv(new, sep="\t")
            new = new.with_suffix(".parquet")
            frame.to_parquet(new)
        renamed.append(new)
    common = ["--epochs", "1"] + SMALL
    assert main(["gru4rec", "train", "--dataset", str(train), "--test", str(t1)] + common) == 0
    plain = capsys.readouterr().out
    key_opts = ["--session-key", keys[0], "--item-key", keys[1], "--time-key", keys[2]]
    assert main(["gru4rec", "train", "--dataset", str(renamed[0]), "--test", str(renamed[1])] + key_opts + common) == 0
    keyed = capsys.readouterr().out
    assert list(tables(plain).values()) == list(tables(keyed).values())
    assert _without_epoch_lines(plain)[0] == _without_epoch_lines(keyed)[0]  # the same training data
    wrong = ["--session-key", "sid", "--item-key", "item", "--time-key", "ts"]
    with pytest.raises(SystemExit, match=r"keyed_train\.\w+(:1)?: missing column\(s\) item in"):
        main(["gru4rec", "train", "--dataset", str(renamed[0])] + wrong + common)


def _config_of(ckpt):
    return load_checkpoint(ckpt)[0].config


@pytest.mark.parametrize("form", ["toml", "json"])
def test_params_file_with_flags_on_top(files, tmp_path, capsys, form):
    train, t1, t2 = files
    ckpt = tmp_path / "m.pt"
    values = {
        "dataset": str(train),
        "test": [str(t1), str(t2)],
        "epochs": 1,
        "layers": 8,
        "batch_size": 4,  # the published underscore name
        "n-sample": 16,  # seqrec's option name
        "learning_rate": 0.1,
        "dropout_p_hidden": 0.25,
        "cutoffs": [2, 4],
        "ties": "conservative",
        "quiet": True,
        "threads": 1,
    }
    if form == "json":
        path = tmp_path / "p.json"
        path.write_text(json.dumps(values))
    else:
        path = tmp_path / "p.toml"
        path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    assert main(["gru4rec", "train", "--params", str(path), "--learning-rate", "0.2", "--save", str(ckpt)]) == 0
    c = _config_of(ckpt)
    assert (c.hidden, c.batch_size, c.n_sample, c.dropout_hidden) == (8, 4, 16, 0.25)  # the file's
    assert c.learning_rate == 0.2  # the command line's
    got = tables(capsys.readouterr().out)
    assert set(got) == {str(t1), str(t2)}
    assert got[str(t1)].splitlines()[0] == "| ties | Recall@2 | Recall@4 | MRR@2 | MRR@4 | NDCG@2 | NDCG@4 |"
    assert "| conservative |" in got[str(t1)] and "| standard |" not in got[str(t1)]


def test_params_file_between_preset_and_flags(files, tmp_path):
    train, _, _ = files
    ckpt = tmp_path / "m.pt"
    path = tmp_path / "p.toml"
    path.write_text('preset = "retailrocket"\nmomentum = 0.1\nlayers = [6, 8]\n')
    argv = ["gru4rec", "train", "--dataset", str(train), "--test-days", "1", "--epochs", "1", "--save", str(ckpt)]
    assert (
        main(argv + ["--params", str(path), "--bpreg", "0.5", "--n-sample", "16", "--batch-size", "4", "--quiet"]) == 0
    )
    c = _config_of(ckpt)
    assert c.momentum == 0.1 and (c.layers, c.hidden) == ((6,), 8)  # the file over the preset
    assert c.bpreg == 0.5  # the command line over both
    assert (c.dropout_embed, c.sample_alpha) == (0.5, 0.4)  # the preset's


@pytest.mark.parametrize(
    "text, message",
    [
        ("learnin_rate = 0.1\n", "unknown option 'learnin_rate'"),
        ("batch_size = 'x'\n", "batch_size: invalid int value: 'x'"),
        ("batch_size = 32.0\n", "batch_size: invalid int value: '32.0'"),
        ("loss = 'hinge'\n", "loss: invalid choice: 'hinge'"),
        ("layers = '8,0'\n", "layers: expected sizes >= 1"),
        ("quiet = 1\n", "quiet: is a flag"),
        ("epochs = \n", "TOML syntax error"),
    ],
)
def test_bad_params_files_name_the_option(files, tmp_path, capsys, text, message):
    train, _, _ = files
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(SystemExit) as exc:
        main(["gru4rec", "train", "--dataset", str(train), "--params", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err


def test_params_file_of_train_serves_evaluate(files, tmp_path, capsys):
    """evaluate skips the names of the other commands' options (a tuned parameter file), but
    not a name no command knows; the file may give what the command line must otherwise."""
    train, t1, _ = files
    ckpt = tmp_path / "m.pt"
    assert (
        main(
            ["gru4rec", "train", "--dataset", str(train), "--test", str(t1), "--epochs", "1", "--save", str(ckpt)]
            + SMALL
        )
        == 0
    )
    before = tables(capsys.readouterr().out)
    path = tmp_path / "p.json"
    values = {"dataset": str(train), "load": str(ckpt), "test": [str(t1)], "learning_rate": 0.3, "epochs": 4}
    path.write_text(json.dumps(values))
    assert main(["gru4rec", "evaluate", "--params", str(path)]) == 0
    out = capsys.readouterr().out
    assert tables(out) == before and "--dataset not used: --test names the data" in out
    path.write_text(json.dumps({"load": str(ckpt), "tset": [str(t1)]}))
    with pytest.raises(SystemExit):
        main(["gru4rec", "evaluate", "--params", str(path)])
    assert "unknown option 'tset'" in capsys.readouterr().err


def test_params_path_is_found_in_every_spelling():
    p = ParamsParser(prog="x")
    p.add_params_option()
    p.add_argument("--preset")
    assert p._params_path(["--params", "a.toml"]) == "a.toml"
    assert p._params_path(["--params=b.toml"]) == "b.toml"
    assert p._params_path(["--par", "c.toml"]) is None  # option names are exact: no abbreviations
    assert p._params_path(["--p", "d.toml"]) is None
    assert p._params_path(["--", "--params", "e.toml"]) is None


def test_cutoffs_and_ties_are_the_same_numbers_as_all_modes(files, tmp_path, capsys):
    train, t1, _ = files
    ckpt = tmp_path / "m.pt"
    argv = ["gru4rec", "train", "--dataset", str(train), "--test", str(t1), "--epochs", "1", "--save", str(ckpt)]
    assert main(argv + ["--cutoffs", "3", "7", "--ties", "median", "conservative"] + SMALL) == 0
    table = tables(capsys.readouterr().out)[str(t1)]
    rows = table.splitlines()
    assert rows[0] == "| ties | Recall@3 | Recall@7 | MRR@3 | MRR@7 | NDCG@3 | NDCG@7 |"
    assert rows[2].startswith("| median |") and rows[3].startswith("| conservative |") and len(rows) == 6
    model = load_checkpoint(ckpt)[0]
    full = model.evaluate(build_sessions(read_tsv(t1), item_ids=np.arange(N_ITEMS)), ks=(3, 7)).result()
    for row in rows[2:4]:
        mode, *numbers = [cell.strip() for cell in row.strip("|").split("|")]
        columns = ("Recall@3", "Recall@7", "MRR@3", "MRR@7", "NDCG@3", "NDCG@7")
        assert numbers == [f"{full[mode][c]:.4f}" for c in columns]
    for bad, message in (
        (["--cutoffs", "0"], "--cutoffs: must be a whole number >= 1"),
        (["--ties", "best"], "invalid choice"),
    ):
        with pytest.raises(SystemExit):
            main(["gru4rec", "train", "--dataset", str(train)] + bad)
        assert message in capsys.readouterr().err


# ---- the search ----

SPACE_LINES = [  # one JSON object a line, as the published files; their int/float ranges are "values"
    '{"name": "layers", "dtype": "int", "values": [4, 12], "step": 4}',
    '{"name": "learning-rate", "dtype": "float", "range": [0.05, 0.3], "step": 0.01}',
    '{"name": "loss", "dtype": "categorical", "values": ["bpr-max"]}',
]


def tune_argv(files, tmp_path, *extra):
    train, t1, t2 = files
    space = tmp_path / "space.json"
    if not space.exists():
        space.write_text("\n".join(SPACE_LINES) + "\n")
    return [
        "gru4rec",
        "tune",
        "--dataset",
        str(train),
        "--test",
        str(t1),
        str(t2),
        "--space",
        str(space),
        "--valid-days",
        "0.2",
        "--cutoff",
        "2",
        "--epochs",
        "1",
        "--n-sample",
        "16",
        "--batch-size",
        "4",
        "--quiet",
        "--threads",
        "1",
        "--best-params",
        str(tmp_path / "best.toml"),
        *extra,
    ]


def write_space(tmp_path, lines):
    path = tmp_path / "bad.json"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            SPACE_LINES[:2] + ['{"name": "hiddn", "dtype": "int", "range": [4, 8]}'],
            r":3: unknown parameter name \"hiddn\"",
        ),
        (['{"name": "momentum", "dtype": "double", "range": [0, 1]}'], r":1: momentum: bad dtype \"double\""),
        (SPACE_LINES[:1] + ['{"name": "momentum", "dtype": "float"}'], r":2: momentum: missing range"),
        (
            ['{"name": "momentum", "dtype": "float", "range": [0.9, 0.1]}'],
            r":1: momentum: range \[0.9, 0.1\] has lo > hi",
        ),
        (SPACE_LINES[:2] + ['{"name": "momentum", "dtype": "float", "range": [0, 1],}'], r":3: JSON syntax error"),
        (["[", SPACE_LINES[0] + ",", '{"name": "bpreg" "dtype": "float"}', "]"], r":3: JSON syntax error"),
        (
            [
                "[",
                SPACE_LINES[0] + ",",
                SPACE_LINES[1] + ",",
                '{"name": "bpreg", "dtype": "int", "range": [1, 2], "step": 0}',
                "]",
            ],
            r":4: bpreg: step must be a number > 0",
        ),
        (
            ['{"name": "batch_size", "dtype": "float", "range": [8.5, 16]}'],
            r":1: batch_size: lo 8.5: invalid int value",
        ),
        (['{"name": "layers", "dtype": "int", "range": [0, 8]}'], r":1: layers: lo 0: expected sizes >= 1"),
        (
            ['{"name": "loss", "dtype": "categorical", "values": ["bpr-max", "hinge"]}'],
            r":1: loss: value \"hinge\": invalid choice",
        ),
        (['{"name": "momentum", "dtype": "float", "range": [0, 1], "steps": 0.1}'], r":1: unknown key 'steps'"),
        (
            ['{"name": "momentum", "dtype": "float", "range": [0.01, 1], "step": 0.1, "log": true}'],
            r":1: momentum: step and log together",
        ),
        (
            SPACE_LINES[:2] + ['{"name": "learning_rate", "dtype": "float", "range": [0.1, 0.2]}'],
            r":3: learning-rate is already in the space \(line 2\)",
        ),
        (
            ['{"name": "dataset", "dtype": "categorical", "values": ["x.tsv"]}'],
            r":1: unknown parameter name \"dataset\"",
        ),
        (
            ['{"name": "momentum", "dtype": "float", "values": [0, 0.5, 0.9]}'],
            r":1: momentum: values must be \[lo, hi\]",
        ),
        (['{"dtype": "float", "range": [0, 1]}'], r":1: missing name"),
        (SPACE_LINES[:1] + ["[1, 2]"], r":2: expected an object"),
        # what the command line refuses, a space cannot ask for
        (['{"name": "momentum", "dtype": "float", "range": [0, 1.5]}'], r":1: momentum: hi 1.5: --momentum must be"),
        (['{"name": "n_sample", "dtype": "int", "range": [-4, 8]}'], r":1: n_sample: lo -4: --n-sample must be"),
        (
            ['{"name": "batch_size", "dtype": "categorical", "values": [0, 32]}'],
            r":1: batch_size: value 0: --batch-size",
        ),
        (['{"name": "logq", "dtype": "float", "range": [-3, 1]}'], r":1: logq: lo -3: --logq must be"),
        (['{"name": "layers", "dtype": "int", "range": [0, 64]}'], r":1: layers: lo 0: expected sizes >= 1"),
    ],
)
def test_bad_space_files_name_the_line(files, tmp_path, lines, message):
    path = write_space(tmp_path, lines)
    argv = tune_argv(files, tmp_path)
    argv[argv.index("--space") + 1] = str(path)
    with pytest.raises(SystemExit, match=re.escape(str(path)) + message):
        main(argv)


def test_ready_made_spaces_hold_the_published_ranges():
    from seqrec.gru4rec.tune import read_space

    parser = _tune_parser()
    tunable = parser.get_default("tunable")
    _, bpr = read_space("bpr-max", parser, tunable)
    _, xe = read_space("cross-entropy", parser, tunable)
    spec = {p.name: p.describe() for p in bpr}
    assert spec["layers"] == {"name": "layers", "dtype": "int", "low": 64, "high": 512, "step": 32, "log": False}
    assert (spec["batch-size"]["low"], spec["batch-size"]["high"], spec["batch-size"]["step"]) == (32, 256, 16)
    assert (spec["learning-rate"]["low"], spec["learning-rate"]["high"]) == (0.01, 0.25)
    assert (spec["dropout-p-hidden"]["high"], spec["momentum"]["high"], spec["bpreg"]["high"]) == (0.7, 0.9, 2.0)
    assert spec["elu-param"]["values"] == (0, 0.5, 1) and spec["loss"]["values"] == ("bpr-max",)
    names = {p.name for p in xe}
    assert "bpreg" not in names and "elu-param" not in names
    assert {p.name: p for p in xe}["logq"].values == (0.0, 1.0)
    assert {p.name: p for p in xe}["loss"].values == ("cross-entropy",)


def _tune_parser():
    import argparse

    from seqrec.gru4rec import cli

    models = argparse.ArgumentParser().add_subparsers()
    cli.add_parser(models)
    return models.choices["gru4rec"]._subparsers._group_actions[0].choices["tune"]


def test_tune_without_optuna_says_how_to_install_it(files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes the import fail
    with pytest.raises(SystemExit, match=r"pip install 'seqrec_ext\[tune\]'"):
        main(tune_argv(files, tmp_path, "--trials", "1"))


def trial_lines(out):
    return re.findall(r"^trial (\d+): ", out, flags=re.M)


def test_tune_end_to_end_writes_params_that_train_accepts(files, tmp_path, capsys):
    pytest.importorskip("optuna")
    train, t1, t2 = files
    log = tmp_path / "trials.jsonl"
    assert (
        main(tune_argv(files, tmp_path, "--trials", "3", "--save", str(tmp_path / "best.pt"), "--log", str(log))) == 0
    )
    out = capsys.readouterr().out
    assert trial_lines(out) == ["0", "1", "2"]
    # --log: a line per trial, its value the one printed
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [t["trial"] for t in logged] == [0, 1, 2]
    printed = re.findall(r"^trial \d+: recall@2 (\S+) in", out, flags=re.M)
    assert [f"{t['recall@2']:.4f}" for t in logged] == printed
    assert all(set(t["params"]) == {"layers", "learning-rate"} for t in logged)
    table = [line for line in out.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(table) == 3 and sum("(best)" in line for line in table) == 1
    best_row = next(line for line in table if "(best)" in line).strip("|").split("|")
    best = tmp_path / "best.toml"
    text = best.read_text()
    assert text.startswith("# seqrec gru4rec tune: trial ") and 'loss = "bpr-max"' in text
    # the written file: the best trial's values, which train --params accepts
    layers, lr = int(best_row[5]), float(best_row[6])
    assert f"layers = {layers}\n" in text and f"learning-rate = {lr}\n" in text
    ckpt = tmp_path / "again.pt"
    argv = ["gru4rec", "train", "--params", str(best), "--dataset", str(train), "--test", str(t1), str(t2)]
    assert main(argv + ["--save", str(ckpt), "--quiet", "--threads", "1"]) == 0
    again = capsys.readouterr().out
    model, epochs, _ = load_checkpoint(ckpt)
    c = model.config
    assert (c.hidden, c.learning_rate, c.n_sample, c.batch_size, epochs) == (layers, lr, 16, 4, 1)
    # tune trained the same best on all the training data and evaluated it on the test files the same way
    assert tables(out) == tables(again)
    assert torch.equal(
        load_checkpoint(tmp_path / "best.pt")[0].params.out_table, load_checkpoint(ckpt)[0].params.out_table
    )


def test_tune_resumes_from_its_storage(files, tmp_path, capsys, monkeypatch):
    optuna = pytest.importorskip("optuna")
    import seqrec.gru4rec.model as model_module

    db = tmp_path / "study.db"
    argv = tune_argv(files, tmp_path, "--storage", str(db), "--study-name", "s")
    # an interrupted search: Ctrl-C during the second trial
    real, calls = model_module.GRU4Rec.train_epoch, []

    def interrupted(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(model_module.GRU4Rec, "train_epoch", interrupted)
    with pytest.raises(SystemExit) as stopped:  # Ctrl-C: "seqrec: interrupted", exit status 130
        main(argv + ["--trials", "3"])
    assert stopped.value.code == 130
    monkeypatch.setattr(model_module.GRU4Rec, "train_epoch", real)
    capsys.readouterr()

    def complete():
        study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
        return [t for t in study.trials if t.state.name == "COMPLETE"], study

    done, _ = complete()
    assert len(done) == 1
    assert main(argv + ["--trials", "3"]) == 0  # runs only the two missing
    out = capsys.readouterr().out
    assert "1 of 3 trials done, 2 to run" in out and len(trial_lines(out)) == 2
    done, study = complete()
    assert len(done) == 3
    # a trial left running by a killed process is marked failed and replaced
    stale = study.ask()
    assert main(argv + ["--trials", "4"]) == 0
    out = capsys.readouterr().out
    assert f"trial {stale.number} was left unfinished" in out and len(trial_lines(out)) == 1
    done, study = complete()
    assert len(done) == 4 and study.trials[stale.number].state.name == "FAIL"
    # nothing left to run: the search goes straight to the best
    assert main(argv + ["--trials", "4"]) == 0
    assert trial_lines(capsys.readouterr().out) == []
    # other settings do not resume the study
    with pytest.raises(SystemExit, match="other settings"):
        main(argv + ["--trials", "4", "--metric", "mrr"])


def test_unknown_space_name(files, tmp_path):
    argv = tune_argv(files, tmp_path)
    argv[argv.index("--space") + 1] = "bpr-maxx"
    with pytest.raises(
        SystemExit, match=r"--space 'bpr-maxx': neither a file nor a ready-made space \(bpr-max, cross-entropy\)"
    ):
        main(argv)


def test_ranking_metrics_cutoffs_modes_and_value():
    from seqrec.metrics import RankingMetrics

    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (50, 30), generator=g).float()  # many ties
    targets = torch.randint(0, 30, (50,), generator=g)
    every = RankingMetrics(ks=(1, 3, 10))
    every.update(scores, targets)
    for mode in ("standard", "conservative", "median"):
        one = RankingMetrics(ks=np.array([3]), modes=(mode,))
        one.update(scores, targets)
        assert one.result()[mode] == {k: every.result()[mode][k] for k in ("Recall@3", "MRR@3", "NDCG@3")}
        assert one.value("mrr", 3, mode) == every.result()[mode]["MRR@3"]
    assert every.value("recall", 3, "standard") > every.value("recall", 3, "conservative")  # the ties count
    for ks, modes, message in (
        ((0,), ("standard",), "whole numbers >= 1"),
        ((2.5,), ("standard",), "whole numbers >= 1"),
        ((5, 5), ("standard",), "repeated"),
        ((5,), (), "at least one"),
    ):
        with pytest.raises(ValueError, match=message):
            RankingMetrics(ks=ks, modes=modes)
    with pytest.raises(ValueError, match="not measured"):
        every.value("recall", 20, "standard")
