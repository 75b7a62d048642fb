"""The self-check a first GPU runs: here its CPU part (and its verdict when a check fails)."""

import torch

import seqrec_ext
from seqrec_ext import selfcheck


def test_cpu_part_passes_and_reports(tmp_path, capsys):
    report = tmp_path / "report.md"
    code = selfcheck.main(["--report", str(report)])
    text = report.read_text()
    assert code == 0, text
    assert "## Build" in text and seqrec_ext.__version__ in text and "all checks passed" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    ops = {row.split("`")[1] for row in rows}
    assert {"gru_sequence", "sampled_ranking_loss", "sparse_adagrad_momentum_", "alias_draw_philox"} <= ops
    assert {"rank_items", "gru4rec_train_step_"} <= ops and all(row.endswith("| ok |") for row in rows)
    if not torch.cuda.is_available():
        assert "no GPU is visible" in text and "CPU part only" in capsys.readouterr().out


def test_a_failing_or_crashing_check_fails_the_run(tmp_path, monkeypatch):
    def wrong(device):
        return [("gru_sequence", "a planted difference", 0.5, 1e-4)]

    def crash(device):
        raise RuntimeError("planted")

    monkeypatch.setattr(selfcheck, "CHECKS", [wrong, crash])
    report = tmp_path / "report.md"
    assert selfcheck.main(["--report", str(report)]) == 1
    text = report.read_text()
    assert "**FAILED**" in text and "crash: RuntimeError: planted" in text and "1 check(s) failed, 1 error(s)" in text
