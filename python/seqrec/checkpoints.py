"""Files written atomically and durably, for every model and command: the content goes to a
temporary file with a unique name in the target's folder, which is flushed to disk, given the
mode a new file gets under the process's umask, renamed over the target, and the folder is
synced so that the rename survives a crash too. A failure at any point leaves the previous file
as it was and no temporary file behind; two writers of one path each leave a whole file (the
last rename wins), never a mix. No output may be one of the command's inputs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterable, Iterator, Optional

import torch


def _umask_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def open_atomically(path, mode: str = "wb") -> Iterator:
    """A file object to write ``path``'s new content into (``mode`` "wb" or "w"); on a clean
    exit it replaces ``path`` atomically and durably, on an exception it is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
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


def save_atomically(payload, path) -> None:
    """``torch.save(payload)`` to ``path``, atomically and durably."""
    with open_atomically(path, "wb") as f:
        torch.save(payload, f)


def same_file(a, b) -> bool:
    """Whether the paths ``a`` and ``b`` name one existing file."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting(output: Optional[str], option: str, inputs: Iterable[Optional[str]]) -> None:
    """SystemExit naming ``option`` when ``output`` is the same file as one of ``inputs``."""
    if output is None:
        return
    for source in inputs:
        if source is not None and same_file(output, source):
            raise SystemExit(f"{option} {output}: that is an input of this command ({source}); choose another file")
