"""`python -m seqrec_ext`: print what was built and what this process can run."""

import sys

import seqrec_ext
from seqrec_ext.threads import thread_facts


def main() -> int:
    info = seqrec_ext.build_info()
    archs = ", ".join(info["cuda_archs"]) if info["cuda_archs"] else "-"
    if info["cuda_archs"]:
        archs += f" (from {seqrec_ext.build_config.CUDA_ARCH_SOURCE})"
    rows = [
        ("seqrec_ext", info["version"]),
        ("torch (built with)", info["torch_version"]),
        ("torch (running)", info["runtime_torch_version"]),
        ("CUDA kernels compiled", "yes" if info["with_cuda"] else "no"),
        ("CUDA architectures", archs),
        ("nvcc", info["nvcc_version"] or "-"),
        ("C++ compiler", info["cxx_compiler"]),
        ("GPU visible", "yes" if info["cuda_available"] else "no"),
    ]
    rows += [(f"  device {i}", name) for i, name in enumerate(info["cuda_devices"])]
    rows += [(key, str(value)) for key, value in thread_facts().items()]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if info["cuda_available"] and not info["with_cuda"]:
        print(
            "note: a GPU is visible but the CUDA kernels were not built; ops on CUDA tensors "
            "will fail. Rebuild with SEQREC_CUDA=ON.",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
