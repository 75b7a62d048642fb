"""Training metric logs: ``--log FILE.jsonl`` (one JSON object per epoch, flushed as it is
written, so a run that dies keeps every finished epoch) and ``--tensorboard DIR`` (the same
numbers as TensorBoard scalars, when ``torch.utils.tensorboard`` and its ``tensorboard``
package are importable; tensorboard is not a dependency of seqrec).

Each line holds what the trainer passes: for GRU4Rec ``epoch``, ``loss``, ``events_per_s``,
``threads``, ``seconds`` (the epoch's training time), ``wall_s`` (since the run started) and,
with validation, ``valid`` (``{"recall@20": ..., "mrr@20": ..., "ndcg@20": ...}``) and
``best_epoch``; for CoSeRNN, ``model`` (CoSeRNN or a learned baseline), ``learning_rate``,
``updates``, ``train_cosine``, ``valid_cosine``, ``seconds`` and ``wall_s`` (its TensorBoard
tags under ``model/lr=rate/``). A resumed run appends to the file it was given.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Optional

from .checkpoints import refuse_overwriting


def _plain(value):
    """JSON has no NaN or infinity: those are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class MetricLog:
    """Where a trainer's per-epoch numbers go: a JSON-lines file, TensorBoard, both or neither."""

    def __init__(
        self, path: Optional[str] = None, tensorboard: Optional[str] = None, *, append: bool = False, inputs=()
    ):
        refuse_overwriting(path, "--log", inputs)
        self.start = time.perf_counter()
        self._file = open(path, "a" if append else "w", encoding="utf-8") if path else None
        self._writer = None
        if tensorboard:
            if os.path.exists(tensorboard) and not os.path.isdir(tensorboard):
                raise SystemExit(f"--tensorboard {tensorboard}: a file; give a folder")
            parent = os.path.dirname(os.path.abspath(tensorboard))
            if not os.path.isdir(parent):
                raise SystemExit(f"--tensorboard {tensorboard}: the folder {parent} does not exist")
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise SystemExit(
                    f"--tensorboard needs the tensorboard package ({err}): pip install tensorboard"
                ) from None
            self._writer = SummaryWriter(tensorboard)

    def write(self, step: int, tags: str = "", **values) -> None:
        """One line (``epoch`` = ``step``) and one scalar per number (nested dicts as ``a/b``,
        every tag after the prefix ``tags``)."""
        line = {"epoch": step, **values, "wall_s": round(time.perf_counter() - self.start, 3)}
        if self._file is not None:
            self._file.write(json.dumps(_plain(line), sort_keys=False) + "\n")
            self._file.flush()
        if self._writer is not None:
            for name, value in _flatten(values, tags):
                self._writer.add_scalar(name, value, step)
            self._writer.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "MetricLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _flatten(values: dict, prefix: str = ""):
    for name, value in values.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{name}", value
