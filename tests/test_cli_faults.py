"""The command line against bad input, as a careless or hostile user gives it: every case of the
table ends with exit status 2 and a message naming the option, file or line at fault -- never
a Python traceback, a crash, a silent wrong answer or lost data. Plus malformed TSV files
written by hypothesis: a clean error naming the file and line, or exactly the events written."""

from __future__ import annotations

import re

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from test_seqrec_cli import SMALL, write_tsv

from seqrec.cli import main
from seqrec.cosernn import CoSeRNNConfig
from seqrec.cosernn import save_checkpoint as save_cosernn
from seqrec.gru4rec.data import read_tsv


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    write_tsv(d / "events.tsv")
    assert (
        main(
            [
                "gru4rec",
                "train",
                "--dataset",
                str(d / "events.tsv"),
                "--epochs",
                "1",
                "--save",
                str(d / "model.pt"),
                *SMALL,
            ]
        )
        == 0
    )
    (d / "empty.pt").write_bytes(b"")
    (d / "text.pt").write_text("not a checkpoint\n")
    (d / "latin1.tsv").write_bytes("SessionId\tItemId\tTime\n1\t\xe9t\xe9\t0\n".encode("latin-1"))
    (d / "header.tsv").write_text("SessionId\tItemId\tTime\n")
    (d / "dup.tsv").write_text("SessionId\tItemId\tItemId\tTime\n1\t2\t3\t0\n1\t3\t4\t1\n")
    (d / "big.tsv").write_text("SessionId\tItemId\tTime\n1\t99999999999999999999999\t0\n1\t2\t1\n")
    (d / "short.tsv").write_text("SessionId\tItemId\tTime\n1\t2\n")
    (d / "folder").mkdir()
    save_cosernn(str(d / "cosernn.pt"), CoSeRNNConfig(n_devices=2, n_sources=2), {"w": torch.ones(2)}, epoch=1)
    return d


TRAIN = "gru4rec train --dataset {d}/events.tsv --quiet"
SYN = "cosernn train --dataset synthetic --synthetic-users 20 --quiet"

# (command line with {d} the fixture's folder, a fragment of the one-line message)
CASES = [
    # option values out of range, named by the option
    (TRAIN + " --batch-size -5", "--batch-size must be a whole number >= 1"),
    (TRAIN + " --n-sample -1", "--n-sample must be a whole number >= 0"),
    (TRAIN + " --logq nan", "--logq must be a finite number"),
    (TRAIN + " --momentum 1.5", "--momentum must be a finite number >= 0 < 1"),
    (TRAIN + " --learning-rate 0", "--learning-rate must be > 0"),
    (TRAIN + " --epochs -1", "argument --epochs: must be a whole number >= 1"),
    (TRAIN + " --eval-batch-size 0", "argument --eval-batch-size: must be a whole number >= 1"),
    (TRAIN + " --threads 100000", "argument --threads: must be at most"),
    (TRAIN + " --test-days -1", "argument --test-days: must be a finite number of days >= 0"),
    (TRAIN + " --test-days nan", "argument --test-days: must be a finite number of days >= 0"),
    (TRAIN + " --seed 1e23", "argument --seed: invalid int value"),
    (TRAIN + " --device garbage", "argument --device: not a device"),
    # more than the machine has: refused before anything is allocated (not a crash or a kill)
    (TRAIN + " --batch-size 100000000", "a training step's scores \\(--batch-size, --n-sample\\) need"),
    (TRAIN + " --n-sample 1000000000", "a training step's scores \\(--batch-size, --n-sample\\) need"),
    (TRAIN + " --layers 1000000000", "the parameters and their optimizer state \\(--hidden, --layers"),
    (TRAIN + " --embedding separate --embedding-size 100000000", "the parameters and their optimizer state"),
    # option names are exact (no prefix matching)
    (TRAIN + " --n-samp 1", "unrecognized arguments: --n-samp"),
    # input files: named, with the line where there is one
    ("gru4rec train --dataset {d}/missing.tsv --quiet", "neither a file nor a built-in data set"),
    ("gru4rec train --dataset {d}/folder --quiet", "Is a directory"),
    ("gru4rec train --dataset {d}/latin1.tsv --quiet", "latin1.tsv:2: not UTF-8 text"),
    ("gru4rec train --dataset {d}/header.tsv --quiet", "header.tsv: no events"),
    ("gru4rec train --dataset {d}/dup.tsv --quiet", "dup.tsv:1: column\\(s\\) ItemId appear more than once"),
    ("gru4rec train --dataset {d}/big.tsv --quiet", "big.tsv:2: ItemId 99999999999999999999999 is outside"),
    ("gru4rec train --dataset {d}/short.tsv --quiet", "short.tsv:2: expected 3 tab-separated fields, got 2"),
    # outputs: checked before any work; never one of the inputs
    (TRAIN + " --save {d}/nofolder/x.pt", "the folder .*nofolder does not exist"),
    (TRAIN + " --save {d}/folder", "--save .*folder: a folder; give a file name"),
    (TRAIN + " --save {d}/events.tsv", "that is an input of this command"),
    ("gru4rec recommend --load {d}/model.pt --input {d}/events.tsv --output {d}/events.tsv", "that is an input"),
    ("gru4rec recommend --load {d}/model.pt --items 1,2 --output {d}/x.tsv", "--output goes with --input"),
    # checkpoints: each kind of wrong file named
    (
        "gru4rec evaluate --load {d}/empty.pt --dataset {d}/events.tsv",
        "empty.pt: not a seqrec GRU4Rec checkpoint .an empty file",
    ),
    (
        "gru4rec evaluate --load {d}/text.pt --dataset {d}/events.tsv",
        "text.pt: not a seqrec GRU4Rec checkpoint .truncated",
    ),
    ("gru4rec evaluate --load {d}/folder --dataset {d}/events.tsv", "a folder, not a seqrec GRU4Rec checkpoint"),
    ("gru4rec evaluate --load {d}/cosernn.pt --dataset {d}/events.tsv", "it is a seqrec CoSeRNN checkpoint"),
    ("gru4rec evaluate --load {d}/missing.pt --dataset {d}/events.tsv", "No such file or directory"),
    (
        "cosernn evaluate --load {d}/model.pt --dataset synthetic --synthetic-users 20",
        "it is a seqrec GRU4Rec checkpoint",
    ),
    ("cosernn train --prepared {d}/empty.pt --quiet", "not a prepared CoSeRNN data file .an empty file"),
    # CoSeRNN's settings, before any data is read
    (SYN + " --hidden 0", "hidden must be a whole number >= 1"),
    (SYN + " --batch-size 0", "batch_size must be a whole number >= 1"),
    (SYN + " --test-days -1", "argument --test-days: must be a finite number of days >= 0"),
    (SYN + " --learning-rates 1e-3 -1", "learning_rate must be finite and > 0"),
    (SYN + " --device cuda:7", "argument --device"),
]


@pytest.mark.parametrize("command,message", CASES, ids=[c for c, _ in CASES])
def test_a_bad_input_is_one_clear_error(files, command, message, capsys):
    with pytest.raises(SystemExit) as done:
        main(command.format(d=files).split())
    err = capsys.readouterr().err
    assert done.value.code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("seqrec"), last  # "seqrec: error: ..." or argparse's "seqrec ... error: ..."
    assert re.search(message, last), last


def test_the_table_covers_every_command(files):
    commands = {" ".join(c.split()[:2]) for c, _ in CASES}
    assert {"gru4rec train", "gru4rec evaluate", "gru4rec recommend", "cosernn train", "cosernn evaluate"} <= commands
    assert len(CASES) >= 40


# ---- malformed TSV files: a clean error or exactly the events ----

CELL = st.one_of(
    st.integers(-5, 30).map(str),
    st.sampled_from(["", " ", "1.5", "x", "nan", "inf", "1e3", "99999999999999999999", "\u00e9", "7\u00a0"]),
)
ROW = st.lists(CELL, min_size=2, max_size=4)
HEADER = st.sampled_from(
    [
        ["SessionId", "ItemId", "Time"],
        ["ItemId", "Time", "SessionId"],
        ["SessionId", "ItemId"],
        ["SessionId", "ItemId", "Time", "ItemId"],
        ["SessionId", "ItemId", "Time", "Extra"],
        ["sessionid", "itemid", "time"],
    ]
)


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(
    header=HEADER,
    rows=st.lists(ROW, max_size=6),
    line_end=st.sampled_from(["\n", "\r\n", "\r"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]),
)
def test_malformed_tsv_is_a_clean_error_or_exactly_the_events(tmp_path_factory, header, rows, line_end, encoding):
    path = tmp_path_factory.mktemp("tsv") / "events.tsv"
    text = line_end.join("\t".join(r) for r in [header, *rows]) + line_end
    path.write_bytes(text.encode(encoding))
    try:
        events = read_tsv(path)
    except ValueError as err:
        assert str(err).startswith(str(path)), err
        return
    # read: the header was right, and every non-empty row is an event exactly as written
    where = {c: header.index(c) for c in ("SessionId", "ItemId", "Time")}
    kept = [r for r in rows if "\t".join(r).strip("\r") != ""]
    assert len(events) == len(kept)
    for k, r in enumerate(kept):
        assert events.session_ids[k] == int(r[where["SessionId"]]) and events.item_ids[k] == int(r[where["ItemId"]])
        assert events.times[k] == float(r[where["Time"]]) and np.isfinite(events.times[k])
