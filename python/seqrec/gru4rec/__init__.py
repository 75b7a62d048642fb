"""GRU4Rec (Hidasi et al.) on seqrec_ext's ops: the model and its trainer (`model`), GRU4Rec's
session data format and time split (`data`), session-parallel mini-batches (`batching`), the
built-in real data sets (`datasets`), a synthetic session log (`synthetic`) and the command line
(`cli`)."""

from .model import EMBEDDING_MODES, PRESET_COMMON, PRESETS, GRU4Rec, GRU4RecConfig, load_checkpoint, save_checkpoint

__all__ = [
    "EMBEDDING_MODES",
    "PRESET_COMMON",
    "PRESETS",
    "GRU4Rec",
    "GRU4RecConfig",
    "load_checkpoint",
    "save_checkpoint",
]
