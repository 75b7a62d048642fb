#!/usr/bin/env bash
# Verify that the installed _C holds device code for the requested architecture and every
# CUDA kernel of the project (run from the repository root). Usage: check_cuda_kernels.sh PYTHON ARCH (e.g. 90)
set -euo pipefail
py=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")  # absolute, symlink kept (a venv python)
arch=$2
so=$(cd / && "$py" -c "import seqrec_ext._C as c; print(c.__file__)")
site=$(cd / && "$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
cuobjdump="$site/nvidia/cu13/bin/cuobjdump"
if [ ! -x "$cuobjdump" ]; then
  "$py" -m pip install -q nvidia-cuda-cuobjdump
fi
elves=$("$cuobjdump" --list-elf "$so")
echo "$elves"
grep -q "sm_${arch}.cubin" <<<"$elves" || { echo "no sm_${arch} cubin in $so" >&2; exit 1; }
symbols=$("$cuobjdump" -symbols "$so")
# every __global__ function defined in csrc/cuda/*.cu must be in the module
kernels=$(grep -h -A2 "__global__" csrc/cuda/*.cu | grep -o -E "\b[a-z_0-9]+_kernel\b" | sort -u)
[ -n "$kernels" ] || { echo "found no kernels in csrc/cuda/*.cu" >&2; exit 1; }
for kernel in $kernels; do
  grep -q "$kernel" <<<"$symbols" || { echo "kernel $kernel missing from $so" >&2; exit 1; }
  echo "found kernel $kernel"
done
