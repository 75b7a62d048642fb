"""The package reports its build truthfully and refuses a torch it was not built for."""

import os
import re
import subprocess
import sys

import pytest
import torch

import seqrec_ext
from seqrec_ext import _loader


def test_build_info_matches_this_process():
    info = seqrec_ext.build_info()
    assert info["torch_version"] == torch.__version__
    assert info["runtime_torch_version"] == torch.__version__
    assert info["version"] == seqrec_ext.__version__
    assert info["with_cuda"] == seqrec_ext.build_config.WITH_CUDA
    assert info["cuda_archs"] == seqrec_ext.build_config.CUDA_ARCHS
    if info["with_cuda"]:
        assert torch.version.cuda, "CUDA kernels cannot be built against a CPU-only torch"
        assert info["cuda_archs"], "a CUDA build must name its architectures"
        # where the architectures came from: asked for, or the build machine's GPUs, or torch's
        assert seqrec_ext.build_config.CUDA_ARCH_SOURCE in (
            "CUDAARCHS / CMAKE_CUDA_ARCHITECTURES",
            "TORCH_CUDA_ARCH_LIST",
            "the GPUs visible at build time",
            "the architectures torch was built for",
        )
    assert info["cuda_available"] == torch.cuda.is_available()


def seqrec_op_names():
    return sorted({s.name for s in torch._C._jit_get_all_schemas() if s.name.startswith("seqrec::")})


def test_every_op_registered_for_built_devices():
    """Every op of the seqrec namespace has a CPU kernel, a CUDA kernel exactly when the CUDA
    kernels were built, and a fake kernel for torch.compile; the differentiable ones have
    their autograd formula."""
    names = seqrec_op_names()
    assert len(names) >= 13 and "seqrec::gru4rec_train_step_" in names
    with_cuda = seqrec_ext.build_info()["with_cuda"]
    for name in names:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CPU"), name
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CUDA") == with_cuda, name
        assert (
            torch._C._dispatch_has_kernel_for_dispatch_key(name, "Meta")
            or torch._library.simple_registry.singleton.find(name).fake_impl.kernel is not None
        ), name
    for name in (
        "seqrec::gru_step",
        "seqrec::gru_sequence",
        "seqrec::lstm_sequence",
        "seqrec::sampled_ranking_loss",
    ):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "Autograd"), name


def test_main_prints_the_facts(tmp_path):
    # run outside the source tree, whose uncompiled package would shadow the installed one
    out = subprocess.run(
        [sys.executable, "-m", "seqrec_ext"], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    info = seqrec_ext.build_info()
    facts = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in out.splitlines() if line.strip())
    assert facts["torch (built with)"] == info["torch_version"]
    assert facts["torch (running)"] == torch.__version__
    assert facts["CUDA kernels compiled"] == ("yes" if info["with_cuda"] else "no")
    archs = ", ".join(info["cuda_archs"])
    source = seqrec_ext.build_config.CUDA_ARCH_SOURCE
    assert facts["CUDA architectures"] == (f"{archs} (from {source})" if archs else "-")
    assert facts["GPU visible"] == ("yes" if torch.cuda.is_available() else "no")
    assert int(facts["cores in affinity mask"]) == len(os.sched_getaffinity(0))


def test_refuses_a_different_torch(monkeypatch):
    monkeypatch.setattr(_loader.torch, "__version__", "0.0.1+other")
    with pytest.raises(ImportError, match="built against torch .* but torch 0.0.1\\+other is installed"):
        _loader._load()


def test_source_tree_import_explains_itself(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", "import seqrec_ext"], capture_output=True, text=True, cwd=repo)
    if result.returncode == 0:
        pytest.skip("an editable install: the source tree is the installed package")
    assert "this is the source tree" in result.stderr


def test_models_package_imports_the_ops_layer():
    import seqrec

    assert seqrec.__version__ == seqrec_ext.__version__
