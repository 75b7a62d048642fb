"""CoSeRNN (Hansen et al., RecSys 2020) on seqrec_ext's ops: listening logs and their sessions
(`listening`), the built-in and synthetic logs (`datasets`, `synthetic`), the item space
(`item_embeddings`), per-user session sequences with their features (`sequences`), the model and
its losses (`model`), training and checkpoints (`train`), the evaluation with the paper's
baselines (`evaluate`) and the command line (`cli`)."""

from .model import CoSeRNN, CoSeRNNConfig, predict, training_objective
from .train import load_checkpoint, load_training_state, save_checkpoint, train

__all__ = [
    "CoSeRNN",
    "CoSeRNNConfig",
    "predict",
    "training_objective",
    "load_checkpoint",
    "load_training_state",
    "save_checkpoint",
    "train",
]
