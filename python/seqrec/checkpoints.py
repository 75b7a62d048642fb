"""Checkpoints written atomically and durably, for every model: the payload goes to a temporary
file in the checkpoint's folder, which is flushed to disk, renamed over the checkpoint, and the
folder is synced so that the rename survives a crash too. A failure at any point leaves the
previous checkpoint as it was and no temporary file behind."""

from __future__ import annotations

import os
import tempfile

import torch


def save_atomically(payload, path) -> None:
    """``torch.save(payload)`` to ``path``, atomically and durably."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    folder_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(folder_fd)
    finally:
        os.close(folder_fd)
