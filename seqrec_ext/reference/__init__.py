"""Pure-PyTorch references of every op, with the op's signature: what the tests compare the
compiled kernels against. Slow by design: written for clarity, straight from the formulas."""

from .adagrad_momentum import adagrad_momentum_, sparse_adagrad_momentum_
from .alias_sampler import alias_build, alias_distribution, alias_draw
from .gru import gru_sequence, gru_step
from .lstm import lstm_sequence
from .rank_items import rank_items
from .sampled_loss import sampled_ranking_loss

__all__ = [
    "adagrad_momentum_",
    "sparse_adagrad_momentum_",
    "alias_build",
    "alias_distribution",
    "alias_draw",
    "gru_sequence",
    "gru_step",
    "lstm_sequence",
    "rank_items",
    "sampled_ranking_loss",
]
