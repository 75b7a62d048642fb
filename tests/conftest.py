"""Shared test fixtures: the devices to run on (CUDA only where a GPU is visible and the CUDA
kernels are built), and one intra-op thread for every test not marked ``threads``: a test that
does not test threading should not depend on an idle machine (with one of two cores busy,
OpenMP's waiting threads made the suite 10x slower)."""

import pytest
import torch

import seqrec_ext

HAS_CUDA = torch.cuda.is_available() and seqrec_ext.build_info()["with_cuda"]
DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])

requires_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a visible GPU and the CUDA kernels")


def pytest_report_header(config):
    info = seqrec_ext.build_info()
    return (
        f"seqrec_ext {info['version']} built with torch {info['torch_version']}, "
        f"CUDA kernels: {info['with_cuda']} {info['cuda_archs']}, GPU visible: {info['cuda_available']}"
    )


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=requires_cuda)])
def device(request):
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def one_thread(request):
    if request.node.get_closest_marker("threads"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
