"""Pure-PyTorch references of every op, with the op's signature: what the tests compare the
compiled kernels against. Slow by design: written for clarity, straight from the formulas."""
from .alias_sampler import alias_build, alias_distribution, alias_draw
from .gru import gru_sequence, gru_step
from .sampled_loss import sampled_ranking_loss

__all__ = ["alias_build", "alias_distribution", "alias_draw", "gru_sequence", "gru_step",
           "sampled_ranking_loss"]
