#!/usr/bin/env bash
# Create a virtual environment with torch and build seqrec_ext into it (with the test extras).
#
#   bash scripts/install.sh [VENV_DIR=.venv] [TORCH_REQUIREMENT=torch==2.14.1]
#
# torch==2.14.1 is the CUDA 13.0 build (the CUDA kernels are compiled when nvcc is found);
# torch==2.13.0 is a CPU-only build here. Build switches, read from the environment:
#   SEQREC_CUDA=AUTO|ON|OFF   CUDA kernels: if possible (default) / demanded / skipped
#   CUDAARCHS=90 or TORCH_CUDA_ARCH_LIST="8.0 9.0"   GPU architectures (default: torch's list)
#   SEQREC_WERROR=ON          warnings as errors
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(realpath -m "${1:-.venv}")
torch_requirement=${2:-torch==2.14.1}
python=${PYTHON:-python3}

pip_install() {
  # this machine's pip configuration names local indexes that may be absent: drop that noise
  "$venv/bin/python" -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip_install "$torch_requirement" "scikit-build-core>=1.1" ninja
# --no-build-isolation: build against the torch just installed (the wheel pins that version)
pip_install --no-build-isolation ".[test]"
(cd / && "$venv/bin/python" -m seqrec_ext)
