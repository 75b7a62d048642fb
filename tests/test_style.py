"""The tree keeps its formatting and lint rules: the Python ones in pyproject.toml (ruff), the
C++/CUDA ones in .clang-format (clang-format 18): a change that breaks them fails here, not in
review."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = ["python", "seqrec_ext", "tests", "bench"]


def tool(name):
    exe = os.path.join(os.path.dirname(sys.executable), name)
    exe = exe if os.path.exists(exe) else shutil.which(name)
    if not exe:
        pytest.skip(f"{name} is not installed (it comes with the test extra)")
    return exe


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command):
    result = subprocess.run([tool("ruff"), *command, *TREES], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_clang_format():
    exe = tool("clang-format")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    if "version 18." not in version:
        pytest.skip(f"the style is clang-format 18's; found {version.strip()}")
    sources = []
    for folder, _, names in os.walk(os.path.join(REPO, "csrc")):
        sources += [os.path.join(folder, n) for n in sorted(names) if n.endswith((".cpp", ".h", ".cu"))]
    assert len(sources) > 20
    result = subprocess.run([exe, "--dry-run", "-Werror", *sources], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[:3000]
