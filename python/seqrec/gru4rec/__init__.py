"""GRU4Rec (Hidasi et al.) on seqrec_ext's ops: the settings and presets (`config`), the model with
its evaluation and inference (`model`), its training (`train`), checkpoints (`checkpoint`), GRU4Rec's
session data format and time split (`data`), session-parallel mini-batches (`batching`), the
built-in real data sets (`datasets`), a synthetic session log (`synthetic`) and the command line
(`cli`)."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import PRESET_COMMON, PRESETS, GRU4RecConfig
from .model import EMBEDDING_MODES, GRU4Rec

__all__ = [
    "EMBEDDING_MODES",
    "PRESET_COMMON",
    "PRESETS",
    "GRU4Rec",
    "GRU4RecConfig",
    "load_checkpoint",
    "save_checkpoint",
]
