"""Print the build facts of the torch installed beside the target Python as CMake `set()` lines.

CMake runs this instead of `find_package(Torch)`: on these machines Torch's CMake config module
picks a wrong CUDA root (through the nvcc wrapper on the PATH), adds a missing nvrtc library,
ignores CMAKE_CUDA_ARCHITECTURES and defaults to architectures nvcc 13 rejects.
"""
import os
import sys

import torch
import torch.utils.cpp_extension as cpp_extension


def cmake_list(items):
    return ";".join(str(i).replace("\\", "/") for i in items)


def main() -> None:
    torch_dir = os.path.dirname(torch.__file__)
    site_packages = os.path.dirname(torch_dir)
    nvidia_include = os.path.join(site_packages, "nvidia", "cu13", "include")
    # torch.cuda.get_arch_list() works without a GPU: 'sm_90', 'compute_90' (PTX) ...
    arches = []
    if torch.version.cuda:
        for arch in torch.cuda.get_arch_list():
            kind, _, num = arch.partition("_")
            if kind == "sm" and num.isdigit():
                arches.append(num)
    # the GPUs this machine has (torch's own extension builder builds for them alone when no
    # architecture is asked for): their compute capabilities, e.g. "90"
    visible = []
    if torch.version.cuda and torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            if f"{major}{minor}" not in visible:
                visible.append(f"{major}{minor}")
    facts = {
        "SEQREC_TORCH_VERSION": torch.__version__,
        "SEQREC_TORCH_CUDA_VERSION": torch.version.cuda or "",
        "SEQREC_TORCH_CXX11_ABI": int(torch._C._GLIBCXX_USE_CXX11_ABI),
        "SEQREC_TORCH_INCLUDE_DIRS": cmake_list(cpp_extension.include_paths()),
        "SEQREC_TORCH_LIB_DIR": os.path.join(torch_dir, "lib").replace("\\", "/"),
        "SEQREC_TORCH_NVIDIA_INCLUDE_DIR": nvidia_include if os.path.isdir(nvidia_include) else "",
        "SEQREC_TORCH_CUDA_ARCHES": cmake_list(arches),
        "SEQREC_VISIBLE_CUDA_ARCHES": cmake_list(visible),
        # at::parallel_for is an inline OpenMP loop when torch uses OpenMP: compile with it.
        "SEQREC_TORCH_OPENMP": int("parallel backend: OpenMP" in torch.__config__.parallel_info()),
    }
    for key, value in facts.items():
        sys.stdout.write(f'set({key} "{value}")\n')


if __name__ == "__main__":
    main()
