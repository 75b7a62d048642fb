"""seqrec_ext: fused C++/CUDA PyTorch ops for session-based recommenders.

`import seqrec_ext` loads the compiled kernels and registers every op as `torch.ops.seqrec.*`
with its fake kernel (for `torch.compile`) and autograd formula; the functions below are the
Python entry points. Pure-PyTorch references of every op are in `seqrec_ext.reference`.
"""

import torch  # noqa: F401  (torch's libraries must be loaded before the compiled module)

# isort: off
from ._loader import _C, build_config  # registers the ops: before any module that refers to them

# isort: on
from . import optim, reference
from .adagrad_momentum import adagrad_momentum_, sparse_adagrad_momentum_
from .alias_sampler import PopularitySampler, alias_build, alias_draw
from .gru import gru_sequence, gru_step, gru_step_ids
from .gru4rec_step import GRU4RecParams, RowGrad, StepResult, gru4rec_step
from .gru4rec_train_step import gru4rec_train_step_, train_step_param_names
from .lstm import lstm_sequence
from .rank_items import RankResult, rank_items
from .sampled_loss import logq_correction, sampled_ranking_loss

__version__ = _C.build_info()["version"]

__all__ = [
    "GRU4RecParams",
    "RowGrad",
    "StepResult",
    "gru4rec_step",
    "gru4rec_train_step_",
    "train_step_param_names",
    "PopularitySampler",
    "adagrad_momentum_",
    "sparse_adagrad_momentum_",
    "alias_build",
    "alias_draw",
    "build_config",
    "build_info",
    "gru_sequence",
    "gru_step",
    "gru_step_ids",
    "logq_correction",
    "lstm_sequence",
    "RankResult",
    "rank_items",
    "sampled_ranking_loss",
    "optim",
    "reference",
]


def build_info() -> dict:
    """Facts of the build (package and torch versions, CUDA architectures, compiler) and of
    the running process (torch version, whether a GPU is visible)."""
    info = dict(_C.build_info())
    info["runtime_torch_version"] = torch.__version__
    info["cuda_available"] = torch.cuda.is_available()
    info["cuda_device_count"] = torch.cuda.device_count() if info["cuda_available"] else 0
    if info["cuda_device_count"]:
        info["cuda_devices"] = [
            f"{torch.cuda.get_device_name(i)} (sm_{''.join(map(str, torch.cuda.get_device_capability(i)))})"
            for i in range(info["cuda_device_count"])
        ]
    else:
        info["cuda_devices"] = []
    return info
