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
    assert info["cuda_available"] == torch.cuda.is_available()


def test_ops_registered_for_built_devices():
    for name in ("alias_build", "alias_draw", "alias_draw_philox"):
        op = getattr(torch.ops.seqrec, name).default
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), "CPU")
        has_cuda_kernel = torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), "CUDA")
        assert has_cuda_kernel == seqrec_ext.build_info()["with_cuda"]


def test_main_prints_the_facts(tmp_path):
    # run outside the source tree, whose uncompiled package would shadow the installed one
    out = subprocess.run([sys.executable, "-m", "seqrec_ext"], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    info = seqrec_ext.build_info()
    facts = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in out.splitlines() if line.strip())
    assert facts["torch (built with)"] == info["torch_version"]
    assert facts["torch (running)"] == torch.__version__
    assert facts["CUDA kernels compiled"] == ("yes" if info["with_cuda"] else "no")
    assert facts["CUDA architectures"] == (", ".join(info["cuda_archs"]) or "-")
    assert facts["GPU visible"] == ("yes" if torch.cuda.is_available() else "no")


def test_refuses_a_different_torch(monkeypatch):
    monkeypatch.setattr(_loader.torch, "__version__", "0.0.1+other")
    with pytest.raises(ImportError, match="built against torch .* but torch 0.0.1\\+other is installed"):
        _loader._load()


def test_source_tree_import_explains_itself(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", "import seqrec_ext"], capture_output=True,
                            text=True, cwd=repo)
    if result.returncode == 0:
        pytest.skip("an editable install: the source tree is the installed package")
    assert "this is the source tree" in result.stderr


def test_models_package_imports_the_ops_layer():
    import seqrec

    assert seqrec.__version__ == seqrec_ext.__version__
