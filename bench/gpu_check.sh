#!/usr/bin/env bash
# The one command to run on a machine with a GPU (from the repository root, in the environment
# the package is installed in): build facts, every op CUDA against CPU, the CUDA tests and the
# op microbenchmarks on the GPU, into one Markdown report (a few minutes on one GPU).
# Without a GPU it runs the CPU part and says so.
#   bash bench/gpu_check.sh [--report gpu-check.md] [--skip-tests] [--skip-bench]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && python=.venv/bin/python
exec "$python" -m seqrec_ext.selfcheck --report gpu-check.md "$@"
