"""The Python tree keeps the formatting and lint rules in pyproject.toml (ruff): a change that
breaks them fails here, not in review."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = ["python", "seqrec_ext", "tests", "bench"]


def ruff():
    exe = shutil.which("ruff") or os.path.join(os.path.dirname(sys.executable), "ruff")
    if not os.path.exists(exe):
        pytest.skip("ruff is not installed (it comes with the test extra)")
    return exe


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command):
    result = subprocess.run([ruff(), *command, *TREES], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
